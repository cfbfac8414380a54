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
//!   shaders share, and [`Kernel::source`] puts it in front of each of them;
//! - backward passes accumulate (`+=`) into gradients, as the core's kernels do; a
//!   convolution's weight gradient is split over chunks of samples into partial sums that
//!   `reduce_partials.wgsl` then adds, so each invocation's loop stays short.
//!
//! Pipelines use wgpu's automatic layout, so a shader declares only the bindings it uses;
//! [`Kernel::bindings`] lists them in order.

/// Every compute kernel of the crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `conv_forward.wgsl`.
    ConvForward,
    /// `conv_backward_input.wgsl`.
    ConvBackwardInput,
    /// `conv_backward_weight.wgsl` (weight and bias, per-chunk partial sums).
    ConvBackwardWeight,
    /// `reduce_partials.wgsl` (adds the partial sums into the gradients).
    ReducePartials,
    /// `linear_forward.wgsl`.
    LinearForward,
    /// `linear_backward_input.wgsl`.
    LinearBackwardInput,
    /// `linear_backward_weight.wgsl` (weight and bias).
    LinearBackwardWeight,
    /// `relu_forward.wgsl`.
    ReluForward,
    /// `relu_backward_input.wgsl`.
    ReluBackwardInput,
    /// `leaky_relu_forward.wgsl`.
    LeakyReluForward,
    /// `leaky_relu_backward_input.wgsl`.
    LeakyReluBackwardInput,
    /// `sigmoid_forward.wgsl`.
    SigmoidForward,
    /// `sigmoid_backward_input.wgsl`.
    SigmoidBackwardInput,
    /// `tanh_forward.wgsl`.
    TanhForward,
    /// `tanh_backward_input.wgsl`.
    TanhBackwardInput,
    /// `max_pool_forward.wgsl`.
    MaxPoolForward,
    /// `max_pool_backward_input.wgsl`.
    MaxPoolBackwardInput,
    /// `copy_forward.wgsl` (Flatten, Identity).
    CopyForward,
    /// `copy_backward_input.wgsl`.
    CopyBackwardInput,
    /// `cross_entropy.wgsl` (loss, gradient and correct count in one dispatch).
    CrossEntropy,
    /// `sgd_step.wgsl`.
    SgdStep,
    /// `batch_norm_forward_train.wgsl` (the statistics, and a second dispatch counting the batch).
    BatchNormForwardTrain,
    /// `batch_norm_forward_eval.wgsl`.
    BatchNormForwardEval,
    /// `batch_norm_backward_train.wgsl` (input, weight and bias gradients).
    BatchNormBackwardTrain,
    /// `batch_norm_backward_eval.wgsl` (input, weight and bias gradients).
    BatchNormBackwardEval,
    /// `dropout_forward.wgsl` (mask drawn on the GPU).
    DropoutForward,
    /// `dropout_backward_input.wgsl`.
    DropoutBackwardInput,
    /// `avg_pool_forward.wgsl`.
    AvgPoolForward,
    /// `avg_pool_backward_input.wgsl`.
    AvgPoolBackwardInput,
    /// `adaptive_avg_pool_forward.wgsl`.
    AdaptiveAvgPoolForward,
    /// `adaptive_avg_pool_backward_input.wgsl`.
    AdaptiveAvgPoolBackwardInput,
    /// `adaptive_max_pool_forward.wgsl`.
    AdaptiveMaxPoolForward,
    /// `adaptive_max_pool_backward_input.wgsl`.
    AdaptiveMaxPoolBackwardInput,
    /// `add_forward.wgsl`.
    AddForward,
    /// `add_backward_input.wgsl` (one input per dispatch).
    AddBackwardInput,
    /// `concat_forward.wgsl`.
    ConcatForward,
    /// `concat_backward_input.wgsl` (one input per dispatch).
    ConcatBackwardInput,
    /// `softmax_forward.wgsl`.
    SoftmaxForward,
    /// `softmax_backward_input.wgsl`.
    SoftmaxBackwardInput,
    /// `log_softmax_forward.wgsl`.
    LogSoftmaxForward,
    /// `log_softmax_backward_input.wgsl`.
    LogSoftmaxBackwardInput,
    /// `pad_forward.wgsl` (Pad2d, and the padded input of a convolution with padding_mode reflect, replicate or circular).
    PadForward,
    /// `pad_backward_input.wgsl`.
    PadBackwardInput,
    /// `conv_transpose_forward.wgsl`.
    ConvTransposeForward,
    /// `conv_transpose_backward_input.wgsl`.
    ConvTransposeBackwardInput,
    /// `conv_transpose_backward_weight.wgsl` (weight and bias).
    ConvTransposeBackwardWeight,
    /// `max_unpool_forward.wgsl`.
    MaxUnpoolForward,
    /// `max_unpool_backward_input.wgsl`.
    MaxUnpoolBackwardInput,
    /// `bilinear_forward.wgsl`.
    BilinearForward,
    /// `bilinear_backward_input.wgsl` (one input per dispatch).
    BilinearBackwardInput,
    /// `bilinear_backward_weight.wgsl` (weight and bias).
    BilinearBackwardWeight,
    /// `adam_step.wgsl` (Adam, AdamW, AMSGrad).
    AdamStep,
    /// `nll_loss.wgsl` (loss, gradient and correct count in one dispatch).
    NllLoss,
    /// `elementwise_loss.wgsl` + `mse_loss.wgsl`.
    MseLoss,
    /// `elementwise_loss.wgsl` + `l1_loss.wgsl`.
    L1Loss,
    /// `elementwise_loss.wgsl` + `bce_loss.wgsl`.
    BceLoss,
    /// `elementwise_loss.wgsl` + `bce_with_logits_loss.wgsl`.
    BceWithLogitsLoss,
}

