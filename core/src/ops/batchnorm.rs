//! `nn.BatchNorm1d`, `nn.BatchNorm2d` and `nn.BatchNorm3d`: per-channel normalisation over the batch.
//!
//! Every input is viewed as `[N, C, S]`, where `S` is the product of the spatial dims
//! (`1` for `[N, C]`, `L` for `[N, C, L]`, `H * W` for `[N, C, H, W]`, `D * H * W` for `[N, C, D, H, W]`). Each channel `c` is
//! normalised over its `N * S` values:
//!
//! `y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]`
//!
//! ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html)).
//!
//! - **Training** ([`batch_norm_forward_train`]): `mean` and the *biased* `var` of the batch;
//!   the running statistics are updated with the *unbiased* variance. The batch mean and
//!   `1 / sqrt(var + eps)` are saved for [`batch_norm_backward_train`], whose gradient flows
//!   through the batch statistics.
//! - **Evaluation** ([`batch_norm_forward_eval`]): the running statistics, a fixed affine map.
//!   Without `track_running_stats` PyTorch normalises with batch statistics in eval mode too;
//!   callers then use the training path, which updates nothing in that case.
//!
//! Buffers: `weight` and `bias` are `[C]` each, or empty when `affine` is false;
//! `state` is `[running_mean[C], running_var[C], num_batches_tracked[1]]`
//! ([`batch_norm_state_len`] floats), or empty when `track_running_stats` is false;
//! `saved` is `[mean[C], invstd[C]]`.
//!
//! Statistics are accumulated in `f32` with two passes (mean, then centred squares), which keeps
//! the variance accurate; PyTorch's CPU kernel accumulates in `f64`, the results agree to about
//! `1e-6` relative for the batch sizes used in practice.

use super::io::{Bwd, Fwd, State};
use crate::error::{Error, Result};
use crate::layer::BatchNorm;
use crate::math;
use crate::plan::{At, Exec, Node};

/// Geometry and hyper-parameters of a BatchNorm layer over `[N, C, S]`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BnGeom {
    /// Batch size `N`.
    pub n: usize,
    /// Channels `C` (PyTorch's `num_features`).
    pub c: usize,
    /// Spatial size `S` (product of the dims after `C`; 1 for `[N, C]`).
    pub spatial: usize,
    /// Added to the variance before the square root (PyTorch's default 1e-5).
    pub eps: f32,
    /// Running-statistics momentum `m`: `r = (1 - m) r + m b`. `None` is a cumulative average.
    pub momentum: Option<f32>,
    /// Whether `weight` and `bias` exist.
    pub affine: bool,
    /// Whether `state` holds running statistics that training updates.
    pub track_running_stats: bool,
}

impl BnGeom {
    /// Whether this pass normalises with batch statistics: in training, and always without
    /// running statistics (as PyTorch).
    pub const fn uses_batch_stats(&self, training: bool) -> bool {
        training || !self.track_running_stats
    }

    /// PyTorch's "Expected more than 1 value per channel when training": batch statistics
    /// over `n` samples need at least two values per channel. Every backend checks this rule
    /// here before it runs the layer; `layer` and `op` name the layer in the error.
    ///
    /// # Errors
    /// [`Error::Shape`] with the number of values per channel found.
    pub const fn check_batch(&self, n: usize, training: bool, layer: usize, op: &'static str) -> Result<()> {
        if self.uses_batch_stats(training) && n * self.spatial < 2 {
            return Err(Error::Shape {
                layer,
                op,
                what: "batch statistics need more than 1 value per channel (batch x spatial size)",
                expected: 2,
                found: n * self.spatial,
            });
        }
        Ok(())
    }
}

/// Length of the BatchNorm state buffer for `c` channels: running mean `[C]`, running
/// variance `[C]` and `num_batches_tracked` (one float).
pub const fn batch_norm_state_len(c: usize) -> usize {
    2 * c + 1
}

/// Index of `x[n, c, s]` in a `[N, C, S]` tensor.
#[inline(always)]
fn at(g: &BnGeom, n: usize, c: usize, s: usize) -> usize {
    (n * g.c + c) * g.spatial + s
}

/// `weight[c]` and `bias[c]`, or `(1, 0)` without affine parameters.
#[inline(always)]
fn affine(g: &BnGeom, weight: &[f32], bias: &[f32], c: usize) -> (f32, f32) {
    if g.affine {
        (weight[c], bias[c])
    } else {
        (1.0, 0.0)
    }
}

/// Writes `y = (x - mean) * scale + b` for channel `c` (`scale = invstd * weight[c]`).
#[inline]
fn normalise(g: &BnGeom, c: usize, mean: f32, scale: f32, b: f32, x: &[f32], y: &mut [f32]) {
    for n in 0..g.n {
        let base = at(g, n, c, 0);
        for k in base..base + g.spatial {
            y[k] = (x[k] - mean) * scale + b;
        }
    }
}

