//! Loss functions with PyTorch's exact semantics: values, gradients, reductions and errors.
//!
//! Every loss is a small `Copy` struct named and configured as its `torch.nn` class
//! (`CrossEntropyLoss::new().label_smoothing(0.1)`), with two ways to use it:
//!
//! - the [`Loss`] trait, which a training loop (or `Network::backward`) calls once per batch:
//!   [`Loss::loss_and_grad`] returns the reduced loss and **overwrites** the gradient with
//!   respect to the input, as `loss.backward()` on a fresh graph would;
//! - inherent `forward` / `backward` methods that mirror `F.*_loss` and its autograd function,
//!   with any [`Reduction`] and an explicit upstream gradient (for a loss that is not the last
//!   node, or for `Reduction::None`).
//!
//! Inputs are contiguous `[N, *sample]` slices (`sample` is the [`Shape`] of one
//! sample, as everywhere in torchlet). Class losses ([`CrossEntropyLoss`], [`NLLLoss`]) read the
//! classes from the first dim of the sample (`[N, C]` or `[N, C, d1, ...]`) and take `u32` class
//! indices `[N, d1, ...]`; elementwise losses take `f32` targets of the input's length.
//!
//! Losses validate everything they are given (lengths, labels, hyper-parameters) and return
//! [`Error`] instead of panicking: they are an input boundary, kernels are not.
//! Sums are accumulated in `f32` in index order, which agrees with PyTorch to about `1e-6`
//! relative for the batch sizes a microcontroller trains with.
//!
//! Unlike the layer kernels in [`crate::ops`], a loss's `backward` **overwrites** `grad_in`:
//! a loss starts the backward pass, there is nothing to accumulate into.

mod bce;
mod bce_with_logits;
mod cross_entropy;
mod l1;
mod mse;
mod nll;

pub use bce::BCELoss;
pub use bce_with_logits::BCEWithLogitsLoss;
pub use cross_entropy::CrossEntropyLoss;
pub use l1::L1Loss;
pub use mse::MSELoss;
pub use nll::NLLLoss;

use crate::error::check_len;
use crate::{Buffer, Error, Result, Shape};

/// How per-element losses are combined, as PyTorch's `reduction` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reduction {
    /// `'none'`: one loss per element (per position for class losses).
    None,
    /// `'mean'` (the default): the sum divided by the number of elements, or by the summed
    /// class weights of the non-ignored targets for class losses.
    #[default]
    Mean,
    /// `'sum'`: the sum of the per-element losses.
    Sum,
}

/// Implemented by every loss so a Network can run `loss.backward()`.
pub trait Loss {
    /// `[u32]` class indices for CrossEntropyLoss/NLLLoss, `[f32]` values for the others.
    type Target: ?Sized;

    /// Computes the loss of `input: [N, *sample]` against `target` and **overwrites**
    /// `grad: [N, *sample]` with d(loss)/d(input).
    ///
    /// Returns the reduced loss; for [`Reduction::None`], the sum of the per-element losses,
    /// whose gradient is the per-element gradient with an upstream gradient of ones.
    fn loss_and_grad(
        &self,
        input: &[f32],
        n: usize,
        sample: Shape,
        target: &Self::Target,
        grad: &mut [f32],
    ) -> Result<f32>;

    /// The same value as [`Loss::loss_and_grad`] without the gradient.
    fn loss(&self, input: &[f32], n: usize, sample: Shape, target: &Self::Target) -> Result<f32>;
}

/// Checks `input.len() == n * sample.numel()` and returns that length.
pub(crate) fn check_input(input: &[f32], n: usize, sample: Shape) -> Result<usize> {
    let len = n * sample.numel();
    check_len(Buffer::Input, len, input.len())?;
    Ok(len)
}

/// Length of the forward output / upstream gradient: `per_element` for `None`, else 1.
pub(crate) const fn reduced_len(reduction: Reduction, per_element: usize) -> usize {
    match reduction {
        Reduction::None => per_element,
        Reduction::Mean | Reduction::Sum => 1,
    }
}

/// `ln(1 + x)`, accurate for small `x` (libm's `log1pf`; `ln(1 + x)` with `micromath`).
#[inline(always)]
pub(crate) fn log1p(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    {
        crate::math::ln(1.0 + x)
    }
    #[cfg(not(feature = "micromath"))]
    {
        libm::log1pf(x)
    }
}

/// Elementwise loss plumbing shared by L1, MSE, BCE and BCE-with-logits.
///
/// `f(i, x, t)` is the loss of element `i`, `df(i, x, t)` its derivative with respect to `x`.
pub(crate) mod elementwise {
    use super::*;

    /// Checks the lengths of `input` and `target`; returns the element count.
    pub(crate) fn check(input: &[f32], n: usize, sample: Shape, target: &[f32]) -> Result<usize> {
        let len = check_input(input, n, sample)?;
        check_len(Buffer::Target, len, target.len())?;
        Ok(len)
    }

