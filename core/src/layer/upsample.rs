//! `nn.Upsample` and `nn.UpsamplingNearest2d`/`nn.UpsamplingBilinear2d`: constructors and
//! builders.

use super::*;

/// `nn.Upsample`'s `mode` (the 4-d ones torchlet has).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UpsampleMode {
    /// `'nearest'` (PyTorch's legacy nearest: `floor(dst · r)`).
    Nearest,
    /// `'bilinear'`.
    Bilinear,
}

/// `nn.Upsample(size, scale_factor, mode, align_corners)` over `[N, C, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Upsample {
    /// `size=(h, w)`, or `[0, 0]` when `scale_factor` is given.
    pub size: [usize; 2],
    /// `scale_factor` (the same for both dims), or 0 when `size` is given.
    pub scale_factor: f32,
    /// `mode` (default nearest).
    pub mode: UpsampleMode,
    /// `align_corners` (bilinear only; PyTorch's `None` is false).
    pub align_corners: bool,
}

/// `nn.Upsample(size=(h, w))` (mode nearest; see [`Layer::bilinear`]).
pub const fn upsample_size(h: usize, w: usize) -> Layer<'static> {
    op(Op::Upsample(Upsample {
        size: [h, w],
        scale_factor: 0.0,
        mode: UpsampleMode::Nearest,
        align_corners: false,
    }))
}
/// `nn.Upsample(scale_factor=s)` (mode nearest; see [`Layer::bilinear`]). The output size is
/// `floor(in · s)`.
pub const fn upsample_scale(scale_factor: f32) -> Layer<'static> {
    op(Op::Upsample(Upsample {
        size: [0, 0],
        scale_factor,
        mode: UpsampleMode::Nearest,
        align_corners: false,
    }))
}

impl Layer<'_> {
    /// `mode='bilinear'` (Upsample).
    pub const fn bilinear(self) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Upsample(u)) => u.mode = UpsampleMode::Bilinear,
            _ => return self.misuse("bilinear() applies to Upsample only"),
        }
        l
    }

    /// `align_corners=b` (Upsample with mode bilinear).
    pub const fn align_corners(self, b: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Upsample(u)) => u.align_corners = b,
            _ => return self.misuse("align_corners() applies to Upsample only"),
        }
        l
    }
}
