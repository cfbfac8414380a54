//! ONNX import: a torchlet [`Model`] from an ONNX file ([`import_onnx`],
//! [`Model::from_onnx`], `torchlet import m.onnx --out m.tlm [--classes a,b,...]`).
//!
//! It reads graphs as `torch.onnx.export` writes them (the classic exporter with
//! `dynamo=False` and the default dynamo one) and as torchlet's own exporter does, for the
//! layers torchlet has: `Conv` (BatchNorm folded into it or a separate
//! `BatchNormalization`), `Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Elu`, `HardSwish`,
//! `HardSigmoid`, `Clip` (ReLU, ReLU6), `MaxPool`, `AveragePool`, `GlobalAveragePool`,
//! `GlobalMaxPool`, `ReduceMean`/`ReduceMax` over the spatial dims, `Flatten`, `Reshape` /
//! `Squeeze` to `[batch, features]`, `Gemm`, `MatMul` + `Add` (a Linear), residual `Add`,
//! `Concat` of two branches, `Pad`, `Softmax`, `LogSoftmax`, and `Dropout` / `Identity`
//! (dropped). Shape subgraphs (`Shape`, `Gather`, `Unsqueeze`, `Concat`, `Constant`, ...)
//! are folded (`fold.rs`). Weights come from the initializers (and `Constant` nodes).
//!
//! Bad input is refused with an error naming the file and what is wrong, before anything
//! large is allocated: bytes that are not an ONNX protobuf, tensors declaring more bytes than
//! the file has (`weights::check_declared_sizes`), external data, a cycle or a dangling
//! input (`graph.rs`); the first unsupported node is named with its op type, its name and why.
//!
//! Classes are named `0..N-1` unless given ([`ImportOptions::classes`]) or written by
//! torchlet's exporter (the `classes` metadata entry, one per line).

mod attrs;
mod fold;
mod graph;
mod layers;
mod weights;

use std::path::{Path, PathBuf};

use prost::Message;
use torchlet::Shape;

use crate::model::{Architecture, Model, ModelError};
use crate::onnx::proto::ModelProto;
use layers::{Ctx, Item};

/// What [`import_onnx`] may be told besides the file.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The class names, one per output (default: the file's `classes` metadata if it has one
    /// name per output, else `0..N-1`).
    pub classes: Option<Vec<String>>,
    /// The model's name (default: the file name without its extension).
    pub name: Option<String>,
}

/// Why an ONNX file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxImportError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] crate::fsutil::FsError),
    /// Not a valid ONNX model (garbage, truncated, inconsistent sizes, a cycle, a dangling
    /// input, ...).
    #[error("{path}: not a valid ONNX model for torchlet: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A node torchlet cannot import.
    #[error("{path}: {op} node '{name}' cannot be imported: {why}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Its op type (`"Resize"`).
        op: String,
        /// Its name (or `#index (output 'x')` for an unnamed node).
        name: String,
        /// Why.
        why: String,
    },
    /// The class names do not fit the model.
    #[error("{path}: {why}")]
    Classes {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        why: String,
    },
    /// The imported layers do not make a torchlet model.
    #[error("{path}: {error}")]
    Model {
        /// The file.
        path: PathBuf,
        /// The model error.
        error: ModelError,
    },
}

/// An import error before the path is attached.
#[derive(Debug)]
pub(crate) enum Fail {
    Invalid(String),
    Node { op: String, name: String, why: String },
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Invalid(s) => f.write_str(s),
            Fail::Node { op, name, why } => write!(f, "{op} node '{name}': {why}"),
        }
    }
}

impl Fail {
    fn at(self, path: &Path) -> OnnxImportError {
        let path = path.to_path_buf();
        match self {
            Fail::Invalid(why) => OnnxImportError::Invalid { path, why },
            Fail::Node { op, name, why } => OnnxImportError::Unsupported { path, op, name, why },
        }
    }
}

/// The model in the ONNX file `bytes`; `path` names it in errors (and gives the model its
/// default name).
///
/// # Errors
/// See [`OnnxImportError`]; nothing here panics on bad input.
pub fn import_onnx(bytes: &[u8], path: &Path, opts: &ImportOptions) -> Result<Model, OnnxImportError> {
    let file = ModelProto::decode(bytes).map_err(|e| {
        Fail::Invalid(format!(
            "the bytes are not an ONNX protobuf ({e}): truncated, corrupt or another format"
        ))
        .at(path)
    })?;
    let (items, input, output_len) = convert(&file, bytes.len()).map_err(|e| e.at(path))?;
    let name = opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "onnx".into())
    });
    let classes = classes(&file, opts, output_len).map_err(|why| OnnxImportError::Classes {
        path: path.to_path_buf(),
        why,
    })?;
    build(&name, &items, input, &classes).map_err(|e| match e {
        Ok(error) => OnnxImportError::Model {
            path: path.to_path_buf(),
            error,
        },
        Err(fail) => fail.at(path),
    })
}