impl Kernel {
    /// All kernels, in declaration order.
    pub const ALL: [Kernel; 57] = [
        Kernel::ConvForward,
        Kernel::ConvBackwardInput,
        Kernel::ConvBackwardWeight,
        Kernel::ReducePartials,
        Kernel::LinearForward,
        Kernel::LinearBackwardInput,
        Kernel::LinearBackwardWeight,
        Kernel::ReluForward,
        Kernel::ReluBackwardInput,
        Kernel::LeakyReluForward,
        Kernel::LeakyReluBackwardInput,
        Kernel::SigmoidForward,
        Kernel::SigmoidBackwardInput,
        Kernel::TanhForward,
        Kernel::TanhBackwardInput,
        Kernel::MaxPoolForward,
        Kernel::MaxPoolBackwardInput,
        Kernel::CopyForward,
        Kernel::CopyBackwardInput,
        Kernel::CrossEntropy,
        Kernel::SgdStep,
        Kernel::BatchNormForwardTrain,
        Kernel::BatchNormForwardEval,
        Kernel::BatchNormBackwardTrain,
        Kernel::BatchNormBackwardEval,
        Kernel::DropoutForward,
        Kernel::DropoutBackwardInput,
        Kernel::AvgPoolForward,
        Kernel::AvgPoolBackwardInput,
        Kernel::AdaptiveAvgPoolForward,
        Kernel::AdaptiveAvgPoolBackwardInput,
        Kernel::AdaptiveMaxPoolForward,
        Kernel::AdaptiveMaxPoolBackwardInput,
        Kernel::AddForward,
        Kernel::AddBackwardInput,
        Kernel::ConcatForward,
        Kernel::ConcatBackwardInput,
        Kernel::SoftmaxForward,
        Kernel::SoftmaxBackwardInput,
        Kernel::LogSoftmaxForward,
        Kernel::LogSoftmaxBackwardInput,
        Kernel::PadForward,
        Kernel::PadBackwardInput,
        Kernel::ConvTransposeForward,
        Kernel::ConvTransposeBackwardInput,
        Kernel::ConvTransposeBackwardWeight,
        Kernel::MaxUnpoolForward,
        Kernel::MaxUnpoolBackwardInput,
        Kernel::BilinearForward,
        Kernel::BilinearBackwardInput,
        Kernel::BilinearBackwardWeight,
        Kernel::AdamStep,
        Kernel::NllLoss,
        Kernel::MseLoss,
        Kernel::L1Loss,
        Kernel::BceLoss,
        Kernel::BceWithLogitsLoss,
    ];

