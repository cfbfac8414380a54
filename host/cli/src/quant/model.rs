//! [`QuantizedModel`]: an int8 model in memory, run with the core's int8 executor and saved as
//! a version-2 `.tlm` file (flags bit 3, `docs/model-format.md` section 10), atomically.

use std::path::Path;

use torchlet::layer::Layer;
use torchlet::model_file::{self, ModelFile, ModelSpec};
use torchlet::quant::{layout, Layout, NodeQuant, QuantNetwork, QuantParams, QuantWeights};
use torchlet::{Mode, Shape};

use super::QuantError;
use crate::fsutil;
use crate::model::{Architecture, HostPlan, Model};

/// An int8 model: the architecture, class names and run record of the `f32` model it was
/// quantised from, and its int8 parameters (see [`torchlet::quant::network`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedModel {
    /// The model's name.
    pub name: String,
    pub(crate) architecture: Architecture,
    /// The shape of one input sample.
    pub input: Shape,
    /// The label of each output.
    pub classes: Vec<String>,
    /// The run record of the training run (kept from the `f32` model).
    pub run: Option<String>,
    /// The quantisation of the input.
    pub input_params: QuantParams,
    /// One record per plan node.
    pub nodes: Vec<NodeQuant>,
    /// int8 weights of every `Conv`/`Linear`, in plan order.
    pub weights: Vec<i8>,
    /// `i32` biases per output channel.
    pub bias: Vec<i32>,
    /// Q31 multipliers per output channel.
    pub multiplier: Vec<i32>,
    /// Shifts per output channel.
    pub shift: Vec<i32>,
}

impl QuantizedModel {
    /// A model with `model`'s architecture and no parameters yet.
    pub(crate) fn empty(model: &Model, input_params: QuantParams) -> QuantizedModel {
        QuantizedModel {
            name: model.name.clone(),
            architecture: model.architecture().clone(),
            input: model.input,
            classes: model.classes.clone(),
            run: model.run.clone(),
            input_params,
            nodes: Vec::new(),
            weights: Vec::new(),
            bias: Vec::new(),
            multiplier: Vec::new(),
            shift: Vec::new(),
        }
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer<'_>] {
        self.architecture.layers()
    }

    /// The parameters, borrowed for the executor or the file writer.
    pub fn weights(&self) -> QuantWeights<'_> {
        QuantWeights {
            input: self.input_params,
            nodes: &self.nodes,
            weights: &self.weights,
            bias: &self.bias,
            multiplier: &self.multiplier,
            shift: &self.shift,
        }
    }

    /// The inference plan for batches of up to `batch`.
    ///
    /// # Errors
    /// The planner's error.
    pub fn plan(&self, batch: usize) -> Result<Box<HostPlan<'_>>, QuantError> {
        HostPlan::try_new(self.layers(), self.input, batch, Mode::Inference)
            .map(Box::new)
            .map_err(|e| QuantError(format!("model '{}': {e}", self.name)))
    }

    /// The int8 lengths at `batch`: weights, channels, arena and scratch.
    ///
    /// # Errors
    /// As [`QuantizedModel::plan`], or a node without an int8 form.
    pub fn layout(&self, batch: usize) -> Result<Layout, QuantError> {
        let plan = self.plan(batch)?;
        layout(&plan).map_err(|e| QuantError(format!("model '{}': {e}", self.name)))
    }

    /// A float [`Model`] with this model's architecture, classes and run record and zero
    /// weights: what the data-set logic of `eval` reads (input shape, classes, run record).
    /// Never run it.
    pub fn meta_model(&self) -> Result<Model, QuantError> {
        let plan = self.plan(1)?;
        Ok(Model {
            name: self.name.clone(),
            architecture: self.architecture.clone(),
            input: self.input,
            classes: self.classes.clone(),
            params: vec![0.0; plan.param_len()],
            state: vec![0.0; plan.state_len()],
            run: self.run.clone(),
        })
    }

    /// The dequantised output for `x: [n, *input]` (`n ≥ 1`), `[n, *output]`.
    ///
    /// # Errors
    /// An input that is not a whole, non-empty number of finite samples; a model that does not
    /// run.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, QuantError> {
        let n = x.len() / self.input.numel().max(1);
        let plan = self.plan(n.max(1))?;
        let mut runner = Runner::new(self, &plan)?;
        runner.forward(x)
    }

    /// The model as `.tlm` bytes (format version 2, flags bit 3).
    ///
    /// # Errors
    /// A model whose parameters do not fit its plan's int8 layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>, QuantError> {
        let plan = self.plan(1)?;
        let classes: Vec<&str> = self.classes.iter().map(String::as_str).collect();
        let spec = ModelSpec {
            name: &self.name,
            layers: self.layers(),
            input: self.input,
            classes: &classes,
            run: self.run.as_deref(),
        };
        let q = self.weights();
        let err = |e| QuantError(format!("model '{}': writing the int8 file: {e}", self.name));
        let len = model_file::encoded_int8_len(&spec, &plan, &q).map_err(err)?;
        let mut out = vec![0u8; len];
        model_file::encode_int8(&spec, &plan, &q, &mut out).map_err(err)?;
        Ok(out)
    }

    /// Saves the model to `path`, atomically (an existing file is left as it was on error).
    ///
    /// # Errors
    /// As [`QuantizedModel::to_bytes`], or the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), QuantError> {
        let bytes = self.to_bytes()?;
        fsutil::write_atomic(path, &bytes).map_err(|e| QuantError(e.to_string()))
    }

    /// Whether the file at `path` is an int8 model (it parses and has flags bit 3).
    pub fn is_int8_file(bytes: &[u8]) -> bool {
        ModelFile::parse(bytes).is_ok_and(|f| f.is_int8())
    }

    /// Loads an int8 model file.
    ///
    /// # Errors
    /// The file cannot be read, is not a valid model file (the part named), is not an int8
    /// model, or its parameters do not fit its architecture.
    pub fn load(path: &Path) -> Result<QuantizedModel, QuantError> {
        let bytes = fsutil::read(path).map_err(|e| QuantError(e.to_string()))?;
        QuantizedModel::from_bytes(&bytes, path)
    }

    /// Reads an int8 model from file bytes; `path` names them in errors.
    ///
    /// # Errors
    /// As [`QuantizedModel::load`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<QuantizedModel, QuantError> {
        let fail = |e: torchlet::Error| QuantError(format!("{}: {e}", path.display()));
        let file = ModelFile::parse(bytes).map_err(fail)?;
        let (Some(input_params), Some((w, c))) = (file.int8_input(), file.int8_counts()) else {
            return Err(QuantError(format!(
                "{}: expected an int8 model file (written by `torchlet quantize`), found an f32 model",
                path.display()
            )));
        };
        let mut storage = vec![torchlet::layer::identity(); file.layer_count()];
        let layers = file.layers(&mut storage).map_err(fail)?;
        let plan = HostPlan::try_new(layers, file.input_shape(), 1, Mode::Inference).map_err(fail)?;
        let lay = layout(&plan).map_err(fail)?;
        if (lay.weights, lay.channels) != (w, c) {
            return Err(QuantError(format!(
                "{}: the int8 record holds {w} weights and {c} channels, its architecture needs {} and {}",
                path.display(),
                lay.weights,
                lay.channels
            )));
        }
        let mut nodes = vec![
            NodeQuant {
                out: input_params,
                act: torchlet::quant::ActRange::FULL,
            };
            plan.len()
        ];
        file.int8_nodes_into(&mut nodes).map_err(fail)?;
        let (mut bias, mut multiplier, mut shift) = (vec![0; c], vec![0; c], vec![0; c]);
        file.int8_channels_into(&mut bias, &mut multiplier, &mut shift)
            .map_err(fail)?;
        let q = QuantizedModel {
            name: file.name().to_string(),
            architecture: Architecture::copy_of(layers),
            input: file.input_shape(),
            classes: file.class_names().map(str::to_string).collect(),
            run: file.run_record().map(str::to_string),
            input_params,
            nodes,
            weights: file.int8_weights().map_err(fail)?.to_vec(),
            bias,
            multiplier,
            shift,
        };
        // The records must hold together (pools keep their input's quantisation ...).
        let plan = q.plan(1)?;
        Runner::new(&q, &plan).map_err(|e| QuantError(format!("{}: {e}", path.display())))?;
        Ok(q)
    }
}

