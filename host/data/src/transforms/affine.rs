//! Rotations and affine maps: [`RandomRotation`], [`RandomAffine`], and the [`rotate`] /
//! [`affine`] functionals.
//!
//! Images follow PIL's `Image.rotate` / `Image.transform(AFFINE)` exactly (what torchvision
//! calls on PIL images): every output pixel centre `(x + 0.5, y + 0.5)` is mapped back through
//! the inverse matrix into the source; nearest neighbour uses PIL's three engines (pure
//! scaling, 16.16 fixed point, floating point) and rotations by 90/180/270 degrees are exact
//! transposes, as PIL's fast paths; bilinear and bicubic are PIL's filters, truncated to 8
//! bits. Tensors are mapped through the same matrix and sampled the same way in `f32`
//! (torchvision's tensor path uses `grid_sample`, which can differ by a pixel at edges).

use super::crop::dims;
use super::pixels::{Chw, Pixels};
use super::{round_half_even, transform_error, Fill, Interpolation, Transform};
use crate::{DataError, Sample, Tensor};

/// An inverse affine map, output pixel centre to source position (PIL's `data` of AFFINE):
/// `xs = a[0] x + a[1] y + a[2]`, `ys = a[3] x + a[4] y + a[5]`.
type Matrix = [f64; 6];

/// How an output pixel is read from the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sampler {
    Nearest,
    Bilinear,
    Bicubic,
}

fn sampler(interpolation: Interpolation, what: &str) -> Result<Sampler, DataError> {
    match interpolation {
        Interpolation::Nearest | Interpolation::NearestExact => Ok(Sampler::Nearest),
        Interpolation::Bilinear => Ok(Sampler::Bilinear),
        Interpolation::Bicubic => Ok(Sampler::Bicubic),
        other => Err(transform_error(
            what,
            format!(
                "interpolation {} cannot be used (only nearest, bilinear, bicubic)",
                other.torchvision_name()
            ),
        )),
    }
}

/// PIL's `FLOOR`/`COORD` for positions that are known to be in range.
fn floor_i(v: f64) -> i64 {
    v.floor() as i64
}

/// One channel's value at source position `(xin, yin)` (PIL's coordinates: pixel centres at
/// `+0.5`), or `None` outside the image. `at(x, y)` reads a pixel (indices already clamped).
fn sample_at(s: Sampler, xin: f64, yin: f64, w: usize, h: usize, at: &dyn Fn(usize, usize) -> f64) -> Option<f64> {
    if !(xin >= 0.0 && xin < w as f64 && yin >= 0.0 && yin < h as f64) {
        return None;
    }
    let xclip = |x: i64| x.clamp(0, w as i64 - 1) as usize;
    let yin_ok = |y: i64| (0..h as i64).contains(&y);
    match s {
        Sampler::Nearest => Some(at(xin as usize, yin as usize)),
        Sampler::Bilinear => {
            let (xf, yf) = (xin - 0.5, yin - 0.5);
            let (x, y) = (floor_i(xf), floor_i(yf));
            let (dx, dy) = (xf - x as f64, yf - y as f64);
            let (x0, x1) = (xclip(x), xclip(x + 1));
            let row = |y: usize| {
                let (a, b) = (at(x0, y), at(x1, y));
                a + (b - a) * dx
            };
            let v1 = row(y.clamp(0, h as i64 - 1) as usize);
            let v2 = if yin_ok(y + 1) { row((y + 1) as usize) } else { v1 };
            Some(v1 + (v2 - v1) * dy)
        }
        Sampler::Bicubic => {
            let (xf, yf) = (xin - 0.5, yin - 0.5);
            let (x, y) = (floor_i(xf), floor_i(yf));
            let (dx, dy) = (xf - x as f64, yf - y as f64);
            let (x, y) = (x - 1, y - 1);
            let xs = [xclip(x), xclip(x + 1), xclip(x + 2), xclip(x + 3)];
            let cubic = |v1: f64, v2: f64, v3: f64, v4: f64, d: f64| {
                let p1 = v2;
                let p2 = -v1 + v3;
                let p3 = 2.0 * (v1 - v2) + v3 - v4;
                let p4 = -v1 + v2 - v3 + v4;
                p1 + d * (p2 + d * (p3 + d * p4))
            };
            let row = |y: usize| cubic(at(xs[0], y), at(xs[1], y), at(xs[2], y), at(xs[3], y), dx);
            let v1 = row(y.clamp(0, h as i64 - 1) as usize);
            let v2 = if yin_ok(y + 1) { row((y + 1) as usize) } else { v1 };
            let v3 = if yin_ok(y + 2) { row((y + 2) as usize) } else { v2 };
            let v4 = if yin_ok(y + 3) { row((y + 3) as usize) } else { v3 };
            Some(cubic(v1, v2, v3, v4, dy))
        }
    }
}

