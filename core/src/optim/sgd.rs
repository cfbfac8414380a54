//! `torch.optim.SGD`: stochastic gradient descent with momentum, dampening, Nesterov momentum
//! and weight decay.
//!
//! The update of each parameter `θ` with gradient `g`, from PyTorch's documentation
//! (<https://pytorch.org/docs/stable/generated/torch.optim.SGD.html>), with `λ` the weight
//! decay, `μ` the momentum, `τ` the dampening and `γ` the learning rate:
//!
//! ```text
//! g ← g + λ θ                        if λ ≠ 0
//! b ← g                              on the first step, if μ ≠ 0
//! b ← μ b + (1 − τ) g                on later steps
//! g ← g + μ b  (nesterov)  or  g ← b
//! θ ← θ − γ g
//! ```
//!
//! State: the momentum buffer `b`, one float per parameter when `μ ≠ 0`, none otherwise.

use super::{check_lengths, check_lr, check_non_negative, Optimizer};
use crate::{Error, Result};

/// `torch.optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sgd {
    /// Learning rate `γ`.
    pub lr: f32,
    /// Momentum factor `μ` (default 0: no momentum buffer).
    pub momentum: f32,
    /// Dampening `τ` of the momentum (default 0).
    pub dampening: f32,
    /// Weight decay `λ` (L2 penalty added to the gradient; default 0).
    pub weight_decay: f32,
    /// Nesterov momentum (default false; needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// Steps taken.
    steps: u64,
}

impl Sgd {
    /// SGD with learning rate `lr` and PyTorch's defaults otherwise.
    pub const fn new(lr: f32) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            steps: 0,
        }
    }

    /// Sets `momentum`.
    pub const fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets `dampening`.
    pub const fn dampening(mut self, dampening: f32) -> Self {
        self.dampening = dampening;
        self
    }

    /// Sets `weight_decay`.
    pub const fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Sets `nesterov`.
    pub const fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// PyTorch's constructor checks.
    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_non_negative("momentum", self.momentum)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(Error::InvalidArgument {
                name: "dampening",
                expected: "must be finite",
            });
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::InvalidArgument {
                name: "nesterov",
                expected: "momentum requires a momentum and zero dampening",
            });
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn state_len(&self, n_params: usize) -> usize {
        if self.momentum != 0.0 {
            n_params
        } else {
            0
        }
    }

    fn step(&mut self, params: &mut [f32], grads: &[f32], state: &mut [f32]) -> Result<()> {
        self.validate()?;
        check_lengths(params, grads, state, self.state_len(params.len()))?;
        let Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            steps,
        } = *self;
        for (i, (p, &g)) in params.iter_mut().zip(grads).enumerate() {
            let mut d = g;
            if weight_decay != 0.0 {
                d += weight_decay * *p;
            }
            if momentum != 0.0 {
                let b = &mut state[i];
                *b = if steps == 0 {
                    d
                } else {
                    momentum * *b + (1.0 - dampening) * d
                };
                d = if nesterov { d + momentum * *b } else { *b };
            }
            *p -= lr * d;
        }
        self.steps += 1;
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
}
