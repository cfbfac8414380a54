//! Layer specifications: what a model is made of, as `const` values.
//!
//! A model is a slice of [`Layer`]s, as PyTorch's `nn.Sequential`. Containers nest:
//! [`sequential()`] is a named sub-`Sequential`, [`residual()`] adds a body and a shortcut
//! (ResNet's basic and bottleneck blocks), [`concat()`] joins two branches along channels
//! (Inception, DenseNet), and [`bilinear()`] combines two branches with `nn.Bilinear`.
//!
//! Constructors are named after PyTorch's classes in snake case and take PyTorch's positional
//! arguments; keyword arguments are builder methods with PyTorch's names and defaults:
//!
//! ```
//! use torchlet::layer::*;
//! const NET: [Layer; 5] = [
//!     conv2d(3, 16, 3).padding(1).named("conv"),
//!     batch_norm2d(16),
//!     relu(),
//!     max_pool2d(2).ceil_mode(true),
//!     flatten(),
//! ];
//! ```
//!
//! A [`Layer<'l>`](Layer) borrows its name and its containers' children for `'l`. The
//! constructors that take no borrowed input return `Layer<'static>`, usable anywhere; in `const`
//! and `static` items the lifetime is `'static` and need not be written (`[Layer; 5]` above).
//! A model built at run time (a model file's layers, a tree assembled by a program) borrows
//! the storage it was built in instead, and so does its [`crate::Plan`].
//!
//! Specs are only descriptions; [`crate::Plan`] checks them against the input shape. A builder
//! applied to a layer it does not fit (for example `.stride(2)` on `relu()`) does not panic: it
//! turns the layer into [`Kind::Misuse`], which the planner reports (a compile error for a
//! `const` plan).
//!
//! ## Wire format
//!
//! The spec types derive `serde` and are written into model files (`.tlm`, see
//! [`crate::model_file`] and `docs/model-format.md`) by postcard, which encodes enum variants by
//! their index and struct fields in order. **Only ever append** variants and fields (in a new
//! format version); never reorder, rename the meaning of, or remove one: the committed golden
//! file `tests/fixtures/golden-v1.tlm` must keep loading.

pub use crate::ops::activation::{Approximate, Softplus};
pub use crate::ops::geom::PaddingMode;

mod activation;
mod builders;
mod nd;
pub use activation::*;
pub use nd::*;
mod upsample;
pub use upsample::*;

/// One element of a model: an operation or a container, with an optional name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer<'l> {
    /// What the layer does.
    pub kind: Kind<'l>,
    /// The layer's name in its container (PyTorch's `add_module` name). Empty means the index,
    /// as in `nn.Sequential`.
    pub name: &'l str,
}

/// The kinds of layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind<'l> {
    /// A computing layer.
    Op(Op),
    /// A nested `nn.Sequential`.
    Sequential(&'l [Layer<'l>]),
    /// Two branches applied to the same input, then merged. An empty branch is the identity.
    Merge {
        /// How the branch outputs are combined.
        merge: Merge,
        /// The first branch (ResNet's body).
        a: &'l [Layer<'l>],
        /// The second branch (ResNet's shortcut; empty = identity).
        b: &'l [Layer<'l>],
    },
    /// A builder was applied to a layer it does not fit; the message says which.
    Misuse(&'static str),
}

/// How [`Kind::Merge`] combines its branches.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Merge {
    /// Elementwise sum; both shapes must be equal (residual connection).
    Add,
    /// Concatenation along channels (dim 1); other dims must be equal.
    Concat,
    /// `nn.Bilinear`: `y = x1^T A x2 + b` over the last dims of the two branches.
    Bilinear(Bilinear),
}

/// `nn.Bilinear(in1_features, in2_features, out_features, bias)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bilinear {
    /// Features of the first input.
    pub in1_features: usize,
    /// Features of the second input.
    pub in2_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Learnable bias `[out_features]`.
    pub bias: bool,
}

