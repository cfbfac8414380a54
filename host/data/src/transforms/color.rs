//! Colour transforms: [`ColorJitter`], [`Grayscale`], [`RandomGrayscale`], and the functionals
//! they use: [`adjust_brightness`], [`adjust_contrast`], [`adjust_saturation`], [`adjust_hue`],
//! [`rgb_to_grayscale`].
//!
//! On images these are PIL's `ImageEnhance` and mode conversions, bit for bit: a blend with a
//! "degenerate" image (black, the mean gray level, the grayscale image) in `f32`, truncated to
//! 8 bits; gray is ITU-R 601-2 luma in PIL's fixed point,
//! `(19595 R + 38470 G + 7471 B + 32768) >> 16`; hue is shifted in PIL's 8-bit HSV. On tensors
//! they are torchvision's tensor formulas (`0.2989 R + 0.587 G + 0.114 B`, float HSV), with
//! results clamped to `[0, 1]`.

use super::crop::dims;
use super::pixels::{Chw, Pixels};
use super::{transform_error, Transform};
use crate::{DataError, Sample, Tensor};

/// PIL's `L` of one pixel of `c` channels (L, LA, RGB, RGBA).
fn luma(px: &[u8]) -> u8 {
    if px.len() < 3 {
        px[0]
    } else {
        ((px[0] as u32 * 19595 + px[1] as u32 * 38470 + px[2] as u32 * 7471 + 0x8000) >> 16) as u8
    }
}

/// PIL's `Image.blend(im1, im2, alpha)`: `im1 + alpha * (im2 - im1)` in `f32`, truncated to 8
/// bits (clipped when extrapolating).
fn blend(im1: &Pixels, im2: &Pixels, alpha: f32) -> Pixels {
    if alpha == 0.0 {
        return im1.clone();
    }
    if alpha == 1.0 {
        return im2.clone();
    }
    let data = im1
        .data
        .iter()
        .zip(&im2.data)
        .map(|(&a, &b)| {
            let t = a as i32 as f32 + alpha * (b as i32 - a as i32) as f32;
            // `as u8` truncates toward zero and saturates: PIL's (UINT8) cast in range, its
            // clip when extrapolating.
            t as u8
        })
        .collect();
    Pixels {
        w: im2.w,
        h: im2.h,
        c: im2.c,
        data,
    }
}

/// An image of `p`'s size and mode whose colour channels are `level(pixel)` and whose alpha
/// (if any) is `p`'s: PIL's degenerate images.
fn degenerate(p: &Pixels, level: impl Fn(&[u8]) -> u8) -> Pixels {
    let c = p.c;
    let mut data = Vec::with_capacity(p.data.len());
    for px in p.data.chunks_exact(c) {
        let v = level(px);
        match c {
            1 => data.push(v),
            2 => data.extend_from_slice(&[v, px[1]]),
            3 => data.extend_from_slice(&[v, v, v]),
            _ => data.extend_from_slice(&[v, v, v, px[3]]),
        }
    }
    Pixels {
        w: p.w,
        h: p.h,
        c,
        data,
    }
}

/// torchvision's `_blend` on tensors: `(ratio * a + (1 - ratio) * b).clamp(0, 1)`.
fn blend_f(a: f32, b: f32, ratio: f32) -> f32 {
    (ratio * a + ((1.0 - ratio as f64) as f32) * b).clamp(0.0, 1.0)
}

/// Checks a tensor has 1 or 3 channels, as torchvision's colour functionals.
fn colour_tensor(t: &Tensor, what: &str) -> Result<Chw, DataError> {
    let g = Chw::of(t, what)?;
    if g.c != 1 && g.c != 3 {
        return Err(transform_error(
            what,
            format!(
                "input image tensor permitted channel values are [1, 3], but found {}",
                g.c
            ),
        ));
    }
    Ok(g)
}

