//! int8 merges of two branches and the reshape: the residual add with rescaling (TFLite's
//! `ADD`, CMSIS-NN's `arm_elementwise_add_s8`), the channel concatenation with each input
//! requantised to the output's parameters, and flatten (an identity on NCHW data).
//!
//! Residual add, TFLite's scheme with `left_shift = 20` (the inputs are brought to a common
//! scale with 20 fraction bits before they are summed):
//!
//! ```text
//! twice_max = 2 · max(a.scale, b.scale)
//! (Ma, sa) = quantize_multiplier(a.scale / twice_max), likewise (Mb, sb)
//! (Mo, so) = quantize_multiplier(twice_max / (2^20 · out.scale))
//! y = clamp(requantize(requantize((a - a.zp) · 2^20, Ma, sa) + requantize((b - b.zp) · 2^20, Mb, sb), Mo, so)
//!           + out.zp, act.min, act.max)
//! ```
//!
//! Concatenation requantises each element `q` of an input with parameters `p` to the output's
//! `o`: `clamp(requantize(q - p.zp, M, s) + o.zp, -128, 127)` with
//! `(M, s) = quantize_multiplier(p.scale / o.scale)` ([`Rescale`]); an input already in the
//! output's parameters is copied unchanged.

use super::scheme::{quantize_multiplier, requantize, ActRange, QuantParams};
use super::{numel, shape_error};
use crate::error::{check_len, Buffer, Error, Result};
use crate::ops::merge::ConcatGeom;

/// TFLite's left shift of the residual add's inputs.
pub const ADD_LEFT_SHIFT: u32 = 20;

/// The fixed-point parameters of a residual add ([`add_s8`]), from the three tensors'
/// quantisation ([`AddParams::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddParams {
    /// Zero point of `a`.
    pub a_zp: i32,
    /// `a`'s multiplier and shift.
    pub a_mult: (i32, i32),
    /// Zero point of `b`.
    pub b_zp: i32,
    /// `b`'s multiplier and shift.
    pub b_mult: (i32, i32),
    /// Zero point of the output.
    pub out_zp: i32,
    /// The output's multiplier and shift.
    pub out_mult: (i32, i32),
    /// The fused activation's clamp.
    pub act: ActRange,
}

impl AddParams {
    /// The parameters of `y = a + b` with `y` in `out`, as TFLite's `ADD` prepares them (in
    /// `f64`; see the [module docs](self)).
    ///
    /// Errors: a scale not finite or positive, a zero point outside `[-128, 127]`, an empty
    /// activation range, or an output scale so small that `twice_max / (2^20 · out.scale)`
    /// overflows the fixed-point range.
    pub fn new(a: QuantParams, b: QuantParams, out: QuantParams, act: ActRange) -> Result<Self> {
        for p in [a, b, out] {
            QuantParams::new(p.scale, p.zero_point)?;
        }
        act.check()?;
        let twice_max = 2.0 * a.scale.max(b.scale) as f64;
        Ok(AddParams {
            a_zp: a.zero_point,
            a_mult: quantize_multiplier(a.scale as f64 / twice_max)?,
            b_zp: b.zero_point,
            b_mult: quantize_multiplier(b.scale as f64 / twice_max)?,
            out_zp: out.zero_point,
            out_mult: quantize_multiplier(twice_max / ((1u32 << ADD_LEFT_SHIFT) as f64 * out.scale as f64))?,
            act,
        })
    }
}

/// int8 residual add, elementwise (no broadcasting), as described in the [module docs](self).
///
/// - `a: [*]`, `b: [*]`, `y: [*]`, all of one length; `y` overwritten.
///
/// Errors (nothing written): the lengths differ, or `p` has a zero point outside
/// `[-128, 127]`, a shift outside `[-31, 30]` or an empty activation range (a hand-built `p`).
pub fn add_s8(p: &AddParams, a: &[i8], b: &[i8], y: &mut [i8]) -> Result<()> {
    check_len(Buffer::Input, y.len(), a.len())?;
    check_len(Buffer::Input, y.len(), b.len())?;
    check_add(p)?;
    let side = |q: i8, zp: i32, (m, s): (i32, i32)| requantize((q as i32 - zp) << ADD_LEFT_SHIFT, m, s);
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        let sum = side(a, p.a_zp, p.a_mult).wrapping_add(side(b, p.b_zp, p.b_mult));
        *y = p
            .act
            .clamp(requantize(sum, p.out_mult.0, p.out_mult.1).saturating_add(p.out_zp));
    }
    Ok(())
}

