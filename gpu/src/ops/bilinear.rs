//! Bilinear layers on the GPU (`torchlet::ops::bilinear`): `y = x1ᵀ W x2 + b` forward, the
//! input gradient one input per dispatch, and the weight gradient.

use torchlet::ops::bilinear::BilinearGeom;
use torchlet::Buffer;

use super::{bytes, check_len, concat, read_weight_bias, submit, w32, Dispatch, Pass};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Bilinear` of the `bilinear_*.wgsl` shaders.
    pub(crate) struct Bilinear {
        rows: u32, in1: u32, in2: u32, out: u32, has_bias: u32, x1_off: u32, x2_off: u32, w_off: u32,
        b_off: u32, y_off: u32, which: u32, total: u32,
    }
}

/// A bilinear pass over `g.rows` rows per sample; `which`: the input whose gradient
/// `BilinearBackwardInput` computes (0 or 1); `w`, `b`: parameter offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BilinearSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: BilinearGeom,
    pub(crate) which: u32,
    pub(crate) w: usize,
    pub(crate) b: usize,
}

impl Dispatch for BilinearSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let g = &self.g;
        match self.kernel {
            Kernel::BilinearForward => n * g.rows * g.out,
            Kernel::BilinearBackwardInput if self.which == 0 => n * g.rows * g.in1,
            Kernel::BilinearBackwardInput => n * g.rows * g.in2,
            _ => g.out * g.in1 * g.in2 + if g.bias { g.out } else { 0 },
        }
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let g = &self.g;
        bytes(Bilinear {
            rows: w32(n * g.rows),
            in1: w32(g.in1),
            in2: w32(g.in2),
            out: w32(g.out),
            has_bias: u32::from(g.bias),
            w_off: w32(self.w),
            b_off: w32(self.b),
            which: self.which,
            total,
            ..Bilinear::default()
        })
    }
}

/// The bilinear geometry `(rows, in1, in2, out)` of the wrappers below.
type BilinearDims = (usize, usize, usize, usize);

fn bilinear_spec(
    kernel: Kernel,
    (rows, in1, in2, out): BilinearDims,
    bias: bool,
    b: usize,
    which: u32,
) -> BilinearSpec {
    BilinearSpec {
        kernel,
        g: BilinearGeom {
            rows,
            in1,
            in2,
            out,
            bias,
        },
        which,
        w: 0,
        b,
    }
}

fn check_bilinear((rows, in1, in2, out): BilinearDims, x1: &[f32], x2: &[f32]) -> Result<()> {
    check_len(Buffer::Input, rows * in1, x1.len())?;
    check_len(Buffer::Input, rows * in2, x2.len())?;
    if out == 0 {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "out_features",
            expected: "must be positive",
        }));
    }
    Ok(())
}

/// GPU [`torchlet::ops::bilinear::bilinear_forward`]: `y[r, o] = Σ_ij x1[r, i] w[o, i, j]
/// x2[r, j] + b[o]`.
///
/// - `x1`: `[rows, in1]`; `x2`: `[rows, in2]`; `w`: `[out, in1, in2]`; `b`: `[out]` or empty;
///   `y`: `[rows, out]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch or `out == 0`; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn bilinear_forward(
    dev: &Device,
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let dims = (rows, in1, in2, out);
    check_bilinear(dims, x1, x2)?;
    check_len(Buffer::Params, out * in1 * in2, w.len())?;
    if !b.is_empty() {
        check_len(Buffer::Params, out, b.len())?;
    }
    check_len(Buffer::Output, rows * out, y.len())?;
    let x1b = dev.storage_with("x1", x1)?;
    let x2b = dev.storage_with("x2", x2)?;
    let pb = dev.storage_with("params", &concat(w, b))?;
    let yb = dev.storage("y", y.len())?;
    let spec = bilinear_spec(Kernel::BilinearForward, (1, in1, in2, out), !b.is_empty(), w.len(), 0);
    let pass = Pass::new(dev, spec, &[&x1b, &pb, &yb, &x2b], rows);
    submit(dev, &[&pass], "running bilinear_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::bilinear::bilinear_backward_input`]: `gx1[r, i] += Σ_o gy[r, o] Σ_j
/// w[o, i, j] x2[r, j]` and `gx2[r, j] += Σ_o gy[r, o] Σ_i x1[r, i] w[o, i, j]` (two
/// dispatches of `bilinear_backward_input.wgsl`).
///
/// - `x1`: `[rows, in1]`; `x2`: `[rows, in2]`; `w`: `[out, in1, in2]`; `gy`: `[rows, out]`;
///   `gx1`: `[rows, in1]` and `gx2`: `[rows, in2]`, accumulated.
///
/// # Errors
/// As [`bilinear_forward`].
#[allow(clippy::too_many_arguments)]
pub fn bilinear_backward_input(
    dev: &Device,
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    gy: &[f32],
    gx1: &mut [f32],
    gx2: &mut [f32],
) -> Result<()> {
    let dims = (rows, in1, in2, out);
    check_bilinear(dims, x1, x2)?;
    check_len(Buffer::Params, out * in1 * in2, w.len())?;
    check_len(Buffer::Gradient, rows * out, gy.len())?;
    check_len(Buffer::Gradient, x1.len(), gx1.len())?;
    check_len(Buffer::Gradient, x2.len(), gx2.len())?;
    let x1b = dev.storage_with("x1", x1)?;
    let x2b = dev.storage_with("x2", x2)?;
    let pb = dev.storage_with("params", w)?;
    let gyb = dev.storage_with("gy", gy)?;
    let g1 = dev.storage_with("gx1", gx1)?;
    let g2 = dev.storage_with("gx2", gx2)?;
    let dims1 = (1, in1, in2, out);
    let p1 = Pass::new(
        dev,
        bilinear_spec(Kernel::BilinearBackwardInput, dims1, false, 0, 0),
        &[&g1, &pb, &gyb, &x2b],
        rows,
    );
    let p2 = Pass::new(
        dev,
        bilinear_spec(Kernel::BilinearBackwardInput, dims1, false, 0, 1),
        &[&g2, &pb, &gyb, &x1b],
        rows,
    );
    submit(dev, &[&p1, &p2], "running bilinear_backward_input")?;
    gx1.copy_from_slice(&dev.read::<f32>(&g1, 0, gx1.len())?);
    gx2.copy_from_slice(&dev.read::<f32>(&g2, 0, gx2.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::bilinear::bilinear_backward_weight`]: `gw[o, i, j] += Σ_r gy[r, o]
/// x1[r, i] x2[r, j]`, `gb[o] += Σ_r gy[r, o]`.
///
/// - `x1`: `[rows, in1]`; `x2`: `[rows, in2]`; `gy`: `[rows, out]`; `gw`: `[out, in1, in2]` and
///   `gb`: `[out]` (or empty), accumulated.
///
/// # Errors
/// As [`bilinear_forward`].
#[allow(clippy::too_many_arguments)]
pub fn bilinear_backward_weight(
    dev: &Device,
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    let dims = (rows, in1, in2, out);
    check_bilinear(dims, x1, x2)?;
    check_len(Buffer::Gradient, rows * out, gy.len())?;
    check_len(Buffer::Grads, out * in1 * in2, gw.len())?;
    if !gb.is_empty() {
        check_len(Buffer::Grads, out, gb.len())?;
    }
    let x1b = dev.storage_with("x1", x1)?;
    let x2b = dev.storage_with("x2", x2)?;
    let gyb = dev.storage_with("gy", gy)?;
    let gbuf = dev.storage_with("grads", &concat(gw, gb))?;
    let spec = bilinear_spec(
        Kernel::BilinearBackwardWeight,
        (1, in1, in2, out),
        !gb.is_empty(),
        gw.len(),
        0,
    );
    let pass = Pass::new(dev, spec, &[&x1b, &gbuf, &gyb, &x2b], rows);
    submit(dev, &[&pass], "running bilinear_backward_weight")?;
    read_weight_bias(dev, &gbuf, gw, gb)
}
