//! The compute shaders, one sibling `.wgsl` file per operation under `src/shaders/`, named after
//! the core function each one mirrors (`conv_forward.wgsl` is `torchlet::ops::conv::conv_forward`),
//! and their compiled pipelines.
//!
//! Every shader follows the same conventions, so one Rust dispatcher serves them all
//! (`ops::Pass`, crate-private):
//!
//! - binding 0 is a uniform of `u32`/`f32` words: the geometry, the element offsets of each
//!   tensor inside its buffer, and `total`, the number of invocations;
//! - bindings 1, 2, 3 are the "input side", "weight side" and "output side" storage buffers
//!   (for a backward pass: the input gradient, the parameters or gradients, the output
//!   gradient), binding 4 an extra one where needed;
//! - whole buffers are bound and tensors are addressed by offsets in the uniform, so a layer's
//!   weight is read straight out of the flat parameter vector at the plan's offset;
//! - `@workgroup_size(64)`, invocation `t = gid.x + gid.y * num_workgroups.x * 64`, dispatched
//!   as a 2-d grid when more than 65,535 workgroups are needed; the tiled convolutions and the
//!   reductions use workgroups of 256 ([`Kernel::workgroup_size`]);
//! - `tile_gemm.wgsl` is not a kernel: it holds the 64 x 64 tile product the three convolution
//!   shaders share, and [`Kernel::source`] puts it in front of each of them (as
//!   `elementwise_loss.wgsl` in front of the four elementwise losses);
//! - backward passes accumulate (`+=`) into gradients, as the core's kernels do; a
//!   convolution's weight gradient is split over chunks of samples into partial sums that
//!   `reduce_partials.wgsl` then adds, so each invocation's loop stays short.
//!
//! Pipelines use wgpu's automatic layout, so a shader declares only the bindings it uses;
//! [`Kernel::bindings`] lists them in order.
//!
//! ## Adding a kernel
//!
//! Each kernel is named once, as one row of the table at the bottom of this file: its
//! variant, its `.wgsl` file (and the shared file put in front of it, if any), the Rust
//! uniform struct its binding 0 holds, its storage bindings and its workgroup size. The enum,
//! [`Kernel::ALL`], [`Kernel::source`], [`Kernel::bindings`] and [`Kernel::workgroup_size`] are
//! generated from that row. The uniform struct is declared with `uniform!` next to the op
//! family that fills it (`ops/<family>.rs`), field for field as the shader's `struct`; the test
//! `uniforms_and_bindings_match_the_shaders` checks every row against its shader.

/// One field of a uniform struct: its name, byte offset and byte size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name, as in the WGSL struct.
    pub name: &'static str,
    /// Byte offset in the struct.
    pub offset: usize,
    /// Byte size.
    pub size: usize,
}

/// A `#[repr(C)]` uniform struct whose layout mirrors a WGSL `struct` (declared with
/// `uniform!`).
pub trait Uniform: bytemuck::Pod {
    /// The fields in declaration order.
    const FIELDS: &'static [Field];
}

/// Declares a uniform struct: `#[repr(C)]`, [`bytemuck::Pod`], and its [`Uniform::FIELDS`]
/// (names, offsets and sizes, for the layout test against the shader's declaration).
macro_rules! uniform {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $crate::kernels::Uniform for $name {
            const FIELDS: &'static [$crate::kernels::Field] = &[$($crate::kernels::Field {
                name: stringify!($field),
                offset: core::mem::offset_of!($name, $field),
                size: core::mem::size_of::<$ty>(),
            }),*];
        }
    };
}

pub(crate) use uniform;

/// Builds [`Kernel`] and its per-kernel facts from one table (see the module docs).
macro_rules! kernels {
    ($($name:ident: $file:literal $(after $pre:literal)?, $uniform:ty, [$($b:literal),*], $wg:literal, $doc:literal;)*) => {
        /// Every compute kernel of the crate: one row of the table in `kernels.rs` each.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kernel {
            $(#[doc = concat!("`", $file, "`", $doc)] $name,)*
        }

        impl Kernel {
            /// Number of kernels.
            pub const COUNT: usize = [$(stringify!($name)),*].len();

            /// All kernels, in declaration order.
            pub const ALL: [Kernel; Kernel::COUNT] = [$(Kernel::$name),*];

            /// The shader's file name and WGSL source (with the shared file in front of it).
            pub const fn source(self) -> (&'static str, &'static str) {
                match self {
                    $(Kernel::$name => (
                        $file,
                        concat!($(include_str!(concat!("shaders/", $pre)),)? include_str!(concat!("shaders/", $file))),
                    ),)*
                }
            }

            /// The storage bindings the shader declares, in binding order (binding 0, the
            /// uniform, is not listed).
            pub const fn bindings(self) -> &'static [u32] {
                match self {
                    $(Kernel::$name => &[$($b),*],)*
                }
            }

            /// Invocations per workgroup of a 1-d dispatch (the loss kernels run one
            /// workgroup of 256 whatever the batch).
            pub const fn workgroup_size(self) -> u32 {
                match self {
                    $(Kernel::$name => $wg,)*
                }
            }

            /// The byte size and fields of the Rust uniform struct bound at binding 0.
            pub fn uniform_layout(self) -> (usize, &'static [Field]) {
                match self {
                    $(Kernel::$name => (core::mem::size_of::<$uniform>(), <$uniform as Uniform>::FIELDS),)*
                }
            }
        }
    };
}