/// Padding of a convolution, as PyTorch's `padding` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Padding {
    /// The same padding on both sides of each spatial dim `[D, H, W]`.
    Explicit([usize; 3]),
    /// `'same'`: output size equals input size (stride must be 1); odd totals put the extra
    /// element at the end, as PyTorch.
    Same,
    /// `'valid'`: no padding.
    Valid,
}

/// `nn.Conv1d/2d/3d`. Spatial arrays are `[D, H, W]`; lower-dimensional convs keep 1s in front.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conv {
    /// 1, 2 or 3.
    pub dims: u8,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel_size: [usize; 3],
    /// Stride (default 1).
    pub stride: [usize; 3],
    /// Padding (default 0).
    pub padding: Padding,
    /// Dilation (default 1).
    pub dilation: [usize; 3],
    /// Groups (default 1; `in_channels` for depthwise).
    pub groups: usize,
    /// Learnable bias (default true).
    pub bias: bool,
    /// `padding_mode` (default zeros).
    pub padding_mode: PaddingMode,
}

/// `nn.ConvTranspose1d/2d/3d` (`Op::ConvTranspose` is 2-d; `Op::ConvTransposeNd` carries the dims).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvTranspose {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size `[1, kH, kW]`.
    pub kernel_size: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Padding removed from the output.
    pub padding: [usize; 3],
    /// Extra size added to one side of the output.
    pub output_padding: [usize; 3],
    /// Groups.
    pub groups: usize,
    /// Learnable bias.
    pub bias: bool,
    /// Dilation.
    pub dilation: [usize; 3],
}

/// `nn.MaxPool1d/2d/3d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaxPool {
    /// 1, 2 or 3.
    pub dims: u8,
    /// Window size.
    pub kernel_size: [usize; 3],
    /// Stride (defaults to the kernel size).
    pub stride: [usize; 3],
    /// Implicit negative-infinity padding on both sides.
    pub padding: [usize; 3],
    /// Dilation.
    pub dilation: [usize; 3],
    /// Use ceil instead of floor for the output size.
    pub ceil_mode: bool,
    /// Keep the argmax indices for a later [`max_unpool2d`].
    pub return_indices: bool,
}

/// `nn.AvgPool1d/2d/3d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AvgPool {
    /// 1, 2 or 3.
    pub dims: u8,
    /// Window size.
    pub kernel_size: [usize; 3],
    /// Stride (defaults to the kernel size).
    pub stride: [usize; 3],
    /// Implicit zero padding on both sides.
    pub padding: [usize; 3],
    /// Use ceil instead of floor for the output size.
    pub ceil_mode: bool,
    /// Count the padding zeros in the divisor (default true).
    pub count_include_pad: bool,
}

/// `nn.AdaptiveAvgPool1d/2d/3d` and `nn.AdaptiveMaxPool1d/2d/3d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Adaptive {
    /// 1, 2 or 3.
    pub dims: u8,
    /// Output size `[D, H, W]` (`[1, H, W]` for 2-d, `[1, 1, L]` for 1-d).
    pub output_size: [usize; 3],
}

/// `nn.MaxUnpool1d/2d/3d`; uses the indices of the most recent unmatched `MaxPool` with
/// `return_indices(true)` (a stack, so encoder-decoder nets pair up naturally).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaxUnpool {
    /// Window size of the matching pool.
    pub kernel_size: [usize; 3],
    /// Stride (defaults to the kernel size).
    pub stride: [usize; 3],
    /// Padding of the matching pool.
    pub padding: [usize; 3],
}

/// `nn.ZeroPad2d`, `nn.ReflectionPad2d`, `nn.ReplicationPad2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pad2d {
    /// What the padding reads (`Circular` is `nn.CircularPad2d`).
    pub mode: PaddingMode,
    /// `(left, right, top, bottom)`, as PyTorch's padding tuple.
    pub padding: [usize; 4],
}