/// Source indices of a PIL nearest-neighbour affine map with `a[1] == a[3] == 0`
/// (`ImagingScaleAffine`): coordinates accumulate from `a[2] + a[0] / 2`.
fn scale_axis(n: usize, out: usize, a: f64, b: f64) -> Vec<Option<usize>> {
    let mut o = b + a * 0.5;
    (0..out)
        .map(|_| {
            let i = if o < 0.0 { -1 } else { o as i64 };
            o += a;
            (0..n as i64).contains(&i).then_some(i as usize)
        })
        .collect()
}

/// PIL's nearest-neighbour affine engines (`ImagingTransformAffine` with filter 0): for each
/// output pixel, the source pixel or `None`.
fn nearest_map(a: &Matrix, w: usize, h: usize, ow: usize, oh: usize) -> Vec<Option<(usize, usize)>> {
    let mut map = vec![None; ow * oh];
    let inside = |x: i64, y: i64| (0..w as i64).contains(&x) && (0..h as i64).contains(&y);
    if a[1] == 0.0 && a[3] == 0.0 {
        let cols = scale_axis(w, ow, a[0], a[2]);
        let rows = scale_axis(h, oh, a[4], a[5]);
        for (y, r) in rows.iter().enumerate() {
            for (x, c) in cols.iter().enumerate() {
                if let (Some(r), Some(c)) = (r, c) {
                    map[y * ow + x] = Some((*c, *r));
                }
            }
        }
        return map;
    }
    let fits =
        |x: f64, y: f64| (x * a[0] + y * a[1] + a[2]).abs() < 32768.0 && (x * a[3] + y * a[4] + a[5]).abs() < 32768.0;
    let (fw, fh) = (ow as f64, oh as f64);
    if fits(0.0, 0.0) && fits(fw, fh) && fits(0.0, fh) && fits(fw, 0.0) {
        // affine_fixed: 16.16 fixed point.
        let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
        let (a0, a1, a3, a4) = (fix(a[0]), fix(a[1]), fix(a[3]), fix(a[4]));
        let (mut a2, mut a5) = (fix(a[2] + a[0] * 0.5 + a[1] * 0.5), fix(a[5] + a[3] * 0.5 + a[4] * 0.5));
        for y in 0..oh {
            let (mut xx, mut yy) = (a2, a5);
            for x in 0..ow {
                let (xi, yi) = (xx >> 16, yy >> 16);
                if inside(xi, yi) {
                    map[y * ow + x] = Some((xi as usize, yi as usize));
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
    } else {
        let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
        let (mut xo, mut yo) = (a[2] + a[1] * 0.5 + a[0] * 0.5, a[5] + a[4] * 0.5 + a[3] * 0.5);
        for y in 0..oh {
            let (mut xx, mut yy) = (xo, yo);
            for x in 0..ow {
                let (xi, yi) = (coord(xx), coord(yy));
                if inside(xi, yi) {
                    map[y * ow + x] = Some((xi as usize, yi as usize));
                }
                xx += a[0];
                yy += a[3];
            }
            xo += a[1];
            yo += a[4];
        }
    }
    map
}

/// PIL's `Image.transform(size, AFFINE, a, resample, fillcolor=fill)` of an 8-bit image.
fn pil_transform(mut p: Pixels, ow: usize, oh: usize, a: &Matrix, s: Sampler, fill: &[u8]) -> Pixels {
    let c = p.c;
    let mut out = Pixels::filled(ow, oh, fill);
    if s == Sampler::Nearest {
        for (o, m) in nearest_map(a, p.w, p.h, ow, oh).into_iter().enumerate() {
            if let Some((x, y)) = m {
                let src = (y * p.w + x) * c;
                out.data[o * c..(o + 1) * c].copy_from_slice(&p.data[src..src + c]);
            }
        }
        return out;
    }
    let alpha = p.has_alpha();
    if alpha {
        p.premultiply();
        out.premultiply();
    }
    for y in 0..oh {
        for x in 0..ow {
            let (xf, yf) = (x as f64 + 0.5, y as f64 + 0.5);
            let xin = a[0] * xf + a[1] * yf + a[2];
            let yin = a[3] * xf + a[4] * yf + a[5];
            for ch in 0..c {
                let at = |sx: usize, sy: usize| p.data[(sy * p.w + sx) * c + ch] as f64;
                match sample_at(s, xin, yin, p.w, p.h, &at) {
                    // (UINT8) truncation; bicubic clamps first.
                    Some(v) => out.data[(y * ow + x) * c + ch] = v.clamp(0.0, 255.0) as u8,
                    None => break,
                }
            }
        }
    }
    if alpha {
        out.unpremultiply();
    }
    out
}

/// The same map on every plane of a `[..., C, H, W]` tensor, in `f32`.
fn tensor_transform(
    t: &Tensor,
    ow: usize,
    oh: usize,
    a: &Matrix,
    s: Sampler,
    fill: &[f32],
) -> Result<Tensor, DataError> {
    let g = Chw::of(t, "affine")?;
    let plane = g.h * g.w;
    let mut data = Vec::with_capacity(g.n * g.c * ow * oh);
    let nearest = (s == Sampler::Nearest).then(|| nearest_map(a, g.w, g.h, ow, oh));
    for p in 0..g.n * g.c {
        let src = &t.data[p * plane..(p + 1) * plane];
        let f = fill[p % g.c];
        match &nearest {
            Some(map) => data.extend(map.iter().map(|m| m.map_or(f, |(x, y)| src[y * g.w + x]))),
            None => {
                let at = |sx: usize, sy: usize| src[sy * g.w + sx] as f64;
                for y in 0..oh {
                    for x in 0..ow {
                        let (xf, yf) = (x as f64 + 0.5, y as f64 + 0.5);
                        let xin = a[0] * xf + a[1] * yf + a[2];
                        let yin = a[3] * xf + a[4] * yf + a[5];
                        data.push(sample_at(s, xin, yin, g.w, g.h, &at).map_or(f, |v| v as f32));
                    }
                }
            }
        }
    }
    Ok(Tensor {
        shape: Chw::shape_like(t, g.c, oh, ow),
        data,
    })
}

/// Applies the inverse map `a` with output size `ow x oh` to an image or tensor.
fn warp(
    x: Sample,
    ow: usize,
    oh: usize,
    a: &Matrix,
    interpolation: Interpolation,
    fill: &Fill,
    what: &str,
) -> Result<Sample, DataError> {
    let s = sampler(interpolation, what)?;
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            let f = fill.levels(p.c, what)?;
            Ok(Sample::Image(pil_transform(p, ow, oh, a, s, &f).into_image()))
        }
        Sample::Tensor(t) => {
            let g = Chw::of(&t, what)?;
            let f = fill.values(g.c, what)?;
            Ok(Sample::Tensor(tensor_transform(&t, ow, oh, a, s, &f)?))
        }
    }
}

/// A transpose (PIL's `ROTATE_90`, `ROTATE_180`, `ROTATE_270`; counter-clockwise quarter turns).
fn quarter_turns(x: Sample, turns: u8) -> Result<Sample, DataError> {
    let (_, h, w) = dims(&x, "rotate")?;
    let (ow, oh) = if turns == 2 { (w, h) } else { (h, w) };
    // Output (ox, oy) reads source (sx, sy).
    let src = |ox: usize, oy: usize| match turns {
        1 => (w - 1 - oy, ox),
        2 => (w - 1 - ox, h - 1 - oy),
        _ => (oy, h - 1 - ox),
    };
    match x {
        Sample::Image(img) => {
            let p = Pixels::from_image(img);
            let c = p.c;
            let mut data = Vec::with_capacity(p.data.len());
            for oy in 0..oh {
                for ox in 0..ow {
                    let (sx, sy) = src(ox, oy);
                    let i = (sy * w + sx) * c;
                    data.extend_from_slice(&p.data[i..i + c]);
                }
            }
            Ok(Sample::Image(Pixels { w: ow, h: oh, c, data }.into_image()))
        }
        Sample::Tensor(t) => {
            let g = Chw::of(&t, "rotate")?;
            let mut data = Vec::with_capacity(t.data.len());
            for p in 0..g.n * g.c {
                let plane = &t.data[p * h * w..(p + 1) * h * w];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (sx, sy) = src(ox, oy);
                        data.push(plane[sy * w + sx]);
                    }
                }
            }
            Ok(Sample::Tensor(Tensor {
                shape: Chw::shape_like(&t, g.c, oh, ow),
                data,
            }))
        }
    }
}