    /// The shader's file name and WGSL source.
    pub const fn source(self) -> (&'static str, &'static str) {
        match self {
            Kernel::ConvForward => (
                "conv_forward.wgsl",
                concat!(
                    include_str!("shaders/tile_gemm.wgsl"),
                    include_str!("shaders/conv_forward.wgsl")
                ),
            ),
            Kernel::ConvBackwardInput => (
                "conv_backward_input.wgsl",
                concat!(
                    include_str!("shaders/tile_gemm.wgsl"),
                    include_str!("shaders/conv_backward_input.wgsl")
                ),
            ),
            Kernel::ConvBackwardWeight => (
                "conv_backward_weight.wgsl",
                concat!(
                    include_str!("shaders/tile_gemm.wgsl"),
                    include_str!("shaders/conv_backward_weight.wgsl")
                ),
            ),
            Kernel::ReducePartials => ("reduce_partials.wgsl", include_str!("shaders/reduce_partials.wgsl")),
            Kernel::LinearForward => ("linear_forward.wgsl", include_str!("shaders/linear_forward.wgsl")),
            Kernel::LinearBackwardInput => (
                "linear_backward_input.wgsl",
                include_str!("shaders/linear_backward_input.wgsl"),
            ),
            Kernel::LinearBackwardWeight => (
                "linear_backward_weight.wgsl",
                include_str!("shaders/linear_backward_weight.wgsl"),
            ),
            Kernel::ReluForward => ("relu_forward.wgsl", include_str!("shaders/relu_forward.wgsl")),
            Kernel::ReluBackwardInput => (
                "relu_backward_input.wgsl",
                include_str!("shaders/relu_backward_input.wgsl"),
            ),
            Kernel::LeakyReluForward => (
                "leaky_relu_forward.wgsl",
                include_str!("shaders/leaky_relu_forward.wgsl"),
            ),
            Kernel::LeakyReluBackwardInput => (
                "leaky_relu_backward_input.wgsl",
                include_str!("shaders/leaky_relu_backward_input.wgsl"),
            ),
            Kernel::SigmoidForward => ("sigmoid_forward.wgsl", include_str!("shaders/sigmoid_forward.wgsl")),
            Kernel::SigmoidBackwardInput => (
                "sigmoid_backward_input.wgsl",
                include_str!("shaders/sigmoid_backward_input.wgsl"),
            ),
            Kernel::TanhForward => ("tanh_forward.wgsl", include_str!("shaders/tanh_forward.wgsl")),
            Kernel::TanhBackwardInput => (
                "tanh_backward_input.wgsl",
                include_str!("shaders/tanh_backward_input.wgsl"),
            ),
            Kernel::MaxPoolForward => ("max_pool_forward.wgsl", include_str!("shaders/max_pool_forward.wgsl")),
            Kernel::MaxPoolBackwardInput => (
                "max_pool_backward_input.wgsl",
                include_str!("shaders/max_pool_backward_input.wgsl"),
            ),
            Kernel::CopyForward => ("copy_forward.wgsl", include_str!("shaders/copy_forward.wgsl")),
            Kernel::CopyBackwardInput => (
                "copy_backward_input.wgsl",
                include_str!("shaders/copy_backward_input.wgsl"),
            ),
            Kernel::CrossEntropy => ("cross_entropy.wgsl", include_str!("shaders/cross_entropy.wgsl")),
            Kernel::SgdStep => ("sgd_step.wgsl", include_str!("shaders/sgd_step.wgsl")),
            Kernel::BatchNormForwardTrain => (
                "batch_norm_forward_train.wgsl",
                include_str!("shaders/batch_norm_forward_train.wgsl"),
            ),
            Kernel::BatchNormForwardEval => (
                "batch_norm_forward_eval.wgsl",
                include_str!("shaders/batch_norm_forward_eval.wgsl"),
            ),
            Kernel::BatchNormBackwardTrain => (
                "batch_norm_backward_train.wgsl",
                include_str!("shaders/batch_norm_backward_train.wgsl"),
            ),
            Kernel::BatchNormBackwardEval => (
                "batch_norm_backward_eval.wgsl",
                include_str!("shaders/batch_norm_backward_eval.wgsl"),
            ),
            Kernel::DropoutForward => ("dropout_forward.wgsl", include_str!("shaders/dropout_forward.wgsl")),
            Kernel::DropoutBackwardInput => (
                "dropout_backward_input.wgsl",
                include_str!("shaders/dropout_backward_input.wgsl"),
            ),
            Kernel::AvgPoolForward => ("avg_pool_forward.wgsl", include_str!("shaders/avg_pool_forward.wgsl")),
            Kernel::AvgPoolBackwardInput => (
                "avg_pool_backward_input.wgsl",
                include_str!("shaders/avg_pool_backward_input.wgsl"),
            ),
            Kernel::AdaptiveAvgPoolForward => (
                "adaptive_avg_pool_forward.wgsl",
                include_str!("shaders/adaptive_avg_pool_forward.wgsl"),
            ),
            Kernel::AdaptiveAvgPoolBackwardInput => (
                "adaptive_avg_pool_backward_input.wgsl",
                include_str!("shaders/adaptive_avg_pool_backward_input.wgsl"),
            ),
            Kernel::AdaptiveMaxPoolForward => (
                "adaptive_max_pool_forward.wgsl",
                include_str!("shaders/adaptive_max_pool_forward.wgsl"),
            ),
            Kernel::AdaptiveMaxPoolBackwardInput => (
                "adaptive_max_pool_backward_input.wgsl",
                include_str!("shaders/adaptive_max_pool_backward_input.wgsl"),
            ),
            Kernel::AddForward => ("add_forward.wgsl", include_str!("shaders/add_forward.wgsl")),
            Kernel::AddBackwardInput => (
                "add_backward_input.wgsl",
                include_str!("shaders/add_backward_input.wgsl"),
            ),
            Kernel::ConcatForward => ("concat_forward.wgsl", include_str!("shaders/concat_forward.wgsl")),
            Kernel::ConcatBackwardInput => (
                "concat_backward_input.wgsl",
                include_str!("shaders/concat_backward_input.wgsl"),
            ),
            Kernel::AdamStep => ("adam_step.wgsl", include_str!("shaders/adam_step.wgsl")),
            Kernel::NllLoss => ("nll_loss.wgsl", include_str!("shaders/nll_loss.wgsl")),
            Kernel::MseLoss => (
                "mse_loss.wgsl",
                concat!(
                    include_str!("shaders/elementwise_loss.wgsl"),
                    include_str!("shaders/mse_loss.wgsl")
                ),
            ),
            Kernel::L1Loss => (
                "l1_loss.wgsl",
                concat!(
                    include_str!("shaders/elementwise_loss.wgsl"),
                    include_str!("shaders/l1_loss.wgsl")
                ),
            ),
            Kernel::BceLoss => (
                "bce_loss.wgsl",
                concat!(
                    include_str!("shaders/elementwise_loss.wgsl"),
                    include_str!("shaders/bce_loss.wgsl")
                ),
            ),
            Kernel::BceWithLogitsLoss => (
                "bce_with_logits_loss.wgsl",
                concat!(
                    include_str!("shaders/elementwise_loss.wgsl"),
                    include_str!("shaders/bce_with_logits_loss.wgsl")
                ),
            ),
            Kernel::SoftmaxForward => ("softmax_forward.wgsl", include_str!("shaders/softmax_forward.wgsl")),
            Kernel::SoftmaxBackwardInput => (
                "softmax_backward_input.wgsl",
                include_str!("shaders/softmax_backward_input.wgsl"),
            ),
            Kernel::LogSoftmaxForward => (
                "log_softmax_forward.wgsl",
                include_str!("shaders/log_softmax_forward.wgsl"),
            ),
            Kernel::LogSoftmaxBackwardInput => (
                "log_softmax_backward_input.wgsl",
                include_str!("shaders/log_softmax_backward_input.wgsl"),
            ),
            Kernel::PadForward => ("pad_forward.wgsl", include_str!("shaders/pad_forward.wgsl")),
            Kernel::PadBackwardInput => (
                "pad_backward_input.wgsl",
                include_str!("shaders/pad_backward_input.wgsl"),
            ),
            Kernel::ConvTransposeForward => (
                "conv_transpose_forward.wgsl",
                include_str!("shaders/conv_transpose_forward.wgsl"),
            ),
            Kernel::ConvTransposeBackwardInput => (
                "conv_transpose_backward_input.wgsl",
                include_str!("shaders/conv_transpose_backward_input.wgsl"),
            ),
            Kernel::ConvTransposeBackwardWeight => (
                "conv_transpose_backward_weight.wgsl",
                include_str!("shaders/conv_transpose_backward_weight.wgsl"),
            ),
            Kernel::MaxUnpoolForward => (
                "max_unpool_forward.wgsl",
                include_str!("shaders/max_unpool_forward.wgsl"),
            ),
            Kernel::MaxUnpoolBackwardInput => (
                "max_unpool_backward_input.wgsl",
                include_str!("shaders/max_unpool_backward_input.wgsl"),
            ),
            Kernel::BilinearForward => ("bilinear_forward.wgsl", include_str!("shaders/bilinear_forward.wgsl")),
            Kernel::BilinearBackwardInput => (
                "bilinear_backward_input.wgsl",
                include_str!("shaders/bilinear_backward_input.wgsl"),
            ),
            Kernel::BilinearBackwardWeight => (
                "bilinear_backward_weight.wgsl",
                include_str!("shaders/bilinear_backward_weight.wgsl"),
            ),
        }
    }

