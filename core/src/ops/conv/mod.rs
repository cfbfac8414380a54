//! Convolution (`nn.Conv1d`, `nn.Conv2d`, `nn.Conv3d`): forward, input gradient and weight
//! gradient, all through one 3-d implementation over [`ConvGeom`].
//!
//! 1-d and 2-d convolutions set the leading spatial dims to 1. Each sample and group is lowered
//! to a matrix multiply (`im2col` + [`Gemm`]): the *column* matrix `col[C_in/g · kD·kH·kW, oD·oH·oW]`
//! holds, for every output position, the input values under the kernel window, so that
//!
//! ```text
//! y[n, g] = W[g] · col(x[n, g])                       (forward)
//! dcol    = W[g]ᵀ · gy[n, g],  gx[n, g] += col2im(dcol) (input gradient)
//! gw[g]  += gy[n, g] · col(x[n, g])ᵀ                  (weight gradient)
//! ```
//!
//! Padding reads through [`PaddingMode::map`]: zeros, or the reflected / replicated / wrapped
//! input element. As PyTorch pads explicitly and then convolves, the gradient of a padded
//! element flows back to the input element it was read from.
//!
//! The column matrix is built for a chunk of output positions at a time (at most
//! [`COL_BUDGET`] floats, 256 KiB), which keeps it in cache on a desktop and bounds the scratch
//! an MCU must provide: [`conv_workspace_len`] floats of `work`. A pointwise convolution
//! (kernel 1, stride 1, no padding) multiplies the input directly and needs no scratch.
//!
//! Each kernel has a `_with` twin that takes the matrix multiply to use ([`Gemm`]); the plain
//! names use [`Portable`].
//!
//! See <https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html>.

mod epilogue;
pub mod fused;
mod im2col;

use self::im2col::{col2im, im2col};
// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.Conv1d/2d/3d` on the node's input shape: PyTorch's checks, the output size, the
/// parameter count and the scratch of both passes.
pub(crate) const fn plan(c: &Conv, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, c.dims as usize + 1));
    if c.in_channels != s.channels() {
        return Err(at.err(
            "in_channels differs from the channels of its input",
            c.in_channels,
            s.channels(),
        ));
    }
    if c.groups == 0 || c.in_channels % c.groups != 0 {
        return Err(at.err("in_channels must be divisible by groups", c.groups, c.in_channels));
    }
    if c.out_channels == 0 || c.out_channels % c.groups != 0 {
        return Err(at.err(
            "out_channels must be a positive multiple of groups",
            c.groups,
            c.out_channels,
        ));
    }
    let inp = s.spatial3();
    let mut pad = [0usize; 3];
    let mut out = [1usize; 3];
    let mut d = 0;
    while d < 3 {
        let (p, o) = ctry!(plan_dim(c, at, inp[d], d));
        pad[d] = p;
        out[d] = o;
        d += 1;
    }
    let g = ConvGeom {
        n: at.batch,
        c_in: c.in_channels,
        c_out: c.out_channels,
        groups: c.groups,
        input: inp,
        output: out,
        kernel: c.kernel_size,
        stride: c.stride,
        dilation: c.dilation,
        pad,
        mode: c.padding_mode,
        bias: c.bias,
    };
    node.exec = crate::plan::Exec::Conv(g);
    // g.weight_len(), checked: absurd channel counts are TooLarge, never a wrapped count.
    let per_group = crate::plan::product_len(g.c_out, g.c_in / g.groups);
    let k = g.kernel;
    let volume = crate::plan::product_len(crate::plan::product_len(k[0], k[1]), k[2]);
    node.weight_len = crate::plan::product_len(per_group, volume);
    node.bias_len = if c.bias { c.out_channels } else { 0 };
    node.out_shape = Shape::with_spatial3(s.rank(), c.out_channels, out);
    node.work_fwd.len = conv_workspace_len(&g);
    node.work_bwd.len = conv_workspace_len(&g);
    Ok(())
}

