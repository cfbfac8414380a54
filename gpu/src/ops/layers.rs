//! The dispatches of BatchNorm, Dropout, average and adaptive pooling and the two merges
//! (residual sum, channel concatenation), and their host-slice wrappers, re-exported from
//! [`crate::ops`] with the core kernels' names and signatures.
//!
//! [`BlockSpec`] is one [`Spec::Block`] dispatch: the geometry (batch size left open) and where
//! each tensor sits in its buffer, in the uniform layouts the shaders declare. The wrappers
//! upload, run one submission and read back, to test each shader against the core one op at a
//! time; they allocate per call, so do not train with them ([`crate::GpuNetwork`] does that).
//!
//! Where the GPU cannot reproduce the CPU bit for bit by design, the wrapper says so: Dropout
//! draws its mask from a counter-based hash of a seed and the element index
//! (`dropout_forward.wgsl`), not from the core's sequential [`torchlet::Rng`].

use torchlet::ops::batchnorm::{batch_norm_state_len, BnGeom};
use torchlet::ops::geom::PoolGeom;
use torchlet::Buffer;

use super::{check_len, concat, submit, w32, Pass, Spec};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Kernel;

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

/// One dispatch of the kernels of this module. Element offsets are in floats; counts that
/// scale with the batch are per sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BlockSpec {
    /// A BatchNorm pass (`g.n` ignored). `x`, `w`, `b`, `y`: offsets of the input (and input
    /// gradient), weight (and its gradient), bias, output (and output gradient); `state`: the
    /// running statistics in the state buffer; `saved`: the saved `[mean[C], invstd[C]]` in
    /// the same buffer; `count`: the counting dispatch of the training forward; `has_gx`:
    /// whether the backward writes an input gradient.
    BatchNorm {
        kernel: Kernel,
        g: BnGeom,
        x: usize,
        w: usize,
        b: usize,
        y: usize,
        state: usize,
        saved: usize,
        count: bool,
        has_gx: bool,
    },
    /// A Dropout pass over `per_sample` elements per sample; `mask` at `aux` of its buffer;
    /// `seed` picks the mask.
    Dropout {
        kernel: Kernel,
        per_sample: usize,
        x: usize,
        y: usize,
        aux: usize,
        p: f32,
        seed: u64,
    },
    /// An average-pooling pass (`g.n` and `g.dilation` ignored).
    AvgPool {
        kernel: Kernel,
        g: PoolGeom,
        x: usize,
        y: usize,
    },
    /// An adaptive pooling pass (average or max) of `c` channels from `input` to `output`.
    Adaptive {
        kernel: Kernel,
        c: usize,
        input: [usize; 3],
        output: [usize; 3],
        x: usize,
        y: usize,
    },
    /// A merge pass: `a`, `b` the per-sample lengths of the inputs (for Add both are the
    /// sample length); `second`: the backward dispatch for the second input; `x`, `x2`: the
    /// inputs' (or the gradient's) offsets, `y` the output's.
    Merge {
        kernel: Kernel,
        a: usize,
        b: usize,
        second: bool,
        x: usize,
        x2: usize,
        y: usize,
    },
}

impl BlockSpec {
    pub(crate) fn kernel(&self) -> Kernel {
        match *self {
            BlockSpec::BatchNorm { kernel, .. }
            | BlockSpec::Dropout { kernel, .. }
            | BlockSpec::AvgPool { kernel, .. }
            | BlockSpec::Adaptive { kernel, .. }
            | BlockSpec::Merge { kernel, .. } => kernel,
        }
    }