/// An int8 network with its own buffers, for repeated batches.
pub struct Runner<'m> {
    model: &'m QuantizedModel,
    plan: &'m HostPlan<'m>,
    arena: Vec<i8>,
    scratch: Vec<i16>,
}

impl<'m> Runner<'m> {
    /// Buffers for `plan` (the model's, any batch).
    ///
    /// # Errors
    /// A plan node without an int8 form, or records that do not fit the plan.
    pub fn new(model: &'m QuantizedModel, plan: &'m HostPlan<'m>) -> Result<Runner<'m>, QuantError> {
        let lay = layout(plan).map_err(|e| QuantError(format!("model '{}': {e}", model.name)))?;
        let mut r = Runner {
            model,
            plan,
            arena: vec![0; lay.arena],
            scratch: vec![0; lay.scratch],
        };
        r.net()?;
        Ok(r)
    }

    fn net(&mut self) -> Result<QuantNetwork<'_, { crate::model::MAX_NODES }>, QuantError> {
        let m = self.model;
        QuantNetwork::new(self.plan, m.weights(), &mut self.arena, &mut self.scratch)
            .map_err(|e| QuantError(format!("model '{}': {e}", m.name)))
    }

    /// The dequantised output of `x: [n, *input]`, `n` up to the plan's batch.
    ///
    /// # Errors
    /// A bad input length or a non-finite input.
    pub fn forward(&mut self, x: &[f32]) -> Result<Vec<f32>, QuantError> {
        let n = x.len() / self.model.input.numel().max(1);
        let mut out = vec![0.0; n * self.plan.output_shape().numel()];
        let name = self.model.name.clone();
        let mut net = self.net()?;
        net.forward(x, &mut out)
            .map_err(|e| QuantError(format!("model '{name}': {e}")))?;
        Ok(out)
    }
}

/// What a loaded model file is.
pub enum AnyModel {
    /// An `f32` model.
    F32(Box<Model>),
    /// An int8 model.
    Int8(Box<QuantizedModel>),
}

impl AnyModel {
    /// Loads `path` as whichever kind of model it holds.
    ///
    /// # Errors
    /// As [`Model::load`] or [`QuantizedModel::load`].
    pub fn load(path: &Path) -> Result<AnyModel, Box<dyn std::error::Error>> {
        let bytes = fsutil::read(path)?;
        if QuantizedModel::is_int8_file(&bytes) {
            Ok(AnyModel::Int8(Box::new(QuantizedModel::from_bytes(&bytes, path)?)))
        } else {
            Ok(AnyModel::F32(Box::new(Model::from_bytes(bytes, path)?)))
        }
    }
}
