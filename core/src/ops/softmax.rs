//! `nn.Softmax(dim)` and `nn.LogSoftmax(dim)` over one axis of a tensor.
//!
//! The tensor is viewed as `[outer, axis, inner]`: `axis` is the size of the reduced dim,
//! `outer` the product of the dims before it and `inner` the product of the dims after it.
//! For logits `[N, K]` with `dim=1` that is `outer = N, axis = K, inner = 1`; for a segmentation
//! map `[N, K, H, W]` with `dim=1` it is `outer = N, axis = K, inner = H * W`.
//!
//! Both are computed stably, subtracting the maximum along the axis before exponentiating, so
//! large logits do not overflow. Prefer `LogSoftmax` followed by `NLLLoss` (or a fused cross
//! entropy) over `Softmax` followed by a logarithm: it keeps precision for small probabilities.

use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::math;
use crate::plan::{At, Exec, Node};

/// A sample viewed as `[outer, axis, inner]` around the softmax dim (the batch multiplies
/// `outer` at run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxGeom {
    /// Product of the sample's dims before the softmax dim.
    pub outer: usize,
    /// Size of the softmax dim.
    pub axis: usize,
    /// Product of the dims after it.
    pub inner: usize,
}

/// Index of element `a` of the line `(o, i)` in a `[outer, axis, inner]` tensor.
#[inline(always)]
fn at(axis: usize, inner: usize, o: usize, a: usize, i: usize) -> usize {
    (o * axis + a) * inner + i
}

/// Maximum of the line `(o, i)`; `-inf` for an empty axis. NaN propagates.
#[inline]
fn line_max(axis: usize, inner: usize, o: usize, i: usize, x: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for a in 0..axis {
        let v = x[at(axis, inner, o, a, i)];
        if v > m || v.is_nan() {
            m = v;
        }
    }
    m
}

/// `nn.Softmax`: `y[o, a, i] = exp(x[o, a, i] - m) / sum_b exp(x[o, b, i] - m)` with
/// `m = max_b x[o, b, i]` ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html)).
///
/// - `x`: input `[outer, axis, inner]`.
/// - `y`: output `[outer, axis, inner]` (overwritten); each line along the axis sums to 1.
pub fn softmax_forward(outer: usize, axis: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() == outer * axis * inner && y.len() == x.len());
    for o in 0..outer {
        for i in 0..inner {
            let m = line_max(axis, inner, o, i, x);
            let mut sum = 0.0f32;
            for a in 0..axis {
                let k = at(axis, inner, o, a, i);
                let e = math::exp(x[k] - m);
                y[k] = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for a in 0..axis {
                y[at(axis, inner, o, a, i)] *= inv;
            }
        }
    }
}

/// Backward of [`softmax_forward`], from its output:
/// `gx[o, a, i] += y[o, a, i] * (gy[o, a, i] - sum_b gy[o, b, i] * y[o, b, i])`.
///
/// - `y`: the forward output `[outer, axis, inner]`.
/// - `gy`: gradient with respect to `y`, `[outer, axis, inner]`.
/// - `gx`: gradient with respect to `x`, `[outer, axis, inner]` (accumulated).
pub fn softmax_backward_input(outer: usize, axis: usize, inner: usize, y: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(y.len() == outer * axis * inner && gy.len() == y.len() && gx.len() == y.len());
    for o in 0..outer {
        for i in 0..inner {
            let mut dot = 0.0f32;
            for a in 0..axis {
                let k = at(axis, inner, o, a, i);
                dot += gy[k] * y[k];
            }
            for a in 0..axis {
                let k = at(axis, inner, o, a, i);
                gx[k] += y[k] * (gy[k] - dot);
            }
        }
    }
}

/// `nn.LogSoftmax`: `y[o, a, i] = x[o, a, i] - m - ln(sum_b exp(x[o, b, i] - m))` with
/// `m = max_b x[o, b, i]` ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.LogSoftmax.html)).
///
/// - `x`: input `[outer, axis, inner]`.
/// - `y`: output `[outer, axis, inner]` (overwritten); `exp(y)` sums to 1 along the axis.
pub fn log_softmax_forward(outer: usize, axis: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() == outer * axis * inner && y.len() == x.len());
    for o in 0..outer {
        for i in 0..inner {
            let m = line_max(axis, inner, o, i, x);
            let mut sum = 0.0f32;
            for a in 0..axis {
                sum += math::exp(x[at(axis, inner, o, a, i)] - m);
            }
            // `(x - m) - ln(sum)`, not `x - (m + ln(sum))`: the latter rounds `ln(sum)` to the
            // precision of `m` and loses the small log-probabilities of large logits.
            let log_sum = math::ln(sum);
            for a in 0..axis {
                let k = at(axis, inner, o, a, i);
                y[k] = (x[k] - m) - log_sum;
            }
        }
    }
}

