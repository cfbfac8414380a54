//! int8 fully connected layer (`nn.Linear` quantised as TFLite's `FULLY_CONNECTED`, CMSIS-NN's
//! `arm_fully_connected_s8`), over the f32 core's [`LinearGeom`]:
//!
//! ```text
//! acc[r, o] = bias[o] + Σ_i w[o, i] · (x[r, i] - input_zp)
//! y[r, o]   = clamp(requantize(acc, multiplier[o], shift[o]) + output_zp, act.min, act.max)
//! ```
//!
//! Weights are symmetric int8 per output feature (or per tensor: one multiplier), the bias
//! `i32` in the accumulator's scale.

use super::numel;
use super::scheme::{check_zero_point, OutputStage};
use crate::error::{check_len, Buffer, Result};
use crate::ops::linear::LinearGeom;

/// int8 linear forward, as described in the [module docs](self). Needs no scratch.
///
/// - `x: [n, g.rows, in_f]`, int8 with zero point `input_zp`;
/// - `w: [out_f, in_f]`, symmetric int8;
/// - `bias: [out_f]` (`i32`, scale `input_scale * w_scale[o]`), empty when `!g.bias`;
/// - `y: [n, g.rows, out_f]`, overwritten.
///
/// Errors (nothing is written): a buffer of the wrong length, a zero point outside
/// `[-128, 127]`, or an invalid [`OutputStage`] for `out_f` channels.
#[allow(clippy::too_many_arguments)]
pub fn linear_s8(
    n: usize,
    g: &LinearGeom,
    input_zp: i32,
    out: &OutputStage<'_>,
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    y: &mut [i8],
) -> Result<()> {
    const OP: &str = "int8 Linear";
    check_zero_point("input zero point", input_zp)?;
    out.check(g.out_f)?;
    let rows = numel(OP, &[n, g.rows])?;
    check_len(Buffer::Input, numel(OP, &[rows, g.in_f])?, x.len())?;
    check_len(Buffer::Params, numel(OP, &[g.out_f, g.in_f])?, w.len())?;
    check_len(Buffer::Params, if g.bias { g.out_f } else { 0 }, bias.len())?;
    check_len(Buffer::Output, numel(OP, &[rows, g.out_f])?, y.len())?;
    if g.in_f == 0 {
        // No products: every output is its bias.
        for yr in y.chunks_exact_mut(g.out_f.max(1)) {
            for (o, yv) in yr.iter_mut().enumerate() {
                *yv = out.apply(out.channel(o), bias.get(o).copied().unwrap_or(0));
            }
        }
        return Ok(());
    }
    for (xr, yr) in x.chunks_exact(g.in_f).zip(y.chunks_exact_mut(g.out_f.max(1))) {
        for ((o, yv), w_row) in yr.iter_mut().enumerate().zip(w.chunks_exact(g.in_f)) {
            let acc = w_row
                .iter()
                .zip(xr)
                .fold(0i32, |acc, (&w, &x)| acc.wrapping_add(w as i32 * (x as i32 - input_zp)));
            let b = bias.get(o).copied().unwrap_or(0);
            *yv = out.apply(out.channel(o), b.wrapping_add(acc));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::scheme::ActRange;

    #[test]
    fn known_answer_and_errors() {
        // x - zp = [1, 2, 3]; rows of w: [1, 1, 1] and [-1, 0, 2]; biases 2 and -1.
        let g = LinearGeom {
            rows: 1,
            in_f: 3,
            out_f: 2,
            bias: true,
        };
        let (x, w, b) = ([6i8, 7, 8], [1i8, 1, 1, -1, 0, 2], [2i32, -1]);
        // Per-channel: 8 * 0.5 = 4; 4 * 0.25 = 1; zero point -3; ReLU-like floor at -2.
        let out = OutputStage {
            multiplier: &[1 << 30, 1 << 30],
            shift: &[0, -1],
            output_zp: -3,
            act: ActRange { min: -2, max: 127 },
        };
        let mut y = [0i8; 2];
        linear_s8(1, &g, 5, &out, &x, &w, &b, &mut y).unwrap();
        assert_eq!(y, [1, -2]);
        assert!(linear_s8(2, &g, 5, &out, &x, &w, &b, &mut y).is_err());
        assert!(linear_s8(1, &g, 5, &out, &x, &w[..5], &b, &mut y).is_err());
        assert!(linear_s8(1, &g, 5, &out, &x, &w, &[], &mut y).is_err());
        assert!(linear_s8(1, &g, -129, &out, &x, &w, &b, &mut y).is_err());
        let nb = LinearGeom { bias: false, ..g };
        linear_s8(1, &nb, 5, &out, &x, &w, &[], &mut y).unwrap();
        // 6 * 0.5 = 3, - 3; 5 * 0.25 = 1.25 rounds twice (2.5 -> 3, 3 / 2 -> 2), - 3.
        assert_eq!(y, [0, -1]);
    }
}
