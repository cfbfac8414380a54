//! `torch.optim.Adam` and `torch.optim.AdamW`: adaptive moments, with AMSGrad and coupled or
//! decoupled weight decay.
//!
//! The update of each parameter `θ` with gradient `g` at step `t = 1, 2, ...`, from PyTorch's
//! documentation (<https://pytorch.org/docs/stable/generated/torch.optim.Adam.html>,
//! <https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html>), with `γ` the learning
//! rate and `λ` the weight decay:
//!
//! ```text
//! θ ← θ (1 − γ λ)                    decoupled (AdamW)
//! g ← g + λ θ                        coupled (Adam)
//! m ← β1 m + (1 − β1) g
//! v ← β2 v + (1 − β2) g²
//! v_max ← max(v_max, v)              amsgrad (then v_max replaces v below)
//! θ ← θ − (γ / (1 − β1^t)) m / (√v / √(1 − β2^t) + ε)
//! ```
//!
//! The bias corrections are computed in `f64` once per step, as PyTorch does in Python.
//! State: `[m | v]`, or `[m | v | v_max]` with AMSGrad; zeros before the first step.

use super::{check_lengths, check_lr, check_non_negative, Optimizer};
use crate::{math, Error, Result};

/// `torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
/// amsgrad=False, decoupled_weight_decay=False)`; [`Adam::adamw`] gives `torch.optim.AdamW`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Adam {
    /// Learning rate `γ` (PyTorch's default 1e-3).
    pub lr: f32,
    /// Decay rates `(β1, β2)` of the first and second moments (default `(0.9, 0.999)`).
    pub betas: (f32, f32),
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f32,
    /// Weight decay `λ` (default 0; AdamW's default 0.01).
    pub weight_decay: f32,
    /// Use the maximum of past second moments (AMSGrad; default false).
    pub amsgrad: bool,
    /// Decay the weights directly instead of adding `λ θ` to the gradient (AdamW; default
    /// false).
    pub decoupled_weight_decay: bool,
    /// Steps taken.
    steps: u64,
}

impl Default for Adam {
    /// `torch.optim.Adam`'s defaults, `lr = 1e-3`.
    fn default() -> Self {
        Adam::new(1e-3)
    }
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults otherwise.
    pub const fn new(lr: f32) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
            steps: 0,
        }
    }

    /// `torch.optim.AdamW(lr)` defaults: decoupled weight decay of 0.01.
    pub const fn adamw(lr: f32) -> Self {
        Adam::new(lr).weight_decay(0.01).decoupled_weight_decay(true)
    }

    /// Sets `betas`.
    pub const fn betas(mut self, beta1: f32, beta2: f32) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Sets `eps`.
    pub const fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// Sets `weight_decay`.
    pub const fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Sets `amsgrad`.
    pub const fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Sets `decoupled_weight_decay` (true for AdamW).
    pub const fn decoupled_weight_decay(mut self, decoupled: bool) -> Self {
        self.decoupled_weight_decay = decoupled;
        self
    }

    /// PyTorch's constructor checks.
    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_non_negative("eps", self.eps)?;
        let beta = |name, b: f32| {
            if (0.0..1.0).contains(&b) {
                Ok(())
            } else {
                Err(Error::InvalidArgument {
                    name,
                    expected: "must be in [0, 1)",
                })
            }
        };
        beta("betas[0]", self.betas.0)?;
        beta("betas[1]", self.betas.1)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

impl Optimizer for Adam {
    fn state_len(&self, n_params: usize) -> usize {
        if self.amsgrad {
            3 * n_params
        } else {
            2 * n_params
        }
    }

    fn step(&mut self, params: &mut [f32], grads: &[f32], state: &mut [f32]) -> Result<()> {
        self.validate()?;
        let n = params.len();
        check_lengths(params, grads, state, self.state_len(n))?;
        let (beta1, beta2) = self.betas;
        let (lr, eps, wd) = (self.lr, self.eps, self.weight_decay);

        // Per-step scalars in f64, as PyTorch computes them in Python.
        let t = self.steps.saturating_add(1) as f64;
        let bias_correction1 = 1.0 - libm::pow(beta1 as f64, t);
        let bias_correction2 = 1.0 - libm::pow(beta2 as f64, t);
        let step_size = (lr as f64 / bias_correction1) as f32;
        let bias_correction2_sqrt = libm::sqrt(bias_correction2) as f32;
        let decay = (1.0 - lr as f64 * wd as f64) as f32;

        let (m, rest) = state.split_at_mut(n);
        let (v, v_max) = rest.split_at_mut(n);
        for i in 0..n {
            let mut g = grads[i];
            if wd != 0.0 {
                if self.decoupled_weight_decay {
                    params[i] *= decay;
                } else {
                    g += wd * params[i];
                }
            }
            m[i] += (g - m[i]) * (1.0 - beta1);
            v[i] = v[i] * beta2 + (1.0 - beta2) * g * g;
            let second = if self.amsgrad {
                v_max[i] = v_max[i].max(v[i]);
                v_max[i]
            } else {
                v[i]
            };
            let denom = math::sqrt(second) / bias_correction2_sqrt + eps;
            params[i] -= step_size * m[i] / denom;
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