/// The ranges [`add_s8`] relies on.
fn check_add(p: &AddParams) -> Result<()> {
    for zp in [p.a_zp, p.b_zp, p.out_zp] {
        super::scheme::check_zero_point("zero point", zp)?;
    }
    for (_, s) in [p.a_mult, p.b_mult, p.out_mult] {
        if !(-31..=30).contains(&s) {
            return Err(Error::InvalidArgument {
                name: "shift",
                expected: "must be in [-31, 30]",
            });
        }
    }
    p.act.check()
}

/// Requantisation of an int8 tensor from one quantisation to another ([`Rescale::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rescale {
    /// Zero point of the input.
    pub in_zp: i32,
    /// Zero point of the output.
    pub out_zp: i32,
    /// Multiplier and shift of `in.scale / out.scale`; `None` when the scales are equal, which
    /// makes the rescale `q - in_zp + out_zp`, exactly.
    pub mult: Option<(i32, i32)>,
}

impl Rescale {
    /// From `from` to `to`: `q -> clamp(requantize(q - from.zp, M, s) + to.zp, -128, 127)`.
    ///
    /// Errors: a scale not finite or positive, a zero point outside `[-128, 127]`, or a ratio
    /// `from.scale / to.scale` of `2^22` or more (a left shift past 22 would overflow `i32`
    /// for an int8 difference; every such rescale saturates all non-zero values anyway).
    pub fn new(from: QuantParams, to: QuantParams) -> Result<Self> {
        QuantParams::new(from.scale, from.zero_point)?;
        QuantParams::new(to.scale, to.zero_point)?;
        let mult = if from.scale == to.scale {
            None
        } else {
            let (m, s) = quantize_multiplier(from.scale as f64 / to.scale as f64)?;
            if s > 22 {
                return Err(Error::InvalidArgument {
                    name: "concatenation scale ratio",
                    expected: "must be below 2^22",
                });
            }
            Some((m, s))
        };
        Ok(Rescale {
            in_zp: from.zero_point,
            out_zp: to.zero_point,
            mult,
        })
    }

    /// One element.
    #[inline(always)]
    pub fn apply(&self, q: i8) -> i8 {
        let d = q as i32 - self.in_zp;
        let r = match self.mult {
            Some((m, s)) => requantize(d, m, s),
            None => d,
        };
        r.saturating_add(self.out_zp).clamp(-128, 127) as i8
    }
}

/// int8 channel concatenation, `torch.cat([a, b], dim=1)` with each input requantised to the
/// output's parameters ([`Rescale`]): for each of the `n` samples, `y[s] = [ra(a[s]), rb(b[s])]`.
///
/// - `a: [n, g.a]` (`g.a = C_a · S` for NCHW tensors of spatial size `S`), `b: [n, g.b]`;
/// - `y: [n, g.a + g.b]`, overwritten.
///
/// Errors (nothing written): a buffer of the wrong length, or a hand-built [`Rescale`] with a
/// zero point outside `[-128, 127]` or a shift outside `[-31, 22]`.
pub fn concat_s8(n: usize, g: &ConcatGeom, a: &[i8], ra: &Rescale, b: &[i8], rb: &Rescale, y: &mut [i8]) -> Result<()> {
    const OP: &str = "int8 Concat";
    let row =
        g.a.checked_add(g.b)
            .ok_or(shape_error(OP, "the output's length overflows usize", 0, 0))?;
    check_len(Buffer::Input, numel(OP, &[n, g.a])?, a.len())?;
    check_len(Buffer::Input, numel(OP, &[n, g.b])?, b.len())?;
    check_len(Buffer::Output, numel(OP, &[n, row])?, y.len())?;
    for r in [ra, rb] {
        super::scheme::check_zero_point("zero point", r.in_zp)?;
        super::scheme::check_zero_point("zero point", r.out_zp)?;
        if r.mult.is_some_and(|(_, s)| !(-31..=22).contains(&s)) {
            return Err(Error::InvalidArgument {
                name: "shift",
                expected: "must be in [-31, 22]",
            });
        }
    }
    if row == 0 {
        return Ok(());
    }
    for (s, out) in y.chunks_exact_mut(row).enumerate() {
        let (ya, yb) = out.split_at_mut(g.a);
        for (y, &q) in ya.iter_mut().zip(&a[s * g.a..]) {
            *y = ra.apply(q);
        }
        for (y, &q) in yb.iter_mut().zip(&b[s * g.b..]) {
            *y = rb.apply(q);
        }
    }
    Ok(())
}

