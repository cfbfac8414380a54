//! Adaptive pooling (`nn.AdaptiveAvgPool1d/2d/3d`, `nn.AdaptiveMaxPool1d/2d/3d`): a fixed output size,
//! with windows `[floor(i * in / out), ceil((i + 1) * in / out))` that overlap when `out` does
//! not divide `in`. Max indices are stored as in [`super::max_pool_forward`].

use super::{encode_index, scatter_indices};
use crate::error::Result;
use crate::layer::Adaptive;
use crate::ops::io::{Bwd, Fwd};
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// Geometry of an adaptive pool over `[N, C, D, H, W]` (the batch comes with each call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptiveGeom {
    /// Channels.
    pub c: usize,
    /// Input spatial dims `[D, H, W]`.
    pub input: [usize; 3],
    /// Output spatial dims `[oD, oH, oW]`, each at least 1.
    pub output: [usize; 3],
}

impl AdaptiveGeom {
    /// Input spatial size `D * H * W`.
    pub const fn in_spatial(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2]
    }
    /// Output spatial size.
    pub const fn out_spatial(&self) -> usize {
        self.output[0] * self.output[1] * self.output[2]
    }
}

/// The window `[floor(i * input / output), ceil((i + 1) * input / output))` of adaptive pooling
/// output `i` along one dim.
#[inline]
pub(super) fn adaptive_range(i: usize, input: usize, output: usize) -> (usize, usize) {
    (i * input / output, ((i + 1) * input).div_ceil(output))
}

/// Adaptive average pooling (`nn.AdaptiveAvgPool1d/2d`, <https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool2d.html>).
///
/// - `x: [N, C, D, H, W]` with `input = [D, H, W]`;
/// - `y: [N, C, oD, oH, oW]` with `output = [oD, oH, oW]` (each at least 1): the mean over the
///   window `[floor(i * in / out), ceil((i + 1) * in / out))` in each dim. Windows overlap when
///   `out` does not divide `in` (7 -> 3 gives `[0, 3)`, `[2, 5)`, `[4, 7)`).
pub fn adaptive_avg_pool_forward(n: usize, c: usize, input: [usize; 3], output: [usize; 3], x: &[f32], y: &mut [f32]) {
    let [id, ih, iw] = input;
    let [od, oh, ow] = output;
    let (in_plane, out_plane) = (id * ih * iw, od * oh * ow);
    debug_assert_eq!(x.len(), n * c * in_plane);
    debug_assert_eq!(y.len(), n * c * out_plane);
    for p in 0..n * c {
        let xp = &x[p * in_plane..(p + 1) * in_plane];
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        let mut o = 0;
        for z in 0..od {
            let (d0, d1) = adaptive_range(z, id, od);
            for r in 0..oh {
                let (h0, h1) = adaptive_range(r, ih, oh);
                for s in 0..ow {
                    let (w0, w1) = adaptive_range(s, iw, ow);
                    let mut sum = 0.0f32;
                    for d in d0..d1 {
                        for h in h0..h1 {
                            let row = (d * ih + h) * iw;
                            for &v in &xp[row + w0..row + w1] {
                                sum += v;
                            }
                        }
                    }
                    yp[o] = sum / ((d1 - d0) * (h1 - h0) * (w1 - w0)) as f32;
                    o += 1;
                }
            }
        }
    }
}

/// Gradient of [`adaptive_avg_pool_forward`] with respect to its input: every position of
/// output `o`'s window receives `gy[o] / window size`.
///
/// - `gy: [N, C, oD, oH, oW]`;
/// - `gx: [N, C, D, H, W]`, accumulated.
pub fn adaptive_avg_pool_backward_input(
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    gy: &[f32],
    gx: &mut [f32],
) {
    let [id, ih, iw] = input;
    let [od, oh, ow] = output;
    let (in_plane, out_plane) = (id * ih * iw, od * oh * ow);
    debug_assert_eq!(gy.len(), n * c * out_plane);
    debug_assert_eq!(gx.len(), n * c * in_plane);
    for p in 0..n * c {
        let gyp = &gy[p * out_plane..(p + 1) * out_plane];
        let gxp = &mut gx[p * in_plane..(p + 1) * in_plane];
        let mut o = 0;
        for z in 0..od {
            let (d0, d1) = adaptive_range(z, id, od);
            for r in 0..oh {
                let (h0, h1) = adaptive_range(r, ih, oh);
                for s in 0..ow {
                    let (w0, w1) = adaptive_range(s, iw, ow);
                    let share = gyp[o] / ((d1 - d0) * (h1 - h0) * (w1 - w0)) as f32;
                    for d in d0..d1 {
                        for h in h0..h1 {
                            let row = (d * ih + h) * iw;
                            for v in &mut gxp[row + w0..row + w1] {
                                *v += share;
                            }
                        }
                    }
                    o += 1;
                }
            }
        }
    }
}

