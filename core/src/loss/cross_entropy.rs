//! `nn.CrossEntropyLoss`: log-softmax and negative log-likelihood of class indices in one
//! stable step, the loss for classification and (with spatial targets) segmentation.
//!
//! Input logits `[N, C]` or `[N, C, d1, ...]`, target `[N]` or `[N, d1, ...]` class indices.
//! With `log p = log_softmax(x)` over the classes (computed as `x - max - ln sum e^{x - max}`),
//! label smoothing `ε`, class weights `w` (all 1 without `weight`) and target `y`, the loss at a
//! position is, exactly as PyTorch composes it
//! (<https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html>):
//!
//! `l = (1 - ε) (-w[y] log p[y]) + ε / C * sum_k (-w[k] log p[k])`,
//!
//! and 0 where `y == ignore_index`. The smoothing term is weighted too, and 'mean' divides the
//! sum of both terms by `sum w[y]` over the non-ignored positions (their count without
//! `weight`). The gradient with respect to logit `k` is
//!
//! `dl/dx[k] = p[k] ((1 - ε) w[y] + ε / C * sum_j w[j]) - (1 - ε) w[y] [k == y] - ε / C * w[k]`.
//!
//! Probability ("soft") targets are not supported; use class indices.

use super::classes::{self, Geom};
use super::{reduced_len, Loss, Reduction};
use crate::error::check_len;
use crate::{math, Buffer, Error, Result, Shape};

/// `nn.CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)`.
///
/// PyTorch's default `ignore_index=-100` can never match a `u32` class index; it is `None`
/// here.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct CrossEntropyLoss<'w> {
    /// How per-position losses are combined (default [`Reduction::Mean`]).
    pub reduction: Reduction,
    /// Amount of smoothing in `[0, 1]`: the target becomes `(1 - ε) onehot(y) + ε / C`
    /// (default 0). Checked when the loss is used.
    pub label_smoothing: f32,
    /// A rescaling weight per class, `[C]` (default `None`: all ones).
    pub weight: Option<&'w [f32]>,
    /// A target value that contributes neither loss nor gradient (default `None`).
    pub ignore_index: Option<u32>,
}

/// `max`, `ln sum e^{x - max}` of the `C` logits at `base`, `base + s`, ...
#[inline(always)]
fn log_sum_exp(input: &[f32], base: usize, c: usize, s: usize) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for k in 0..c {
        m = m.max(input[base + k * s]);
    }
    let mut sum = 0.0f32;
    for k in 0..c {
        sum += math::exp(input[base + k * s] - m);
    }
    m + math::ln(sum)
}

impl<'w> CrossEntropyLoss<'w> {
    /// PyTorch's defaults: no weight, no ignored index, `reduction='mean'`, no smoothing.
    pub const fn new() -> Self {
        CrossEntropyLoss {
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
            weight: None,
            ignore_index: None,
        }
    }

