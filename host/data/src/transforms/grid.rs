//! A batch of images as one picture: [`make_grid`] and [`save_image`], as
//! `torchvision.utils.make_grid` and `torchvision.utils.save_image`.
//!
//! Use them to look at what the loader feeds the network (after un-normalising) or at a
//! layer's filters.

use std::path::Path;

use super::pixels::Pixels;
use super::transform_error;
use crate::{DataError, Tensor};

/// The options of [`make_grid`], with torchvision's defaults and names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridOptions {
    /// Images per row (`nrow=8`).
    pub nrow: usize,
    /// Pixels between images and around the grid (`padding=2`).
    pub padding: usize,
    /// Shift to `[0, 1]` by the value range (`normalize=False`).
    pub normalize: bool,
    /// The range mapped to `[0, 1]` when normalising (`value_range=None`: the min and max).
    pub value_range: Option<(f32, f32)>,
    /// Normalise each image by its own range (`scale_each=False`).
    pub scale_each: bool,
    /// The value of the padding (`pad_value=0.0`).
    pub pad_value: f32,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            nrow: 8,
            padding: 2,
            normalize: false,
            value_range: None,
            scale_each: false,
            pad_value: 0.0,
        }
    }
}

impl GridOptions {
    /// Images per row.
    pub fn nrow(mut self, nrow: usize) -> Self {
        self.nrow = nrow;
        self
    }
    /// Padding in pixels.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
    /// Shift to `[0, 1]`.
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }
    /// The range normalised to `[0, 1]`.
    pub fn value_range(mut self, low: f32, high: f32) -> Self {
        self.value_range = Some((low, high));
        self
    }
    /// Normalise each image separately.
    pub fn scale_each(mut self, scale_each: bool) -> Self {
        self.scale_each = scale_each;
        self
    }
    /// The padding value.
    pub fn pad_value(mut self, pad_value: f32) -> Self {
        self.pad_value = pad_value;
        self
    }
}

/// torchvision's `norm_range`: clamp to the range, then map it to `[0, 1]`.
fn norm_range(v: &mut [f32], range: Option<(f32, f32)>) {
    let (low, high) = range.unwrap_or_else(|| {
        v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
    });
    let d = ((high as f64 - low as f64).max(1e-5)) as f32;
    for x in v {
        *x = (x.clamp(low, high) - low) / d;
    }
}

/// `torchvision.utils.make_grid`: `batch: [N, C, H, W]` (or one `[C, H, W]` image) as one
/// `[C, H', W']` image, `nrow` images per row, `padding` pixels of `pad_value` between and
/// around them. One-channel images become three-channel; a single image is returned without
/// padding, as torchvision.
///
/// # Errors
/// [`DataError::Transform`] for a tensor of other than 2 to 4 dimensions, an empty batch or
/// `nrow == 0`.
pub fn make_grid(batch: &Tensor, options: &GridOptions) -> Result<Tensor, DataError> {
    let (n, mut c, h, w) = match batch.shape[..] {
        [h, w] => (1, 1, h, w),
        [c, h, w] => (1, c, h, w),
        [n, c, h, w] => (n, c, h, w),
        _ => {
            return Err(transform_error(
                "make_grid",
                format!("expected a [N, C, H, W] batch, found shape {:?}", batch.shape),
            ))
        }
    };
    if options.nrow == 0 || n == 0 {
        return Err(transform_error("make_grid", "need nrow >= 1 and at least one image"));
    }
    let plane = h * w;
    let mut data = if c == 1 {
        // torch.cat((t, t, t), 1)
        let mut d = Vec::with_capacity(batch.data.len() * 3);
        for img in batch.data.chunks_exact(plane.max(1)).take(n) {
            for _ in 0..3 {
                d.extend_from_slice(img);
            }
        }
        c = 3;
        d
    } else {
        batch.data.clone()
    };
    if options.normalize {
        if options.scale_each {
            for img in data.chunks_exact_mut((c * plane).max(1)) {
                norm_range(img, options.value_range);
            }
        } else {
            norm_range(&mut data, options.value_range);
        }
    }
    if n == 1 {
        return Ok(Tensor {
            shape: vec![c, h, w],
            data,
        });
    }
    let xmaps = options.nrow.min(n);
    let ymaps = n.div_ceil(xmaps);
    let (ch, cw) = (h + options.padding, w + options.padding);
    let (gh, gw) = (ch * ymaps + options.padding, cw * xmaps + options.padding);
    let mut grid = vec![options.pad_value; c * gh * gw];
    for k in 0..n {
        let (gy, gx) = (k / xmaps, k % xmaps);
        let (top, left) = (gy * ch + options.padding, gx * cw + options.padding);
        for ch_i in 0..c {
            let src = &data[(k * c + ch_i) * plane..(k * c + ch_i + 1) * plane];
            for y in 0..h {
                let dst = ch_i * gh * gw + (top + y) * gw + left;
                grid[dst..dst + w].copy_from_slice(&src[y * w..(y + 1) * w]);
            }
        }
    }
    Ok(Tensor {
        shape: vec![c, gh, gw],
        data: grid,
    })
}