/// `nn.ZeroPad1d/2d/3d`, `nn.ReflectionPad1d/2d/3d`, `nn.ReplicationPad1d/2d/3d`,
/// `nn.CircularPad1d/2d/3d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pad {
    /// 1, 2 or 3.
    pub dims: u8,
    /// What the padding reads.
    pub mode: PaddingMode,
    /// `(left, right, top, bottom, front, back)`: PyTorch's padding tuple, last dim first, with
    /// zeros for the dims the layer does not have.
    pub padding: [usize; 6],
}

/// `nn.BatchNorm1d/2d/3d`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchNorm {
    /// 1 (`[N, C]` or `[N, C, L]`), 2 (`[N, C, H, W]`) or 3 (`[N, C, D, H, W]`).
    pub dims: u8,
    /// Channels `C`.
    pub num_features: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f32,
    /// Running-statistics momentum (default 0.1); `None` is a cumulative average.
    pub momentum: Option<f32>,
    /// Learnable weight and bias (default true).
    pub affine: bool,
    /// Keep running statistics for eval mode (default true).
    pub track_running_stats: bool,
}

/// `nn.Linear`; `in_features == 0` infers it from the input, as `nn.LazyLinear`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Linear {
    /// Input features (the last dim of the input), or 0 to infer.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Learnable bias (default true).
    pub bias: bool,
}

/// `nn.PReLU(num_parameters, init)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PReLU {
    /// Learned slopes: 1 (shared, the default) or the input's channels (dim 1).
    pub num_parameters: usize,
    /// The initial value of every slope (default 0.25).
    pub init: f32,
}

/// The computing layers.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// `nn.Conv1d/2d/3d`.
    Conv(Conv),
    /// `nn.ConvTranspose2d`.
    ConvTranspose(ConvTranspose),
    /// `nn.MaxPool1d/2d/3d`.
    MaxPool(MaxPool),
    /// `nn.MaxUnpool2d`.
    MaxUnpool(MaxUnpool),
    /// `nn.AvgPool1d/2d/3d`.
    AvgPool(AvgPool),
    /// `nn.AdaptiveAvgPool1d/2d/3d`.
    AdaptiveAvgPool(Adaptive),
    /// `nn.AdaptiveMaxPool1d/2d/3d`.
    AdaptiveMaxPool(Adaptive),
    /// `nn.ZeroPad2d` / `ReflectionPad2d` / `ReplicationPad2d`.
    Pad2d(Pad2d),
    /// `nn.ReLU`.
    ReLU,
    /// `nn.LeakyReLU(negative_slope)`.
    LeakyReLU(f32),
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.Tanh`.
    Tanh,
    /// `nn.Softmax(dim)`; `dim` counts the batch as 0, negative counts from the end.
    Softmax(i8),
    /// `nn.LogSoftmax(dim)`.
    LogSoftmax(i8),
    /// `nn.BatchNorm1d/2d/3d`.
    BatchNorm(BatchNorm),
    /// `nn.Dropout(p)`: inverted dropout in training, identity in eval.
    Dropout(f32),
    /// `nn.Linear` / `nn.LazyLinear`.
    Linear(Linear),
    /// `nn.Identity`.
    Identity,
    /// `nn.Flatten()` (start_dim 1, end_dim -1).
    Flatten,
    /// `nn.ZeroPad1d/2d/3d`, `ReflectionPad1d/2d/3d`, `ReplicationPad1d/2d/3d`,
    /// `CircularPad1d/2d/3d`.
    Pad(Pad),
    /// `nn.ELU(alpha)`.
    ELU(f32),
    /// `nn.GELU(approximate)`.
    GELU(Approximate),
    /// `nn.SiLU`.
    SiLU,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.Hardsigmoid`.
    Hardsigmoid,
    /// `nn.Softplus(beta, threshold)`.
    Softplus(Softplus),
    /// `nn.Mish`.
    Mish,
    /// `nn.ReLU6`.
    ReLU6,
    /// `nn.PReLU(num_parameters, init)`.
    PReLU(PReLU),
    /// `nn.ConvTranspose1d/2d/3d` with its number of spatial dims (1, 2 or 3; the spatial
    /// arrays are `[D, H, W]` with 1s in front, as `Conv`'s).
    ConvTransposeNd(ConvTranspose, u8),
    /// `nn.MaxUnpool1d/2d/3d` with its number of spatial dims (`Op::MaxUnpool` is 2-d).
    MaxUnpoolNd(MaxUnpool, u8),
    /// `nn.Dropout1d/2d/3d(p)` with its number of spatial dims: zeroes whole channels.
    ChannelDropout(f32, u8),
    /// `nn.ChannelShuffle(groups)`.
    ChannelShuffle(usize),
    /// `nn.Upsample` (nearest or bilinear) on `[N, C, H, W]`.
    Upsample(Upsample),
}

