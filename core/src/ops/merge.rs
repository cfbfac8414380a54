//! Merging two branches: the residual sum (ResNet) and the channel concatenation
//! (Inception, DenseNet, U-Net skips).
//!
//! `nn.Bilinear`, the third way [`crate::layer::Merge`] combines branches, has its own file,
//! [`super::bilinear`], since it has parameters.

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
