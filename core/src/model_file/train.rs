//! The training state of a checkpoint: epoch, step, RNG, best metric and the optimizer.
//!
//! A checkpoint ([`super::encode`] with `train`) stores this record and the optimizer's state
//! buffer (momentum, Adam's moments), so a run resumes exactly: restore the parameters, the
//! state, the optimizer (with [`OptimizerRecord::sgd`] or [`OptimizerRecord::adam`], then
//! `set_steps(optimizer_steps)`), its state buffer, and the network's RNG.

use serde::{Deserialize, Serialize};

use crate::optim::{Adam, Sgd};

/// The optimizer of a checkpoint and its hyper-parameters, as `torch.optim`'s
/// `param_groups` (one group).
///
/// Variant and field order are part of the file format: new variants and fields are only ever
/// appended, in a new format version.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptimizerRecord {
    /// No optimizer state (inference files, or an optimizer torchlet does not save).
    None,
    /// `torch.optim.SGD`; state `optimizer.momentum_buffer` when `momentum != 0`.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor.
        momentum: f32,
        /// Dampening.
        dampening: f32,
        /// Weight decay.
        weight_decay: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `torch.optim.Adam` / `AdamW`; state `optimizer.exp_avg`, `optimizer.exp_avg_sq` and,
    /// with AMSGrad, `optimizer.max_exp_avg_sq`.
    Adam {
        /// Learning rate.
        lr: f32,
        /// `betas[0]`.
        beta1: f32,
        /// `betas[1]`.
        beta2: f32,
        /// `eps`.
        eps: f32,
        /// Weight decay.
        weight_decay: f32,
        /// AMSGrad.
        amsgrad: bool,
        /// Decoupled weight decay (AdamW).
        decoupled_weight_decay: bool,
    },
}

impl OptimizerRecord {
    /// The names of the optimizer's state tensors, in the order of its state buffer (each
    /// `[param_len]` floats; the file names them `optimizer.{name}`).
    pub fn state_names(&self) -> &'static [&'static str] {
        match *self {
            OptimizerRecord::None => &[],
            OptimizerRecord::Sgd { momentum, .. } => {
                if momentum != 0.0 {
                    &["momentum_buffer"]
                } else {
                    &[]
                }
            }
            OptimizerRecord::Adam { amsgrad: false, .. } => &["exp_avg", "exp_avg_sq"],
            OptimizerRecord::Adam { amsgrad: true, .. } => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
        }
    }

    /// Floats of optimizer state for `param_len` parameters (as [`crate::optim::Optimizer::state_len`]);
    /// `None` on overflow.
    pub fn state_len(&self, param_len: usize) -> Option<usize> {
        self.state_names().len().checked_mul(param_len)
    }

    /// The SGD optimizer this record describes (its step count is in
    /// [`TrainState::optimizer_steps`]).
    pub fn sgd(&self) -> Option<Sgd> {
        match *self {
            OptimizerRecord::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            } => Some(
                Sgd::new(lr)
                    .momentum(momentum)
                    .dampening(dampening)
                    .weight_decay(weight_decay)
                    .nesterov(nesterov),
            ),
            _ => None,
        }
    }

    /// The Adam optimizer this record describes.
    pub fn adam(&self) -> Option<Adam> {
        match *self {
            OptimizerRecord::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                amsgrad,
                decoupled_weight_decay,
            } => Some(
                Adam::new(lr)
                    .betas(beta1, beta2)
                    .eps(eps)
                    .weight_decay(weight_decay)
                    .amsgrad(amsgrad)
                    .decoupled_weight_decay(decoupled_weight_decay),
            ),
            _ => None,
        }
    }
}

impl From<&Sgd> for OptimizerRecord {
    fn from(s: &Sgd) -> Self {
        OptimizerRecord::Sgd {
            lr: s.lr,
            momentum: s.momentum,
            dampening: s.dampening,
            weight_decay: s.weight_decay,
            nesterov: s.nesterov,
        }
    }
}

impl From<&Adam> for OptimizerRecord {
    fn from(a: &Adam) -> Self {
        OptimizerRecord::Adam {
            lr: a.lr,
            beta1: a.betas.0,
            beta2: a.betas.1,
            eps: a.eps,
            weight_decay: a.weight_decay,
            amsgrad: a.amsgrad,
            decoupled_weight_decay: a.decoupled_weight_decay,
        }
    }
}

/// Where a training run stands: saved in checkpoints to resume it exactly.
///
/// Field order is part of the file format (fields are only ever appended).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: u32,
    /// Optimisation steps (batches) completed.
    pub step: u64,
    /// The network's RNG ([`crate::Rng::state`]).
    pub rng: (u64, u64),
    /// The best validation metric so far (NaN: none yet).
    pub best_metric: f32,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerRecord,
    /// The optimizer's step count ([`crate::optim::Optimizer::steps`]; Adam's bias correction needs it).
    pub optimizer_steps: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;

    #[test]
    fn records_round_trip_optimizers() {
        let s = Sgd::new(0.1).momentum(0.9).nesterov(true);
        let r = OptimizerRecord::from(&s);
        assert_eq!(r.sgd(), Some(s));
        assert_eq!(r.state_len(10), Some(s.state_len(10)));
        let a = Adam::adamw(1e-3).amsgrad(true);
        let r = OptimizerRecord::from(&a);
        assert_eq!(r.adam(), Some(a));
        assert_eq!(r.state_len(7), Some(a.state_len(7)));
        assert_eq!(OptimizerRecord::from(&Sgd::new(0.1)).state_len(5), Some(0));
    }
}