impl Op {
    /// PyTorch's class name, for messages and `print(model)`.
    pub const fn torch_name(&self) -> &'static str {
        match self {
            Op::Conv(c) => match c.dims {
                1 => "Conv1d",
                2 => "Conv2d",
                _ => "Conv3d",
            },
            Op::ConvTranspose(_) => "ConvTranspose2d",
            Op::MaxPool(p) => match p.dims {
                1 => "MaxPool1d",
                2 => "MaxPool2d",
                _ => "MaxPool3d",
            },
            Op::MaxUnpool(_) => "MaxUnpool2d",
            Op::AvgPool(p) => match p.dims {
                1 => "AvgPool1d",
                2 => "AvgPool2d",
                _ => "AvgPool3d",
            },
            Op::AdaptiveAvgPool(p) => match p.dims {
                1 => "AdaptiveAvgPool1d",
                2 => "AdaptiveAvgPool2d",
                _ => "AdaptiveAvgPool3d",
            },
            Op::AdaptiveMaxPool(p) => match p.dims {
                1 => "AdaptiveMaxPool1d",
                2 => "AdaptiveMaxPool2d",
                _ => "AdaptiveMaxPool3d",
            },
            Op::Pad2d(p) => match p.mode {
                PaddingMode::Zeros => "ZeroPad2d",
                PaddingMode::Reflect => "ReflectionPad2d",
                PaddingMode::Replicate => "ReplicationPad2d",
                PaddingMode::Circular => "CircularPad2d",
            },
            Op::ReLU => "ReLU",
            Op::LeakyReLU(_) => "LeakyReLU",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Softmax(_) => "Softmax",
            Op::LogSoftmax(_) => "LogSoftmax",
            Op::BatchNorm(b) => match b.dims {
                1 => "BatchNorm1d",
                2 => "BatchNorm2d",
                _ => "BatchNorm3d",
            },
            Op::Dropout(_) => "Dropout",
            Op::Linear(l) => {
                if l.in_features == 0 {
                    "LazyLinear"
                } else {
                    "Linear"
                }
            }
            Op::Identity => "Identity",
            Op::Flatten => "Flatten",
            Op::Pad(p) => nd::pad_name(p),
            Op::ELU(_) => "ELU",
            Op::GELU(_) => "GELU",
            Op::SiLU => "SiLU",
            Op::Hardswish => "Hardswish",
            Op::Hardsigmoid => "Hardsigmoid",
            Op::Softplus(_) => "Softplus",
            Op::Mish => "Mish",
            Op::ReLU6 => "ReLU6",
            Op::PReLU(_) => "PReLU",
            Op::ConvTransposeNd(_, d) => nd::conv_transpose_name(*d),
            Op::MaxUnpoolNd(_, d) => nd::max_unpool_name(*d),
            Op::ChannelDropout(_, d) => nd::channel_dropout_name(*d),
            Op::ChannelShuffle(_) => "ChannelShuffle",
            Op::Upsample(_) => "Upsample",
        }
    }
}

