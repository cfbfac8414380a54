//! int8 convolution (`nn.Conv1d/2d/3d` quantised as TFLite's `CONV_2D` / `DEPTHWISE_CONV_2D`,
//! CMSIS-NN's `arm_convolve_s8` / `arm_depthwise_conv_s8`), NCHW, any stride, padding,
//! dilation and groups (depthwise included), over the f32 core's [`ConvGeom`].
//!
//! ```text
//! acc[n, o, p] = bias[o] + Σ_{c, k} w[o, c, k] · (xpad[n, g·C_in/groups + c, p·stride + k·dilation - pad] - input_zp)
//! y[n, o, p]   = clamp(requantize(acc, multiplier[o], shift[o]) + output_zp, act.min, act.max)
//! ```
//!
//! where `o` is in group `g` and `xpad` reads through the padding mode; with `Zeros` a padded
//! position reads `input_zp` (real 0), so it adds nothing. Accumulation is exact in `i32` (it
//! wraps, as the C kernels do on the target, only past about 66,000 products per output).
//!
//! As CMSIS-NN, the kernel is im2col + a matrix multiply: for a chunk of output positions the
//! caller's `i16` scratch receives, position by position, the `C_in/groups · kD·kH·kW` input
//! values under the window with the zero point already subtracted (`x - input_zp` fits `i16`);
//! each output channel's weight row (`i8`) is then dotted with each position's column
//! (`i32` accumulator). This is the layout of CMSIS-NN's `s8 × s16` kernel, which a Cortex-M4
//! path can feed to `SMLAD` two products at a time.

use super::scheme::{check_zero_point, OutputStage};
use super::{numel, shape_error};
use crate::error::{check_len, Buffer, Error, Result};
use crate::ops::geom::ConvGeom;

/// Elements of `i16` scratch [`conv_s8`] needs at least: one column, `C_in/groups · kD·kH·kW`.
/// More scratch (any multiple) lets it build several output positions' columns at once.
pub const fn conv_s8_scratch_len(g: &ConvGeom) -> usize {
    if g.groups == 0 {
        return 0;
    }
    g.c_in / g.groups * g.kernel_volume()
}

/// int8 convolution forward, as described in the [module docs](self).
///
/// - `x: [N, C_in, D, H, W]` (`g.input`), int8 with zero point `input_zp`;
/// - `w: [C_out, C_in / groups, kD, kH, kW]`, symmetric int8 (zero point 0);
/// - `bias: [C_out]` in the accumulator's scale (`input_scale * w_scale[o]`, zero point 0), empty
///   when `!g.bias`;
/// - `y: [N, C_out, oD, oH, oW]` (`g.output`), overwritten, in the output stage's quantisation;
/// - `scratch: [≥ C_in/groups · kD·kH·kW]` `i16`s ([`conv_s8_scratch_len`]); its contents on
///   return are unspecified.
///
/// Errors (nothing is written): a buffer of the wrong length, an invalid geometry (zero sizes,
/// channels not divisible by groups, a last window past the padding), a zero point outside
/// `[-128, 127]`, or an invalid [`OutputStage`].
#[allow(clippy::too_many_arguments)]
pub fn conv_s8(
    g: &ConvGeom,
    input_zp: i32,
    out: &OutputStage<'_>,
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    y: &mut [i8],
    scratch: &mut [i16],
) -> Result<()> {
    check_conv(g, input_zp, out, x, w, bias, y, scratch)?;
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, k) = (g.in_spatial(), g.out_spatial(), conv_s8_scratch_len(g));
    if k == 0 || out_sp == 0 {
        return Ok(());
    }
    let chunk = (scratch.len() / k).min(out_sp);
    for n in 0..g.n {
        for grp in 0..g.groups {
            let xg = &x[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            let mut p0 = 0;
            while p0 < out_sp {
                let len = chunk.min(out_sp - p0);
                let col = &mut scratch[..len * k];
                im2col_s16(g, xg, input_zp, p0, k, col);
                for o in grp * cout_g..(grp + 1) * cout_g {
                    let w_row = &w[o * k..][..k];
                    let b = bias.get(o).copied().unwrap_or(0);
                    let ms = out.channel(o);
                    let y_row = &mut y[(n * g.c_out + o) * out_sp + p0..][..len];
                    for (yv, c) in y_row.iter_mut().zip(col.chunks_exact(k)) {
                        *yv = out.apply(ms, b.wrapping_add(dot_s8_s16(w_row, c)));
                    }
                }
                p0 += len;
            }
        }
    }
    Ok(())
}