/// The layer tree, input shape and output size of the file's graph.
fn convert(file: &ModelProto, file_len: usize) -> Result<(Vec<Item>, Shape, usize), Fail> {
    let g = file
        .graph
        .as_ref()
        .ok_or_else(|| Fail::Invalid("the file has no graph".into()))?;
    let constants = g
        .node
        .iter()
        .flat_map(|n| n.attribute.iter().filter_map(|a| a.t.as_ref()));
    weights::check_declared_sizes(g.initializer.iter().chain(constants), file_len)?;
    let opset = file
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let graph = graph::Graph::index(g)?;
    let mut ctx = Ctx::new(&graph, opset);
    ctx.run()?;
    let items = graph::tree(&ctx)?;
    let out = ctx.shapes.get(ctx.resolve(graph.output)).ok_or_else(|| {
        Fail::Invalid(format!(
            "the graph output '{}' is not computed from the input",
            graph.output
        ))
    })?;
    let input = Shape::from_dims(&graph.input_dims).ok_or_else(|| Fail::Invalid("the input shape".into()))?;
    Ok((items, input, out.iter().product()))
}

fn classes(file: &ModelProto, opts: &ImportOptions, n: usize) -> Result<Vec<String>, String> {
    if let Some(c) = &opts.classes {
        if c.len() != n {
            return Err(format!(
                "--classes names {} classes, the model has {n} outputs",
                c.len()
            ));
        }
        return Ok(c.clone());
    }
    let meta = file.metadata_props.iter().find(|p| p.key == "classes");
    if let Some(m) = meta {
        let names: Vec<String> = m.value.lines().map(str::to_string).collect();
        if names.len() == n {
            return Ok(names);
        }
    }
    Ok((0..n).map(|i| i.to_string()).collect())
}

/// The model of `items`, its weights checked layer by layer against the plan.
fn build(name: &str, items: &[Item], input: Shape, classes: &[String]) -> Result<Model, Result<ModelError, Fail>> {
    let architecture = Architecture::build(|arena| graph::to_layers(arena, items));
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    let mut model = Model::new(name, architecture, input, &names, 0).map_err(Ok)?;
    let mut lens = vec![];
    let (mut params, mut state) = (vec![], vec![]);
    collect(items, &mut params, &mut state, &mut lens);
    let plan = model.plan(1, torchlet::Mode::Inference).map_err(Ok)?;
    let planned: Vec<(usize, usize)> = plan.nodes().iter().map(|n| (n.param_len(), n.state_len)).collect();
    if planned != lens || params.len() != model.params.len() || state.len() != model.state.len() {
        return Err(Err(Fail::Invalid(format!(
            "the weights do not fit the layers: {} parameters and {} state values for a model of {} and {}",
            params.len(),
            state.len(),
            model.params.len(),
            model.state.len()
        ))));
    }
    drop(plan);
    model.params = params;
    model.state = state;
    Ok(model)
}

/// The weights of `items` in the plan's order, and each computing layer's lengths.
fn collect(items: &[Item], params: &mut Vec<f32>, state: &mut Vec<f32>, lens: &mut Vec<(usize, usize)>) {
    for it in items {
        match it {
            Item::Op {
                params: p, state: s, ..
            } => {
                params.extend_from_slice(p);
                state.extend_from_slice(s);
                lens.push((p.len(), s.len()));
            }
            Item::Merge { a, b, .. } => {
                collect(a, params, state, lens);
                collect(b, params, state, lens);
                lens.push((0, 0));
            }
        }
    }
}

impl Model {
    /// Imports the ONNX file at `path` ([`import_onnx`]) with these class names (default:
    /// `0..N-1`, or those torchlet's exporter wrote).
    ///
    /// # Errors
    /// [`OnnxImportError`] naming the file: unreadable, invalid, or the first unsupported node.
    pub fn from_onnx(path: &Path, classes: Option<Vec<String>>) -> Result<Model, OnnxImportError> {
        let bytes = crate::fsutil::read(path)?;
        import_onnx(&bytes, path, &ImportOptions { classes, name: None })
    }
}
