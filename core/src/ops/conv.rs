//! Convolution (`nn.Conv1d`, `nn.Conv2d`, `nn.Conv3d`): forward, input gradient and weight
//! gradient, all through one 3-d implementation over [`ConvGeom`].
//!
//! 1-d and 2-d convolutions set the leading spatial dims to 1. Each sample and group is lowered
//! to a matrix multiply (`im2col` + [`gemm`]): the *column* matrix `col[C_in/g · kD·kH·kW, oD·oH·oW]`
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
//! A pointwise convolution (kernel 1, stride 1, no padding) multiplies the input directly and
//! needs no scratch; every other convolution needs [`conv_workspace_len`] floats of `work`.
//!
//! See <https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html>.

use super::geom::{ConvGeom, PaddingMode};
use crate::kernels::gemm::{gemm, MatRef};

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
const fn col_rows(g: &ConvGeom) -> usize {
    g.c_in / g.groups * g.kernel_volume()
}

/// Floats of scratch one call of any conv kernel below needs: the column matrix of one sample
/// and group, `C_in / groups · kD·kH·kW · oD·oH·oW`; 0 for a pointwise convolution (kernel 1,
/// stride 1, no padding), which needs none.
pub const fn conv_workspace_len(g: &ConvGeom) -> usize {
    if is_pointwise(g) {
        0
    } else {
        col_rows(g) * g.out_spatial()
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
    if g.bias {
        fill_bias(g.n, g.c_out, g.out_spatial(), b, y);
    }
    forward_into(g, x, w, y, work, g.bias);
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
    backward_input_into(g, w, gy, gx, work);
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
    if g.bias {
        bias_grad(g.n, g.c_out, g.out_spatial(), gy, gb);
    }
    backward_weight_into(g, x, gy, gw, work);
}

/// `y = conv(x, w)` (`accumulate == false`) or `y += conv(x, w)`, without bias.
pub(crate) fn forward_into(g: &ConvGeom, x: &[f32], w: &[f32], y: &mut [f32], work: &mut [f32], accumulate: bool) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, rows) = (g.in_spatial(), g.out_spatial(), col_rows(g));
    let pointwise = is_pointwise(g);
    for n in 0..g.n {
        for grp in 0..g.groups {
            let xg = &x[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            let wg = &w[grp * cout_g * rows..][..cout_g * rows];
            let yg = &mut y[(n * g.c_out + grp * cout_g) * out_sp..][..cout_g * out_sp];
            let col: &[f32] = if pointwise {
                xg
            } else {
                let col = &mut work[..rows * out_sp];
                im2col(g, xg, col);
                col
            };
            gemm(
                cout_g,
                out_sp,
                rows,
                MatRef::row_major(wg, rows),
                MatRef::row_major(col, out_sp),
                yg,
                out_sp,
                accumulate,
            );
        }
    }
}

/// `gx += convᵀ(gy, w)`: the input gradient, without bias.
pub(crate) fn backward_input_into(g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32], work: &mut [f32]) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, rows) = (g.in_spatial(), g.out_spatial(), col_rows(g));
    let pointwise = is_pointwise(g);
    for n in 0..g.n {
        for grp in 0..g.groups {
            let wg = MatRef::transposed(&w[grp * cout_g * rows..][..cout_g * rows], rows);
            let gyg = MatRef::row_major(&gy[(n * g.c_out + grp * cout_g) * out_sp..][..cout_g * out_sp], out_sp);
            let gxg = &mut gx[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            if pointwise {
                gemm(rows, out_sp, cout_g, wg, gyg, gxg, out_sp, true);
            } else {
                let dcol = &mut work[..rows * out_sp];
                gemm(rows, out_sp, cout_g, wg, gyg, dcol, out_sp, false);
                col2im(g, dcol, gxg);
            }
        }
    }
}

