//! The optimiser of a run, whichever `--optimizer` picked ([`RunOptimizer`]), the learning rate
//! each epoch starts with ([`scheduled_lr`]), and where a run starts ([`Start`]: from scratch,
//! or from a checkpoint's weights, optimiser state, counters and RNG for an exact resume).

use torchlet::optim::{Adam, CosineAnnealingLr, LrScheduler, Optimizer, Sgd, StepLr};
use torchlet::Rng;
use torchlet_gpu::GpuOptimizer;

use super::error::TrainError;
use super::parallel::HostNetwork;
use super::{OptimizerKind, SchedulerKind, TrainConfig};
use crate::model::{Checkpoint, Model};

/// The optimizer of a run, whichever kind it is (enum dispatch: the core's optimisers are
/// generic parameters of `Network::step` and of [`Checkpoint::new`]).
pub(crate) enum RunOptimizer {
    Sgd(Sgd),
    Adam(Adam),
}

impl RunOptimizer {
    /// A fresh optimizer as `cfg` asks.
    pub(crate) fn new(cfg: &TrainConfig) -> RunOptimizer {
        RunOptimizer::from_parts(cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    }

    /// A fresh optimizer of `kind` with these hyper-parameters (`momentum` and `nesterov` are
    /// SGD's).
    fn from_parts(kind: OptimizerKind, lr: f32, momentum: f32, weight_decay: f32, nesterov: bool) -> RunOptimizer {
        match kind {
            OptimizerKind::Sgd => RunOptimizer::Sgd(
                Sgd::new(lr)
                    .momentum(momentum)
                    .weight_decay(weight_decay)
                    .nesterov(nesterov),
            ),
            OptimizerKind::Adam => RunOptimizer::Adam(Adam::new(lr).weight_decay(weight_decay)),
            OptimizerKind::AdamW => RunOptimizer::Adam(Adam::adamw(lr).weight_decay(weight_decay)),
        }
    }

    /// The optimizer a checkpoint saved, with its step count, if it is of `kind`.
    ///
    /// # Errors
    /// [`TrainError::OptimizerMismatch`] for a checkpoint of another optimizer.
    fn resumed(kind: OptimizerKind, ckpt: &Checkpoint) -> Result<RunOptimizer, TrainError> {
        let saved = &ckpt.train.optimizer;
        let mut opt = match (kind, saved.sgd(), saved.adam()) {
            (OptimizerKind::Sgd, Some(o), _) => RunOptimizer::Sgd(o),
            (OptimizerKind::Adam, _, Some(o)) if !o.decoupled_weight_decay => RunOptimizer::Adam(o),
            (OptimizerKind::AdamW, _, Some(o)) if o.decoupled_weight_decay => RunOptimizer::Adam(o),
            _ => return Err(TrainError::OptimizerMismatch),
        };
        let steps = ckpt.train.optimizer_steps;
        match &mut opt {
            RunOptimizer::Sgd(o) => o.set_steps(steps),
            RunOptimizer::Adam(o) => o.set_steps(steps),
        }
        Ok(opt)
    }

    /// The length of the state buffer for `n` parameters.
    pub(crate) fn state_len(&self, n: usize) -> usize {
        match self {
            RunOptimizer::Sgd(o) => o.state_len(n),
            RunOptimizer::Adam(o) => o.state_len(n),
        }
    }

    /// Sets the learning rate (at the start of an epoch).
    pub(crate) fn set_lr(&mut self, lr: f32) {
        match self {
            RunOptimizer::Sgd(o) => o.set_lr(lr),
            RunOptimizer::Adam(o) => o.set_lr(lr),
        }
    }

    /// `optimizer.step()`: updates `net`'s parameters from its gradients (and `state`).
    ///
    /// # Errors
    /// The network's.
    pub(crate) fn optimizer_step(&mut self, net: &mut HostNetwork<'_>, state: &mut [f32]) -> torchlet::Result<()> {
        match self {
            RunOptimizer::Sgd(o) => net.step(o, state),
            RunOptimizer::Adam(o) => net.step(o, state),
        }
    }

    /// The optimizer as a GPU training step takes it (its state stays on the GPU).
    pub(crate) fn as_gpu(&mut self) -> GpuOptimizer<'_> {
        match self {
            RunOptimizer::Sgd(o) => GpuOptimizer::Sgd(o),
            RunOptimizer::Adam(o) => GpuOptimizer::Adam(o),
        }
    }

    /// A checkpoint of `model` with this optimizer and its `state`.
    pub(crate) fn checkpoint(&self, model: Model, state: &[f32], epoch: u32, step: u64, rng: Rng) -> Checkpoint {
        match self {
            RunOptimizer::Sgd(o) => Checkpoint::new(model, o, state, epoch, step, rng),
            RunOptimizer::Adam(o) => Checkpoint::new(model, o, state, epoch, step, rng),
        }
    }
}