/// Training-mode forward: normalise each channel with the batch statistics.
///
/// For channel `c`, over its `M = N * S` values: `mean = sum x / M`,
/// `var = sum (x - mean)^2 / M` (biased), `invstd = 1 / sqrt(var + eps)`,
/// `y = (x - mean) * invstd * weight[c] + bias[c]`.
///
/// With `track_running_stats`, first `num_batches_tracked += 1`, then with
/// `f = momentum` (or `1 / num_batches_tracked` when `momentum` is `None`):
/// `running_mean = (1 - f) running_mean + f mean` and
/// `running_var = (1 - f) running_var + f var * M / (M - 1)` (unbiased), exactly as PyTorch.
/// PyTorch rejects `M == 1` in training; the planner does too.
///
/// - `x`: input `[N, C, S]`.
/// - `weight`, `bias`: `[C]` each, empty when `!g.affine`.
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked[1]]`, updated in place;
///   empty (and untouched) when `!g.track_running_stats`.
/// - `saved`: `[mean[C], invstd[C]]`, overwritten, for [`batch_norm_backward_train`].
/// - `y`: output `[N, C, S]` (overwritten).
pub fn batch_norm_forward_train(
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    state: &mut [f32],
    saved: &mut [f32],
    y: &mut [f32],
) {
    let (count, len) = (g.n * g.spatial, g.n * g.c * g.spatial);
    debug_assert!(x.len() == len && y.len() == len && saved.len() == 2 * g.c);
    debug_assert!(!g.affine || (weight.len() == g.c && bias.len() == g.c));
    debug_assert!(!g.track_running_stats || state.len() == batch_norm_state_len(g.c));

    let factor = if g.track_running_stats {
        let tracked = &mut state[2 * g.c];
        *tracked += 1.0;
        g.momentum.unwrap_or(1.0 / *tracked)
    } else {
        0.0
    };
    let inv_count = 1.0 / count as f32;

    for c in 0..g.c {
        let mut sum = 0.0f32;
        for n in 0..g.n {
            let base = at(g, n, c, 0);
            sum += x[base..base + g.spatial].iter().sum::<f32>();
        }
        let mean = sum * inv_count;
        let mut sq = 0.0f32;
        for n in 0..g.n {
            let base = at(g, n, c, 0);
            for &v in &x[base..base + g.spatial] {
                sq += (v - mean) * (v - mean);
            }
        }
        let invstd = 1.0 / math::sqrt(sq * inv_count + g.eps);
        saved[c] = mean;
        saved[g.c + c] = invstd;

        if g.track_running_stats {
            let unbiased = sq / (count as f32 - 1.0);
            state[c] = (1.0 - factor) * state[c] + factor * mean;
            state[g.c + c] = (1.0 - factor) * state[g.c + c] + factor * unbiased;
        }

        let (w, b) = affine(g, weight, bias, c);
        normalise(g, c, mean, invstd * w, b, x, y);
    }
}

/// Eval-mode forward with the running statistics:
/// `y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]`.
///
/// Only for `g.track_running_stats`; otherwise use [`batch_norm_forward_train`], which then
/// updates nothing, as PyTorch normalises with batch statistics in that case.
///
/// - `x`: input `[N, C, S]`.
/// - `weight`, `bias`: `[C]` each, empty when `!g.affine`.
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked[1]]`.
/// - `y`: output `[N, C, S]` (overwritten).
pub fn batch_norm_forward_eval(g: &BnGeom, x: &[f32], weight: &[f32], bias: &[f32], state: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() == g.n * g.c * g.spatial && y.len() == x.len());
    debug_assert!(state.len() == batch_norm_state_len(g.c));
    for c in 0..g.c {
        let (mean, scale, b) = eval_affine(g, weight, bias, state, c);
        normalise(g, c, mean, scale, b, x, y);
    }
}

