//! Upsampling (`nn.Upsample(size, scale_factor, mode='nearest'|'bilinear', align_corners)`)
//! of `[N, C, H, W]`: forward and input gradient.
//!
//! Each output coordinate reads one (nearest) or two (bilinear) input coordinates per dim, with
//! PyTorch's source-index rules (`aten/src/ATen/native/UpSample.h`):
//!
//! ```text
//! nearest                 src = min(floor(dst · r), in - 1)
//! bilinear                src = max((dst + 0.5) · r - 0.5, 0)      (align_corners=False)
//!                         src = dst · r                            (align_corners=True)
//!                         i0 = floor(src), i1 = min(i0 + 1, in - 1), λ = src - i0
//! ```
//!
//! where `r` is `1 / scale_factor` when a scale factor is given, `in / out` for a size, and
//! `(in - 1) / (out - 1)` with `align_corners=True`. Bilinear is separable: `y[oh, ow] =
//! Σ wh(oh, h) · ww(ow, w) · x[h, w]` over the (up to) two taps of each dim; the backward is
//! the transpose, `gx[h, w] += Σ wh(oh, h) · ww(ow, w) · gy[oh, ow]`.
//! See <https://pytorch.org/docs/stable/generated/torch.nn.Upsample.html>.

use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::layer::{Upsample, UpsampleMode};
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// Geometry of an upsampling over `[N, C, H, W] -> [N, C, oH, oW]`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpsampleGeom {
    /// Channels.
    pub c: usize,
    /// Input `[H, W]`.
    pub input: [usize; 2],
    /// Output `[oH, oW]`.
    pub output: [usize; 2],
    /// The source-coordinate factor `r` of each dim (see the module docs).
    pub ratio: [f32; 2],
    /// Nearest or bilinear.
    pub mode: UpsampleMode,
    /// Bilinear's `align_corners`.
    pub align_corners: bool,
}

impl UpsampleGeom {
    /// The input taps of output coordinate `dst` along dim `d`: `(i0, i1, λ0, λ1)`.
    pub fn taps(&self, d: usize, dst: usize) -> (usize, usize, f32, f32) {
        let n = self.input[d];
        let r = self.ratio[d];
        if self.mode == UpsampleMode::Nearest {
            let i = ((dst as f32 * r) as usize).min(n - 1);
            return (i, i, 1.0, 0.0);
        }
        let src = if self.align_corners {
            dst as f32 * r
        } else {
            let s = (dst as f32 + 0.5) * r - 0.5;
            if s < 0.0 {
                0.0
            } else {
                s
            }
        };
        let i0 = (src as usize).min(n - 1);
        let i1 = if i0 < n - 1 { i0 + 1 } else { i0 };
        let l1 = src - i0 as f32;
        (i0, i1, 1.0 - l1, l1)
    }
}

/// Upsampling forward.
///
/// - `x`: `[N, C, H, W]`;
/// - `y`: `[N, C, oH, oW]`, overwritten: `y[oh, ow] = Σ wh·ww·x` over the taps (module docs).
pub fn upsample_forward(g: &UpsampleGeom, x: &[f32], y: &mut [f32]) {
    let ([h, w], [oh, ow]) = (g.input, g.output);
    for (xp, yp) in x.chunks(h * w).zip(y.chunks_mut(oh * ow)) {
        for i in 0..oh {
            let (h0, h1, a0, a1) = g.taps(0, i);
            for j in 0..ow {
                let (w0, w1, b0, b1) = g.taps(1, j);
                yp[i * ow + j] = a0 * (b0 * xp[h0 * w + w0] + b1 * xp[h0 * w + w1])
                    + a1 * (b0 * xp[h1 * w + w0] + b1 * xp[h1 * w + w1]);
            }
        }
    }
}

/// Upsampling input gradient: `gx[h, w] += Σ wh(oh, h) · ww(ow, w) · gy[oh, ow]`.
///
/// - `gy`: `[N, C, oH, oW]`;
/// - `gx`: `[N, C, H, W]`, accumulated.
pub fn upsample_backward_input(g: &UpsampleGeom, gy: &[f32], gx: &mut [f32]) {
    let ([h, w], [oh, ow]) = (g.input, g.output);
    for (gyp, gxp) in gy.chunks(oh * ow).zip(gx.chunks_mut(h * w)) {
        for i in 0..oh {
            let (h0, h1, a0, a1) = g.taps(0, i);
            for j in 0..ow {
                let (w0, w1, b0, b1) = g.taps(1, j);
                let v = gyp[i * ow + j];
                gxp[h0 * w + w0] += a0 * b0 * v;
                gxp[h0 * w + w1] += a0 * b1 * v;
                gxp[h1 * w + w0] += a1 * b0 * v;
                gxp[h1 * w + w1] += a1 * b1 * v;
            }
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.Upsample` on `[N, C, H, W]`: exactly one of `size` and `scale_factor`, an output
/// of at least one element per dim, and the source-coordinate ratios of the module docs.
pub(crate) const fn plan(u: &Upsample, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, 3));
    let given = (u.size[0] > 0) as usize + (u.scale_factor > 0.0) as usize;
    if given != 1 {
        return Err(at.err("exactly one of size and scale_factor must be given", 1, given));
    }
    let sp = s.spatial3();
    let input = [sp[1], sp[2]];
    let mut output = u.size;
    let mut ratio = [0.0f32; 2];
    let mut d = 0;
    while d < 2 {
        if u.scale_factor > 0.0 {
            output[d] = (input[d] as f32 * u.scale_factor) as usize;
        }
        if output[d] == 0 {
            return Err(at.err("output size must be positive", 1, 0));
        }
        ratio[d] = if u.align_corners && matches!(u.mode, UpsampleMode::Bilinear) {
            if output[d] > 1 {
                (input[d] - 1) as f32 / (output[d] - 1) as f32
            } else {
                0.0
            }
        } else if u.scale_factor > 0.0 {
            1.0 / u.scale_factor
        } else {
            input[d] as f32 / output[d] as f32
        };
        d += 1;
    }
    node.exec = Exec::Upsample(UpsampleGeom {
        c: s.channels(),
        input,
        output,
        ratio,
        mode: u.mode,
        align_corners: u.align_corners,
    });
    node.out_shape = Shape::chw(s.channels(), output[0], output[1]);
    Ok(())
}

/// The network's forward pass of an upsampling node.
pub(crate) fn forward(g: UpsampleGeom, io: &mut Fwd<'_>) {
    upsample_forward(&g, io.x, io.y);
}

/// The network's backward pass of an upsampling node.
pub(crate) fn backward(g: UpsampleGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        upsample_backward_input(&g, io.gy, io.gx);
    }
}
