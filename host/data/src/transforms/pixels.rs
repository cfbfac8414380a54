//! The pixel buffers the transforms work on, and the index maps they share.
//!
//! An image is taken apart once into [`Pixels`] (interleaved `u8`, `[H, W, C]`, the layout of
//! PIL's and the `image` crate's 8-bit modes) and put back together at the end; a tensor's
//! `[..., C, H, W]` data is a stack of planes. Crops, pads and flips are one [`gather`]: every
//! output row and column names its source row and column, or none for the fill.

use image::{DynamicImage, ImageBuffer};

use super::{transform_error, PaddingMode};
use crate::{DataError, Tensor};

/// An 8-bit image, interleaved: `data[(y * w + x) * c + ch]`. `c` is 1 (L), 2 (LA), 3 (RGB)
/// or 4 (RGBA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pixels {
    pub w: usize,
    pub h: usize,
    pub c: usize,
    pub data: Vec<u8>,
}

impl Pixels {
    /// The pixels of `img`, without a copy for the 8-bit modes. 16-bit and float images are
    /// converted to 8 bits first (PIL's transforms do not take them either).
    pub fn from_image(img: DynamicImage) -> Pixels {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (c, data) = match img {
            DynamicImage::ImageLuma8(b) => (1, b.into_raw()),
            DynamicImage::ImageLumaA8(b) => (2, b.into_raw()),
            DynamicImage::ImageRgb8(b) => (3, b.into_raw()),
            DynamicImage::ImageRgba8(b) => (4, b.into_raw()),
            DynamicImage::ImageLuma16(_) => (1, img.into_luma8().into_raw()),
            DynamicImage::ImageLumaA16(_) => (2, img.into_luma_alpha8().into_raw()),
            other if other.color().has_alpha() => (4, other.into_rgba8().into_raw()),
            other => (3, other.into_rgb8().into_raw()),
        };
        Pixels { w, h, c, data }
    }

    /// An image of `w x h` pixels of `c` channels, every pixel `fill`.
    pub fn filled(w: usize, h: usize, fill: &[u8]) -> Pixels {
        let c = fill.len();
        let mut data = Vec::with_capacity(w * h * c);
        for _ in 0..w * h {
            data.extend_from_slice(fill);
        }
        Pixels { w, h, c, data }
    }

    /// Back to an image of the mode the channel count names.
    pub fn into_image(self) -> DynamicImage {
        let (w, h) = (self.w as u32, self.h as u32);
        // The buffer length is w * h * c by construction, so from_raw cannot fail.
        let bad = "pixel buffer length is w * h * c";
        match self.c {
            1 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
            2 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
            3 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
            _ => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
        }
    }

    /// Whether the last channel is alpha (LA, RGBA).
    pub fn has_alpha(&self) -> bool {
        self.c == 2 || self.c == 4
    }

    /// `rows` x `cols` of this image: each output row/column takes the named source row/column,
    /// or `fill` where it names none.
    pub fn gather(&self, rows: &[Option<usize>], cols: &[Option<usize>], fill: &[u8]) -> Pixels {
        Pixels {
            w: cols.len(),
            h: rows.len(),
            c: self.c,
            data: gather(&self.data, self.w, self.c, rows, cols, fill),
        }
    }

    /// PIL's `RGBA -> RGBa` (and `LA -> La`): colour premultiplied by alpha, rounded as PIL's
    /// `MULDIV255`. PIL resamples images with alpha this way.
    pub fn premultiply(&mut self) {
        let c = self.c;
        for px in self.data.chunks_exact_mut(c) {
            let a = px[c - 1] as u32;
            for v in &mut px[..c - 1] {
                let t = *v as u32 * a + 128;
                *v = (((t >> 8) + t) >> 8) as u8;
            }
        }
    }

    /// PIL's `RGBa -> RGBA`: `255 * v / alpha` (integer division), clipped.
    pub fn unpremultiply(&mut self) {
        let c = self.c;
        for px in self.data.chunks_exact_mut(c) {
            let a = px[c - 1] as u32;
            if a != 0 && a != 255 {
                for v in &mut px[..c - 1] {
                    *v = (255 * *v as u32 / a).min(255) as u8;
                }
            }
        }
    }
}

