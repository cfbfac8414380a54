//! Resizing: [`Resize`], [`RandomResizedCrop`], and the [`resize`] / [`resized_crop`]
//! functionals.
//!
//! Images are resampled as PIL's `Image.resize` (what torchvision calls on PIL images), bit for
//! bit: a separable filter whose support is widened by the downscale factor (so downscaling
//! is antialiased), coefficients normalised and turned into 22-bit fixed point, one pass per
//! axis rounded to 8 bits, in Pillow's order (`libImaging/Resample.c`); nearest neighbour
//! is PIL's `floor((x + 0.5) * in / out)` with its accumulated coordinates. Images with alpha
//! are resampled premultiplied, as PIL does. Tensors are resampled as
//! `torch.nn.functional.interpolate(align_corners=False)`: the same filters in `f32`,
//! widened only with `antialias=True`, and PyTorch's own `nearest` and bicubic (`a = -0.75`).

use super::crop::{crop, dims};
use super::pixels::{Chw, Pixels};
use super::{round_half_even, transform_error, Interpolation, Transform, HW};
use crate::{DataError, Sample, Tensor};

/// The `size` of [`Resize`]: one number resizes the shorter side to it (keeping the aspect
/// ratio, the longer side truncated as `int(size * long / short)`), a pair is `(h, w)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// The shorter side becomes this.
    Shorter(usize),
    /// Exactly `(h, w)`.
    Exact(usize, usize),
}

impl From<usize> for Size {
    fn from(s: usize) -> Self {
        Size::Shorter(s)
    }
}

impl From<(usize, usize)> for Size {
    fn from((h, w): (usize, usize)) -> Self {
        Size::Exact(h, w)
    }
}

impl From<HW> for Size {
    fn from(s: HW) -> Self {
        Size::Exact(s.h, s.w)
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Size::Shorter(s) => write!(f, "{s}"),
            Size::Exact(h, w) => write!(f, "({h}, {w})"),
        }
    }
}

/// torchvision's `_compute_resized_output_size`: `(h, w)` after resizing an `h x w` image.
fn output_size(h: usize, w: usize, size: Size, max_size: Option<usize>) -> (usize, usize) {
    match size {
        Size::Exact(nh, nw) => (nh, nw),
        Size::Shorter(s) => {
            let (short, long) = if w <= h { (w, h) } else { (h, w) };
            let (mut new_short, mut new_long) = (s, (s as f64 * long as f64 / short as f64) as usize);
            if let Some(m) = max_size {
                if new_long > m {
                    new_short = (m as f64 * new_short as f64 / new_long as f64) as usize;
                    new_long = m;
                }
            }
            if w <= h {
                (new_long, new_short)
            } else {
                (new_short, new_long)
            }
        }
    }
}

/// A resampling filter of PIL's `Resample.c`: weight at distance `x` (in source pixels of the
/// unscaled filter) and support.
#[derive(Clone, Copy, Debug)]
enum Filter {
    Box,
    Triangle,
    Hamming,
    Cubic(f64),
    Lanczos,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Triangle | Filter::Hamming => 1.0,
            Filter::Cubic(_) => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        use std::f64::consts::PI;
        let sinc = |x: f64| if x == 0.0 { 1.0 } else { (x * PI).sin() / (x * PI) };
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Triangle => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * PI;
                    // PIL writes the constants as C floats (0.54f, 0.46f).
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            }
            Filter::Cubic(a) => {
                let x = x.abs();
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// The taps of one axis: for each output pixel, the first source pixel and the weights of
/// the consecutive source pixels from there.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<f64>>,
}

