//! Converting whole tensors between `f32` and the int8 scheme: activations per tensor, weights
//! per output channel (symmetric, `[-127, 127]`, as TFLite and PyTorch's
//! `per_channel_symmetric`), biases to `i32`, and the per-channel output multipliers a kernel's
//! [`OutputStage`](super::OutputStage) needs. Used when a trained `f32` model is quantised.

use super::scheme::{quantize_multiplier, QuantParams};
use crate::error::{check_len, Buffer, Error, Result};

/// Largest magnitude of a quantised weight (symmetric: -128 is not used).
pub const W_MAX: i32 = 127;

/// `q[i] = p.quantize(x[i])` (round half away from zero, saturate).
///
/// - `x: [*]`, `q: [*]` of the same length.
pub fn quantize_slice(p: QuantParams, x: &[f32], q: &mut [i8]) -> Result<()> {
    check_len(Buffer::Output, x.len(), q.len())?;
    for (q, &x) in q.iter_mut().zip(x) {
        *q = p.quantize(x);
    }
    Ok(())
}

/// `x[i] = p.dequantize(q[i]) = scale * (q[i] - zero_point)`.
///
/// - `q: [*]`, `x: [*]` of the same length.
pub fn dequantize_slice(p: QuantParams, q: &[i8], x: &mut [f32]) -> Result<()> {
    check_len(Buffer::Output, q.len(), x.len())?;
    for (x, &q) in x.iter_mut().zip(q) {
        *x = p.dequantize(q);
    }
    Ok(())
}

/// Elements per output channel of a weight `[C_out, ...]` with `C_out = channels`.
fn per_channel(w_len: usize, channels: usize) -> Result<usize> {
    if channels == 0 || w_len % channels != 0 {
        return Err(Error::Shape {
            layer: 0,
            op: "int8 weights",
            what: "the weight's length must be a multiple of the output channels",
            expected: channels,
            found: w_len,
        });
    }
    Ok(w_len / channels)
}

/// Per-channel symmetric weight scales: `scales[c] = max_i |w[c, i]| / 127`, or 1 for a channel
/// of zeros (any scale represents it exactly; 1 keeps its bias scale `input_scale` finite).
///
/// - `w: [C_out, ...]` (a conv weight `[C_out, C_in / groups, kD, kH, kW]` or a linear weight
///   `[out_f, in_f]`);
/// - `scales: [C_out]`, overwritten.
///
/// Errors: `w` not finite, or its length not a multiple of `scales.len()`.
pub fn weight_scales(w: &[f32], scales: &mut [f32]) -> Result<()> {
    let per = per_channel(w.len(), scales.len())?;
    if per == 0 {
        scales.fill(1.0);
        return Ok(());
    }
    for (s, row) in scales.iter_mut().zip(w.chunks_exact(per)) {
        let mut max = 0.0f32;
        for &v in row {
            if !v.is_finite() {
                return Err(Error::NonFinite { what: "weight" });
            }
            max = max.max(libm::fabsf(v));
        }
        *s = if max == 0.0 { 1.0 } else { max / W_MAX as f32 };
    }
    Ok(())
}

/// Quantises a weight per output channel: `q[c, i] = clamp(round(w[c, i] / scales[c]), -127, 127)`.
///
/// - `w: [C_out, ...]`, `scales: [C_out]` (finite, positive: from [`weight_scales`]),
///   `q: [C_out, ...]` like `w`, overwritten.
pub fn quantize_weights(w: &[f32], scales: &[f32], q: &mut [i8]) -> Result<()> {
    check_len(Buffer::Params, w.len(), q.len())?;
    let per = per_channel(w.len(), scales.len())?;
    check_scales(scales)?;
    if per == 0 {
        return Ok(());
    }
    for ((qr, wr), &s) in q.chunks_exact_mut(per).zip(w.chunks_exact(per)).zip(scales) {
        for (q, &w) in qr.iter_mut().zip(wr) {
            *q = (libm::roundf(w / s) as i32).clamp(-W_MAX, W_MAX) as i8;
        }
    }
    Ok(())
}

/// Errors unless every scale is finite and positive.
fn check_scales(scales: &[f32]) -> Result<()> {
    if scales.iter().all(|s| s.is_finite() && *s > 0.0) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "weight scale",
            expected: "must be finite and positive",
        })
    }
}