use crate::ops::{
    activation, batchnorm, bilinear, conv, conv_transpose, dropout, linear, loss, merge, optim, pad, pool, shuffle,
    softmax, upsample,
};

kernels! {
    // variant: file (after shared file), uniform struct, storage bindings, workgroup size, doc;
    ConvForward: "conv_forward.wgsl" after "tile_gemm.wgsl", conv::Conv, [1, 2, 3], 256, "";
    ConvBackwardInput: "conv_backward_input.wgsl" after "tile_gemm.wgsl", conv::Conv, [1, 2, 3], 256, "";
    ConvBackwardWeight: "conv_backward_weight.wgsl" after "tile_gemm.wgsl", conv::Conv, [1, 3, 4], 256, " (weight and bias, per-chunk partial sums).";
    ReducePartials: "reduce_partials.wgsl", conv::Reduce, [1, 2], 64, " (adds the partial sums into the gradients).";
    LinearForward: "linear_forward.wgsl", linear::Linear, [1, 2, 3], 64, "";
    LinearBackwardInput: "linear_backward_input.wgsl", linear::Linear, [1, 2, 3], 64, "";
    LinearBackwardWeight: "linear_backward_weight.wgsl", linear::Linear, [1, 2, 3], 64, " (weight and bias).";
    ReluForward: "relu_forward.wgsl", activation::Elementwise, [1, 3], 64, "";
    ReluBackwardInput: "relu_backward_input.wgsl", activation::Elementwise, [1, 2, 3], 64, "";
    LeakyReluForward: "leaky_relu_forward.wgsl", activation::Elementwise, [1, 3], 64, "";
    LeakyReluBackwardInput: "leaky_relu_backward_input.wgsl", activation::Elementwise, [1, 2, 3], 64, "";
    SigmoidForward: "sigmoid_forward.wgsl", activation::Elementwise, [1, 3], 64, "";
    SigmoidBackwardInput: "sigmoid_backward_input.wgsl", activation::Elementwise, [1, 2, 3], 64, "";
    TanhForward: "tanh_forward.wgsl", activation::Elementwise, [1, 3], 64, "";
    TanhBackwardInput: "tanh_backward_input.wgsl", activation::Elementwise, [1, 2, 3], 64, "";
    MaxPoolForward: "max_pool_forward.wgsl", pool::Pool, [1, 2, 3], 64, "";
    MaxPoolBackwardInput: "max_pool_backward_input.wgsl", pool::Pool, [1, 2, 3], 64, "";
    CopyForward: "copy_forward.wgsl", activation::Elementwise, [1, 3], 64, " (Flatten, Identity).";
    CopyBackwardInput: "copy_backward_input.wgsl", activation::Elementwise, [1, 3], 64, "";
    CrossEntropy: "cross_entropy.wgsl", loss::ClassLoss, [1, 2, 3, 4, 5, 6], 256, " (loss, gradient and correct count in one dispatch).";
    SgdStep: "sgd_step.wgsl", optim::Sgd, [1, 2, 3, 4], 64, "";
    BatchNormForwardTrain: "batch_norm_forward_train.wgsl", batchnorm::Bn, [1, 2, 3, 4], 256, " (the statistics, and a second dispatch counting the batch).";
    BatchNormForwardEval: "batch_norm_forward_eval.wgsl", batchnorm::Bn, [1, 2, 3, 4], 64, "";
    BatchNormBackwardTrain: "batch_norm_backward_train.wgsl", batchnorm::Bn, [1, 2, 3, 4, 5, 6], 256, " (input, weight and bias gradients).";
    BatchNormBackwardEval: "batch_norm_backward_eval.wgsl", batchnorm::Bn, [1, 2, 3, 4, 5, 6], 256, " (input, weight and bias gradients).";
    DropoutForward: "dropout_forward.wgsl", dropout::Dropout, [1, 2, 3], 64, " (mask drawn on the GPU).";
    DropoutBackwardInput: "dropout_backward_input.wgsl", dropout::Dropout, [1, 2, 3], 64, "";
    ChannelDropoutForward: "channel_dropout_forward.wgsl", dropout::ChannelDropout, [1, 2, 3], 64, " (one draw per channel plane).";
    ChannelShuffleForward: "channel_shuffle_forward.wgsl", shuffle::Shuffle, [1, 3], 64, "";
    ChannelShuffleBackwardInput: "channel_shuffle_backward_input.wgsl", shuffle::Shuffle, [1, 3], 64, "";
    UpsampleForward: "upsample_forward.wgsl", upsample::Upsample, [1, 3], 64, "";
    UpsampleBackwardInput: "upsample_backward_input.wgsl", upsample::Upsample, [1, 3], 64, " (a gather).";
    AvgPoolForward: "avg_pool_forward.wgsl", pool::AvgPool, [1, 3], 64, "";
    AvgPoolBackwardInput: "avg_pool_backward_input.wgsl", pool::AvgPool, [1, 3], 64, "";
    AdaptiveAvgPoolForward: "adaptive_avg_pool_forward.wgsl", pool::Adaptive, [1, 3], 64, "";
    AdaptiveAvgPoolBackwardInput: "adaptive_avg_pool_backward_input.wgsl", pool::Adaptive, [1, 3], 64, "";
    AdaptiveMaxPoolForward: "adaptive_max_pool_forward.wgsl", pool::Adaptive, [1, 2, 3], 64, "";
    AdaptiveMaxPoolBackwardInput: "adaptive_max_pool_backward_input.wgsl", pool::Adaptive, [1, 2, 3], 64, "";
    AddForward: "add_forward.wgsl", merge::Merge, [1, 2, 3], 64, "";
    AddBackwardInput: "add_backward_input.wgsl", merge::Merge, [1, 3], 64, " (one input per dispatch).";
    ConcatForward: "concat_forward.wgsl", merge::Merge, [1, 2, 3], 64, "";
    ConcatBackwardInput: "concat_backward_input.wgsl", merge::Merge, [1, 3], 64, " (one input per dispatch).";
    SoftmaxForward: "softmax_forward.wgsl", softmax::Softmax, [1, 3], 64, "";
    SoftmaxBackwardInput: "softmax_backward_input.wgsl", softmax::Softmax, [1, 2, 3], 64, "";
    LogSoftmaxForward: "log_softmax_forward.wgsl", softmax::Softmax, [1, 3], 64, "";
    LogSoftmaxBackwardInput: "log_softmax_backward_input.wgsl", softmax::Softmax, [1, 2, 3], 64, "";
    PadForward: "pad_forward.wgsl", pad::Pad, [1, 3], 64, " (Pad2d, and the padded input of a convolution with padding_mode reflect, replicate or circular).";
    PadBackwardInput: "pad_backward_input.wgsl", pad::Pad, [1, 3], 64, "";
    ConvTransposeForward: "conv_transpose_forward.wgsl", conv_transpose::ConvT, [1, 2, 3], 64, "";
    ConvTransposeBackwardInput: "conv_transpose_backward_input.wgsl", conv_transpose::ConvT, [1, 2, 3], 64, "";
    ConvTransposeBackwardWeight: "conv_transpose_backward_weight.wgsl", conv_transpose::ConvT, [1, 2, 3], 64, " (weight and bias).";
    MaxUnpoolForward: "max_unpool_forward.wgsl", pool::Unpool, [1, 2, 3], 64, "";
    MaxUnpoolBackwardInput: "max_unpool_backward_input.wgsl", pool::Unpool, [1, 2, 3], 64, "";
    BilinearForward: "bilinear_forward.wgsl", bilinear::Bilinear, [1, 2, 3, 4], 64, "";
    BilinearBackwardInput: "bilinear_backward_input.wgsl", bilinear::Bilinear, [1, 2, 3, 4], 64, " (one input per dispatch).";
    BilinearBackwardWeight: "bilinear_backward_weight.wgsl", bilinear::Bilinear, [1, 2, 3, 4], 64, " (weight and bias).";
    AdamStep: "adam_step.wgsl", optim::Adam, [1, 2, 3, 4], 64, " (Adam, AdamW, AMSGrad).";
    NllLoss: "nll_loss.wgsl", loss::ClassLoss, [1, 2, 3, 4, 5, 6], 256, " (loss, gradient and correct count in one dispatch).";
    MseLoss: "mse_loss.wgsl" after "elementwise_loss.wgsl", loss::ElementwiseLoss, [1, 2, 3, 4, 5], 256, "";
    L1Loss: "l1_loss.wgsl" after "elementwise_loss.wgsl", loss::ElementwiseLoss, [1, 2, 3, 4, 5], 256, "";
    BceLoss: "bce_loss.wgsl" after "elementwise_loss.wgsl", loss::ElementwiseLoss, [1, 2, 3, 4, 5], 256, "";
    BceWithLogitsLoss: "bce_with_logits_loss.wgsl" after "elementwise_loss.wgsl", loss::ElementwiseLoss, [1, 2, 3, 4, 5, 6], 256, "";
    ActivationForward: "activation_forward.wgsl" after "activation_functions.wgsl", activation::smooth::Act, [1, 3], 64, " (ELU, GELU, SiLU, Hardswish, Hardsigmoid, Softplus, Mish, ReLU6).";
    ActivationBackwardInput: "activation_backward_input.wgsl" after "activation_functions.wgsl", activation::smooth::Act, [1, 2, 3], 64, "";
    PreluForward: "prelu_forward.wgsl", activation::prelu::Prelu, [1, 2, 3], 64, "";
    PreluBackwardInput: "prelu_backward_input.wgsl", activation::prelu::Prelu, [1, 2, 3, 4], 64, "";
    PreluBackwardWeight: "prelu_backward_weight.wgsl", activation::prelu::Prelu, [1, 2, 3], 256, " (one workgroup per weight).";
}

