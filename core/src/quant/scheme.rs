//! The int8 scheme: quantisation parameters, the fixed-point multiplier and the integer
//! requantisation every int8 kernel ends with, bit for bit as TFLite's reference kernels and
//! CMSIS-NN (`MultiplyByQuantizedMultiplier`, `arm_nn_requantize`).
//!
//! A real value `r` is stored as `q = clamp(round(r / scale) + zero_point, -128, 127)`
//! (activations, per tensor) and read back as `r = scale * (q - zero_point)`. A kernel sums
//! integer products into an `i32` accumulator whose real value is `acc * in_scale * w_scale`;
//! the output is `clamp(requantize(acc, M, shift) + out_zero_point, act.min, act.max)`, where
//! `M · 2^shift / 2^31 ≈ in_scale * w_scale / out_scale` ([`quantize_multiplier`]).

use crate::error::{Error, Result};

/// Smallest int8 value.
pub const Q_MIN: i32 = -128;
/// Largest int8 value.
pub const Q_MAX: i32 = 127;

/// Quantisation of an activation tensor (asymmetric int8, one scale and zero point per tensor):
/// `r = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuantParams {
    /// The real value of one step; finite and positive.
    pub scale: f32,
    /// The int8 value that stands for real 0, in `[-128, 127]`.
    pub zero_point: i32,
}

impl QuantParams {
    /// Checked constructor: `scale` finite and positive, `zero_point` in `[-128, 127]`.
    pub fn new(scale: f32, zero_point: i32) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidArgument {
                name: "scale",
                expected: "must be finite and positive",
            });
        }
        check_zero_point("zero_point", zero_point)?;
        Ok(QuantParams { scale, zero_point })
    }

    /// Parameters covering the real range `[min, max]` as TFLite's `ChooseQuantizationParams`:
    /// the range is widened to contain 0, `scale = (max - min) / 255`, and the zero point is
    /// *nudged* to the integer nearest `-128 - min / scale` (or `127 - max / scale`, whichever
    /// has the smaller rounding error), clamped to `[-128, 127]`, so that real 0.0 is exactly
    /// representable (zero padding and ReLU stay exact). Computed in `f64`.
    ///
    /// The empty range `[0, 0]` gets `scale = 1, zero_point = 0`. Errors: `min` or `max` not
    /// finite, or `min > max`.
    pub fn from_range(min: f32, max: f32) -> Result<Self> {
        if !(min.is_finite() && max.is_finite()) {
            return Err(Error::NonFinite {
                what: "quantisation range",
            });
        }
        if min > max {
            return Err(Error::InvalidArgument {
                name: "quantisation range",
                expected: "must have min <= max",
            });
        }
        let (rmin, rmax) = ((min as f64).min(0.0), (max as f64).max(0.0));
        if rmin == rmax {
            return Ok(QuantParams {
                scale: 1.0,
                zero_point: 0,
            });
        }
        let (qmin, qmax) = (Q_MIN as f64, Q_MAX as f64);
        let scale = (rmax - rmin) / (qmax - qmin);
        let (from_min, from_max) = (qmin - rmin / scale, qmax - rmax / scale);
        let err_min = libm::fabs(qmin) + libm::fabs(rmin / scale);
        let err_max = libm::fabs(qmax) + libm::fabs(rmax / scale);
        let zp = if err_min < err_max { from_min } else { from_max };
        let zero_point = if zp < qmin {
            Q_MIN
        } else if zp > qmax {
            Q_MAX
        } else {
            libm::round(zp) as i32
        };
        QuantParams::new(scale as f32, zero_point)
    }

    /// `clamp(round(x / scale) + zero_point, -128, 127)`, rounding half away from zero as
    /// TFLite's `TfLiteRound`; NaN gives the zero point, infinities saturate.
    #[inline]
    pub fn quantize(&self, x: f32) -> i8 {
        let q = (libm::roundf(x / self.scale) as i32).saturating_add(self.zero_point);
        q.clamp(Q_MIN, Q_MAX) as i8
    }

    /// `scale * (q - zero_point)`.
    #[inline]
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }
}

/// Checks that a zero point is an int8 value.
pub(crate) fn check_zero_point(name: &'static str, zp: i32) -> Result<()> {
    if (Q_MIN..=Q_MAX).contains(&zp) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            expected: "must be in [-128, 127] (an int8 zero point)",
        })
    }
}