    /// The storage bindings the shader declares, in binding order (binding 0, the uniform, is
    /// not listed).
    pub const fn bindings(self) -> &'static [u32] {
        match self {
            Kernel::ReluForward
            | Kernel::LeakyReluForward
            | Kernel::SigmoidForward
            | Kernel::TanhForward
            | Kernel::CopyForward
            | Kernel::CopyBackwardInput => &[1, 3],
            Kernel::SgdStep | Kernel::AdamStep => &[1, 2, 3, 4],
            Kernel::CrossEntropy | Kernel::NllLoss | Kernel::BceWithLogitsLoss => &[1, 2, 3, 4, 5, 6],
            Kernel::MseLoss | Kernel::L1Loss | Kernel::BceLoss => &[1, 2, 3, 4, 5],
            Kernel::ConvBackwardWeight => &[1, 3, 4],
            Kernel::ReducePartials => &[1, 2],
            Kernel::BatchNormForwardTrain | Kernel::BatchNormForwardEval => &[1, 2, 3, 4],
            Kernel::BatchNormBackwardTrain | Kernel::BatchNormBackwardEval => &[1, 2, 3, 4, 5, 6],
            Kernel::AvgPoolForward
            | Kernel::AvgPoolBackwardInput
            | Kernel::AdaptiveAvgPoolForward
            | Kernel::AdaptiveAvgPoolBackwardInput
            | Kernel::AddBackwardInput
            | Kernel::ConcatBackwardInput => &[1, 3],
            Kernel::SoftmaxForward | Kernel::LogSoftmaxForward | Kernel::PadForward | Kernel::PadBackwardInput => {
                &[1, 3]
            }
            Kernel::BilinearForward | Kernel::BilinearBackwardInput | Kernel::BilinearBackwardWeight => &[1, 2, 3, 4],
            _ => &[1, 2, 3],
        }
    }

    /// Invocations per workgroup of a 1-d dispatch (the cross-entropy kernel runs one
    /// workgroup of 256 whatever the batch).
    pub const fn workgroup_size(self) -> u32 {
        match self {
            Kernel::NllLoss | Kernel::MseLoss | Kernel::L1Loss | Kernel::BceLoss | Kernel::BceWithLogitsLoss => 256,
            Kernel::CrossEntropy | Kernel::ConvForward | Kernel::ConvBackwardInput | Kernel::ConvBackwardWeight => 256,
            Kernel::BatchNormForwardTrain | Kernel::BatchNormBackwardTrain | Kernel::BatchNormBackwardEval => 256,
            _ => 64,
        }
    }
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
