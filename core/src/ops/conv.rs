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

use super::geom::{ConvGeom, PaddingMode};
use crate::kernels::{Gemm, MatRef, Portable};

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

/// The column matrix's rows in order, as `(input channel, [kD, kH, kW] offsets)`.
fn kernel_offsets(g: &ConvGeom) -> impl Iterator<Item = (usize, [usize; 3])> {
    let [kd, kh, kw] = g.kernel;
    (0..g.c_in / g.groups)
        .flat_map(move |c| (0..kd).flat_map(move |a| (0..kh).flat_map(move |b| (0..kw).map(move |w| (c, [a, b, w])))))
}

/// Padded input coordinate of output position `o` at kernel offset `k` in dim `d`.
#[inline(always)]
fn src_index(g: &ConvGeom, d: usize, o: usize, k: usize) -> isize {
    (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize
}

/// The range of output positions `o < out` whose source `o·stride + off` lies inside `0..len`.
#[inline]
fn interior(out: usize, off: isize, stride: usize, len: usize) -> (usize, usize) {
    if stride == 1 {
        let lo = (-off).clamp(0, out as isize) as usize;
        return (lo, (len as isize - off).clamp(lo as isize, out as isize) as usize);
    }
    let s = stride as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let last = len as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// The pieces of output rows that a chunk of flattened output positions `l0 .. l0 + len`
/// covers, in order: `(z, y, x0, range)` where the row `(z, y)`'s positions `x0 ..` are the
/// chunk's `range`. Only the start needs divisions; one walker is cloned for every column row.
#[derive(Clone)]
struct Segments {
    oh: usize,
    ow: usize,
    z: usize,
    y: usize,
    x0: usize,
    done: usize,
    len: usize,
}

impl Segments {
    fn new(g: &ConvGeom, l0: usize, len: usize) -> Self {
        let [_, oh, ow] = g.output;
        Segments {
            oh,
            ow,
            z: l0 / (oh * ow),
            y: l0 / ow % oh,
            x0: l0 % ow,
            done: 0,
            len,
        }
    }
}

impl Iterator for Segments {
    type Item = (usize, usize, usize, core::ops::Range<usize>);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done >= self.len {
            return None;
        }
        let seg = (self.ow - self.x0).min(self.len - self.done);
        let item = (self.z, self.y, self.x0, self.done..self.done + seg);
        self.done += seg;
        self.x0 = 0;
        self.y += 1;
        if self.y == self.oh {
            self.y = 0;
            self.z += 1;
        }
        Some(item)
    }
}

/// The interior range (see [`interior`]) of the row piece `x0 .. x0 + seg` along W for kernel
/// offset `kw`, reusing `full`, the interior of a whole row, when the piece is a whole row.
#[inline]
fn piece_interior(g: &ConvGeom, full: (usize, usize), kw: usize, x0: usize, seg: usize) -> (isize, (usize, usize)) {
    let off = src_index(g, 2, x0, kw);
    if seg == g.output[2] {
        (off, full)
    } else {
        (off, interior(seg, off, g.stride[2], g.input[2]))
    }
}

/// Fills a chunk of the column matrix, `col[C_in/g · kvol, len]` for the flattened output
/// positions `l0 .. l0 + len` (`len = col.len() / rows`), from one sample-group
/// `x[C_in/g, D, H, W]`.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    // Zero padding, by far the most common, gets its own copy with the padding test inlined;
    // with unit stride and dilation too, each piece is one contiguous copy.
    if is_unit_zeros(g) {
        im2col_unit_zeros(g, x, col, l0);
    } else if g.mode == PaddingMode::Zeros {
        im2col_mode::<true>(g, x, col, l0);
    } else {
        im2col_mode::<false>(g, x, col, l0);
    }
}

/// Whether the convolution has zero padding, stride 1 and dilation 1 in every dim: the case
/// where each piece of a column row is a contiguous run of one input row between zeros.
#[inline]
fn is_unit_zeros(g: &ConvGeom) -> bool {
    g.mode == PaddingMode::Zeros && g.stride == [1; 3] && g.dilation == [1; 3]
}

