//! PReLU on the GPU (`torchlet::ops::activation::prelu`): `prelu_forward.wgsl`,
//! `prelu_backward_input.wgsl` and `prelu_backward_weight.wgsl` (one workgroup of 256 per
//! weight, reducing over the batch and spatial positions of its channel, or over everything
//! for a shared weight).

use torchlet::ops::activation::PreluGeom;
use torchlet::Buffer;

use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};
use crate::ops::{bytes, check_len, submit, w32, Dispatch, Pass};

uniform! {
    /// `struct Prelu` of the `prelu_*.wgsl` shaders.
    pub(crate) struct Prelu {
        x_off: u32, y_off: u32, w_off: u32, total: u32, channels: u32, inner: u32, one_weight: u32, _pad0: u32,
    }
}

/// Invocations per weight of the weight-gradient reduction.
const WEIGHT_WORKGROUP: usize = 256;

/// A PReLU pass; `w`: the weight's (or its gradient's) offset in the parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PreluSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: PreluGeom,
    pub(crate) w: usize,
}

impl Dispatch for PreluSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        match self.kernel {
            Kernel::PreluBackwardWeight => self.g.num_parameters * WEIGHT_WORKGROUP,
            _ => n * self.g.channels * self.g.inner,
        }
    }

    fn uniform(&self, n: usize, _total: u32) -> Vec<u8> {
        let g = &self.g;
        bytes(Prelu {
            w_off: w32(self.w),
            // Elements, also for the weight gradient (whose invocations are per weight).
            total: w32(n * g.channels * g.inner),
            channels: w32(g.channels),
            inner: w32(g.inner),
            one_weight: u32::from(g.num_parameters == 1),
            ..Prelu::default()
        })
    }
}

fn geom(channels: usize, inner: usize, weights: usize) -> PreluGeom {
    PreluGeom {
        channels,
        inner,
        num_parameters: weights,
        init: 0.25,
    }
}

/// Checks `x` is whole samples of `[C, S]` and the weight has 1 or `C` values; the batch.
fn batch(channels: usize, inner: usize, weights: usize, x: &[f32]) -> Result<usize> {
    let per = channels * inner;
    let n = x.len() / per.max(1);
    check_len(Buffer::Input, n * per, x.len())?;
    check_len(Buffer::Params, if weights == 1 { 1 } else { channels }, weights)?;
    Ok(n)
}

/// GPU [`torchlet::ops::activation::prelu_forward`]: `y = x` where `x > 0`, else `w[c] x`.
///
/// - `x`: `[N, C, S]`; `w`: `[C]` or `[1]`; `y`: `[N, C, S]`, overwritten.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) with a buffer length mismatch; wgpu errors.
pub fn prelu_forward(dev: &Device, channels: usize, inner: usize, w: &[f32], x: &[f32], y: &mut [f32]) -> Result<()> {
    let n = batch(channels, inner, w.len(), x)?;
    check_len(Buffer::Output, x.len(), y.len())?;
    let (xb, wb, yb) = (
        dev.storage_with("x", x)?,
        dev.storage_with("w", w)?,
        dev.storage("y", y.len())?,
    );
    let spec = PreluSpec {
        kernel: Kernel::PreluForward,
        g: geom(channels, inner, w.len()),
        w: 0,
    };
    let pass = Pass::new(dev, spec, &[&xb, &wb, &yb], n);
    submit(dev, &[&pass], "running PReLU's forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::activation::prelu_backward_input`]: `gx += gy` where `x > 0`, else
/// `w[c] gy`.
///
/// - `w`: `[C]` or `[1]`; `x`, `gy`: `[N, C, S]`; `gx`: `[N, C, S]`, accumulated.
///
/// # Errors
/// As [`prelu_forward`].
pub fn prelu_backward_input(
    dev: &Device,
    channels: usize,
    inner: usize,
    w: &[f32],
    x: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    let n = batch(channels, inner, w.len(), x)?;
    check_len(Buffer::Gradient, x.len(), gy.len())?;
    check_len(Buffer::Gradient, x.len(), gx.len())?;
    let (gxb, wb) = (dev.storage_with("gx", gx)?, dev.storage_with("w", w)?);
    let (gyb, xb) = (dev.storage_with("gy", gy)?, dev.storage_with("x", x)?);
    let spec = PreluSpec {
        kernel: Kernel::PreluBackwardInput,
        g: geom(channels, inner, w.len()),
        w: 0,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &wb, &gyb, &xb], n);
    submit(dev, &[&pass], "running PReLU's input gradient")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::activation::prelu_backward_weight`]: `gw[c] += sum gy x` over channel
/// `c`'s elements (all, for one shared weight) where `x <= 0`.
///
/// - `x`, `gy`: `[N, C, S]`; `gw`: `[C]` or `[1]`, accumulated.
///
/// # Errors
/// As [`prelu_forward`].
pub fn prelu_backward_weight(
    dev: &Device,
    channels: usize,
    inner: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) -> Result<()> {
    let n = batch(channels, inner, gw.len(), x)?;
    check_len(Buffer::Gradient, x.len(), gy.len())?;
    let (xb, gwb, gyb) = (
        dev.storage_with("x", x)?,
        dev.storage_with("gw", gw)?,
        dev.storage_with("gy", gy)?,
    );
    let spec = PreluSpec {
        kernel: Kernel::PreluBackwardWeight,
        g: geom(channels, inner, gw.len()),
        w: 0,
    };
    let pass = Pass::new(dev, spec, &[&xb, &gwb, &gyb], n);
    submit(dev, &[&pass], "running PReLU's weight gradient")?;
    gw.copy_from_slice(&dev.read::<f32>(&gwb, 0, gw.len())?);
    Ok(())
}
