//! Conversions between images and tensors, normalisation, and user functions:
//! [`ToTensor`], [`ToPILImage`], [`Normalize`], [`Lambda`].
//!
//! [`ToTensor`] is where an image pipeline becomes a tensor pipeline: put the geometric and
//! colour transforms that torchvision runs on PIL images before it, and [`Normalize`] after.

use std::sync::Arc;

use image::DynamicImage;

use super::pixels::{Chw, Pixels};
use super::{transform_error, Transform};
use crate::{DataError, Sample, Tensor};

/// `v / 255` for every level, as `ToTensor` computes it in `f32`.
const LEVELS: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f32 / 255.0;
        i += 1;
    }
    t
};

/// `torchvision.transforms.functional.to_tensor`: an image of `H x W` pixels and `C` channels
/// (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a `[C, H, W]` tensor of `level / 255` in `[0, 1]`.
///
/// 16-bit and float images are first converted to 8 bits (torchvision keeps their raw values;
/// 8-bit images, the ones datasets decode, are exact).
pub fn to_tensor(img: DynamicImage) -> Tensor {
    let p = Pixels::from_image(img);
    let plane = p.w * p.h;
    let mut data = vec![0.0f32; plane * p.c];
    if p.c == 3 {
        // The common case, unrolled: one pass over the interleaved pixels, three planes out.
        let (r, rest) = data.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in p.data.chunks_exact(3).enumerate() {
            r[i] = LEVELS[px[0] as usize];
            g[i] = LEVELS[px[1] as usize];
            b[i] = LEVELS[px[2] as usize];
        }
    } else {
        for (i, px) in p.data.chunks_exact(p.c).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                data[ch * plane + i] = LEVELS[v as usize];
            }
        }
    }
    Tensor {
        shape: vec![p.c, p.h, p.w],
        data,
    }
}

/// `torchvision.transforms.functional.to_pil_image` for a float tensor: `x: [C, H, W]` with
/// `C` in `1..=4` becomes an L, LA, RGB or RGBA image of levels `byte(x * 255)` (truncated,
/// as PyTorch's `.byte()`; values outside `[0, 1]` are clamped where PyTorch would wrap).
///
/// # Errors
/// [`DataError::Transform`] for another shape.
pub fn to_pil_image(x: &Tensor) -> Result<DynamicImage, DataError> {
    let (c, h, w) = match x.shape[..] {
        [c, h, w] if (1..=4).contains(&c) => (c, h, w),
        [h, w] => (1, h, w),
        _ => {
            return Err(transform_error(
                "ToPILImage",
                format!(
                    "expected a [C, H, W] tensor with 1 to 4 channels, found shape {:?}",
                    x.shape
                ),
            ))
        }
    };
    let plane = h * w;
    let mut data = vec![0u8; plane * c];
    for ch in 0..c {
        for (i, &v) in x.data[ch * plane..(ch + 1) * plane].iter().enumerate() {
            // NaN casts to 0; `as` saturates, which is the clamp.
            data[i * c + ch] = (v * 255.0) as u8;
        }
    }
    Ok(Pixels { w, h, c, data }.into_image())
}

/// `torchvision.transforms.functional.normalize`: `x: [..., C, H, W]` becomes
/// `(x - mean[c]) / std[c]` per channel, in `f32` as PyTorch's `sub_` then `div_`.
/// `mean` and `std` have `C` values or one.
///
/// # Errors
/// [`DataError::Transform`] if the tensor has fewer than 3 dimensions or another channel count.
pub fn normalize(mut x: Tensor, mean: &[f32], std: &[f32]) -> Result<Tensor, DataError> {
    let g = Chw::of(&x, "Normalize")?;
    let per_channel = |v: &[f32]| -> Option<Vec<f32>> {
        match v.len() {
            1 => Some(vec![v[0]; g.c]),
            n if n == g.c => Some(v.to_vec()),
            _ => None,
        }
    };
    let (Some(m), Some(s)) = (per_channel(mean), per_channel(std)) else {
        return Err(transform_error(
            "Normalize",
            format!(
                "mean has {} and std {} values for a tensor of {} channels",
                mean.len(),
                std.len(),
                g.c
            ),
        ));
    };
    let plane = g.h * g.w;
    if plane == 0 {
        return Ok(x);
    }
    for (p, chunk) in x.data.chunks_exact_mut(plane).enumerate() {
        let (m, s) = (m[p % g.c], s[p % g.c]);
        for v in chunk {
            *v = (*v - m) / s;
        }
    }
    Ok(x)
}

/// `transforms.ToTensor()`: an image to a `[C, H, W]` tensor in `[0, 1]` ([`to_tensor`]).
/// A tensor is an error, as in torchvision.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToTensor;

impl Transform for ToTensor {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        match x {
            Sample::Image(img) => Ok(Sample::Tensor(to_tensor(img))),
            Sample::Tensor(_) => Err(transform_error("ToTensor", "expected an image, found a tensor")),
        }
    }
    fn name(&self) -> String {
        "ToTensor()".into()
    }
}

