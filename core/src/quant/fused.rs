//! int8 `Conv -> [BatchNorm] -> [ReLU | ReLU6] -> MaxPool | AvgPool` in one pass, where the
//! inference plan fused the chain ([`Fuse::ConvPool`](crate::plan::Fuse)): the convolution's
//! output never exists whole; for each pooled output row the convolution computes the rows
//! that row's windows cover (every output channel) into a band of the arena, and the pool
//! reduces them straight into its output.
//!
//! Bit for bit as the unfused pair (`conv_s8` then `max_pool_s8`/`avg_pool_s8`): the same
//! wrapping `i32` accumulation of `w · (x - input_zp)` from the bias (zero padding reads
//! `input_zp`, a zero term), the same output stage, and the same pooling arithmetic (the plan
//! fuses only pools without padding or dilation whose windows lie inside the convolution's
//! output). The BatchNorm and the activation were folded into the weights and the output
//! stage when the model was quantised.

use super::exec::{located, node_params, producer_params, Arenas};
use super::network::QuantWeights;
use super::scheme::OutputStage;
use crate::error::{Error, Result};
use crate::ops::geom::{ConvGeom, PoolGeom};
use crate::plan::{Exec, Plan, INPUT};

/// Elements of the `i8` band a fused pool `pool` over convolution `g` needs: every output
/// channel of the conv rows one pooled row covers.
pub fn band_len(g: &ConvGeom, pool: &Exec) -> usize {
    match pool {
        Exec::MaxPool(p) | Exec::AvgPool(p) => g.c_out.saturating_mul(p.kernel[1]).saturating_mul(g.output[2]),
        _ => 0,
    }
}

/// Runs fused pool node `i` (convolution node `conv`) on `n` samples.
pub(crate) fn conv_pool<const CAP: usize>(
    plan: &Plan<CAP>,
    w: &QuantWeights<'_>,
    i: usize,
    conv: usize,
    n: usize,
    io: &mut Arenas<'_>,
) -> Result<()> {
    let node = &plan.nodes()[i];
    let cnode = plan.nodes().get(conv).ok_or(Error::Structure {
        what: "a fused pool names a convolution past the plan",
    })?;
    let (Exec::Conv(g), Exec::MaxPool(p) | Exec::AvgPool(p)) = (cnode.exec, node.exec) else {
        return Err(Error::Structure {
            what: "a fused int8 pool that is not a pool over a convolution",
        });
    };
    let is_max = matches!(node.exec, Exec::MaxPool(_));
    let fusable = g.input[0] == 1
        && g.kernel[0] == 1
        && p.input[0] == 1
        && p.pad == [0; 3]
        && p.dilation == [1; 3]
        && p.input[1..] == g.output[1..]
        && p.c == g.c_out
        && (0..p.output[1]).all(|r| r * p.stride[1] + p.kernel[1] <= p.input[1])
        && (0..p.output[2]).all(|s| s * p.stride[2] + p.kernel[2] <= p.input[2]);
    if !fusable {
        return Err(Error::Unsupported {
            layer: i,
            op: node.op_name,
            what: "an int8 fused pool needs a 1-d/2-d pool without padding or dilation inside its convolution's output",
        });
    }
    let rec = &w.nodes[conv];
    let params = node_params(plan, w, conv, rec)?;
    params.stage.check(g.c_out).map_err(|e| located(e, conv, cnode))?;
    let in_zp = producer_params(plan, w, cnode.inputs[0]).zero_point;
    let base = io.layout.slots_base;
    let in_sp = g.in_spatial();
    let x_len = g.c_in * in_sp;
    let x_start = match cnode.inputs[0] {
        INPUT => 0,
        q => base + plan.nodes()[q as usize].out.offset,
    };
    let y_start = base + node.out.offset;
    let y_len = p.c * p.out_spatial();
    let band_len = band_len(&g, &node.exec);
    let band_start = io.layout.band_base;
    let k_len = g.c_in / g.groups.max(1) * g.kernel_volume();
    if params.w.len() != g.c_out * k_len || g.groups == 0 || g.c_in % g.groups != 0 || g.c_out % g.groups != 0 {
        return Err(Error::Structure {
            what: "a fused int8 convolution's weights do not match its geometry",
        });
    }
    for s in 0..n {
        let xs = x_start + s * x_len;
        let ys = y_start + s * y_len;
        let bad = Error::Structure {
            what: "internal: a fused int8 pool's buffers exceed or overlap in the arena",
        };
        // The band lies after every slot; input and output are distinct slots (the conv's
        // input is live while the pool writes).
        let (lo, band) = io.arena.split_at_mut(band_start);
        let band = band.get_mut(..band_len).ok_or(bad)?;
        let (x, y) = if xs + x_len <= ys {
            let (l, r) = lo.split_at_mut(ys);
            (l.get(xs..xs + x_len).ok_or(bad)?, r.get_mut(..y_len).ok_or(bad)?)
        } else if ys + y_len <= xs {
            let (l, r) = lo.split_at_mut(xs);
            (r.get(..x_len).ok_or(bad)?, l.get_mut(ys..ys + y_len).ok_or(bad)?)
        } else {
            return Err(bad);
        };
        for r in 0..p.output[1] {
            conv_rows(
                &g,
                in_zp,
                &params.stage,
                x,
                params.w,
                params.bias,
                r * p.stride[1],
                p.kernel[1],
                band,
            );
            pool_row(&p, is_max, band, r, y);
        }
    }
    Ok(())
}

