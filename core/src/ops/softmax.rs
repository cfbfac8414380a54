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

use crate::math;

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
