//! `nn.MSELoss`: mean squared error, the default loss for regression.
//!
//! `l_i = (x_i - y_i)^2`; 'mean' divides the sum by the number of elements. The gradient is
//! `2 (x_i - y_i)`
//! (<https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html>).

use super::{elementwise, Loss, Reduction};
use crate::{Result, Shape};

/// `nn.MSELoss(reduction='mean')`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MSELoss {
    /// How per-element losses are combined (default [`Reduction::Mean`]).
    pub reduction: Reduction,
}

#[inline(always)]
fn value(_: usize, x: f32, y: f32) -> f32 {
    let d = x - y;
    d * d
}

#[inline(always)]
fn derivative(_: usize, x: f32, y: f32) -> f32 {
    2.0 * (x - y)
}

impl MSELoss {
    /// PyTorch's defaults: `reduction='mean'`.
    pub const fn new() -> Self {
        MSELoss {
            reduction: Reduction::Mean,
        }
    }

    /// Sets `reduction`.
    pub const fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Loss of `input: [N, *sample]` against `target: [N, *sample]`.
    ///
    /// `out`: `[N, *sample]` for [`Reduction::None`], else `[1]`.
    pub fn forward(&self, input: &[f32], n: usize, sample: Shape, target: &[f32], out: &mut [f32]) -> Result<()> {
        elementwise::check(input, n, sample, target)?;
        elementwise::forward(self.reduction, input, target, out, value)
    }

    /// Overwrites `grad_in: [N, *sample]` with `grad_out * 2 (x - y)` (divided by the element
    /// count for 'mean'); `grad_out` has the length of [`MSELoss::forward`]'s `out`.
    pub fn backward(
        &self,
        input: &[f32],
        n: usize,
        sample: Shape,
        target: &[f32],
        grad_out: &[f32],
        grad_in: &mut [f32],
    ) -> Result<()> {
        elementwise::check(input, n, sample, target)?;
        elementwise::backward(self.reduction, input, target, grad_out, grad_in, derivative)
    }
}

impl Loss for MSELoss {
    type Target = [f32];

    fn loss_and_grad(&self, input: &[f32], n: usize, sample: Shape, target: &[f32], grad: &mut [f32]) -> Result<f32> {
        elementwise::check(input, n, sample, target)?;
        elementwise::loss_and_grad(self.reduction, input, target, grad, value, derivative)
    }

    fn loss(&self, input: &[f32], n: usize, sample: Shape, target: &[f32]) -> Result<f32> {
        elementwise::check(input, n, sample, target)?;
        Ok(elementwise::reduce(self.reduction, input, target, value))
    }
}
