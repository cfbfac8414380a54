//! Constructors of the layers whose 1-d and 3-d versions join the 2-d ones: `BatchNorm3d`,
//! `AdaptiveAvgPool3d`/`AdaptiveMaxPool3d`, the 1-d and 3-d pads, `ConvTranspose1d/3d`,
//! `MaxUnpool1d/3d` (appended `Op` variants carrying the dims), `Dropout1d/2d/3d`, and
//! `ChannelShuffle`.
//!
//! They build the same [`Op`] variants as their 2-d siblings in the parent module (the spatial
//! dims are `[D, H, W]`, lower-dimensional layers keep 1s in front), so planning, kernels and
//! model files are shared.

use super::*;

/// `nn.BatchNorm3d(num_features)` over `[N, C, D, H, W]`.
pub const fn batch_norm3d(num_features: usize) -> Layer<'static> {
    batch_norm(3, num_features)
}

/// `nn.AdaptiveAvgPool3d((d, h, w))` over `[N, C, D, H, W]`.
pub const fn adaptive_avg_pool3d(d: usize, h: usize, w: usize) -> Layer<'static> {
    op(Op::AdaptiveAvgPool(Adaptive {
        dims: 3,
        output_size: [d, h, w],
    }))
}
/// `nn.AdaptiveMaxPool3d((d, h, w))` over `[N, C, D, H, W]`.
pub const fn adaptive_max_pool3d(d: usize, h: usize, w: usize) -> Layer<'static> {
    op(Op::AdaptiveMaxPool(Adaptive {
        dims: 3,
        output_size: [d, h, w],
    }))
}

/// PyTorch's class name of an N-d pad (`ReflectionPad3d`).
pub(super) const fn pad_name(p: &Pad) -> &'static str {
    const NAMES: [[&str; 3]; 4] = [
        ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d"],
        ["ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d"],
        ["ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d"],
        ["CircularPad1d", "CircularPad2d", "CircularPad3d"],
    ];
    let mode = match p.mode {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Circular => 3,
    };
    let d = match p.dims {
        1 => 0,
        2 => 1,
        _ => 2,
    };
    NAMES[mode][d]
}

const fn pad1d(mode: PaddingMode, [left, right]: [usize; 2]) -> Layer<'static> {
    op(Op::Pad(Pad {
        dims: 1,
        mode,
        padding: [left, right, 0, 0, 0, 0],
    }))
}
const fn pad3d(mode: PaddingMode, padding: [usize; 6]) -> Layer<'static> {
    op(Op::Pad(Pad { dims: 3, mode, padding }))
}
/// `nn.ZeroPad1d((left, right))` over `[N, C, L]`.
pub const fn zero_pad1d(padding: [usize; 2]) -> Layer<'static> {
    pad1d(PaddingMode::Zeros, padding)
}
/// `nn.ReflectionPad1d((left, right))` over `[N, C, L]`.
pub const fn reflection_pad1d(padding: [usize; 2]) -> Layer<'static> {
    pad1d(PaddingMode::Reflect, padding)
}
/// `nn.ReplicationPad1d((left, right))` over `[N, C, L]`.
pub const fn replication_pad1d(padding: [usize; 2]) -> Layer<'static> {
    pad1d(PaddingMode::Replicate, padding)
}
/// `nn.CircularPad1d((left, right))` over `[N, C, L]`.
pub const fn circular_pad1d(padding: [usize; 2]) -> Layer<'static> {
    pad1d(PaddingMode::Circular, padding)
}
/// `nn.ZeroPad3d((left, right, top, bottom, front, back))` over `[N, C, D, H, W]`.
pub const fn zero_pad3d(padding: [usize; 6]) -> Layer<'static> {
    pad3d(PaddingMode::Zeros, padding)
}
/// `nn.ReflectionPad3d((left, right, top, bottom, front, back))` over `[N, C, D, H, W]`.
pub const fn reflection_pad3d(padding: [usize; 6]) -> Layer<'static> {
    pad3d(PaddingMode::Reflect, padding)
}
/// `nn.ReplicationPad3d((left, right, top, bottom, front, back))` over `[N, C, D, H, W]`.
pub const fn replication_pad3d(padding: [usize; 6]) -> Layer<'static> {
    pad3d(PaddingMode::Replicate, padding)
}
/// `nn.CircularPad3d((left, right, top, bottom, front, back))` over `[N, C, D, H, W]`.
pub const fn circular_pad3d(padding: [usize; 6]) -> Layer<'static> {
    pad3d(PaddingMode::Circular, padding)
}

