//! `nn.Bilinear`: a learned bilinear form of two inputs, `y = x1^T A x2 + b`.
//!
//! `y[r, o] = sum_ij x1[r, i] * w[o, i, j] * x2[r, j] + b[o]`
//! ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Bilinear.html)).
//!
//! Rows `r` are every leading index of the inputs (the batch, and any dims before the last);
//! both inputs have the same rows. The weight is `[out, in1, in2]` as PyTorch's, the bias `[out]`
//! (empty slice when there is none). The cost is `rows * out * in1 * in2` multiply-adds for the
//! forward pass and each of the two backward passes.

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