/// `gw += gy · col(x)ᵀ`, summed over the batch: the weight gradient, without bias.
pub(crate) fn backward_weight_into(g: &ConvGeom, x: &[f32], gy: &[f32], gw: &mut [f32], work: &mut [f32]) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let (in_sp, out_sp, rows) = (g.in_spatial(), g.out_spatial(), col_rows(g));
    let pointwise = is_pointwise(g);
    for n in 0..g.n {
        for grp in 0..g.groups {
            let xg = &x[(n * g.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            let gyg = MatRef::row_major(&gy[(n * g.c_out + grp * cout_g) * out_sp..][..cout_g * out_sp], out_sp);
            let gwg = &mut gw[grp * cout_g * rows..][..cout_g * rows];
            let col: &[f32] = if pointwise {
                xg
            } else {
                let col = &mut work[..rows * out_sp];
                im2col(g, xg, col);
                col
            };
            gemm(cout_g, rows, out_sp, gyg, MatRef::transposed(col, out_sp), gwg, rows, true);
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

/// Splits a column-matrix row index into `(input channel, kD offset, kH offset, kW offset)`.
#[inline]
fn row_coords(g: &ConvGeom, row: usize) -> (usize, [usize; 3]) {
    let [_, kh, kw] = g.kernel;
    let kvol = g.kernel_volume();
    let r = row % kvol;
    (row / kvol, [r / (kh * kw), r / kw % kh, r % kw])
}

/// Padded input coordinate of output position `o` at kernel offset `k` in dim `d`.
#[inline(always)]
fn src_index(g: &ConvGeom, d: usize, o: usize, k: usize) -> isize {
    (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize
}

/// The range of output positions `o` whose source `o·stride + off` lies inside `0..len`.
#[inline]
fn interior(out: usize, off: isize, stride: usize, len: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let last = len as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// Fills the column matrix `col[C_in/g · kvol, oD·oH·oW]` from one sample-group `x[C_in/g, D, H, W]`.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let in_sp = g.in_spatial();
    let mode = g.mode;
    for (row, colrow) in col.chunks_exact_mut(g.out_spatial()).enumerate() {
        let (c, [kd, kh, kw]) = row_coords(g, row);
        let xc = &x[c * in_sp..][..in_sp];
        let off_w = src_index(g, 2, 0, kw);
        let (lo, hi) = interior(ow, off_w, g.stride[2], iw);
        for (z, plane) in colrow.chunks_exact_mut(oh * ow).enumerate().take(od) {
            let zd = mode.map(src_index(g, 0, z, kd), id);
            for (y, out) in plane.chunks_exact_mut(ow).enumerate() {
                let (Some(zd), Some(yh)) = (zd, mode.map(src_index(g, 1, y, kh), ih)) else {
                    out.fill(0.0);
                    continue;
                };
                let src = &xc[(zd * ih + yh) * iw..][..iw];
                gather_row(out, src, off_w, g.stride[2], lo, hi, mode);
            }
        }
    }
}

/// `out[o] = src[map(o·stride + off)]` (0 outside for zero padding); `lo..hi` is the interior.
#[inline]
fn gather_row(out: &mut [f32], src: &[f32], off: isize, stride: usize, lo: usize, hi: usize, mode: PaddingMode) {
    let read = |o: usize| mode.map(o as isize * stride as isize + off, src.len()).map_or(0.0, |i| src[i]);
    for (o, v) in out.iter_mut().enumerate().take(lo) {
        *v = read(o);
    }
    for (o, v) in out.iter_mut().enumerate().skip(hi) {
        *v = read(o);
    }
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + off) as usize;
    let out = &mut out[lo..hi];
    if stride == 1 {
        out.copy_from_slice(&src[start..start + out.len()]);
    } else {
        for (v, &s) in out.iter_mut().zip(src[start..].iter().step_by(stride)) {
            *v = s;
        }
    }
}

/// Scatters a column-matrix gradient `dcol[C_in/g · kvol, oD·oH·oW]` into `gx[C_in/g, D, H, W]`
/// (accumulating), through the same index map as [`im2col`].
fn col2im(g: &ConvGeom, dcol: &[f32], gx: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let in_sp = g.in_spatial();
    let mode = g.mode;
    for (row, colrow) in dcol.chunks_exact(g.out_spatial()).enumerate() {
        let (c, [kd, kh, kw]) = row_coords(g, row);
        let gxc = &mut gx[c * in_sp..][..in_sp];
        let off_w = src_index(g, 2, 0, kw);
        let (lo, hi) = interior(ow, off_w, g.stride[2], iw);
        for (z, plane) in colrow.chunks_exact(oh * ow).enumerate().take(od) {
            let Some(zd) = mode.map(src_index(g, 0, z, kd), id) else { continue };
            for (y, grow) in plane.chunks_exact(ow).enumerate() {
                let Some(yh) = mode.map(src_index(g, 1, y, kh), ih) else { continue };
                let dst = &mut gxc[(zd * ih + yh) * iw..][..iw];
                scatter_row(grow, dst, off_w, g.stride[2], lo, hi, mode);
            }
        }
    }
}

/// `dst[map(o·stride + off)] += grad[o]` (dropped outside for zero padding).
#[inline]
fn scatter_row(grad: &[f32], dst: &mut [f32], off: isize, stride: usize, lo: usize, hi: usize, mode: PaddingMode) {
    let n = dst.len();
    let edges = grad.iter().enumerate().take(lo).chain(grad.iter().enumerate().skip(hi));
    for (o, &gv) in edges {
        if let Some(i) = mode.map(o as isize * stride as isize + off, n) {
            dst[i] += gv;
        }
    }
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + off) as usize;
    let grad = &grad[lo..hi];
    if stride == 1 {
        for (d, &gv) in dst[start..start + grad.len()].iter_mut().zip(grad) {
            *d += gv;
        }
    } else {
        for (d, &gv) in dst[start..].iter_mut().step_by(stride).zip(grad) {
            *d += gv;
        }
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
