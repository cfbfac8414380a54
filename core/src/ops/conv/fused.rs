//! Convolution, activation and pooling in one pass, for fused inference plans
//! ([`crate::plan::fuse`]): the convolution's output is computed a few rows at a time, one
//! output channel at a time, and pooled at once, so it is never stored whole.
//!
//! The convolution is direct (no im2col): each output row is the bias plus, for every input
//! channel of its group and every kernel tap, a weight times a shifted input row; the inner
//! loop runs along the row, contiguous in memory for stride 1.

use super::ConvGeom;
use crate::ops::geom::PoolGeom;
use crate::plan::FusedAct;

/// Which pooling a fused pass ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `MaxPool`: the largest value of each window (NaN wins, as in PyTorch).
    Max,
    /// `AvgPool`: the mean of each window (whole windows only: no padding).
    Avg,
}

/// Fused `pool(act(conv(x)))` for 1-d and 2-d convolutions with zero padding, pools without
/// padding or dilation whose windows lie inside the convolution's output.
///
/// - `c`: the convolution's geometry (`c.n` samples); `p`: the pool's (`p.input` is the
///   convolution's output size);
/// - `x`: `[N, C_in, H, W]`; `w`: `[C_out, C_in / groups, kH, kW]`; `bias`: `[C_out]` or empty;
/// - `y`: `[N, C_out, pH, pW]`, overwritten;
/// - `work`: at least `p.kernel[1] · W_conv` floats of scratch.
#[allow(clippy::too_many_arguments)]
pub fn conv_pool_forward(
    c: &ConvGeom,
    act: FusedAct,
    pool: PoolKind,
    p: &PoolGeom,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    work: &mut [f32],
) {
    let in_plane = c.input[1] * c.input[2];
    let cw = c.output[2];
    let (ph, pw) = (p.output[1], p.output[2]);
    let (pkh, pkw) = (p.kernel[1], p.kernel[2]);
    let taps = (c.c_in / c.groups) * c.kernel[1] * c.kernel[2];
    let cout_g = c.c_out / c.groups;
    let rows = &mut work[..pkh * cw];
    let divisor = (pkh * pkw) as f32;
    for s in 0..c.n {
        let xs = &x[s * c.c_in * in_plane..(s + 1) * c.c_in * in_plane];
        for oc in 0..c.c_out {
            let wk = &w[oc * taps..(oc + 1) * taps];
            let b = bias.get(oc).copied().unwrap_or(0.0);
            let group = oc / cout_g;
            let out = &mut y[(s * c.c_out + oc) * ph * pw..][..ph * pw];
            for oy in 0..ph {
                for r in 0..pkh {
                    let row = &mut rows[r * cw..(r + 1) * cw];
                    conv_row(c, xs, group, wk, b, oy * p.stride[1] + r, row);
                    for v in row.iter_mut() {
                        *v = act.apply(*v);
                    }
                }
                for ox in 0..pw {
                    let x0 = ox * p.stride[2];
                    out[oy * pw + ox] = match pool {
                        PoolKind::Max => {
                            let mut best = f32::NEG_INFINITY;
                            for r in 0..pkh {
                                for &v in &rows[r * cw + x0..r * cw + x0 + pkw] {
                                    if v > best || v.is_nan() {
                                        best = v;
                                    }
                                }
                            }
                            best
                        }
                        PoolKind::Avg => {
                            let mut sum = 0.0;
                            for r in 0..pkh {
                                for &v in &rows[r * cw + x0..r * cw + x0 + pkw] {
                                    sum += v;
                                }
                            }
                            sum / divisor
                        }
                    };
                }
            }
        }
    }
}

/// Row `cy` of output channel `wk`'s convolution (of `group`) of one sample `xs`, into `row`.
fn conv_row(c: &ConvGeom, xs: &[f32], group: usize, wk: &[f32], bias: f32, cy: usize, row: &mut [f32]) {
    let [_, ih, iw] = c.input;
    let [_, kh, kw] = c.kernel;
    let [_, sh, sw] = c.stride;
    let [_, dh, dw] = c.dilation;
    let [_, padh, padw] = c.pad;
    let cin_g = c.c_in / c.groups;
    let cw = row.len();
    row.fill(bias);
    for ci in 0..cin_g {
        let xc = &xs[(group * cin_g + ci) * ih * iw..][..ih * iw];
        for ky in 0..kh {
            let iy = cy * sh + ky * dh;
            if iy < padh || iy - padh >= ih {
                continue;
            }
            let xr = &xc[(iy - padh) * iw..][..iw];
            for kx in 0..kw {
                let wv = wk[(ci * kh + ky) * kw + kx];
                // Input column of output column cx: cx·sw + kx·dw - padw, inside [0, iw).
                let off = kx * dw;
                let lo = if off >= padw { 0 } else { (padw - off).div_ceil(sw) };
                let hi = if iw + padw > off {
                    cw.min((iw + padw - off - 1) / sw + 1)
                } else {
                    0
                };
                if lo >= hi {
                    continue;
                }
                let start = lo * sw + off - padw;
                if sw == 1 {
                    for (o, &xv) in row[lo..hi].iter_mut().zip(&xr[start..start + (hi - lo)]) {
                        *o += wv * xv;
                    }
                } else {
                    for (k, o) in row[lo..hi].iter_mut().enumerate() {
                        *o += wv * xr[start + k * sw];
                    }
                }
            }
        }
    }
}