/// One spatial dim of [`plan`]: the front padding and the output size.
const fn plan_dim(c: &Conv, at: At, input: usize, d: usize) -> Result<(usize, usize)> {
    let (k, dil, stride) = (c.kernel_size[d], c.dilation[d], c.stride[d]);
    if k == 0 || stride == 0 || dil == 0 {
        return Err(at.err("kernel_size, stride and dilation must be positive", 1, 0));
    }
    let (pad, pad_back) = match c.padding {
        Padding::Explicit(p) => (p[d], p[d]),
        Padding::Valid => (0, 0),
        Padding::Same => {
            if stride != 1 {
                return Err(at.err("padding='same' needs stride 1", 1, stride));
            }
            let total = dil * (k - 1);
            (total / 2, total - total / 2)
        }
    };
    let limit = match c.padding_mode {
        PaddingMode::Zeros | PaddingMode::Replicate => usize::MAX,
        PaddingMode::Reflect => input - 1,
        PaddingMode::Circular => input,
    };
    if pad > limit || pad_back > limit {
        return Err(at.err(
            "padding too large for reflect/circular padding_mode on this input",
            limit,
            pad,
        ));
    }
    match window_out(input, k, stride, pad, pad_back, dil, false) {
        Some(o) => Ok((pad, o)),
        None => Err(at.err(
            "input (with padding) is smaller than the dilated kernel",
            dil * (k - 1) + 1,
            input + pad + pad_back,
        )),
    }
}

/// The network's forward pass of a convolution node.
pub(crate) fn forward(mut g: ConvGeom, io: &mut Fwd<'_>) {
    g.n = io.n;
    conv_forward_with(io.gemm, &g, io.x, io.w, io.bias, io.y, io.work);
}

/// The network's backward pass of a convolution node: input gradient (when wanted), then
/// weight and bias gradients.
pub(crate) fn backward(mut g: ConvGeom, io: &mut Bwd<'_>) {
    g.n = io.n;
    if io.has_gx() {
        conv_backward_input_with(io.gemm, &g, io.w, io.gy, io.gx, io.work);
    }
    conv_backward_weight_with(io.gemm, &g, io.x, io.gy, io.gw, io.gbias, io.work);
}

#[cfg(test)]
use self::im2col::{col2im_mode, col2im_unit_zeros, im2col_mode, im2col_unit_zeros, is_unit_zeros};
use super::geom::window_out;
use super::geom::{ConvGeom, PaddingMode};
use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::kernels::{Gemm, MatRef, Portable};
use crate::layer::{Conv, Padding};
use crate::plan::{At, Node};
use crate::shape::Shape;

/// Whether the convolution reads its input directly as the column matrix (no scratch): kernel
/// 1, stride 1, no padding, and output dims equal to input dims (which a transposed
/// convolution's dual geometry with `output_padding` does not have).
const fn is_pointwise(g: &ConvGeom) -> bool {
    g.input[0] == g.output[0]
        && g.input[1] == g.output[1]
        && g.input[2] == g.output[2]
        && g.kernel[0] == 1
        && g.kernel[1] == 1
        && g.kernel[2] == 1
        && g.stride[0] == 1
        && g.stride[1] == 1
        && g.stride[2] == 1
        && g.pad[0] == 0
        && g.pad[1] == 0
        && g.pad[2] == 0
}

/// Rows of the column matrix: `C_in / groups · kD · kH · kW`.
pub(super) const fn col_rows(g: &ConvGeom) -> usize {
    g.c_in / g.groups * g.kernel_volume()
}

/// Most floats of column matrix built at once (unless one output position alone needs more).
pub const COL_BUDGET: usize = 1 << 16;

/// Output positions per column-matrix chunk: all of them if the whole matrix fits in
/// [`COL_BUDGET`], else the most that fit, rounded down to a multiple of 16 (the matrix
/// multiply's tile width) when that leaves at least 32.
const fn chunk_len(g: &ConvGeom) -> usize {
    let (rows, l) = (col_rows(g), g.out_spatial());
    if rows * l <= COL_BUDGET {
        return l;
    }
    let c = COL_BUDGET / rows;
    let c = if c >= 32 {
        c - c % 16
    } else if c == 0 {
        1
    } else {
        c
    };
    if c < l {
        c
    } else {
        l
    }
}

