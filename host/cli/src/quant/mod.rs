//! int8 models on the host: post-training quantisation of a trained [`Model`] and the
//! [`QuantizedModel`] it gives (run with the core's int8 executor, saved as a version-2 `.tlm`).
//!
//! | PyTorch (`torch.ao.quantization`) | torchlet |
//! |---|---|
//! | `fuse_modules([conv, bn, relu])` | BatchNorm folded into the conv, ReLU/ReLU6 into its output range (`build.rs`) |
//! | `prepare` + running calibration batches (`MinMaxObserver`, `HistogramObserver`) | [`calibrate`] with [`Observer::MinMax`] or [`Observer::Percentile`] |
//! | `convert` with `per_channel_symmetric` weights | [`quantize`] |
//!
//! The scheme is TFLite's (`docs/int8.md`): int8 activations per tensor with a zero point, int8
//! weights symmetric per output channel, `i32` biases, Q31 multipliers. `torchlet quantize`
//! (`crate::cli::quantize`) drives it from the command line.

mod build;
mod calibrate;
mod model;

pub use build::quantize;
pub use calibrate::{calibrate, Observer, Ranges};
pub use model::{AnyModel, QuantizedModel, Runner};

/// A quantisation error, for the user: what failed, naming the layer or file.
#[derive(Debug)]
pub struct QuantError(pub String);

impl std::fmt::Display for QuantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuantError {}

impl From<String> for QuantError {
    fn from(s: String) -> Self {
        QuantError(s)
    }
}

use crate::model::Model;

/// `layer {i} ({path})` for node `i` of `model`, for error messages.
pub(crate) fn node_name(model: &Model, i: usize) -> String {
    let paths = model.node_paths().unwrap_or_default();
    match paths.get(i) {
        Some(p) if !p.is_empty() => format!("layer {i} ('{p}')"),
        _ => format!("layer {i}"),
    }
}

/// A core error of `model`, with the layer's path when the error names a layer.
pub(crate) fn core_error(model: &Model, e: torchlet::Error) -> QuantError {
    let at = match e {
        torchlet::Error::Unsupported { layer, .. } | torchlet::Error::Shape { layer, .. } => {
            format!("{}: ", node_name(model, layer))
        }
        _ => String::new(),
    };
    QuantError(format!("model '{}': {at}{e}", model.name))
}
