//! `nn.BCELoss`: binary cross-entropy on probabilities, after a `Sigmoid`.
//!
//! `l_i = -(y_i ln x_i + (1 - y_i) ln(1 - x_i))`, with both logarithms clamped at `-100` as
//! PyTorch does, so a saturated probability gives a finite loss
//! (<https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html>). The gradient is
//! PyTorch's `(x_i - y_i) / max(x_i (1 - x_i), 1e-12)`.
//!
//! Prefer [`BCEWithLogitsLoss`](super::BCEWithLogitsLoss) on the logits: it is stable for any
//! logit, where `Sigmoid` then `BCELoss` saturates at `|x| > 17`.

use super::{elementwise, log1p, Loss, Reduction};
use crate::{math, Error, Result, Shape};

/// `nn.BCELoss(reduction='mean')` (without the per-element `weight`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BCELoss {
    /// How per-element losses are combined (default [`Reduction::Mean`]).
    pub reduction: Reduction,
}

/// PyTorch's lower bound on `x (1 - x)` in the gradient.
const EPSILON: f32 = 1e-12;

#[inline(always)]
fn value(_: usize, x: f32, y: f32) -> f32 {
    let log_x = math::ln(x).max(-100.0);
    let log_1mx = log1p(-x).max(-100.0);
    (y - 1.0) * log_1mx - y * log_x
}

#[inline(always)]
fn derivative(_: usize, x: f32, y: f32) -> f32 {
    (x - y) / ((1.0 - x) * x).max(EPSILON)
}

/// PyTorch's check: every input is a probability (NaN fails too).
fn check_probabilities(input: &[f32]) -> Result<()> {
    if input.iter().all(|&x| (0.0..=1.0).contains(&x)) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "input",
            expected: "must be in [0, 1]",
        })
    }
}

/// Length checks plus the probability check.
fn check(input: &[f32], n: usize, sample: Shape, target: &[f32]) -> Result<()> {
    elementwise::check(input, n, sample, target)?;
    check_probabilities(input)
}

impl BCELoss {
    /// PyTorch's defaults: `reduction='mean'`.
    pub const fn new() -> Self {
        BCELoss {
            reduction: Reduction::Mean,
        }
    }

    /// Sets `reduction`.
    pub const fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Loss of probabilities `input: [N, *sample]` (each in `[0, 1]`, else
    /// [`Error::InvalidArgument`]) against `target: [N, *sample]`.
    ///
    /// `out`: `[N, *sample]` for [`Reduction::None`], else `[1]`.
    pub fn forward(&self, input: &[f32], n: usize, sample: Shape, target: &[f32], out: &mut [f32]) -> Result<()> {
        check(input, n, sample, target)?;
        elementwise::forward(self.reduction, input, target, out, value)
    }

    /// Overwrites `grad_in: [N, *sample]` with `grad_out * (x - y) / max(x (1 - x), 1e-12)`
    /// (divided by the element count for 'mean'); `grad_out` has the length of
    /// [`BCELoss::forward`]'s `out`.
    pub fn backward(
        &self,
        input: &[f32],
        n: usize,
        sample: Shape,
        target: &[f32],
        grad_out: &[f32],
        grad_in: &mut [f32],
    ) -> Result<()> {
        check(input, n, sample, target)?;
        elementwise::backward(self.reduction, input, target, grad_out, grad_in, derivative)
    }
}

impl Loss for BCELoss {
    type Target = [f32];

    fn loss_and_grad(&self, input: &[f32], n: usize, sample: Shape, target: &[f32], grad: &mut [f32]) -> Result<f32> {
        check(input, n, sample, target)?;
        elementwise::loss_and_grad(self.reduction, input, target, grad, value, derivative)
    }

    fn loss(&self, input: &[f32], n: usize, sample: Shape, target: &[f32]) -> Result<f32> {
        check(input, n, sample, target)?;
        Ok(elementwise::reduce(self.reduction, input, target, value))
    }
}