/// [`batch_norm_forward_eval`] in place: `v = (v - running_mean) * invstd * weight + bias`,
/// the same operations in the same order, for fused inference plans
/// ([`crate::plan::Fuse::InPlace`]).
///
/// - `v`: `[N, C, S]`, overwritten with the output.
/// - `weight`, `bias`: `[C]` each, empty when `!g.affine`.
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked]`.
pub fn batch_norm_eval_in_place(g: &BnGeom, weight: &[f32], bias: &[f32], state: &[f32], v: &mut [f32]) {
    debug_assert!(v.len() == g.n * g.c * g.spatial);
    for c in 0..g.c {
        let (mean, scale, b) = eval_affine(g, weight, bias, state, c);
        for n in 0..g.n {
            for x in &mut v[at(g, n, c, 0)..][..g.spatial] {
                *x = (*x - mean) * scale + b;
            }
        }
    }
}

/// Channel `c`'s eval-mode normalisation `(mean, scale, shift)`: `y = (x - mean) * scale +
/// shift` with `scale = weight[c] / sqrt(running_var[c] + eps)`, as [`batch_norm_forward_eval`]
/// computes it.
///
/// - `weight`, `bias`: `[C]` each, empty when `!g.affine`.
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked]`.
#[inline]
pub fn eval_affine(g: &BnGeom, weight: &[f32], bias: &[f32], state: &[f32], c: usize) -> (f32, f32, f32) {
    let invstd = 1.0 / math::sqrt(state[g.c + c] + g.eps);
    let (w, b) = affine(g, weight, bias, c);
    (state[c], invstd * w, b)
}

/// Backward of [`batch_norm_forward_train`], through the batch statistics.
///
/// With `xhat = (x - mean) * invstd` and `M = N * S` per channel:
/// - `gbias[c] += sum gy`, `gweight[c] += sum gy * xhat`;
/// - `gx += weight[c] * invstd * (gy - sum(gy) / M - xhat * sum(gy * xhat) / M)`
///   (`weight[c] = 1` without affine parameters).
///
/// - `x`: the forward input `[N, C, S]`.
/// - `weight`: `[C]`, empty when `!g.affine`.
/// - `saved`: `[mean[C], invstd[C]]` written by the forward pass.
/// - `gy`: gradient with respect to the output `[N, C, S]`.
/// - `gx`: gradient with respect to `x`, `[N, C, S]` (accumulated).
/// - `gweight`, `gbias`: `[C]` each (accumulated), empty when `!g.affine`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_train(
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    saved: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gweight: &mut [f32],
    gbias: &mut [f32],
) {
    let len = g.n * g.c * g.spatial;
    debug_assert!(x.len() == len && gy.len() == len && gx.len() == len && saved.len() == 2 * g.c);
    let inv_count = 1.0 / (g.n * g.spatial) as f32;
    for c in 0..g.c {
        let (mean, invstd) = (saved[c], saved[g.c + c]);
        let (sum_gy, sum_gy_xhat) = channel_sums(g, c, mean, invstd, x, gy);
        if g.affine {
            gweight[c] += sum_gy_xhat;
            gbias[c] += sum_gy;
        }
        let w = if g.affine { weight[c] } else { 1.0 };
        let scale = w * invstd;
        let (mean_gy, mean_gy_xhat) = (sum_gy * inv_count, sum_gy_xhat * inv_count);
        for n in 0..g.n {
            let base = at(g, n, c, 0);
            for k in base..base + g.spatial {
                let xhat = (x[k] - mean) * invstd;
                gx[k] += scale * (gy[k] - mean_gy - xhat * mean_gy_xhat);
            }
        }
    }
}

/// Backward of [`batch_norm_forward_eval`]: the running statistics are constants.
///
/// With `invstd = 1 / sqrt(running_var[c] + eps)` and `xhat = (x - running_mean[c]) * invstd`:
/// `gx += gy * weight[c] * invstd`, `gweight[c] += sum gy * xhat`, `gbias[c] += sum gy`.
///
/// - `x`: the forward input `[N, C, S]`.
/// - `weight`: `[C]`, empty when `!g.affine`.
/// - `state`: `[running_mean[C], running_var[C], num_batches_tracked[1]]`.
/// - `gy`: gradient with respect to the output `[N, C, S]`.
/// - `gx`: gradient with respect to `x`, `[N, C, S]` (accumulated).
/// - `gweight`, `gbias`: `[C]` each (accumulated), empty when `!g.affine`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_eval(
    g: &BnGeom,
    x: &[f32],
    weight: &[f32],
    state: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gweight: &mut [f32],
    gbias: &mut [f32],
) {
    let len = g.n * g.c * g.spatial;
    debug_assert!(x.len() == len && gy.len() == len && gx.len() == len);
    debug_assert!(state.len() == batch_norm_state_len(g.c));
    for c in 0..g.c {
        let (mean, invstd) = (state[c], 1.0 / math::sqrt(state[g.c + c] + g.eps));
        if g.affine {
            let (sum_gy, sum_gy_xhat) = channel_sums(g, c, mean, invstd, x, gy);
            gweight[c] += sum_gy_xhat;
            gbias[c] += sum_gy;
        }
        let scale = if g.affine { weight[c] * invstd } else { invstd };
        for n in 0..g.n {
            let base = at(g, n, c, 0);
            for k in base..base + g.spatial {
                gx[k] += gy[k] * scale;
            }
        }
    }
}

/// `(sum gy, sum gy * xhat)` over channel `c`, with `xhat = (x - mean) * invstd`.
#[inline]
fn channel_sums(g: &BnGeom, c: usize, mean: f32, invstd: f32, x: &[f32], gy: &[f32]) -> (f32, f32) {
    let (mut sum_gy, mut sum_gy_xhat) = (0.0f32, 0.0f32);
    for n in 0..g.n {
        let base = at(g, n, c, 0);
        for k in base..base + g.spatial {
            sum_gy += gy[k];
            sum_gy_xhat += gy[k] * (x[k] - mean) * invstd;
        }
    }
    (sum_gy, sum_gy_xhat)
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.BatchNorm1d/2d/3d`: parameters when affine, running statistics in the state buffer
/// when tracked, the saved batch statistics in `extra`.
pub(crate) const fn plan(bn: &BatchNorm, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    let ok = if bn.dims == 1 {
        s.rank() == 1 || s.rank() == 2
    } else {
        s.rank() == bn.dims as usize + 1
    };
    if !ok {
        return Err(at.err(
            "input rank differs (BatchNorm1d: [C] or [C, L]; BatchNorm2d: [C, H, W]; BatchNorm3d: [C, D, H, W])",
            if bn.dims == 1 { 2 } else { bn.dims as usize + 1 },
            s.rank(),
        ));
    }
    if bn.num_features != s.channels() {
        return Err(at.err(
            "num_features differs from the channels of its input",
            bn.num_features,
            s.channels(),
        ));
    }
    if bn.eps.is_nan() || bn.eps <= 0.0 {
        return Err(Error::InvalidArgument {
            name: "eps",
            expected: "must be positive",
        });
    }
    let c = bn.num_features;
    node.exec = Exec::BatchNorm(BnGeom {
        n: at.batch,
        c,
        spatial: s.numel() / c,
        eps: bn.eps,
        momentum: bn.momentum,
        affine: bn.affine,
        track_running_stats: bn.track_running_stats,
    });
    if bn.affine {
        node.weight_len = c;
        node.bias_len = c;
    }
    if bn.track_running_stats {
        node.state_len = batch_norm_state_len(c);
    }
    node.extra.len = 2 * c;
    Ok(())
}