/// Adaptive max pooling (`nn.AdaptiveMaxPool1d/2d`, <https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool2d.html>).
///
/// - `x: [N, C, D, H, W]` with `input = [D, H, W]`;
/// - `y: [N, C, oD, oH, oW]` with `output = [oD, oH, oW]`: the maximum over the window
///   `[floor(i * in / out), ceil((i + 1) * in / out))` in each dim;
/// - `indices: [N, C, oD, oH, oW]`: flat argmax within the input plane, as
///   [`max_pool_forward`](super::max_pool_forward) (same tie and NaN rules, same [`encode_index`](super::encode_index) encoding).
pub fn adaptive_max_pool_forward(
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    x: &[f32],
    y: &mut [f32],
    indices: &mut [f32],
) {
    let [id, ih, iw] = input;
    let [od, oh, ow] = output;
    let (in_plane, out_plane) = (id * ih * iw, od * oh * ow);
    debug_assert_eq!(x.len(), n * c * in_plane);
    debug_assert_eq!(y.len(), n * c * out_plane);
    debug_assert_eq!(indices.len(), y.len());
    for p in 0..n * c {
        let xp = &x[p * in_plane..(p + 1) * in_plane];
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        let ip = &mut indices[p * out_plane..(p + 1) * out_plane];
        let mut o = 0;
        for z in 0..od {
            let (d0, d1) = adaptive_range(z, id, od);
            for r in 0..oh {
                let (h0, h1) = adaptive_range(r, ih, oh);
                for s in 0..ow {
                    let (w0, w1) = adaptive_range(s, iw, ow);
                    let mut best = f32::NEG_INFINITY;
                    let mut best_at = (d0 * ih + h0) * iw + w0;
                    for d in d0..d1 {
                        for h in h0..h1 {
                            for w in w0..w1 {
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

/// Gradient of [`adaptive_max_pool_forward`] with respect to its input:
/// `gx[n, c, indices[n, c, o]] += gy[n, c, o]`.
///
/// - `indices, gy: [N, C, oD, oH, oW]`;
/// - `gx: [N, C, D, H, W]`, accumulated.
pub fn adaptive_max_pool_backward_input(
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    indices: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    let in_plane = input[0] * input[1] * input[2];
    let out_plane = output[0] * output[1] * output[2];
    scatter_indices(n * c, out_plane, in_plane, indices, gy, gx);
}

// ---- the layers: planning and the network's forward and backward ----

/// Plans `nn.AdaptiveAvgPool1d/2d/3d` (`max == false`) or `nn.AdaptiveMaxPool1d/2d/3d` (indices in
/// `extra`).
pub(crate) const fn plan(a: &Adaptive, max: bool, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, a.dims as usize + 1));
    if a.output_size[0] == 0 || a.output_size[1] == 0 || a.output_size[2] == 0 {
        return Err(at.err("output_size must be positive", 1, 0));
    }
    let g = AdaptiveGeom {
        c: s.channels(),
        input: s.spatial3(),
        output: a.output_size,
    };
    node.out_shape = Shape::with_spatial3(s.rank(), s.channels(), a.output_size);
    if max {
        node.exec = Exec::AdaptiveMaxPool(g);
        node.extra.len = crate::plan::batch_len(at.batch, node.out_shape.numel());
    } else {
        node.exec = Exec::AdaptiveAvgPool(g);
    }
    Ok(())
}

/// The network's forward pass of an adaptive average pool.
pub(crate) fn forward_avg(g: AdaptiveGeom, io: &mut Fwd<'_>) {
    adaptive_avg_pool_forward(io.n, g.c, g.input, g.output, io.x, io.y);
}

/// The network's backward pass of an adaptive average pool.
pub(crate) fn backward_avg(g: AdaptiveGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        adaptive_avg_pool_backward_input(io.n, g.c, g.input, g.output, io.gy, io.gx);
    }
}

/// The network's forward pass of an adaptive max pool (indices into `extra`).
pub(crate) fn forward_max(g: AdaptiveGeom, io: &mut Fwd<'_>) {
    let len = io.y.len();
    adaptive_max_pool_forward(io.n, g.c, g.input, g.output, io.x, io.y, &mut io.extra[..len]);
}

/// The network's backward pass of an adaptive max pool.
pub(crate) fn backward_max(g: AdaptiveGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        adaptive_max_pool_backward_input(io.n, g.c, g.input, g.output, &io.extra[..io.gy.len()], io.gy, io.gx);
    }
}