/// PyTorch's class name of an N-d transposed convolution (`ConvTranspose3d`).
pub(super) const fn conv_transpose_name(dims: u8) -> &'static str {
    match dims {
        1 => "ConvTranspose1d",
        2 => "ConvTranspose2d",
        _ => "ConvTranspose3d",
    }
}

const fn conv_transpose(dims: u8, in_channels: usize, out_channels: usize, k: usize) -> Layer<'static> {
    op(Op::ConvTransposeNd(
        ConvTranspose {
            in_channels,
            out_channels,
            kernel_size: spatial(dims, k, 1),
            stride: [1; 3],
            padding: [0; 3],
            output_padding: [0; 3],
            groups: 1,
            bias: true,
            dilation: [1; 3],
        },
        dims,
    ))
}
/// `nn.ConvTranspose1d(in_channels, out_channels, kernel_size)` over `[N, C, L]`.
pub const fn conv_transpose1d(in_channels: usize, out_channels: usize, kernel_size: usize) -> Layer<'static> {
    conv_transpose(1, in_channels, out_channels, kernel_size)
}
/// `nn.ConvTranspose3d(in_channels, out_channels, kernel_size)` over `[N, C, D, H, W]`.
pub const fn conv_transpose3d(in_channels: usize, out_channels: usize, kernel_size: usize) -> Layer<'static> {
    conv_transpose(3, in_channels, out_channels, kernel_size)
}

/// PyTorch's class name of an N-d max unpool (`MaxUnpool3d`).
pub(super) const fn max_unpool_name(dims: u8) -> &'static str {
    match dims {
        1 => "MaxUnpool1d",
        2 => "MaxUnpool2d",
        _ => "MaxUnpool3d",
    }
}

const fn max_unpool(dims: u8, k: usize) -> Layer<'static> {
    op(Op::MaxUnpoolNd(
        MaxUnpool {
            kernel_size: spatial(dims, k, 1),
            stride: spatial(dims, k, 1),
            padding: [0; 3],
        },
        dims,
    ))
}
/// `nn.MaxUnpool1d(kernel_size)` over `[N, C, L]`; stride defaults to the kernel size. Uses the
/// indices of the most recent unmatched `max_pool1d(..).return_indices(true)`.
pub const fn max_unpool1d(kernel_size: usize) -> Layer<'static> {
    max_unpool(1, kernel_size)
}
/// `nn.MaxUnpool3d(kernel_size)` over `[N, C, D, H, W]`; stride defaults to the kernel size.
/// Uses the indices of the most recent unmatched `max_pool3d(..).return_indices(true)`.
pub const fn max_unpool3d(kernel_size: usize) -> Layer<'static> {
    max_unpool(3, kernel_size)
}

/// PyTorch's class name of a channel dropout (`Dropout2d`).
pub(super) const fn channel_dropout_name(dims: u8) -> &'static str {
    match dims {
        1 => "Dropout1d",
        2 => "Dropout2d",
        _ => "Dropout3d",
    }
}
/// `nn.Dropout1d(p)` over `[N, C, L]`: each channel is zeroed with probability `p`, the others
/// scaled by `1 / (1 - p)` (training); the identity in eval. PyTorch's default p is 0.5.
pub const fn dropout1d(p: f32) -> Layer<'static> {
    op(Op::ChannelDropout(p, 1))
}
/// `nn.Dropout2d(p)` over `[N, C, H, W]`, as [`dropout1d`].
pub const fn dropout2d(p: f32) -> Layer<'static> {
    op(Op::ChannelDropout(p, 2))
}
/// `nn.Dropout3d(p)` over `[N, C, D, H, W]`, as [`dropout1d`].
pub const fn dropout3d(p: f32) -> Layer<'static> {
    op(Op::ChannelDropout(p, 3))
}

/// `nn.ChannelShuffle(groups)` over `[N, C, *spatial]`: output channel `j · groups + i` is
/// input channel `i · (C / groups) + j`.
pub const fn channel_shuffle(groups: usize) -> Layer<'static> {
    op(Op::ChannelShuffle(groups))
}
