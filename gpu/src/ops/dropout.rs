//! Dropout and channel dropout (`Dropout1d/2d/3d`) on the GPU (`torchlet::ops::dropout`): the
//! forward draws its mask on the GPU from a
//! counter-based hash of a seed and the element index (`dropout_forward.wgsl`), not from the
//! core's sequential [`torchlet::Rng`]: the same distribution, other elements dropped. The
//! backward multiplies by the saved mask. In eval mode the network runs a copy instead
//! (`reshape.rs`).

use torchlet::Buffer;

use super::{bytes, check_len, submit, Dispatch, Pass};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Dropout` of `dropout_forward.wgsl` and `dropout_backward_input.wgsl`.
    pub(crate) struct Dropout {
        x_off: u32, y_off: u32, aux_off: u32, total: u32, p: f32, keep: f32, seed_lo: u32, seed_hi: u32,
    }
}

uniform! {
    /// `struct ChannelDropout` of `channel_dropout_forward.wgsl`.
    pub(crate) struct ChannelDropout {
        x_off: u32, y_off: u32, aux_off: u32, total: u32, p: f32, keep: f32, seed_lo: u32, seed_hi: u32,
        plane: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    }
}

/// A Dropout pass over `per_sample` elements per sample with probability `p`; `seed` picks
/// the mask. `plane` is the channel plane of a channel dropout
/// ([`Kernel::ChannelDropoutForward`]; 1 otherwise).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DropoutSpec {
    pub(crate) kernel: Kernel,
    pub(crate) per_sample: usize,
    pub(crate) plane: usize,
    pub(crate) p: f32,
    pub(crate) seed: u64,
}

impl Dispatch for DropoutSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        n * self.per_sample
    }

    fn uniform(&self, _n: usize, total: u32) -> Vec<u8> {
        let p = self.p;
        let d = Dropout {
            total,
            p,
            keep: if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 },
            seed_lo: self.seed as u32,
            seed_hi: (self.seed >> 32) as u32,
            ..Dropout::default()
        };
        if self.kernel != Kernel::ChannelDropoutForward {
            return bytes(d);
        }
        bytes(ChannelDropout {
            total,
            p,
            keep: d.keep,
            seed_lo: d.seed_lo,
            seed_hi: d.seed_hi,
            plane: self.plane as u32,
            ..ChannelDropout::default()
        })
    }
}

/// Checks a dropout probability as the planner does: in `[0, 1]`.
fn check_dropout(p: f32) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "p",
            expected: "a dropout probability in [0, 1]",
        }))
    }
}

/// GPU [`torchlet::ops::dropout::dropout_forward`]: `mask[i] = 0` with probability `p`, else
/// `1 / (1 - p)`; `y = x * mask`.
///
/// The mask is drawn on the GPU from `seed` and the element index (a counter-based hash), not
/// from the core's [`torchlet::Rng`]: the same distribution, other elements dropped, and the
/// same `seed` always gives the same mask.
///
/// - `x`: `[*]`; `y`, `mask`: `[*]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch or `p` outside `[0, 1]`; wgpu errors.
pub fn dropout_forward(dev: &Device, p: f32, seed: u64, x: &[f32], y: &mut [f32], mask: &mut [f32]) -> Result<()> {
    check_dropout(p)?;
    check_len(Buffer::Output, x.len(), y.len())?;
    check_len(Buffer::Arena, x.len(), mask.len())?;
    let xb = dev.storage_with("x", x)?;
    let mb = dev.storage("mask", x.len())?;
    let yb = dev.storage("y", x.len())?;
    let spec = DropoutSpec {
        kernel: Kernel::DropoutForward,
        per_sample: x.len(),
        plane: 1,
        p,
        seed,
    };
    let pass = Pass::new(dev, spec, &[&xb, &mb, &yb], 1);
    submit(dev, &[&pass], "running dropout_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    mask.copy_from_slice(&dev.read::<f32>(&mb, 0, mask.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::dropout::channel_dropout_forward`]: each plane of `plane` elements
/// (a channel of `[N, C, *spatial]`) is zeroed with probability `p`, else scaled by
/// `1 / (1 - p)`; `mask` holds every element's factor, `y = x * mask`.
///
/// The draw of a plane comes from `seed` and the plane's index (the counter-based hash of
/// [`dropout_forward`]), not from the core's [`torchlet::Rng`].
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch, `plane` 0 or not dividing the length, or `p`
/// outside `[0, 1]`; wgpu errors.
pub fn channel_dropout_forward(
    dev: &Device,
    p: f32,
    plane: usize,
    seed: u64,
    x: &[f32],
    y: &mut [f32],
    mask: &mut [f32],
) -> Result<()> {
    check_dropout(p)?;
    check_len(Buffer::Output, x.len(), y.len())?;
    check_len(Buffer::Arena, x.len(), mask.len())?;
    if plane == 0 || !x.len().is_multiple_of(plane) {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "plane",
            expected: "a positive channel plane that divides the length",
        }));
    }
    let xb = dev.storage_with("x", x)?;
    let mb = dev.storage("mask", x.len())?;
    let yb = dev.storage("y", x.len())?;
    let spec = DropoutSpec {
        kernel: Kernel::ChannelDropoutForward,
        per_sample: x.len(),
        plane,
        p,
        seed,
    };
    let pass = Pass::new(dev, spec, &[&xb, &mb, &yb], 1);
    submit(dev, &[&pass], "running channel_dropout_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    mask.copy_from_slice(&dev.read::<f32>(&mb, 0, mask.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::dropout::dropout_backward_input`]: `gx += gy * mask`.
///
/// - `mask`: the forward's factors `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
pub fn dropout_backward_input(dev: &Device, mask: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    check_len(Buffer::Gradient, mask.len(), gy.len())?;
    check_len(Buffer::Gradient, mask.len(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let mb = dev.storage_with("mask", mask)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = DropoutSpec {
        kernel: Kernel::DropoutBackwardInput,
        per_sample: mask.len(),
        plane: 1,
        p: 0.0,
        seed: 0,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &mb, &gyb], 1);
    submit(dev, &[&pass], "running dropout_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}