/// Python's `round(v, 15)`, as PIL rounds the rotation matrix: decimal rounding, read back.
fn round15(v: f64) -> f64 {
    format!("{v:.15}").parse().unwrap_or(v)
}

/// `torchvision.transforms.functional.rotate` (PIL's `Image.rotate`): `angle` degrees
/// counter-clockwise about `center` (pixel coordinates, default the image centre
/// `(w / 2, h / 2)`), the same size or, with `expand`, large enough for the whole rotated
/// image; uncovered pixels get `fill`.
///
/// # Errors
/// [`DataError::Transform`] for a box, Hamming or Lanczos filter, a `fill` of another channel
/// count, or a tensor of fewer than 3 dimensions.
pub fn rotate(
    x: Sample,
    angle: f32,
    interpolation: Interpolation,
    expand: bool,
    center: Option<(f32, f32)>,
    fill: &Fill,
) -> Result<Sample, DataError> {
    sampler(interpolation, "rotate")?;
    let (_, h, w) = dims(&x, "rotate")?;
    // Python's angle % 360.0
    let mut angle = angle as f64 % 360.0;
    if angle != 0.0 && angle < 0.0 {
        angle += 360.0;
    }
    if center.is_none() {
        if angle == 0.0 {
            return Ok(x);
        }
        if angle == 180.0 {
            return quarter_turns(x, 2);
        }
        if (angle == 90.0 || angle == 270.0) && (expand || w == h) {
            return quarter_turns(x, if angle == 90.0 { 1 } else { 3 });
        }
    }
    let (cx, cy) = center.map_or((w as f64 / 2.0, h as f64 / 2.0), |(x, y)| (x as f64, y as f64));
    let r = -angle.to_radians();
    let mut m: Matrix = [
        round15(r.cos()),
        round15(r.sin()),
        0.0,
        round15(-r.sin()),
        round15(r.cos()),
        0.0,
    ];
    let apply = |m: &Matrix, x: f64, y: f64| (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]);
    let (tx, ty) = apply(&m, -cx, -cy);
    m[2] = tx + cx;
    m[5] = ty + cy;
    let (mut ow, mut oh) = (w, h);
    if expand {
        let corners =
            [(0.0, 0.0), (w as f64, 0.0), (w as f64, h as f64), (0.0, h as f64)].map(|(x, y)| apply(&m, x, y));
        let span = |v: [f64; 4]| {
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
            (hi.ceil() - lo.floor()) as usize
        };
        let (nw, nh) = (span(corners.map(|c| c.0)), span(corners.map(|c| c.1)));
        let (tx, ty) = apply(&m, -((nw as f64 - w as f64) / 2.0), -((nh as f64 - h as f64) / 2.0));
        m[2] = tx;
        m[5] = ty;
        (ow, oh) = (nw, nh);
    }
    warp(x, ow, oh, &m, interpolation, fill, "rotate")
}

