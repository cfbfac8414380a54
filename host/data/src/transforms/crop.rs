//! Crops, pads and flips: [`CenterCrop`], [`RandomCrop`], [`FiveCrop`], [`TenCrop`], [`Pad`],
//! [`RandomHorizontalFlip`], [`RandomVerticalFlip`], and their functionals.
//!
//! These move pixels without changing them, so images and tensors give the same result. Each
//! is one pass: every output row and column names its source (or the fill), and a padded
//! random crop reads straight from the unpadded image.

use super::pixels::{crop_axis, gather_planes, mirror_rows, pad_axis, Chw, Pixels};
use super::tensor::to_tensor;
use super::{round_half_even, transform_error, Fill, Padding, PaddingMode, Transform, HW};
use crate::{DataError, Sample, Tensor};

/// `(channels, height, width)` of an image or a `[..., C, H, W]` tensor.
pub(crate) fn dims(x: &Sample, what: &str) -> Result<(usize, usize, usize), DataError> {
    match x {
        Sample::Image(img) => Ok((
            img.color().channel_count() as usize,
            img.height() as usize,
            img.width() as usize,
        )),
        Sample::Tensor(t) => {
            let g = Chw::of(t, what)?;
            Ok((g.c, g.h, g.w))
        }
    }
}

/// Output row `r` of `x` is source row `rows[r]`, column likewise; `None` is `fill`.
pub(crate) fn remap(
    x: Sample,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
    fill: &Fill,
    what: &str,
) -> Result<Sample, DataError> {
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            let f = fill.levels(p.c, what)?;
            Ok(Sample::Image(p.gather(rows, cols, &f).into_image()))
        }
        Sample::Tensor(t) => {
            let g = Chw::of(&t, what)?;
            let f = fill.values(g.c, what)?;
            Ok(Sample::Tensor(gather_planes(&t, g, rows, cols, &f)))
        }
    }
}

/// `torchvision.transforms.functional.crop`: the `height x width` region whose top-left pixel is
/// `(top, left)`. Parts outside the image are black (zero), as PIL's `crop` and torchvision's
/// tensor crop.
///
/// # Errors
/// [`DataError::Transform`] for a tensor of fewer than 3 dimensions.
pub fn crop(x: Sample, top: isize, left: isize, height: usize, width: usize) -> Result<Sample, DataError> {
    let (_, h, w) = dims(&x, "crop")?;
    remap(
        x,
        &crop_axis(h, top, height),
        &crop_axis(w, left, width),
        &Fill::default(),
        "crop",
    )
}

/// The source rows (or columns) of a center crop of `len` from `n`, padding with zeros when
/// `len > n`, exactly as `torchvision.transforms.functional.center_crop`.
fn center_axis(n: usize, len: usize) -> Vec<Option<usize>> {
    if len > n {
        // pad (len - n) // 2 before, (len - n + 1) // 2 after; the padded axis is the crop.
        crop_axis(n, -(((len - n) / 2) as isize), len)
    } else {
        let start = round_half_even((n - len) as f64 / 2.0) as isize;
        crop_axis(n, start, len)
    }
}

/// `torchvision.transforms.functional.center_crop`: the central `size` region, with the
/// offset `round((H - h) / 2)` (Python's half-to-even rounding), padded with zeros where
/// `size` is larger than the image.
///
/// # Errors
/// [`DataError::Transform`] for a tensor of fewer than 3 dimensions.
pub fn center_crop(x: Sample, size: impl Into<HW>) -> Result<Sample, DataError> {
    let size = size.into();
    let (_, h, w) = dims(&x, "CenterCrop")?;
    remap(
        x,
        &center_axis(h, size.h),
        &center_axis(w, size.w),
        &Fill::default(),
        "CenterCrop",
    )
}

