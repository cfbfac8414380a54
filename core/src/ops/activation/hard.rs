//! Piecewise-linear activations: `nn.ReLU6`, `nn.Hardsigmoid` and `nn.Hardswish`.
//!
//! Every backward reads the forward **input** `x`; `x`, `y`, `gy` and `gx` are flat slices
//! `[*]` of one length. At the kinks the derivatives are PyTorch's subgradients:
//!
//! | op | `y` | `d y / d x` | at the kinks |
//! |---|---|---|---|
//! | ReLU6 | `min(max(x, 0), 6)` | `1` on `(0, 6)`, else `0` | `0` at `x = 0` and `x = 6` (Hardtanh's rule) |
//! | Hardsigmoid | `min(max(x + 3, 0), 6) / 6` | `1/6` on `(-3, 3)`, else `0` | `0` at `x = ±3` |
//! | Hardswish | `x min(max(x + 3, 0), 6) / 6` | `0` below -3, `x/3 + 1/2` on `(-3, 3)`, `1` above 3 | `0` at -3, `1` at 3 (PyTorch 2.x) |

fn map(x: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f(x);
    }
}

fn map_grad(x: &[f32], gy: &[f32], gx: &mut [f32], df: impl Fn(f32) -> f32) {
    debug_assert!(x.len() == gy.len() && gy.len() == gx.len());
    for ((gx, &gy), &x) in gx.iter_mut().zip(gy).zip(x) {
        *gx += gy * df(x);
    }
}

/// ReLU6 of one value: `min(max(x, 0), 6)` (NaN passes through).
fn relu6(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}

/// ReLU6's derivative: `1` where `0 < x < 6`, else `0` (also at the kinks 0 and 6).
fn relu6_grad(x: f32) -> f32 {
    if x > 0.0 && x < 6.0 {
        1.0
    } else {
        0.0
    }
}

/// `nn.ReLU6`: `y = min(max(0, x), 6)`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.ReLU6.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn relu6_forward(x: &[f32], y: &mut [f32]) {
    map(x, y, relu6);
}

/// Backward of [`relu6_forward`], from its input: `gx += gy` where `0 < x < 6`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn relu6_backward_input(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, relu6_grad);
}

/// Hardsigmoid of one value: `relu6(x + 3) / 6`.
fn hardsigmoid(x: f32) -> f32 {
    // PyTorch's order of operations: relu6(x + 3) / 6.
    relu6(x + 3.0) / 6.0
}

/// Hardsigmoid's derivative: `1/6` where `-3 < x < 3`, else `0` (also at ±3).
fn hardsigmoid_grad(x: f32) -> f32 {
    if x > -3.0 && x < 3.0 {
        1.0 / 6.0
    } else {
        0.0
    }
}

/// `nn.Hardsigmoid`: `y = relu6(x + 3) / 6`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Hardsigmoid.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn hardsigmoid_forward(x: &[f32], y: &mut [f32]) {
    map(x, y, hardsigmoid);
}

/// Backward of [`hardsigmoid_forward`], from its input: `gx += gy / 6` where `-3 < x < 3`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn hardsigmoid_backward_input(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, hardsigmoid_grad);
}

/// Hardswish of one value: `0` at or below -3, `x` at or above 3, else `x (x + 3) / 6`.
fn hardswish(x: f32) -> f32 {
    if x <= -3.0 {
        0.0
    } else if x >= 3.0 {
        x
    } else {
        x * (x + 3.0) / 6.0
    }
}

/// Hardswish's derivative, PyTorch's: `0` at or below -3, `x / 3 + 1/2` on the open
/// interval `(-3, 3)`, `1` at or above 3 (so the one-sided derivatives from outside at the
/// kinks: `0` at -3, `1` at 3).
fn hardswish_grad(x: f32) -> f32 {
    if x <= -3.0 {
        0.0
    } else if x < 3.0 {
        x / 3.0 + 0.5
    } else {
        1.0
    }
}

/// `nn.Hardswish`: `y = x relu6(x + 3) / 6`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Hardswish.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn hardswish_forward(x: &[f32], y: &mut [f32]) {
    map(x, y, hardswish);
}

/// Backward of [`hardswish_forward`], from its input: `gx += gy * hardswish_grad(x)`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn hardswish_backward_input(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, hardswish_grad);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinks_take_pytorchs_subgradients() {
        assert_eq!([relu6_grad(0.0), relu6_grad(6.0), relu6_grad(3.0)], [0.0, 0.0, 1.0]);
        assert_eq!([hardsigmoid_grad(-3.0), hardsigmoid_grad(3.0)], [0.0, 0.0]);
        assert_eq!([hardswish_grad(-3.0), hardswish_grad(3.0)], [0.0, 1.0]);
        assert_eq!([hardswish(-3.0), hardswish(3.0), hardsigmoid(3.0)], [0.0, 3.0, 1.0]);
    }
}