/// The run of a piece of `n` output positions whose sources `o + off` (`o < n`) lie inside an
/// input row of `iw`: `(lo, hi)`, where positions `lo..hi` read `src[lo + off..hi + off]` and the
/// rest are padding. [`interior`] for stride 1.
#[inline(always)]
fn unit_interior(n: usize, off: isize, iw: usize) -> (usize, usize) {
    let lo = (-off).clamp(0, n as isize) as usize;
    (lo, (iw as isize - off).clamp(lo as isize, n as isize) as usize)
}

/// [`im2col`] for [`is_unit_zeros`] geometry. The `kW` column rows of one `(c, kd, kh)` read
/// the same input row for every output row, so the row is looked up once for all of them; each
/// piece is then written once: zeros, one contiguous copy, zeros.
fn im2col_unit_zeros(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let [kd_n, kh_n, kw_n] = g.kernel;
    let in_sp = g.in_spatial();
    let len = col.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    let [pd, ph, pw] = g.pad.map(|p| p as isize);
    // 2-d with output rows as wide as input rows: consecutive output rows read consecutive
    // input rows, so a whole column row is one shifted copy.
    let [_, oh, ow] = g.output;
    let flat = id == 1 && kd_n == 1 && pd == 0 && ow == iw;
    let taps = (0..g.c_in / g.groups).flat_map(|c| (0..kd_n).flat_map(move |a| (0..kh_n).map(move |b| (c, a, b))));
    for ((c, kd, kh), block) in taps.zip(col.chunks_exact_mut(kw_n * len)) {
        let xc = &x[c * in_sp..][..in_sp];
        if flat {
            for (kw, colrow) in block.chunks_exact_mut(len).enumerate() {
                im2col_row_shifted(colrow, xc, l0, [kh as isize - ph, kw as isize - pw], [oh, iw, ih]);
            }
            continue;
        }
        for (z, y, x0, range) in segments.clone() {
            let (zs, ys) = ((z + kd) as isize - pd, (y + kh) as isize - ph);
            let inside = zs >= 0 && (zs as usize) < id && ys >= 0 && (ys as usize) < ih;
            if !inside {
                for colrow in block.chunks_exact_mut(len) {
                    colrow[range.clone()].fill(0.0);
                }
                continue;
            }
            let src = &xc[(zs as usize * ih + ys as usize) * iw..][..iw];
            for (kw, colrow) in block.chunks_exact_mut(len).enumerate() {
                let out = &mut colrow[range.clone()];
                let off = (x0 + kw) as isize - pw;
                let (lo, hi) = unit_interior(out.len(), off, iw);
                let (head, rest) = out.split_at_mut(lo);
                let (mid, tail) = rest.split_at_mut(hi - lo);
                head.fill(0.0);
                if lo < hi {
                    let start = (lo as isize + off) as usize;
                    mid.copy_from_slice(&src[start..start + mid.len()]);
                }
                tail.fill(0.0);
            }
        }
    }
}

/// One column row of a 2-d convolution whose output rows are as wide as its input rows
/// (`oW == W`; unit stride and dilation, zero padding), for the flattened output positions
/// `l0 .. l0 + out.len()`: `out[j] = x[(r + dy) · W + (s + dx)]` where `l0 + j = r · W + s`, or 0
/// where that lies outside the input `x[H, W]` (`oh` output rows).
///
/// Input and output rows are both `W` long, so one copy of `x` shifted by `dy · W + dx` puts
/// every valid value in place; the `|dx|` columns per row that wrapped into a neighbouring row
/// are zeroed afterwards.
#[inline]
fn im2col_row_shifted(out: &mut [f32], x: &[f32], l0: usize, [dy, dx]: [isize; 2], [oh, w, ih]: [usize; 3]) {
    let end = l0 + out.len();
    // Output rows `r` with `0 <= r + dy < H`, as flat positions clipped to the chunk.
    let rows_lo = (-dy).clamp(0, oh as isize) as usize;
    let rows_hi = (ih as isize - dy).clamp(rows_lo as isize, oh as isize) as usize;
    let p_lo = (rows_lo * w).clamp(l0, end);
    let p_hi = (rows_hi * w).clamp(p_lo, end);
    // Of those, the positions whose shifted source lies inside the plane (only wrapped columns
    // of the first and last row can fall outside it).
    let shift = dy * w as isize + dx;
    let q_lo = p_lo.max((-shift).max(0) as usize).min(p_hi);
    let q_hi = ((x.len() as isize - shift).max(0) as usize).clamp(q_lo, p_hi);
    out[..q_lo - l0].fill(0.0);
    out[q_hi - l0..].fill(0.0);
    if q_lo == q_hi {
        return;
    }
    let start = (q_lo as isize + shift) as usize;
    out[q_lo - l0..q_hi - l0].copy_from_slice(&x[start..start + (q_hi - q_lo)]);
    if dx == 0 {
        return;
    }
    // Columns `s` with `s + dx` outside `0..W` read a neighbouring row: zero them.
    let (c0, c1) = if dx < 0 {
        (0, ((-dx) as usize).min(w))
    } else {
        ((w as isize - dx).max(0) as usize, w)
    };
    let row = q_lo - q_lo % w;
    for c in c0..c1 {
        // The first position of column `c` at or after `q_lo`, then every `w`-th.
        let first = if row + c < q_lo { row + c + w } else { row + c };
        if first < q_hi {
            out[first - l0..q_hi - l0].iter_mut().step_by(w).for_each(|v| *v = 0.0);
        }
    }
}

