//! Upsampling on the GPU (`torchlet::ops::upsample`): forward and input gradient
//! (`upsample_forward.wgsl`, `upsample_backward_input.wgsl`) over an [`UpsampleGeom`], nearest
//! or bilinear. The backward is a gather (WGSL has no float atomics): each input element sums
//! the output positions whose taps read it. The host wrappers mirror the core's functions for
//! tests.

use torchlet::layer::UpsampleMode;
use torchlet::ops::upsample::UpsampleGeom;
use torchlet::Buffer;

use super::{bytes, check_len, submit, w32, Dispatch, Pass};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Upsample` of `upsample_forward.wgsl` and `upsample_backward_input.wgsl`.
    pub(crate) struct Upsample {
        c: u32, ih: u32, iw: u32, oh: u32,
        ow: u32, rh: f32, rw: f32, bilinear: u32,
        align: u32, total: u32, _pad0: u32, _pad1: u32,
    }
}

/// An upsampling pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct UpsampleSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: UpsampleGeom,
}

impl Dispatch for UpsampleSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let [h, w] = if self.kernel == Kernel::UpsampleForward {
            self.g.output
        } else {
            self.g.input
        };
        n * self.g.c * h * w
    }

    fn uniform(&self, _n: usize, total: u32) -> Vec<u8> {
        let g = &self.g;
        bytes(Upsample {
            c: w32(g.c),
            ih: w32(g.input[0]),
            iw: w32(g.input[1]),
            oh: w32(g.output[0]),
            ow: w32(g.output[1]),
            rh: g.ratio[0],
            rw: g.ratio[1],
            bilinear: u32::from(g.mode == UpsampleMode::Bilinear),
            align: u32::from(g.align_corners),
            total,
            ..Upsample::default()
        })
    }
}

/// GPU [`torchlet::ops::upsample::upsample_forward`].
///
/// - `x`: `[N, C, H, W]`; `y`: `[N, C, oH, oW]`, overwritten.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for a buffer length mismatch; wgpu errors.
pub fn upsample_forward(dev: &Device, g: &UpsampleGeom, x: &[f32], y: &mut [f32]) -> Result<()> {
    let plane = g.c * g.input[0] * g.input[1];
    let n = x.len() / plane.max(1);
    check_len(Buffer::Input, n * plane, x.len())?;
    check_len(Buffer::Output, n * g.c * g.output[0] * g.output[1], y.len())?;
    let (xb, yb) = (dev.storage_with("x", x)?, dev.storage("y", y.len())?);
    let spec = UpsampleSpec {
        kernel: Kernel::UpsampleForward,
        g: *g,
    };
    let pass = Pass::new(dev, spec, &[&yb, &xb], n);
    submit(dev, &[&pass], "running upsample_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::upsample::upsample_backward_input`].
///
/// - `gy`: `[N, C, oH, oW]`; `gx`: `[N, C, H, W]`, accumulated.
///
/// # Errors
/// As [`upsample_forward`].
pub fn upsample_backward_input(dev: &Device, g: &UpsampleGeom, gy: &[f32], gx: &mut [f32]) -> Result<()> {
    let plane = g.c * g.input[0] * g.input[1];
    let n = gx.len() / plane.max(1);
    check_len(Buffer::Gradient, n * plane, gx.len())?;
    check_len(Buffer::Gradient, n * g.c * g.output[0] * g.output[1], gy.len())?;
    let (gxb, gyb) = (dev.storage_with("gx", gx)?, dev.storage_with("gy", gy)?);
    let spec = UpsampleSpec {
        kernel: Kernel::UpsampleBackwardInput,
        g: *g,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &gyb], n);
    submit(dev, &[&pass], "running upsample_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}