/// Output positions `ox` whose input column `ox · stride + off` lies in `[0, iw)`: a range.
fn valid_cols(off: isize, stride: usize, iw: usize) -> core::ops::Range<usize> {
    let s = stride.max(1) as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let room = iw as isize - off;
    let hi = if room <= 0 { 0 } else { (room + s - 1) / s };
    lo as usize..(hi.max(lo)) as usize
}

/// Conv output rows `r0 .. r0 + rows` of one sample, every channel, into
/// `band: [C_out, rows, oW]`; `x: [C_in, H, W]`, `w: [C_out, C_in/groups, 1, kH, kW]`.
///
/// Accumulates a chunk of [`CHUNK`] output columns at a time, one weight at a time over the
/// chunk (the inner loop is a strided row of the input, which the compiler vectorises for
/// stride 1); the wrapping `i32` sum is the same as `conv_s8`'s in any order.
#[allow(clippy::too_many_arguments)]
fn conv_rows(
    g: &ConvGeom,
    zp: i32,
    st: &OutputStage<'_>,
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    r0: usize,
    rows: usize,
    band: &mut [i8],
) {
    let [_, ih, iw] = g.input;
    let [_, kh, kw] = g.kernel;
    let (ow, sx) = (g.output[2], g.stride[2]);
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    for o in 0..g.c_out {
        let grp = o / cout_g;
        let wo = &w[o * cin_g * kh * kw..][..cin_g * kh * kw];
        let ms = st.channel(o);
        let b = bias.get(o).copied().unwrap_or(0);
        for dr in 0..rows {
            let oy = r0 + dr;
            let mut x0 = 0;
            while x0 < ow {
                let len = CHUNK.min(ow - x0);
                let mut acc = [b; CHUNK];
                for ci in 0..cin_g {
                    let xc = &x[(grp * cin_g + ci) * ih * iw..][..ih * iw];
                    for ky in 0..kh {
                        let iy = (oy * g.stride[1] + ky * g.dilation[1]) as isize - g.pad[1] as isize;
                        if iy < 0 || iy >= ih as isize {
                            continue;
                        }
                        let xr = &xc[iy as usize * iw..][..iw];
                        for (kx, &wv) in wo[(ci * kh + ky) * kw..][..kw].iter().enumerate() {
                            let off = (kx * g.dilation[2]) as isize - g.pad[2] as isize;
                            let cols = valid_cols(off, sx, iw);
                            let (j0, j1) = (cols.start.max(x0), cols.end.min(x0 + len));
                            let wv = wv as i32;
                            if j0 >= j1 || wv == 0 {
                                continue;
                            }
                            let accs = &mut acc[j0 - x0..j1 - x0];
                            let first = (j0 * sx) as isize + off;
                            // `first >= 0` and the last column `< iw` by `valid_cols`.
                            let xs = &xr[first as usize..];
                            if sx == 1 {
                                for (a, &xv) in accs.iter_mut().zip(xs) {
                                    *a = a.wrapping_add(wv * (xv as i32 - zp));
                                }
                            } else {
                                for (a, &xv) in accs.iter_mut().zip(xs.iter().step_by(sx)) {
                                    *a = a.wrapping_add(wv * (xv as i32 - zp));
                                }
                            }
                        }
                    }
                }
                let out = &mut band[(o * rows + dr) * ow + x0..][..len];
                for (q, &a) in out.iter_mut().zip(&acc[..len]) {
                    *q = st.apply(ms, a);
                }
                x0 += len;
            }
        }
    }
}

/// Output columns accumulated at once in [`conv_rows`] (a stack array of `i32`s); 4 in unit
/// tests, so that rows of several chunks are tested.
const CHUNK: usize = if cfg!(test) { 4 } else { 32 };

