//! torchvision's transforms, with its names, argument names, defaults and semantics.
//!
//! A [`Transform`] turns one [`Sample`] into another: images (what torchvision calls PIL
//! images, here [`image::DynamicImage`]s with 8-bit gray, gray+alpha, RGB or RGBA pixels) go
//! through the geometric and colour transforms exactly as PIL computes them, [`ToTensor`]
//! turns them into `[C, H, W]` `f32` tensors in `[0, 1]`, and [`Normalize`] and the tensor
//! paths of the other transforms work on those. The usual CIFAR-10 training pipeline:
//!
//! ```
//! use torchlet_data::transforms::*;
//! use torchlet_data::Sample;
//!
//! let train = Compose::new(vec![
//!     RandomCrop::new(32).padding(4).boxed(),
//!     RandomHorizontalFlip::new().boxed(),
//!     ToTensor.boxed(),
//!     Normalize::new([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]).boxed(),
//! ]);
//! let img = image::DynamicImage::new_rgb8(32, 32);
//! let mut rng = torchlet::Rng::new(7);
//! let x = train.apply(Sample::Image(img), &mut rng)?.into_tensor("example")?;
//! assert_eq!(x.shape, [3, 32, 32]);
//! # Ok::<(), torchlet_data::DataError>(())
//! ```
//!
//! The families, one file each:
//!
//! - [`tensor`]: [`ToTensor`], [`ToPILImage`], [`Normalize`], [`Lambda`];
//! - [`mod@crop`]: [`CenterCrop`], [`RandomCrop`], [`FiveCrop`], [`TenCrop`], [`Pad`], the flips;
//! - [`mod@resize`]: [`Resize`], [`RandomResizedCrop`] (PIL's antialiased resampling, bit-exact);
//! - [`mod@affine`]: [`RandomRotation`], [`RandomAffine`] and the `rotate` / `affine` functionals;
//! - [`color`]: [`ColorJitter`], [`Grayscale`], [`RandomGrayscale`] and the `adjust_*`
//!   functionals;
//! - [`compose`]: [`Compose`], [`RandomApply`], [`RandomChoice`], and [`Transformed`], a dataset
//!   with its `transform` and `target_transform`;
//! - [`grid`]: [`make_grid`] and [`save_image`], as `torchvision.utils`.
//!
//! Each family also has torchvision's functionals (`transforms.functional`): `crop`, `pad`,
//! `resize`, `rotate`, `adjust_hue`... on a [`Sample`], with fixed parameters.
//!
//! ## Randomness
//!
//! A random transform draws only from the [`torchlet::Rng`] it is given, so a seed (the
//! [`DataLoader`](crate::loader::DataLoader) derives one per sample and epoch) repeats a
//! run exactly. torchvision's draws map as: `torch.rand(1) < p` is `rng.next_f32() < p`,
//! `torch.randint(0, n)` is `rng.below(n)`, `uniform_(a, b)` is `rng.uniform(a, b)`. The
//! generator is not PyTorch's, so the same seed gives other crops than torchvision; the
//! distributions are the same.
//!
//! ## Arguments
//!
//! Required arguments go to `new`, optional ones are builder methods named as torchvision's
//! keyword arguments: `RandomCrop::new(32).padding(4).padding_mode(PaddingMode::Reflect)`.
//! Arguments that torchvision rejects when the transform is built (a negative probability, an
//! empty `Compose` choice, a zero standard deviation) panic there, with torchvision's message;
//! a transform that cannot apply to its input (a crop larger than the image, a grayscale
//! conversion of a 2-channel tensor) returns [`DataError::Transform`] naming the transform.

use crate::{DataError, Sample};

pub mod affine;
pub mod color;
pub mod compose;
pub mod crop;
pub mod grid;
mod pixels;
pub mod resize;
pub mod tensor;

pub use affine::{affine, rotate, RandomAffine, RandomRotation};
pub use color::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, rgb_to_grayscale, ColorJitter, Grayscale,
    RandomGrayscale,
};
pub use compose::{with_transform, Compose, RandomApply, RandomChoice, TargetTransform, Transformed};
pub use crop::{
    center_crop, crop, five_crop, hflip, pad, ten_crop, vflip, CenterCrop, FiveCrop, Pad, RandomCrop,
    RandomHorizontalFlip, RandomVerticalFlip, TenCrop,
};
pub use grid::{make_grid, save_image, GridOptions};
pub use resize::{resize, resized_crop, RandomResizedCrop, Resize, Size};
pub use tensor::{normalize, to_pil_image, to_tensor, Lambda, Normalize, ToPILImage, ToTensor};

