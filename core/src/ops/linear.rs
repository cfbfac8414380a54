//! `nn.Linear`: a fully connected layer, `y = x W^T + b`, on a matrix multiply
//! ([`Gemm`]: the `_with` functions take one, the plain names use [`Portable`]).
//!
//! `y[r, o] = sum_i x[r, i] * w[o, i] + b[o]`
//! ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Linear.html)).
//!
//! Rows `r` are every leading index of the input (the batch, and any dims before the last).
//! The weight is `[out_f, in_f]` as PyTorch stores it; the transposes of the three passes are
//! strided views, so nothing is copied.

use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::kernels::{Gemm, MatRef, Portable};
use crate::layer::Linear;
use crate::plan::{At, Exec, Node};

/// A linear layer applied to `rows` rows of each sample (the dims before the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinearGeom {
    /// Rows per sample (1 for `[N, in_f]`).
    pub rows: usize,
    /// Input features.
    pub in_f: usize,
    /// Output features.
    pub out_f: usize,
    /// Whether there is a bias `[out_f]` after the weight.
    pub bias: bool,
}

/// Forward: `y = x · w^T + b`.
///
/// - `x`: input `[rows, in_f]`.
/// - `w`: weight `[out_f, in_f]`.
/// - `b`: bias `[out_f]`, or empty for no bias.
/// - `y`: output `[rows, out_f]` (overwritten).
pub fn linear_forward(rows: usize, in_f: usize, out_f: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    linear_forward_with(&Portable, rows, in_f, out_f, x, w, b, y);
}

/// [`linear_forward`] with the matrix multiply `gemm`.
pub fn linear_forward_with(
    gemm: &dyn Gemm,
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) {
    debug_assert!(x.len() == rows * in_f && w.len() == out_f * in_f && y.len() == rows * out_f);
    debug_assert!(b.is_empty() || b.len() == out_f);
    let with_bias = !b.is_empty();
    if with_bias {
        for row in y.chunks_exact_mut(out_f) {
            row.copy_from_slice(b);
        }
    }
    let a = MatRef {
        data: x,
        rs: in_f,
        cs: 1,
    };
    // w^T as a [in_f, out_f] view: element (i, o) is w[o * in_f + i].
    let wt = MatRef {
        data: w,
        rs: 1,
        cs: in_f,
    };
    gemm.gemm(rows, out_f, in_f, a, wt, y, out_f, with_bias);
}

/// Backward with respect to the input: `gx += gy · w`.
///
/// - `w`: weight `[out_f, in_f]`.
/// - `gy`: gradient with respect to the output `[rows, out_f]`.
/// - `gx`: gradient with respect to `x`, `[rows, in_f]` (accumulated).
pub fn linear_backward_input(rows: usize, in_f: usize, out_f: usize, w: &[f32], gy: &[f32], gx: &mut [f32]) {
    linear_backward_input_with(&Portable, rows, in_f, out_f, w, gy, gx);
}

/// [`linear_backward_input`] with the matrix multiply `gemm`.
pub fn linear_backward_input_with(
    gemm: &dyn Gemm,
    rows: usize,
    in_f: usize,
    out_f: usize,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    debug_assert!(gy.len() == rows * out_f && w.len() == out_f * in_f && gx.len() == rows * in_f);
    let a = MatRef {
        data: gy,
        rs: out_f,
        cs: 1,
    };
    let b = MatRef {
        data: w,
        rs: in_f,
        cs: 1,
    };
    gemm.gemm(rows, in_f, out_f, a, b, gx, in_f, true);
}

/// Backward with respect to the parameters: `gw += gy^T · x` and `gb[o] += sum_r gy[r, o]`.
///
/// - `x`: the forward input `[rows, in_f]`.
/// - `gy`: gradient with respect to the output `[rows, out_f]`.
/// - `gw`: weight gradient `[out_f, in_f]` (accumulated).
/// - `gb`: bias gradient `[out_f]` (accumulated), or empty for no bias.
pub fn linear_backward_weight(
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) {
    linear_backward_weight_with(&Portable, rows, in_f, out_f, x, gy, gw, gb);
}

/// [`linear_backward_weight`] with the matrix multiply `gemm`.
pub fn linear_backward_weight_with(
    gemm: &dyn Gemm,
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) {
    debug_assert!(x.len() == rows * in_f && gy.len() == rows * out_f && gw.len() == out_f * in_f);
    debug_assert!(gb.is_empty() || gb.len() == out_f);
    // gy^T as a [out_f, rows] view: element (o, r) is gy[r * out_f + o].
    let gyt = MatRef {
        data: gy,
        rs: 1,
        cs: out_f,
    };
    let b = MatRef {
        data: x,
        rs: in_f,
        cs: 1,
    };
    gemm.gemm(out_f, in_f, rows, gyt, b, gw, in_f, true);
    if !gb.is_empty() {
        for row in gy.chunks_exact(out_f) {
            for (gb, &g) in gb.iter_mut().zip(row) {
                *gb += g;
            }
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.Linear` / `nn.LazyLinear` (`in_features == 0` takes the input's last dim).
pub(crate) const fn plan(l: &Linear, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    let last = s.last();
    let in_f = if l.in_features == 0 { last } else { l.in_features };
    if in_f != last {
        return Err(at.err("in_features differs from the last dim of its input", in_f, last));
    }
    if l.out_features == 0 {
        return Err(at.err("out_features must be positive", 1, 0));
    }
    node.exec = Exec::Linear(LinearGeom {
        rows: s.numel() / last,
        in_f,
        out_f: l.out_features,
        bias: l.bias,
    });
    node.weight_len = crate::plan::product_len(in_f, l.out_features);
    node.bias_len = if l.bias { l.out_features } else { 0 };
    node.out_shape = s.with_last(l.out_features);
    Ok(())
}

/// The network's forward pass of a linear node.
pub(crate) fn forward(g: LinearGeom, io: &mut Fwd<'_>) {
    linear_forward_with(io.gemm, io.n * g.rows, g.in_f, g.out_f, io.x, io.w, io.bias, io.y);
}

/// The network's backward pass of a linear node.
pub(crate) fn backward(g: LinearGeom, io: &mut Bwd<'_>) {
    let rows = io.n * g.rows;
    if io.has_gx() {
        linear_backward_input_with(io.gemm, rows, g.in_f, g.out_f, io.w, io.gy, io.gx);
    }
    linear_backward_weight_with(io.gemm, rows, g.in_f, g.out_f, io.x, io.gy, io.gw, io.gbias);
}