    /// Invocations for a batch of `n`.
    pub(crate) fn invocations(&self, n: usize) -> usize {
        match *self {
            BlockSpec::BatchNorm { kernel, g, count, .. } => match kernel {
                Kernel::BatchNormForwardEval => n * g.c * g.spatial,
                _ if count => BN_WORKGROUP,
                _ => g.c * BN_WORKGROUP,
            },
            BlockSpec::Dropout { per_sample, .. } => n * per_sample,
            BlockSpec::AvgPool { kernel, g, .. } => match kernel {
                Kernel::AvgPoolForward => n * g.c * g.out_spatial(),
                _ => n * g.c * g.in_spatial(),
            },
            BlockSpec::Adaptive {
                kernel,
                c,
                input,
                output,
                ..
            } => match kernel {
                Kernel::AdaptiveAvgPoolForward | Kernel::AdaptiveMaxPoolForward => {
                    n * c * output.iter().product::<usize>()
                }
                _ => n * c * input.iter().product::<usize>(),
            },
            BlockSpec::Merge {
                kernel, a, b, second, ..
            } => match kernel {
                Kernel::ConcatForward => n * (a + b),
                Kernel::ConcatBackwardInput if second => n * b,
                _ => n * a,
            },
        }
    }

    /// The uniform words for a batch of `n` (the caller pads them to 16 bytes).
    pub(crate) fn words(&self, n: usize) -> Vec<u32> {
        let total = w32(self.invocations(n));
        match *self {
            BlockSpec::BatchNorm {
                g,
                x,
                w,
                b,
                y,
                state,
                saved,
                count,
                has_gx,
                ..
            } => {
                let mut flags = 0;
                for (on, bit) in [
                    (g.affine, AFFINE),
                    (g.track_running_stats, TRACK),
                    (g.momentum.is_none(), CUMULATIVE),
                    (count, COUNT),
                    (has_gx, HAS_GX),
                ] {
                    if on {
                        flags |= bit;
                    }
                }
                vec![
                    w32(n),
                    w32(g.c),
                    w32(g.spatial),
                    flags,
                    w32(x),
                    w32(w),
                    w32(b),
                    w32(y),
                    w32(state),
                    w32(saved),
                    total,
                    0,
                    g.eps.to_bits(),
                    g.momentum.unwrap_or(0.0).to_bits(),
                ]
            }
            BlockSpec::Dropout { x, y, aux, p, seed, .. } => {
                let keep = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0f32 };
                vec![
                    w32(x),
                    w32(y),
                    w32(aux),
                    total,
                    p.to_bits(),
                    keep.to_bits(),
                    seed as u32,
                    (seed >> 32) as u32,
                ]
            }
            BlockSpec::AvgPool { g, x, y, .. } => {
                let mut v = vec![w32(n), w32(g.c)];
                v.extend(g.input.map(w32));
                v.extend(g.output.map(w32));
                v.extend(g.kernel.map(w32));
                v.extend(g.stride.map(w32));
                v.extend(g.pad.map(w32));
                v.extend([u32::from(g.count_include_pad), w32(x), w32(y), total]);
                v
            }
            BlockSpec::Adaptive {
                c, input, output, x, y, ..
            } => {
                let mut v = vec![w32(n), w32(c)];
                v.extend(input.map(w32));
                v.extend(output.map(w32));
                v.extend([w32(x), w32(y), total]);
                v
            }
            BlockSpec::Merge {
                a, b, second, x, x2, y, ..
            } => vec![w32(a), w32(b), u32::from(second), w32(x), w32(x2), w32(y), total],
        }
    }
}

