//! Checkpoints: a model, its optimizer's state and where training stands, to resume exactly.
//!
//! PyTorch's recipe saves `{"model": model.state_dict(), "optimizer": optimizer.state_dict(),
//! "epoch": epoch, ...}`; a [`Checkpoint`] is the same in one `.tlm` file: the whole model,
//! the optimizer's hyper-parameters, step count and state buffer (momentum or Adam's moments),
//! the epoch, the step, the network's RNG (Dropout masks) and the best metric
//! ([`TrainState`]). Restoring all of them makes the resumed run bit-for-bit the run that was
//! not interrupted:
//!
//! ```no_run
//! # use torchlet::{optim::{Optimizer, Sgd}, Network, Rng, Mode};
//! # use torchlet_host::model::Checkpoint;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ckpt = Checkpoint::load("runs/ckpt.tlm".as_ref())?;
//! let mut model = ckpt.model.clone();
//! // The plan borrows the model's layers while the network trains its weights in place.
//! let (plan, params, state) = model.plan_weights_mut(32, Mode::Training)?;
//! let mut sgd = ckpt.train.optimizer.sgd().expect("an SGD checkpoint");
//! sgd.set_steps(ckpt.train.optimizer_steps);
//! let mut opt_state = ckpt.optimizer_state.clone();
//! let (mut grads, mut arena) = (vec![0.0; plan.param_len()], vec![0.0; plan.arena_len()]);
//! let mut net = Network::new(&plan, params, &mut grads, state, &mut arena)?;
//! net.set_rng(Rng::from_state(ckpt.train.rng.0, ckpt.train.rng.1));
//! // ... continue from epoch ckpt.train.epoch, step ckpt.train.step
//! # Ok(()) }
//! ```

use std::path::Path;

use torchlet::model_file::{OptimizerRecord, TrainState};
use torchlet::optim::Optimizer;
use torchlet::Rng;

use super::{Model, ModelError};
use crate::fsutil;

/// A model with everything needed to resume training it. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model and its weights.
    pub model: Model,
    /// Epoch, step, RNG, best metric, optimizer hyper-parameters and step count.
    pub train: TrainState,
    /// The optimizer's state buffer (`optimizer.state_len(param_count)` floats).
    pub optimizer_state: Vec<f32>,
}

impl Checkpoint {
    /// A checkpoint of `model` trained by `optimizer` (whose state buffer is
    /// `optimizer_state`), after `epoch` epochs and `step` steps, with the network's `rng`;
    /// no best metric yet (NaN; set `train.best_metric`).
    pub fn new<O>(model: Model, optimizer: &O, optimizer_state: &[f32], epoch: u32, step: u64, rng: Rng) -> Self
    where
        O: Optimizer,
        for<'o> &'o O: Into<OptimizerRecord>,
    {
        let train = TrainState {
            epoch,
            step,
            rng: rng.state(),
            best_metric: f32::NAN,
            optimizer: optimizer.into(),
            optimizer_steps: optimizer.steps(),
        };
        Checkpoint {
            model,
            train,
            optimizer_state: optimizer_state.to_vec(),
        }
    }

    /// The network's RNG as it was saved.
    pub fn rng(&self) -> Rng {
        Rng::from_state(self.train.rng.0, self.train.rng.1)
    }

    /// The checkpoint as `.tlm` bytes (what [`Checkpoint::save`] writes).
    ///
    /// # Errors
    /// As [`Model::to_bytes`], and [`ModelError::Model`] if the optimizer state does not have
    /// the length the optimizer needs for the model's parameters.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        self.model.encode(false, Some((&self.train, &self.optimizer_state)))
    }

    /// Saves the checkpoint to `path`, atomically: an interrupted save leaves the previous
    /// checkpoint intact.
    ///
    /// # Errors
    /// As [`Checkpoint::to_bytes`] and [`Model::save`].
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        Ok(fsutil::write_atomic(path, &bytes)?)
    }

    /// Loads a checkpoint saved with [`Checkpoint::save`].
    ///
    /// # Errors
    /// As [`Model::load`], and [`ModelError::Kind`] for a model file without training state.
    pub fn load(path: &Path) -> Result<Checkpoint, ModelError> {
        Checkpoint::from_bytes(fsutil::read(path)?, path)
    }

    /// [`Checkpoint::load`] from file bytes; `path` names them in errors.
    ///
    /// # Errors
    /// As [`Checkpoint::load`].
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Checkpoint, ModelError> {
        match Model::decode(bytes, path)? {
            (model, Some((train, optimizer_state))) => Ok(Checkpoint {
                model,
                train,
                optimizer_state,
            }),
            (_, None) => Err(ModelError::Kind {
                path: path.to_path_buf(),
                expected: "a checkpoint (a model file with training state)",
                found: "a model file without training state",
            }),
        }
    }
}
