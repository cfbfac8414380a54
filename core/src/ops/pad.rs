//! Explicit padding layers: `nn.ZeroPad1d/2d/3d`, `nn.ReflectionPad1d/2d/3d`,
//! `nn.ReplicationPad1d/2d/3d` and `nn.CircularPad1d/2d/3d`.
//!
//! Use these when padding is a layer of its own (for example reflection padding before a
//! convolution with `padding=0`). A convolution's own `padding` / `padding_mode` does not go
//! through here: the convolution kernels read the padded positions directly, with the same
//! [`PaddingMode::map`].
//!
//! `padding` is PyTorch's padding tuple, last dim first: `(left, right)` for 1-d,
//! `(left, right, top, bottom)` for 2-d, `(left, right, top, bottom, front, back)` for 3-d.
//! Every layer runs as a 3-d pad over `[N, C, D, H, W]` (lower dims keep size 1 and padding 0
//! in front). The planner checks PyTorch's limits (reflect: each padding smaller than its dim;
//! circular: not larger).

use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::layer::{Pad, Pad2d};
use crate::ops::geom::PaddingMode;
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// Geometry of a pad over `[N, C, D, H, W]` (the batch comes with each call), for every
/// padding layer (1-d and 2-d ones have `D = 1`, and `H = 1` for 1-d, with zero padding there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PadGeom {
    /// Channels.
    pub c: usize,
    /// Input spatial dims `[D, H, W]`.
    pub input: [usize; 3],
    /// `(left, right, top, bottom, front, back)`, as PyTorch's 3-d padding tuple.
    pub padding: [usize; 6],
    /// What the padding reads.
    pub mode: PaddingMode,
}

impl PadGeom {
    /// Output spatial dims `[D + front + back, H + top + bottom, W + left + right]`.
    pub const fn output(&self) -> [usize; 3] {
        padded3(self.input, self.padding)
    }
    /// Padding before each dim `[front, top, left]`.
    pub const fn front(&self) -> [usize; 3] {
        [self.padding[4], self.padding[2], self.padding[0]]
    }
}

/// Output spatial dims of a 3-d pad.
#[inline]
const fn padded3([d, h, w]: [usize; 3], p: [usize; 6]) -> [usize; 3] {
    [d + p[4] + p[5], h + p[2] + p[3], w + p[0] + p[1]]
}

/// A 2-d padding tuple as a 3-d one (no depth padding).
const fn as3(p: [usize; 4]) -> [usize; 6] {
    [p[0], p[1], p[2], p[3], 0, 0]
}

/// Padding over 1 to 3 spatial dims (<https://pytorch.org/docs/stable/generated/torch.nn.ReflectionPad3d.html>
/// and its siblings).
///
/// - `x: [N, C, D, H, W]` with `input = [D, H, W]`;
/// - `y: [N, C, D + front + back, H + top + bottom, W + left + right]` with
///   `padding = [left, right, top, bottom, front, back]`:
///   `y[n, c, a, i, j] = x[n, c, map(a - front, D), map(i - top, H), map(j - left, W)]`, or 0
///   where `mode` maps to nothing ([`PaddingMode::Zeros`] outside the input). `map` is
///   [`PaddingMode::map`]: reflect mirrors without repeating the edge, replicate repeats the
///   edge, circular wraps around.
#[allow(clippy::too_many_arguments)]
pub fn pad_forward(
    n: usize,
    c: usize,
    input: [usize; 3],
    padding: [usize; 6],
    mode: PaddingMode,
    x: &[f32],
    y: &mut [f32],
) {
    let [d, h, w] = input;
    let [od, oh, ow] = padded3(input, padding);
    let (in_plane, out_plane) = (d * h * w, od * oh * ow);
    debug_assert_eq!(x.len(), n * c * in_plane);
    debug_assert_eq!(y.len(), n * c * out_plane);
    for p in 0..n * c {
        let xp = &x[p * in_plane..(p + 1) * in_plane];
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        for a in 0..od {
            let slab = mode.map(a as isize - padding[4] as isize, d);
            for i in 0..oh {
                let row = mode.map(i as isize - padding[2] as isize, h);
                for j in 0..ow {
                    let col = mode.map(j as isize - padding[0] as isize, w);
                    yp[(a * oh + i) * ow + j] = match (slab, row, col) {
                        (Some(z), Some(r), Some(s)) => xp[(z * h + r) * w + s],
                        _ => 0.0,
                    };
                }
            }
        }
    }
}

