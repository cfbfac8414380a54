//! Pooling: max and average pooling over a sliding window, their adaptive variants, and
//! max-unpooling.
//!
//! Use these for `nn.MaxPool1d/2d/3d`, `nn.AvgPool1d/2d/3d`, `nn.AdaptiveAvgPool1d/2d`,
//! `nn.AdaptiveMaxPool1d/2d` and `nn.MaxUnpool1d/2d/3d`. Every kernel works on three spatial dims
//! `[D, H, W]`; 1-d and 2-d layers set the leading dims to 1 (see [`PoolGeom`]).
//!
//! Max pooling stores, for each output, the flat index of its argmax within the input plane of
//! the same `(n, c)`, `d * H * W + h * W + w`, exactly as PyTorch's `return_indices=True`. The
//! index is kept in an `f32` slot of the activation arena as a *bit pattern*
//! ([`encode_index`] / [`decode_index`]), not as a number, so that the arena stays one `f32`
//! buffer; never do arithmetic on it. Backward only needs the indices, not the input.
//!
//! The scan order, the tie rule (first maximum wins), NaN propagation (a NaN wins its window; the
//! last NaN gives the index) and the divisor rules of average pooling follow PyTorch's CPU
//! kernels (`aten/src/ATen/native/cpu/MaxPoolKernel.cpp`, `AvgPoolKernel.cpp`,
//! `AdaptiveAvgPoolKernel.cpp`, `AdaptiveMaxPoolKernel.cpp`).

pub(crate) mod adaptive;
pub(crate) mod unpool;

pub(crate) use self::adaptive::plan as plan_adaptive;
pub use self::adaptive::*;
pub use self::unpool::*;
pub(crate) use self::unpool::{plan as plan_unpool, NO_POOL};

#[cfg(test)]
use self::adaptive::adaptive_range;
use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::layer::{AvgPool, MaxPool};
use crate::ops::geom::{window_out, PoolGeom};
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// Stores an argmax index in an `f32` slot, as its bit pattern: `f32::from_bits(i as u32)`.
///
/// Indices above `u32::MAX` do not occur: a plane that large does not fit in memory on any
/// target this crate supports.
#[inline(always)]
pub fn encode_index(i: usize) -> f32 {
    f32::from_bits(i as u32)
}

/// Reads an index stored by [`encode_index`].
#[inline(always)]
pub fn decode_index(v: f32) -> usize {
    v.to_bits() as usize
}

/// The input positions of output `o` of a dilated window along one dim, as PyTorch's CPU kernel
/// computes them: the window starts at `o * stride - pad`, ends (exclusive) at
/// `min(start + dilation * (kernel - 1) + 1, input)`, and positions in the front padding are
/// skipped a dilation step at a time. Returns `(first, end, step)`; empty when `first >= end`.
#[inline]
fn dilated_range(
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
        // Smallest multiple of `dilation` that brings the start to 0 or beyond.
        let d = dilation as isize;
        first += (-first + d - 1) / d * d;
    }
    (first as usize, end.max(0) as usize, dilation)
}

/// Whether some max-pooling window of `g` holds no input position: with dilation and padding
/// a window can fall entirely between input positions or in the padding (for example `W = 1`,
/// kernel 2, dilation 2, padding 1 reads positions -1 and 1 only). Its argmax index is then
/// PyTorch's initial one, which aliases a position outside the window, so a backward pass that
/// gathers each input position's own windows misses it; a backend runs a scatter instead.
pub fn has_empty_window(g: &PoolGeom) -> bool {
    let mut d = 0;
    while d < 3 {
        let mut o = 0;
        while o < g.output[d] {
            let (first, end, _) = dilated_range(o, g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad[d]);
            if first >= end {
                return true;
            }
            o += 1;
        }
        d += 1;
    }
    false
}

/// The positions `[start, end)` of output `o` of an average-pooling window along one dim, and
/// the window's extent counted with the padding (PyTorch's `pool_size` factor for this dim).
///
/// The window `[o * stride - pad, o * stride - pad + kernel)` is first clipped to the end of the
/// padded input (`input + pad`), measured, then clipped to the input itself.
#[inline]
fn avg_range(o: usize, input: usize, kernel: usize, stride: usize, pad: usize) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + kernel as isize).min((input + pad) as isize);
    let padded_len = (end - start).max(0) as usize;
    let first = start.max(0) as usize;
    // `max(first)` keeps the range well-formed even for a window past the input.
    let last = (end.min(input as isize)).max(first as isize) as usize;
    (first, last, padded_len)
}