/// A transform from one sample to another, as torchvision's transform objects (`__call__`).
///
/// Transforms are `Send + Sync`: loader workers share one. Implement it for your own
/// augmentation, or wrap a closure in [`Lambda`].
pub trait Transform: Send + Sync {
    /// Transforms `x`, drawing any randomness from `rng`.
    ///
    /// # Errors
    /// [`DataError::Transform`] when the transform cannot apply to `x` (a tensor where an
    /// image is needed, a crop larger than the image...).
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError>;

    /// The transform as torchvision prints it: `RandomCrop(size=(32, 32), padding=4)`.
    fn name(&self) -> String;

    /// The transform behind a `Box<dyn Transform>`, for [`Compose`] and friends.
    fn boxed(self) -> Box<dyn Transform>
    where
        Self: Sized + 'static,
    {
        Box::new(self)
    }
}

impl<T: Transform + ?Sized> Transform for Box<T> {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        (**self).apply(x, rng)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

impl<T: Transform + ?Sized> Transform for std::sync::Arc<T> {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        (**self).apply(x, rng)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

/// How pixels are resampled (`torchvision.transforms.InterpolationMode`).
///
/// On images every mode is PIL's filter (`NearestExact` is PIL's nearest too). On tensors,
/// `Nearest`, `NearestExact`, `Bilinear` and `Bicubic` are `torch.nn.functional.interpolate`'s
/// modes; the others are PIL-only, as in torchvision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Nearest neighbour (`NEAREST`); on tensors PyTorch's `nearest` (`floor(dst * scale)`).
    Nearest,
    /// `NEAREST_EXACT`: `floor((dst + 0.5) * scale)`, PIL's nearest.
    NearestExact,
    /// Bilinear (`BILINEAR`), the default of `Resize`.
    Bilinear,
    /// Bicubic (`BICUBIC`): Keys' cubic, `a = -0.5` (PIL and antialiased tensors) or `-0.75`
    /// (tensors without antialias, as PyTorch).
    Bicubic,
    /// Box filter (`BOX`), images only.
    Box,
    /// Hamming-windowed filter (`HAMMING`), images only.
    Hamming,
    /// Lanczos, 3 lobes (`LANCZOS`), images only.
    Lanczos,
}

impl Interpolation {
    /// torchvision's name, as `repr` prints it.
    pub fn torchvision_name(self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest",
            Interpolation::NearestExact => "nearest-exact",
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
            Interpolation::Box => "box",
            Interpolation::Hamming => "hamming",
            Interpolation::Lanczos => "lanczos",
        }
    }
}

/// A height and width, built as torchvision reads a `size` argument: one number is a square,
/// a pair is `(h, w)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HW {
    /// Height in pixels.
    pub h: usize,
    /// Width in pixels.
    pub w: usize,
}

impl From<usize> for HW {
    fn from(s: usize) -> Self {
        HW { h: s, w: s }
    }
}

impl From<(usize, usize)> for HW {
    fn from((h, w): (usize, usize)) -> Self {
        HW { h, w }
    }
}

impl From<[usize; 2]> for HW {
    fn from([h, w]: [usize; 2]) -> Self {
        HW { h, w }
    }
}

impl std::fmt::Display for HW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.h, self.w)
    }
}

/// Padding on each side, read as torchvision reads `padding`: one number for all sides,
/// `(left/right, top/bottom)`, or `(left, top, right, bottom)`. Negative values crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padding {
    /// Columns added on the left.
    pub left: isize,
    /// Rows added on top.
    pub top: isize,
    /// Columns added on the right.
    pub right: isize,
    /// Rows added at the bottom.
    pub bottom: isize,
}

impl From<isize> for Padding {
    fn from(p: isize) -> Self {
        Padding {
            left: p,
            top: p,
            right: p,
            bottom: p,
        }
    }
}

impl From<(isize, isize)> for Padding {
    fn from((lr, tb): (isize, isize)) -> Self {
        Padding {
            left: lr,
            top: tb,
            right: lr,
            bottom: tb,
        }
    }
}

impl From<(isize, isize, isize, isize)> for Padding {
    fn from((left, top, right, bottom): (isize, isize, isize, isize)) -> Self {
        Padding {
            left,
            top,
            right,
            bottom,
        }
    }
}

impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Padding {
            left,
            top,
            right,
            bottom,
        } = *self;
        if left == top && top == right && right == bottom {
            write!(f, "{left}")
        } else {
            write!(f, "[{left}, {top}, {right}, {bottom}]")
        }
    }
}

/// How [`Pad`] and [`RandomCrop`] fill the border (`padding_mode`), as `numpy.pad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PaddingMode {
    /// The `fill` value.
    #[default]
    Constant,
    /// The last pixel repeated.
    Edge,
    /// Mirrored without repeating the edge: `[1, 2, 3, 4]` padded by 2 is `[3, 2, 1, 2, 3, 4, 3, 2]`.
    Reflect,
    /// Mirrored with the edge repeated: `[1, 2, 3, 4]` padded by 2 is `[2, 1, 1, 2, 3, 4, 4, 3]`.
    Symmetric,
}

