//! Channel shuffle on the GPU (`torchlet::ops::shuffle`): forward and input gradient
//! (`channel_shuffle_forward.wgsl`, `channel_shuffle_backward_input.wgsl`), each a gather of
//! one element per invocation over a [`ShuffleGeom`]. The host wrappers mirror the core's
//! functions for tests.

use torchlet::ops::shuffle::ShuffleGeom;
use torchlet::Buffer;

use super::{bytes, check_len, submit, w32, Dispatch, Pass};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Shuffle` of `channel_shuffle_forward.wgsl` and `channel_shuffle_backward_input.wgsl`.
    pub(crate) struct Shuffle {
        c: u32, groups: u32, plane: u32, total: u32,
    }
}

/// A channel-shuffle pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ShuffleSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: ShuffleGeom,
}

impl Dispatch for ShuffleSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        n * self.g.c * self.g.plane
    }

    fn uniform(&self, _n: usize, total: u32) -> Vec<u8> {
        bytes(Shuffle {
            c: w32(self.g.c),
            groups: w32(self.g.groups),
            plane: w32(self.g.plane),
            total,
        })
    }
}

fn run(dev: &Device, kernel: Kernel, g: &ShuffleGeom, src: &[f32], dst: &mut [f32], what: &'static str) -> Result<()> {
    let n = src.len() / (g.c * g.plane).max(1);
    check_len(Buffer::Input, n * g.c * g.plane, src.len())?;
    check_len(Buffer::Output, src.len(), dst.len())?;
    let sb = dev.storage_with("src", src)?;
    let db = dev.storage_with("dst", dst)?;
    let pass = Pass::new(dev, ShuffleSpec { kernel, g: *g }, &[&db, &sb], n);
    submit(dev, &[&pass], what)?;
    dst.copy_from_slice(&dev.read::<f32>(&db, 0, dst.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::shuffle::channel_shuffle_forward`]:
/// `y[n, j · groups + i] = x[n, i · (C / groups) + j]`.
///
/// - `x`, `y`: `[N, C, *spatial]` (`y` overwritten).
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for a buffer length mismatch; wgpu errors.
pub fn channel_shuffle_forward(dev: &Device, g: &ShuffleGeom, x: &[f32], y: &mut [f32]) -> Result<()> {
    run(
        dev,
        Kernel::ChannelShuffleForward,
        g,
        x,
        y,
        "running channel_shuffle_forward",
    )
}

/// GPU [`torchlet::ops::shuffle::channel_shuffle_backward_input`]:
/// `gx[n, i · (C / groups) + j] += gy[n, j · groups + i]`.
///
/// - `gy`, `gx`: `[N, C, *spatial]` (`gx` accumulated).
///
/// # Errors
/// As [`channel_shuffle_forward`].
pub fn channel_shuffle_backward_input(dev: &Device, g: &ShuffleGeom, gy: &[f32], gx: &mut [f32]) -> Result<()> {
    run(
        dev,
        Kernel::ChannelShuffleBackwardInput,
        g,
        gy,
        gx,
        "running channel_shuffle_backward_input",
    )
}