/// Max pooling (`nn.MaxPool1d/2d/3d`, <https://pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html>).
///
/// - `x: [N, C, D, H, W]` (`g.input`)
/// - `y: [N, C, oD, oH, oW]` (`g.output`): `y[n, c, o] = max` over the dilated window
///   `o * stride - pad + k * dilation`, `k < kernel`, of positions inside the input (the padding
///   is negative infinity and never wins);
/// - `indices: [N, C, oD, oH, oW]`: the flat index `d * H * W + h * W + w` of the argmax within
///   the input plane, stored with [`encode_index`].
///
/// Ties go to the first maximum in scan order (`d`, then `h`, then `w`); a NaN wins its window
/// and the index is that of the last NaN, as PyTorch's CPU kernel. A window with no input
/// position at all (only possible with dilation) gives `-inf` and the index of its first
/// position after the padding, which lies outside the plane, as PyTorch does;
/// [`max_pool_backward_input`] skips such indices.
pub fn max_pool_forward(g: &PoolGeom, x: &[f32], y: &mut [f32], indices: &mut [f32]) {
    let (in_plane, out_plane) = (g.in_spatial(), g.out_spatial());
    debug_assert_eq!(x.len(), g.n * g.c * in_plane);
    debug_assert_eq!(y.len(), g.n * g.c * out_plane);
    debug_assert_eq!(indices.len(), y.len());
    if is_max_pool_2x2(g) {
        max_pool_2x2_forward(g, x, y, indices);
    } else {
        max_pool_general_forward(g, x, y, indices);
    }
}

/// [`max_pool_forward`] for any geometry: every window scanned through [`dilated_range`].
fn max_pool_general_forward(g: &PoolGeom, x: &[f32], y: &mut [f32], indices: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let (in_plane, out_plane) = (g.in_spatial(), g.out_spatial());
    for p in 0..g.n * g.c {
        let xp = &x[p * in_plane..(p + 1) * in_plane];
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        let ip = &mut indices[p * out_plane..(p + 1) * out_plane];
        let mut o = 0;
        for z in 0..od {
            let (d0, d1, sd) = dilated_range(z, id, g.kernel[0], g.stride[0], g.dilation[0], g.pad[0]);
            for r in 0..oh {
                let (h0, h1, sh) = dilated_range(r, ih, g.kernel[1], g.stride[1], g.dilation[1], g.pad[1]);
                for s in 0..ow {
                    let (w0, w1, sw) = dilated_range(s, iw, g.kernel[2], g.stride[2], g.dilation[2], g.pad[2]);
                    let mut best = f32::NEG_INFINITY;
                    let mut best_at = (d0 * ih + h0) * iw + w0;
                    for d in (d0..d1).step_by(sd) {
                        for h in (h0..h1).step_by(sh) {
                            for w in (w0..w1).step_by(sw) {
                                let at = (d * ih + h) * iw + w;
                                let v = xp[at];
                                if v > best || v.is_nan() {
                                    best = v;
                                    best_at = at;
                                }
                            }
                        }
                    }
                    yp[o] = best;
                    ip[o] = encode_index(best_at);
                    o += 1;
                }
            }
        }
    }
}

/// Whether `g` is the common `MaxPool2d(2)` window: kernel 2 and stride 2 in H and W, kernel 1
/// and stride 1 in D, no padding or dilation, and every window entirely inside the input (no
/// `ceil_mode` window hanging past the end; an odd last row or column is simply not read).
#[inline]
fn is_max_pool_2x2(g: &PoolGeom) -> bool {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    g.kernel == [1, 2, 2]
        && g.stride == [1, 2, 2]
        && g.pad == [0, 0, 0]
        && g.dilation[1] == 1
        && g.dilation[2] == 1
        && od == id
        && od > 0
        && oh > 0
        && ow > 0
        && 2 * oh <= ih
        && 2 * ow <= iw
}

