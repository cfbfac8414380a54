//! `nn.Bilinear`: a learned bilinear form of two inputs, `y = x1^T A x2 + b`.
//!
//! `y[r, o] = sum_ij x1[r, i] * w[o, i, j] * x2[r, j] + b[o]`
//! ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Bilinear.html)).
//!
//! Rows `r` are every leading index of the inputs (the batch, and any dims before the last);
//! both inputs have the same rows. The weight is `[out, in1, in2]` as PyTorch's, the bias `[out]`
//! (empty slice when there is none). The cost is `rows * out * in1 * in2` multiply-adds for the
//! forward pass and each of the two backward passes.

use super::io::{acc, Bwd, Fwd};
use crate::error::Result;
use crate::layer::Bilinear;
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// `nn.Bilinear` applied to `rows` rows of each sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BilinearGeom {
    /// Rows per sample.
    pub rows: usize,
    /// Features of the first input.
    pub in1: usize,
    /// Features of the second input.
    pub in2: usize,
    /// Output features.
    pub out: usize,
    /// Whether there is a bias `[out]` after the weight.
    pub bias: bool,
}

/// Forward: `y[r, o] = sum_i x1[r, i] * (sum_j w[o, i, j] * x2[r, j]) + b[o]`.
///
/// - `x1`: first input `[rows, in1]`.
/// - `x2`: second input `[rows, in2]`.
/// - `w`: weight `[out, in1, in2]`.
/// - `b`: bias `[out]`, or empty for no bias.
/// - `y`: output `[rows, out]` (overwritten).
#[allow(clippy::too_many_arguments)]
pub fn bilinear_forward(
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) {
    debug_assert!(x1.len() == rows * in1 && x2.len() == rows * in2 && y.len() == rows * out);
    debug_assert!(w.len() == out * in1 * in2 && (b.is_empty() || b.len() == out));
    for r in 0..rows {
        let (a, c) = (&x1[r * in1..(r + 1) * in1], &x2[r * in2..(r + 1) * in2]);
        for o in 0..out {
            let mut acc = 0.0f32;
            for (i, &ai) in a.iter().enumerate() {
                let wrow = &w[(o * in1 + i) * in2..(o * in1 + i + 1) * in2];
                let t: f32 = wrow.iter().zip(c).map(|(&w, &c)| w * c).sum();
                acc += ai * t;
            }
            y[r * out + o] = acc + if b.is_empty() { 0.0 } else { b[o] };
        }
    }
}

/// Backward with respect to both inputs:
/// `gx1[r, i] += sum_o gy[r, o] sum_j w[o, i, j] x2[r, j]` and
/// `gx2[r, j] += sum_o gy[r, o] sum_i x1[r, i] w[o, i, j]`.
///
/// - `x1`: first input `[rows, in1]`; `x2`: second input `[rows, in2]`.
/// - `w`: weight `[out, in1, in2]`.
/// - `gy`: gradient with respect to the output `[rows, out]`.
/// - `gx1`: gradient with respect to `x1`, `[rows, in1]` (accumulated).
/// - `gx2`: gradient with respect to `x2`, `[rows, in2]` (accumulated).
#[allow(clippy::too_many_arguments)]
pub fn bilinear_backward_input(
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    gy: &[f32],
    gx1: &mut [f32],
    gx2: &mut [f32],
) {
    debug_assert!(x1.len() == rows * in1 && x2.len() == rows * in2 && gy.len() == rows * out);
    debug_assert!(gx1.len() == x1.len() && gx2.len() == x2.len() && w.len() == out * in1 * in2);
    for r in 0..rows {
        let (a, c) = (&x1[r * in1..(r + 1) * in1], &x2[r * in2..(r + 1) * in2]);
        let g1 = &mut gx1[r * in1..(r + 1) * in1];
        let g2 = &mut gx2[r * in2..(r + 1) * in2];
        for o in 0..out {
            let g = gy[r * out + o];
            for i in 0..in1 {
                let wrow = &w[(o * in1 + i) * in2..(o * in1 + i + 1) * in2];
                let ga = g * a[i];
                let mut t = 0.0f32;
                for ((g2, &wj), &cj) in g2.iter_mut().zip(wrow).zip(c) {
                    t += wj * cj;
                    *g2 += ga * wj;
                }
                g1[i] += g * t;
            }
        }
    }
}