    /// Writes the per-element losses (`None`) or their reduction (`out[0]`).
    pub(crate) fn forward(
        reduction: Reduction,
        input: &[f32],
        target: &[f32],
        out: &mut [f32],
        f: impl Fn(usize, f32, f32) -> f32,
    ) -> Result<()> {
        let len = input.len();
        check_len(Buffer::Output, reduced_len(reduction, len), out.len())?;
        match reduction {
            Reduction::None => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = f(i, input[i], target[i]);
                }
            }
            Reduction::Mean | Reduction::Sum => out[0] = reduce(reduction, input, target, f),
        }
        Ok(())
    }

    /// The reduced loss (`None` reduces by summing).
    pub(crate) fn reduce(
        reduction: Reduction,
        input: &[f32],
        target: &[f32],
        f: impl Fn(usize, f32, f32) -> f32,
    ) -> f32 {
        let mut sum = 0.0f32;
        for (i, (&x, &t)) in input.iter().zip(target).enumerate() {
            sum += f(i, x, t);
        }
        match reduction {
            Reduction::Mean => sum / input.len() as f32,
            Reduction::None | Reduction::Sum => sum,
        }
    }

    /// Overwrites `grad_in` with `df` times the upstream gradient `grad_out` (len 1 or per
    /// element); `Mean` divides by the element count.
    pub(crate) fn backward(
        reduction: Reduction,
        input: &[f32],
        target: &[f32],
        grad_out: &[f32],
        grad_in: &mut [f32],
        df: impl Fn(usize, f32, f32) -> f32,
    ) -> Result<()> {
        let len = input.len();
        check_len(Buffer::Gradient, reduced_len(reduction, len), grad_out.len())?;
        check_len(Buffer::Gradient, len, grad_in.len())?;
        match reduction {
            Reduction::None => {
                for (i, g) in grad_in.iter_mut().enumerate() {
                    *g = grad_out[i] * df(i, input[i], target[i]);
                }
            }
            Reduction::Mean | Reduction::Sum => {
                let scale = match reduction {
                    Reduction::Mean => grad_out[0] / len as f32,
                    _ => grad_out[0],
                };
                for (i, g) in grad_in.iter_mut().enumerate() {
                    *g = scale * df(i, input[i], target[i]);
                }
            }
        }
        Ok(())
    }

    /// [`Loss::loss_and_grad`] for an elementwise loss.
    pub(crate) fn loss_and_grad(
        reduction: Reduction,
        input: &[f32],
        target: &[f32],
        grad: &mut [f32],
        f: impl Fn(usize, f32, f32) -> f32,
        df: impl Fn(usize, f32, f32) -> f32,
    ) -> Result<f32> {
        let len = input.len();
        check_len(Buffer::Gradient, len, grad.len())?;
        let scale = match reduction {
            Reduction::Mean => 1.0 / len as f32,
            Reduction::None | Reduction::Sum => 1.0,
        };
        for (i, g) in grad.iter_mut().enumerate() {
            *g = scale * df(i, input[i], target[i]);
        }
        Ok(reduce(reduction, input, target, f))
    }
}

/// Geometry and target checks shared by the class losses (cross-entropy and NLL).
pub(crate) mod classes {
    use super::*;

    /// `[N, C, S]` view of a class-loss input: `S` is the product of the spatial dims.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Geom {
        pub n: usize,
        pub c: usize,
        pub s: usize,
    }

    impl Geom {
        /// Index of class `k` at position `pos` (`pos = n * S + s`, the target's index).
        #[inline(always)]
        pub fn at(&self, pos: usize, k: usize) -> usize {
            let (ni, si) = (pos / self.s, pos % self.s);
            (ni * self.c + k) * self.s + si
        }
        /// Number of positions `N * S` (the target's length).
        pub fn positions(&self) -> usize {
            self.n * self.s
        }
    }

    /// Validates input, weight and target; returns the geometry and the 'mean' denominator:
    /// the sum of `weight[target]` over the non-ignored positions (their count without
    /// weights).
    pub(crate) fn check(
        input: &[f32],
        n: usize,
        sample: Shape,
        target: &[u32],
        weight: Option<&[f32]>,
        ignore_index: Option<u32>,
    ) -> Result<(Geom, f32)> {
        check_input(input, n, sample)?;
        let c = sample.channels();
        let s: usize = sample.dims()[1..].iter().product();
        let geom = Geom { n, c, s };
        if let Some(w) = weight {
            check_len(Buffer::Weight, c, w.len())?;
        }
        check_len(Buffer::Target, geom.positions(), target.len())?;
        let mut total = 0.0f32;
        for (index, &y) in target.iter().enumerate() {
            if Some(y) == ignore_index {
                continue;
            }
            let label = y as usize;
            if label >= c {
                return Err(Error::LabelOutOfRange {
                    index,
                    label,
                    classes: c,
                });
            }
            total += weight.map_or(1.0, |w| w[label]);
        }
        Ok((geom, total))
    }

    /// The reduced value of a sum of per-position losses: divided by `total` for 'mean'.
    pub(crate) fn finish(reduction: Reduction, sum: f32, total: f32) -> f32 {
        match reduction {
            Reduction::Mean => sum / total,
            Reduction::None | Reduction::Sum => sum,
        }
    }

    /// The upstream gradient of position `pos`: `grad_out[pos]` for 'none', `grad_out[0]`
    /// (divided by `total` for 'mean') otherwise. `grad_out` has been length-checked.
    #[inline(always)]
    pub(crate) fn upstream(reduction: Reduction, grad_out: &[f32], total: f32, pos: usize) -> f32 {
        match reduction {
            Reduction::None => grad_out[pos],
            Reduction::Mean => grad_out[0] / total,
            Reduction::Sum => grad_out[0],
        }
    }
}