/// `torchvision.transforms.functional.pad`: `padding` added around the image, filled with
/// `fill` (`Constant`) or from the image (`Edge`, `Reflect`, `Symmetric`, as `numpy.pad`, so
/// also for borders wider than the image). Negative padding crops.
///
/// # Errors
/// [`DataError::Transform`] if `fill` has another number of values than the image channels.
pub fn pad(
    x: Sample,
    padding: impl Into<Padding>,
    fill: &Fill,
    padding_mode: PaddingMode,
) -> Result<Sample, DataError> {
    let p = padding.into();
    let (_, h, w) = dims(&x, "Pad")?;
    let rows = pad_axis(h, p.top, p.bottom, padding_mode);
    let cols = pad_axis(w, p.left, p.right, padding_mode);
    remap(x, &rows, &cols, fill, "Pad")
}

/// `torchvision.transforms.functional.hflip`: mirrored left to right.
///
/// # Errors
/// [`DataError::Transform`] for a tensor of fewer than 3 dimensions.
pub fn hflip(x: Sample) -> Result<Sample, DataError> {
    match x {
        Sample::Image(img) => {
            let mut p = Pixels::from_image(img);
            mirror_rows(&mut p.data, p.w, p.c);
            Ok(Sample::Image(p.into_image()))
        }
        Sample::Tensor(mut t) => {
            let g = Chw::of(&t, "hflip")?;
            mirror_rows(&mut t.data, g.w, 1);
            Ok(Sample::Tensor(t))
        }
    }
}

/// `torchvision.transforms.functional.vflip`: mirrored top to bottom.
///
/// # Errors
/// [`DataError::Transform`] for a tensor of fewer than 3 dimensions.
pub fn vflip(x: Sample) -> Result<Sample, DataError> {
    let (_, h, w) = dims(&x, "vflip")?;
    let rows: Vec<_> = (0..h).rev().map(Some).collect();
    let cols: Vec<_> = (0..w).map(Some).collect();
    remap(x, &rows, &cols, &Fill::default(), "vflip")
}

/// `torchvision.transforms.functional.five_crop`: the four corner crops and the center crop,
/// in torchvision's order (top-left, top-right, bottom-left, bottom-right, center).
///
/// # Errors
/// [`DataError::Transform`] if `size` is larger than the image.
pub fn five_crop(x: Sample, size: impl Into<HW>) -> Result<Vec<Sample>, DataError> {
    let s = size.into();
    let (_, h, w) = dims(&x, "FiveCrop")?;
    if s.h > h || s.w > w {
        return Err(transform_error(
            "FiveCrop",
            format!("requested crop size {s} is bigger than input size ({h}, {w})"),
        ));
    }
    let (b, r) = ((h - s.h) as isize, (w - s.w) as isize);
    let mut out = Vec::with_capacity(5);
    for (top, left) in [(0, 0), (0, r), (b, 0), (b, r)] {
        out.push(crop(x.clone(), top, left, s.h, s.w)?);
    }
    out.push(center_crop(x, s)?);
    Ok(out)
}

/// `torchvision.transforms.functional.ten_crop`: [`five_crop`] of the image, then of its
/// horizontal (or, with `vertical_flip`, vertical) mirror.
///
/// # Errors
/// [`DataError::Transform`] if `size` is larger than the image.
pub fn ten_crop(x: Sample, size: impl Into<HW>, vertical_flip: bool) -> Result<Vec<Sample>, DataError> {
    let s = size.into();
    let mut out = five_crop(x.clone(), s)?;
    let flipped = if vertical_flip { vflip(x)? } else { hflip(x)? };
    out.extend(five_crop(flipped, s)?);
    Ok(out)
}

/// Crops stacked into one tensor `[K, ...crop shape]`; images go through `to_tensor` first.
fn stack(crops: Vec<Sample>, what: &str) -> Result<Tensor, DataError> {
    let k = crops.len();
    let mut shape = Vec::new();
    let mut data = Vec::new();
    for c in crops {
        let t = match c {
            Sample::Image(img) => to_tensor(img),
            Sample::Tensor(t) => t,
        };
        if data.is_empty() {
            shape = t.shape.clone();
            data.reserve(k * t.numel());
        } else if t.shape != shape {
            return Err(transform_error(what, "crops of different shapes"));
        }
        data.extend_from_slice(&t.data);
    }
    shape.insert(0, k);
    Ok(Tensor { shape, data })
}

