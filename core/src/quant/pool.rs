//! int8 pooling (`nn.MaxPool*`, `nn.AvgPool*`, `nn.AdaptiveAvgPool*` quantised as TFLite's
//! `MAX_POOL_2D` / `AVERAGE_POOL_2D`, CMSIS-NN's `arm_max_pool_s8` / `arm_avgpool_s8`), NCHW,
//! over the f32 core's [`PoolGeom`]. Input and output share one quantisation (scale and zero
//! point), as TFLite requires, so pooling works on the stored integers directly.
//!
//! ```text
//! max: y[n, c, o] = clamp(max_{k in window(o), inside the input} x[n, c, k], act.min, act.max)
//! avg: s = Σ_{k in window(o), inside the input} x[n, c, k]  (+ zero_point · padded positions
//!                                                             when count_include_pad)
//!      y[n, c, o] = clamp(s > 0 ? (s + D/2) / D : (s - D/2) / D, act.min, act.max)
//! ```
//!
//! with `/` truncating (a division rounded half away from zero, as `arm_avgpool_s8`) and `D`
//! PyTorch's divisor: the window's positions inside the input, or with `count_include_pad` its
//! positions inside the padded input (padding reads real 0, the zero point). Windows follow the
//! f32 kernels: `o · stride - pad + k · dilation`, clipped to the input (max) or, measured for
//! the divisor, to the padded input (average).

use super::numel;
use super::scheme::{check_zero_point, ActRange};
use super::shape_error;
use crate::error::{check_len, Buffer, Result};
use crate::ops::geom::PoolGeom;
use crate::ops::pool::AdaptiveGeom;

/// The input positions `(first, end, step)` of output `o` of a max-pooling window along one dim:
/// from `o · stride - pad` by `dilation`, skipping the front padding; empty when `first >= end`.
#[inline]
fn max_range(
    o: usize,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + (dilation * (kernel - 1) + 1) as isize).min(input as isize);
    let mut first = start;
    if first < 0 {
        let d = dilation as isize;
        first += (-first + d - 1) / d * d;
    }
    (first as usize, end.max(0) as usize, dilation)
}

/// The positions `[first, last)` of output `o` of an average-pooling window along one dim, and
/// its length clipped to the padded input (PyTorch's divisor factor with `count_include_pad`).
#[inline]
fn avg_range(o: usize, input: usize, kernel: usize, stride: usize, pad: usize) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + kernel as isize).min((input + pad) as isize);
    let padded = (end - start).max(0) as usize;
    let first = start.max(0) as usize;
    let last = end.min(input as isize).max(first as isize) as usize;
    (first, last, padded)
}

/// Checks a pool geometry and the buffer lengths: positive sizes, every window starting inside
/// the input or its front padding, `x: [N, C, D, H, W]`, `y: [N, C, oD, oH, oW]`.
fn check_pool(op: &'static str, g: &PoolGeom, x: &[i8], y: &[i8]) -> Result<()> {
    for d in 0..3 {
        let (i, o, k, s, dl, p) = (
            g.input[d],
            g.output[d],
            g.kernel[d],
            g.stride[d],
            g.dilation[d],
            g.pad[d],
        );
        if i == 0 || o == 0 || k == 0 || s == 0 || dl == 0 {
            return Err(shape_error(
                op,
                "sizes, kernel, stride and dilation must be positive",
                1,
                0,
            ));
        }
        let last_start = (o - 1).checked_mul(s);
        let span = (k - 1).checked_mul(dl);
        let bound = i.checked_add(p).filter(|b| *b <= isize::MAX as usize / 4);
        match (last_start, span, bound) {
            (Some(ls), Some(sp), Some(b)) if ls < b && sp <= isize::MAX as usize / 4 => {}
            _ => return Err(shape_error(op, "a window starts past the input and its padding", i, o)),
        }
    }
    let planes = numel(op, &[g.n, g.c])?;
    check_len(Buffer::Input, numel(op, &[planes, numel(op, &g.input)?])?, x.len())?;
    check_len(Buffer::Output, numel(op, &[planes, numel(op, &g.output)?])?, y.len())
}