/// Checks what the core's planner guarantees before a BatchNorm kernel runs: `N * S >= 2`
/// values per channel for batch statistics (PyTorch: "Expected more than 1 value per channel
/// when training"), and the state and parameter lengths.
fn check_bn(g: &BnGeom, batch_stats: bool, weight: usize, bias: usize, state: Option<usize>) -> Result<()> {
    if batch_stats && g.n * g.spatial < 2 {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "batch",
            expected: "more than 1 value per channel (batch x spatial size) for batch statistics",
        }));
    }
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
    Spec::Block(BlockSpec::BatchNorm {
        kernel,
        g: *g,
        x: 0,
        w: 0,
        b: c_w,
        y: 0,
        state,
        saved,
        count,
        has_gx: true,
    })
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
    let out = dev.read::<f32>(&gb, 0, 2 * gweight.len())?;
    let (w_part, b_part) = out.split_at(gweight.len());
    gweight.copy_from_slice(w_part);
    gbias.copy_from_slice(b_part);
    Ok(())
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
    let spec = Spec::Block(BlockSpec::Dropout {
        kernel: Kernel::DropoutForward,
        per_sample: x.len(),
        x: 0,
        y: 0,
        aux: 0,
        p,
        seed,
    });
    let pass = Pass::new(dev, spec, &[&xb, &mb, &yb], 1);
    submit(dev, &[&pass], "running dropout_forward")?;
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
    let spec = Spec::Block(BlockSpec::Dropout {
        kernel: Kernel::DropoutBackwardInput,
        per_sample: mask.len(),
        x: 0,
        y: 0,
        aux: 0,
        p: 0.0,
        seed: 0,
    });
    let pass = Pass::new(dev, spec, &[&gxb, &mb, &gyb], 1);
    submit(dev, &[&pass], "running dropout_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::avg_pool_forward`], with the core's (PyTorch's) divisor rules
/// for `count_include_pad` and `ceil_mode` windows.
///
/// - `x`: `[N, C, D, H, W]`; `y`: `[N, C, oD, oH, oW]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
pub fn avg_pool_forward(dev: &Device, g: &PoolGeom, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Input, g.n * g.c * g.in_spatial(), x.len())?;
    check_len(Buffer::Output, g.n * g.c * g.out_spatial(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = Spec::Block(BlockSpec::AvgPool {
        kernel: Kernel::AvgPoolForward,
        g: *g,
        x: 0,
        y: 0,
    });
    let pass = Pass::new(dev, spec, &[&xb, &yb], g.n);
    submit(dev, &[&pass], "running avg_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::avg_pool_backward_input`]: every input position of a window
/// receives `gy / divisor`.
///
/// - `gy`: `[N, C, oD, oH, oW]`; `gx`: `[N, C, D, H, W]`, accumulated.
///
/// # Errors
/// As [`avg_pool_forward`].
pub fn avg_pool_backward_input(dev: &Device, g: &PoolGeom, gy: &[f32], gx: &mut [f32]) -> Result<()> {
    check_len(Buffer::Gradient, g.n * g.c * g.out_spatial(), gy.len())?;
    check_len(Buffer::Gradient, g.n * g.c * g.in_spatial(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = Spec::Block(BlockSpec::AvgPool {
        kernel: Kernel::AvgPoolBackwardInput,
        g: *g,
        x: 0,
        y: 0,
    });
    let pass = Pass::new(dev, spec, &[&gxb, &gyb], g.n);
    submit(dev, &[&pass], "running avg_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// Checks an adaptive pooling geometry: every output dim at least 1 and every input dim at
/// least 1 (the planner's rule), so every window holds at least one position.
fn check_adaptive(input: [usize; 3], output: [usize; 3]) -> Result<()> {
    if input.contains(&0) || output.contains(&0) {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "output_size",
            expected: "input and output sizes of at least 1",
        }));
    }
    Ok(())
}

fn adaptive_spec(kernel: Kernel, c: usize, input: [usize; 3], output: [usize; 3]) -> Spec {
    Spec::Block(BlockSpec::Adaptive {
        kernel,
        c,
        input,
        output,
        x: 0,
        y: 0,
    })
}

/// GPU [`torchlet::ops::pool::adaptive_avg_pool_forward`]: the mean over the window
/// `[floor(i * in / out), ceil((i + 1) * in / out))` in each dim.
///
/// - `x`: `[n, c, *input]`; `y`: `[n, c, *output]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch or an empty dim; wgpu errors.
pub fn adaptive_avg_pool_forward(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Input, n * c * input.iter().product::<usize>(), x.len())?;
    check_len(Buffer::Output, n * c * output.iter().product::<usize>(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = adaptive_spec(Kernel::AdaptiveAvgPoolForward, c, input, output);
    let pass = Pass::new(dev, spec, &[&xb, &yb], n);
    submit(dev, &[&pass], "running adaptive_avg_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::adaptive_avg_pool_backward_input`]: every position of a
/// window receives `gy / window size`.
///
/// - `gy`: `[n, c, *output]`; `gx`: `[n, c, *input]`, accumulated.
///
/// # Errors
/// As [`adaptive_avg_pool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn adaptive_avg_pool_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Gradient, n * c * output.iter().product::<usize>(), gy.len())?;
    check_len(Buffer::Gradient, n * c * input.iter().product::<usize>(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = adaptive_spec(Kernel::AdaptiveAvgPoolBackwardInput, c, input, output);
    let pass = Pass::new(dev, spec, &[&gxb, &gyb], n);
    submit(dev, &[&pass], "running adaptive_avg_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::adaptive_max_pool_forward`], with the argmax indices as plain
/// `u32` (the core stores them as `f32` bit patterns: compare with
/// [`torchlet::ops::pool::decode_index`]).
///
/// - `x`: `[n, c, *input]`; `y`, `indices`: `[n, c, *output]`, overwritten.
///
/// # Errors
/// As [`adaptive_avg_pool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn adaptive_max_pool_forward(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    x: &[f32],
    y: &mut [f32],
    indices: &mut [u32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Input, n * c * input.iter().product::<usize>(), x.len())?;
    check_len(Buffer::Output, n * c * output.iter().product::<usize>(), y.len())?;
    check_len(Buffer::Output, y.len(), indices.len())?;
    let xb = dev.storage_with("x", x)?;
    let ib = dev.storage("indices", y.len())?;
    let yb = dev.storage("y", y.len())?;
    let spec = adaptive_spec(Kernel::AdaptiveMaxPoolForward, c, input, output);
    let pass = Pass::new(dev, spec, &[&xb, &ib, &yb], n);
    submit(dev, &[&pass], "running adaptive_max_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    indices.copy_from_slice(&dev.read::<u32>(&ib, 0, indices.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::adaptive_max_pool_backward_input`]:
/// `gx[n, c, indices[n, c, o]] += gy[n, c, o]`.
///
/// - `indices`, `gy`: `[n, c, *output]`; `gx`: `[n, c, *input]`, accumulated.
///
/// # Errors
/// As [`adaptive_avg_pool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn adaptive_max_pool_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    indices: &[u32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Gradient, n * c * output.iter().product::<usize>(), gy.len())?;
    check_len(Buffer::Gradient, gy.len(), indices.len())?;
    check_len(Buffer::Gradient, n * c * input.iter().product::<usize>(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let ib = dev.storage_with("indices", indices)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = adaptive_spec(Kernel::AdaptiveMaxPoolBackwardInput, c, input, output);
    let pass = Pass::new(dev, spec, &[&gxb, &ib, &gyb], n);
    submit(dev, &[&pass], "running adaptive_max_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

fn merge_spec(kernel: Kernel, a: usize, b: usize, second: bool) -> Spec {
    Spec::Block(BlockSpec::Merge {
        kernel,
        a,
        b,
        second,
        x: 0,
        x2: 0,
        y: 0,
    })
}

/// GPU [`torchlet::ops::merge::add_forward`]: `y = a + b`; `a`, `b`, `y`: `[*]`, same length.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
pub fn add_forward(dev: &Device, a: &[f32], b: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Input, a.len(), b.len())?;
    check_len(Buffer::Output, a.len(), y.len())?;
    let ab = dev.storage_with("a", a)?;
    let bb = dev.storage_with("b", b)?;
    let yb = dev.storage("y", y.len())?;
    let pass = Pass::new(
        dev,
        merge_spec(Kernel::AddForward, a.len(), a.len(), false),
        &[&ab, &bb, &yb],
        1,
    );
    submit(dev, &[&pass], "running add_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::merge::add_backward_input`]: `ga += gy`, `gb += gy`, as two
/// dispatches (one per input, as [`crate::GpuNetwork`] runs them).
///
/// - `gy`, `ga`, `gb`: `[*]`, same length; `ga` and `gb` accumulated.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
pub fn add_backward_input(dev: &Device, gy: &[f32], ga: &mut [f32], gb: &mut [f32]) -> Result<()> {
    check_len(Buffer::Gradient, gy.len(), ga.len())?;
    check_len(Buffer::Gradient, gy.len(), gb.len())?;
    let gab = dev.storage_with("ga", ga)?;
    let gbb = dev.storage_with("gb", gb)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = merge_spec(Kernel::AddBackwardInput, gy.len(), gy.len(), false);
    let first = Pass::new(dev, spec, &[&gab, &gyb], 1);
    let spec = merge_spec(Kernel::AddBackwardInput, gy.len(), gy.len(), true);
    let second = Pass::new(dev, spec, &[&gbb, &gyb], 1);
    submit(dev, &[&first, &second], "running add_backward_input")?;
    ga.copy_from_slice(&dev.read::<f32>(&gab, 0, ga.len())?);
    gb.copy_from_slice(&dev.read::<f32>(&gbb, 0, gb.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::merge::concat_forward`]: `y[s] = [a[s], b[s]]` for each of the `n`
/// samples (`torch.cat([a, b], dim=1)`).
///
/// - `a`: `[n, a_len]`; `b`: `[n, b_len]`; `y`: `[n, a_len + b_len]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
pub fn concat_forward(
    dev: &Device,
    n: usize,
    a_len: usize,
    b_len: usize,
    a: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, n * a_len, a.len())?;
    check_len(Buffer::Input, n * b_len, b.len())?;
    check_len(Buffer::Output, n * (a_len + b_len), y.len())?;
    let ab = dev.storage_with("a", a)?;
    let bb = dev.storage_with("b", b)?;
    let yb = dev.storage("y", y.len())?;
    let pass = Pass::new(
        dev,
        merge_spec(Kernel::ConcatForward, a_len, b_len, false),
        &[&ab, &bb, &yb],
        n,
    );
    submit(dev, &[&pass], "running concat_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::merge::concat_backward_input`]: `ga[s] += gy[s][..a_len]`,
/// `gb[s] += gy[s][a_len..]`, as two dispatches (one per input).
///
/// - `gy`: `[n, a_len + b_len]`; `ga`: `[n, a_len]`, `gb`: `[n, b_len]`, accumulated.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn concat_backward_input(
    dev: &Device,
    n: usize,
    a_len: usize,
    b_len: usize,
    gy: &[f32],
    ga: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Gradient, n * (a_len + b_len), gy.len())?;
    check_len(Buffer::Gradient, n * a_len, ga.len())?;
    check_len(Buffer::Gradient, n * b_len, gb.len())?;
    let gab = dev.storage_with("ga", ga)?;
    let gbb = dev.storage_with("gb", gb)?;
    let gyb = dev.storage_with("gy", gy)?;
    let first = Pass::new(
        dev,
        merge_spec(Kernel::ConcatBackwardInput, a_len, b_len, false),
        &[&gab, &gyb],
        n,
    );
    let second = Pass::new(
        dev,
        merge_spec(Kernel::ConcatBackwardInput, a_len, b_len, true),
        &[&gbb, &gyb],
        n,
    );
    submit(dev, &[&first, &second], "running concat_backward_input")?;
    ga.copy_from_slice(&dev.read::<f32>(&gab, 0, ga.len())?);
    gb.copy_from_slice(&dev.read::<f32>(&gbb, 0, gb.len())?);
    Ok(())
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
        let spec = |kernel, count| BlockSpec::BatchNorm {
            kernel,
            g,
            x: 0,
            w: 0,
            b: 5,
            y: 0,
            state: 0,
            saved: 11,
            count,
            has_gx: true,
        };
        assert_eq!(spec(Kernel::BatchNormForwardTrain, false).invocations(3), 5 * 256);
        assert_eq!(spec(Kernel::BatchNormForwardTrain, true).invocations(3), 256);
        assert_eq!(spec(Kernel::BatchNormBackwardTrain, false).invocations(3), 5 * 256);
        assert_eq!(spec(Kernel::BatchNormForwardEval, false).invocations(2), 2 * 5 * 7);
        let w = spec(Kernel::BatchNormForwardTrain, true).words(3);
        assert_eq!(w[3], AFFINE | TRACK | COUNT | HAS_GX);
        assert_eq!(f32::from_bits(w[13]), 0.1);
    }

    #[test]
    fn concat_backward_covers_each_input() {
        let spec = |second| BlockSpec::Merge {
            kernel: Kernel::ConcatBackwardInput,
            a: 3,
            b: 5,
            second,
            x: 0,
            x2: 0,
            y: 0,
        };
        assert_eq!(spec(false).invocations(2), 6);
        assert_eq!(spec(true).invocations(2), 10);
    }
}
