//! Smooth activations: `nn.ELU`, `nn.GELU` (exact and tanh), `nn.SiLU`, `nn.Softplus` and
//! `nn.Mish`.
//!
//! Every backward reads the forward **input** `x`, as PyTorch's autograd saves it for these
//! modules; `x`, `y`, `gy` and `gx` are flat slices `[*]` of one length. The scalar functions
//! (private `elu`, `elu_grad`, ...) are the formulas, element by element; the slice kernels map them.
//!
//! | op | `y` | `d y / d x` |
//! |---|---|---|
//! | ELU | `x` if `x > 0`, else `alpha (e^x - 1)` | `1` if `x > 0`, else `alpha e^x` (so `alpha` at 0) |
//! | GELU `'none'` | `x Φ(x)` | `Φ(x) + x φ(x)` |
//! | GELU `'tanh'` | `x/2 (1 + tanh(k (x + 0.044715 x³)))`, `k = √(2/π)` | its derivative |
//! | SiLU | `x σ(x)` | `σ(x) (1 + x (1 - σ(x)))` |
//! | Softplus | `ln(1 + e^(βx)) / β`, or `x` where `βx > threshold` | `σ(βx)`, or `1` there |
//! | Mish | `x tanh(softplus(x))` | `t + x σ(x) (1 - t²)`, `t = tanh(softplus(x))` |
//!
//! Numerics: ELU uses `expm1`; GELU's `Φ(x) = erfc(-x / √2) / 2`, which does not cancel in
//! the left tail as PyTorch's `(1 + erf(x / √2)) / 2` does (PyTorch's CPU GELU(-3) is itself
//! 1.3e-4 relative off the exact value; the two agree within 1e-6 absolute); Softplus and
//! Mish use `log1p`.

use crate::math;

/// `nn.GELU`'s `approximate` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Approximate {
    /// `approximate='none'` (the default): the exact `x Φ(x)`.
    None,
    /// `approximate='tanh'`: the tanh approximation.
    Tanh,
}

/// `nn.Softplus(beta, threshold)`'s arguments.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Softplus {
    /// `beta` (default 1.0): `y = ln(1 + e^(beta x)) / beta`.
    pub beta: f32,
    /// `threshold` (default 20.0): where `beta x > threshold` the layer is the identity.
    pub threshold: f32,
}

impl Softplus {
    /// PyTorch's defaults, `beta=1.0, threshold=20.0`.
    pub const DEFAULT: Softplus = Softplus {
        beta: 1.0,
        threshold: 20.0,
    };
}

/// `√(2/π)`, GELU's tanh constant.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// `1 / √(2π)`, the normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;
/// GELU's tanh cubic coefficient.
const KAPPA: f32 = 0.044_715;

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

/// ELU of one value: `x` if `x > 0`, else `alpha (e^x - 1)`.
fn elu(alpha: f32, x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * math::expm1(x)
    }
}

/// ELU's derivative, from the input: `1` if `x > 0`, else `alpha e^x` (PyTorch's `x <= 0`
/// branch, so `alpha` at 0).
fn elu_grad(alpha: f32, x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else {
        alpha * math::exp(x)
    }
}

/// `nn.ELU(alpha)`: `y = x` where `x > 0`, else `alpha (e^x - 1)`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.ELU.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn elu_forward(alpha: f32, x: &[f32], y: &mut [f32]) {
    map(x, y, |x| elu(alpha, x));
}

/// Backward of [`elu_forward`], from its input: `gx += gy * elu_grad(alpha, x)`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn elu_backward_input(alpha: f32, x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, |x| elu_grad(alpha, x));
}

/// GELU of one value.
fn gelu(approximate: Approximate, x: f32) -> f32 {
    match approximate {
        Approximate::None => 0.5 * x * math::erfc(-x * core::f32::consts::FRAC_1_SQRT_2),
        Approximate::Tanh => 0.5 * x * (1.0 + math::tanh(SQRT_2_OVER_PI * (x + KAPPA * x * x * x))),
    }
}

/// GELU's derivative: `Φ(x) + x φ(x)` (exact), or the derivative of the tanh form.
fn gelu_grad(approximate: Approximate, x: f32) -> f32 {
    match approximate {
        Approximate::None => {
            let cdf = 0.5 * math::erfc(-x * core::f32::consts::FRAC_1_SQRT_2);
            cdf + x * INV_SQRT_2PI * math::exp(-0.5 * x * x)
        }
        Approximate::Tanh => {
            let t = math::tanh(SQRT_2_OVER_PI * (x + KAPPA * x * x * x));
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * KAPPA * x * x)
        }
    }
}

