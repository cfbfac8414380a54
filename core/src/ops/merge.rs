//! Merging two branches: the residual sum (ResNet) and the channel concatenation
//! (Inception, DenseNet, U-Net skips).
//!
//! `nn.Bilinear`, the third way [`crate::layer::Merge`] combines branches, has its own file,
//! [`super::bilinear`], since it has parameters.

use super::io::{acc, Bwd, Fwd};
use crate::error::Result;
use crate::plan::{At, Exec, Node};

/// Channel concatenation: the per-sample lengths of the two inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConcatGeom {
    /// Floats per sample of the first input (`C_a * S`).
    pub a: usize,
    /// Floats per sample of the second input (`C_b * S`).
    pub b: usize,
}

/// Residual sum: `y = a + b` elementwise.
///
/// - `a`, `b`: the branch outputs, same shape `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn add_forward(a: &[f32], b: &[f32], y: &mut [f32]) {
    debug_assert!(a.len() == y.len() && b.len() == y.len());
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = a + b;
    }
}

/// Backward of [`add_forward`]: `ga += gy`, `gb += gy`.
///
/// - `gy`: gradient with respect to the sum `[*]`.
/// - `ga`, `gb`: gradients with respect to `a` and `b`, `[*]` (accumulated). When a branch is
///   the identity both are the same tensor; the network handles that case (it adds `gy` twice).
pub fn add_backward_input(gy: &[f32], ga: &mut [f32], gb: &mut [f32]) {
    debug_assert!(ga.len() == gy.len() && gb.len() == gy.len());
    for ((ga, gb), &gy) in ga.iter_mut().zip(gb.iter_mut()).zip(gy) {
        *ga += gy;
        *gb += gy;
    }
}

/// Channel concatenation, as `torch.cat([a, b], dim=1)`: for each of the `n` samples,
/// `y[s] = [a[s], b[s]]`.
///
/// For NCHW tensors with equal spatial size `S`, `a_len = C_a * S` and `b_len = C_b * S`.
///
/// - `a`: first input `[n, a_len]`.
/// - `b`: second input `[n, b_len]`.
/// - `y`: output `[n, a_len + b_len]` (overwritten).
pub fn concat_forward(n: usize, a_len: usize, b_len: usize, a: &[f32], b: &[f32], y: &mut [f32]) {
    debug_assert!(a.len() == n * a_len && b.len() == n * b_len && y.len() == n * (a_len + b_len));
    let row = a_len + b_len;
    for s in 0..n {
        let out = &mut y[s * row..(s + 1) * row];
        out[..a_len].copy_from_slice(&a[s * a_len..(s + 1) * a_len]);
        out[a_len..].copy_from_slice(&b[s * b_len..(s + 1) * b_len]);
    }
}

/// Backward of [`concat_forward`]: splits `gy` back, `ga[s] += gy[s][..a_len]`,
/// `gb[s] += gy[s][a_len..]`.
///
/// - `gy`: gradient with respect to the output `[n, a_len + b_len]`.
/// - `ga`: gradient with respect to `a`, `[n, a_len]` (accumulated).
/// - `gb`: gradient with respect to `b`, `[n, b_len]` (accumulated).
pub fn concat_backward_input(n: usize, a_len: usize, b_len: usize, gy: &[f32], ga: &mut [f32], gb: &mut [f32]) {
    debug_assert!(ga.len() == n * a_len && gb.len() == n * b_len && gy.len() == n * (a_len + b_len));
    let row = a_len + b_len;
    for s in 0..n {
        let g = &gy[s * row..(s + 1) * row];
        for (ga, &g) in ga[s * a_len..(s + 1) * a_len].iter_mut().zip(&g[..a_len]) {
            *ga += g;
        }
        for (gb, &g) in gb[s * b_len..(s + 1) * b_len].iter_mut().zip(&g[a_len..]) {
            *gb += g;
        }
    }
}

// ---- the merges: planning and the network's forward and backward ----

/// Plans a residual sum of the branch outputs `in_shape` and `in_shape2`: equal shapes.
pub(crate) const fn plan_add(at: At, node: &mut Node) -> Result<()> {
    let (sa, sb) = (node.in_shape, node.in_shape2);
    if !sa.const_eq(&sb) {
        if sa.rank() != sb.rank() {
            return Err(at.err("both branches must have the same rank", sa.rank(), sb.rank()));
        }
        return Err(at.err(
            "both branches must have the same number of elements per sample",
            sa.numel(),
            sb.numel(),
        ));
    }
    node.exec = Exec::Add;
    node.out_shape = sa;
    Ok(())
}

/// Plans a channel concatenation of the branch outputs: equal rank and spatial size.
pub(crate) const fn plan_concat(at: At, node: &mut Node) -> Result<()> {
    let (sa, sb) = (node.in_shape, node.in_shape2);
    if sa.rank() != sb.rank() {
        return Err(at.err("both branches must have the same rank", sa.rank(), sb.rank()));
    }
    if sa.numel() / sa.channels() != sb.numel() / sb.channels() {
        return Err(at.err(
            "both branches must have the same spatial size",
            sa.numel() / sa.channels(),
            sb.numel() / sb.channels(),
        ));
    }
    node.exec = Exec::Concat(ConcatGeom {
        a: sa.numel(),
        b: sb.numel(),
    });
    node.out_shape = sa.with_channels(sa.channels() + sb.channels());
    Ok(())
}

/// The network's backward pass of a residual sum; both gradients land in `gx` when both
/// branches are the same tensor.
pub(crate) fn backward_add(io: &mut Bwd<'_>) {
    if io.has_gx() {
        acc(io.gx, io.gy);
    }
    if io.same {
        acc(io.gx, io.gy);
    } else if !io.gx2.is_empty() {
        acc(io.gx2, io.gy);
    }
}

/// The network's forward pass of a concatenation.
pub(crate) fn forward_concat(g: ConcatGeom, io: &mut Fwd<'_>) {
    concat_forward(io.n, g.a, g.b, io.x, io.x2, io.y);
}

/// The network's backward pass of a concatenation.
pub(crate) fn backward_concat(g: ConcatGeom, io: &mut Bwd<'_>) {
    let (la, lb) = (g.a, g.b);
    for s in 0..io.n {
        let gy = &io.gy[s * (la + lb)..(s + 1) * (la + lb)];
        if io.has_gx() {
            acc(&mut io.gx[s * la..(s + 1) * la], &gy[..la]);
        }
        if io.same {
            acc(&mut io.gx[s * la..(s + 1) * la], &gy[la..]);
        } else if !io.gx2.is_empty() {
            acc(&mut io.gx2[s * lb..(s + 1) * lb], &gy[la..]);
        }
    }
}