/// PIL's `precompute_coeffs` (and PyTorch's antialiased `_compute_index_ranges_weights`): the
/// filter centred on `(i + 0.5) * scale`, widened by `scale` when downscaling if `widen`,
/// normalised to sum 1.
fn filter_taps(in_size: usize, out_size: usize, filter: Filter, widen: bool) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = if widen && scale > 1.0 { scale } else { 1.0 };
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    let mut taps = Taps {
        first: Vec::with_capacity(out_size),
        weights: Vec::with_capacity(out_size),
    };
    for i in 0..out_size {
        let center = (i as f64 + 0.5) * scale;
        // C's (int) truncates toward zero; negatives clamp to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(xmin as i64) as usize;
        let mut k: Vec<f64> = (xmin..xmax)
            .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
            .collect();
        let total: f64 = k.iter().sum();
        if total != 0.0 {
            for w in &mut k {
                *w /= total;
            }
        }
        taps.first.push(xmin);
        taps.weights.push(k);
    }
    taps
}

/// PyTorch's bicubic without antialias: Keys' cubic with `a = -0.75` at
/// `src = (i + 0.5) * scale - 0.5`, source indices clamped to the image.
fn torch_cubic_taps(in_size: usize, out_size: usize) -> (Vec<[usize; 4]>, Vec<[f64; 4]>) {
    const A: f64 = -0.75;
    let cc1 = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let cc2 = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let scale = in_size as f64 / out_size as f64;
    let last = in_size as i64 - 1;
    (0..out_size)
        .map(|i| {
            let src = scale * (i as f64 + 0.5) - 0.5;
            let i0 = src.floor();
            let t = src - i0;
            let idx = [-1, 0, 1, 2].map(|d| (i0 as i64 + d).clamp(0, last) as usize);
            (idx, [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)])
        })
        .unzip()
}

/// PIL's nearest-neighbour source index of each output pixel: `ImagingScaleAffine`, whose
/// coordinate starts at `scale / 2` and accumulates `scale` per pixel.
fn pil_nearest_axis(in_size: usize, out_size: usize) -> Vec<Option<usize>> {
    let a = in_size as f64 / out_size as f64;
    let mut xo = a * 0.5;
    (0..out_size)
        .map(|_| {
            let xin = if xo < 0.0 { -1 } else { xo as i64 };
            xo += a;
            if (0..in_size as i64).contains(&xin) {
                Some(xin as usize)
            } else {
                None
            }
        })
        .collect()
}

/// PyTorch's `nearest` (`exact = false`: `floor(i * scale)`) and `nearest-exact`
/// (`floor((i + 0.5) * scale)`), with the scale in `f32` as PyTorch computes it.
fn torch_nearest_axis(in_size: usize, out_size: usize, exact: bool) -> Vec<Option<usize>> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|i| {
            let src = if exact {
                ((i as f32 + 0.5) * scale).floor()
            } else {
                (i as f32 * scale).floor()
            };
            Some((src as usize).min(in_size - 1))
        })
        .collect()
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// One 8-bit pass of PIL's resampler along rows (`horizontal`) or columns.
fn pil_pass(p: &Pixels, taps: &Taps, horizontal: bool) -> Pixels {
    // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point.
    let fixed: Vec<Vec<i64>> = taps
        .weights
        .iter()
        .map(|k| {
            k.iter()
                .map(|&w| {
                    let v = w * (1u32 << PRECISION_BITS) as f64;
                    (if w < 0.0 { -0.5 + v } else { 0.5 + v }) as i32 as i64
                })
                .collect()
        })
        .collect();
    let c = p.c;
    let (ow, oh) = if horizontal {
        (taps.first.len(), p.h)
    } else {
        (p.w, taps.first.len())
    };
    let mut out = vec![0u8; ow * oh * c];
    let clip = |ss: i64| (ss >> PRECISION_BITS).clamp(0, 255) as u8;
    let mut acc = [0i64; 4];
    for y in 0..oh {
        for x in 0..ow {
            let (first, k) = if horizontal {
                (taps.first[x], &fixed[x])
            } else {
                (taps.first[y], &fixed[y])
            };
            acc[..c].fill(1 << (PRECISION_BITS - 1));
            for (t, &kw) in k.iter().enumerate() {
                let src = if horizontal {
                    (y * p.w + first + t) * c
                } else {
                    ((first + t) * p.w + x) * c
                };
                for (a, &v) in acc.iter_mut().zip(&p.data[src..src + c]) {
                    *a += v as i64 * kw;
                }
            }
            let dst = (y * ow + x) * c;
            for (o, &a) in out[dst..dst + c].iter_mut().zip(&acc) {
                *o = clip(a);
            }
        }
    }
    Pixels {
        w: ow,
        h: oh,
        c,
        data: out,
    }
}