/// torchvision's tensor `rgb_to_grayscale` of one `[3, H, W]` image into `out` (`H * W`).
fn gray_plane(img: &[f32], plane: usize, out: &mut Vec<f32>) {
    let (r, rest) = img.split_at(plane);
    let (g, b) = rest.split_at(plane);
    out.extend((0..plane).map(|i| 0.2989f32 * r[i] + 0.587f32 * g[i] + 0.114f32 * b[i]));
}

fn check_factor(f: f32, what: &str) -> Result<(), DataError> {
    if f < 0.0 {
        return Err(transform_error(what, format!("factor ({f}) is not non-negative")));
    }
    Ok(())
}

/// `torchvision.transforms.functional.adjust_brightness`: a blend with black, `factor` 0 gives
/// black, 1 the image, 2 twice as bright (clipped).
///
/// # Errors
/// [`DataError::Transform`] for a negative factor or a tensor of other than 1 or 3 channels.
pub fn adjust_brightness(x: Sample, factor: f32) -> Result<Sample, DataError> {
    check_factor(factor, "adjust_brightness")?;
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            Ok(Sample::Image(blend(&degenerate(&p, |_| 0), &p, factor).into_image()))
        }
        Sample::Tensor(mut t) => {
            colour_tensor(&t, "adjust_brightness")?;
            for v in &mut t.data {
                *v = blend_f(*v, 0.0, factor);
            }
            Ok(Sample::Tensor(t))
        }
    }
}

/// `torchvision.transforms.functional.adjust_contrast`: a blend with the mean gray level
/// (PIL: the mean of the `L` image, rounded to a level), 0 gives solid gray, 1 the image.
///
/// # Errors
/// [`DataError::Transform`] for a negative factor or a tensor of other than 1 or 3 channels.
pub fn adjust_contrast(x: Sample, factor: f32) -> Result<Sample, DataError> {
    check_factor(factor, "adjust_contrast")?;
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            let n = (p.w * p.h).max(1);
            let sum: u64 = p.data.chunks_exact(p.c).map(|px| luma(px) as u64).sum();
            let mean = (sum as f64 / n as f64 + 0.5) as u8;
            Ok(Sample::Image(blend(&degenerate(&p, |_| mean), &p, factor).into_image()))
        }
        Sample::Tensor(mut t) => {
            let g = colour_tensor(&t, "adjust_contrast")?;
            let plane = g.h * g.w;
            let size = g.c * plane;
            for img in t.data.chunks_exact_mut(size.max(1)).take(g.n) {
                let mean = if g.c == 3 {
                    let mut gray = Vec::with_capacity(plane);
                    gray_plane(img, plane, &mut gray);
                    gray.iter().map(|&v| v as f64).sum::<f64>() / plane as f64
                } else {
                    img.iter().map(|&v| v as f64).sum::<f64>() / plane as f64
                } as f32;
                for v in img.iter_mut() {
                    *v = blend_f(*v, mean, factor);
                }
            }
            Ok(Sample::Tensor(t))
        }
    }
}

/// `torchvision.transforms.functional.adjust_saturation`: a blend with the grayscale image,
/// 0 gives gray, 1 the image, 2 doubly saturated. Gray images are returned unchanged.
///
/// # Errors
/// [`DataError::Transform`] for a negative factor or a tensor of other than 1 or 3 channels.
pub fn adjust_saturation(x: Sample, factor: f32) -> Result<Sample, DataError> {
    check_factor(factor, "adjust_saturation")?;
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            if p.c < 3 {
                return Ok(Sample::Image(p.into_image()));
            }
            Ok(Sample::Image(blend(&degenerate(&p, luma), &p, factor).into_image()))
        }
        Sample::Tensor(mut t) => {
            let g = colour_tensor(&t, "adjust_saturation")?;
            if g.c == 1 {
                return Ok(Sample::Tensor(t));
            }
            let plane = g.h * g.w;
            let mut gray = Vec::with_capacity(plane);
            for img in t.data.chunks_exact_mut((3 * plane).max(1)).take(g.n) {
                gray.clear();
                gray_plane(img, plane, &mut gray);
                for (i, v) in img.iter_mut().enumerate() {
                    *v = blend_f(*v, gray[i % plane], factor);
                }
            }
            Ok(Sample::Tensor(t))
        }
    }
}

