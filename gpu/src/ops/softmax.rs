//! Softmax and log-softmax on the GPU (`torchlet::ops::softmax`): one invocation per
//! `(outer, inner)` row of a sample viewed as `[outer, axis, inner]` ([`SoftmaxGeom`]), forward
//! and input gradient (which reads the forward output).

use torchlet::ops::softmax::SoftmaxGeom;
use torchlet::Buffer;

use super::{bytes, check_len, saved_backward, unary, w32, Dispatch};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Softmax` of the `softmax_*.wgsl` and `log_softmax_*.wgsl` shaders.
    pub(crate) struct Softmax {
        outer: u32, axis: u32, inner: u32, x_off: u32, y_off: u32, aux_off: u32, total: u32, _pad0: u32,
    }
}

/// A softmax or log-softmax pass (forward or input gradient) over `g.axis` of each sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SoftmaxSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: SoftmaxGeom,
}

impl Dispatch for SoftmaxSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        n * self.g.outer * self.g.inner
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        bytes(Softmax {
            outer: w32(n * self.g.outer),
            axis: w32(self.g.axis),
            inner: w32(self.g.inner),
            total,
            ..Softmax::default()
        })
    }
}

fn softmax_spec(kernel: Kernel, outer: usize, axis: usize, inner: usize) -> super::Spec {
    SoftmaxSpec {
        kernel,
        g: SoftmaxGeom { outer, axis, inner },
    }
    .into()
}

/// GPU [`torchlet::ops::softmax::softmax_forward`]: `y = exp(x - max) / Σ exp(x - max)` along
/// `axis`.
///
/// - `x`, `y`: `[outer, axis, inner]` (the batch folded into `outer`); `y` overwritten.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) with a buffer length mismatch; wgpu errors.
pub fn softmax_forward(dev: &Device, outer: usize, axis: usize, inner: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Input, outer * axis * inner, x.len())?;
    check_len(Buffer::Output, x.len(), y.len())?;
    unary(
        dev,
        softmax_spec(Kernel::SoftmaxForward, outer, axis, inner),
        1,
        x,
        y,
        false,
    )
}

/// GPU [`torchlet::ops::softmax::softmax_backward_input`]: `gx += y · (gy - Σ_axis gy · y)`.
///
/// - `y` (the forward output), `gy`, `gx`: `[outer, axis, inner]`; `gx` accumulated.
///
/// # Errors
/// As [`softmax_forward`].
pub fn softmax_backward_input(
    dev: &Device,
    outer: usize,
    axis: usize,
    inner: usize,
    y: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Output, outer * axis * inner, y.len())?;
    check_len(Buffer::Gradient, y.len(), gy.len())?;
    check_len(Buffer::Gradient, y.len(), gx.len())?;
    let spec = softmax_spec(Kernel::SoftmaxBackwardInput, outer, axis, inner);
    saved_backward(dev, spec, 1, y, gy, gx)
}

/// GPU [`torchlet::ops::softmax::log_softmax_forward`]: `y = x - max - log Σ exp(x - max)`
/// along `axis`.
///
/// - `x`, `y`: `[outer, axis, inner]`; `y` overwritten.
///
/// # Errors
/// As [`softmax_forward`].
pub fn log_softmax_forward(
    dev: &Device,
    outer: usize,
    axis: usize,
    inner: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, outer * axis * inner, x.len())?;
    check_len(Buffer::Output, x.len(), y.len())?;
    unary(
        dev,
        softmax_spec(Kernel::LogSoftmaxForward, outer, axis, inner),
        1,
        x,
        y,
        false,
    )
}

/// GPU [`torchlet::ops::softmax::log_softmax_backward_input`]: `gx += gy - exp(y) · Σ_axis gy`.
///
/// - `y` (the forward output), `gy`, `gx`: `[outer, axis, inner]`; `gx` accumulated.
///
/// # Errors
/// As [`softmax_forward`].
pub fn log_softmax_backward_input(
    dev: &Device,
    outer: usize,
    axis: usize,
    inner: usize,
    y: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Output, outer * axis * inner, y.len())?;
    check_len(Buffer::Gradient, y.len(), gy.len())?;
    check_len(Buffer::Gradient, y.len(), gx.len())?;
    let spec = softmax_spec(Kernel::LogSoftmaxBackwardInput, outer, axis, inner);
    saved_backward(dev, spec, 1, y, gy, gx)
}
