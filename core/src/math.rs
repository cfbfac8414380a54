//! Scalar transcendental functions, exact (libm) by default or fast and approximate (micromath).
//!
//! Every kernel calls these instead of `f32` methods, which are not available in `no_std`.
//! With the `micromath` feature, `exp`, `ln`, `tanh`, `pow` (and `sigmoid`, `softplus` built on
//! them) use micromath's approximations, which are much cheaper on MCUs without hardware
//! transcendental functions (Cortex-M0+, M4F). `sqrt` stays exact (libm) in both modes.
//! Their worst error against libm, measured by `micromath_error_bounds`
//! (`cargo test -p torchlet --lib --features micromath`):
//!
//! | function | range | worst error (micromath) | bound tested |
//! |---|---|---|---|
//! | `exp` | [-20, 20] | 2.4e-3 relative | 3e-3 |
//! | `ln` | [1e-6, 1e6] | 2.3e-2 absolute | 3e-2 |
//! | `tanh` | [-10, 10] | 1.1e-3 absolute | 2e-3 |
//! | `sigmoid` | [-20, 20] | 5.3e-4 absolute | 1e-3 |
//!
//! Gradients of softmax-based losses use `exp` only, so training converges as with libm;
//! reported loss values carry `ln`'s error. Comparisons with PyTorch are made without the
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
    /// `ln(1 + x)`, accurate for small `|x|`.
    #[inline(always)]
    pub fn log1p(x: f32) -> f32 {
        libm::log1pf(x)
    }
    /// `e^x - 1`, accurate for small `|x|`.
    #[inline(always)]
    pub fn expm1(x: f32) -> f32 {
        libm::expm1f(x)
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
            F32Ext::exp(x)
        }
    }
    /// Natural logarithm.
    #[inline(always)]
    pub fn ln(x: f32) -> f32 {
        F32Ext::ln(x)
    }
    /// Square root.
    #[inline(always)]
    pub fn sqrt(x: f32) -> f32 {
        // micromath's sqrt is off by up to 6 %, too much for BatchNorm and Adam; libm's is
        // exact and a single `vsqrt.f32` on FPU targets.
        libm::sqrtf(x)
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
        F32Ext::powf(x, y)
    }
    /// `ln(1 + x)` (micromath's `ln`, so small `|x|` lose precision).
    #[inline(always)]
    pub fn log1p(x: f32) -> f32 {
        ln(1.0 + x)
    }
    /// `e^x - 1` (micromath's `exp`, so small `|x|` lose precision).
    #[inline(always)]
    pub fn expm1(x: f32) -> f32 {
        exp(x) - 1.0
    }
}

pub use imp::{exp, expm1, ln, log1p, pow, sqrt, tanh};

/// The complementary error function `1 - erf(x)`, always libm (GELU's exact form; accurate in
/// both tails, where `1 + erf(x)` would cancel).
#[inline(always)]
pub fn erfc(x: f32) -> f32 {
    libm::erfcf(x)
}

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

/// The error bounds documented above, measured against libm over the ranges the kernels use.
#[cfg(all(test, feature = "micromath"))]
mod micromath_error {
    fn sweep(lo: f32, hi: f32, f: impl Fn(f32) -> f32, exact: impl Fn(f32) -> f32, relative: bool) -> f32 {
        let steps = 100_000;
        let mut worst = 0.0f32;
        for i in 0..=steps {
            let x = lo + (hi - lo) * i as f32 / steps as f32;
            let (a, e) = (f(x), exact(x));
            let err = if relative { ((a - e) / e).abs() } else { (a - e).abs() };
            worst = worst.max(err);
        }
        worst
    }

    #[test]
    fn micromath_error_bounds() {
        let exp = sweep(-20.0, 20.0, super::exp, libm::expf, true);
        let ln = sweep(1e-6, 1e6, super::ln, libm::logf, false);
        let sqrt = sweep(1e-6, 1e6, super::sqrt, libm::sqrtf, true);
        let tanh = sweep(-10.0, 10.0, super::tanh, libm::tanhf, false);
        let sig = sweep(-20.0, 20.0, super::sigmoid, |x| 1.0 / (1.0 + libm::expf(-x)), false);
        extern crate std;
        std::println!("micromath worst errors: exp rel {exp:e}, ln abs {ln:e}, sqrt rel {sqrt:e}, tanh abs {tanh:e}, sigmoid abs {sig:e}");
        assert!(exp < EXP_REL, "exp relative error {exp}");
        assert!(ln < LN_ABS, "ln absolute error {ln}");
        assert!(sqrt < SQRT_REL, "sqrt relative error {sqrt}");
        assert!(tanh < TANH_ABS, "tanh absolute error {tanh}");
        assert!(sig < SIGMOID_ABS, "sigmoid absolute error {sig}");
    }
    const EXP_REL: f32 = 3e-3;
    const LN_ABS: f32 = 3e-2;
    const SQRT_REL: f32 = 1e-6;
    const TANH_ABS: f32 = 2e-3;
    const SIGMOID_ABS: f32 = 1e-3;
}
