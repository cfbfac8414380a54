//! `nn.NLLLoss`: negative log-likelihood of class indices, on log-probabilities (after
//! `LogSoftmax`).
//!
//! Input `[N, C]` or `[N, C, d1, ...]`, target `[N]` or `[N, d1, ...]` class indices. Per
//! position, `l = -w[y] x[y]`, and 0 where `y == ignore_index`; 'mean' divides the sum by
//! `sum w[y]` over the non-ignored positions (their count without `weight`)
//! (<https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html>).
//!
//! On logits, use [`CrossEntropyLoss`](super::CrossEntropyLoss), which fuses the log-softmax.

use super::classes::{self, Geom};
use super::{reduced_len, Loss, Reduction};
use crate::error::check_len;
use crate::{Buffer, Result, Shape};

/// `nn.NLLLoss(weight=None, ignore_index=-100, reduction='mean')`.
///
/// PyTorch's default `ignore_index=-100` can never match a `u32` class index; it is `None`
/// here.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct NLLLoss<'w> {
    /// How per-position losses are combined (default [`Reduction::Mean`]).
    pub reduction: Reduction,
    /// A rescaling weight per class, `[C]` (default `None`: all ones).
    pub weight: Option<&'w [f32]>,
    /// A target value that contributes neither loss nor gradient (default `None`).
    pub ignore_index: Option<u32>,
}

impl<'w> NLLLoss<'w> {
    /// PyTorch's defaults: no weight, no ignored index, `reduction='mean'`.
    pub const fn new() -> Self {
        NLLLoss {
            reduction: Reduction::Mean,
            weight: None,
            ignore_index: None,
        }
    }

    /// Sets `reduction`.
    pub const fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets the class weights, `[C]`.
    pub const fn weight(mut self, weight: &'w [f32]) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Sets `ignore_index`.
    pub const fn ignore_index(mut self, ignore_index: u32) -> Self {
        self.ignore_index = Some(ignore_index);
        self
    }

    fn check(&self, input: &[f32], n: usize, sample: Shape, target: &[u32]) -> Result<(Geom, f32)> {
        classes::check(input, n, sample, target, self.weight, self.ignore_index)
    }

    /// `-w[y] x[y]` at `pos` (0 if ignored) and the weight `w[y]` (0 if ignored).
    #[inline(always)]
    fn at(&self, g: Geom, input: &[f32], target: &[u32], pos: usize) -> (f32, f32) {
        let y = target[pos];
        if Some(y) == self.ignore_index {
            return (0.0, 0.0);
        }
        let w = self.weight.map_or(1.0, |w| w[y as usize]);
        (-w * input[g.at(pos, y as usize)], w)
    }

    /// Loss of log-probabilities `input: [N, C, *spatial]` against class indices
    /// `target: [N, *spatial]` (`C = sample.channels()`).
    ///
    /// `out`: `[N, *spatial]` for [`Reduction::None`], else `[1]`.
    pub fn forward(&self, input: &[f32], n: usize, sample: Shape, target: &[u32], out: &mut [f32]) -> Result<()> {
        let (g, total) = self.check(input, n, sample, target)?;
        check_len(Buffer::Output, reduced_len(self.reduction, g.positions()), out.len())?;
        match self.reduction {
            Reduction::None => {
                for (pos, o) in out.iter_mut().enumerate() {
                    *o = self.at(g, input, target, pos).0;
                }
            }
            Reduction::Mean | Reduction::Sum => out[0] = self.reduce(g, total, input, target),
        }
        Ok(())
    }

    fn reduce(&self, g: Geom, total: f32, input: &[f32], target: &[u32]) -> f32 {
        let mut sum = 0.0f32;
        for pos in 0..g.positions() {
            sum += self.at(g, input, target, pos).0;
        }
        classes::finish(self.reduction, sum, total)
    }

    /// Overwrites `grad_in: [N, C, *spatial]`: `-w[y] * grad_out` at the target class (divided
    /// by `sum w[y]` for 'mean'), 0 elsewhere and at ignored positions. `grad_out` has the
    /// length of [`NLLLoss::forward`]'s `out`.
    pub fn backward(
        &self,
        input: &[f32],
        n: usize,
        sample: Shape,
        target: &[u32],
        grad_out: &[f32],
        grad_in: &mut [f32],
    ) -> Result<()> {
        let (g, total) = self.check(input, n, sample, target)?;
        check_len(
            Buffer::Gradient,
            reduced_len(self.reduction, g.positions()),
            grad_out.len(),
        )?;
        check_len(Buffer::Gradient, input.len(), grad_in.len())?;
        self.write_grad(g, target, grad_in, |pos| {
            classes::upstream(self.reduction, grad_out, total, pos)
        });
        Ok(())
    }

    fn write_grad(&self, g: Geom, target: &[u32], grad_in: &mut [f32], up: impl Fn(usize) -> f32) {
        grad_in.fill(0.0);
        for (pos, &y) in target.iter().enumerate() {
            if Some(y) == self.ignore_index {
                continue;
            }
            let w = self.weight.map_or(1.0, |w| w[y as usize]);
            grad_in[g.at(pos, y as usize)] = -w * up(pos);
        }
    }
}

impl Loss for NLLLoss<'_> {
    type Target = [u32];

    fn loss_and_grad(&self, input: &[f32], n: usize, sample: Shape, target: &[u32], grad: &mut [f32]) -> Result<f32> {
        let (g, total) = self.check(input, n, sample, target)?;
        check_len(Buffer::Gradient, input.len(), grad.len())?;
        let ones = [1.0];
        let reduction = match self.reduction {
            Reduction::None => Reduction::Sum,
            r => r,
        };
        self.write_grad(g, target, grad, |pos| classes::upstream(reduction, &ones, total, pos));
        Ok(self.reduce(g, total, input, target))
    }

    fn loss(&self, input: &[f32], n: usize, sample: Shape, target: &[u32]) -> Result<f32> {
        let (g, total) = self.check(input, n, sample, target)?;
        Ok(self.reduce(g, total, input, target))
    }
}