/// PIL's `Image.resize(size, resample)` of an 8-bit image to `out_w x out_h`.
fn pil_resize(mut p: Pixels, out_h: usize, out_w: usize, interpolation: Interpolation) -> Pixels {
    if p.w == out_w && p.h == out_h {
        return p;
    }
    let filter = match interpolation {
        Interpolation::Nearest | Interpolation::NearestExact => {
            let rows = pil_nearest_axis(p.h, out_h);
            let cols = pil_nearest_axis(p.w, out_w);
            let fill = vec![0; p.c];
            return p.gather(&rows, &cols, &fill);
        }
        Interpolation::Bilinear => Filter::Triangle,
        Interpolation::Bicubic => Filter::Cubic(-0.5),
        Interpolation::Box => Filter::Box,
        Interpolation::Hamming => Filter::Hamming,
        Interpolation::Lanczos => Filter::Lanczos,
    };
    let alpha = p.has_alpha();
    if alpha {
        p.premultiply();
    }
    // Pillow 13 runs the vertical pass first when it shrinks the image by more rows than twice
    // the columns the horizontal pass removes (found by comparing with both orders over
    // thousands of sizes, every filter and mode); the order matters through the 8-bit
    // rounding in between.
    let vertical_first = out_h < p.h && (p.h as isize - out_h as isize) > 2 * (p.w as isize - out_w as isize);
    let horizontal = |p: Pixels| {
        if out_w != p.w {
            pil_pass(&p, &filter_taps(p.w, out_w, filter, true), true)
        } else {
            p
        }
    };
    let vertical = |p: Pixels| {
        if out_h != p.h {
            pil_pass(&p, &filter_taps(p.h, out_h, filter, true), false)
        } else {
            p
        }
    };
    p = if vertical_first {
        horizontal(vertical(p))
    } else {
        vertical(horizontal(p))
    };
    if alpha {
        p.unpremultiply();
    }
    p
}

/// Resamples every plane of `t` along one axis with per-output `(index, weight)` taps.
fn tensor_pass(t: &Tensor, g: Chw, taps: &[Vec<(usize, f64)>], horizontal: bool) -> (Tensor, Chw) {
    let (oh, ow) = if horizontal {
        (g.h, taps.len())
    } else {
        (taps.len(), g.w)
    };
    let planes = g.n * g.c;
    let mut data = vec![0.0f32; planes * oh * ow];
    for p in 0..planes {
        let src = &t.data[p * g.h * g.w..(p + 1) * g.h * g.w];
        let dst = &mut data[p * oh * ow..(p + 1) * oh * ow];
        for y in 0..oh {
            for x in 0..ow {
                let mut acc = 0.0f64;
                if horizontal {
                    for &(i, w) in &taps[x] {
                        acc += src[y * g.w + i] as f64 * w;
                    }
                } else {
                    for &(i, w) in &taps[y] {
                        acc += src[i * g.w + x] as f64 * w;
                    }
                }
                dst[y * ow + x] = acc as f32;
            }
        }
    }
    let g2 = Chw {
        n: g.n,
        c: g.c,
        h: oh,
        w: ow,
    };
    (
        Tensor {
            shape: Chw::shape_like(t, g.c, oh, ow),
            data,
        },
        g2,
    )
}