/// `torchvision.utils.save_image`: [`make_grid`] of `batch`, written as an 8-bit image (levels
/// `clamp(x * 255 + 0.5, 0, 255)`, truncated) in the format the extension of `path` names
/// (`.png`, `.jpg`, `.bmp`...).
///
/// # Errors
/// As [`make_grid`]; [`DataError::Io`] if the file cannot be written;
/// [`DataError::Transform`] for a grid of more than 4 channels or an unknown extension.
pub fn save_image(batch: &Tensor, path: impl AsRef<Path>, options: &GridOptions) -> Result<(), DataError> {
    let path = path.as_ref();
    let grid = make_grid(batch, options)?;
    let (c, h, w) = (grid.shape[0], grid.shape[1], grid.shape[2]);
    if !(1..=4).contains(&c) {
        return Err(transform_error(
            "save_image",
            format!("cannot write an image of {c} channels"),
        ));
    }
    let plane = h * w;
    let mut data = vec![0u8; plane * c];
    for ch in 0..c {
        for (i, &v) in grid.data[ch * plane..(ch + 1) * plane].iter().enumerate() {
            data[i * c + ch] = (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    let img = Pixels { w, h, c, data }.into_image();
    img.save(path).map_err(|e| match e {
        image::ImageError::IoError(source) => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => transform_error("save_image", format!("{}: {other}", path.display())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_layout_matches_torchvision() {
        // 3 images of 1x1, 2 per row, padding 1: a 3 x 5 grid of 3 channels.
        let batch = Tensor::new(vec![3, 1, 1, 1], vec![1.0, 2.0, 3.0]).unwrap();
        let g = make_grid(&batch, &GridOptions::default().nrow(2).padding(1).pad_value(9.0)).unwrap();
        assert_eq!(g.shape, [3, 5, 5]);
        let red: Vec<f32> = g.data[..25].to_vec();
        #[rustfmt::skip]
        assert_eq!(red, [
            9.0, 9.0, 9.0, 9.0, 9.0,
            9.0, 1.0, 9.0, 2.0, 9.0,
            9.0, 9.0, 9.0, 9.0, 9.0,
            9.0, 3.0, 9.0, 9.0, 9.0,
            9.0, 9.0, 9.0, 9.0, 9.0,
        ]);
    }

    #[test]
    fn single_image_is_not_padded_and_normalises() {
        let one = Tensor::new(vec![1, 1, 2], vec![-1.0, 3.0]).unwrap();
        let g = make_grid(&one, &GridOptions::default().normalize(true)).unwrap();
        assert_eq!(g.shape, [3, 1, 2]);
        assert_eq!(g.data, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    }
}