/// [`max_pool_forward`] for the geometry [`is_max_pool_2x2`] accepts: one pass over pairs of
/// input rows, each window's four values compared in the general path's scan order with its
/// tie and NaN rule, so values and indices are bit-identical to it.
fn max_pool_2x2_forward(g: &PoolGeom, x: &[f32], y: &mut [f32], indices: &mut [f32]) {
    let [_, ih, iw] = g.input;
    let [_, oh, ow] = g.output;
    let (in_plane, out_plane) = (g.in_spatial(), g.out_spatial());
    for p in 0..g.n * g.c {
        let xp = &x[p * in_plane..(p + 1) * in_plane];
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        let ip = &mut indices[p * out_plane..(p + 1) * out_plane];
        let rows = yp.chunks_exact_mut(ow).zip(ip.chunks_exact_mut(ow));
        for (zr, (yr, ir)) in rows.enumerate() {
            let (z, r) = (zr / oh, zr % oh);
            // Flat index of the window's top-left position; the window is `top + [0, 1, iw, iw + 1]`.
            let top = (z * ih + 2 * r) * iw;
            let (row0, row1) = (&xp[top..][..2 * ow], &xp[top + iw..][..2 * ow]);
            let pairs = row0.chunks_exact(2).zip(row1.chunks_exact(2));
            for (s, ((yv, iv), (a, b))) in yr.iter_mut().zip(ir.iter_mut()).zip(pairs).enumerate() {
                let at = top + 2 * s;
                let (mut best, mut best_at) = (f32::NEG_INFINITY, at);
                for (v, i) in [(a[0], at), (a[1], at + 1), (b[0], at + iw), (b[1], at + iw + 1)] {
                    if v > best || v.is_nan() {
                        best = v;
                        best_at = i;
                    }
                }
                *yv = best;
                *iv = encode_index(best_at);
            }
        }
    }
}

/// Gradient of [`max_pool_forward`] with respect to its input: `gx[n, c, indices[n, c, o]] += gy[n, c, o]`.
///
/// - `indices: [N, C, oD, oH, oW]` from the forward pass;
/// - `gy: [N, C, oD, oH, oW]`;
/// - `gx: [N, C, D, H, W]`, accumulated.
///
/// An index outside the plane (from a window with no input position) is skipped.
pub fn max_pool_backward_input(g: &PoolGeom, indices: &[f32], gy: &[f32], gx: &mut [f32]) {
    scatter_indices(g.n * g.c, g.out_spatial(), g.in_spatial(), indices, gy, gx);
}

/// `gx[p, indices[p, o]] += gy[p, o]` for every plane `p`, skipping indices `>= in_plane`.
pub(super) fn scatter_indices(
    planes: usize,
    out_plane: usize,
    in_plane: usize,
    indices: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    debug_assert_eq!(indices.len(), planes * out_plane);
    debug_assert_eq!(gy.len(), planes * out_plane);
    debug_assert_eq!(gx.len(), planes * in_plane);
    for p in 0..planes {
        let gxp = &mut gx[p * in_plane..(p + 1) * in_plane];
        let range = p * out_plane..(p + 1) * out_plane;
        for (&i, &g) in indices[range.clone()].iter().zip(&gy[range]) {
            if let Some(slot) = gxp.get_mut(decode_index(i)) {
                *slot += g;
            }
        }
    }
}

