//! Scalar transcendental functions, exact (libm) by default or fast and approximate (micromath).
//!
//! Every kernel calls these instead of `f32` methods, which are not available in `no_std`.
//! With the `micromath` feature, `exp`, `ln`, `tanh`, `sqrt` and `pow` use micromath's
//! approximations, which are much cheaper on MCUs without hardware `exp` (Cortex-M0+, M4F).
//! Their error, measured over the ranges the kernels use (`tests/` checks these bounds):
//!
//! | function | relative error (micromath) |
//! |---|---|
//! | `exp` on [-30, 30] | < 1e-2 ... checked as 5e-3 typical (see `micromath_error_bounds`) |
//! | `ln` on [1e-6, 1e6] | < 1e-2 absolute |
//! | `sqrt` on [1e-6, 1e6] | < 1e-3 |
//!
//! Training still converges with these errors; comparisons with PyTorch are made without the
//! feature.

#[cfg(not(feature = "micromath"))]
mod imp {
    /// `e^x`.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        libm::expf(x)
    }
    /// Natural logarithm.
    #[inline(always)]
    pub fn ln(x: f32) -> f32 {
        libm::logf(x)
    }
    /// Square root.
    #[inline(always)]
    pub fn sqrt(x: f32) -> f32 {
        libm::sqrtf(x)
    }
    /// Hyperbolic tangent.
    #[inline(always)]
    pub fn tanh(x: f32) -> f32 {
        libm::tanhf(x)
    }
    /// `x^y`.
    #[inline(always)]
    pub fn pow(x: f32, y: f32) -> f32 {
        libm::powf(x, y)
    }
}

#[cfg(feature = "micromath")]
mod imp {
    use micromath::F32Ext;
    /// `e^x`.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        if x < -87.0 {
            0.0
        } else {
            x.exp()
        }
    }
    /// Natural logarithm.
    #[inline(always)]
    pub fn ln(x: f32) -> f32 {
        x.ln()
    }
    /// Square root.
    #[inline(always)]
    pub fn sqrt(x: f32) -> f32 {
        x.sqrt()
    }
    /// Hyperbolic tangent.
    #[inline(always)]
    pub fn tanh(x: f32) -> f32 {
        // tanh(x) = 1 - 2 / (exp(2x) + 1), saturating outside [-9, 9].
        if x > 9.0 {
            1.0
        } else if x < -9.0 {
            -1.0
        } else {
            1.0 - 2.0 / (exp(2.0 * x) + 1.0)
        }
    }
    /// `x^y`.
    #[inline(always)]
    pub fn pow(x: f32, y: f32) -> f32 {
        x.powf(y)
    }
}

pub use imp::{exp, ln, pow, sqrt, tanh};

/// The logistic function `1 / (1 + e^-x)`, without overflow for large `|x|`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// Cosine, always libm (only schedulers use it, once per epoch).
#[inline(always)]
pub fn cos(x: f32) -> f32 {
    libm::cosf(x)
}

/// `ln(1 + e^x)` without overflow.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    if x > 0.0 {
        x + ln(1.0 + exp(-x))
    } else {
        ln(1.0 + exp(x))
    }
}
