//! Explicit 2-d padding layers: `nn.ZeroPad2d`, `nn.ReflectionPad2d`, `nn.ReplicationPad2d` and
//! `nn.CircularPad2d`.
//!
//! Use these when padding is a layer of its own (for example reflection padding before a
//! convolution with `padding=0`). A convolution's own `padding` / `padding_mode` does not go
//! through here: the convolution kernels read the padded positions directly, with the same
//! [`PaddingMode::map`].
//!
//! `padding` is `(left, right, top, bottom)`, as PyTorch's padding tuple. The planner checks
//! PyTorch's limits (reflect: each padding smaller than its dim; circular: not larger).

use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::layer::Pad2d;
use crate::ops::geom::PaddingMode;
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// Geometry of a 2-d pad over `[N, C, H, W]` (the batch comes with each call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PadGeom {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// `(left, right, top, bottom)`.
    pub padding: [usize; 4],
    /// What the padding reads.
    pub mode: PaddingMode,
}

/// Output spatial size `[H + top + bottom, W + left + right]` of a 2-d pad.
#[inline]
const fn padded(h: usize, w: usize, [left, right, top, bottom]: [usize; 4]) -> (usize, usize) {
    (h + top + bottom, w + left + right)
}

/// 2-d padding (<https://pytorch.org/docs/stable/generated/torch.nn.ReflectionPad2d.html> and
/// its siblings).
///
/// - `x: [N, C, H, W]`;
/// - `y: [N, C, H + top + bottom, W + left + right]` with `padding = [left, right, top, bottom]`:
///   `y[n, c, i, j] = x[n, c, map(i - top, H), map(j - left, W)]`, or 0 where `mode` maps to
///   nothing ([`PaddingMode::Zeros`] outside the input). `map` is [`PaddingMode::map`]: reflect
///   mirrors without repeating the edge, replicate repeats the edge, circular wraps around.
#[allow(clippy::too_many_arguments)]
pub fn pad2d_forward(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    padding: [usize; 4],
    mode: PaddingMode,
    x: &[f32],
    y: &mut [f32],
) {
    let (oh, ow) = padded(h, w, padding);
    let [left, _, top, _] = padding;
    debug_assert_eq!(x.len(), n * c * h * w);
    debug_assert_eq!(y.len(), n * c * oh * ow);
    for p in 0..n * c {
        let xp = &x[p * h * w..(p + 1) * h * w];
        let yp = &mut y[p * oh * ow..(p + 1) * oh * ow];
        for i in 0..oh {
            let row = mode.map(i as isize - top as isize, h);
            for j in 0..ow {
                let col = mode.map(j as isize - left as isize, w);
                yp[i * ow + j] = match (row, col) {
                    (Some(r), Some(s)) => xp[r * w + s],
                    _ => 0.0,
                };
            }
        }
    }
}

