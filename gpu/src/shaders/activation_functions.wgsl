// The parameterised elementwise activations, as torchlet::ops::activation::{smooth, hard}:
// `act(kind, a, b, x)` is the forward of one value, `act_grad(kind, a, b, x)` its derivative
// (PyTorch's subgradients at the kinks). `a` and `b` are ELU's alpha, Softplus's beta and
// threshold; the other kinds ignore them. Put in front of activation_forward.wgsl and
// activation_backward_input.wgsl.

const ELU: u32 = 0u;
const GELU: u32 = 1u;
const GELU_TANH: u32 = 2u;
const SILU: u32 = 3u;
const HARDSWISH: u32 = 4u;
const HARDSIGMOID: u32 = 5u;
const SOFTPLUS: u32 = 6u;
const MISH: u32 = 7u;
const RELU6: u32 = 8u;

const SQRT_2_OVER_PI: f32 = 0.7978846;
const INV_SQRT_2PI: f32 = 0.3989423;
const KAPPA: f32 = 0.044715;

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// e^x - 1 without cancellation near 0 (Taylor series below |x| = 0.1).
fn expm1(x: f32) -> f32 {
    if abs(x) < 0.1 {
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0)))));
    }
    return exp(x) - 1.0;
}

// ln(1 + u) without cancellation for small u (Goldberg's correction).
fn log1p(u: f32) -> f32 {
    let v = 1.0 + u;
    if v == 1.0 {
        return u;
    }
    return log(v) * u / (v - 1.0);
}

// tanh that saturates instead of overflowing inside exp.
fn tanh_sat(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

// erfc(x) with relative error below 1.2e-7 everywhere (Numerical Recipes' erfcc), so the
// normal CDF stays accurate in both tails.
fn erfc(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
    return select(2.0 - r, r, x >= 0.0);
}

fn normal_cdf(x: f32) -> f32 {
    return 0.5 * erfc(-x * 0.70710678);
}

// tanh(ln(1 + e^x)), Mish's factor.
fn tanh_softplus(x: f32) -> f32 {
    var sp: f32;
    if x > 0.0 {
        sp = x + log1p(exp(-x));
    } else {
        sp = log1p(exp(x));
    }
    return tanh_sat(sp);
}

fn act(kind: u32, a: f32, b: f32, x: f32) -> f32 {
    switch kind {
        case 0u: { return select(a * expm1(x), x, x > 0.0); }
        case 1u: { return x * normal_cdf(x); }
        case 2u: { return 0.5 * x * (1.0 + tanh_sat(SQRT_2_OVER_PI * (x + KAPPA * x * x * x))); }
        case 3u: { return x * sigmoid(x); }
        case 4u: { return x * clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case 5u: { return clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case 6u: { return select(log1p(exp(x * a)) / a, x, x * a > b); }
        case 7u: { return x * tanh_softplus(x); }
        default: { return clamp(x, 0.0, 6.0); }
    }
}

fn act_grad(kind: u32, a: f32, b: f32, x: f32) -> f32 {
    switch kind {
        case 0u: { return select(a * exp(x), 1.0, x > 0.0); }
        case 1u: { return normal_cdf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x); }
        case 2u: {
            let t = tanh_sat(SQRT_2_OVER_PI * (x + KAPPA * x * x * x));
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * KAPPA * x * x);
        }
        case 3u: {
            let s = sigmoid(x);
            return s * (1.0 + x * (1.0 - s));
        }
        case 4u: {
            if x <= -3.0 {
                return 0.0;
            }
            return select(1.0, x / 3.0 + 0.5, x < 3.0);
        }
        case 5u: { return select(0.0, 1.0 / 6.0, x > -3.0 && x < 3.0); }
        case 6u: {
            let z = exp(x * a);
            return select(z / (z + 1.0), 1.0, x * a > b);
        }
        case 7u: {
            let t = tanh_softplus(x);
            return t + x * sigmoid(x) * (1.0 - t * t);
        }
        default: { return select(0.0, 1.0, x > 0.0 && x < 6.0); }
    }
}
