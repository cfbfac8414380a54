//! Images for `add_image` and `add_images`: layout, scaling, tiling and PNG encoding.
//!
//! As `torch.utils.tensorboard`: float pixels are in `[0, 1]` and become `(v * 255)` clipped to
//! `[0, 255]` and truncated to `u8` (PyTorch's `image()`: `(tensor * 255).clip(0, 255)
//! .astype(np.uint8)`); `u8` pixels are taken as they are. A tensor is first brought to
//! `[H, W, C]` (PyTorch's `convert_to_HWC`): one channel (or an `HW` tensor) is repeated into
//! three (grey RGB), 3 channels are RGB, 4 are RGBA. A batch (`NCHW`, `NHWC`) is tiled into one
//! image as `make_grid` does it there: `min(N, 8)` columns, as many rows as needed, unused cells
//! black, no padding.

use super::proto::Image;
use super::SummaryError;

/// Pixels of an image tensor: floats in `[0, 1]` or bytes in `[0, 255]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pixels<'a> {
    /// Floats in `[0, 1]` (clipped), scaled by 255.
    F32(&'a [f32]),
    /// Bytes, as they are.
    U8(&'a [u8]),
}

impl<'a> From<&'a [f32]> for Pixels<'a> {
    fn from(v: &'a [f32]) -> Self {
        Pixels::F32(v)
    }
}
impl<'a> From<&'a Vec<f32>> for Pixels<'a> {
    fn from(v: &'a Vec<f32>) -> Self {
        Pixels::F32(v)
    }
}
impl<'a, const N: usize> From<&'a [f32; N]> for Pixels<'a> {
    fn from(v: &'a [f32; N]) -> Self {
        Pixels::F32(v)
    }
}
impl<'a> From<&'a [u8]> for Pixels<'a> {
    fn from(v: &'a [u8]) -> Self {
        Pixels::U8(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Pixels<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Pixels::U8(v)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Pixels<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Pixels::U8(v)
    }
}

impl Pixels<'_> {
    fn len(&self) -> usize {
        match self {
            Pixels::F32(v) => v.len(),
            Pixels::U8(v) => v.len(),
        }
    }

    /// Element `i` as a byte, as PyTorch scales it.
    fn byte(&self, i: usize) -> u8 {
        match self {
            // `as u8` saturates and maps NaN to 0, as numpy's cast of the clipped value.
            Pixels::F32(v) => (v[i] * 255.0).clamp(0.0, 255.0) as u8,
            Pixels::U8(v) => v[i],
        }
    }
}

/// The order of a tensor's dims, as PyTorch's `dataformats` string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// `"CHW"`: channels first (PyTorch's default for `add_image`).
    Chw,
    /// `"HWC"`: channels last.
    Hwc,
    /// `"HW"`: one grey channel.
    Hw,
    /// `"NCHW"`: a batch, channels first (the default for `add_images`).
    Nchw,
    /// `"NHWC"`: a batch, channels last.
    Nhwc,
}

impl DataFormat {
    /// PyTorch's spelling: `"CHW"`, `"NHWC"`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            DataFormat::Chw => "CHW",
            DataFormat::Hwc => "HWC",
            DataFormat::Hw => "HW",
            DataFormat::Nchw => "NCHW",
            DataFormat::Nhwc => "NHWC",
        }
    }
}

/// An 8-bit image, `[H, W, C]` row-major, with `C` 3 (RGB) or 4 (RGBA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hwc {
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Channels: 3 or 4.
    pub channels: usize,
    /// `height * width * channels` bytes.
    pub data: Vec<u8>,
}

