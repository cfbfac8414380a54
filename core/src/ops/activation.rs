//! Elementwise activations: `nn.ReLU`, `nn.LeakyReLU`, `nn.Sigmoid` and `nn.Tanh` here; the
//! smooth ones (ELU, GELU, SiLU, Softplus, Mish) in [`smooth`], the piecewise-linear ones
//! (ReLU6, Hardsigmoid, Hardswish) in [`hard`], the learned PReLU in [`prelu`], all re-exported
//! here.
//!
//! Every function works on a tensor of any shape, seen as a flat slice: `x`, `y`, `gy` and `gx`
//! all have the same length. Backward passes read whichever of the input or the output PyTorch's
//! autograd saves, so a caller only has to keep that one tensor alive:
//!
//! | op | backward reads | `d y / d x` |
//! |---|---|---|
//! | ReLU | output `y` | `1` where `y > 0`, else `0` |
//! | LeakyReLU | input `x` | `1` where `x > 0`, else `negative_slope` |
//! | Sigmoid | output `y` | `y (1 - y)` |
//! | Tanh | output `y` | `1 - y^2` |
//!
//! At `x == 0` the ReLU and LeakyReLU derivatives are taken as the left one (`0` and
//! `negative_slope`), as PyTorch does. NaN inputs propagate to the output.

use super::io::Bwd;
use crate::error::Result;
use crate::math;
use crate::plan::{Exec, Node};

pub mod hard;
pub mod prelu;
pub mod smooth;

pub use hard::*;
pub use prelu::*;
pub use smooth::*;

/// `nn.ReLU`: `y = max(0, x)` ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.ReLU.html)).
///
/// - `x`: input, any shape `[*]`.
/// - `y`: output, same shape (overwritten).
pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        // `x < 0` is false for NaN, so NaN passes through as in PyTorch.
        *y = if x < 0.0 { 0.0 } else { x };
    }
}

/// Backward of [`relu_forward`], from its output: `gx += gy` where `y > 0`.
///
/// - `y`: the forward output `[*]` (ReLU's backward needs only the output).
/// - `gy`: gradient of the loss with respect to `y`, `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn relu_backward_input(y: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(y.len() == gy.len() && gy.len() == gx.len());
    for ((gx, &gy), &y) in gx.iter_mut().zip(gy).zip(y) {
        if y > 0.0 {
            *gx += gy;
        }
    }
}

/// `nn.LeakyReLU(negative_slope)`: `y = x` where `x > 0`, else `negative_slope * x`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.LeakyReLU.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn leaky_relu_forward(negative_slope: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = if x > 0.0 { x } else { x * negative_slope };
    }
}

/// Backward of [`leaky_relu_forward`], from its input: `gx += gy * (x > 0 ? 1 : negative_slope)`.
///
/// Reads the input because the output's sign does not determine the branch when
/// `negative_slope` is negative or zero.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn leaky_relu_backward_input(negative_slope: f32, x: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(x.len() == gy.len() && gy.len() == gx.len());
    for ((gx, &gy), &x) in gx.iter_mut().zip(gy).zip(x) {
        *gx += if x > 0.0 { gy } else { gy * negative_slope };
    }
}

/// `nn.Sigmoid`: `y = 1 / (1 + e^(-x))`, computed without overflow for large `|x|`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn sigmoid_forward(x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = math::sigmoid(x);
    }
}

/// Backward of [`sigmoid_forward`], from its output: `gx += gy * y * (1 - y)`.
///
/// - `y`: the forward output `[*]`.
/// - `gy`: gradient with respect to `y`, `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn sigmoid_backward_input(y: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(y.len() == gy.len() && gy.len() == gx.len());
    for ((gx, &gy), &y) in gx.iter_mut().zip(gy).zip(y) {
        *gx += gy * y * (1.0 - y);
    }
}

/// `nn.Tanh`: `y = tanh(x)`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn tanh_forward(x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = math::tanh(x);
    }
}

/// Backward of [`tanh_forward`], from its output: `gx += gy * (1 - y^2)`.
///
/// - `y`: the forward output `[*]`.
/// - `gy`: gradient with respect to `y`, `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn tanh_backward_input(y: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(y.len() == gy.len() && gy.len() == gx.len());
    for ((gx, &gy), &y) in gx.iter_mut().zip(gy).zip(y) {
        *gx += gy * (1.0 - y * y);
    }
}

// ---- the layers: planning and the network's backward (forward calls the kernels directly) ----

/// Plans an elementwise activation: the output has the input's shape.
pub(crate) const fn plan(exec: Exec, node: &mut Node) -> Result<()> {
    node.exec = exec;
    Ok(())
}

/// Backward of a ReLU node (reads its output).
pub(crate) fn backward_relu(io: &mut Bwd<'_>) {
    if io.has_gx() {
        relu_backward_input(io.y, io.gy, io.gx);
    }
}

/// Backward of a LeakyReLU node (reads its input).
pub(crate) fn backward_leaky_relu(negative_slope: f32, io: &mut Bwd<'_>) {
    if io.has_gx() {
        leaky_relu_backward_input(negative_slope, io.x, io.gy, io.gx);
    }
}

/// Backward of a Sigmoid node (reads its output).
pub(crate) fn backward_sigmoid(io: &mut Bwd<'_>) {
    if io.has_gx() {
        sigmoid_backward_input(io.y, io.gy, io.gx);
    }
}

/// Backward of a Tanh node (reads its output).
pub(crate) fn backward_tanh(io: &mut Bwd<'_>) {
    if io.has_gx() {
        tanh_backward_input(io.y, io.gy, io.gx);
    }
}

/// Backward of an elementwise node that reads its input (ELU, GELU, SiLU, Softplus, Mish,
/// ReLU6, Hardsigmoid, Hardswish): `kernel(x, gy, gx)` when an input gradient is wanted.
pub(crate) fn backward_from_input(io: &mut Bwd<'_>, kernel: impl FnOnce(&[f32], &[f32], &mut [f32])) {
    if io.has_gx() {
        kernel(io.x, io.gy, io.gx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_and_leaky_relu_take_the_left_derivative_at_zero() {
        let x = [-2.0, 0.0, 3.0, f32::NAN];
        let mut y = [9.0; 4];
        relu_forward(&x, &mut y);
        assert_eq!(y[..3], [0.0, 0.0, 3.0]);
        assert!(y[3].is_nan());
        let mut gx = [1.0; 4];
        relu_backward_input(&y, &[10.0; 4], &mut gx);
        assert_eq!(gx, [1.0, 1.0, 11.0, 1.0]);

        leaky_relu_forward(0.1, &x[..3], &mut y[..3]);
        assert_eq!(y[..3], [-0.2, 0.0, 3.0]);
        let mut gx = [0.0; 3];
        leaky_relu_backward_input(0.1, &x[..3], &[10.0; 3], &mut gx);
        assert_eq!(gx, [1.0, 1.0, 10.0]);
    }

    #[test]
    fn sigmoid_and_tanh_saturate_without_nan() {
        let x = [-200.0, 0.0, 200.0];
        let mut y = [0.0; 3];
        sigmoid_forward(&x, &mut y);
        assert_eq!(y, [0.0, 0.5, 1.0]);
        tanh_forward(&x, &mut y);
        assert_eq!(y, [-1.0, 0.0, 1.0]);
    }
}
