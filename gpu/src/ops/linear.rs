//! Linear layers on the GPU (`torchlet::ops::linear`): `linear_forward.wgsl`,
//! `linear_backward_input.wgsl`, `linear_backward_weight.wgsl`.
//!
//! Use [`LinearSpec`] (a [`LinearGeom`] and the parameter offsets) to record a pass; the host
//! wrappers mirror the core's functions for tests.

use torchlet::ops::linear::LinearGeom;
use torchlet::Buffer;

use super::{bytes, check_len, concat, read_weight_bias, submit, w32, Dispatch, Pass};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Linear` of the `linear_*.wgsl` shaders.
    pub(crate) struct Linear {
        rows: u32, in_f: u32, out_f: u32, has_bias: u32, x_off: u32, w_off: u32, b_off: u32, y_off: u32,
        total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    }
}

/// A linear pass over `g.rows` rows per sample; `w`, `b`: the weight's and bias's offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LinearSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: LinearGeom,
    pub(crate) w: usize,
    pub(crate) b: usize,
}

impl Dispatch for LinearSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let g = &self.g;
        match self.kernel {
            Kernel::LinearForward => n * g.rows * g.out_f,
            Kernel::LinearBackwardInput => n * g.rows * g.in_f,
            _ => g.out_f * g.in_f + if g.bias { g.out_f } else { 0 },
        }
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        bytes(Linear {
            rows: w32(n * self.g.rows),
            in_f: w32(self.g.in_f),
            out_f: w32(self.g.out_f),
            has_bias: u32::from(self.g.bias),
            w_off: w32(self.w),
            b_off: w32(self.b),
            total,
            ..Linear::default()
        })
    }
}

/// GPU [`torchlet::ops::linear::linear_forward`]: `y = x · wᵀ + b`.
///
/// - `x`: `[rows, in_f]`; `w`: `[out_f, in_f]`; `b`: `[out_f]` or empty; `y`: `[rows, out_f]`, overwritten.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) with a buffer length mismatch; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn linear_forward(
    dev: &Device,
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, rows * in_f, x.len())?;
    check_len(Buffer::Params, out_f * in_f, w.len())?;
    if !b.is_empty() {
        check_len(Buffer::Params, out_f, b.len())?;
    }
    check_len(Buffer::Output, rows * out_f, y.len())?;
    let xb = dev.storage_with("x", x)?;
    let pb = dev.storage_with("params", &concat(w, b))?;
    let yb = dev.storage("y", y.len())?;
    let spec = LinearSpec {
        kernel: Kernel::LinearForward,
        g: LinearGeom {
            rows: 1,
            in_f,
            out_f,
            bias: !b.is_empty(),
        },
        w: 0,
        b: w.len(),
    };
    let pass = Pass::new(dev, spec, &[&xb, &pb, &yb], rows);
    submit(dev, &[&pass], "running linear_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::linear::linear_backward_input`]: `gx += gy · w`.
///
/// - `w`: `[out_f, in_f]`; `gy`: `[rows, out_f]`; `gx`: `[rows, in_f]`, accumulated.
///
/// # Errors
/// As [`linear_forward`].
pub fn linear_backward_input(
    dev: &Device,
    rows: usize,
    in_f: usize,
    out_f: usize,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Params, out_f * in_f, w.len())?;
    check_len(Buffer::Gradient, rows * out_f, gy.len())?;
    check_len(Buffer::Gradient, rows * in_f, gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let pb = dev.storage_with("params", w)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = LinearSpec {
        kernel: Kernel::LinearBackwardInput,
        g: LinearGeom {
            rows: 1,
            in_f,
            out_f,
            bias: false,
        },
        w: 0,
        b: 0,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &pb, &gyb], rows);
    submit(dev, &[&pass], "running linear_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::linear::linear_backward_weight`]: `gw += gyᵀ · x`, `gb += Σ_rows gy`.
///
/// - `x`: `[rows, in_f]`; `gy`: `[rows, out_f]`; `gw`: `[out_f, in_f]` and `gb`: `[out_f]`
///   (or empty), accumulated.
///
/// # Errors
/// As [`linear_forward`].
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_weight(
    dev: &Device,
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, rows * in_f, x.len())?;
    check_len(Buffer::Gradient, rows * out_f, gy.len())?;
    check_len(Buffer::Grads, out_f * in_f, gw.len())?;
    if !gb.is_empty() {
        check_len(Buffer::Grads, out_f, gb.len())?;
    }
    let xb = dev.storage_with("x", x)?;
    let gbuf = dev.storage_with("grads", &concat(gw, gb))?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = LinearSpec {
        kernel: Kernel::LinearBackwardWeight,
        g: LinearGeom {
            rows: 1,
            in_f,
            out_f,
            bias: !gb.is_empty(),
        },
        w: 0,
        b: gw.len(),
    };
    let pass = Pass::new(dev, spec, &[&xb, &gbuf, &gyb], rows);
    submit(dev, &[&pass], "running linear_backward_weight")?;
    read_weight_bias(dev, &gbuf, gw, gb)
}