/// [`im2col`] for zero padding (`ZEROS`) or the other modes.
#[inline(always)]
fn im2col_mode<const ZEROS: bool>(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let (in_sp, mode) = (g.in_spatial(), g.mode);
    let len = col.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    for ((c, [kd, kh, kw]), colrow) in kernel_offsets(g).zip(col.chunks_exact_mut(len)) {
        // With zero padding, zero each row once; then only the interior of each piece is copied.
        if ZEROS {
            colrow.fill(0.0);
        }
        let xc = &x[c * in_sp..][..in_sp];
        let full = interior(g.output[2], src_index(g, 2, 0, kw), g.stride[2], iw);
        for (z, y, x0, range) in segments.clone() {
            // Only zero padding maps outside the input (`None`); that piece is already zero.
            let (Some(zd), Some(yh)) = (
                map::<ZEROS>(mode, src_index(g, 0, z, kd), id),
                map::<ZEROS>(mode, src_index(g, 1, y, kh), ih),
            ) else {
                continue;
            };
            let out = &mut colrow[range];
            let src = &xc[(zd * ih + yh) * iw..][..iw];
            let (off, (lo, hi)) = piece_interior(g, full, kw, x0, out.len());
            if !ZEROS {
                gather_edges(out, src, off, g.stride[2], lo, hi, mode);
            }
            gather_interior(out, src, off, g.stride[2], lo, hi);
        }
    }
}

/// [`PaddingMode::map`], with the zero-padding case known at compile time.
#[inline(always)]
fn map<const ZEROS: bool>(mode: PaddingMode, i: isize, n: usize) -> Option<usize> {
    if ZEROS {
        (i >= 0 && i < n as isize).then_some(i as usize)
    } else {
        mode.map(i, n)
    }
}

/// `out[o] = src[map(o·stride + off)]` outside the interior `lo..hi` (reflect, replicate and
/// circular padding).
#[inline]
fn gather_edges(out: &mut [f32], src: &[f32], off: isize, stride: usize, lo: usize, hi: usize, mode: PaddingMode) {
    let read = |o: usize| {
        mode.map(o as isize * stride as isize + off, src.len())
            .map_or(0.0, |i| src[i])
    };
    for (o, v) in out.iter_mut().enumerate().take(lo) {
        *v = read(o);
    }
    for (o, v) in out.iter_mut().enumerate().skip(hi) {
        *v = read(o);
    }
}

/// `out[o] = src[o·stride + off]` inside the interior `lo..hi`.
#[inline]
fn gather_interior(out: &mut [f32], src: &[f32], off: isize, stride: usize, lo: usize, hi: usize) {
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + off) as usize;
    let out = &mut out[lo..hi];
    if stride == 1 {
        for (v, &s) in out.iter_mut().zip(&src[start..]) {
            *v = s;
        }
    } else {
        for (v, &s) in out.iter_mut().zip(src[start..].iter().step_by(stride)) {
            *v = s;
        }
    }
}

/// Scatters a chunk of the column-matrix gradient, `dcol[C_in/g · kvol, len]` for the
/// flattened output positions `l0 .. l0 + len`, into `gx[C_in/g, D, H, W]` (accumulating),
/// through the same index map as [`im2col`].
fn col2im(g: &ConvGeom, dcol: &[f32], gx: &mut [f32], l0: usize) {
    if is_unit_zeros(g) {
        col2im_unit_zeros(g, dcol, gx, l0);
    } else if g.mode == PaddingMode::Zeros {
        col2im_mode::<true>(g, dcol, gx, l0);
    } else {
        col2im_mode::<false>(g, dcol, gx, l0);
    }
}

