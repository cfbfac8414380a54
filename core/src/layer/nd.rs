//! Constructors of the layers whose 1-d and 3-d versions join the 2-d ones: `BatchNorm3d`,
//! `AdaptiveAvgPool3d`/`AdaptiveMaxPool3d`, the 1-d and 3-d pads, and friends.
//!
//! They build the same [`Op`] variants as their 2-d siblings in the parent module (the spatial
//! dims are `[D, H, W]`, lower-dimensional layers keep 1s in front), so planning, kernels and
//! model files are shared.

use super::*;

/// `nn.BatchNorm3d(num_features)` over `[N, C, D, H, W]`.
pub const fn batch_norm3d(num_features: usize) -> Layer {
    batch_norm(3, num_features)
}

/// `nn.AdaptiveAvgPool3d((d, h, w))` over `[N, C, D, H, W]`.
pub const fn adaptive_avg_pool3d(d: usize, h: usize, w: usize) -> Layer {
    op(Op::AdaptiveAvgPool(Adaptive {
        dims: 3,
        output_size: [d, h, w],
    }))
}
/// `nn.AdaptiveMaxPool3d((d, h, w))` over `[N, C, D, H, W]`.
pub const fn adaptive_max_pool3d(d: usize, h: usize, w: usize) -> Layer {
    op(Op::AdaptiveMaxPool(Adaptive {
        dims: 3,
        output_size: [d, h, w],
    }))
}