/// PIL's `rgb2hsv` of one pixel (`Convert.c`, following `colorsys`), 8-bit H, S, V.
fn pil_rgb_to_hsv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    if minc == maxc {
        return (0, 0, maxc);
    }
    let cr = (maxc - minc) as f32;
    let s = cr / maxc as f32;
    let rc = (maxc - r) as f32 / cr;
    let gc = (maxc - g) as f32 / cr;
    let bc = (maxc - b) as f32 / cr;
    // h is a C float; the constants are doubles, so the sums are done in double.
    let h: f32 = if r == maxc {
        bc - gc
    } else if g == maxc {
        (2.0 + rc as f64 - bc as f64) as f32
    } else {
        (4.0 + gc as f64 - rc as f64) as f32
    };
    let h = ((h as f64 / 6.0 + 1.0) % 1.0) as f32;
    let clip8 = |v: i32| v.clamp(0, 255) as u8;
    (clip8((h as f64 * 255.0) as i32), clip8((s as f64 * 255.0) as i32), maxc)
}

/// PIL's `hsv2rgb` of one pixel.
fn pil_hsv_to_rgb(h: u8, s: u8, v: u8) -> [u8; 3] {
    if s == 0 {
        return [v, v, v];
    }
    let hh = h as f32 as f64 * 6.0 / 255.0;
    let i = hh.floor() as i32;
    let f = (hh - i as f32 as f64) as f32;
    let fs = (s as f32 as f64 / 255.0) as f32;
    let vf = v as f32 as f64;
    let clip8 = |x: f64| (x.round() as i32).clamp(0, 255) as u8;
    let p = clip8(vf * (1.0 - fs as f64));
    let q = clip8(vf * (1.0 - (fs * f) as f64));
    let t = clip8(vf * (1.0 - fs as f64 * (1.0 - f as f64)));
    match i % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// torchvision's tensor `_rgb2hsv` of one pixel.
fn rgb_to_hsv_f(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let d = if eqc { 1.0 } else { cr };
    let (rc, gc, bc) = ((maxc - r) / d, (maxc - g) / d, (maxc - b) / d);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    // torch.fmod((h / 6 + 1), 1)
    ((h / 6.0 + 1.0) % 1.0, s, maxc)
}

/// torchvision's tensor `_hsv2rgb` of one pixel.
fn hsv_to_rgb_f(h: f32, s: f32, v: f32) -> [f32; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let i = (i as i32).rem_euclid(6);
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match i {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// `torchvision.transforms.functional.adjust_hue`: the hue rotated by `hue_factor` turns
/// (`[-0.5, 0.5]`). Images: PIL's 8-bit HSV, the hue shifted by `int(hue_factor * 255)` modulo
/// 256 (an RGBA image keeps its alpha, where PIL would make it opaque). Gray images are
/// returned unchanged.
///
/// # Errors
/// [`DataError::Transform`] for a factor outside `[-0.5, 0.5]` or a tensor of other than 1 or 3
/// channels.
pub fn adjust_hue(x: Sample, hue_factor: f32) -> Result<Sample, DataError> {
    if !(-0.5..=0.5).contains(&hue_factor) {
        return Err(transform_error(
            "adjust_hue",
            format!("hue_factor ({hue_factor}) is not in [-0.5, 0.5]."),
        ));
    }
    match x {
        Sample::Image(img) => {
            let mut p = Pixels::from_image(img);
            if p.c < 3 {
                return Ok(Sample::Image(p.into_image()));
            }
            let shift = ((hue_factor as f64 * 255.0) as i32).rem_euclid(256) as u8;
            let c = p.c;
            for px in p.data.chunks_exact_mut(c) {
                let (h, s, v) = pil_rgb_to_hsv(px[0], px[1], px[2]);
                px[..3].copy_from_slice(&pil_hsv_to_rgb(h.wrapping_add(shift), s, v));
            }
            Ok(Sample::Image(p.into_image()))
        }
        Sample::Tensor(mut t) => {
            let g = colour_tensor(&t, "adjust_hue")?;
            if g.c == 1 {
                return Ok(Sample::Tensor(t));
            }
            let plane = g.h * g.w;
            for img in t.data.chunks_exact_mut((3 * plane).max(1)).take(g.n) {
                for i in 0..plane {
                    let (h, s, v) = rgb_to_hsv_f(img[i], img[plane + i], img[2 * plane + i]);
                    // (h + hue) % 1.0, with the sign of the divisor as torch's `%`.
                    let h = (h + hue_factor).rem_euclid(1.0);
                    let [r, gg, b] = hsv_to_rgb_f(h, s, v);
                    img[i] = r;
                    img[plane + i] = gg;
                    img[2 * plane + i] = b;
                }
            }
            Ok(Sample::Tensor(t))
        }
    }
}

/// `torchvision.transforms.functional.rgb_to_grayscale`: gray in 1 channel, or repeated in 3.
/// Images: PIL's `convert("L")` (alpha is dropped). Tensors: `0.2989 R + 0.587 G + 0.114 B`;
/// a 1-channel tensor is copied (to 3 channels if asked).
///
/// # Errors
/// [`DataError::Transform`] for `num_output_channels` other than 1 or 3, or a tensor of other
/// than 1 or 3 channels.
pub fn rgb_to_grayscale(x: Sample, num_output_channels: usize) -> Result<Sample, DataError> {
    if num_output_channels != 1 && num_output_channels != 3 {
        return Err(transform_error(
            "Grayscale",
            "num_output_channels should be either 1 or 3",
        ));
    }
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            let mut data = Vec::with_capacity(p.w * p.h * num_output_channels);
            for px in p.data.chunks_exact(p.c) {
                let l = luma(px);
                data.extend(std::iter::repeat_n(l, num_output_channels));
            }
            Ok(Sample::Image(
                Pixels {
                    w: p.w,
                    h: p.h,
                    c: num_output_channels,
                    data,
                }
                .into_image(),
            ))
        }
        Sample::Tensor(t) => {
            let g = colour_tensor(&t, "Grayscale")?;
            let plane = g.h * g.w;
            let mut data = Vec::with_capacity(g.n * num_output_channels * plane);
            let mut gray = Vec::with_capacity(plane);
            for img in t.data.chunks_exact((g.c * plane).max(1)).take(g.n) {
                gray.clear();
                if g.c == 3 {
                    gray_plane(img, plane, &mut gray);
                } else {
                    gray.extend_from_slice(img);
                }
                for _ in 0..num_output_channels {
                    data.extend_from_slice(&gray);
                }
            }
            Ok(Sample::Tensor(Tensor {
                shape: Chw::shape_like(&t, num_output_channels, g.h, g.w),
                data,
            }))
        }
    }
}

/// A jitter amount: one number `v` is the range `[max(0, 1 - v), 1 + v]` for brightness,
/// contrast and saturation and `[-v, v]` for hue; a pair is the range itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Jitter {
    /// Around the neutral value.
    Amount(f32),
    /// An explicit `(min, max)`.
    Range(f32, f32),
}