/// `transforms.CenterCrop(size)`: [`center_crop`].
#[derive(Clone, Copy, Debug)]
pub struct CenterCrop {
    size: HW,
}

impl CenterCrop {
    /// The central `size` region (`32` or `(h, w)`).
    pub fn new(size: impl Into<HW>) -> Self {
        CenterCrop { size: size.into() }
    }
}

impl Transform for CenterCrop {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        center_crop(x, self.size)
    }
    fn name(&self) -> String {
        format!("CenterCrop(size={})", self.size)
    }
}

/// `transforms.RandomCrop(size, padding=None, pad_if_needed=False, fill=0,
/// padding_mode='constant')`: the image is padded by `padding`, then (with `pad_if_needed`)
/// by as much as it still lacks on both sides of each axis, and a `size` region is cut at a
/// uniformly random position (`randint(0, H - h + 1)`, `randint(0, W - w + 1)`; no draw when
/// the image is exactly `size`). All in one pass over the unpadded image.
#[derive(Clone, Debug)]
pub struct RandomCrop {
    size: HW,
    padding: Option<Padding>,
    pad_if_needed: bool,
    fill: Fill,
    padding_mode: PaddingMode,
}

impl RandomCrop {
    /// A random `size` crop (`32` or `(h, w)`), no padding.
    pub fn new(size: impl Into<HW>) -> Self {
        RandomCrop {
            size: size.into(),
            padding: None,
            pad_if_needed: false,
            fill: Fill::default(),
            padding_mode: PaddingMode::Constant,
        }
    }
    /// Padding added first: `4`, `(lr, tb)` or `(l, t, r, b)`.
    pub fn padding(mut self, padding: impl Into<Padding>) -> Self {
        self.padding = Some(padding.into());
        self
    }
    /// Pads an image smaller than `size` (both sides of an axis, by the difference).
    pub fn pad_if_needed(mut self, pad_if_needed: bool) -> Self {
        self.pad_if_needed = pad_if_needed;
        self
    }
    /// The constant fill.
    pub fn fill(mut self, fill: impl Into<Fill>) -> Self {
        self.fill = fill.into();
        self
    }
    /// How the border is filled.
    pub fn padding_mode(mut self, padding_mode: PaddingMode) -> Self {
        self.padding_mode = padding_mode;
        self
    }

    /// The source rows or columns of one axis of `n` pixels after the padding steps.
    fn padded_axis(&self, n: usize, before: isize, after: isize, want: usize) -> Vec<Option<usize>> {
        let mut idx = if self.padding.is_some() {
            pad_axis(n, before, after, self.padding_mode)
        } else {
            (0..n).map(Some).collect()
        };
        if self.pad_if_needed && idx.len() < want {
            let d = (want - idx.len()) as isize;
            idx = pad_axis(idx.len(), d, d, self.padding_mode)
                .into_iter()
                .map(|j| j.and_then(|j| idx[j]))
                .collect();
        }
        idx
    }
}

impl Transform for RandomCrop {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let (_, h, w) = dims(&x, "RandomCrop")?;
        let p = self.padding.unwrap_or(Padding::from(0));
        let rows = self.padded_axis(h, p.top, p.bottom, self.size.h);
        let cols = self.padded_axis(w, p.left, p.right, self.size.w);
        let (ph, pw) = (rows.len(), cols.len());
        let (th, tw) = (self.size.h, self.size.w);
        if ph < th || pw < tw {
            return Err(transform_error(
                "RandomCrop",
                format!("required crop size ({th}, {tw}) is larger than input image size ({ph}, {pw})"),
            ));
        }
        let (i, j) = if ph == th && pw == tw {
            (0, 0)
        } else {
            let i = rng.below((ph - th + 1) as u32) as usize;
            (i, rng.below((pw - tw + 1) as u32) as usize)
        };
        remap(x, &rows[i..i + th], &cols[j..j + tw], &self.fill, "RandomCrop")
    }
    fn name(&self) -> String {
        match self.padding {
            Some(p) => format!("RandomCrop(size={}, padding={p})", self.size),
            None => format!("RandomCrop(size={}, padding=None)", self.size),
        }
    }
}