/// Backward with respect to the parameters:
/// `gw[o, i, j] += sum_r gy[r, o] x1[r, i] x2[r, j]` and `gb[o] += sum_r gy[r, o]`.
///
/// - `x1`: first input `[rows, in1]`; `x2`: second input `[rows, in2]`.
/// - `gy`: gradient with respect to the output `[rows, out]`.
/// - `gw`: weight gradient `[out, in1, in2]` (accumulated).
/// - `gb`: bias gradient `[out]` (accumulated), or empty for no bias.
#[allow(clippy::too_many_arguments)]
pub fn bilinear_backward_weight(
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) {
    debug_assert!(x1.len() == rows * in1 && x2.len() == rows * in2 && gy.len() == rows * out);
    debug_assert!(gw.len() == out * in1 * in2 && (gb.is_empty() || gb.len() == out));
    for r in 0..rows {
        let (a, c) = (&x1[r * in1..(r + 1) * in1], &x2[r * in2..(r + 1) * in2]);
        for o in 0..out {
            let g = gy[r * out + o];
            if !gb.is_empty() {
                gb[o] += g;
            }
            for (i, &ai) in a.iter().enumerate() {
                let ga = g * ai;
                let grow = &mut gw[(o * in1 + i) * in2..(o * in1 + i + 1) * in2];
                for (gw, &cj) in grow.iter_mut().zip(c) {
                    *gw += ga * cj;
                }
            }
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.Bilinear` over the two branch outputs `sa` (the node's `in_shape`) and `sb`
/// (`in_shape2`); `same` when both branches are the same tensor, so backward needs scratch for
/// the second gradient.
pub(crate) const fn plan(b: &Bilinear, at: At, node: &mut Node, same: bool) -> Result<()> {
    let (sa, sb): (Shape, Shape) = (node.in_shape, node.in_shape2);
    if sa.last() != b.in1_features {
        return Err(at.err(
            "in1_features differs from the last dim of the first branch",
            b.in1_features,
            sa.last(),
        ));
    }
    if sb.last() != b.in2_features {
        return Err(at.err(
            "in2_features differs from the last dim of the second branch",
            b.in2_features,
            sb.last(),
        ));
    }
    let rows = sa.numel() / b.in1_features;
    if sb.numel() / b.in2_features != rows {
        return Err(at.err(
            "both branches must have the same number of rows",
            rows,
            sb.numel() / b.in2_features,
        ));
    }
    if b.out_features == 0 {
        return Err(at.err("out_features must be positive", 1, 0));
    }
    node.exec = Exec::Bilinear(BilinearGeom {
        rows,
        in1: b.in1_features,
        in2: b.in2_features,
        out: b.out_features,
        bias: b.bias,
    });
    node.weight_len =
        crate::plan::product_len(crate::plan::product_len(b.out_features, b.in1_features), b.in2_features);
    node.bias_len = if b.bias { b.out_features } else { 0 };
    node.out_shape = sa.with_last(b.out_features);
    if same {
        node.work_bwd.len = crate::plan::batch_len(at.batch, sb.numel());
    }
    Ok(())
}

/// The network's forward pass of a bilinear node.
pub(crate) fn forward(g: BilinearGeom, io: &mut Fwd<'_>) {
    bilinear_forward(io.n * g.rows, g.in1, g.in2, g.out, io.x, io.x2, io.w, io.bias, io.y);
}

/// The network's backward pass of a bilinear node: both input gradients in one call (so the
/// network gives a destination even for the network input), then the weight gradient.
pub(crate) fn backward(g: BilinearGeom, io: &mut Bwd<'_>) {
    let rows = io.n * g.rows;
    bilinear_backward_input(rows, g.in1, g.in2, g.out, io.x, io.x2, io.w, io.gy, io.gx, io.gx2);
    bilinear_backward_weight(rows, g.in1, g.in2, g.out, io.x, io.x2, io.gy, io.gw, io.gbias);
    if io.same {
        acc(io.gx, io.gx2);
    }
}
