//! Saving and loading models: whole models, state dicts and checkpoints, as `.tlm` files.
//!
//! | PyTorch | torchlet |
//! |---|---|
//! | `torch.save(model, "m.pt")` / `torch.load("m.pt")` | [`Model::save`] / [`Model::load`] |
//! | `torch.save(model.state_dict(), "w.pt")` | [`Model::save_state_dict`] |
//! | `model.load_state_dict(torch.load("w.pt"), strict=True)` | [`Model::load_state_dict`] |
//! | `torch.save({"model": ..., "optimizer": ..., "epoch": ...}, "ckpt.pt")` | [`Checkpoint::save`] |
//!
//! A [`Model`] owns its weights (`Vec<f32>`, laid out as the core's parameter and state
//! buffers) and its architecture ([`Architecture`]: the zoo's `const` layer lists as they are,
//! a tree built at run time in an arena of its own, shared by the model's clones and freed
//! with the last of them). Plans borrow the layers ([`Model::plan`]). Files are the
//! core's model format ([`torchlet::model_file`], specified in `docs/model-format.md`): every
//! load checks the magic, version, lengths and CRC-32, every record, and the file against the
//! plan of its own architecture before a weight is used, and every save is atomic
//! ([`crate::fsutil::write_atomic`]), so a crash never leaves a half-written model behind.
//!
//! Loading a whole model or checkpoint rebuilds its layers from the file and copies them
//! (names included) into the model's architecture; the file's bytes are freed after the load.

mod architecture;
pub mod checkpoint;
mod error;
pub mod state_dict;
pub mod transfer;

use std::path::Path;

pub(crate) use architecture::OwnedPlan;
pub use architecture::{Architecture, WeakArchitecture};
pub use checkpoint::Checkpoint;
pub use error::ModelError;
pub use state_dict::LoadReport;
pub use transfer::TransferReport;

use torchlet::layer::Layer;
use torchlet::model_file::{self, ModelFile, ModelSpec, Role, TrainState};
use torchlet::{Mode, Network, Plan, Shape};

use crate::fsutil;

/// The most computing layers (plan nodes) a host-side model can have.
pub const MAX_NODES: usize = 256;

/// The plan type of host-side models; it borrows the model's layers for `'l`.
pub type HostPlan<'l> = Plan<'l, MAX_NODES>;

/// What [`Model::plan_weights_mut`] lends: the plan (borrowing the layers), the parameters
/// and the state (borrowed mutably).
pub type PlanWeightsMut<'m> = (Box<HostPlan<'m>>, &'m mut [f32], &'m mut [f32]);

/// A checkpoint's training state and optimizer state buffer.
pub(crate) type Training = (TrainState, Vec<f32>);

/// A model in memory: architecture, class names and weights. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The model's name (stored in the file; zoo models carry their zoo name).
    pub name: String,
    /// The architecture, as an `nn.Sequential` of layers ([`Model::layers`]).
    pub(crate) architecture: Architecture,
    /// The shape of one input sample.
    pub input: Shape,
    /// The label of each output (may be empty).
    pub classes: Vec<String>,
    /// The parameters: `plan.param_len()` floats, each layer's weight then bias.
    pub params: Vec<f32>,
    /// The non-trainable state (BatchNorm running statistics): `plan.state_len()` floats.
    pub state: Vec<f32>,
    /// How the training run that produced the model was configured: the file's run record
    /// (`torchlet train` writes a JSON object, [`crate::cli::run_record::RunRecord`]); `None`
    /// for a model no run has trained yet. Saved with the model, not with a state dict.
    pub run: Option<String>,
}

impl Model {
    /// A model with PyTorch's default initialisation from `seed` ([`Network::init_params`]).
    ///
    /// `architecture` is a `'static` layer list (`&LAYERS` for a `const` or `static`, used as
    /// it is) or an [`Architecture`] (for layers built at run time,
    /// [`Architecture::copy_of`]).
    ///
    /// # Errors
    /// [`ModelError::Model`] if the layers do not plan for `input`.
    pub fn new(
        name: &str,
        architecture: impl Into<Architecture>,
        input: Shape,
        classes: &[&str],
        seed: u64,
    ) -> Result<Model, ModelError> {
        let architecture = architecture.into();
        let err = |error| ModelError::Model {
            model: name.to_string(),
            error,
        };
        let memory = |error| ModelError::Memory {
            model: name.to_string(),
            error,
        };
        let hint = "try a smaller model or --num-classes";
        let (params, state) = {
            let plan = HostPlan::try_new(architecture.layers(), input, 1, Mode::Inference)
                .map(Box::new)
                .map_err(err)?;
            let mut params = crate::mem::zeros_for(plan.param_len(), "its parameter buffer", hint).map_err(memory)?;
            let mut state =
                crate::mem::zeros_for(plan.state_len(), "its running-statistics buffer", hint).map_err(memory)?;
            let mut arena = crate::mem::zeros_for(plan.arena_len(), "its activation arena", hint).map_err(memory)?;
            Network::new(&plan, &mut params, &mut [], &mut state, &mut arena)
                .and_then(|mut net| net.init_params(seed))
                .map_err(err)?;
            (params, state)
        };
        Ok(Model {
            name: name.to_string(),
            architecture,
            input,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            params,
            state,
            run: None,
        })
    }