/// `Σ a[i] · b[i]` in `i32`, wrapping.
#[inline]
pub(crate) fn dot_s8_s16(a: &[i8], b: &[i16]) -> i32 {
    a.iter()
        .zip(b)
        .fold(0i32, |acc, (&a, &b)| acc.wrapping_add(a as i32 * b as i32))
}

/// Fills `col` (`[len, k]` with `k = C_in/groups · kD·kH·kW`, position-major) with the windows
/// of output positions `p0 .. p0 + len` of one sample and group `xg: [C_in/groups, D, H, W]`,
/// minus the zero point; a `Zeros`-padded position is 0.
fn im2col_s16(g: &ConvGeom, xg: &[i8], zp: i32, p0: usize, k: usize, col: &mut [i16]) {
    let [id, ih, iw] = g.input;
    let [_, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let (in_sp, kvol, cin_g) = (g.in_spatial(), g.kernel_volume(), g.c_in / g.groups);
    let start = |o: usize, d: usize| (o * g.stride[d]) as isize - g.pad[d] as isize;
    for (i, c_col) in col.chunks_exact_mut(k).enumerate() {
        let p = p0 + i;
        let (z, r, s) = (p / (oh * ow), p / ow % oh, p % ow);
        let (z0, r0, s0) = (start(z, 0), start(r, 1), start(s, 2));
        let mut j = 0;
        for a in 0..kd {
            let zi = g.mode.map(z0 + (a * g.dilation[0]) as isize, id);
            for b in 0..kh {
                let ri = g.mode.map(r0 + (b * g.dilation[1]) as isize, ih);
                for e in 0..kw {
                    let si = g.mode.map(s0 + (e * g.dilation[2]) as isize, iw);
                    let at = match (zi, ri, si) {
                        (Some(zi), Some(ri), Some(si)) => Some((zi * ih + ri) * iw + si),
                        _ => None,
                    };
                    for c in 0..cin_g {
                        c_col[c * kvol + j] = match at {
                            Some(at) => (xg[c * in_sp + at] as i32 - zp) as i16,
                            None => 0,
                        };
                    }
                    j += 1;
                }
            }
        }
    }
}

/// All of [`conv_s8`]'s checks.
#[allow(clippy::too_many_arguments)]
fn check_conv(
    g: &ConvGeom,
    input_zp: i32,
    out: &OutputStage<'_>,
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    y: &[i8],
    scratch: &[i16],
) -> Result<()> {
    const OP: &str = "int8 Conv";
    if g.groups == 0 || g.c_in % g.groups != 0 || g.c_out % g.groups != 0 || g.c_out == 0 || g.c_in == 0 {
        return Err(shape_error(
            OP,
            "channels must be positive multiples of groups",
            g.groups,
            g.c_in,
        ));
    }
    for d in 0..3 {
        check_window(
            OP,
            g.input[d],
            g.output[d],
            g.kernel[d],
            g.stride[d],
            g.dilation[d],
            g.pad[d],
        )?;
    }
    check_zero_point("input zero point", input_zp)?;
    out.check(g.c_out)?;
    let in_sp = numel(OP, &g.input)?;
    let out_sp = numel(OP, &g.output)?;
    let kvol = numel(OP, &g.kernel)?;
    check_len(Buffer::Input, numel(OP, &[g.n, g.c_in, in_sp])?, x.len())?;
    check_len(Buffer::Params, numel(OP, &[g.c_out, g.c_in / g.groups, kvol])?, w.len())?;
    check_len(Buffer::Params, if g.bias { g.c_out } else { 0 }, bias.len())?;
    check_len(Buffer::Output, numel(OP, &[g.n, g.c_out, out_sp])?, y.len())?;
    let k = g.c_in / g.groups * kvol;
    if scratch.len() < k {
        return Err(Error::BufferLength {
            buffer: Buffer::Scratch,
            expected: k,
            found: scratch.len(),
        });
    }
    Ok(())
}

/// Checks one spatial dim of a sliding window: positive sizes, and the last window
/// `(output - 1) · stride + (kernel - 1) · dilation` (in padded coordinates) within
/// `input + 2 · pad` (one position past the symmetric padding, as `padding='same'` with an odd
/// total pads one more at the back). Keeps every index computation far from overflow.
pub(crate) fn check_window(
    op: &'static str,
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
) -> Result<()> {
    if input == 0 || output == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return Err(shape_error(
            op,
            "sizes, kernel, stride and dilation must be positive",
            1,
            0,
        ));
    }
    let last = (output - 1)
        .checked_mul(stride)
        .zip((kernel - 1).checked_mul(dilation))
        .and_then(|(a, b)| a.checked_add(b));
    let limit = pad.checked_mul(2).and_then(|p| p.checked_add(input));
    match (last, limit) {
        (Some(last), Some(limit)) if last <= limit && limit <= isize::MAX as usize / 2 => Ok(()),
        _ => Err(shape_error(
            op,
            "the last window reaches past the padded input",
            limit.unwrap_or(usize::MAX),
            last.unwrap_or(usize::MAX),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::geom::PaddingMode;
    use crate::quant::scheme::ActRange;

    fn geom_3x3(pad: usize) -> ConvGeom {
        ConvGeom {
            n: 1,
            c_in: 1,
            c_out: 1,
            groups: 1,
            input: [1, 3, 3],
            output: [1, 3 + 2 * pad - 2, 3 + 2 * pad - 2],
            kernel: [1, 3, 3],
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0, pad, pad],
            mode: PaddingMode::Zeros,
            bias: true,
        }
    }

    #[test]
    fn box_filter_known_answer() {
        // All-ones 3x3 weights, x - zp = 1..9, bias 5, multiplier 0.5: (45 + 5) / 2 = 25, + zp 3.
        let g = geom_3x3(0);
        let x: [i8; 9] = core::array::from_fn(|i| i as i8 + 1 - 10);
        let out = OutputStage {
            multiplier: &[1 << 30],
            shift: &[0],
            output_zp: 3,
            act: ActRange::FULL,
        };
        let mut y = [0i8; 1];
        let mut scratch = [0i16; 9];
        conv_s8(&g, -10, &out, &x, &[1; 9], &[5], &mut y, &mut scratch).unwrap();
        assert_eq!(y, [28]);
    }

    #[test]
    fn padding_reads_the_zero_point() {
        // Padding 1: the corner output sums 4 inputs; x - zp = 2 everywhere -> 8; clamp at 7.
        let g = geom_3x3(1);
        let x = [-8i8; 9];
        let out = OutputStage {
            multiplier: &[1 << 30],
            shift: &[1],
            output_zp: 0,
            act: ActRange { min: -128, max: 17 },
        };
        let mut y = [0i8; 9];
        let mut scratch = [0i16; 20]; // two columns at a time, then one
        conv_s8(&g, -10, &out, &x, &[1; 9], &[0], &mut y, &mut scratch).unwrap();
        assert_eq!(y, [8, 12, 8, 12, 17, 12, 8, 12, 8]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let g = geom_3x3(0);
        let out = OutputStage {
            multiplier: &[1 << 30],
            shift: &[0],
            output_zp: 0,
            act: ActRange::FULL,
        };
        let (x, w, mut y, mut s) = ([0i8; 9], [0i8; 9], [0i8; 1], [0i16; 9]);
        assert!(conv_s8(&g, 0, &out, &x[..8], &w, &[0], &mut y, &mut s).is_err());
        assert!(conv_s8(&g, 0, &out, &x, &w, &[], &mut y, &mut s).is_err());
        assert!(conv_s8(&g, 0, &out, &x, &w, &[0], &mut y, &mut s[..8]).is_err());
        assert!(conv_s8(&g, 300, &out, &x, &w, &[0], &mut y, &mut s).is_err());
        // One window past the padding ('same' padding's extra back position is allowed: [1, 2, 2]).
        let bad = ConvGeom { output: [1, 3, 3], ..g };
        assert!(conv_s8(&bad, 0, &out, &x, &w, &[0], &mut [0; 9], &mut s).is_err());
        let bad = ConvGeom { groups: 0, ..g };
        assert!(conv_s8(&bad, 0, &out, &x, &w, &[0], &mut y, &mut s).is_err());
        let bad = ConvGeom {
            stride: [1, usize::MAX, 1],
            output: [1, 2, 1],
            ..g
        };
        assert!(conv_s8(&bad, 0, &out, &x, &w, &[0], &mut [0; 2], &mut s).is_err());
        assert!(conv_s8(&g, 0, &out, &x, &w, &[0], &mut y, &mut s).is_ok());
    }
}