/// int8 max pooling, as described in the [module docs](self).
///
/// - `x: [N, C, D, H, W]` (`g.input`);
/// - `y: [N, C, oD, oH, oW]` (`g.output`), overwritten; same quantisation as `x`.
///
/// Padding never wins; a window holding no input position (possible with dilation) gives
/// `act.min` (the quantised `-inf`). Errors (nothing written): wrong lengths, an invalid
/// geometry or activation range.
pub fn max_pool_s8(g: &PoolGeom, act: ActRange, x: &[i8], y: &mut [i8]) -> Result<()> {
    check_pool("int8 MaxPool", g, x, y)?;
    act.check()?;
    let [_, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let (in_sp, out_sp) = (g.in_spatial(), g.out_spatial());
    let range = |o: usize, d: usize| max_range(o, g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad[d]);
    for (xp, yp) in x.chunks_exact(in_sp).zip(y.chunks_exact_mut(out_sp)) {
        let mut o = 0;
        for z in 0..od {
            let (d0, d1, sd) = range(z, 0);
            for r in 0..oh {
                let (h0, h1, sh) = range(r, 1);
                for s in 0..ow {
                    let (w0, w1, sw) = range(s, 2);
                    let mut m = i8::MIN;
                    for d in (d0..d1).step_by(sd) {
                        for h in (h0..h1).step_by(sh) {
                            let row = (d * ih + h) * iw;
                            for w in (w0..w1).step_by(sw) {
                                m = m.max(xp[row + w]);
                            }
                        }
                    }
                    yp[o] = act.clamp(m as i32);
                    o += 1;
                }
            }
        }
    }
    Ok(())
}

/// int8 average pooling, as described in the [module docs](self).
///
/// - `x: [N, C, D, H, W]` (`g.input`), zero point `zero_point` (read for padded positions when
///   `g.count_include_pad`);
/// - `y: [N, C, oD, oH, oW]` (`g.output`), overwritten; same quantisation as `x`.
///
/// Errors (nothing written): wrong lengths, an invalid geometry (dilation other than 1, a
/// window with no input position), zero point or activation range.
pub fn avg_pool_s8(g: &PoolGeom, zero_point: i32, act: ActRange, x: &[i8], y: &mut [i8]) -> Result<()> {
    const OP: &str = "int8 AvgPool";
    check_pool(OP, g, x, y)?;
    check_zero_point("zero point", zero_point)?;
    act.check()?;
    if g.dilation != [1; 3] {
        return Err(shape_error(
            OP,
            "average pooling has no dilation",
            1,
            g.dilation.into_iter().max().unwrap_or(0),
        ));
    }
    let range = |o: usize, d: usize| avg_range(o, g.input[d], g.kernel[d], g.stride[d], g.pad[d]);
    for d in 0..3 {
        if let Some(o) = (0..g.output[d]).find(|&o| range(o, d).0 == range(o, d).1) {
            return Err(shape_error(
                OP,
                "an average-pooling window holds no input position",
                1,
                o,
            ));
        }
    }
    let [_, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let (in_sp, out_sp) = (g.in_spatial(), g.out_spatial());
    for (xp, yp) in x.chunks_exact(in_sp).zip(y.chunks_exact_mut(out_sp)) {
        let mut o = 0;
        for z in 0..od {
            let (d0, d1, pd) = range(z, 0);
            for r in 0..oh {
                let (h0, h1, ph) = range(r, 1);
                for s in 0..ow {
                    let (w0, w1, pw) = range(s, 2);
                    // In i64: no window can overflow it (the C kernels' i32 sum agrees whenever
                    // it does not overflow itself).
                    let mut sum = 0i64;
                    for d in d0..d1 {
                        for h in h0..h1 {
                            let row = (d * ih + h) * iw;
                            sum += xp[row + w0..row + w1].iter().map(|&v| v as i64).sum::<i64>();
                        }
                    }
                    let valid = ((d1 - d0) * (h1 - h0) * (w1 - w0)) as i64;
                    let count = if g.count_include_pad {
                        let padded = (pd as i64).saturating_mul(ph as i64).saturating_mul(pw as i64);
                        sum = sum.saturating_add((zero_point as i64).saturating_mul(padded - valid));
                        padded
                    } else {
                        valid
                    };
                    yp[o] = act.clamp(rounded_div(sum, count).clamp(-128, 127) as i32);
                    o += 1;
                }
            }
        }
    }
    Ok(())
}

/// `s / count` rounded half away from zero, as `arm_avgpool_s8`:
/// `s > 0 ? (s + count/2) / count : (s - count/2) / count` (truncating division).
#[inline]
fn rounded_div(s: i64, count: i64) -> i64 {
    let half = count / 2;
    if s > 0 {
        (s + half) / count
    } else {
        (s - half) / count
    }
}

/// int8 adaptive average pooling where it is a fixed window: each output size divides its input
/// size, and the window is `kernel = stride = input / output` (the windows
/// `[floor(i·in/out), ceil((i+1)·in/out))` of `nn.AdaptiveAvgPool` are then exactly these).
///
/// - `x: [n, C, D, H, W]` (`g.input`); `y: [n, C, oD, oH, oW]` (`g.output`), overwritten,
///   same quantisation as `x`.
///
/// Errors: an output size that does not divide its input size (the windows then differ in
/// size or overlap: not a fixed window), and as [`avg_pool_s8`].
pub fn adaptive_avg_pool_s8(n: usize, g: &AdaptiveGeom, act: ActRange, x: &[i8], y: &mut [i8]) -> Result<()> {
    let mut kernel = [1; 3];
    for ((k, &i), &o) in kernel.iter_mut().zip(&g.input).zip(&g.output) {
        if o == 0 || i % o != 0 {
            return Err(shape_error(
                "int8 AdaptiveAvgPool",
                "the output size must divide the input size (a fixed window)",
                i,
                o,
            ));
        }
        *k = i / o;
    }
    let pg = PoolGeom {
        n,
        c: g.c,
        input: g.input,
        output: g.output,
        kernel,
        stride: kernel,
        dilation: [1; 3],
        pad: [0; 3],
        count_include_pad: false,
    };
    avg_pool_s8(&pg, 0, act, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(k: usize, s: usize, p: usize, out: usize, cip: bool) -> PoolGeom {
        PoolGeom {
            n: 1,
            c: 1,
            input: [1, 1, 4],
            output: [1, 1, out],
            kernel: [1, 1, k],
            stride: [1, 1, s],
            dilation: [1; 3],
            pad: [0, 0, p],
            count_include_pad: cip,
        }
    }

    #[test]
    fn max_known_answers() {
        let x = [-5i8, 3, -100, 7];
        let mut y = [0i8; 2];
        max_pool_s8(&geom(2, 2, 0, 2, false), ActRange::FULL, &x, &mut y).unwrap();
        assert_eq!(y, [3, 7]);
        // Padding 1: windows [-1, 0], [1, 2], [3, 4]; clamp at 5.
        let mut y = [0i8; 3];
        max_pool_s8(&geom(2, 2, 1, 3, false), ActRange { min: -128, max: 5 }, &x, &mut y).unwrap();
        assert_eq!(y, [-5, 3, 5]);
        assert!(max_pool_s8(&geom(2, 2, 0, 3, false), ActRange::FULL, &x, &mut y).is_err());
        assert!(max_pool_s8(&geom(2, 2, 0, 2, false), ActRange::FULL, &x[..3], &mut y[..2]).is_err());
    }

    #[test]
    fn avg_rounds_half_away_from_zero() {
        assert_eq!(rounded_div(3, 2), 2);
        assert_eq!(rounded_div(-3, 2), -2);
        assert_eq!(rounded_div(4, 3), 1);
        assert_eq!(rounded_div(-5, 3), -2);
        assert_eq!(rounded_div(0, 4), 0);
        let x = [1i8, 2, -3, -6];
        let mut y = [0i8; 2];
        avg_pool_s8(&geom(2, 2, 0, 2, false), 0, ActRange::FULL, &x, &mut y).unwrap();
        assert_eq!(y, [2, -5]); // 1.5 -> 2, -4.5 -> -5
                                // Padding 1 with count_include_pad, zero point 10: [pad, 1] = (10 + 1) / 2 -> 6.
        let mut y = [0i8; 3];
        avg_pool_s8(&geom(2, 2, 1, 3, true), 10, ActRange::FULL, &x, &mut y).unwrap();
        assert_eq!(y, [6, -1, 2]);
        avg_pool_s8(&geom(2, 2, 1, 3, false), 10, ActRange::FULL, &x, &mut y).unwrap();
        assert_eq!(y, [1, -1, -6]);
        let dilated = PoolGeom {
            dilation: [1, 1, 2],
            ..geom(2, 2, 0, 1, false)
        };
        assert!(avg_pool_s8(&dilated, 0, ActRange::FULL, &x, &mut y[..1]).is_err());
    }

    #[test]
    fn adaptive_fixed_window() {
        let g = AdaptiveGeom {
            c: 1,
            input: [1, 2, 4],
            output: [1, 1, 2],
        };
        let x = [1i8, 2, 3, 4, 5, 6, 7, 8];
        let mut y = [0i8; 2];
        adaptive_avg_pool_s8(1, &g, ActRange::FULL, &x, &mut y).unwrap();
        assert_eq!(y, [4, 6]); // (1+2+5+6)/4 = 3.5 -> 4, (3+4+7+8)/4 = 5.5 -> 6
        let bad = AdaptiveGeom { output: [1, 1, 3], ..g };
        assert!(adaptive_avg_pool_s8(1, &bad, ActRange::FULL, &x, &mut [0; 3]).is_err());
    }
}