const fn op(op: Op) -> Layer<'static> {
    Layer {
        kind: Kind::Op(op),
        name: "",
    }
}

/// Puts `v` into the last `dims` entries of a `[D, H, W]` array whose other entries are `fill`.
const fn spatial(dims: u8, v: usize, fill: usize) -> [usize; 3] {
    match dims {
        1 => [fill, fill, v],
        2 => [fill, v, v],
        _ => [v, v, v],
    }
}

/// Puts a per-dim slice (length `dims`) into a `[D, H, W]` array; `None` on a length mismatch.
const fn spatial_each(dims: u8, v: &[usize], fill: usize) -> Option<[usize; 3]> {
    if v.len() != dims as usize {
        return None;
    }
    let mut out = [fill; 3];
    let off = 3 - dims as usize;
    let mut i = 0;
    while i < v.len() {
        out[off + i] = v[i];
        i += 1;
    }
    Some(out)
}

const fn conv(dims: u8, in_channels: usize, out_channels: usize, k: usize) -> Layer<'static> {
    op(Op::Conv(Conv {
        dims,
        in_channels,
        out_channels,
        kernel_size: spatial(dims, k, 1),
        stride: [1; 3],
        padding: Padding::Explicit([0; 3]),
        dilation: [1; 3],
        groups: 1,
        bias: true,
        padding_mode: PaddingMode::Zeros,
    }))
}

/// `nn.Conv1d(in_channels, out_channels, kernel_size)` over `[N, C, L]`.
pub const fn conv1d(in_channels: usize, out_channels: usize, kernel_size: usize) -> Layer<'static> {
    conv(1, in_channels, out_channels, kernel_size)
}
/// `nn.Conv2d(in_channels, out_channels, kernel_size)` over `[N, C, H, W]`.
pub const fn conv2d(in_channels: usize, out_channels: usize, kernel_size: usize) -> Layer<'static> {
    conv(2, in_channels, out_channels, kernel_size)
}
/// `nn.Conv3d(in_channels, out_channels, kernel_size)` over `[N, C, D, H, W]`.
pub const fn conv3d(in_channels: usize, out_channels: usize, kernel_size: usize) -> Layer<'static> {
    conv(3, in_channels, out_channels, kernel_size)
}
/// `nn.ConvTranspose2d(in_channels, out_channels, kernel_size)`.
pub const fn conv_transpose2d(in_channels: usize, out_channels: usize, kernel_size: usize) -> Layer<'static> {
    op(Op::ConvTranspose(ConvTranspose {
        in_channels,
        out_channels,
        kernel_size: [1, kernel_size, kernel_size],
        stride: [1; 3],
        padding: [0; 3],
        output_padding: [0; 3],
        groups: 1,
        bias: true,
        dilation: [1; 3],
    }))
}

const fn max_pool(dims: u8, k: usize) -> Layer<'static> {
    op(Op::MaxPool(MaxPool {
        dims,
        kernel_size: spatial(dims, k, 1),
        stride: spatial(dims, k, 1),
        padding: [0; 3],
        dilation: [1; 3],
        ceil_mode: false,
        return_indices: false,
    }))
}
/// `nn.MaxPool1d(kernel_size)`; stride defaults to the kernel size.
pub const fn max_pool1d(kernel_size: usize) -> Layer<'static> {
    max_pool(1, kernel_size)
}
/// `nn.MaxPool2d(kernel_size)`; stride defaults to the kernel size.
pub const fn max_pool2d(kernel_size: usize) -> Layer<'static> {
    max_pool(2, kernel_size)
}
/// `nn.MaxPool3d(kernel_size)`; stride defaults to the kernel size.
pub const fn max_pool3d(kernel_size: usize) -> Layer<'static> {
    max_pool(3, kernel_size)
}
/// `nn.MaxUnpool2d(kernel_size)`; stride defaults to the kernel size.
pub const fn max_unpool2d(kernel_size: usize) -> Layer<'static> {
    op(Op::MaxUnpool(MaxUnpool {
        kernel_size: [1, kernel_size, kernel_size],
        stride: [1, kernel_size, kernel_size],
        padding: [0; 3],
    }))
}