/// An activation fused into a kernel's output stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FusedActivation {
    /// No activation: the whole int8 range.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

/// The int8 interval a kernel clamps its outputs to: `[min, max]`, `min <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActRange {
    /// Smallest output.
    pub min: i8,
    /// Largest output.
    pub max: i8,
}

impl ActRange {
    /// The whole int8 range (no activation).
    pub const FULL: ActRange = ActRange {
        min: i8::MIN,
        max: i8::MAX,
    };

    /// The range of `act` in the output's quantisation, as TFLite's
    /// `CalculateActivationRangeQuantized`: ReLU raises the minimum to `quantize(0.0)`, ReLU6
    /// also lowers the maximum to `quantize(6.0)`.
    pub fn fused(act: FusedActivation, out: QuantParams) -> ActRange {
        match act {
            FusedActivation::None => ActRange::FULL,
            FusedActivation::Relu => ActRange {
                min: out.quantize(0.0),
                max: i8::MAX,
            },
            FusedActivation::Relu6 => ActRange {
                min: out.quantize(0.0),
                max: out.quantize(6.0),
            },
        }
    }

    /// Errors unless `min <= max`.
    pub(crate) fn check(&self) -> Result<()> {
        if self.min <= self.max {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                name: "activation range",
                expected: "must have min <= max",
            })
        }
    }

    /// Clamps an `i32` to the range.
    #[inline(always)]
    pub fn clamp(&self, v: i32) -> i8 {
        v.clamp(self.min as i32, self.max as i32) as i8
    }
}

/// The fixed-point form of a positive real multiplier, as TFLite's `QuantizeMultiplier`:
/// `real ≈ multiplier · 2^shift / 2^31` with `multiplier` in `[2^30, 2^31)` (a Q31 number in
/// `[0.5, 1)`) and `shift` in `[-31, 30]` (positive: a left shift).
///
/// `real = q · 2^shift` with `q` in `[0.5, 1)` (`frexp`); `multiplier = round(q · 2^31)`, and
/// when that rounds up to `2^31` it is halved and `shift` incremented. A real below `2^-32`
/// (shift under -31) flushes to `(0, 0)`, as TFLite does: every accumulator then maps to 0,
/// which is within half a step of the true product.
///
/// Errors ([`Error::InvalidArgument`]): `real` not finite or not positive, or at least `2^30`
/// (the shift would exceed 30 and the multiplier overflow the fixed-point range).
pub fn quantize_multiplier(real: f64) -> Result<(i32, i32)> {
    if !(real.is_finite() && real > 0.0) {
        return Err(Error::InvalidArgument {
            name: "requantisation scale",
            expected: "must be finite and positive",
        });
    }
    let (q, mut shift) = libm::frexp(real);
    let mut m = libm::round(q * (1u64 << 31) as f64) as i64;
    if m == 1i64 << 31 {
        m /= 2;
        shift += 1;
    }
    if shift < -31 {
        return Ok((0, 0));
    }
    if shift > 30 {
        return Err(Error::InvalidArgument {
            name: "requantisation scale",
            expected: "must be below 2^30 (the Q31 multiplier's range, shift at most 30)",
        });
    }
    Ok((m as i32, shift))
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2 · a · b`, rounded:
/// `(a·b + nudge) / 2^31` in `i64` with division truncating toward zero and
/// `nudge = 2^30` when `a·b >= 0`, `1 - 2^30` otherwise (so the real quotient is rounded half
/// up: 1.5 -> 2, -1.5 -> -1). The one overflow, `a = b = i32::MIN`, saturates to `i32::MAX`.
#[inline(always)]
pub fn doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 { 1i64 << 30 } else { 1 - (1i64 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded half away from zero
/// (`-3 / 2 -> -2`, `3 / 2 -> 2`), for `exponent` in `[0, 31]` (larger values act as 31).
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let e = exponent.min(31);
    let mask = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier` and CMSIS-NN's `arm_nn_requantize` (default, double
/// rounding): `acc · multiplier · 2^shift / 2^31`, as
/// `rounding_divide_by_pot(doubling_high_mul(acc · 2^max(shift, 0), multiplier), max(-shift, 0))`.
///
/// The left shift wraps on overflow as the C code does on two's-complement hardware (it only
/// overflows for `|acc| ≥ 2^(31 - shift)`, beyond what the kernels here produce for the scales
/// [`quantize_multiplier`] accepts in practice). `shift` is clamped to `[-31, 30]`.
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let shift = shift.clamp(-31, 30);
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    rounding_divide_by_pot(doubling_high_mul(acc.wrapping_shl(left), multiplier), right)
}