impl From<f32> for Jitter {
    fn from(v: f32) -> Self {
        Jitter::Amount(v)
    }
}

impl From<(f32, f32)> for Jitter {
    fn from((a, b): (f32, f32)) -> Self {
        Jitter::Range(a, b)
    }
}

/// torchvision's `ColorJitter._check_input`: the factor range, or `None` for "do nothing".
fn check_jitter(v: Jitter, name: &str, center: f32, bound: (f32, f32), clip_first_on_zero: bool) -> Option<(f32, f32)> {
    let (lo, hi) = match v {
        Jitter::Amount(a) => {
            assert!(a >= 0.0, "If {name} is a single number, it must be non negative.");
            let lo = center - a;
            (if clip_first_on_zero { lo.max(0.0) } else { lo }, center + a)
        }
        Jitter::Range(a, b) => (a, b),
    };
    assert!(
        bound.0 <= lo && lo <= hi && hi <= bound.1,
        "{name} values should be between {bound:?}, but got ({lo}, {hi})."
    );
    (!(lo == center && hi == center)).then_some((lo, hi))
}

/// `transforms.ColorJitter(brightness=0, contrast=0, saturation=0, hue=0)`: brightness,
/// contrast, saturation and hue adjusted by factors drawn uniformly from their ranges, in a
/// random order (torchvision's `get_params`: a permutation of the four, then the factors).
#[derive(Clone, Copy, Debug, Default)]
pub struct ColorJitter {
    brightness: Option<(f32, f32)>,
    contrast: Option<(f32, f32)>,
    saturation: Option<(f32, f32)>,
    hue: Option<(f32, f32)>,
}