/// The network's forward pass of a BatchNorm node: batch statistics (updating the running ones
/// in training) or the running statistics.
///
/// # Errors
/// [`BnGeom::check_batch`]'s; [`Error::NotReady`] when training would update read-only state.
pub(crate) fn forward(mut g: BnGeom, io: &mut Fwd<'_>) -> Result<()> {
    g.n = io.n;
    g.check_batch(io.n, io.training, io.layer, io.op)?;
    if io.training && g.track_running_stats {
        let State::Mut(state) = &mut io.state else {
            return Err(Error::NotReady {
                what: "writable weights (these are read-only)",
            });
        };
        batch_norm_forward_train(&g, io.x, io.w, io.bias, state, io.extra, io.y);
    } else if !g.track_running_stats {
        batch_norm_forward_train(&g, io.x, io.w, io.bias, &mut [], io.extra, io.y);
    } else {
        batch_norm_forward_eval(&g, io.x, io.w, io.bias, io.state.get(), io.y);
    }
    Ok(())
}

/// The network's backward pass of a BatchNorm node (input, weight and bias gradients in one
/// call, so the network gives a destination even for the network input).
pub(crate) fn backward(mut g: BnGeom, io: &mut Bwd<'_>) {
    g.n = io.n;
    if g.uses_batch_stats(io.training) {
        batch_norm_backward_train(&g, io.x, io.w, io.extra, io.gy, io.gx, io.gw, io.gbias);
    } else {
        batch_norm_backward_eval(&g, io.x, io.w, io.state, io.gy, io.gx, io.gw, io.gbias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_average_weights_every_batch_equally() {
        // momentum None: after two batches the running mean is the plain average of the two
        // batch means, and num_batches_tracked counts them.
        let g = BnGeom {
            n: 2,
            c: 1,
            spatial: 1,
            eps: 0.0,
            momentum: None,
            affine: false,
            track_running_stats: true,
        };
        let mut state = [0.0, 1.0, 0.0];
        let (mut saved, mut y) = ([0.0; 2], [0.0; 2]);
        batch_norm_forward_train(&g, &[1.0, 3.0], &[], &[], &mut state, &mut saved, &mut y);
        assert_eq!(state, [2.0, 2.0, 1.0]);
        assert_eq!(y, [-1.0, 1.0]);
        batch_norm_forward_train(&g, &[5.0, 7.0], &[], &[], &mut state, &mut saved, &mut y);
        assert_eq!(state, [4.0, 2.0, 2.0]);
    }
}