/// Pools the band (`[C, kH, W]`, the conv rows of pooled row `r`) into row `r` of
/// `y: [C, oH, oW]`, as `max_pool_s8`/`avg_pool_s8` without padding.
fn pool_row(p: &PoolGeom, is_max: bool, band: &[i8], r: usize, y: &mut [i8]) {
    let [_, kh, kw] = p.kernel;
    let (w, [_, oh, ow]) = (p.input[2], p.output);
    let count = (kh * kw) as i64;
    for c in 0..p.c {
        for s in 0..ow {
            let x0 = s * p.stride[2];
            let window = (0..kh).flat_map(|dy| band[(c * kh + dy) * w + x0..][..kw].iter().copied());
            y[(c * oh + r) * ow + s] = if is_max {
                window.max().unwrap_or(i8::MIN)
            } else {
                let sum: i64 = window.map(i64::from).sum();
                let half = count / 2;
                let q = if sum > 0 {
                    (sum + half) / count
                } else {
                    (sum - half) / count
                };
                q.clamp(-128, 127) as i8
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::geom::PaddingMode;
    use crate::quant::{avg_pool_s8, conv_s8, max_pool_s8, ActRange};
    use crate::rng::Rng;

    /// The fused rows agree bit for bit with `conv_s8` then `max_pool_s8`/`avg_pool_s8` on
    /// random geometry (stride, padding, dilation, groups; pool kernel and stride).
    #[test]
    fn fused_rows_match_the_unfused_pair() {
        let mut rng = Rng::new(7);
        for case in 0..40u32 {
            let r = |rng: &mut Rng, n: u32| 1 + rng.below(n) as usize;
            let groups = r(&mut rng, 2);
            let (c_in, c_out) = (groups * r(&mut rng, 3), groups * r(&mut rng, 3));
            let (h, w) = (4 + r(&mut rng, 6), 4 + r(&mut rng, 6));
            let (k, s, d, p) = (r(&mut rng, 3), r(&mut rng, 2), r(&mut rng, 2), rng.below(2) as usize);
            let span = d * (k - 1) + 1;
            if h + 2 * p < span + 1 || w + 2 * p < span + 1 {
                continue;
            }
            let (oh, ow) = ((h + 2 * p - span) / s + 1, (w + 2 * p - span) / s + 1);
            let g = ConvGeom {
                n: 1,
                c_in,
                c_out,
                groups,
                input: [1, h, w],
                output: [1, oh, ow],
                kernel: [1, k, k],
                stride: [1, s, s],
                dilation: [1, d, d],
                pad: [0, p, p],
                mode: PaddingMode::Zeros,
                bias: true,
            };
            let (pk, ps) = (r(&mut rng, 2).min(oh).min(ow), r(&mut rng, 2));
            let pg = PoolGeom {
                n: 1,
                c: c_out,
                input: [1, oh, ow],
                output: [1, (oh - pk) / ps + 1, (ow - pk) / ps + 1],
                kernel: [1, pk, pk],
                stride: [1, ps, ps],
                dilation: [1; 3],
                pad: [0; 3],
                count_include_pad: true,
            };
            let byte = |rng: &mut Rng| rng.below(256) as i32 as i8 ^ i8::MIN;
            let x: [i8; 1024] = core::array::from_fn(|_| byte(&mut rng));
            let wts: [i8; 400] = core::array::from_fn(|_| byte(&mut rng));
            let bias: [i32; 16] = core::array::from_fn(|_| rng.below(2000) as i32 - 1000);
            let (m, sh) = ([1_500_000_000i32; 16], [-9i32; 16]);
            let st = OutputStage {
                multiplier: &m[..c_out],
                shift: &sh[..c_out],
                output_zp: -3,
                act: ActRange { min: -100, max: 110 },
            };
            let (xl, wl) = (c_in * h * w, c_out * (c_in / groups) * k * k);
            let (x, wts, bias) = (&x[..xl], &wts[..wl], &bias[..c_out]);
            let mut conv = [0i8; 1600];
            let conv = &mut conv[..c_out * oh * ow];
            let mut scratch = [0i16; 64];
            conv_s8(&g, 5, &st, x, wts, bias, conv, &mut scratch).unwrap();
            let out_len = c_out * pg.out_spatial();
            for is_max in [true, false] {
                let mut want = [0i8; 1600];
                if is_max {
                    max_pool_s8(&pg, ActRange::FULL, conv, &mut want[..out_len]).unwrap();
                } else {
                    avg_pool_s8(&pg, -3, ActRange::FULL, conv, &mut want[..out_len]).unwrap();
                }
                let mut got = [0i8; 1600];
                let mut band = [0i8; 1600];
                for row in 0..pg.output[1] {
                    conv_rows(&g, 5, &st, x, wts, bias, row * ps, pk, &mut band);
                    pool_row(&pg, is_max, &band, row, &mut got[..out_len]);
                }
                assert_eq!(&got[..out_len], &want[..out_len], "case {case} max {is_max}");
            }
        }
    }
}
