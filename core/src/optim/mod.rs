//! Optimisers and learning-rate schedules with PyTorch's exact update rules.
//!
//! An optimiser updates a flat parameter slice from a gradient slice of the same length, as
//! `torch.optim` does per parameter tensor. Its state (momentum buffers, Adam's moments) lives
//! in a **caller-owned** slice of [`Optimizer::state_len`] floats, so it can be a `static`, be
//! saved in a checkpoint next to the parameters, and never needs a heap. The step count
//! ([`Optimizer::steps`]) is the only state inside the optimiser value; restore it with
//! [`Optimizer::set_steps`] when resuming from a checkpoint.
//!
//! - [`Sgd`]: `torch.optim.SGD` with momentum, dampening, Nesterov and (coupled) weight decay;
//! - [`Adam`]: `torch.optim.Adam`, AMSGrad, and `torch.optim.AdamW` ([`Adam::adamw`]);
//! - [`LrScheduler`]s ([`StepLr`], [`CosineAnnealingLr`]) give the learning rate of an epoch
//!   in closed form; call [`Optimizer::set_lr`] with it at the start of each epoch.
//!
//! Hyper-parameters are public fields (PyTorch's names and defaults) and are validated at each
//! [`Optimizer::step`] with PyTorch's rules, so an invalid value is an [`Error`], not a panic.
//!
//! ```
//! use torchlet::optim::{zero_grad, Optimizer, Sgd};
//! let mut sgd = Sgd::new(0.1).momentum(0.9);
//! let mut params = [1.0f32, -2.0];
//! let mut grads = [0.5f32, 0.25];
//! let mut state = [0.0f32; 2]; // sgd.state_len(2)
//! sgd.step(&mut params, &grads, &mut state)?;
//! assert_eq!(params, [0.95, -2.025]);
//! zero_grad(&mut grads);
//! # Ok::<(), torchlet::Error>(())
//! ```

mod adam;
mod scheduler;
mod sgd;

pub use adam::Adam;
pub use scheduler::{CosineAnnealingLr, LrScheduler, StepLr};
pub use sgd::Sgd;

use crate::error::check_len;
use crate::{Buffer, Error, Result};

/// A first-order optimiser over a flat parameter slice with caller-owned state.
pub trait Optimizer {
    /// Floats of optimizer state needed for `n_params` parameters (0 for plain SGD).
    fn state_len(&self, n_params: usize) -> usize;
    /// One update of params from grads (same length), using/updating `state` (len state_len).
    ///
    /// The state must be zeros before the first step (any values work for SGD, whose first
    /// step overwrites its momentum buffer). Hyper-parameters and lengths are checked first;
    /// on error nothing is modified.
    fn step(&mut self, params: &mut [f32], grads: &[f32], state: &mut [f32]) -> Result<()>;
    /// The learning rate.
    fn lr(&self) -> f32;
    /// Sets the learning rate (for example from an [`LrScheduler`]).
    fn set_lr(&mut self, lr: f32);
    /// Number of steps taken (saved in checkpoints) and restoring it.
    fn steps(&self) -> u64;
    /// Restores the number of steps taken (from a checkpoint, together with the state).
    fn set_steps(&mut self, steps: u64);
}

/// Sets every gradient to zero, as `optimizer.zero_grad(set_to_none=False)`: backward kernels
/// accumulate into gradients, so call this before each backward pass.
pub fn zero_grad(grads: &mut [f32]) {
    grads.fill(0.0);
}

/// Checks the lengths of `grads` (as `params`) and `state` (as `state_len`).
pub(crate) fn check_lengths(params: &[f32], grads: &[f32], state: &[f32], state_len: usize) -> Result<()> {
    check_len(Buffer::Grads, params.len(), grads.len())?;
    check_len(Buffer::OptimizerState, state_len, state.len())
}

/// PyTorch's `lr` check (plus finiteness): `0 <= lr < inf`.
pub(crate) fn check_lr(lr: f32) -> Result<()> {
    if lr >= 0.0 && lr.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "lr",
            expected: "must be finite and >= 0",
        })
    }
}

/// A hyper-parameter that must be `>= 0` (false for NaN).
pub(crate) fn check_non_negative(name: &'static str, value: f32) -> Result<()> {
    if value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            expected: "must be >= 0",
        })
    }
}