/// Average pooling (`nn.AvgPool1d/2d/3d`, <https://pytorch.org/docs/stable/generated/torch.nn.AvgPool2d.html>).
///
/// - `x: [N, C, D, H, W]` (`g.input`);
/// - `y: [N, C, oD, oH, oW]` (`g.output`): the sum of the input positions in the window
///   divided by a divisor, with PyTorch's rule: in each dim the window
///   `[o * stride - pad, o * stride - pad + kernel)` is clipped to the end of the padded input
///   (`input + pad`) and its length counted (`pool_size`, the product over dims); then it is
///   clipped to the input. The divisor is `pool_size` if `g.count_include_pad`, else the number
///   of input positions in the window. So a `ceil_mode` window that hangs past the right
///   padding never counts the part beyond it, even with `count_include_pad`.
///
/// `g.dilation` is ignored (average pooling has none). A window with no input position (not
/// possible for geometry PyTorch accepts) gives 0.
pub fn avg_pool_forward(g: &PoolGeom, x: &[f32], y: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let (in_plane, out_plane) = (g.in_spatial(), g.out_spatial());
    debug_assert_eq!(x.len(), g.n * g.c * in_plane);
    debug_assert_eq!(y.len(), g.n * g.c * out_plane);
    for p in 0..g.n * g.c {
        let xp = &x[p * in_plane..(p + 1) * in_plane];
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        let mut o = 0;
        for z in 0..od {
            let (d0, d1, pd) = avg_range(z, id, g.kernel[0], g.stride[0], g.pad[0]);
            for r in 0..oh {
                let (h0, h1, ph) = avg_range(r, ih, g.kernel[1], g.stride[1], g.pad[1]);
                for s in 0..ow {
                    let (w0, w1, pw) = avg_range(s, iw, g.kernel[2], g.stride[2], g.pad[2]);
                    let divisor = avg_divisor(g, [d0, d1, h0, h1, w0, w1], pd * ph * pw);
                    let mut sum = 0.0f32;
                    for d in d0..d1 {
                        for h in h0..h1 {
                            let row = (d * ih + h) * iw;
                            for &v in &xp[row + w0..row + w1] {
                                sum += v;
                            }
                        }
                    }
                    yp[o] = if divisor == 0 { 0.0 } else { sum / divisor as f32 };
                    o += 1;
                }
            }
        }
    }
}

/// The divisor of an average-pooling window clipped to `[d0, d1) x [h0, h1) x [w0, w1)`, whose
/// extent counted with the padding is `pool_size`; 0 if the clipped window is empty.
#[inline]
fn avg_divisor(g: &PoolGeom, [d0, d1, h0, h1, w0, w1]: [usize; 6], pool_size: usize) -> usize {
    if d0 >= d1 || h0 >= h1 || w0 >= w1 {
        0
    } else if g.count_include_pad {
        pool_size
    } else {
        (d1 - d0) * (h1 - h0) * (w1 - w0)
    }
}

/// Gradient of [`avg_pool_forward`] with respect to its input: every input position of output
/// `o`'s window receives `gy[o] / divisor`, with the forward's divisor.
///
/// - `gy: [N, C, oD, oH, oW]`;
/// - `gx: [N, C, D, H, W]`, accumulated.
pub fn avg_pool_backward_input(g: &PoolGeom, gy: &[f32], gx: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let (in_plane, out_plane) = (g.in_spatial(), g.out_spatial());
    debug_assert_eq!(gy.len(), g.n * g.c * out_plane);
    debug_assert_eq!(gx.len(), g.n * g.c * in_plane);
    for p in 0..g.n * g.c {
        let gyp = &gy[p * out_plane..(p + 1) * out_plane];
        let gxp = &mut gx[p * in_plane..(p + 1) * in_plane];
        let mut o = 0;
        for z in 0..od {
            let (d0, d1, pd) = avg_range(z, id, g.kernel[0], g.stride[0], g.pad[0]);
            for r in 0..oh {
                let (h0, h1, ph) = avg_range(r, ih, g.kernel[1], g.stride[1], g.pad[1]);
                for s in 0..ow {
                    let (w0, w1, pw) = avg_range(s, iw, g.kernel[2], g.stride[2], g.pad[2]);
                    let divisor = avg_divisor(g, [d0, d1, h0, h1, w0, w1], pd * ph * pw);
                    if divisor != 0 {
                        let share = gyp[o] / divisor as f32;
                        for d in d0..d1 {
                            for h in h0..h1 {
                                let row = (d * ih + h) * iw;
                                for v in &mut gxp[row + w0..row + w1] {
                                    *v += share;
                                }
                            }
                        }
                    }
                    o += 1;
                }
            }
        }
    }
}

// ---- the layers: planning and the network's forward and backward ----