impl ColorJitter {
    /// No jitter until the amounts are set.
    pub fn new() -> Self {
        ColorJitter::default()
    }
    /// Brightness factor range (`0.4` is `[0.6, 1.4]`).
    ///
    /// # Panics
    /// If negative.
    pub fn brightness(mut self, v: impl Into<Jitter>) -> Self {
        self.brightness = check_jitter(v.into(), "brightness", 1.0, (0.0, f32::INFINITY), true);
        self
    }
    /// Contrast factor range.
    ///
    /// # Panics
    /// If negative.
    pub fn contrast(mut self, v: impl Into<Jitter>) -> Self {
        self.contrast = check_jitter(v.into(), "contrast", 1.0, (0.0, f32::INFINITY), true);
        self
    }
    /// Saturation factor range.
    ///
    /// # Panics
    /// If negative.
    pub fn saturation(mut self, v: impl Into<Jitter>) -> Self {
        self.saturation = check_jitter(v.into(), "saturation", 1.0, (0.0, f32::INFINITY), true);
        self
    }
    /// Hue shift range, within `[-0.5, 0.5]`.
    ///
    /// # Panics
    /// If outside `[-0.5, 0.5]`.
    pub fn hue(mut self, v: impl Into<Jitter>) -> Self {
        self.hue = check_jitter(v.into(), "hue", 0.0, (-0.5, 0.5), false);
        self
    }
}

impl Transform for ColorJitter {
    fn apply(&self, mut x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let mut order = [0usize, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, rng.below(i as u32 + 1) as usize);
        }
        let mut draw = |r: Option<(f32, f32)>| r.map(|(lo, hi)| rng.uniform(lo, hi));
        let factors = [
            draw(self.brightness),
            draw(self.contrast),
            draw(self.saturation),
            draw(self.hue),
        ];
        for i in order {
            if let Some(f) = factors[i] {
                x = match i {
                    0 => adjust_brightness(x, f)?,
                    1 => adjust_contrast(x, f)?,
                    2 => adjust_saturation(x, f)?,
                    _ => adjust_hue(x, f)?,
                };
            }
        }
        Ok(x)
    }
    fn name(&self) -> String {
        let r = |v: Option<(f32, f32)>| v.map_or("None".to_string(), |(a, b)| format!("({a}, {b})"));
        format!(
            "ColorJitter(brightness={}, contrast={}, saturation={}, hue={})",
            r(self.brightness),
            r(self.contrast),
            r(self.saturation),
            r(self.hue)
        )
    }
}

/// `transforms.Grayscale(num_output_channels=1)`: [`rgb_to_grayscale`].
#[derive(Clone, Copy, Debug)]
pub struct Grayscale {
    num_output_channels: usize,
}

impl Grayscale {
    /// One gray channel.
    pub fn new() -> Self {
        Grayscale { num_output_channels: 1 }
    }
    /// 1, or 3 for gray repeated as RGB.
    ///
    /// # Panics
    /// For another count.
    pub fn num_output_channels(mut self, n: usize) -> Self {
        assert!(n == 1 || n == 3, "num_output_channels should be either 1 or 3");
        self.num_output_channels = n;
        self
    }
}