/// Floats of scratch one call of any conv kernel below needs: a chunk of the column matrix of
/// one sample and group, `C_in / groups · kD·kH·kW` rows by up to `oD·oH·oW` output positions,
/// at most [`COL_BUDGET`] floats unless a single output position needs more; 0 for a pointwise
/// convolution (kernel 1, stride 1, no padding), which needs none.
pub const fn conv_workspace_len(g: &ConvGeom) -> usize {
    if is_pointwise(g) {
        0
    } else {
        col_rows(g) * chunk_len(g)
    }
}

/// Convolution forward: `y = conv(x, w) + b`.
///
/// - `x`: `[N, C_in, D, H, W]`;
/// - `w`: `[C_out, C_in / groups, kD, kH, kW]`;
/// - `b`: `[C_out]`, empty when `!g.bias`;
/// - `y`: `[N, C_out, oD, oH, oW]`, overwritten;
/// - `work`: at least [`conv_workspace_len`] floats of scratch.
///
/// `y[n, o, p] = b[o] + Σ_{c, k} w[o, c, k] · xpad[n, g·C_in/groups + c, p·stride + k·dilation - pad]`
/// where `o` is in group `g` and `xpad` reads through the padding mode.
pub fn conv_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], work: &mut [f32]) {
    conv_forward_with(&Portable, g, x, w, b, y, work);
}

/// [`conv_forward`] with the matrix multiply `gemm` (same shapes and result, to rounding).
pub fn conv_forward_with(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    work: &mut [f32],
) {
    forward_into(gemm, g, x, w, if g.bias { Some(b) } else { None }, y, work, false);
}

/// Convolution input gradient: `gx += dL/dx` given `gy = dL/dy`.
///
/// - `w`: `[C_out, C_in / groups, kD, kH, kW]`;
/// - `gy`: `[N, C_out, oD, oH, oW]`;
/// - `gx`: `[N, C_in, D, H, W]`, accumulated;
/// - `work`: at least [`conv_workspace_len`] floats of scratch.
///
/// `gx[n, c, i] += Σ w[o, c, k] · gy[n, o, p]` over every output position `p` and kernel
/// offset `k` whose (padded, mapped) input index is `i`.
pub fn conv_backward_input(g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32], work: &mut [f32]) {
    conv_backward_input_with(&Portable, g, w, gy, gx, work);
}

/// [`conv_backward_input`] with the matrix multiply `gemm`.
pub fn conv_backward_input_with(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    work: &mut [f32],
) {
    backward_input_into(gemm, g, w, gy, gx, work);
}

/// Convolution parameter gradients: `gw += dL/dw`, `gb += dL/db`.
///
/// - `x`: `[N, C_in, D, H, W]` (the forward input);
/// - `gy`: `[N, C_out, oD, oH, oW]`;
/// - `gw`: `[C_out, C_in / groups, kD, kH, kW]`, accumulated;
/// - `gb`: `[C_out]`, accumulated; empty when `!g.bias`;
/// - `work`: at least [`conv_workspace_len`] floats of scratch.
///
/// `gw[o, c, k] += Σ_{n, p} gy[n, o, p] · xpad[n, g·C_in/groups + c, p·stride + k·dilation - pad]`,
/// `gb[o] += Σ_{n, p} gy[n, o, p]`.
pub fn conv_backward_weight(g: &ConvGeom, x: &[f32], gy: &[f32], gw: &mut [f32], gb: &mut [f32], work: &mut [f32]) {
    conv_backward_weight_with(&Portable, g, x, gy, gw, gb, work);
}

/// [`conv_backward_weight`] with the matrix multiply `gemm`.
pub fn conv_backward_weight_with(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
    work: &mut [f32],
) {
    if g.bias {
        bias_grad(g.n, g.c_out, g.out_spatial(), gy, gb);
    }
    backward_weight_into(gemm, g, x, gy, gw, work);
}