/// `transforms.Pad(padding, fill=0, padding_mode='constant')`: [`pad`].
#[derive(Clone, Debug)]
pub struct Pad {
    padding: Padding,
    fill: Fill,
    padding_mode: PaddingMode,
}

impl Pad {
    /// `padding` on each side: `4`, `(lr, tb)` or `(l, t, r, b)`.
    pub fn new(padding: impl Into<Padding>) -> Self {
        Pad {
            padding: padding.into(),
            fill: Fill::default(),
            padding_mode: PaddingMode::Constant,
        }
    }
    /// The constant fill.
    pub fn fill(mut self, fill: impl Into<Fill>) -> Self {
        self.fill = fill.into();
        self
    }
    /// How the border is filled.
    pub fn padding_mode(mut self, padding_mode: PaddingMode) -> Self {
        self.padding_mode = padding_mode;
        self
    }
}

impl Transform for Pad {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        pad(x, self.padding, &self.fill, self.padding_mode)
    }
    fn name(&self) -> String {
        format!(
            "Pad(padding={}, fill={}, padding_mode={})",
            self.padding,
            self.fill,
            self.padding_mode.torchvision_name()
        )
    }
}

fn check_p(p: f32, what: &str) -> f32 {
    assert!(
        (0.0..=1.0).contains(&p),
        "{what}: p should be a probability in [0, 1], got {p}"
    );
    p
}

/// `transforms.RandomHorizontalFlip(p=0.5)`: [`hflip`] when `rng.next_f32() < p`.
#[derive(Clone, Copy, Debug)]
pub struct RandomHorizontalFlip {
    p: f32,
}

impl RandomHorizontalFlip {
    /// Flips half the time.
    pub fn new() -> Self {
        RandomHorizontalFlip { p: 0.5 }
    }
    /// The probability of a flip.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]`.
    pub fn p(mut self, p: f32) -> Self {
        self.p = check_p(p, "RandomHorizontalFlip");
        self
    }
}

impl Default for RandomHorizontalFlip {
    fn default() -> Self {
        Self::new()
    }
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        if rng.next_f32() < self.p {
            hflip(x)
        } else {
            Ok(x)
        }
    }
    fn name(&self) -> String {
        format!("RandomHorizontalFlip(p={})", self.p)
    }
}

/// `transforms.RandomVerticalFlip(p=0.5)`: [`vflip`] when `rng.next_f32() < p`.
#[derive(Clone, Copy, Debug)]
pub struct RandomVerticalFlip {
    p: f32,
}

impl RandomVerticalFlip {
    /// Flips half the time.
    pub fn new() -> Self {
        RandomVerticalFlip { p: 0.5 }
    }
    /// The probability of a flip.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]`.
    pub fn p(mut self, p: f32) -> Self {
        self.p = check_p(p, "RandomVerticalFlip");
        self
    }
}

impl Default for RandomVerticalFlip {
    fn default() -> Self {
        Self::new()
    }
}

impl Transform for RandomVerticalFlip {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        if rng.next_f32() < self.p {
            vflip(x)
        } else {
            Ok(x)
        }
    }
    fn name(&self) -> String {
        format!("RandomVerticalFlip(p={})", self.p)
    }
}

/// `transforms.FiveCrop(size)`: the [`five_crop`]s, stacked into one tensor `[5, C, h, w]`
/// (images go through [`to_tensor`] first). This is torchvision's documented usage,
/// `FiveCrop(size)` followed by `Lambda(lambda crops: torch.stack([ToTensor()(c) for c in
/// crops]))`, in one transform: a sample stays one tensor. Put `Normalize` after it (it takes
/// `[..., C, H, W]`). For the crops as separate images, call [`five_crop`].
#[derive(Clone, Copy, Debug)]
pub struct FiveCrop {
    size: HW,
}

impl FiveCrop {
    /// Crops of `size` (`32` or `(h, w)`).
    pub fn new(size: impl Into<HW>) -> Self {
        FiveCrop { size: size.into() }
    }
}

impl Transform for FiveCrop {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        Ok(Sample::Tensor(stack(five_crop(x, self.size)?, "FiveCrop")?))
    }
    fn name(&self) -> String {
        format!("FiveCrop(size={})", self.size)
    }
}

