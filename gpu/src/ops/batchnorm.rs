//! BatchNorm on the GPU (`torchlet::ops::batchnorm`): the training forward (a counting
//! dispatch, then per-channel batch statistics and the running-statistics update), the eval
//! forward (the running statistics' affine map) and both backward passes, one workgroup of
//! 256 per channel for the reductions.
//!
//! The batch rule ("more than 1 value per channel" for batch statistics) is the core's
//! [`BnGeom::check_batch`], here and in the network.

use torchlet::ops::batchnorm::{batch_norm_state_len, BnGeom};
use torchlet::Buffer;

use super::{bytes, check_len, concat, read_weight_bias, submit, w32, Dispatch, Pass, Spec};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Bn` of the `batch_norm_*.wgsl` shaders.
    pub(crate) struct Bn {
        n: u32, c: u32, s: u32, flags: u32, x_off: u32, w_off: u32, b_off: u32, y_off: u32,
        state_off: u32, saved_off: u32, total: u32, _pad0: u32, eps: f32, momentum: f32, _pad1: u32, _pad2: u32,
    }
}

/// `batch_norm_*.wgsl` flag: `weight` and `bias` exist.
const AFFINE: u32 = 1;
/// Flag: running statistics are updated (training) or read (eval).
const TRACK: u32 = 2;
/// Flag: `momentum` is `None` (cumulative average, `f = 1 / num_batches_tracked`).
const CUMULATIVE: u32 = 4;
/// Flag: the counting dispatch of `batch_norm_forward_train.wgsl`.
const COUNT: u32 = 8;
/// Flag: the backward pass writes an input gradient.
const HAS_GX: u32 = 16;
/// Invocations per workgroup of the per-channel BatchNorm kernels.
const BN_WORKGROUP: usize = 256;

/// A BatchNorm pass (`g.n` ignored). `w`, `b`: offsets of the weight (and its gradient) and
/// bias; `state`: the running statistics in the state buffer; `saved`: the saved
/// `[mean[C], invstd[C]]` in the same buffer; `count`: the counting dispatch of the training
/// forward; `has_gx`: whether the backward writes an input gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BnSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: BnGeom,
    pub(crate) w: usize,
    pub(crate) b: usize,
    pub(crate) state: usize,
    pub(crate) saved: usize,
    pub(crate) count: bool,
    pub(crate) has_gx: bool,
}

impl Dispatch for BnSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        match self.kernel {
            Kernel::BatchNormForwardEval => n * self.g.c * self.g.spatial,
            _ if self.count => BN_WORKGROUP,
            _ => self.g.c * BN_WORKGROUP,
        }
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let g = &self.g;
        let mut flags = 0;
        for (on, bit) in [
            (g.affine, AFFINE),
            (g.track_running_stats, TRACK),
            (g.momentum.is_none(), CUMULATIVE),
            (self.count, COUNT),
            (self.has_gx, HAS_GX),
        ] {
            if on {
                flags |= bit;
            }
        }
        bytes(Bn {
            n: w32(n),
            c: w32(g.c),
            s: w32(g.spatial),
            flags,
            w_off: w32(self.w),
            b_off: w32(self.b),
            state_off: w32(self.state),
            saved_off: w32(self.saved),
            total,
            eps: g.eps,
            momentum: g.momentum.unwrap_or(0.0),
            ..Bn::default()
        })
    }
}

/// Checks what the core's planner guarantees before a BatchNorm kernel runs: the core's batch
/// rule ([`BnGeom::check_batch`]: `N * S >= 2` values per channel for batch statistics), and
/// the state and parameter lengths.
fn check_bn(g: &BnGeom, batch_stats: bool, weight: usize, bias: usize, state: Option<usize>) -> Result<()> {
    g.check_batch(g.n, batch_stats, usize::MAX, "BatchNorm")?;
    let params = if g.affine { g.c } else { 0 };
    check_len(Buffer::Params, params, weight)?;
    check_len(Buffer::Params, params, bias)?;
    if let Some(found) = state {
        let expected = if g.track_running_stats {
            batch_norm_state_len(g.c)
        } else {
            0
        };
        check_len(Buffer::State, expected, found)?;
    }
    Ok(())
}

fn bn_spec(kernel: Kernel, g: &BnGeom, c_w: usize, state: usize, saved: usize, count: bool) -> Spec {
    BnSpec {
        kernel,
        g: *g,
        w: 0,
        b: c_w,
        state,
        saved,
        count,
        has_gx: true,
    }
    .into()
}

/// GPU [`torchlet::ops::batchnorm::batch_norm_forward_train`]: normalises each channel with
/// the batch's mean and biased variance, and updates the running statistics (PyTorch's
/// momentum, unbiased variance, `num_batches_tracked += 1`) when `g.track_running_stats`.
///
/// - `x`: `[N, C, S]`; `weight`, `bias`: `[C]` each, empty when `!g.affine`;
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked]`, updated, or empty
///   when `!g.track_running_stats`;
/// - `saved`: `[mean[C], invstd[C]]`, overwritten; `y`: `[N, C, S]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch or fewer than 2 values per channel; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_train(
    dev: &Device,
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    state: &mut [f32],
    saved: &mut [f32],
    y: &mut [f32],
) -> Result<()> {
    check_bn(g, true, weight.len(), bias.len(), Some(state.len()))?;
    let len = g.n * g.c * g.spatial;
    check_len(Buffer::Input, len, x.len())?;
    check_len(Buffer::Output, len, y.len())?;
    check_len(Buffer::Arena, 2 * g.c, saved.len())?;
    let xb = dev.storage_with("x", x)?;
    let pb = dev.storage_with("params", &concat(weight, bias))?;
    let yb = dev.storage("y", len)?;
    let sb = dev.storage_with("state and saved statistics", &concat(state, saved))?;
    let bufs = [&xb, &pb, &yb, &sb];
    let count = Pass::new(
        dev,
        bn_spec(Kernel::BatchNormForwardTrain, g, weight.len(), 0, state.len(), true),
        &bufs,
        g.n,
    );
    let stats = Pass::new(
        dev,
        bn_spec(Kernel::BatchNormForwardTrain, g, weight.len(), 0, state.len(), false),
        &bufs,
        g.n,
    );
    submit(dev, &[&count, &stats], "running batch_norm_forward_train")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, len)?);
    let out = dev.read::<f32>(&sb, 0, state.len() + saved.len())?;
    let (s, sv) = out.split_at(state.len());
    state.copy_from_slice(s);
    saved.copy_from_slice(sv);
    Ok(())
}