/// `y = conv(x, w) + b` (`accumulate == false`) or `y += conv(x, w) + b`; no bias when `b` is
/// `None`. The bias is added per sample, while its rows of `y` are in cache.
pub(crate) fn forward_into(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    work: &mut [f32],
    accumulate: bool,
) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, rows) = (g.in_spatial(), g.out_spatial(), col_rows(g));
    let (pointwise, lc) = (is_pointwise(g), chunk_len(g));
    for n in 0..g.n {
        for grp in 0..g.groups {
            let xg = &x[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            let wg = MatRef::row_major(&w[grp * cout_g * rows..][..cout_g * rows], rows);
            let yg = &mut y[(n * g.c_out + grp * cout_g) * out_sp..][..cout_g * out_sp];
            if let Some(b) = b {
                for (yc, &bc) in yg.chunks_exact_mut(out_sp).zip(&b[grp * cout_g..]) {
                    if accumulate {
                        yc.iter_mut().for_each(|v| *v += bc);
                    } else {
                        yc.fill(bc);
                    }
                }
            }
            let acc = accumulate || b.is_some();
            if pointwise {
                gemm.gemm(cout_g, out_sp, rows, wg, MatRef::row_major(xg, out_sp), yg, out_sp, acc);
                continue;
            }
            for l0 in (0..out_sp).step_by(lc) {
                let len = lc.min(out_sp - l0);
                let col = &mut work[..rows * len];
                im2col(g, xg, col, l0);
                gemm.gemm(
                    cout_g,
                    len,
                    rows,
                    wg,
                    MatRef::row_major(col, len),
                    &mut yg[l0..],
                    out_sp,
                    acc,
                );
            }
        }
    }
}

/// `gx += convᵀ(gy, w)`: the input gradient, without bias.
pub(crate) fn backward_input_into(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    work: &mut [f32],
) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, rows) = (g.in_spatial(), g.out_spatial(), col_rows(g));
    let (pointwise, lc) = (is_pointwise(g), chunk_len(g));
    for n in 0..g.n {
        for grp in 0..g.groups {
            let wg = MatRef::transposed(&w[grp * cout_g * rows..][..cout_g * rows], rows);
            let gyg = &gy[(n * g.c_out + grp * cout_g) * out_sp..][..cout_g * out_sp];
            let gxg = &mut gx[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            if pointwise {
                gemm.gemm(
                    rows,
                    out_sp,
                    cout_g,
                    wg,
                    MatRef::row_major(gyg, out_sp),
                    gxg,
                    out_sp,
                    true,
                );
                continue;
            }
            for l0 in (0..out_sp).step_by(lc) {
                let len = lc.min(out_sp - l0);
                let dcol = &mut work[..rows * len];
                gemm.gemm(
                    rows,
                    len,
                    cout_g,
                    wg,
                    MatRef::row_major(&gyg[l0..], out_sp),
                    dcol,
                    len,
                    false,
                );
                col2im(g, dcol, gxg, l0);
            }
        }
    }
}

/// `gw += gy · col(x)ᵀ`, summed over the batch: the weight gradient, without bias.
pub(crate) fn backward_weight_into(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    work: &mut [f32],
) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, rows) = (g.in_spatial(), g.out_spatial(), col_rows(g));
    let (pointwise, lc) = (is_pointwise(g), chunk_len(g));
    for n in 0..g.n {
        for grp in 0..g.groups {
            let xg = &x[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            let gyg = &gy[(n * g.c_out + grp * cout_g) * out_sp..][..cout_g * out_sp];
            let gwg = &mut gw[grp * cout_g * rows..][..cout_g * rows];
            if pointwise {
                let col = MatRef::transposed(xg, out_sp);
                gemm.gemm(
                    cout_g,
                    rows,
                    out_sp,
                    MatRef::row_major(gyg, out_sp),
                    col,
                    gwg,
                    rows,
                    true,
                );
                continue;
            }
            for l0 in (0..out_sp).step_by(lc) {
                let len = lc.min(out_sp - l0);
                let col = &mut work[..rows * len];
                im2col(g, xg, col, l0);
                let gyc = MatRef::row_major(&gyg[l0..], out_sp);
                gemm.gemm(cout_g, rows, len, gyc, MatRef::transposed(col, len), gwg, rows, true);
            }
        }
    }
}

/// `y[n, c, :] = b[c]` for every sample and channel.
pub(crate) fn fill_bias(n: usize, c: usize, spatial: usize, b: &[f32], y: &mut [f32]) {
    for (i, plane) in y.chunks_exact_mut(spatial).take(n * c).enumerate() {
        plane.fill(b[i % c]);
    }
}