/// `transforms.TenCrop(size, vertical_flip=False)`: the [`ten_crop`]s stacked into one tensor
/// `[10, C, h, w]`, as [`FiveCrop`].
#[derive(Clone, Copy, Debug)]
pub struct TenCrop {
    size: HW,
    vertical_flip: bool,
}

impl TenCrop {
    /// Crops of `size` (`32` or `(h, w)`), the second five from the horizontal mirror.
    pub fn new(size: impl Into<HW>) -> Self {
        TenCrop {
            size: size.into(),
            vertical_flip: false,
        }
    }
    /// Takes the second five from the vertical mirror instead.
    pub fn vertical_flip(mut self, vertical_flip: bool) -> Self {
        self.vertical_flip = vertical_flip;
        self
    }
}

impl Transform for TenCrop {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        Ok(Sample::Tensor(stack(
            ten_crop(x, self.size, self.vertical_flip)?,
            "TenCrop",
        )?))
    }
    fn name(&self) -> String {
        format!(
            "TenCrop(size={}, vertical_flip={})",
            self.size,
            if self.vertical_flip { "True" } else { "False" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: usize, w: usize) -> Sample {
        Sample::Tensor(Tensor::new(vec![1, h, w], (0..h * w).map(|v| v as f32).collect()).unwrap())
    }

    fn data(x: Sample) -> Vec<f32> {
        x.into_tensor("test").unwrap().data
    }

    #[test]
    fn center_crop_rounds_half_to_even_and_pads() {
        // Python's round: (5 - 2) / 2 = 1.5 -> 2, (6 - 1) / 2 = 2.5 -> 2, (7 - 2) / 2 = 2.5 -> 2
        assert_eq!(center_axis(5, 2), [Some(2), Some(3)]);
        assert_eq!(center_axis(6, 1), [Some(2)]);
        assert_eq!(center_axis(7, 2), [Some(2), Some(3)]);
        // 2 -> 5: pad 1 before, 2 after
        assert_eq!(center_axis(2, 5), [None, Some(0), Some(1), None, None]);
        assert_eq!(data(center_crop(t(3, 3), 1).unwrap()), [4.0]);
    }

    #[test]
    fn random_crop_with_padding_reads_through_the_border() {
        let rc = RandomCrop::new(2).padding(1).padding_mode(PaddingMode::Reflect);
        let rows = rc.padded_axis(2, 1, 1, 2);
        assert_eq!(rows, [Some(1), Some(0), Some(1), Some(0)]);
        let rc = RandomCrop::new((1, 5)).pad_if_needed(true);
        assert_eq!(
            rc.padded_axis(2, 0, 0, 5),
            [None, None, None, Some(0), Some(1), None, None, None]
        );
        let mut rng = torchlet::Rng::new(1);
        assert!(RandomCrop::new(4).apply(t(3, 3), &mut rng).is_err());
        // exactly the size: no draw, the image itself
        let before = rng;
        assert_eq!(
            data(RandomCrop::new(3).apply(t(3, 3), &mut rng).unwrap()),
            data(t(3, 3))
        );
        assert_eq!(rng, before);
    }

    #[test]
    fn flips_and_five_crop_order() {
        assert_eq!(data(hflip(t(2, 2)).unwrap()), [1.0, 0.0, 3.0, 2.0]);
        assert_eq!(data(vflip(t(2, 2)).unwrap()), [2.0, 3.0, 0.0, 1.0]);
        let crops = five_crop(t(3, 3), 2).unwrap();
        let firsts: Vec<f32> = crops.into_iter().map(|c| data(c)[0]).collect();
        assert_eq!(firsts, [0.0, 1.0, 3.0, 4.0, 0.0]);
        let tc = TenCrop::new(2)
            .apply(t(3, 3), &mut torchlet::Rng::new(0))
            .unwrap()
            .into_tensor("t")
            .unwrap();
        assert_eq!(tc.shape, [10, 1, 2, 2]);
        assert!(five_crop(t(3, 3), 4).is_err());
    }
}