/// Brings `pixels` of `shape` in `format` to one `[H, W, C]` byte image (a batch tiled).
///
/// # Errors
/// [`SummaryError::Invalid`] if `shape` does not have the format's rank, has a zero dim, does
/// not hold `pixels.len()` elements, or has other than 1, 3 or 4 channels.
pub fn to_hwc(pixels: Pixels<'_>, shape: &[usize], format: DataFormat) -> Result<Hwc, SummaryError> {
    let invalid = |detail: String| SummaryError::invalid("add_image", detail);
    let fmt = format.as_str();
    if shape.len() != fmt.len() {
        return Err(invalid(format!(
            "dataformats {fmt} needs a shape of {} dims, found {shape:?}",
            fmt.len()
        )));
    }
    let numel: usize = shape.iter().product();
    if numel == 0 || numel != pixels.len() {
        return Err(invalid(format!(
            "shape {shape:?} ({fmt}) holds {numel} elements, found {} pixels (an image needs at least one)",
            pixels.len()
        )));
    }
    let dim = |c: char| shape[fmt.find(c).expect("dim in format")];
    let (n, c, h, w) = match format {
        DataFormat::Hw => (1, 1, dim('H'), dim('W')),
        DataFormat::Chw | DataFormat::Hwc => (1, dim('C'), dim('H'), dim('W')),
        DataFormat::Nchw | DataFormat::Nhwc => (dim('N'), dim('C'), dim('H'), dim('W')),
    };
    if ![1, 3, 4].contains(&c) {
        return Err(invalid(format!(
            "images have 1 (grey), 3 (RGB) or 4 (RGBA) channels, found {c} in shape {shape:?} ({fmt})"
        )));
    }
    let channels_last = matches!(format, DataFormat::Hwc | DataFormat::Nhwc);
    // Index of element (image k, channel ch, row y, column x) in the input.
    let index = |k: usize, ch: usize, y: usize, x: usize| {
        if channels_last {
            ((k * h + y) * w + x) * c + ch
        } else {
            ((k * c + ch) * h + y) * w + x
        }
    };
    let out_c = c.max(3);
    let cols = n.min(8);
    let rows = n.div_ceil(cols);
    let (height, width) = (h * rows, w * cols);
    let mut data = vec![0u8; height * width * out_c];
    for k in 0..n {
        let (y0, x0) = ((k / cols) * h, (k % cols) * w);
        for y in 0..h {
            for x in 0..w {
                let at = ((y0 + y) * width + x0 + x) * out_c;
                for ch in 0..out_c {
                    // A grey image repeats its one channel into R, G and B.
                    let src = if c == 1 { 0 } else { ch };
                    data[at + ch] = pixels.byte(index(k, src, y, x));
                }
            }
        }
    }
    Ok(Hwc {
        height,
        width,
        channels: out_c,
        data,
    })
}

/// Encodes `img` as PNG into a `Summary.Image` (as PyTorch's `make_image`).
///
/// # Errors
/// [`SummaryError::Invalid`] if the image is too large for PNG (over `u32::MAX` pixels a side).
pub fn encode(img: &Hwc) -> Result<Image, SummaryError> {
    use image::ImageEncoder;
    let too_large = || SummaryError::invalid("add_image", format!("{}x{} is too large", img.height, img.width));
    let w = u32::try_from(img.width).map_err(|_| too_large())?;
    let h = u32::try_from(img.height).map_err(|_| too_large())?;
    let color = if img.channels == 4 {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&img.data, w, h, color)
        .map_err(|e| SummaryError::invalid("add_image", format!("PNG encoding failed: {e}")))?;
    Ok(Image {
        height: h as i32,
        width: w as i32,
        colorspace: img.channels as i32,
        encoded_image_string: png,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_scale_by_255_clip_and_truncate_as_pytorch() {
        let v = [0.0f32, 0.5, 1.0, 1.5, -0.2, 0.999];
        let img = to_hwc(Pixels::F32(&v), &[1, 6], DataFormat::Hw).unwrap();
        let red: Vec<u8> = img.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(red, vec![0, 127, 255, 255, 0, 254]);
        assert!(img.data.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn chw_and_hwc_give_the_same_image() {
        // 3 channels, 2x2: channel-first values c*10 + y*2 + x.
        let chw: Vec<u8> = (0..3).flat_map(|c| (0..4).map(move |p| c * 10 + p)).collect();
        let mut hwc = vec![0u8; 12];
        for c in 0..3 {
            for p in 0..4 {
                hwc[p * 3 + c] = chw[c * 4 + p];
            }
        }
        let a = to_hwc(Pixels::U8(&chw), &[3, 2, 2], DataFormat::Chw).unwrap();
        let b = to_hwc(Pixels::U8(&hwc), &[2, 2, 3], DataFormat::Hwc).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.data, hwc);
    }

    #[test]
    fn a_batch_of_ten_tiles_into_8_columns_and_2_rows() {
        let (n, h, w) = (10usize, 2usize, 3usize);
        let px: Vec<u8> = (0..n * h * w).map(|i| (i / (h * w)) as u8 + 1).collect();
        let img = to_hwc(Pixels::U8(&px), &[n, 1, h, w], DataFormat::Nchw).unwrap();
        assert_eq!((img.height, img.width, img.channels), (2 * h, 8 * w, 3));
        let at = |y: usize, x: usize| img.data[(y * img.width + x) * 3];
        assert_eq!(at(0, 0), 1);
        assert_eq!(at(0, 7 * w), 8);
        assert_eq!(at(h, w), 10);
        assert_eq!(at(h, 2 * w), 0, "unused cells are black");
    }

    #[test]
    fn bad_shapes_are_errors() {
        let px = [0u8; 12];
        assert!(to_hwc(Pixels::U8(&px), &[3, 2, 2], DataFormat::Hw).is_err());
        assert!(to_hwc(Pixels::U8(&px), &[2, 2, 2], DataFormat::Chw).is_err());
        let e = to_hwc(Pixels::U8(&px), &[2, 3, 2], DataFormat::Chw).unwrap_err();
        assert!(e.to_string().contains("found 2"), "{e}");
        assert!(to_hwc(Pixels::U8(&[]), &[0, 4], DataFormat::Hw).is_err());
    }
}