/// Plans `nn.MaxPool1d/2d/3d`: the window geometry, the output shape, and `extra` for the
/// argmax indices (which backward, and a later `MaxUnpool`, read).
pub(crate) const fn plan_max(p: &MaxPool, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, p.dims as usize + 1));
    let g = ctry!(window(
        at,
        s,
        p.kernel_size,
        p.stride,
        p.padding,
        p.dilation,
        p.ceil_mode
    ));
    node.exec = Exec::MaxPool(g);
    node.out_shape = Shape::with_spatial3(s.rank(), s.channels(), g.output);
    node.extra.len = crate::plan::batch_len(at.batch, node.out_shape.numel());
    Ok(())
}

/// Plans `nn.AvgPool1d/2d/3d`.
pub(crate) const fn plan_avg(p: &AvgPool, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, p.dims as usize + 1));
    let mut g = ctry!(window(at, s, p.kernel_size, p.stride, p.padding, [1; 3], p.ceil_mode));
    g.count_include_pad = p.count_include_pad;
    node.exec = Exec::AvgPool(g);
    node.out_shape = Shape::with_spatial3(s.rank(), s.channels(), g.output);
    Ok(())
}

/// The window geometry of a pooling layer on input `s`, with PyTorch's checks (padding at most
/// half the window, a window that fits the padded input).
const fn window(
    at: At,
    s: Shape,
    kernel: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
    dilation: [usize; 3],
    ceil: bool,
) -> Result<PoolGeom> {
    let input = s.spatial3();
    let mut output = [1usize; 3];
    let mut d = 0;
    while d < 3 {
        if kernel[d] == 0 || stride[d] == 0 || dilation[d] == 0 {
            return Err(at.err("kernel_size, stride and dilation must be positive", 1, 0));
        }
        if pad[d] > kernel[d] / 2 {
            return Err(at.err("padding must be at most half the kernel size", kernel[d] / 2, pad[d]));
        }
        output[d] = match window_out(input[d], kernel[d], stride[d], pad[d], pad[d], dilation[d], ceil) {
            Some(o) => o,
            None => {
                return Err(at.err(
                    "input (with padding) is smaller than the window",
                    dilation[d] * (kernel[d] - 1) + 1,
                    input[d] + 2 * pad[d],
                ))
            }
        };
        d += 1;
    }
    Ok(PoolGeom {
        n: at.batch,
        c: s.channels(),
        input,
        output,
        kernel,
        stride,
        dilation,
        pad,
        count_include_pad: true,
    })
}

/// The network's forward pass of a max-pool node (indices into `extra`).
pub(crate) fn forward_max(mut g: PoolGeom, io: &mut Fwd<'_>) {
    g.n = io.n;
    let len = io.y.len();
    max_pool_forward(&g, io.x, io.y, &mut io.extra[..len]);
}

/// The network's backward pass of a max-pool node.
pub(crate) fn backward_max(mut g: PoolGeom, io: &mut Bwd<'_>) {
    g.n = io.n;
    if io.has_gx() {
        max_pool_backward_input(&g, &io.extra[..io.gy.len()], io.gy, io.gx);
    }
}

/// The network's forward pass of an average-pool node.
pub(crate) fn forward_avg(mut g: PoolGeom, io: &mut Fwd<'_>) {
    g.n = io.n;
    avg_pool_forward(&g, io.x, io.y);
}