/// `nn.GELU(approximate)`: `y = x Φ(x)`, `Φ` the standard normal CDF, or with
/// `approximate='tanh'` `y = x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.GELU.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn gelu_forward(approximate: Approximate, x: &[f32], y: &mut [f32]) {
    map(x, y, |x| gelu(approximate, x));
}

/// Backward of [`gelu_forward`], from its input: `gx += gy * gelu_grad(approximate, x)`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn gelu_backward_input(approximate: Approximate, x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, |x| gelu_grad(approximate, x));
}

/// SiLU's derivative: `σ(x) (1 + x (1 - σ(x)))`.
fn silu_grad(x: f32) -> f32 {
    let s = math::sigmoid(x);
    s * (1.0 + x * (1.0 - s))
}

/// `nn.SiLU`: `y = x σ(x)`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.SiLU.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn silu_forward(x: &[f32], y: &mut [f32]) {
    map(x, y, |x| x * math::sigmoid(x));
}

/// Backward of [`silu_forward`], from its input: `gx += gy * silu_grad(x)`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn silu_backward_input(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, silu_grad);
}

/// Softplus of one value: `x` where `beta x > threshold`, else `log1p(e^(beta x)) / beta`.
fn softplus(p: Softplus, x: f32) -> f32 {
    let bx = x * p.beta;
    if bx > p.threshold {
        x
    } else {
        math::log1p(math::exp(bx)) / p.beta
    }
}

/// Softplus's derivative: `1` where `beta x > threshold`, else `e^(beta x) / (e^(beta x) + 1)`.
fn softplus_grad(p: Softplus, x: f32) -> f32 {
    let bx = x * p.beta;
    if bx > p.threshold {
        1.0
    } else {
        let z = math::exp(bx);
        z / (z + 1.0)
    }
}

/// `nn.Softplus(beta, threshold)`: `y = ln(1 + e^(beta x)) / beta`, and `y = x` where
/// `beta x > threshold` (the linear region, gradient 1)
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn softplus_forward(p: Softplus, x: &[f32], y: &mut [f32]) {
    map(x, y, |x| softplus(p, x));
}

/// Backward of [`softplus_forward`], from its input: `gx += gy * softplus_grad(p, x)`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn softplus_backward_input(p: Softplus, x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, |x| softplus_grad(p, x));
}

/// `tanh(ln(1 + e^x))`, without overflow for large `x`.
fn tanh_softplus(x: f32) -> f32 {
    let sp = if x > 0.0 {
        x + math::log1p(math::exp(-x))
    } else {
        math::log1p(math::exp(x))
    };
    math::tanh(sp)
}

/// Mish of one value: `x tanh(ln(1 + e^x))`.
fn mish(x: f32) -> f32 {
    x * tanh_softplus(x)
}

/// Mish's derivative: `t + x σ(x) (1 - t²)` with `t = tanh(ln(1 + e^x))`.
fn mish_grad(x: f32) -> f32 {
    let t = tanh_softplus(x);
    t + x * math::sigmoid(x) * (1.0 - t * t)
}

/// `nn.Mish`: `y = x tanh(softplus(x))`
/// ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Mish.html)).
///
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
pub fn mish_forward(x: &[f32], y: &mut [f32]) {
    map(x, y, mish);
}

/// Backward of [`mish_forward`], from its input: `gx += gy * mish_grad(x)`.
///
/// - `x`: the forward input `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to `x`, `[*]` (accumulated).
pub fn mish_backward_input(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    map_grad(x, gy, gx, mish_grad);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_stay_finite() {
        for x in [-1e4f32, -100.0, 0.0, 100.0, 1e4] {
            for v in [
                elu(1.0, x),
                gelu(Approximate::None, x),
                gelu(Approximate::Tanh, x),
                x * math::sigmoid(x),
                softplus(Softplus::DEFAULT, x),
                mish(x),
                mish_grad(x),
                gelu_grad(Approximate::Tanh, x),
                softplus_grad(Softplus::DEFAULT, x),
            ] {
                assert!(v.is_finite(), "{x}: {v}");
            }
        }
        assert_eq!(softplus(Softplus::DEFAULT, 30.0), 30.0);
        assert_eq!(elu_grad(0.5, 0.0), 0.5);
    }
}