    /// Sets `reduction`.
    pub const fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets `label_smoothing` (must be in `[0, 1]`; checked when the loss is used).
    pub const fn label_smoothing(mut self, label_smoothing: f32) -> Self {
        self.label_smoothing = label_smoothing;
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
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(Error::InvalidArgument {
                name: "label_smoothing",
                expected: "must be in [0, 1]",
            });
        }
        classes::check(input, n, sample, target, self.weight, self.ignore_index)
    }

    #[inline(always)]
    fn w(&self, k: usize) -> f32 {
        self.weight.map_or(1.0, |w| w[k])
    }

    /// The loss at `pos` (0 if ignored); with `grad`, also overwrites the `C` gradients at
    /// `pos` with `up` times the derivative.
    #[inline(always)]
    fn position(&self, g: Geom, input: &[f32], target: &[u32], pos: usize, grad: Option<(&mut [f32], f32)>) -> f32 {
        let (c, s) = (g.c, g.s);
        let base = g.at(pos, 0);
        let y = target[pos];
        if Some(y) == self.ignore_index {
            if let Some((grad, _)) = grad {
                for k in 0..c {
                    grad[base + k * s] = 0.0;
                }
            }
            return 0.0;
        }
        let y = y as usize;
        let eps = self.label_smoothing;
        let smooth = eps / c as f32;
        let lse = log_sum_exp(input, base, c, s);
        let wy = self.w(y);
        let mut loss = (1.0 - eps) * wy * (lse - input[base + y * s]);
        if eps != 0.0 {
            let mut sum = 0.0f32;
            for k in 0..c {
                sum += self.w(k) * (lse - input[base + k * s]);
            }
            loss += smooth * sum;
        }
        if let Some((grad, up)) = grad {
            let mut w_sum = 0.0f32;
            if eps != 0.0 {
                for k in 0..c {
                    w_sum += self.w(k);
                }
            }
            let p_scale = (1.0 - eps) * wy + smooth * w_sum;
            for k in 0..c {
                let p = math::exp(input[base + k * s] - lse);
                let mut d = p * p_scale;
                if k == y {
                    d -= (1.0 - eps) * wy;
                }
                if eps != 0.0 {
                    d -= smooth * self.w(k);
                }
                grad[base + k * s] = up * d;
            }
        }
        loss
    }

    fn reduce(&self, g: Geom, total: f32, input: &[f32], target: &[u32]) -> f32 {
        let mut sum = 0.0f32;
        for pos in 0..g.positions() {
            sum += self.position(g, input, target, pos, None);
        }
        classes::finish(self.reduction, sum, total)
    }

    /// Loss of logits `input: [N, C, *spatial]` against class indices `target: [N, *spatial]`
    /// (`C = sample.channels()`).
    ///
    /// `out`: `[N, *spatial]` for [`Reduction::None`], else `[1]`.
    pub fn forward(&self, input: &[f32], n: usize, sample: Shape, target: &[u32], out: &mut [f32]) -> Result<()> {
        let (g, total) = self.check(input, n, sample, target)?;
        check_len(Buffer::Output, reduced_len(self.reduction, g.positions()), out.len())?;
        match self.reduction {
            Reduction::None => {
                for (pos, o) in out.iter_mut().enumerate() {
                    *o = self.position(g, input, target, pos, None);
                }
            }
            Reduction::Mean | Reduction::Sum => out[0] = self.reduce(g, total, input, target),
        }
        Ok(())
    }

    /// Overwrites `grad_in: [N, C, *spatial]` with the gradient above times the upstream
    /// gradient (divided by `sum w[y]` for 'mean'); 0 at ignored positions. `grad_out` has the
    /// length of [`CrossEntropyLoss::forward`]'s `out`.
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
        for pos in 0..g.positions() {
            let up = classes::upstream(self.reduction, grad_out, total, pos);
            self.position(g, input, target, pos, Some((&mut *grad_in, up)));
        }
        Ok(())
    }
}

impl Loss for CrossEntropyLoss<'_> {
    type Target = [u32];

    fn loss_and_grad(&self, input: &[f32], n: usize, sample: Shape, target: &[u32], grad: &mut [f32]) -> Result<f32> {
        let (g, total) = self.check(input, n, sample, target)?;
        check_len(Buffer::Gradient, input.len(), grad.len())?;
        let up = match self.reduction {
            Reduction::Mean => 1.0 / total,
            Reduction::None | Reduction::Sum => 1.0,
        };
        let mut sum = 0.0f32;
        for pos in 0..g.positions() {
            sum += self.position(g, input, target, pos, Some((&mut *grad, up)));
        }
        Ok(classes::finish(self.reduction, sum, total))
    }

    fn loss(&self, input: &[f32], n: usize, sample: Shape, target: &[u32]) -> Result<f32> {
        let (g, total) = self.check(input, n, sample, target)?;
        Ok(self.reduce(g, total, input, target))
    }
}