/// Quantises a bias to `i32` in the accumulator's scale, zero point 0:
/// `q[c] = round(b[c] / (input_scale * w_scales[c]))`, saturated to the `i32` range.
///
/// - `b: [C_out]`, `w_scales: [C_out]`, `q: [C_out]`, overwritten.
pub fn quantize_bias(b: &[f32], input_scale: f32, w_scales: &[f32], q: &mut [i32]) -> Result<()> {
    check_len(Buffer::Params, w_scales.len(), b.len())?;
    check_len(Buffer::Params, b.len(), q.len())?;
    check_scales(w_scales)?;
    check_scales(&[input_scale])?;
    for ((q, &b), &ws) in q.iter_mut().zip(b).zip(w_scales) {
        // `as` saturates (and maps NaN to 0).
        *q = libm::round(b as f64 / (input_scale * ws) as f64) as i32;
    }
    Ok(())
}

/// The output stage's fixed-point multipliers of a conv or linear layer, per output channel,
/// as TFLite computes them (in `f64`): `quantize_multiplier(input_scale * w_scales[c] / output_scale)`.
///
/// - `w_scales: [C_out]` (or `[1]` for per-tensor weights); `multiplier`, `shift`: same
///   length, overwritten.
///
/// Errors: the lengths differ, or a multiplier is out of [`quantize_multiplier`]'s range.
pub fn output_multipliers(
    input_scale: f32,
    w_scales: &[f32],
    output_scale: f32,
    multiplier: &mut [i32],
    shift: &mut [i32],
) -> Result<()> {
    check_len(Buffer::Output, w_scales.len(), multiplier.len())?;
    check_len(Buffer::Output, w_scales.len(), shift.len())?;
    for ((m, s), &ws) in multiplier.iter_mut().zip(shift.iter_mut()).zip(w_scales) {
        let real = input_scale as f64 * ws as f64 / output_scale as f64;
        (*m, *s) = quantize_multiplier(real)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_weights() {
        let w = [0.25, -1.0, 0.0, 0.0, 2.0, 0.5];
        let mut s = [0.0; 3];
        weight_scales(&w, &mut s).unwrap();
        assert_eq!(s, [1.0 / 127.0, 1.0, 2.0 / 127.0]);
        let mut q = [0i8; 6];
        quantize_weights(&w, &s, &mut q).unwrap();
        assert_eq!(q, [32, -127, 0, 0, 127, 32]);
        assert!(weight_scales(&w, &mut [0.0; 4]).is_err());
        assert!(weight_scales(&[f32::NAN], &mut [0.0]).is_err());
        assert!(quantize_weights(&w, &[0.0, 1.0, 1.0], &mut q).is_err());
        assert!(quantize_weights(&w, &s, &mut [0; 5]).is_err());
    }

    #[test]
    fn bias_and_multipliers() {
        let mut q = [0i32; 2];
        quantize_bias(&[1.0, -0.25], 0.5, &[0.01, 0.1], &mut q).unwrap();
        assert_eq!(q, [200, -5]);
        let (mut m, mut s) = ([0i32; 2], [0i32; 2]);
        output_multipliers(0.5, &[0.01, 0.1], 0.05, &mut m, &mut s).unwrap();
        assert_eq!((m[1], s[1]), quantize_multiplier(1.0).unwrap());
        assert!(output_multipliers(0.5, &[0.01, 0.1], 0.05, &mut m[..1], &mut s).is_err());
        assert!(output_multipliers(0.5, &[0.0, 0.1], 0.05, &mut m, &mut s).is_err());
    }

    #[test]
    fn slices_round_trip() {
        let p = QuantParams::new(0.1, 5).unwrap();
        let x = [0.0, 0.31, -1.0, 100.0];
        let mut q = [0i8; 4];
        quantize_slice(p, &x, &mut q).unwrap();
        assert_eq!(q, [5, 8, -5, 127]);
        let mut y = [0.0f32; 4];
        dequantize_slice(p, &q, &mut y).unwrap();
        assert!((y[1] - 0.3).abs() < 1e-6);
        assert!(quantize_slice(p, &x, &mut q[..3]).is_err());
    }
}
