//! int8 inference: TFLite's integer quantisation scheme and its kernels, bit for bit as
//! TFLite's reference kernels and CMSIS-NN (the scheme Cortex-M inference runs at CMSIS-NN
//! speed with), for running a trained model quantised after training.
//!
//! Use this module when a model trained in `f32` (the rest of the crate) must run on a small
//! microcontroller in a quarter of the memory and without a floating-point unit. It holds the
//! arithmetic and the kernels only; choosing the quantisation parameters of a whole model
//! (calibration), the file format and the firmware come on top of it.
//!
//! - [`scheme`]: [`QuantParams`] (asymmetric int8 activations, per tensor), the Q31
//!   fixed-point multiplier ([`quantize_multiplier`]), [`requantize`] (TFLite's
//!   `MultiplyByQuantizedMultiplier`, CMSIS-NN's `arm_nn_requantize`) and the output stage
//!   with the fused activation's clamp ([`OutputStage`], [`ActRange`]).
//! - [`tensor`]: `f32` tensors to and from int8; per-channel symmetric weights in
//!   `[-127, 127]`; `i32` biases with scale `input_scale * weight_scale[c]`; the per-channel
//!   multipliers.
//! - Kernels, NCHW like the `f32` core and over its geometry structs: [`conv`] (any stride,
//!   padding, dilation, groups, depthwise), [`linear`], [`pool`] (max, average, adaptive
//!   average with a fixed window), [`merge`] (residual add with rescale, concatenation,
//!   flatten).
//! - [`network`]: the int8 executor, a quantised model run over an inference
//!   [`Plan`](crate::Plan) with caller-owned buffers ([`QuantNetwork`], [`layout`]);
//!   [`fused`]: the plan's fused conv->pool in int8.
//!
//! Conventions, for every kernel here:
//! - tensors are contiguous `i8` slices in NCHW; weights `i8` symmetric (zero point 0); biases
//!   `i32`; scratch is a caller-provided slice (nothing allocates);
//! - every kernel checks its geometry and buffer lengths first and returns an
//!   [`Error`] without writing anything when they are wrong; it never panics.
//!   A geometry error is an [`Error::Shape`] with `layer: 0` (a kernel
//!   called directly has no place in a plan);
//! - outputs are overwritten; accumulators are `i32` and wrap as the C kernels do on the
//!   target, which with int8 operands needs tens of thousands of products per output.
//!
//! The kernels are portable Rust (Cortex-M0 and the host alike). See `docs/int8.md`.

pub mod conv;
mod exec;
pub mod fused;
pub mod linear;
pub mod merge;
pub mod network;
pub mod pool;
pub mod scheme;
pub mod tensor;

pub use conv::{conv_s8, conv_s8_scratch_len};
pub use linear::linear_s8;
pub use merge::{add_s8, concat_s8, flatten_s8, AddParams, Rescale};
pub use network::{layout, Layout, NodeQuant, QuantNetwork, QuantWeights, Role};
pub use pool::{adaptive_avg_pool_s8, avg_pool_s8, max_pool_s8};
pub use scheme::{
    doubling_high_mul, quantize_multiplier, requantize, rounding_divide_by_pot, ActRange, FusedActivation, OutputStage,
    QuantParams,
};
pub use tensor::{
    dequantize_slice, output_multipliers, quantize_bias, quantize_slice, quantize_weights, weight_scales,
};

use crate::error::{Error, Result};

/// A geometry error of a kernel called directly (`layer: 0`).
pub(crate) fn shape_error(op: &'static str, what: &'static str, expected: usize, found: usize) -> Error {
    Error::Shape {
        layer: 0,
        op,
        what,
        expected,
        found,
    }
}

/// The product of `dims`, or a [`shape_error`] if it overflows `usize`.
pub(crate) fn numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(shape_error(
            op,
            "the tensor's element count overflows usize",
            usize::MAX,
            0,
        ))
}