    /// The architecture, as an `nn.Sequential` of layers.
    pub fn layers(&self) -> &[Layer<'_>] {
        self.architecture.layers()
    }

    /// The architecture: cloning it is cheap, and it keeps the layers alive without the
    /// weights (for plans held next to `&mut model.params`).
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// Plans the model for batches of up to `batch` samples (boxed: a plan of [`MAX_NODES`]
    /// nodes is large). The plan borrows the model's layers.
    ///
    /// # Errors
    /// [`ModelError::Model`] with the planner's error (a zero batch, a layer that does not fit).
    pub fn plan(&self, batch: usize, mode: Mode) -> Result<Box<HostPlan<'_>>, ModelError> {
        HostPlan::try_new(self.layers(), self.input, batch, mode)
            .map(Box::new)
            .map_err(|e| self.error(e))
    }

    /// [`Model::plan`] as an [`OwnedPlan`], which holds a clone of the architecture instead of
    /// borrowing the model (for plans kept in a struct next to the model's weights).
    ///
    /// # Errors
    /// As [`Model::plan`].
    pub(crate) fn owned_plan(&self, batch: usize, mode: Mode) -> Result<OwnedPlan, ModelError> {
        OwnedPlan::try_new(self.architecture.clone(), |a| {
            HostPlan::try_new(a.layers(), self.input, batch, mode).map(Box::new)
        })
        .map_err(|e| self.error(e))
    }

    /// [`Model::plan`] together with the parameters and the state, borrowed mutably: the plan
    /// borrows the layers while a [`Network`] trains the weights in place
    /// (`Network::new(&plan, params, &mut grads, state, &mut arena)`).
    ///
    /// # Errors
    /// As [`Model::plan`].
    pub fn plan_weights_mut(&mut self, batch: usize, mode: Mode) -> Result<PlanWeightsMut<'_>, ModelError> {
        let plan = HostPlan::try_new(self.architecture.layers(), self.input, batch, mode)
            .map(Box::new)
            .map_err(|error| ModelError::Model {
                model: self.name.clone(),
                error,
            })?;
        Ok((plan, &mut self.params, &mut self.state))
    }

    /// Number of parameters (PyTorch's `sum(p.numel() for p in model.parameters())`).
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// The model's output for a batch `x` (`[n, *input]`), in eval mode (`model.eval()`,
    /// `torch.no_grad()`): `[n, *output]`.
    ///
    /// # Errors
    /// [`ModelError::Model`] for an input that is not a whole, non-empty number of samples
    /// or is not finite, or weights of the wrong length.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, ModelError> {
        let n = x.len() / self.input.numel().max(1);
        let plan = self.plan(n.max(1), Mode::Inference)?;
        let mut arena = self.zeros(
            plan.arena_len(),
            "the activation arena of this batch",
            "try fewer inputs at once",
        )?;
        let mut net = Network::with_weights(&plan, &self.params, &self.state, &mut arena).map_err(|e| self.error(e))?;
        net.set_gemm(crate::kernels::best());
        Ok(net.forward(x).map_err(|e| self.error(e))?.to_vec())
    }

    /// The model as an ONNX file with operator set `opset` (see [`crate::onnx`]).
    ///
    /// # Errors
    /// [`crate::onnx::OnnxError`] naming the first layer without an ONNX form, or an opset
    /// out of range.
    pub fn to_onnx(&self, opset: i64) -> Result<Vec<u8>, crate::onnx::OnnxError> {
        crate::onnx::to_onnx(self, opset)
    }

    /// The PyTorch `state_dict` path of each computing layer, in plan order
    /// (`"features.0"`, `"1.body.0"`): `{path}.weight` is the layer's weight.
    ///
    /// # Errors
    /// [`ModelError::Model`] for a model nested deeper than the file format allows.
    pub fn node_paths(&self) -> Result<Vec<String>, ModelError> {
        let mut paths = Vec::new();
        model_file::names::for_each_node(self.layers(), |_, p| {
            paths.push(p.to_string());
            Ok(())
        })
        .map_err(|e| self.error(e))?;
        Ok(paths)
    }

    /// The whole model as `.tlm` bytes (what [`Model::save`] writes).
    ///
    /// # Errors
    /// [`ModelError::Model`] if the model does not plan, its buffers have the wrong length or
    /// a layer name contains a `.`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        self.encode(false, None)
    }

    /// Saves the whole model (architecture, class names, weights) to `path`, atomically
    /// (`torch.save(model, path)`). The extension `.tlm` is customary.
    ///
    /// # Errors
    /// As [`Model::to_bytes`]; [`ModelError::Io`] naming the path if the file cannot be written
    /// (then an existing file at `path` is left as it was).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        Ok(fsutil::write_atomic(path, &bytes)?)
    }

    /// Loads a whole model saved with [`Model::save`] (or a checkpoint, ignoring its training
    /// state).
    ///
    /// # Errors
    /// [`ModelError::Io`] if the file cannot be read; [`ModelError::File`] naming the file
    /// and the failing part for a file that is not a valid model file (truncated, corrupted,
    /// another format); [`ModelError::Kind`] for a state dict (no architecture).
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        Model::from_bytes(fsutil::read(path)?, path)
    }

    /// Reads a whole model from file bytes (what [`Model::load`] does after reading the
    /// file); `path` names them in errors.
    ///
    /// # Errors
    /// As [`Model::load`].
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Model, ModelError> {
        Ok(Model::decode(bytes, path)?.0)
    }

    /// Reads a model and, for a checkpoint, its training state and optimizer state.
    pub(crate) fn decode(bytes: Vec<u8>, path: &Path) -> Result<(Model, Option<Training>), ModelError> {
        let fail = |e| ModelError::file(path, e);
        let file = ModelFile::parse(&bytes).map_err(fail)?;
        if file.is_int8() {
            return Err(ModelError::Kind {
                path: path.to_path_buf(),
                expected: "an f32 model",
                found: "an int8 model (written by `torchlet quantize`: eval, predict and inspect read it)",
            });
        }
        if file.is_state_dict() {
            return Err(ModelError::Kind {
                path: path.to_path_buf(),
                expected: "a whole model (saved with Model::save)",
                found: "a state dict (weights only: load it into a model with Model::load_state_dict)",
            });
        }
        // The layers borrow this storage and their names from the file's bytes; the model keeps
        // a copy of them ([`Architecture::copy_of`]), and both are freed at the end.
        let mut storage = vec![torchlet::layer::identity(); file.layer_count()];
        let layers = file.layers(&mut storage).map_err(fail)?;
        let plan = HostPlan::try_new(layers, file.input_shape(), 1, Mode::Inference).map_err(fail)?;
        file.check_plan(&plan).map_err(fail)?;
        let memory = |error| ModelError::Memory {
            model: path.display().to_string(),
            error,
        };
        let hint = "the file describes a model too large for this machine";
        let mut params = crate::mem::zeros_for(plan.param_len(), "its parameter buffer", hint).map_err(memory)?;
        let mut state =
            crate::mem::zeros_for(plan.state_len(), "its running-statistics buffer", hint).map_err(memory)?;
        // The model must also run: its inference arena at batch 1.
        drop(crate::mem::zeros_for(plan.arena_len(), "its activation arena", hint).map_err(memory)?);
        file.copy_params_into(&mut params).map_err(fail)?;
        file.copy_state_into(&mut state).map_err(fail)?;
        check_finite(&file, path)?;
        let model = Model {
            name: file.name().to_string(),
            architecture: Architecture::copy_of(layers),
            input: file.input_shape(),
            classes: file.class_names().map(str::to_string).collect(),
            params,
            state,
            run: file.run_record().map(str::to_string),
        };
        let train = match file.train_state() {
            Some(t) => {
                let mut opt = vec![0.0; file.optimizer_state_len()];
                file.copy_optimizer_state_into(&mut opt).map_err(fail)?;
                Some((t, opt))
            }
            None => None,
        };
        Ok((model, train))
    }

    /// Encodes the model (or only its state dict), with the training state of a checkpoint
    /// if given.
    pub(crate) fn encode(&self, state_dict: bool, train: Option<(&TrainState, &[f32])>) -> Result<Vec<u8>, ModelError> {
        let plan = self.plan(1, Mode::Inference)?;
        let classes: Vec<&str> = self.classes.iter().map(String::as_str).collect();
        let spec = ModelSpec {
            name: &self.name,
            layers: self.layers(),
            input: self.input,
            classes: &classes,
            run: if state_dict { None } else { self.run.as_deref() },
        };
        let (p, s) = (&self.params[..], &self.state[..]);
        let err = |e| self.error(e);
        let len = if state_dict {
            model_file::encoded_state_dict_len(&spec, &plan, p, s, train)
        } else {
            model_file::encoded_len(&spec, &plan, p, s, train)
        }
        .map_err(err)?;
        let mut out = vec![0u8; len];
        let used = if state_dict {
            model_file::encode_state_dict(&spec, &plan, p, s, train, &mut out)
        } else {
            model_file::encode(&spec, &plan, p, s, train, &mut out)
        }
        .map_err(err)?;
        out.truncate(used);
        Ok(out)
    }

    /// `len` zeroed floats for `what` of this model, or [`ModelError::Memory`].
    fn zeros(&self, len: usize, what: &str, hint: &'static str) -> Result<Vec<f32>, ModelError> {
        crate::mem::zeros_for(len, what, hint).map_err(|error| ModelError::Memory {
            model: self.name.clone(),
            error,
        })
    }

    fn error(&self, error: torchlet::Error) -> ModelError {
        ModelError::Model {
            model: self.name.clone(),
            error,
        }
    }
}