/// The `(index, weight)` taps of one tensor axis for `interpolate`.
fn tensor_taps(
    in_size: usize,
    out_size: usize,
    interpolation: Interpolation,
    antialias: bool,
) -> Result<Vec<Vec<(usize, f64)>>, DataError> {
    let from_filter = |f: Filter, widen: bool| {
        let taps = filter_taps(in_size, out_size, f, widen);
        taps.first
            .iter()
            .zip(&taps.weights)
            .map(|(&s, k)| k.iter().enumerate().map(|(t, &w)| (s + t, w)).collect())
            .collect()
    };
    let from_nearest = |v: Vec<Option<usize>>| v.into_iter().map(|i| vec![(i.unwrap_or(0), 1.0)]).collect();
    Ok(match interpolation {
        Interpolation::Nearest => from_nearest(torch_nearest_axis(in_size, out_size, false)),
        Interpolation::NearestExact => from_nearest(torch_nearest_axis(in_size, out_size, true)),
        Interpolation::Bilinear => from_filter(Filter::Triangle, antialias),
        Interpolation::Bicubic if antialias => from_filter(Filter::Cubic(-0.5), true),
        Interpolation::Bicubic => {
            let (idx, w) = torch_cubic_taps(in_size, out_size);
            idx.iter()
                .zip(&w)
                .map(|(i, w)| i.iter().copied().zip(w.iter().copied()).collect())
                .collect()
        }
        other => {
            return Err(transform_error(
                "Resize",
                format!(
                    "interpolation {} is only supported for images, not tensors",
                    other.torchvision_name()
                ),
            ))
        }
    })
}

/// `interpolate` of a `[..., C, H, W]` tensor to `out_h x out_w`.
fn tensor_resize(
    t: Tensor,
    out_h: usize,
    out_w: usize,
    interpolation: Interpolation,
    antialias: bool,
) -> Result<Tensor, DataError> {
    let g = Chw::of(&t, "Resize")?;
    if g.h == out_h && g.w == out_w {
        return Ok(t);
    }
    if g.h == 0 || g.w == 0 {
        return Err(transform_error("Resize", "cannot resize an empty image"));
    }
    let (t, g) = tensor_pass(&t, g, &tensor_taps(g.w, out_w, interpolation, antialias)?, true);
    let (t, _) = tensor_pass(&t, g, &tensor_taps(g.h, out_h, interpolation, antialias)?, false);
    Ok(t)
}

/// `torchvision.transforms.functional.resize`: to `size` (the shorter side, or `(h, w)`),
/// with the longer side capped at `max_size` when given. The sample is returned as it is when
/// it already has that size. `antialias` matters only for tensors (PIL always antialiases).
///
/// # Errors
/// [`DataError::Transform`] for an empty image, a tensor of fewer than 3 dimensions, or a
/// PIL-only interpolation on a tensor.
pub fn resize(
    x: Sample,
    size: impl Into<Size>,
    interpolation: Interpolation,
    max_size: Option<usize>,
    antialias: bool,
) -> Result<Sample, DataError> {
    let (_, h, w) = dims(&x, "Resize")?;
    let (oh, ow) = output_size(h, w, size.into(), max_size);
    if (oh, ow) == (h, w) {
        return Ok(x);
    }
    if h == 0 || w == 0 || oh == 0 || ow == 0 {
        return Err(transform_error(
            "Resize",
            format!("cannot resize ({h}, {w}) to ({oh}, {ow})"),
        ));
    }
    match x {
        Sample::Image(img) => Ok(Sample::Image(
            pil_resize(Pixels::from_image(img), oh, ow, interpolation).into_image(),
        )),
        Sample::Tensor(t) => Ok(Sample::Tensor(tensor_resize(t, oh, ow, interpolation, antialias)?)),
    }
}

/// `torchvision.transforms.functional.resized_crop`: [`crop`] then [`resize`] to `size`.
///
/// # Errors
/// As [`resize`].
pub fn resized_crop(
    x: Sample,
    top: isize,
    left: isize,
    height: usize,
    width: usize,
    size: impl Into<HW>,
    interpolation: Interpolation,
    antialias: bool,
) -> Result<Sample, DataError> {
    let s = size.into();
    resize(
        crop(x, top, left, height, width)?,
        Size::Exact(s.h, s.w),
        interpolation,
        None,
        antialias,
    )
}