/// The compiled pipeline of every [`Kernel`].
pub(crate) struct Kernels {
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Kernels {
    /// Compiles every shader. wgpu reports a compile error through the device's error
    /// callback, which [`crate::Device`] checks right after.
    pub(crate) fn new(device: &wgpu::Device) -> Kernels {
        let pipelines = Kernel::ALL
            .iter()
            .map(|k| {
                let (name, src) = k.source();
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(name),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        Kernels { pipelines }
    }

    /// The pipeline of `k`.
    pub(crate) fn pipeline(&self, k: Kernel) -> &wgpu::ComputePipeline {
        // ALL lists every variant in declaration order, so the discriminant is the index.
        &self.pipelines[k as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields `(name, byte size)` of WGSL struct `name` in `src` (scalars and `vec4`s).
    fn wgsl_struct(src: &str, name: &str) -> Vec<(String, usize)> {
        let start = src
            .find(&format!("struct {name} {{"))
            .unwrap_or_else(|| panic!("no struct {name}"));
        let body = &src[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (field, ty) = f.split_once(':').unwrap_or_else(|| panic!("field {f:?} of {name}"));
                let size = match ty.trim() {
                    "u32" | "i32" | "f32" => 4,
                    "vec4<u32>" | "vec4<f32>" => 16,
                    other => panic!("{name}.{field}: type {other} not handled by this test"),
                };
                (field.trim().to_string(), size)
            })
            .collect()
    }

    /// The type name after `var<uniform> p:` and the storage bindings of `src`.
    fn wgsl_bindings(src: &str) -> (String, Vec<u32>) {
        let mut uniform = String::new();
        let mut storage = Vec::new();
        for line in src.lines() {
            let Some(rest) = line.trim().strip_prefix("@group(0) @binding(") else {
                continue;
            };
            let (b, decl) = rest.split_once(')').unwrap();
            let b: u32 = b.parse().unwrap();
            if decl.contains("var<uniform>") {
                assert_eq!(b, 0, "the uniform is binding 0");
                uniform = decl.split(':').nth(1).unwrap().trim().trim_end_matches(';').to_string();
            } else {
                storage.push(b);
            }
        }
        (uniform, storage)
    }

    #[test]
    fn uniforms_and_bindings_match_the_shaders() {
        for k in Kernel::ALL {
            let (file, src) = k.source();
            let (name, storage) = wgsl_bindings(src);
            assert_eq!(storage, k.bindings(), "{file}: bindings");
            let wgsl = wgsl_struct(src, &name);
            let (size, fields) = k.uniform_layout();
            let rust: Vec<(String, usize)> = fields.iter().map(|f| (f.name.to_string(), f.size)).collect();
            assert_eq!(rust, wgsl, "{file}: fields of struct {name} (name, size) in order");
            let mut offset = 0;
            for f in fields {
                assert_eq!(f.offset, offset, "{file}: {name}.{} offset", f.name);
                offset += f.size;
            }
            assert_eq!(size, offset, "{file}: {name} has padding the shader does not declare");
            assert!(size.is_multiple_of(16), "{file}: {name} is not whole 16-byte rows");
        }
    }

    #[test]
    fn every_kernel_is_listed_once_in_order() {
        for (i, k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}