/// [`ModelError::NonFinite`] for the first parameter or state tensor of `file` with a NaN or
/// infinite element.
pub(crate) fn check_finite(file: &ModelFile<'_>, path: &Path) -> Result<(), ModelError> {
    for t in file.tensors() {
        if t.role == Role::Optimizer {
            continue;
        }
        let values = t
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if let Some((index, value)) = values.enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                path: path.to_path_buf(),
                name: t.name.to_string(),
                index,
                value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_plans_fit_on_a_test_thread_stack() {
        // Plans are built on the stack before they are boxed.
        assert!(
            std::mem::size_of::<HostPlan>() < 512 * 1024,
            "{}",
            std::mem::size_of::<HostPlan>()
        );
    }

    #[test]
    fn zoo_model_round_trips_in_memory() {
        let m = Model::from_zoo("digits-cnn", 3).unwrap();
        assert_eq!(m.param_count(), 6_090);
        let (back, train) = Model::decode(m.to_bytes().unwrap(), Path::new("mem.tlm")).unwrap();
        assert!(train.is_none());
        assert_eq!(back, m);
        let x: Vec<f32> = (0..2 * 64).map(|i| (i % 7) as f32 / 7.0).collect();
        assert_eq!(back.forward(&x).unwrap(), m.forward(&x).unwrap());
        assert_eq!(m.node_paths().unwrap(), ["0", "1", "2", "3", "4", "5", "6", "7"]);
    }

    #[test]
    fn loaded_and_adapted_models_free_their_layers_with_their_last_clone() {
        // A zoo model with its defaults borrows the const list: nothing to free.
        let zoo = Model::from_zoo("digits-cnn", 3).unwrap();
        assert!(zoo.architecture().is_static() && zoo.architecture().downgrade().is_none());
        // A loaded model owns a copy of the file's layers; the bytes are not kept.
        let bytes = zoo.to_bytes().unwrap();
        let (loaded, _) = Model::decode(bytes, Path::new("mem.tlm")).unwrap();
        assert_eq!(loaded, zoo);
        assert!(!loaded.architecture().is_static());
        let weak = loaded.architecture().downgrade().unwrap();
        let clone = loaded.clone();
        drop(loaded);
        assert!(weak.is_alive(), "a clone still holds the layers");
        assert_eq!(clone.forward(&[0.5; 64]).unwrap().len(), 10);
        drop(clone);
        assert!(!weak.is_alive(), "the layers outlived the last model: leaked");
        // So does a zoo model adapted to a data set.
        let cfg = crate::zoo::ZooConfig {
            num_classes: Some(4),
            ..Default::default()
        };
        let adapted = crate::zoo::build("digits-cnn", &cfg, 0).unwrap();
        let weak = adapted.architecture().downgrade().unwrap();
        drop(adapted);
        assert!(!weak.is_alive());
    }
}
