//! Model files: a whole model, a state dict or a training checkpoint in one validated,
//! zero-copy binary format (`.tlm`).
//!
//! The byte layout is specified in `docs/model-format.md` (enough to write a reader in
//! another language; `tools/read_tlm.py` is one). In short: a 24-byte fixed header (magic
//! `TORCHLET`, format version, flags, lengths), a header of postcard records (name, input
//! shape, class names, the layers as blocks of containers, the tensor table with PyTorch's
//! `state_dict` names and shapes, the training state), then the tensor data as little-endian
//! `f32` aligned to 64 bytes, and a CRC-32 of everything.
//!
//! - Writing: [`encoded_len`] then [`encode`] into a caller buffer (a `static` on a
//!   microcontroller); [`encode_state_dict`] for the tensors only; pass a [`TrainState`] and
//!   the optimizer's state buffer for a checkpoint.
//! - Reading: [`ModelFile::parse`] checks every byte first (magic, version, flags, lengths,
//!   CRC, every record, references, offsets) and never panics; then
//!   [`ModelFile::plan`] rebuilds the layers into caller storage, plans them and checks the
//!   file against the plan; [`ModelFile::params`] is the parameter buffer *in place*, so
//!   weights in flash are used without a copy.
//!
//! ```
//! use torchlet::{layer::*, model_file::{self, ModelFile, ModelSpec}, plan::Mode, Network, Plan, Shape};
//!
//! static LAYERS: [Layer; 3] = [flatten(), linear(4, 3).named("fc"), relu()];
//! let plan = Plan::<3>::try_new(&LAYERS, Shape::features(4), 1, Mode::Inference)?;
//! let params: Vec<f32> = (0..plan.param_len()).map(|i| i as f32 * 0.1).collect();
//! let spec = ModelSpec { name: "tiny", layers: &LAYERS, input: Shape::features(4), classes: &["a", "b", "c"], run: None };
//!
//! let mut file = vec![0u8; model_file::encoded_len(&spec, &plan, &params, &[], None)?];
//! model_file::encode(&spec, &plan, &params, &[], None, &mut file)?;
//!
//! let model = ModelFile::parse(&file)?; // the bytes may be in flash, on a microcontroller
//! assert_eq!(model.class_name(2), Some("c"));
//! assert_eq!(model.tensors().map(|t| t.name).collect::<Vec<_>>(), ["fc.weight", "fc.bias"]);
//! // The rebuilt layers borrow this storage and the file; the plan borrows the layers.
//! let mut storage = vec![identity(); model.layer_count()];
//! let plan = model.plan::<3>(&mut storage, 1, Mode::Inference)?;
//! let mut arena = vec![0.0; plan.arena_len()];
//! let mut net = Network::with_weights(&plan, model.params()?, model.state()?, &mut arena)?;
//! let y = net.forward(&[1.0, 0.0, 0.0, 0.0])?; // fc.weight[:, 0] + fc.bias
//! assert!((y[0] - 1.2).abs() < 1e-6 && (y[1] - 1.7).abs() < 1e-6 && (y[2] - 2.2).abs() < 1e-6);
//! # Ok::<(), torchlet::Error>(())
//! ```

mod crc;
mod decode;
mod error;
mod int8;
mod load;
pub mod names;
mod reader;
pub(crate) mod tensors;
mod train;
mod tree;
mod view;
mod wire;
mod writer;

pub use crc::crc32;
pub use error::{part, FileError};
pub use names::MAX_DEPTH;
pub use reader::ModelFile;
pub use tensors::{Role, TensorInfo, DTYPE_F32};
pub use train::{OptimizerRecord, TrainState};
pub use view::Tensors;
pub use wire::{Dims, MAX_RANK, MAX_RUN_RECORD};
pub use writer::{encode, encode_int8, encode_state_dict, encoded_int8_len, encoded_len, encoded_state_dict_len};

use crate::layer::Layer;
use crate::shape::Shape;

/// The first 8 bytes of every model file.
pub const MAGIC: [u8; 8] = *b"TORCHLET";

/// The format version this crate writes, and the newest it reads (it reads every version
/// from 1 up to this one).
pub const VERSION: u16 = 2;

/// The version of files without int8 parts: writers write the oldest version that holds the
/// file, so `f32` models stay readable by version-1 readers.
pub const VERSION_F32: u16 = 1;

/// What a model file says about a model besides its tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelSpec<'s> {
    /// The model's name.
    pub name: &'s str,
    /// The layers (the plan's).
    pub layers: &'s [Layer<'s>],
    /// Shape of one input sample (the plan's).
    pub input: Shape,
    /// Class names: the label of each output, in order (may be empty).
    pub classes: &'s [&'s str],
    /// The run record: how the training run that produced the model was configured, as text
    /// whose meaning is the writer's (the `torchlet` CLI writes a JSON object). At most
    /// [`MAX_RUN_RECORD`] bytes; `None` writes no record (flags bit 2 clear).
    pub run: Option<&'s str>,
}

impl<'s> ModelSpec<'s> {
    /// The spec of `plan`'s model, named `name`, without class names.
    pub fn new<const CAP: usize>(name: &'s str, plan: &crate::Plan<'s, CAP>) -> Self {
        ModelSpec {
            name,
            layers: plan.layers(),
            input: plan.input_shape(),
            classes: &[],
            run: None,
        }
    }
}