/// Gradient of [`pad_forward`] with respect to its input: every output position sends its
/// gradient to the input position it was read from (so with reflect, replicate or circular an
/// edge can receive several).
///
/// - `gy: [N, C, D + front + back, H + top + bottom, W + left + right]`;
/// - `gx: [N, C, D, H, W]`, accumulated.
#[allow(clippy::too_many_arguments)]
pub fn pad_backward_input(
    n: usize,
    c: usize,
    input: [usize; 3],
    padding: [usize; 6],
    mode: PaddingMode,
    gy: &[f32],
    gx: &mut [f32],
) {
    let [d, h, w] = input;
    let [od, oh, ow] = padded3(input, padding);
    let (in_plane, out_plane) = (d * h * w, od * oh * ow);
    debug_assert_eq!(gy.len(), n * c * out_plane);
    debug_assert_eq!(gx.len(), n * c * in_plane);
    for p in 0..n * c {
        let gyp = &gy[p * out_plane..(p + 1) * out_plane];
        let gxp = &mut gx[p * in_plane..(p + 1) * in_plane];
        for a in 0..od {
            let Some(z) = mode.map(a as isize - padding[4] as isize, d) else {
                continue;
            };
            for i in 0..oh {
                let Some(r) = mode.map(i as isize - padding[2] as isize, h) else {
                    continue;
                };
                for j in 0..ow {
                    if let Some(s) = mode.map(j as isize - padding[0] as isize, w) {
                        gxp[(z * h + r) * w + s] += gyp[(a * oh + i) * ow + j];
                    }
                }
            }
        }
    }
}

/// 2-d padding (<https://pytorch.org/docs/stable/generated/torch.nn.ReflectionPad2d.html> and
/// its siblings): [`pad_forward`] with `D = 1`.
///
/// - `x: [N, C, H, W]`;
/// - `y: [N, C, H + top + bottom, W + left + right]` with `padding = [left, right, top, bottom]`.
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
    pad_forward(n, c, [1, h, w], as3(padding), mode, x, y);
}

/// Gradient of [`pad2d_forward`] with respect to its input ([`pad_backward_input`] with `D = 1`).
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
    pad_backward_input(n, c, [1, h, w], as3(padding), mode, gy, gx);
}

// ---- the layers: planning and the network's forward and backward ----

/// Plans `nn.ZeroPad2d` and its siblings (the `Pad2d` layer spec of model files before the
/// N-d pads): as [`plan`] with `dims = 2`.
pub(crate) const fn plan2d(p: &Pad2d, at: At, node: &mut Node) -> Result<()> {
    plan(
        &Pad {
            dims: 2,
            mode: p.mode,
            padding: as3(p.padding),
        },
        at,
        node,
    )
}

/// Plans `nn.ZeroPad1d/2d/3d` and their siblings, with PyTorch's limits (reflect: padding
/// smaller than the dim; circular: not larger).
pub(crate) const fn plan(p: &Pad, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    let rank = p.dims as usize + 1;
    if s.rank() != rank {
        let what = match p.dims {
            1 => "input must be [C, L] (rank 2)",
            2 => "input must be [C, H, W] (rank 3)",
            _ => "input must be [C, D, H, W] (rank 4)",
        };
        return Err(at.err(what, rank, s.rank()));
    }
    let input = s.spatial3();
    const WHAT: [&str; 3] = [
        "front/back padding too large for the input depth",
        "top/bottom padding too large for the input height",
        "left/right padding too large for the input width",
    ];
    let mut k = 3;
    while k > 0 {
        k -= 1;
        let (lo, hi) = (p.padding[2 * (2 - k)], p.padding[2 * (2 - k) + 1]);
        let limit = pad_limit(p.mode, input[k]);
        if lo > limit || hi > limit {
            return Err(at.err(WHAT[k], limit, lo));
        }
    }
    let g = PadGeom {
        c: s.channels(),
        input,
        padding: p.padding,
        mode: p.mode,
    };
    node.exec = Exec::Pad2d(g);
    node.out_shape = Shape::with_spatial3(rank, s.channels(), g.output());
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
    pad_forward(io.n, g.c, g.input, g.padding, g.mode, io.x, io.y);
}

/// The network's backward pass of a pad node.
pub(crate) fn backward(g: PadGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        pad_backward_input(io.n, g.c, g.input, g.padding, g.mode, io.gy, io.gx);
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
