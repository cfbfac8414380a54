//! `nn.BCEWithLogitsLoss`: `Sigmoid` and binary cross-entropy in one stable step, for binary
//! and multi-label classification.
//!
//! With `p` the `pos_weight` of the element's last-dim index (1 without `pos_weight`) and
//! `log σ(x) = min(x, 0) - ln(1 + e^{-|x|})`, as PyTorch computes it
//! (<https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html>):
//!
//! `l_i = (1 - y_i) x_i - (1 + (p - 1) y_i) log σ(x_i)`,
//!
//! which for `p = 1` is `max(x, 0) - x y + ln(1 + e^{-|x|})`: finite for any logit. The
//! gradient is PyTorch's `(p y + 1 - y) σ(x) - p y`.

use super::{elementwise, log1p, Loss, Reduction};
use crate::error::check_len;
use crate::{math, Buffer, Result, Shape};

/// `nn.BCEWithLogitsLoss(reduction='mean', pos_weight=None)` (without the per-element
/// `weight`).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BCEWithLogitsLoss<'w> {
    /// How per-element losses are combined (default [`Reduction::Mean`]).
    pub reduction: Reduction,
    /// Weight of the positive term per index of the sample's last dim (`[sample.last()]`),
    /// broadcast over all other dims as PyTorch broadcasts `pos_weight` (default `None`).
    pub pos_weight: Option<&'w [f32]>,
}

/// `log σ(x)` without overflow.
#[inline(always)]
fn log_sigmoid(x: f32) -> f32 {
    x.min(0.0) - log1p(math::exp(-x.abs()))
}

impl<'w> BCEWithLogitsLoss<'w> {
    /// PyTorch's defaults: `reduction='mean'`, no `pos_weight`.
    pub const fn new() -> Self {
        BCEWithLogitsLoss {
            reduction: Reduction::Mean,
            pos_weight: None,
        }
    }

    /// Sets `reduction`.
    pub const fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets `pos_weight`: one weight per index of the sample's last dim.
    pub const fn pos_weight(mut self, pos_weight: &'w [f32]) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    /// Length checks, including `pos_weight: [sample.last()]`; returns the last dim.
    fn check(&self, input: &[f32], n: usize, sample: Shape, target: &[f32]) -> Result<usize> {
        elementwise::check(input, n, sample, target)?;
        let last = sample.last();
        if let Some(p) = self.pos_weight {
            check_len(Buffer::Weight, last, p.len())?;
        }
        Ok(last)
    }

    /// `pos_weight` of element `i` (1 without it). `last > 0` whenever there is an element.
    #[inline(always)]
    fn p(&self, last: usize, i: usize) -> f32 {
        self.pos_weight.map_or(1.0, |p| p[i % last])
    }

    /// The loss of element `i`.
    #[inline(always)]
    fn value(&self, last: usize, i: usize, x: f32, y: f32) -> f32 {
        let log_weight = (self.p(last, i) - 1.0) * y + 1.0;
        (1.0 - y) * x - log_weight * log_sigmoid(x)
    }

    /// The derivative of element `i`'s loss.
    #[inline(always)]
    fn derivative(&self, last: usize, i: usize, x: f32, y: f32) -> f32 {
        let t = self.p(last, i) * y;
        (t + 1.0 - y) * math::sigmoid(x) - t
    }

    /// Loss of logits `input: [N, *sample]` against `target: [N, *sample]` (probabilities of
    /// the positive class, usually 0 or 1).
    ///
    /// `out`: `[N, *sample]` for [`Reduction::None`], else `[1]`.
    pub fn forward(&self, input: &[f32], n: usize, sample: Shape, target: &[f32], out: &mut [f32]) -> Result<()> {
        let last = self.check(input, n, sample, target)?;
        elementwise::forward(self.reduction, input, target, out, |i, x, y| self.value(last, i, x, y))
    }

    /// Overwrites `grad_in: [N, *sample]` with `grad_out * ((p y + 1 - y) σ(x) - p y)` (divided
    /// by the element count for 'mean'); `grad_out` has the length of
    /// [`BCEWithLogitsLoss::forward`]'s `out`.
    pub fn backward(
        &self,
        input: &[f32],
        n: usize,
        sample: Shape,
        target: &[f32],
        grad_out: &[f32],
        grad_in: &mut [f32],
    ) -> Result<()> {
        let last = self.check(input, n, sample, target)?;
        elementwise::backward(self.reduction, input, target, grad_out, grad_in, |i, x, y| {
            self.derivative(last, i, x, y)
        })
    }
}

impl Loss for BCEWithLogitsLoss<'_> {
    type Target = [f32];

    fn loss_and_grad(&self, input: &[f32], n: usize, sample: Shape, target: &[f32], grad: &mut [f32]) -> Result<f32> {
        let last = self.check(input, n, sample, target)?;
        elementwise::loss_and_grad(
            self.reduction,
            input,
            target,
            grad,
            |i, x, y| self.value(last, i, x, y),
            |i, x, y| self.derivative(last, i, x, y),
        )
    }

    fn loss(&self, input: &[f32], n: usize, sample: Shape, target: &[f32]) -> Result<f32> {
        let last = self.check(input, n, sample, target)?;
        Ok(elementwise::reduce(self.reduction, input, target, |i, x, y| {
            self.value(last, i, x, y)
        }))
    }
}