/// How an `i32` accumulator becomes an int8 output, per output channel:
/// `y = act.clamp(requantize(acc, multiplier[c], shift[c]) + output_zp)`.
///
/// `multiplier` and `shift` hold one entry per output channel (per-channel weights), or one
/// entry for all channels (per-tensor weights), as from [`quantize_multiplier`] of
/// `input_scale * weight_scale[c] / output_scale` ([`super::output_multipliers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputStage<'a> {
    /// Q31 multipliers: `[C_out]` or `[1]`.
    pub multiplier: &'a [i32],
    /// Shifts in `[-31, 30]`, positive to the left: same length as `multiplier`.
    pub shift: &'a [i32],
    /// The output's zero point, in `[-128, 127]`.
    pub output_zp: i32,
    /// The fused activation's clamp.
    pub act: ActRange,
}

impl OutputStage<'_> {
    /// Checks the stage for `channels` output channels.
    pub(crate) fn check(&self, channels: usize) -> Result<()> {
        let n = self.multiplier.len();
        if n != 1 && n != channels {
            return Err(Error::Shape {
                layer: 0,
                op: "int8 output stage",
                what: "multipliers must number the output channels (or 1 for per-tensor weights)",
                expected: channels,
                found: n,
            });
        }
        if self.shift.len() != n {
            return Err(Error::Shape {
                layer: 0,
                op: "int8 output stage",
                what: "shifts must number the multipliers",
                expected: n,
                found: self.shift.len(),
            });
        }
        if self.shift.iter().any(|s| !(-31..=30).contains(s)) {
            return Err(Error::InvalidArgument {
                name: "shift",
                expected: "must be in [-31, 30]",
            });
        }
        check_zero_point("output zero point", self.output_zp)?;
        self.act.check()
    }

    /// `(multiplier, shift)` of output channel `c`.
    #[inline(always)]
    pub(crate) fn channel(&self, c: usize) -> (i32, i32) {
        let i = if self.multiplier.len() == 1 { 0 } else { c };
        (self.multiplier[i], self.shift[i])
    }

    /// The output of an accumulator of a channel with `(multiplier, shift) = ms`.
    #[inline(always)]
    pub(crate) fn apply(&self, ms: (i32, i32), acc: i32) -> i8 {
        self.act
            .clamp(requantize(acc, ms.0, ms.1).saturating_add(self.output_zp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_high_mul_known_answers() {
        // 0.5 (2^30 in Q31) times 3: 1.5 rounds half up to 2; -1.5 to -1.
        assert_eq!(doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(doubling_high_mul(i32::MAX, i32::MAX), i32::MAX - 1);
        assert_eq!(doubling_high_mul(i32::MIN, i32::MAX), -i32::MAX);
        assert_eq!(doubling_high_mul(100, i32::MAX), 100);
    }

    #[test]
    fn rounding_divide_known_answers() {
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(5, 2), 1); // 1.25
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    }

    #[test]
    fn requantize_known_answers() {
        // 0.5 with shift 0.
        assert_eq!(requantize(3, 1 << 30, 0), 2);
        assert_eq!(requantize(-3, 1 << 30, 0), -1);
        // 0.25 = 2^30 / 2^31 * 2^-1: 6 * 0.25 = 1.5 -> 2, -6 -> -2 (the divide rounds away).
        assert_eq!(requantize(6, 1 << 30, -1), 2);
        assert_eq!(requantize(-6, 1 << 30, -1), -2);
        // 1.5 = 0.75 * 2: left shift first. 3 * 1.5 = 4.5 -> 5.
        assert_eq!(requantize(3, 3 << 29, 1), 5);
        assert_eq!(requantize(-3, 3 << 29, 1), -4);
        assert_eq!(requantize(0, 1 << 30, -31), 0);
    }

    #[test]
    fn quantize_multiplier_known_answers() {
        assert_eq!(quantize_multiplier(0.5).unwrap(), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0).unwrap(), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.25).unwrap(), (1 << 30, -1));
        assert_eq!(quantize_multiplier(0.75).unwrap(), (3 << 29, 0));
        // Rounds up to 2^31: halved, shift incremented.
        assert_eq!(quantize_multiplier(1.0 - 1e-12).unwrap(), (1 << 30, 1));
        assert_eq!(quantize_multiplier(1e-12).unwrap(), (0, 0));
        assert!(quantize_multiplier(0.0).is_err());
        assert!(quantize_multiplier(-1.0).is_err());
        assert!(quantize_multiplier(f64::NAN).is_err());
        assert!(quantize_multiplier(f64::INFINITY).is_err());
        assert!(quantize_multiplier((1u64 << 30) as f64).is_err());
        assert!(quantize_multiplier((1u64 << 30) as f64 * 0.99).is_ok());
        // Round trip: requantising 2^20 by 0.3 gives 0.3 * 2^20 to the nearest integer.
        let (m, s) = quantize_multiplier(0.3).unwrap();
        assert_eq!(requantize(1 << 20, m, s), 314_573);
    }

    #[test]
    fn params_quantize_and_nudge() {
        let p = QuantParams::new(0.5, -10).unwrap();
        assert_eq!(p.quantize(0.0), -10);
        assert_eq!(p.quantize(0.25), -9); // 0.5 rounds away from zero
        assert_eq!(p.quantize(-0.25), -11);
        assert_eq!(p.quantize(1000.0), 127);
        assert_eq!(p.quantize(f32::NEG_INFINITY), -128);
        assert_eq!(p.quantize(f32::NAN), -10);
        assert_eq!(p.dequantize(-9), 0.5);
        // [-1, 1]: scale 2/255, zero point nudged from about -0.5 to an integer.
        let p = QuantParams::from_range(-1.0, 1.0).unwrap();
        assert_eq!(p.scale, (2.0f64 / 255.0) as f32);
        assert!(p.zero_point == 0 || p.zero_point == -1);
        assert_eq!(p.dequantize(p.quantize(0.0)), 0.0);
        // Non-positive range: zero point 127.
        assert_eq!(QuantParams::from_range(-1.0, 0.0).unwrap().zero_point, 127);
        // Non-negative range: zero point -128, 0.0 exact.
        let p = QuantParams::from_range(0.0, 6.0).unwrap();
        assert_eq!(p.zero_point, -128);
        assert_eq!(p.dequantize(p.quantize(0.0)), 0.0);
        // Positive-only range widened to include 0.
        assert_eq!(QuantParams::from_range(2.0, 6.0).unwrap(), p);
        assert_eq!(
            QuantParams::from_range(0.0, 0.0).unwrap(),
            QuantParams {
                scale: 1.0,
                zero_point: 0
            }
        );
        assert!(QuantParams::from_range(1.0, 0.0).is_err());
        assert!(QuantParams::from_range(f32::NAN, 0.0).is_err());
        assert!(QuantParams::new(0.0, 0).is_err());
        assert!(QuantParams::new(1.0, 128).is_err());
    }

    #[test]
    fn fused_activation_ranges() {
        let p = QuantParams::new(0.05, -20).unwrap();
        assert_eq!(ActRange::fused(FusedActivation::None, p), ActRange::FULL);
        assert_eq!(
            ActRange::fused(FusedActivation::Relu, p),
            ActRange { min: -20, max: 127 }
        );
        assert_eq!(
            ActRange::fused(FusedActivation::Relu6, p),
            ActRange { min: -20, max: 100 }
        );
        assert_eq!(ActRange { min: -5, max: 5 }.clamp(-1000), -5);
    }

    #[test]
    fn output_stage_checks() {
        let (m, s) = ([1 << 30, 1 << 30], [0, -1]);
        let st = OutputStage {
            multiplier: &m,
            shift: &s,
            output_zp: 3,
            act: ActRange::FULL,
        };
        assert!(st.check(2).is_ok());
        assert!(st.check(3).is_err());
        assert_eq!(st.apply(st.channel(1), 6), 5); // 6 * 0.25 = 1.5 -> 2, + 3
        let bad = OutputStage { shift: &[0, 31], ..st };
        assert!(bad.check(2).is_err());
        let bad = OutputStage { output_zp: 200, ..st };
        assert!(bad.check(2).is_err());
        let bad = OutputStage {
            act: ActRange { min: 1, max: 0 },
            ..st
        };
        assert!(bad.check(2).is_err());
        let per_tensor = OutputStage {
            multiplier: &m[..1],
            shift: &s[..1],
            ..st
        };
        assert!(per_tensor.check(7).is_ok());
        assert_eq!(per_tensor.channel(5), (1 << 30, 0));
    }
}
