//! ONNX: a torchlet model as an ONNX file, the course's last step (`torch.onnx.export`, then
//! OpenVINO, onnxruntime or any ONNX runtime).
//!
//! `torchlet export --target onnx --model M.tlm --out m.onnx [--opset N]` and
//! [`Model::to_onnx`](crate::model::Model::to_onnx) write it ([`export::to_onnx`]): IR version
//! 8, opset 17 by default, a symbolic batch dimension, the input as `torchlet predict` feeds it.
//! The protobuf messages are declared for prost in [`proto`] (no `protoc` at build time).
//! CI checks the files with the `onnx` package's full checker and runs them in onnxruntime
//! against torchlet's own outputs (`host/cli/tests/onnx_export.rs`).
//!
//! `torchlet import m.onnx --out m.tlm` and [`Model::from_onnx`](crate::model::Model::from_onnx)
//! read one back ([`import`]): files written by `torch.onnx.export` or by torchlet, for the
//! layers torchlet has.

pub mod export;
pub mod import;
pub mod proto;

pub use export::{to_onnx, DEFAULT_OPSET, IR_VERSION};
pub use import::{import_onnx, ImportOptions, OnnxImportError};

use crate::model::ModelError;

/// Why a model could not be written as ONNX.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// A layer without an ONNX form (or one the exporter does not write).
    #[error("layer {layer} ({op}) cannot be exported to ONNX: {why}")]
    Unsupported {
        /// The layer's path (`features.3`).
        layer: String,
        /// Its kind (`ConvTranspose2d`).
        op: &'static str,
        /// Why.
        why: String,
    },
    /// An opset outside the supported range.
    #[error("--opset {found}: torchlet writes ONNX opsets {min} to {max}")]
    Opset {
        /// The opset asked for.
        found: i64,
        /// The lowest supported.
        min: i64,
        /// The highest supported.
        max: i64,
    },
    /// The model does not plan.
    #[error(transparent)]
    Model(#[from] ModelError),
}