const fn avg_pool(dims: u8, k: usize) -> Layer<'static> {
    op(Op::AvgPool(AvgPool {
        dims,
        kernel_size: spatial(dims, k, 1),
        stride: spatial(dims, k, 1),
        padding: [0; 3],
        ceil_mode: false,
        count_include_pad: true,
    }))
}
/// `nn.AvgPool1d(kernel_size)`.
pub const fn avg_pool1d(kernel_size: usize) -> Layer<'static> {
    avg_pool(1, kernel_size)
}
/// `nn.AvgPool2d(kernel_size)`.
pub const fn avg_pool2d(kernel_size: usize) -> Layer<'static> {
    avg_pool(2, kernel_size)
}
/// `nn.AvgPool3d(kernel_size)`.
pub const fn avg_pool3d(kernel_size: usize) -> Layer<'static> {
    avg_pool(3, kernel_size)
}
/// `nn.AdaptiveAvgPool1d(output_size)`.
pub const fn adaptive_avg_pool1d(output_size: usize) -> Layer<'static> {
    op(Op::AdaptiveAvgPool(Adaptive {
        dims: 1,
        output_size: [1, 1, output_size],
    }))
}
/// `nn.AdaptiveAvgPool2d((h, w))`.
pub const fn adaptive_avg_pool2d(h: usize, w: usize) -> Layer<'static> {
    op(Op::AdaptiveAvgPool(Adaptive {
        dims: 2,
        output_size: [1, h, w],
    }))
}
/// `nn.AdaptiveMaxPool1d(output_size)`.
pub const fn adaptive_max_pool1d(output_size: usize) -> Layer<'static> {
    op(Op::AdaptiveMaxPool(Adaptive {
        dims: 1,
        output_size: [1, 1, output_size],
    }))
}
/// `nn.AdaptiveMaxPool2d((h, w))`.
pub const fn adaptive_max_pool2d(h: usize, w: usize) -> Layer<'static> {
    op(Op::AdaptiveMaxPool(Adaptive {
        dims: 2,
        output_size: [1, h, w],
    }))
}

const fn pad2d(mode: PaddingMode, padding: [usize; 4]) -> Layer<'static> {
    op(Op::Pad2d(Pad2d { mode, padding }))
}
/// `nn.ZeroPad2d((left, right, top, bottom))`.
pub const fn zero_pad2d(padding: [usize; 4]) -> Layer<'static> {
    pad2d(PaddingMode::Zeros, padding)
}
/// `nn.ReflectionPad2d((left, right, top, bottom))`.
pub const fn reflection_pad2d(padding: [usize; 4]) -> Layer<'static> {
    pad2d(PaddingMode::Reflect, padding)
}
/// `nn.ReplicationPad2d((left, right, top, bottom))`.
pub const fn replication_pad2d(padding: [usize; 4]) -> Layer<'static> {
    pad2d(PaddingMode::Replicate, padding)
}

/// `nn.ReLU()`.
pub const fn relu() -> Layer<'static> {
    op(Op::ReLU)
}
/// `nn.LeakyReLU(negative_slope)` (PyTorch's default slope is 0.01).
pub const fn leaky_relu(negative_slope: f32) -> Layer<'static> {
    op(Op::LeakyReLU(negative_slope))
}
/// `nn.Sigmoid()`.
pub const fn sigmoid() -> Layer<'static> {
    op(Op::Sigmoid)
}
/// `nn.Tanh()`.
pub const fn tanh() -> Layer<'static> {
    op(Op::Tanh)
}
/// `nn.Softmax(dim)`.
pub const fn softmax(dim: i8) -> Layer<'static> {
    op(Op::Softmax(dim))
}
/// `nn.LogSoftmax(dim)`.
pub const fn log_softmax(dim: i8) -> Layer<'static> {
    op(Op::LogSoftmax(dim))
}