/// Interleaved gather: output pixel `(r, k)` is source pixel `(rows[r], cols[k])` of a `w`-wide
/// image with `c` values per pixel, or `fill` (`c` values) where either index is `None`.
/// Columns are copied in runs of consecutive source pixels, so crops and pads are a few
/// `memcpy`s per row.
pub(crate) fn gather<T: Copy>(
    src: &[T],
    w: usize,
    c: usize,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
    fill: &[T],
) -> Vec<T> {
    debug_assert_eq!(fill.len(), c);
    // Runs of columns: (first source column or None for fill, length).
    let mut runs: Vec<(Option<usize>, usize)> = Vec::new();
    for &k in cols {
        match (runs.last_mut(), k) {
            (Some((Some(s), n)), Some(k)) if *s + *n == k => *n += 1,
            (Some((None, n)), None) => *n += 1,
            _ => runs.push((k, 1)),
        }
    }
    let mut out = Vec::with_capacity(rows.len() * cols.len() * c);
    for &r in rows {
        match r {
            None => {
                for _ in cols {
                    out.extend_from_slice(fill);
                }
            }
            Some(r) => {
                let row = &src[r * w * c..(r + 1) * w * c];
                for &(start, n) in &runs {
                    match start {
                        Some(s) => out.extend_from_slice(&row[s * c..(s + n) * c]),
                        None => {
                            for _ in 0..n {
                                out.extend_from_slice(fill);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Mirrors every row of an interleaved image of `w` pixels of `c` values, in place: the row's
/// values reversed (a vectorised `reverse`), then each pixel's channels put back in order.
pub(crate) fn mirror_rows<T: Copy>(data: &mut [T], w: usize, c: usize) {
    if w == 0 || c == 0 {
        return;
    }
    for row in data.chunks_exact_mut(w * c) {
        row.reverse();
        if c > 1 {
            for px in row.chunks_exact_mut(c) {
                px.reverse();
            }
        }
    }
}

/// A tensor seen as images: `[..., C, H, W]` with at least three dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chw {
    /// Number of `[C, H, W]` images (the product of the leading dimensions).
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Chw {
    /// The geometry of `t`, or an error naming `what` if it has fewer than 3 dimensions.
    pub fn of(t: &Tensor, what: &str) -> Result<Chw, DataError> {
        let s = &t.shape;
        if s.len() < 3 {
            return Err(transform_error(
                what,
                format!("expected a tensor [..., C, H, W], found shape {s:?}"),
            ));
        }
        let k = s.len();
        Ok(Chw {
            n: s[..k - 3].iter().product(),
            c: s[k - 3],
            h: s[k - 2],
            w: s[k - 1],
        })
    }

    /// The shape of `t` with C, H, W replaced.
    pub fn shape_like(t: &Tensor, c: usize, h: usize, w: usize) -> Vec<usize> {
        let k = t.shape.len();
        let mut s = t.shape[..k - 3].to_vec();
        s.extend([c, h, w]);
        s
    }
}

/// Planar gather of a `[..., C, H, W]` tensor: every plane is gathered with the same maps,
/// plane `p` filled with `fill[p % C]`.
pub(crate) fn gather_planes(
    t: &Tensor,
    g: Chw,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
    fill: &[f32],
) -> Tensor {
    let plane = g.h * g.w;
    let mut data = Vec::with_capacity(g.n * g.c * rows.len() * cols.len());
    for p in 0..g.n * g.c {
        let src = &t.data[p * plane..(p + 1) * plane];
        data.extend(gather(src, g.w, 1, rows, cols, &[fill[p % g.c]]));
    }
    Tensor {
        shape: Chw::shape_like(t, g.c, rows.len(), cols.len()),
        data,
    }
}

/// The source index of padded position `i` (`i < 0` is in the leading border) of an axis of
/// `n` pixels, as `numpy.pad` computes it; `None` for the constant fill.
pub(crate) fn pad_index(i: isize, n: usize, mode: PaddingMode) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    if n == 0 {
        return None;
    }
    Some(match mode {
        PaddingMode::Constant => return None,
        PaddingMode::Edge => i.clamp(0, n - 1) as usize,
        PaddingMode::Reflect => {
            if n == 1 {
                0
            } else {
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                (if m >= n { period - m } else { m }) as usize
            }
        }
        PaddingMode::Symmetric => {
            let m = i.rem_euclid(2 * n);
            (if m >= n { 2 * n - 1 - m } else { m }) as usize
        }
    })
}

/// The source indices of an axis of `n` pixels padded by `before` and `after` (negative
/// values crop first, as torchvision does).
pub(crate) fn pad_axis(n: usize, before: isize, after: isize, mode: PaddingMode) -> Vec<Option<usize>> {
    let crop_before = (-before).max(0) as usize;
    let crop_after = (-after).max(0) as usize;
    let kept = n.saturating_sub(crop_before + crop_after);
    let (before, after) = (before.max(0), after.max(0));
    (-before..kept as isize + after)
        .map(|i| pad_index(i, kept, mode).map(|j| j + crop_before))
        .collect()
}

/// The source indices of `len` pixels from `start` (may be negative or run past `n`; outside
/// positions are `None`): a crop that pads with the fill where it leaves the image.
pub(crate) fn crop_axis(n: usize, start: isize, len: usize) -> Vec<Option<usize>> {
    (start..start + len as isize)
        .map(|i| {
            if (0..n as isize).contains(&i) {
                Some(i as usize)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(n: usize, b: isize, a: isize, mode: PaddingMode) -> Vec<Option<usize>> {
        pad_axis(n, b, a, mode)
    }

    #[test]
    fn padding_modes_follow_numpy() {
        let s = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        // numpy.pad([0, 1, 2, 3], 2, mode) as indices
        assert_eq!(axis(4, 2, 2, PaddingMode::Reflect), s(&[2, 1, 0, 1, 2, 3, 2, 1]));
        assert_eq!(axis(4, 2, 2, PaddingMode::Symmetric), s(&[1, 0, 0, 1, 2, 3, 3, 2]));
        assert_eq!(axis(4, 2, 2, PaddingMode::Edge), s(&[0, 0, 0, 1, 2, 3, 3, 3]));
        assert_eq!(axis(2, 1, 0, PaddingMode::Constant), vec![None, Some(0), Some(1)]);
        // pads wider than the axis: numpy reflects again (np.pad([0,1,2], 5, 'reflect'))
        assert_eq!(axis(3, 5, 0, PaddingMode::Reflect), s(&[1, 0, 1, 2, 1, 0, 1, 2]));
        assert_eq!(axis(2, 3, 0, PaddingMode::Symmetric), s(&[1, 1, 0, 0, 1]));
        // negative padding crops
        assert_eq!(axis(5, -2, 1, PaddingMode::Edge), s(&[2, 3, 4, 4]));
    }

    #[test]
    fn gather_copies_and_fills() {
        let src: Vec<u8> = (0..12).collect(); // 2 x 3 pixels of 2 channels
        let out = gather(&src, 3, 2, &[Some(1), None], &[Some(2), None], &[7, 8]);
        assert_eq!(out, [10, 11, 7, 8, 7, 8, 7, 8]);
        // runs: [None, 0, 1, 2, None, 1, 0] copied piecewise
        let cols = [None, Some(0), Some(1), Some(2), None, Some(1), Some(0)];
        let out = gather(&src, 3, 2, &[Some(0)], &cols, &[9, 9]);
        assert_eq!(out, [9, 9, 0, 1, 2, 3, 4, 5, 9, 9, 2, 3, 0, 1]);
        let mut m: Vec<u8> = (0..12).collect();
        mirror_rows(&mut m, 3, 2);
        assert_eq!(m, [4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7]);
    }

    #[test]
    fn premultiply_round_trips_opaque_and_matches_pil() {
        let mut p = Pixels {
            w: 2,
            h: 1,
            c: 4,
            data: vec![200, 100, 50, 255, 200, 100, 50, 128],
        };
        p.premultiply();
        // MULDIV255(200, 128) = 100, MULDIV255(100, 128) = 50, MULDIV255(50, 128) = 25
        assert_eq!(p.data, [200, 100, 50, 255, 100, 50, 25, 128]);
        p.unpremultiply();
        assert_eq!(p.data, [200, 100, 50, 255, 199, 99, 49, 128]);
    }
}