/// `gb[c] += Σ_{n, p} gy[n, c, p]`.
pub(crate) fn bias_grad(n: usize, c: usize, spatial: usize, gy: &[f32], gb: &mut [f32]) {
    for (i, plane) in gy.chunks_exact(spatial).take(n * c).enumerate() {
        gb[i % c] += plane.iter().sum::<f32>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom2d(c_in: usize, c_out: usize, hw: usize, k: usize, pad: usize, mode: PaddingMode) -> ConvGeom {
        let o = hw + 2 * pad - k + 1;
        ConvGeom {
            n: 1,
            c_in,
            c_out,
            groups: 1,
            input: [1, hw, hw],
            output: [1, o, o],
            kernel: [1, k, k],
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0, pad, pad],
            mode,
            bias: true,
        }
    }

    #[test]
    fn workspace_is_zero_only_for_pointwise() {
        assert_eq!(conv_workspace_len(&geom2d(4, 8, 5, 1, 0, PaddingMode::Zeros)), 0);
        assert_eq!(conv_workspace_len(&geom2d(4, 8, 5, 1, 1, PaddingMode::Zeros)), 4 * 49);
        assert_eq!(conv_workspace_len(&geom2d(3, 8, 6, 3, 1, PaddingMode::Zeros)), 27 * 36);
    }

    #[test]
    fn unit_stride_paths_are_bit_identical_to_the_general_ones() {
        // (C_in, input, kernel, pad): 2-d and 3-d, padding wider than the input, and chunks
        // that start and end mid-row.
        let cases = [
            (2, [1, 6, 7], [1, 3, 3], [0, 1, 1]),
            (1, [3, 4, 5], [2, 3, 2], [1, 2, 0]),
            (2, [1, 5, 5], [1, 5, 5], [0, 2, 2]),
            (1, [1, 3, 3], [1, 2, 4], [0, 3, 3]),
            (1, [1, 2, 3], [1, 7, 3], [0, 3, 1]),
            (1, [1, 4, 2], [1, 3, 5], [0, 1, 2]),
            (2, [1, 3, 4], [1, 1, 1], [0, 0, 0]),
        ];
        const MAX: usize = 1280;
        let x: [f32; MAX] = core::array::from_fn(|i| i as f32 + 1.0);
        let dcol: [f32; MAX] = core::array::from_fn(|i| (i % 97) as f32 * 0.37 - 11.0);
        for (c_in, input, kernel, pad) in cases {
            let output: [usize; 3] = core::array::from_fn(|d| input[d] + 2 * pad[d] - kernel[d] + 1);
            let g = ConvGeom {
                n: 1,
                c_in,
                c_out: 1,
                groups: 1,
                input,
                output,
                kernel,
                stride: [1; 3],
                dilation: [1; 3],
                pad,
                mode: PaddingMode::Zeros,
                bias: false,
            };
            assert!(is_unit_zeros(&g));
            let (rows, out_sp, in_sp) = (col_rows(&g), g.out_spatial(), g.in_spatial());
            assert!(rows * out_sp <= MAX);
            for chunk in [out_sp, 13, 7, 1] {
                for l0 in (0..out_sp).step_by(chunk) {
                    let n = rows * chunk.min(out_sp - l0);
                    let (mut fast, mut slow) = ([f32::NAN; MAX], [f32::NAN; MAX]);
                    im2col_unit_zeros(&g, &x[..c_in * in_sp], &mut fast[..n], l0);
                    im2col_mode::<true>(&g, &x[..c_in * in_sp], &mut slow[..n], l0);
                    let same = fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "im2col {input:?} {kernel:?} {pad:?} chunk {chunk} at {l0}");
                    let (mut fast, mut slow) = ([0.5f32; MAX], [0.5f32; MAX]);
                    col2im_unit_zeros(&g, &dcol[..n], &mut fast[..c_in * in_sp], l0);
                    col2im_mode::<true>(&g, &dcol[..n], &mut slow[..c_in * in_sp], l0);
                    let same = fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "col2im {input:?} {kernel:?} {pad:?} chunk {chunk} at {l0}");
                }
            }
        }
    }

    #[test]
    fn panels_hold_the_column_matrix_strip_by_strip() {
        // (C_in, input, kernel, pad, stride, dilation): 1-d and 2-d, padding wider than the
        // input, strides and dilations; chunks that start mid-row and end in a narrow strip.
        let cases = [
            (2, [1, 6, 7], [1, 3, 3], [0, 1, 1], [1, 1, 1], [1, 1, 1]),
            (2, [1, 8, 8], [1, 3, 3], [0, 1, 1], [1, 1, 1], [1, 1, 1]),
            (1, [1, 8, 8], [1, 3, 3], [0, 1, 1], [1, 1, 1], [1, 2, 3]),
            (2, [1, 7, 9], [1, 3, 2], [0, 2, 1], [1, 2, 3], [1, 2, 1]),
            (1, [1, 3, 3], [1, 2, 4], [0, 3, 3], [1, 1, 1], [1, 1, 1]),
            (2, [1, 1, 11], [1, 1, 3], [0, 0, 2], [1, 1, 2], [1, 1, 2]),
            (1, [1, 4, 4], [1, 1, 1], [0, 0, 0], [1, 1, 1], [1, 1, 1]),
        ];
        const MAX: usize = 1280;
        let x: [f32; MAX] = core::array::from_fn(|i| i as f32 + 1.0);
        for (c_in, input, kernel, pad, stride, dilation) in cases {
            let output: [usize; 3] =
                core::array::from_fn(|d| (input[d] + 2 * pad[d] - dilation[d] * (kernel[d] - 1) - 1) / stride[d] + 1);
            let g = ConvGeom {
                n: 1,
                c_in,
                c_out: 1,
                groups: 1,
                input,
                output,
                kernel,
                stride,
                dilation,
                pad,
                mode: PaddingMode::Zeros,
                bias: false,
            };
            assert!(im2col::panels_fit(&g));
            let (rows, out_sp, in_sp) = (col_rows(&g), g.out_spatial(), g.in_spatial());
            assert!(rows * out_sp <= MAX);
            for chunk in [out_sp, 12, 8, 5, 1] {
                for l0 in (0..out_sp).step_by(chunk) {
                    let len = chunk.min(out_sp - l0);
                    let n = rows * len;
                    let (mut panels, mut plain) = ([f32::NAN; MAX], [f32::NAN; MAX]);
                    im2col::im2col_panels(&g, &x[..c_in * in_sp], &mut panels[..n], l0);
                    im2col_mode::<true>(&g, &x[..c_in * in_sp], &mut plain[..n], l0);
                    for (s, panel) in panels[..n].chunks(rows * 4).enumerate() {
                        let w = panel.len() / rows;
                        for r in 0..rows {
                            for j in 0..w {
                                let (a, b) = (panel[r * w + j], plain[r * len + s * 4 + j]);
                                assert!(
                                    a.to_bits() == b.to_bits(),
                                    "{input:?} {kernel:?} {pad:?} {stride:?} {dilation:?} chunk {chunk} at {l0}: row {r} position {}: {a} vs {b}",
                                    s * 4 + j
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn box_filter_with_replicate_padding() {
        // A 3x3 box filter of ones over a 2x2 image with replicate padding 1: every output sees
        // the edge-extended 4x4 image; the corner output [0, 0] reads a a b / a a b / c c d.
        let g = geom2d(1, 1, 2, 3, 1, PaddingMode::Replicate);
        let x = [1.0, 2.0, 3.0, 4.0];
        let w = [1.0; 9];
        let mut y = [0.0; 4];
        let mut work = [0.0; 9 * 4];
        conv_forward(&g, &x, &w, &[0.5], &mut y, &mut work);
        assert_eq!(y, [4.0 * 1.0 + 2.0 * 2.0 + 2.0 * 3.0 + 4.0 + 0.5, 21.5, 24.5, 27.5]);
        // The gradient of sum(y) counts how often each input is read: 9 reads of 4 pixels x 4 outputs = 36.
        let mut gx = [0.0; 4];
        conv_backward_input(&g, &w, &[1.0; 4], &mut gx, &mut work);
        assert_eq!(gx.iter().sum::<f32>(), 36.0);
        assert_eq!(gx, [9.0; 4]);
    }
}