/// The network's backward pass of an average-pool node.
pub(crate) fn backward_avg(mut g: PoolGeom, io: &mut Bwd<'_>) {
    g.n = io.n;
    if io.has_gx() {
        avg_pool_backward_input(&g, io.gy, io.gx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom1d(
        input: usize,
        output: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad: usize,
        cip: bool,
    ) -> PoolGeom {
        PoolGeom {
            n: 1,
            c: 1,
            input: [1, 1, input],
            output: [1, 1, output],
            kernel: [1, 1, kernel],
            stride: [1, 1, stride],
            dilation: [1, 1, dilation],
            pad: [0, 0, pad],
            count_include_pad: cip,
        }
    }

    fn decoded(v: &[f32]) -> [usize; 3] {
        core::array::from_fn(|i| decode_index(v[i]))
    }

    #[test]
    fn index_encoding_round_trips() {
        for i in [0usize, 1, 7, 1 << 20, 1 << 30, u32::MAX as usize] {
            assert_eq!(decode_index(encode_index(i)), i);
        }
    }

    #[test]
    fn max_pool_padding_never_wins_and_ties_take_the_first() {
        // MaxPool1d(2, stride 2, padding 1) on [-3, -1, -1, -5]: windows [pad, -3], [-1, -1], [-5, pad].
        let g = geom1d(4, 3, 2, 2, 1, 1, false);
        let (mut y, mut idx) = ([0.0; 3], [0.0; 3]);
        max_pool_forward(&g, &[-3.0, -1.0, -1.0, -5.0], &mut y, &mut idx);
        assert_eq!(y, [-3.0, -1.0, -5.0]);
        assert_eq!(decoded(&idx), [0, 1, 3]);
        let mut gx = [1.0; 4];
        max_pool_backward_input(&g, &idx, &[10.0, 20.0, 30.0], &mut gx);
        assert_eq!(gx, [11.0, 21.0, 1.0, 31.0]);
    }

    #[test]
    fn max_pool_nan_wins_with_the_last_nan_index() {
        // PyTorch 2.x CPU: max_pool1d([1, nan, 3, nan, 0], 5, return_indices=True) -> (nan, 3).
        let g = geom1d(5, 1, 5, 5, 1, 0, false);
        let (mut y, mut idx) = ([0.0; 1], [0.0; 1]);
        max_pool_forward(&g, &[1.0, f32::NAN, 3.0, f32::NAN, 0.0], &mut y, &mut idx);
        assert!(y[0].is_nan());
        assert_eq!(decode_index(idx[0]), 3);
    }

    #[test]
    fn max_pool_window_without_input_matches_pytorch_and_backward_skips_it() {
        // PyTorch: max_pool1d(ones(1, 1, 2), 2, stride=1, padding=1, dilation=3,
        // return_indices=True) -> (-inf, 2): the window reads positions -1 and 2 only.
        let g = geom1d(2, 1, 2, 1, 3, 1, false);
        let (mut y, mut idx) = ([0.0; 1], [0.0; 1]);
        max_pool_forward(&g, &[1.0, 1.0], &mut y, &mut idx);
        assert_eq!(y[0], f32::NEG_INFINITY);
        assert_eq!(decode_index(idx[0]), 2);
        let mut gx = [0.0; 2];
        max_pool_backward_input(&g, &idx, &[1.0], &mut gx);
        assert_eq!(gx, [0.0, 0.0]);
    }

    #[test]
    fn max_pool_2x2_is_bit_identical_to_the_general_path() {
        // Ties (including 0.0 against -0.0), NaNs at every window position, -inf windows, an
        // odd last row and column that no window reads, and several depth slices and planes.
        let specials = [
            0.0,
            -0.0,
            1.0,
            1.0,
            f32::NAN,
            -f32::NAN,
            f32::NEG_INFINITY,
            f32::INFINITY,
            -2.5,
        ];
        for (n, c, input) in [
            (1, 1, [1, 2, 2]),
            (2, 3, [1, 7, 5]),
            (1, 2, [3, 4, 6]),
            (1, 1, [2, 9, 9]),
        ] {
            let [d, h, w] = input;
            let g = PoolGeom {
                n,
                c,
                input,
                output: [d, h / 2, w / 2],
                kernel: [1, 2, 2],
                stride: [1, 2, 2],
                dilation: [1; 3],
                pad: [0; 3],
                count_include_pad: false,
            };
            assert!(is_max_pool_2x2(&g));
            let mut x = [0.0f32; 2 * 3 * 2 * 9 * 9];
            let mut y = [[0.0f32; 2 * 3 * 2 * 4 * 4]; 2];
            let mut idx = [[0.0f32; 2 * 3 * 2 * 4 * 4]; 2];
            let (xl, yl) = (n * c * g.in_spatial(), n * c * g.out_spatial());
            for seed in 0..40usize {
                for (i, v) in x[..xl].iter_mut().enumerate() {
                    // A few specials per window, mostly small integers so ties are common.
                    let h = (i * 2654435761 + seed * 40503) >> 7;
                    *v = if h % 5 == 0 {
                        specials[h % specials.len()]
                    } else {
                        (h % 3) as f32
                    };
                }
                let [(y0, y1), (i0, i1)] = [y.split_at_mut(1), idx.split_at_mut(1)];
                max_pool_2x2_forward(&g, &x[..xl], &mut y0[0][..yl], &mut i0[0][..yl]);
                max_pool_general_forward(&g, &x[..xl], &mut y1[0][..yl], &mut i1[0][..yl]);
                let bits = |v: &[f32]| -> [u32; 2 * 3 * 2 * 4 * 4] { core::array::from_fn(|i| v[i].to_bits()) };
                assert_eq!(bits(&y[0]), bits(&y[1]), "values, input {input:?}, seed {seed}");
                assert_eq!(bits(&idx[0]), bits(&idx[1]), "indices, input {input:?}, seed {seed}");
            }
        }
        // ceil_mode (a window past the end) and padding keep the general path.
        let mut g = geom1d(5, 3, 2, 2, 1, 0, false);
        (g.kernel, g.stride, g.input, g.output) = ([1, 2, 2], [1, 2, 2], [1, 2, 5], [1, 1, 3]);
        assert!(!is_max_pool_2x2(&g));
        (g.output, g.pad) = ([1, 1, 2], [0, 0, 1]);
        assert!(!is_max_pool_2x2(&g));
    }

    #[test]
    fn avg_pool_divisors() {
        // AvgPool1d(3, stride 2, padding 1, ceil_mode) on 6 elements: windows [-1, 2), [1, 4),
        // [3, 6), [5, 7) clipped to [5, 7) (input + pad = 7): pool sizes 3, 3, 3, 2.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut y = [0.0; 4];
        avg_pool_forward(&geom1d(6, 4, 3, 2, 1, 1, true), &x, &mut y);
        assert_eq!(y, [3.0 / 3.0, 9.0 / 3.0, 15.0 / 3.0, 6.0 / 2.0]);
        avg_pool_forward(&geom1d(6, 4, 3, 2, 1, 1, false), &x, &mut y);
        assert_eq!(y, [3.0 / 2.0, 9.0 / 3.0, 15.0 / 3.0, 6.0 / 1.0]);
        let mut gx = [0.0; 6];
        avg_pool_backward_input(&geom1d(6, 4, 3, 2, 1, 1, true), &[3.0, 6.0, 9.0, 2.0], &mut gx);
        assert_eq!(gx, [1.0, 1.0 + 2.0, 2.0, 2.0 + 3.0, 3.0, 3.0 + 1.0]);
    }

    #[test]
    fn adaptive_windows_overlap_when_sizes_do_not_divide() {
        assert_eq!([0, 1, 2].map(|i| adaptive_range(i, 7, 3)), [(0, 3), (2, 5), (4, 7)]);
        assert_eq!(
            [0, 1, 2, 3].map(|i| adaptive_range(i, 10, 4)),
            [(0, 3), (2, 5), (5, 8), (7, 10)]
        );
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut y = [0.0; 3];
        adaptive_avg_pool_forward(1, 1, [1, 1, 7], [1, 1, 3], &x, &mut y);
        assert_eq!(y, [1.0, 3.0, 5.0]);
        let mut idx = [0.0; 3];
        adaptive_max_pool_forward(1, 1, [1, 1, 7], [1, 1, 3], &x, &mut y, &mut idx);
        assert_eq!((y, decoded(&idx)), ([2.0, 4.0, 6.0], [2, 4, 6]));
        let mut gx = [0.0; 7];
        adaptive_avg_pool_backward_input(1, 1, [1, 1, 7], [1, 1, 3], &[3.0, 3.0, 3.0], &mut gx);
        assert_eq!(gx, [1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0]);
    }

    #[test]
    fn unpool_skips_out_of_range_indices() {
        let idx = [encode_index(2), encode_index(9), encode_index(0)];
        let mut y = [7.0; 4];
        max_unpool_forward(1, 1, 3, 4, &[1.0, 2.0, 3.0], &idx, &mut y);
        assert_eq!(y, [3.0, 0.0, 1.0, 0.0]);
        let mut gx = [1.0; 3];
        max_unpool_backward_input(1, 1, 3, 4, &idx, &[10.0, 20.0, 30.0, 40.0], &mut gx);
        assert_eq!(gx, [31.0, 1.0, 11.0]);
    }
}