/// `transforms.Resize(size, interpolation=BILINEAR, max_size=None, antialias=True)`:
/// [`resize`].
#[derive(Clone, Copy, Debug)]
pub struct Resize {
    size: Size,
    interpolation: Interpolation,
    max_size: Option<usize>,
    antialias: bool,
}

impl Resize {
    /// Resizes to `size`: `32` for the shorter side, `(h, w)` for both.
    pub fn new(size: impl Into<Size>) -> Self {
        Resize {
            size: size.into(),
            interpolation: Interpolation::Bilinear,
            max_size: None,
            antialias: true,
        }
    }
    /// The resampling filter.
    pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
    /// The longest the longer side may become (shorter-side sizes only).
    ///
    /// # Panics
    /// If `size` is `(h, w)`, or `max_size` is not larger than the shorter-side size.
    pub fn max_size(mut self, max_size: usize) -> Self {
        match self.size {
            Size::Shorter(s) => assert!(
                max_size > s,
                "max_size = {max_size} must be strictly greater than the requested size for the smaller edge size = {s}"
            ),
            Size::Exact(..) => {
                panic!("max_size should only be passed if size specifies the length of the smaller edge")
            }
        }
        self.max_size = Some(max_size);
        self
    }
    /// Antialiasing when downscaling tensors (images are always antialiased, as PIL).
    pub fn antialias(mut self, antialias: bool) -> Self {
        self.antialias = antialias;
        self
    }
}

impl Transform for Resize {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        resize(x, self.size, self.interpolation, self.max_size, self.antialias)
    }
    fn name(&self) -> String {
        let max = self.max_size.map_or("None".to_string(), |m| m.to_string());
        format!(
            "Resize(size={}, interpolation={}, max_size={max}, antialias={})",
            self.size,
            self.interpolation.torchvision_name(),
            if self.antialias { "True" } else { "False" }
        )
    }
}

/// `transforms.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3/4, 4/3),
/// interpolation=BILINEAR, antialias=True)`: a crop of random area (a `scale` fraction of the
/// image) and aspect ratio (log-uniform in `ratio`), resized to `size`. Up to ten draws find a
/// crop that fits; then, as torchvision, the central crop clamped to `ratio`.
#[derive(Clone, Copy, Debug)]
pub struct RandomResizedCrop {
    size: HW,
    scale: (f32, f32),
    ratio: (f32, f32),
    interpolation: Interpolation,
    antialias: bool,
}

impl RandomResizedCrop {
    /// Crops resized to `size` (`224` or `(h, w)`).
    pub fn new(size: impl Into<HW>) -> Self {
        RandomResizedCrop {
            size: size.into(),
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            interpolation: Interpolation::Bilinear,
            antialias: true,
        }
    }
    /// The range of the crop's area, as a fraction of the image's.
    ///
    /// # Panics
    /// If the bounds are not `0 < lo <= hi`.
    pub fn scale(mut self, scale: (f32, f32)) -> Self {
        assert!(
            scale.0 > 0.0 && scale.0 <= scale.1,
            "RandomResizedCrop: scale should be of kind (min, max), got {scale:?}"
        );
        self.scale = scale;
        self
    }
    /// The range of the crop's aspect ratio `w / h`.
    ///
    /// # Panics
    /// If the bounds are not `0 < lo <= hi`.
    pub fn ratio(mut self, ratio: (f32, f32)) -> Self {
        assert!(
            ratio.0 > 0.0 && ratio.0 <= ratio.1,
            "RandomResizedCrop: ratio should be of kind (min, max), got {ratio:?}"
        );
        self.ratio = ratio;
        self
    }
    /// The resampling filter.
    pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
    /// Antialiasing when downscaling tensors.
    pub fn antialias(mut self, antialias: bool) -> Self {
        self.antialias = antialias;
        self
    }