/// torchvision's `_get_inverse_affine_matrix`: the map from output to input of a rotation by
/// `angle`, scaling by `scale`, shear `(sx, sy)` (degrees) about `center`, then translation.
fn inverse_affine_matrix(
    center: (f64, f64),
    angle: f64,
    translate: (f64, f64),
    scale: f64,
    shear: (f64, f64),
) -> Matrix {
    let rot = angle.to_radians();
    let (sx, sy) = (shear.0.to_radians(), shear.1.to_radians());
    let (cx, cy) = center;
    let (tx, ty) = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0].map(|v| v / scale);
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// `torchvision.transforms.functional.affine` (PIL path): rotation by `angle` degrees
/// (clockwise on screen, as torchvision's `affine`; [`rotate`] turns the other way), scaling
/// by `scale` and shearing by `shear = (x, y)` degrees about `center` (default the image
/// centre), then translation by `translate` pixels, keeping the image size; uncovered pixels
/// get `fill`. The inverse map is torchvision's `_get_inverse_affine_matrix`.
///
/// # Errors
/// [`DataError::Transform`] for a non-positive scale, a box, Hamming or Lanczos filter, a
/// `fill` of another channel count, or a tensor of fewer than 3 dimensions.
#[allow(clippy::too_many_arguments)]
pub fn affine(
    x: Sample,
    angle: f32,
    translate: (f32, f32),
    scale: f32,
    shear: (f32, f32),
    interpolation: Interpolation,
    fill: &Fill,
    center: Option<(f32, f32)>,
) -> Result<Sample, DataError> {
    if scale.is_nan() || scale <= 0.0 {
        return Err(transform_error("affine", "argument scale should be positive"));
    }
    let (_, h, w) = dims(&x, "affine")?;
    let center = center.map_or((w as f64 * 0.5, h as f64 * 0.5), |(x, y)| (x as f64, y as f64));
    let m = inverse_affine_matrix(
        center,
        angle as f64,
        (translate.0 as f64, translate.1 as f64),
        scale as f64,
        (shear.0 as f64, shear.1 as f64),
    );
    warp(x, w, h, &m, interpolation, fill, "affine")
}