const fn batch_norm(dims: u8, num_features: usize) -> Layer<'static> {
    op(Op::BatchNorm(BatchNorm {
        dims,
        num_features,
        eps: 1e-5,
        momentum: Some(0.1),
        affine: true,
        track_running_stats: true,
    }))
}
/// `nn.BatchNorm1d(num_features)` over `[N, C]` or `[N, C, L]`.
pub const fn batch_norm1d(num_features: usize) -> Layer<'static> {
    batch_norm(1, num_features)
}
/// `nn.BatchNorm2d(num_features)` over `[N, C, H, W]`.
pub const fn batch_norm2d(num_features: usize) -> Layer<'static> {
    batch_norm(2, num_features)
}
/// `nn.Dropout(p)` (PyTorch's default p is 0.5).
pub const fn dropout(p: f32) -> Layer<'static> {
    op(Op::Dropout(p))
}
/// `nn.Linear(in_features, out_features)` over the last dim.
pub const fn linear(in_features: usize, out_features: usize) -> Layer<'static> {
    op(Op::Linear(Linear {
        in_features,
        out_features,
        bias: true,
    }))
}
/// `nn.LazyLinear(out_features)`: `in_features` is inferred from the input.
pub const fn lazy_linear(out_features: usize) -> Layer<'static> {
    op(Op::Linear(Linear {
        in_features: 0,
        out_features,
        bias: true,
    }))
}
/// `nn.Identity()`.
pub const fn identity() -> Layer<'static> {
    op(Op::Identity)
}
/// `nn.Flatten()`: `[N, ...]` to `[N, prod(...)]`.
pub const fn flatten() -> Layer<'static> {
    op(Op::Flatten)
}

/// A nested `nn.Sequential`.
pub const fn sequential<'l>(layers: &'l [Layer<'l>]) -> Layer<'l> {
    Layer {
        kind: Kind::Sequential(layers),
        name: "",
    }
}
/// `body(x) + shortcut(x)`; an empty shortcut is the identity (ResNet's residual connection).
pub const fn residual<'l>(body: &'l [Layer<'l>], shortcut: &'l [Layer<'l>]) -> Layer<'l> {
    Layer {
        kind: Kind::Merge {
            merge: Merge::Add,
            a: body,
            b: shortcut,
        },
        name: "",
    }
}
/// `torch.cat([a(x), b(x)], dim=1)`; an empty branch is the identity.
pub const fn concat<'l>(a: &'l [Layer<'l>], b: &'l [Layer<'l>]) -> Layer<'l> {
    Layer {
        kind: Kind::Merge {
            merge: Merge::Concat,
            a,
            b,
        },
        name: "",
    }
}
/// `nn.Bilinear(in1, in2, out)(a(x), b(x))`; an empty branch is the identity.
pub const fn bilinear<'l>(
    a: &'l [Layer<'l>],
    b: &'l [Layer<'l>],
    in1_features: usize,
    in2_features: usize,
    out_features: usize,
) -> Layer<'l> {
    Layer {
        kind: Kind::Merge {
            merge: Merge::Bilinear(Bilinear {
                in1_features,
                in2_features,
                out_features,
                bias: true,
            }),
            a,
            b,
        },
        name: "",
    }
}

// Builders: keyword arguments. Each one applies to the layers PyTorch accepts it on; anything
// else turns the layer into `Kind::Misuse`.

#[cfg(test)]
mod tests;