/// Checks the hyper-parameters of an optimizer of `kind` as its first step would (the core's
/// rules, PyTorch's), so that a run with one it refuses stops before it writes or removes
/// anything; the error names the flag (`--lr -1: lr must be finite and >= 0`).
///
/// # Errors
/// [`TrainError::HyperParameter`].
pub fn check_hyper_parameters(
    kind: OptimizerKind,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: bool,
) -> Result<(), TrainError> {
    let checked = match RunOptimizer::from_parts(kind, lr, momentum, weight_decay, nesterov) {
        // A step over no parameters runs exactly the optimiser's checks.
        RunOptimizer::Sgd(mut o) => o.step(&mut [], &[], &mut []),
        RunOptimizer::Adam(mut o) => o.step(&mut [], &[], &mut []),
    };
    let Err(error) = checked else { return Ok(()) };
    let flag = match &error {
        torchlet::Error::InvalidArgument { name: "lr", .. } => format!("--lr {lr}"),
        torchlet::Error::InvalidArgument { name: "momentum", .. } => format!("--momentum {momentum}"),
        torchlet::Error::InvalidArgument {
            name: "weight_decay", ..
        } => format!("--weight-decay {weight_decay}"),
        torchlet::Error::InvalidArgument { name: "nesterov", .. } => format!("--nesterov with --momentum {momentum}"),
        _ => format!("--optimizer {}", kind.name()),
    };
    Err(TrainError::HyperParameter { flag, error })
}

/// The learning rate of `epoch` (from 0) under `cfg.scheduler`.
pub(crate) fn scheduled_lr(cfg: &TrainConfig, epoch: usize) -> f32 {
    match cfg.scheduler {
        SchedulerKind::None => cfg.lr,
        SchedulerKind::Step => StepLr::new((cfg.epochs / 3).max(1)).lr_at(cfg.lr, epoch),
        SchedulerKind::Cosine => CosineAnnealingLr::new(cfg.epochs).lr_at(cfg.lr, epoch),
    }
}

/// How far a run had come: where a resumed run continues.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Position {
    /// The first epoch to run, from 0.
    pub(crate) epoch: usize,
    /// Training steps already taken.
    pub(crate) step: u64,
    /// The best held-out accuracy so far (`-inf`: none yet).
    pub(crate) best: f64,
}

/// Where a run starts: the optimizer with its state, the network's RNG, the position.
pub(crate) struct Start {
    pub(crate) optimizer: RunOptimizer,
    pub(crate) optimizer_state: Vec<f32>,
    pub(crate) rng: Rng,
    pub(crate) position: Position,
}

impl Start {
    /// A fresh start for `model`, or `resume`'s state, whose model then replaces `model`.
    ///
    /// # Errors
    /// A checkpoint of another architecture or optimizer.
    pub(crate) fn new(cfg: &TrainConfig, model: &mut Model, resume: Option<Checkpoint>) -> Result<Start, TrainError> {
        let optimizer = RunOptimizer::new(cfg);
        let Some(ckpt) = resume else {
            return Ok(Start {
                optimizer_state: vec![0.0; optimizer.state_len(model.params.len())],
                optimizer,
                rng: Rng::new(cfg.seed),
                position: Position {
                    epoch: 0,
                    step: 0,
                    best: f64::NEG_INFINITY,
                },
            });
        };
        if ckpt.model.layers() != model.layers() || ckpt.model.input != model.input {
            return Err(TrainError::ArchitectureMismatch);
        }
        *model = ckpt.model.clone();
        let best = ckpt.train.best_metric;
        Ok(Start {
            optimizer: RunOptimizer::resumed(cfg.optimizer, &ckpt)?,
            optimizer_state: ckpt.optimizer_state.clone(),
            rng: ckpt.rng(),
            position: Position {
                epoch: ckpt.train.epoch as usize,
                step: ckpt.train.step,
                best: if best.is_finite() {
                    f64::from(best)
                } else {
                    f64::NEG_INFINITY
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_hyper_parameters_name_their_flag() {
        let check = |kind, lr, m, wd, nesterov| {
            check_hyper_parameters(kind, lr, m, wd, nesterov)
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(check(OptimizerKind::Sgd, 0.05, 0.9, 0.0, true), None);
        assert_eq!(
            check(OptimizerKind::Adam, 0.0, -1.0, 0.0, false),
            None,
            "Adam has no momentum"
        );
        assert_eq!(
            check(OptimizerKind::Sgd, -1.0, 0.9, 0.0, false).unwrap(),
            "--lr -1: lr must be finite and >= 0"
        );
        assert_eq!(
            check(OptimizerKind::AdamW, f32::NAN, 0.9, 0.0, false).unwrap(),
            "--lr NaN: lr must be finite and >= 0"
        );
        assert_eq!(
            check(OptimizerKind::Sgd, 0.1, f32::NAN, 0.0, false).unwrap(),
            "--momentum NaN: momentum must be >= 0"
        );
        assert_eq!(
            check(OptimizerKind::Adam, 0.1, 0.9, -1.0, false).unwrap(),
            "--weight-decay -1: weight_decay must be >= 0"
        );
        assert!(check(OptimizerKind::Sgd, 0.1, 0.0, 0.0, true)
            .unwrap()
            .starts_with("--nesterov with --momentum 0: nesterov"));
    }
}