/// A range of angles in degrees: one number `d` is `(-d, d)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Degrees(pub f32, pub f32);

impl From<f32> for Degrees {
    fn from(d: f32) -> Self {
        assert!(d >= 0.0, "If degrees is a single number, it must be positive (got {d})");
        Degrees(-d, d)
    }
}

impl From<(f32, f32)> for Degrees {
    fn from((lo, hi): (f32, f32)) -> Self {
        Degrees(lo, hi)
    }
}

/// `transforms.RandomRotation(degrees, interpolation=NEAREST, expand=False, center=None,
/// fill=0)`: [`rotate`] by an angle uniform in `degrees`.
#[derive(Clone, Debug)]
pub struct RandomRotation {
    degrees: Degrees,
    interpolation: Interpolation,
    expand: bool,
    center: Option<(f32, f32)>,
    fill: Fill,
}

impl RandomRotation {
    /// Angles uniform in `degrees`: `30.0` for `(-30, 30)`, or `(lo, hi)`.
    ///
    /// # Panics
    /// If a single number is negative.
    pub fn new(degrees: impl Into<Degrees>) -> Self {
        RandomRotation {
            degrees: degrees.into(),
            interpolation: Interpolation::Nearest,
            expand: false,
            center: None,
            fill: Fill::default(),
        }
    }
    /// The resampling filter (nearest, bilinear or bicubic).
    pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
    /// Grows the output to hold the whole rotated image.
    pub fn expand(mut self, expand: bool) -> Self {
        self.expand = expand;
        self
    }
    /// The centre of rotation in pixel coordinates.
    pub fn center(mut self, center: (f32, f32)) -> Self {
        self.center = Some(center);
        self
    }
    /// The colour of uncovered pixels.
    pub fn fill(mut self, fill: impl Into<Fill>) -> Self {
        self.fill = fill.into();
        self
    }
}

impl Transform for RandomRotation {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let angle = rng.uniform(self.degrees.0, self.degrees.1);
        rotate(x, angle, self.interpolation, self.expand, self.center, &self.fill)
    }
    fn name(&self) -> String {
        format!(
            "RandomRotation(degrees=[{}, {}], interpolation={}, expand={}, fill={})",
            self.degrees.0,
            self.degrees.1,
            self.interpolation.torchvision_name(),
            if self.expand { "True" } else { "False" },
            self.fill
        )
    }
}

/// Shear ranges in degrees: one number `s` is an x shear in `(-s, s)`, a pair an x range, four
/// values x and y ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shear {
    /// Range of the x shear.
    pub x: (f32, f32),
    /// Range of the y shear, if any.
    pub y: Option<(f32, f32)>,
}

impl From<f32> for Shear {
    fn from(s: f32) -> Self {
        assert!(s >= 0.0, "If shear is a single number, it must be positive (got {s})");
        Shear { x: (-s, s), y: None }
    }
}