/// Gradient of [`pad2d_forward`] with respect to its input: every output position sends its
/// gradient to the input position it was read from, `gx[n, c, map(i - top), map(j - left)] += gy[n, c, i, j]`
/// (so with reflect, replicate or circular an edge can receive several).
///
/// - `gy: [N, C, H + top + bottom, W + left + right]`;
/// - `gx: [N, C, H, W]`, accumulated.
#[allow(clippy::too_many_arguments)]
pub fn pad2d_backward_input(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    padding: [usize; 4],
    mode: PaddingMode,
    gy: &[f32],
    gx: &mut [f32],
) {
    let (oh, ow) = padded(h, w, padding);
    let [left, _, top, _] = padding;
    debug_assert_eq!(gy.len(), n * c * oh * ow);
    debug_assert_eq!(gx.len(), n * c * h * w);
    for p in 0..n * c {
        let gyp = &gy[p * oh * ow..(p + 1) * oh * ow];
        let gxp = &mut gx[p * h * w..(p + 1) * h * w];
        for i in 0..oh {
            let Some(r) = mode.map(i as isize - top as isize, h) else {
                continue;
            };
            for j in 0..ow {
                if let Some(s) = mode.map(j as isize - left as isize, w) {
                    gxp[r * w + s] += gyp[i * ow + j];
                }
            }
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.ZeroPad2d` and its siblings, with PyTorch's limits (reflect: padding smaller than
/// the dim; circular: not larger).
pub(crate) const fn plan(p: &Pad2d, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    if s.rank() != 3 {
        return Err(at.err("input must be [C, H, W] (rank 3)", 3, s.rank()));
    }
    let (h, w) = (s.dim(1), s.dim(2));
    let (limit_w, limit_h) = (pad_limit(p.mode, w), pad_limit(p.mode, h));
    if p.padding[0] > limit_w || p.padding[1] > limit_w {
        return Err(at.err(
            "left/right padding too large for the input width",
            limit_w,
            p.padding[0],
        ));
    }
    if p.padding[2] > limit_h || p.padding[3] > limit_h {
        return Err(at.err(
            "top/bottom padding too large for the input height",
            limit_h,
            p.padding[2],
        ));
    }
    node.exec = Exec::Pad2d(PadGeom {
        c: s.channels(),
        h,
        w,
        padding: p.padding,
        mode: p.mode,
    });
    let (oh, ow) = padded(h, w, p.padding);
    node.out_shape = Shape::chw(s.channels(), oh, ow);
    Ok(())
}

/// The most padding `mode` allows on a dim of size `n`.
const fn pad_limit(mode: PaddingMode, n: usize) -> usize {
    match mode {
        PaddingMode::Reflect => n - 1,
        PaddingMode::Circular => n,
        PaddingMode::Zeros | PaddingMode::Replicate => usize::MAX,
    }
}

/// The network's forward pass of a pad node.
pub(crate) fn forward(g: PadGeom, io: &mut Fwd<'_>) {
    pad2d_forward(io.n, g.c, g.h, g.w, g.padding, g.mode, io.x, io.y);
}

/// The network's backward pass of a pad node.
pub(crate) fn backward(g: PadGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        pad2d_backward_input(io.n, g.c, g.h, g.w, g.padding, g.mode, io.gy, io.gx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_and_replicate_a_row() {
        // x = [1 2 3], padding (left 2, right 1): reflect "3 2 | 1 2 3 | 2", replicate "1 1 | 1 2 3 | 3".
        let x = [1.0, 2.0, 3.0];
        let mut y = [0.0; 6];
        pad2d_forward(1, 1, 1, 3, [2, 1, 0, 0], PaddingMode::Reflect, &x, &mut y);
        assert_eq!(y, [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
        pad2d_forward(1, 1, 1, 3, [2, 1, 0, 0], PaddingMode::Replicate, &x, &mut y);
        assert_eq!(y, [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
        pad2d_forward(1, 1, 1, 3, [2, 1, 0, 0], PaddingMode::Circular, &x, &mut y);
        assert_eq!(y, [2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
        let mut gx = [1.0; 3];
        pad2d_backward_input(
            1,
            1,
            1,
            3,
            [2, 1, 0, 0],
            PaddingMode::Reflect,
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &mut gx,
        );
        assert_eq!(gx, [1.0 + 3.0, 1.0 + 2.0 + 4.0 + 6.0, 1.0 + 1.0 + 5.0]);
    }

    #[test]
    fn zero_pad_a_column() {
        // x = [[1], [2]], padding (0, 1, 1, 0): a zero row on top, a zero column on the right.
        let mut y = [9.0; 6];
        pad2d_forward(1, 1, 2, 1, [0, 1, 1, 0], PaddingMode::Zeros, &[1.0, 2.0], &mut y);
        assert_eq!(y, [0.0, 0.0, 1.0, 0.0, 2.0, 0.0]);
        let mut gx = [0.0; 2];
        pad2d_backward_input(
            1,
            1,
            2,
            1,
            [0, 1, 1, 0],
            PaddingMode::Zeros,
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &mut gx,
        );
        assert_eq!(gx, [3.0, 5.0]);
    }
}