/// `transforms.ToPILImage()`: a `[C, H, W]` tensor in `[0, 1]` to an image ([`to_pil_image`]);
/// the mode follows the channel count. To write a tensor to a file, see
/// [`save_image`](super::save_image).
#[derive(Clone, Copy, Debug, Default)]
pub struct ToPILImage;

impl Transform for ToPILImage {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        match x {
            Sample::Tensor(t) => Ok(Sample::Image(to_pil_image(&t)?)),
            Sample::Image(_) => Err(transform_error("ToPILImage", "expected a tensor, found an image")),
        }
    }
    fn name(&self) -> String {
        "ToPILImage()".into()
    }
}

/// `transforms.Normalize(mean, std)`: `(x - mean) / std` per channel of a tensor
/// ([`normalize`]).
#[derive(Clone, Debug)]
pub struct Normalize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// Per-channel `mean` and `std` (one value each, or one per channel).
    ///
    /// # Panics
    /// If a standard deviation is zero (torchvision: "std evaluated to zero") or either list is
    /// empty.
    pub fn new(mean: impl Into<Vec<f32>>, std: impl Into<Vec<f32>>) -> Self {
        let (mean, std) = (mean.into(), std.into());
        assert!(
            !mean.is_empty() && !std.is_empty(),
            "Normalize: mean and std must not be empty"
        );
        assert!(
            std.iter().all(|&s| s != 0.0),
            "Normalize: std evaluated to zero after conversion to float32, leading to division by zero."
        );
        Normalize { mean, std }
    }
}

impl Transform for Normalize {
    fn apply(&self, x: Sample, _rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        Ok(Sample::Tensor(normalize(
            x.into_tensor("Normalize")?,
            &self.mean,
            &self.std,
        )?))
    }
    fn name(&self) -> String {
        format!("Normalize(mean={:?}, std={:?})", self.mean, self.std)
    }
}

type LambdaFn = dyn Fn(Sample, &mut torchlet::Rng) -> Result<Sample, DataError> + Send + Sync;

/// `transforms.Lambda(lambd)`: a user function as a transform.
#[derive(Clone)]
pub struct Lambda {
    f: Arc<LambdaFn>,
}

impl Lambda {
    /// A transform that calls `f` on the sample.
    pub fn new(f: impl Fn(Sample) -> Result<Sample, DataError> + Send + Sync + 'static) -> Self {
        Lambda {
            f: Arc::new(move |x, _rng: &mut torchlet::Rng| f(x)),
        }
    }

    /// A random transform: `f` draws from the sample's generator, so seeds still repeat runs.
    pub fn with_rng(
        f: impl Fn(Sample, &mut torchlet::Rng) -> Result<Sample, DataError> + Send + Sync + 'static,
    ) -> Self {
        Lambda { f: Arc::new(f) }
    }
}

impl std::fmt::Debug for Lambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lambda()")
    }
}

impl Transform for Lambda {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        (self.f)(x, rng)
    }
    fn name(&self) -> String {
        "Lambda()".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_tensor_is_planar_and_scaled() {
        let img = image::RgbImage::from_raw(2, 1, vec![0, 51, 255, 102, 153, 204]).unwrap();
        let t = to_tensor(DynamicImage::ImageRgb8(img));
        assert_eq!(t.shape, [3, 1, 2]);
        assert_eq!(t.data, [0.0, 0.4, 0.2, 0.6, 1.0, 0.8]);
        let gray = image::GrayAlphaImage::from_raw(1, 1, vec![255, 0]).unwrap();
        assert_eq!(to_tensor(DynamicImage::ImageLumaA8(gray)).data, [1.0, 0.0]);
    }

    #[test]
    fn to_pil_image_truncates_like_byte() {
        let t = Tensor::new(vec![1, 1, 3], vec![0.5, 1.5, -0.2]).unwrap();
        let img = to_pil_image(&t).unwrap();
        assert_eq!(img.as_luma8().unwrap().as_raw(), &[127, 255, 0]);
        assert!(to_pil_image(&Tensor::new(vec![5, 1, 1], vec![0.0; 5]).unwrap()).is_err());
    }

    #[test]
    fn normalize_per_channel_and_batched() {
        let t = Tensor::new(vec![2, 2, 1, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let n = normalize(t, &[1.0, 2.0], &[2.0, 0.5]).unwrap();
        assert_eq!(n.data, [0.0, 0.0, 1.0, 4.0]);
        let t = Tensor::new(vec![3, 1, 1], vec![1.0; 3]).unwrap();
        assert!(normalize(t, &[0.0, 0.0], &[1.0]).is_err());
    }

    #[test]
    #[should_panic(expected = "std evaluated to zero")]
    fn normalize_rejects_zero_std() {
        Normalize::new([0.5], [0.0]);
    }
}