    /// torchvision's `RandomResizedCrop.get_params`: `(top, left, h, w)` of the crop.
    pub fn get_params(&self, height: usize, width: usize, rng: &mut torchlet::Rng) -> (usize, usize, usize, usize) {
        let area = (height * width) as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target_area = area * rng.uniform(self.scale.0, self.scale.1) as f64;
            let aspect = rng.uniform(lr0, lr1).exp() as f64;
            let w = round_half_even((target_area * aspect).sqrt()) as usize;
            let h = round_half_even((target_area / aspect).sqrt()) as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let i = rng.below((height - h + 1) as u32) as usize;
                let j = rng.below((width - w + 1) as u32) as usize;
                return (i, j, h, w);
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (lo, hi) = (self.ratio.0 as f64, self.ratio.1 as f64);
        let (w, h) = if in_ratio < lo {
            (width, round_half_even(width as f64 / lo) as usize)
        } else if in_ratio > hi {
            (round_half_even(height as f64 * hi) as usize, height)
        } else {
            (width, height)
        };
        ((height - h) / 2, (width - w) / 2, h, w)
    }
}

impl Transform for RandomResizedCrop {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let (_, h, w) = dims(&x, "RandomResizedCrop")?;
        if h == 0 || w == 0 {
            return Err(transform_error("RandomResizedCrop", "empty image"));
        }
        let (i, j, ch, cw) = self.get_params(h, w, rng);
        resized_crop(
            x,
            i as isize,
            j as isize,
            ch,
            cw,
            self.size,
            self.interpolation,
            self.antialias,
        )
    }
    fn name(&self) -> String {
        format!(
            "RandomResizedCrop(size={}, scale=({}, {}), ratio=({}, {}), interpolation={}, antialias={})",
            self.size,
            self.scale.0,
            self.scale.1,
            self.ratio.0,
            self.ratio.1,
            self.interpolation.torchvision_name(),
            if self.antialias { "True" } else { "False" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_torchvision() {
        assert_eq!(output_size(80, 96, Size::Shorter(32), None), (32, 38)); // int(32 * 96 / 80) = 38
        assert_eq!(output_size(96, 80, Size::Shorter(32), None), (38, 32));
        assert_eq!(output_size(80, 96, Size::Shorter(32), Some(36)), (30, 36));
        assert_eq!(output_size(80, 96, Size::Exact(10, 20), None), (10, 20));
    }

    #[test]
    fn taps_sum_to_one_and_widen_when_downscaling() {
        let t = filter_taps(96, 32, Filter::Triangle, true);
        assert!(t.weights.iter().all(|k| (k.iter().sum::<f64>() - 1.0).abs() < 1e-12));
        assert!(t.weights[10].len() >= 6, "support 3 source pixels each side");
        let t = filter_taps(96, 32, Filter::Triangle, false);
        assert!(t.weights[10].len() <= 3);
    }

    #[test]
    fn nearest_axes() {
        assert_eq!(pil_nearest_axis(4, 2), [Some(1), Some(3)]);
        assert_eq!(torch_nearest_axis(4, 2, false), [Some(0), Some(2)]);
        assert_eq!(torch_nearest_axis(4, 2, true), [Some(1), Some(3)]);
    }

    #[test]
    fn constant_image_stays_constant() {
        for interp in [
            Interpolation::Bilinear,
            Interpolation::Bicubic,
            Interpolation::Lanczos,
            Interpolation::Box,
        ] {
            let p = Pixels {
                w: 7,
                h: 5,
                c: 3,
                data: vec![77; 7 * 5 * 3],
            };
            let r = pil_resize(p, 3, 11, interp);
            assert_eq!((r.w, r.h), (11, 3));
            assert!(r.data.iter().all(|&v| v == 77), "{interp:?}");
        }
    }

    #[test]
    fn random_resized_crop_fits_the_image() {
        let rrc = RandomResizedCrop::new(8);
        let mut rng = torchlet::Rng::new(3);
        for _ in 0..200 {
            let (i, j, h, w) = rrc.get_params(20, 30, &mut rng);
            assert!(h > 0 && w > 0 && i + h <= 20 && j + w <= 30);
        }
    }
}