impl From<(f32, f32)> for Shear {
    fn from(x: (f32, f32)) -> Self {
        Shear { x, y: None }
    }
}

impl From<(f32, f32, f32, f32)> for Shear {
    fn from((a, b, c, d): (f32, f32, f32, f32)) -> Self {
        Shear {
            x: (a, b),
            y: Some((c, d)),
        }
    }
}

/// `transforms.RandomAffine(degrees, translate=None, scale=None, shear=None,
/// interpolation=NEAREST, fill=0, center=None)`: [`affine`] with parameters drawn as
/// torchvision's `get_params` (angle, then translation rounded to whole pixels, scale, shears).
#[derive(Clone, Debug)]
pub struct RandomAffine {
    degrees: Degrees,
    translate: Option<(f32, f32)>,
    scale: Option<(f32, f32)>,
    shear: Option<Shear>,
    interpolation: Interpolation,
    fill: Fill,
    center: Option<(f32, f32)>,
}

impl RandomAffine {
    /// Rotations uniform in `degrees` (`0.0` for none).
    ///
    /// # Panics
    /// If a single number is negative.
    pub fn new(degrees: impl Into<Degrees>) -> Self {
        RandomAffine {
            degrees: degrees.into(),
            translate: None,
            scale: None,
            shear: None,
            interpolation: Interpolation::Nearest,
            fill: Fill::default(),
            center: None,
        }
    }
    /// Largest translation as fractions `(a, b)` of width and height.
    ///
    /// # Panics
    /// If a fraction is outside `[0, 1]`.
    pub fn translate(mut self, translate: (f32, f32)) -> Self {
        assert!(
            (0.0..=1.0).contains(&translate.0) && (0.0..=1.0).contains(&translate.1),
            "translation values should be between 0 and 1"
        );
        self.translate = Some(translate);
        self
    }
    /// Scale uniform in `(lo, hi)`.
    ///
    /// # Panics
    /// If a bound is not positive.
    pub fn scale(mut self, scale: (f32, f32)) -> Self {
        assert!(scale.0 > 0.0 && scale.1 > 0.0, "scale values should be positive");
        self.scale = Some(scale);
        self
    }
    /// Shear ranges in degrees.
    pub fn shear(mut self, shear: impl Into<Shear>) -> Self {
        self.shear = Some(shear.into());
        self
    }
    /// The resampling filter (nearest, bilinear or bicubic).
    pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
    /// The colour of uncovered pixels.
    pub fn fill(mut self, fill: impl Into<Fill>) -> Self {
        self.fill = fill.into();
        self
    }
    /// The centre in pixel coordinates.
    pub fn center(mut self, center: (f32, f32)) -> Self {
        self.center = Some(center);
        self
    }

    /// torchvision's `RandomAffine.get_params` for an image of `width x height`:
    /// `(angle, (tx, ty), scale, (shear_x, shear_y))`.
    pub fn get_params(
        &self,
        width: usize,
        height: usize,
        rng: &mut torchlet::Rng,
    ) -> (f32, (f32, f32), f32, (f32, f32)) {
        let angle = rng.uniform(self.degrees.0, self.degrees.1);
        let translate = match self.translate {
            Some((a, b)) => {
                let (mx, my) = (a * width as f32, b * height as f32);
                let tx = round_half_even(rng.uniform(-mx, mx) as f64) as f32;
                let ty = round_half_even(rng.uniform(-my, my) as f64) as f32;
                (tx, ty)
            }
            None => (0.0, 0.0),
        };
        let scale = self.scale.map_or(1.0, |(lo, hi)| rng.uniform(lo, hi));
        let shear = match self.shear {
            Some(s) => {
                let x = rng.uniform(s.x.0, s.x.1);
                (x, s.y.map_or(0.0, |(lo, hi)| rng.uniform(lo, hi)))
            }
            None => (0.0, 0.0),
        };
        (angle, translate, scale, shear)
    }
}