/// Backward of [`log_softmax_forward`], from its output:
/// `gx[o, a, i] += gy[o, a, i] - exp(y[o, a, i]) * sum_b gy[o, b, i]`.
///
/// - `y`: the forward output `[outer, axis, inner]`.
/// - `gy`: gradient with respect to `y`, `[outer, axis, inner]`.
/// - `gx`: gradient with respect to `x`, `[outer, axis, inner]` (accumulated).
pub fn log_softmax_backward_input(outer: usize, axis: usize, inner: usize, y: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(y.len() == outer * axis * inner && gy.len() == y.len() && gx.len() == y.len());
    for o in 0..outer {
        for i in 0..inner {
            let mut sum = 0.0f32;
            for a in 0..axis {
                sum += gy[at(axis, inner, o, a, i)];
            }
            for a in 0..axis {
                let k = at(axis, inner, o, a, i);
                gx[k] += gy[k] - math::exp(y[k]) * sum;
            }
        }
    }
}

// ---- the layers: planning and the network's forward and backward ----

/// Plans `nn.Softmax(dim)` (`log == false`) or `nn.LogSoftmax(dim)`; `dim` counts the batch as
/// 0, negative counts from the end.
pub(crate) const fn plan(dim: i8, log: bool, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    let full = s.rank() as i32 + 1;
    let d = if (dim as i32) < 0 {
        dim as i32 + full
    } else {
        dim as i32
    };
    if d < 1 || d >= full {
        return Err(at.err(
            "dim must be a non-batch dim (1..rank)",
            1,
            if d < 0 { 0 } else { d as usize },
        ));
    }
    let d = d as usize - 1;
    let (mut outer, mut inner, mut k) = (1, 1, 0);
    while k < s.rank() {
        if k < d {
            outer *= s.dim(k);
        } else if k > d {
            inner *= s.dim(k);
        }
        k += 1;
    }
    let g = SoftmaxGeom {
        outer,
        axis: s.dim(d),
        inner,
    };
    node.exec = if log { Exec::LogSoftmax(g) } else { Exec::Softmax(g) };
    Ok(())
}

/// The network's forward pass of a softmax node.
pub(crate) fn forward(g: SoftmaxGeom, io: &mut Fwd<'_>) {
    softmax_forward(io.n * g.outer, g.axis, g.inner, io.x, io.y);
}

/// The network's backward pass of a softmax node (reads its output).
pub(crate) fn backward(g: SoftmaxGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        softmax_backward_input(io.n * g.outer, g.axis, g.inner, io.y, io.gy, io.gx);
    }
}

/// The network's forward pass of a log-softmax node.
pub(crate) fn forward_log(g: SoftmaxGeom, io: &mut Fwd<'_>) {
    log_softmax_forward(io.n * g.outer, g.axis, g.inner, io.x, io.y);
}

/// The network's backward pass of a log-softmax node (reads its output).
pub(crate) fn backward_log(g: SoftmaxGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        log_softmax_backward_input(io.n * g.outer, g.axis, g.inner, io.y, io.gy, io.gx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_logits_do_not_overflow() {
        // [outer 1, axis 3, inner 2]: the second line holds huge values.
        let x = [1.0, 1000.0, 2.0, 1000.0, 3.0, 1000.0];
        let mut y = [0.0; 6];
        softmax_forward(1, 3, 2, &x, &mut y);
        for v in [y[1], y[3], y[5]] {
            assert!((v - 1.0 / 3.0).abs() < 1e-6);
        }
        let mut l = [0.0; 6];
        log_softmax_forward(1, 3, 2, &x, &mut l);
        assert!((l[1] + libm::logf(3.0)).abs() < 1e-5);
        assert!((l[4] - (0.0 - libm::logf(1.0 + libm::expf(-1.0) + libm::expf(-2.0)))).abs() < 1e-5);
    }
}