impl PaddingMode {
    /// torchvision's name.
    pub fn torchvision_name(self) -> &'static str {
        match self {
            PaddingMode::Constant => "constant",
            PaddingMode::Edge => "edge",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Symmetric => "symmetric",
        }
    }
}

/// A fill colour (`fill`): one value for every channel, or one per channel.
///
/// On images the values are pixel levels (`0..=255`, truncated to integers as torchvision
/// does); on tensors they are used as they are.
#[derive(Clone, Debug, PartialEq)]
pub enum Fill {
    /// The same value in every channel.
    Value(f32),
    /// One value per channel.
    Channels(Vec<f32>),
}

impl Default for Fill {
    fn default() -> Self {
        Fill::Value(0.0)
    }
}

impl From<f32> for Fill {
    fn from(v: f32) -> Self {
        Fill::Value(v)
    }
}

impl From<u8> for Fill {
    fn from(v: u8) -> Self {
        Fill::Value(v as f32)
    }
}

impl From<i32> for Fill {
    fn from(v: i32) -> Self {
        Fill::Value(v as f32)
    }
}

impl<const N: usize> From<[f32; N]> for Fill {
    fn from(v: [f32; N]) -> Self {
        Fill::Channels(v.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for Fill {
    fn from(v: [u8; N]) -> Self {
        Fill::Channels(v.iter().map(|&x| x as f32).collect())
    }
}

impl From<Vec<f32>> for Fill {
    fn from(v: Vec<f32>) -> Self {
        Fill::Channels(v)
    }
}

impl Fill {
    /// The fill as `channels` values, or an error naming `what` if the count does not match.
    pub(crate) fn values(&self, channels: usize, what: &str) -> Result<Vec<f32>, DataError> {
        match self {
            Fill::Value(v) => Ok(vec![*v; channels]),
            Fill::Channels(v) if v.len() == 1 => Ok(vec![v[0]; channels]),
            Fill::Channels(v) if v.len() == channels => Ok(v.clone()),
            Fill::Channels(v) => Err(DataError::Transform {
                name: what.into(),
                reason: format!(
                    "the number of elements in 'fill' does not match the number of channels of the image ({} != {channels})",
                    v.len()
                ),
            }),
        }
    }

    /// The fill as pixel levels: `int(x)` as torchvision's `_parse_fill`, clamped to `0..=255`.
    pub(crate) fn levels(&self, channels: usize, what: &str) -> Result<Vec<u8>, DataError> {
        Ok(self
            .values(channels, what)?
            .iter()
            .map(|&v| v.trunc().clamp(0.0, 255.0) as u8)
            .collect())
    }
}

impl std::fmt::Display for Fill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fill::Value(v) => write!(f, "{v}"),
            Fill::Channels(v) => write!(f, "{v:?}"),
        }
    }
}

/// A `DataError::Transform` for `name`.
pub(crate) fn transform_error(name: &str, reason: impl Into<String>) -> DataError {
    DataError::Transform {
        name: name.into(),
        reason: reason.into(),
    }
}

/// Python's `round` (half to even), as torchvision's `int(round(x))`.
pub(crate) fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_even_matches_python() {
        for (x, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (-0.5, 0.0),
            (-1.5, -2.0),
            (2.4, 2.0),
            (2.6, 3.0),
            (3.0, 3.0),
        ] {
            assert_eq!(round_half_even(x), r, "round({x})");
        }
    }

    #[test]
    fn fill_counts_channels() {
        assert_eq!(Fill::from(3.0).values(2, "t").unwrap(), [3.0, 3.0]);
        assert_eq!(Fill::from([1.0f32]).values(3, "t").unwrap(), [1.0; 3]);
        assert!(Fill::from([1.0f32, 2.0]).values(3, "t").is_err());
        assert_eq!(Fill::from(300.7f32).levels(1, "t").unwrap(), [255]);
        assert_eq!(Fill::from(12.9f32).levels(1, "t").unwrap(), [12]);
    }

    #[test]
    fn sizes_and_padding_read_as_torchvision() {
        assert_eq!(HW::from(5), HW { h: 5, w: 5 });
        assert_eq!(HW::from((2, 3)), HW { h: 2, w: 3 });
        assert_eq!(
            Padding::from((1, 2)),
            Padding {
                left: 1,
                top: 2,
                right: 1,
                bottom: 2
            }
        );
        assert_eq!(Padding::from((1, 2, 3, 4)).to_string(), "[1, 2, 3, 4]");
    }
}
