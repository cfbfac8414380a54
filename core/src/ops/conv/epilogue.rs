//! The end of a fused convolution pass ([`super::fused`]): the activation and the pooling of
//! the convolution rows under one pooled output row.
//!
//! Max pooling after a non-decreasing activation (ReLU, ReLU6, LeakyReLU with a slope >= 0,
//! none) pools first and activates the pooled values only, as `max(act(x)) == act(max(x))`;
//! 2×2 windows at stride 2, the common case, take a branch-free maximum of four with one NaN
//! test per window (a NaN anywhere makes the window's sum NaN, and such a window is pooled
//! again the exact way, so NaN wins as in PyTorch). Everything else (average pooling, other
//! windows, a decreasing activation) activates every value and folds every window.

use crate::ops::geom::PoolGeom;
use crate::plan::FusedAct;

use super::fused::PoolKind;

/// Applies `act` to `plane` (`pool height × cw` convolution outputs) and pools it into `out`
/// (`[pW]`, one pooled row); `plane` may be overwritten.
pub(super) fn pool_rows(act: FusedAct, pool: PoolKind, p: &PoolGeom, plane: &mut [f32], cw: usize, out: &mut [f32]) {
    if pool == PoolKind::Max && non_decreasing(act) {
        if p.kernel[1] == 2 && p.kernel[2] == 2 && p.stride[2] == 2 {
            max_2x2(plane, cw, out);
        } else {
            fold(PoolKind::Max, p, plane, cw, out);
        }
        activate(act, out);
        return;
    }
    activate(act, plane);
    fold(pool, p, plane, cw, out);
}

/// `v = act(v)` for every value, with the match on `act` taken once rather than per value.
fn activate(act: FusedAct, values: &mut [f32]) {
    match act {
        FusedAct::Identity => {}
        FusedAct::ReLU => values.iter_mut().for_each(|v| *v = FusedAct::ReLU.apply(*v)),
        FusedAct::ReLU6 => values.iter_mut().for_each(|v| *v = FusedAct::ReLU6.apply(*v)),
        FusedAct::LeakyReLU(s) => values.iter_mut().for_each(|v| *v = FusedAct::LeakyReLU(s).apply(*v)),
    }
}

/// Whether `act` never decreases (`x <= y` ⇒ `act(x) <= act(y)`) and keeps NaN: then it commutes
/// with max pooling.
fn non_decreasing(act: FusedAct) -> bool {
    match act {
        FusedAct::Identity | FusedAct::ReLU | FusedAct::ReLU6 => true,
        FusedAct::LeakyReLU(s) => s >= 0.0,
    }
}

/// `v` if it is larger than `best`, else `best` (NaN never wins here: see [`max_window`]).
#[inline(always)]
fn larger(best: f32, v: f32) -> f32 {
    if v > best {
        v
    } else {
        best
    }
}

/// The largest value of a window, read in order; NaN wins (PyTorch's `max_pool2d`).
#[inline]
fn max_window<'a>(window: impl Iterator<Item = &'a f32>) -> f32 {
    window.fold(
        f32::NEG_INFINITY,
        |best, &v| if v > best || v.is_nan() { v } else { best },
    )
}

/// Max pooling of 2×2 windows at stride 2 along W: `out[i] = max(r0[2i], r0[2i + 1], r1[2i],
/// r1[2i + 1])` where `plane` is `[r0, r1]`, two rows of `cw` (`>= 2 · out.len()`).
fn max_2x2(plane: &[f32], cw: usize, out: &mut [f32]) {
    let (r0, r1) = plane.split_at(cw);
    let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
    for (o, (a, b)) in out.iter_mut().zip(pairs) {
        let m = larger(larger(larger(a[0], a[1]), b[0]), b[1]);
        // Any NaN (or an inf - inf) makes the sum NaN: then pool the window the exact way.
        *o = if (a[0] + a[1] + b[0] + b[1]).is_nan() {
            max_window(a.iter().chain(b))
        } else {
            m
        };
    }
}

/// Pools every window of `plane` (`pool height × cw`) into `out` (`[pW]`), reading each window
/// row by row.
fn fold(pool: PoolKind, p: &PoolGeom, plane: &[f32], cw: usize, out: &mut [f32]) {
    let (pkh, pkw) = (p.kernel[1], p.kernel[2]);
    let divisor = (pkh * pkw) as f32;
    for (ox, o) in out.iter_mut().enumerate() {
        let x0 = ox * p.stride[2];
        let window = (0..pkh).flat_map(|r| &plane[r * cw + x0..r * cw + x0 + pkw]);
        *o = match pool {
            PoolKind::Max => max_window(window),
            PoolKind::Avg => window.fold(0.0, |sum, &v| sum + v) / divisor,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(k: usize, s: usize, cw: usize) -> PoolGeom {
        PoolGeom {
            n: 1,
            c: 1,
            input: [1, k, cw],
            output: [1, 1, (cw - k) / s + 1],
            kernel: [1, k, k],
            stride: [1, s, s],
            dilation: [1; 3],
            pad: [0; 3],
            count_include_pad: false,
        }
    }

    /// The reference: activate every value, then fold every window.
    fn slow(act: FusedAct, pool: PoolKind, p: &PoolGeom, plane: &[f32], cw: usize) -> [f32; 8] {
        let mut plane: [f32; 64] = core::array::from_fn(|i| plane.get(i).copied().unwrap_or(0.0));
        for v in plane.iter_mut() {
            *v = act.apply(*v);
        }
        let mut out = [0.0; 8];
        fold(pool, p, &plane, cw, &mut out[..p.output[2]]);
        out
    }

    #[test]
    fn fast_max_pooling_equals_activate_then_fold_with_nan_and_infinity() {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 7.0, -3.0];
        let acts = [
            FusedAct::Identity,
            FusedAct::ReLU,
            FusedAct::ReLU6,
            FusedAct::LeakyReLU(0.1),
            FusedAct::LeakyReLU(-0.5),
        ];
        let mut s = 12345u32;
        for case in 0..400 {
            let (k, st, cw) = [(2, 2, 8), (2, 2, 9), (3, 2, 9), (2, 1, 7), (3, 3, 9)][case % 5];
            let p = geom(k, st, cw);
            let plane: [f32; 64] = core::array::from_fn(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if s % 7 == 0 {
                    specials[(s >> 8) as usize % specials.len()]
                } else {
                    (s >> 8) as f32 / (1u32 << 22) as f32 - 2.0
                }
            });
            for act in acts {
                for pool in [PoolKind::Max, PoolKind::Avg] {
                    let want = slow(act, pool, &p, &plane[..k * cw], cw);
                    let mut work = plane;
                    let mut got = [0.0; 8];
                    pool_rows(act, pool, &p, &mut work[..k * cw], cw, &mut got[..p.output[2]]);
                    for (g, w) in got.iter().zip(&want) {
                        // Equal values (a signed zero may differ) or both NaN.
                        assert!(
                            g == w || (g.is_nan() && w.is_nan()),
                            "{act:?} {pool:?} k{k} s{st}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