/// [`col2im`] for [`is_unit_zeros`] geometry: the transpose of [`im2col_unit_zeros`], adding
/// each piece's interior run into one input row (padding positions have no input to receive
/// their gradient). The additions happen in the same order as the general path.
fn col2im_unit_zeros(g: &ConvGeom, dcol: &[f32], gx: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let [kd_n, kh_n, kw_n] = g.kernel;
    let in_sp = g.in_spatial();
    let len = dcol.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    let [pd, ph, pw] = g.pad.map(|p| p as isize);
    let taps = (0..g.c_in / g.groups).flat_map(|c| (0..kd_n).flat_map(move |a| (0..kh_n).map(move |b| (c, a, b))));
    for ((c, kd, kh), block) in taps.zip(dcol.chunks_exact(kw_n * len)) {
        let gxc = &mut gx[c * in_sp..][..in_sp];
        for (z, y, x0, range) in segments.clone() {
            let (zs, ys) = ((z + kd) as isize - pd, (y + kh) as isize - ph);
            if zs < 0 || zs as usize >= id || ys < 0 || ys as usize >= ih {
                continue;
            }
            let dst = &mut gxc[(zs as usize * ih + ys as usize) * iw..][..iw];
            for (kw, colrow) in block.chunks_exact(len).enumerate() {
                let grad = &colrow[range.clone()];
                let off = (x0 + kw) as isize - pw;
                let (lo, hi) = unit_interior(grad.len(), off, iw);
                if lo == hi {
                    continue;
                }
                let start = (lo as isize + off) as usize;
                for (d, &gv) in dst[start..start + (hi - lo)].iter_mut().zip(&grad[lo..hi]) {
                    *d += gv;
                }
            }
        }
    }
}

/// [`col2im`] for zero padding (`ZEROS`) or the other modes.
#[inline(always)]
fn col2im_mode<const ZEROS: bool>(g: &ConvGeom, dcol: &[f32], gx: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let (in_sp, mode) = (g.in_spatial(), g.mode);
    let len = dcol.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    for ((c, [kd, kh, kw]), colrow) in kernel_offsets(g).zip(dcol.chunks_exact(len)) {
        let gxc = &mut gx[c * in_sp..][..in_sp];
        let full = interior(g.output[2], src_index(g, 2, 0, kw), g.stride[2], iw);
        for (z, y, x0, range) in segments.clone() {
            let (Some(zd), Some(yh)) = (
                map::<ZEROS>(mode, src_index(g, 0, z, kd), id),
                map::<ZEROS>(mode, src_index(g, 1, y, kh), ih),
            ) else {
                continue;
            };
            let dst = &mut gxc[(zd * ih + yh) * iw..][..iw];
            let grad = &colrow[range];
            let (off, (lo, hi)) = piece_interior(g, full, kw, x0, grad.len());
            if !ZEROS {
                scatter_edges(grad, dst, off, g.stride[2], lo, hi, mode);
            }
            scatter_interior(grad, dst, off, g.stride[2], lo, hi);
        }
    }
}

/// `dst[map(o·stride + off)] += grad[o]` outside the interior `lo..hi` (reflect, replicate and
/// circular padding).
#[inline]
fn scatter_edges(grad: &[f32], dst: &mut [f32], off: isize, stride: usize, lo: usize, hi: usize, mode: PaddingMode) {
    let n = dst.len();
    let edges = grad.iter().enumerate().take(lo).chain(grad.iter().enumerate().skip(hi));
    for (o, &gv) in edges {
        if let Some(i) = mode.map(o as isize * stride as isize + off, n) {
            dst[i] += gv;
        }
    }
}

/// `dst[o·stride + off] += grad[o]` inside the interior `lo..hi`.
#[inline]
fn scatter_interior(grad: &[f32], dst: &mut [f32], off: isize, stride: usize, lo: usize, hi: usize) {
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + off) as usize;
    let grad = &grad[lo..hi];
    if stride == 1 {
        for (d, &gv) in dst[start..].iter_mut().zip(grad) {
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