/// Flatten (`nn.Flatten`): on contiguous NCHW data an identity, `y = x`; the quantisation is
/// unchanged.
///
/// - `x: [N, C, H, W]` (any shape), `y: [N, C·H·W]`, the same length; overwritten.
pub fn flatten_s8(x: &[i8], y: &mut [i8]) -> Result<()> {
    check_len(Buffer::Output, x.len(), y.len())?;
    y.copy_from_slice(x);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_known_answer() {
        // a: scale 0.5, zp 1; b: scale 0.25, zp -2; out: scale 0.5, zp 0.
        let (pa, pb, po) = (
            QuantParams::new(0.5, 1).unwrap(),
            QuantParams::new(0.25, -2).unwrap(),
            QuantParams::new(0.5, 0).unwrap(),
        );
        let p = AddParams::new(pa, pb, po, ActRange::FULL).unwrap();
        assert_eq!(p.a_mult, (1 << 30, 0)); // 0.5 / 1.0
        assert_eq!(p.b_mult, (1 << 30, -1)); // 0.25
                                             // a = 5 -> 2.0, b = 4 -> 1.5: 3.5 / 0.5 = 7.
        let mut y = [0i8; 2];
        add_s8(&p, &[5, 127], &[4, 127], &mut y).unwrap();
        assert_eq!(y[0], 7);
        assert_eq!(y[1], 127); // 63 + 32.25 saturates
        assert!(add_s8(&p, &[5], &[4, 4], &mut y).is_err());
        assert!(AddParams::new(
            pa,
            pb,
            QuantParams {
                scale: 0.0,
                zero_point: 0
            },
            ActRange::FULL
        )
        .is_err());
    }

    #[test]
    fn concat_rescales() {
        let same = QuantParams::new(0.1, 3).unwrap();
        let half = QuantParams::new(0.05, -1).unwrap();
        let r_same = Rescale::new(same, same).unwrap();
        assert_eq!(r_same.mult, None);
        // From scale 0.05 zp -1 to scale 0.1 zp 3: q = 4 is 0.25 -> 2.5 steps -> 3 (+3 = 6).
        let r_half = Rescale::new(half, same).unwrap();
        let g = ConcatGeom { a: 2, b: 1 };
        let mut y = [0i8; 6];
        concat_s8(2, &g, &[1, 2, 3, 4], &r_same, &[4, -128], &r_half, &mut y).unwrap();
        // -128 is -127 steps of 0.05: -63.5 rounds half up to -63, + 3.
        assert_eq!(y, [1, 2, 6, 3, 4, -60]);
        assert!(concat_s8(2, &g, &[1, 2, 3], &r_same, &[4, -128], &r_half, &mut y).is_err());
        let tiny = QuantParams::new(1e-9, 0).unwrap();
        assert!(Rescale::new(same, tiny).is_err());
    }

    #[test]
    fn flatten_copies() {
        let mut y = [0i8; 3];
        flatten_s8(&[1, -2, 3], &mut y).unwrap();
        assert_eq!(y, [1, -2, 3]);
        assert!(flatten_s8(&[1], &mut y).is_err());
    }
}