impl Default for Grayscale {
    fn default() -> Self {
        Self::new()
    }
}

impl Transform for Grayscale {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        rgb_to_grayscale(x, self.num_output_channels)
    }
    fn name(&self) -> String {
        format!("Grayscale(num_output_channels={})", self.num_output_channels)
    }
}

/// `transforms.RandomGrayscale(p=0.1)`: with probability `p`, gray with as many channels as
/// the input (so an RGB image stays 3-channel).
#[derive(Clone, Copy, Debug)]
pub struct RandomGrayscale {
    p: f32,
}

impl RandomGrayscale {
    /// Gray one time in ten.
    pub fn new() -> Self {
        RandomGrayscale { p: 0.1 }
    }
    /// The probability.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]`.
    pub fn p(mut self, p: f32) -> Self {
        assert!(
            (0.0..=1.0).contains(&p),
            "RandomGrayscale: p should be a probability in [0, 1], got {p}"
        );
        self.p = p;
        self
    }
}

impl Default for RandomGrayscale {
    fn default() -> Self {
        Self::new()
    }
}

impl Transform for RandomGrayscale {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let (c, _, _) = dims(&x, "RandomGrayscale")?;
        if rng.next_f32() < self.p {
            rgb_to_grayscale(x, c)
        } else {
            Ok(x)
        }
    }
    fn name(&self) -> String {
        format!("RandomGrayscale(p={})", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_is_pils_fixed_point() {
        assert_eq!(luma(&[255, 255, 255]), 255);
        assert_eq!(luma(&[255, 0, 0]), 76); // 0.299 * 255 = 76.2
        assert_eq!(luma(&[0, 255, 0]), 150); // 0.587 * 255 = 149.7
        assert_eq!(luma(&[0, 0, 255]), 29);
    }

    #[test]
    fn pil_hsv_round_trips_primaries() {
        for rgb in [[255u8, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10], [200, 100, 50]] {
            let (h, s, v) = pil_rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            let back = pil_hsv_to_rgb(h, s, v);
            for k in 0..3 {
                assert!((back[k] as i32 - rgb[k] as i32).abs() <= 2, "{rgb:?} -> {back:?}");
            }
        }
        assert_eq!(pil_rgb_to_hsv(0, 255, 0), (85, 255, 255));
    }

    #[test]
    fn float_hsv_round_trips() {
        for rgb in [[1.0f32, 0.0, 0.0], [0.2, 0.5, 0.9], [0.3, 0.3, 0.3], [0.9, 0.1, 0.5]] {
            let (h, s, v) = rgb_to_hsv_f(rgb[0], rgb[1], rgb[2]);
            let back = hsv_to_rgb_f(h, s, v);
            for k in 0..3 {
                assert!((back[k] - rgb[k]).abs() < 1e-5, "{rgb:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn blend_truncates_and_clips() {
        let a = Pixels {
            w: 2,
            h: 1,
            c: 1,
            data: vec![0, 100],
        };
        let b = Pixels {
            w: 2,
            h: 1,
            c: 1,
            data: vec![255, 200],
        };
        assert_eq!(blend(&a, &b, 0.5).data, [127, 150]);
        assert_eq!(blend(&a, &b, 2.0).data, [255, 255]);
    }

    #[test]
    fn jitter_ranges() {
        assert_eq!(
            check_jitter(Jitter::Amount(0.4), "b", 1.0, (0.0, f32::INFINITY), true),
            Some((0.6, 1.4))
        );
        assert_eq!(
            check_jitter(Jitter::Amount(1.5), "b", 1.0, (0.0, f32::INFINITY), true),
            Some((0.0, 2.5))
        );
        assert_eq!(
            check_jitter(Jitter::Amount(0.0), "b", 1.0, (0.0, f32::INFINITY), true),
            None
        );
        assert_eq!(
            check_jitter(Jitter::Amount(0.2), "hue", 0.0, (-0.5, 0.5), false),
            Some((-0.2, 0.2))
        );
    }
}