/// GPU [`torchlet::ops::batchnorm::batch_norm_forward_eval`]: the running statistics'
/// affine map, `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`.
///
/// - `x`: `[N, C, S]`; `weight`, `bias`: `[C]` each, empty when `!g.affine`;
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked]`; `y`: `[N, C, S]`,
///   overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch or `!g.track_running_stats` (no running
/// statistics: the training forward applies); wgpu errors.
pub fn batch_norm_forward_eval(
    dev: &Device,
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    state: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_eval(g)?;
    check_bn(g, false, weight.len(), bias.len(), Some(state.len()))?;
    let len = g.n * g.c * g.spatial;
    check_len(Buffer::Input, len, x.len())?;
    check_len(Buffer::Output, len, y.len())?;
    let xb = dev.storage_with("x", x)?;
    let pb = dev.storage_with("params", &concat(weight, bias))?;
    let yb = dev.storage("y", len)?;
    let sb = dev.storage_with("state", state)?;
    let pass = Pass::new(
        dev,
        bn_spec(Kernel::BatchNormForwardEval, g, weight.len(), 0, 0, false),
        &[&xb, &pb, &yb, &sb],
        g.n,
    );
    submit(dev, &[&pass], "running batch_norm_forward_eval")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, len)?);
    Ok(())
}

fn check_eval(g: &BnGeom) -> Result<()> {
    if g.track_running_stats {
        Ok(())
    } else {
        Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "track_running_stats",
            expected: "true for the eval kernels (without running statistics BatchNorm uses the training ones)",
        }))
    }
}

/// Runs a BatchNorm backward kernel over `aux` (the saved statistics or the running ones).
#[allow(clippy::too_many_arguments)]
fn bn_backward(
    dev: &Device,
    kernel: Kernel,
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    aux: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gweight: &mut [f32],
    gbias: &mut [f32],
) -> Result<()> {
    let len = g.n * g.c * g.spatial;
    check_len(Buffer::Input, len, x.len())?;
    check_len(Buffer::Gradient, len, gy.len())?;
    check_len(Buffer::Gradient, len, gx.len())?;
    check_len(Buffer::Grads, weight.len(), gweight.len())?;
    check_len(Buffer::Grads, weight.len(), gbias.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let pb = dev.storage_with("params", weight)?;
    let gyb = dev.storage_with("gy", gy)?;
    let ab = dev.storage_with("statistics", aux)?;
    let xb = dev.storage_with("x", x)?;
    let gb = dev.storage_with("grads", &concat(gweight, gbias))?;
    let pass = Pass::new(
        dev,
        bn_spec(kernel, g, weight.len(), 0, 0, false),
        &[&gxb, &pb, &gyb, &ab, &xb, &gb],
        g.n,
    );
    submit(dev, &[&pass], "running a BatchNorm backward kernel")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, len)?);
    read_weight_bias(dev, &gb, gweight, gbias)
}

/// GPU [`torchlet::ops::batchnorm::batch_norm_backward_train`]: the gradients through the
/// batch statistics, `gx += weight * invstd * (gy - mean(gy) - xhat * mean(gy * xhat))`,
/// `gweight += sum gy * xhat`, `gbias += sum gy` per channel.
///
/// - `x`: the forward input `[N, C, S]`; `weight`: `[C]`, empty when `!g.affine`;
/// - `saved`: `[mean[C], invstd[C]]` from the training forward; `gy`: `[N, C, S]`;
/// - `gx`: `[N, C, S]`, `gweight`, `gbias`: `[C]` each (empty when `!g.affine`), accumulated.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch or fewer than 2 values per channel; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_train(
    dev: &Device,
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    saved: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gweight: &mut [f32],
    gbias: &mut [f32],
) -> Result<()> {
    check_bn(g, true, weight.len(), gbias.len(), None)?;
    check_len(Buffer::Arena, 2 * g.c, saved.len())?;
    bn_backward(
        dev,
        Kernel::BatchNormBackwardTrain,
        g,
        x,
        weight,
        saved,
        gy,
        gx,
        gweight,
        gbias,
    )
}

/// GPU [`torchlet::ops::batchnorm::batch_norm_backward_eval`]: the running statistics are
/// constants, `gx += gy * weight * invstd`, `gweight += sum gy * xhat`, `gbias += sum gy`.
///
/// - `x`: the forward input `[N, C, S]`; `weight`: `[C]`, empty when `!g.affine`;
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked]`; `gy`: `[N, C, S]`;
/// - `gx`: `[N, C, S]`, `gweight`, `gbias`: `[C]` each (empty when `!g.affine`), accumulated.
///
/// # Errors
/// As [`batch_norm_forward_eval`].
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_eval(
    dev: &Device,
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    state: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gweight: &mut [f32],
    gbias: &mut [f32],
) -> Result<()> {
    check_eval(g)?;
    check_bn(g, false, weight.len(), gbias.len(), Some(state.len()))?;
    bn_backward(
        dev,
        Kernel::BatchNormBackwardEval,
        g,
        x,
        weight,
        state,
        gy,
        gx,
        gweight,
        gbias,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_kernels_run_one_workgroup_per_channel() {
        let g = BnGeom {
            n: 3,
            c: 5,
            spatial: 7,
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        };
        let spec = |kernel, count| BnSpec {
            kernel,
            g,
            w: 0,
            b: 5,
            state: 0,
            saved: 11,
            count,
            has_gx: true,
        };
        assert_eq!(spec(Kernel::BatchNormForwardTrain, false).invocations(3), 5 * 256);
        assert_eq!(spec(Kernel::BatchNormForwardTrain, true).invocations(3), 256);
        assert_eq!(spec(Kernel::BatchNormBackwardTrain, false).invocations(3), 5 * 256);
        assert_eq!(spec(Kernel::BatchNormForwardEval, false).invocations(2), 2 * 5 * 7);
        let u: Bn = bytemuck::pod_read_unaligned(&spec(Kernel::BatchNormForwardTrain, true).uniform(3, 0));
        assert_eq!(u.flags, AFFINE | TRACK | COUNT | HAS_GX);
        assert_eq!(u.momentum, 0.1);
    }
}