impl Transform for RandomAffine {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let (_, h, w) = dims(&x, "RandomAffine")?;
        let (angle, translate, scale, shear) = self.get_params(w, h, rng);
        affine(
            x,
            angle,
            translate,
            scale,
            shear,
            self.interpolation,
            &self.fill,
            self.center,
        )
    }
    fn name(&self) -> String {
        let mut s = format!("RandomAffine(degrees=[{}, {}]", self.degrees.0, self.degrees.1);
        if let Some(t) = self.translate {
            s += &format!(", translate={t:?}");
        }
        if let Some(sc) = self.scale {
            s += &format!(", scale={sc:?}");
        }
        if let Some(sh) = self.shear {
            match sh.y {
                Some(y) => s += &format!(", shear=[{}, {}, {}, {}]", sh.x.0, sh.x.1, y.0, y.1),
                None => s += &format!(", shear=[{}, {}]", sh.x.0, sh.x.1),
            }
        }
        if self.interpolation != Interpolation::Nearest {
            s += &format!(", interpolation={}", self.interpolation.torchvision_name());
        }
        s + ")"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Sample {
        Sample::Tensor(Tensor::new(vec![1, h, w], (0..h * w).map(|v| v as f32).collect()).unwrap())
    }

    fn data(x: Sample) -> Vec<f32> {
        x.into_tensor("t").unwrap().data
    }

    #[test]
    fn quarter_turns_are_counter_clockwise() {
        // [[0, 1, 2], [3, 4, 5]] rotated 90 degrees counter-clockwise: [[2, 5], [1, 4], [0, 3]]
        let r = rotate(ramp(2, 3), 90.0, Interpolation::Nearest, true, None, &Fill::default()).unwrap();
        assert_eq!(data(r), [2.0, 5.0, 1.0, 4.0, 0.0, 3.0]);
        let r = rotate(ramp(2, 3), -90.0, Interpolation::Nearest, true, None, &Fill::default()).unwrap();
        assert_eq!(data(r), [3.0, 0.0, 4.0, 1.0, 5.0, 2.0]);
        let r = rotate(ramp(2, 3), 180.0, Interpolation::Nearest, false, None, &Fill::default()).unwrap();
        assert_eq!(data(r), [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
    }

    #[test]
    fn the_general_path_agrees_with_the_fast_path() {
        // Through the affine engines (a centre turns the fast path off) 90 degrees on a
        // square is the same transpose.
        let x = ramp(4, 4);
        let fast = data(rotate(x.clone(), 90.0, Interpolation::Nearest, false, None, &Fill::default()).unwrap());
        let slow = data(
            rotate(
                x,
                90.0,
                Interpolation::Nearest,
                false,
                Some((2.0, 2.0)),
                &Fill::default(),
            )
            .unwrap(),
        );
        assert_eq!(fast, slow);
    }

    #[test]
    fn pure_translation_moves_pixels() {
        let r = affine(
            ramp(3, 3),
            0.0,
            (1.0, 0.0),
            1.0,
            (0.0, 0.0),
            Interpolation::Nearest,
            &Fill::from(-1.0),
            None,
        )
        .unwrap();
        assert_eq!(data(r), [-1.0, 0.0, 1.0, -1.0, 3.0, 4.0, -1.0, 6.0, 7.0]);
        let bilinear = affine(
            ramp(3, 3),
            0.0,
            (1.0, 0.0),
            1.0,
            (0.0, 0.0),
            Interpolation::Bilinear,
            &Fill::from(-1.0),
            None,
        )
        .unwrap();
        assert_eq!(data(bilinear), [-1.0, 0.0, 1.0, -1.0, 3.0, 4.0, -1.0, 6.0, 7.0]);
    }

    #[test]
    fn identity_is_exact_for_every_sampler() {
        for interp in [Interpolation::Nearest, Interpolation::Bilinear, Interpolation::Bicubic] {
            let r = affine(
                ramp(5, 4),
                0.0,
                (0.0, 0.0),
                1.0,
                (0.0, 0.0),
                interp,
                &Fill::default(),
                None,
            )
            .unwrap();
            assert_eq!(data(r), data(ramp(5, 4)), "{interp:?}");
        }
        assert!(affine(
            ramp(2, 2),
            0.0,
            (0.0, 0.0),
            1.0,
            (0.0, 0.0),
            Interpolation::Lanczos,
            &Fill::default(),
            None
        )
        .is_err());
    }

    #[test]
    fn round15_is_pythons_round() {
        assert_eq!(round15(0.8660254037844387), 0.866025403784439);
        assert_eq!(round15(6.123233995736766e-17), 0.0);
        assert_eq!(round15(-1.0), -1.0);
    }
}
