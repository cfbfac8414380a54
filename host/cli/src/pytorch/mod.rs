//! Importing PyTorch weights: a `state_dict` saved with `torch.save` (`.pth`, `.pt`, `.bin`)
//! or with `safetensors.torch.save_file` (`.safetensors`), loaded by name into a model of the
//! same architecture (`torchlet import`, [`Model::load_pytorch_state_dict`]).
//!
//! - [`pth`]: `torch.save`'s zip archive (PyTorch 1.6 and later): `<archive>/data.pkl`, a pickle
//!   read by the restricted reader of [`pickle`] (only what `torch.load(weights_only=True)`
//!   accepts for a state dict; no global outside its allowlist, nothing ever called), and
//!   `<archive>/data/<key>`, the storages' raw little-endian bytes. Every size the pickle
//!   declares is checked against the zip entry before anything is read or allocated.
//! - [`safetensors`]: through the `safetensors` crate (its header and offsets checked).
//!
//! Both become a [`TensorSource`] for the matcher every state-dict load shares
//! (`Model::load_from_source`): strict names and shapes by default with the messages of
//! [`Model::load_state_dict`], a [`LoadReport`] without `strict`. A tensor of a residual
//! block's body is also found under PyTorch's name for it, without the `body` segment
//! (`residual_alias`: `layer1.0.conv1.weight` for torchlet's `layer1.0.body.conv1.weight`). Tensors of `float32` load as
//! they are; `float64`, `float16`, `bfloat16` and the integer types (`num_batches_tracked` is
//! `int64`) are converted to `f32`.

pub mod pickle;
pub mod pth;
pub mod safetensors;

use std::path::Path;

use crate::model::state_dict::TensorSource;
use crate::model::{LoadReport, Model, ModelError};

pub use pickle::Dtype;

/// How a file is read, from its extension: `.safetensors`, or else `torch.save`'s zip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `torch.save`'s zip archive with a pickle (`.pth`, `.pt`, `.bin`).
    Pth,
    /// A `.safetensors` file.
    Safetensors,
}

impl Format {
    /// The format of `path`, from its extension (anything but `.safetensors` is read as
    /// `torch.save`'s zip, which checks its magic).
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("safetensors") => Format::Safetensors,
            _ => Format::Pth,
        }
    }
}

impl Model {
    /// Loads a PyTorch `state_dict` by name (`model.load_state_dict(torch.load(path,
    /// weights_only=True), strict)`): a `torch.save` zip (`.pth`, `.pt`, `.bin`) or a
    /// `.safetensors` file; see the [module docs](self). The model changes only if the load
    /// succeeds.
    ///
    /// # Errors
    /// [`ModelError::Io`] if the file cannot be read; [`ModelError::PyTorch`] for a file that is
    /// not a state dict of the accepted kind (naming the part or tensor: a global outside the
    /// allowlist, a storage beyond its zip entry, an unsupported dtype); then as
    /// [`Model::load_state_dict`]: [`ModelError::ShapeMismatch`], [`ModelError::Keys`] when
    /// `strict`, [`ModelError::NonFinite`].
    pub fn load_pytorch_state_dict(&mut self, path: &Path, strict: bool) -> Result<LoadReport, ModelError> {
        let mut source: Box<dyn TensorSource> = match Format::of(path) {
            Format::Pth => Box::new(pth::PthSource::open(path)?),
            Format::Safetensors => Box::new(safetensors::SafetensorsSource::open(path)?),
        };
        self.load_from_source(source.as_mut(), strict)
    }
}

/// The PyTorch name of a tensor in a residual block's body, for a file that lacks torchlet's:
/// torchlet names a residual's branches `body` and `shortcut` (`"layer1.0.body.conv1.weight"`),
/// PyTorch's `BasicBlock` and `Bottleneck` (torchvision's, `tools/fixtures/zoo_params.py`) hold
/// the body's layers directly (`"layer1.0.conv1.weight"`). `None` without a `body` segment.
pub(crate) fn residual_alias(name: &str) -> Option<String> {
    let segments: Vec<&str> = name.split('.').collect();
    if !segments.contains(&"body") {
        return None;
    }
    Some(
        segments
            .into_iter()
            .filter(|s| *s != "body")
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The `f32` value of the element `bytes` (little-endian, `dtype.size()` bytes long).
pub(crate) fn element(dtype: Dtype, b: &[u8]) -> f32 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    match dtype {
        Dtype::F32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
        Dtype::F64 => f64::from_le_bytes(a) as f32,
        Dtype::F16 => f16_to_f32(u16::from_le_bytes([a[0], a[1]])),
        Dtype::BF16 => f32::from_bits(u32::from(u16::from_le_bytes([a[0], a[1]])) << 16),
        Dtype::I64 => i64::from_le_bytes(a) as f32,
        Dtype::I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
        Dtype::I16 => f32::from(i16::from_le_bytes([a[0], a[1]])),
        Dtype::I8 => f32::from(a[0] as i8),
        Dtype::U8 => f32::from(a[0]),
        Dtype::Bool => f32::from(u8::from(a[0] != 0)),
    }
}

/// IEEE half precision to single (exact: every half is a float).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: f * 2^-24.
            let v = f as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, f) => sign | 0x7fc0_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_and_bfloat16_convert_exactly() {
        for (h, v) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 5.960_464_5e-8),
            (0x7bff, 65504.0),
            (0x0000, 0.0),
        ] {
            assert_eq!(f16_to_f32(h), v, "{h:#06x}");
        }
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
        assert_eq!(element(Dtype::BF16, &0x3f80u16.to_le_bytes()), 1.0);
        assert_eq!(element(Dtype::I64, &7i64.to_le_bytes()), 7.0);
        assert_eq!(element(Dtype::F64, &0.5f64.to_le_bytes()), 0.5);
    }

    #[test]
    fn residual_bodies_have_pytorch_aliases() {
        assert_eq!(
            residual_alias("layer1.0.body.conv1.weight").as_deref(),
            Some("layer1.0.conv1.weight")
        );
        assert_eq!(residual_alias("layer2.0.shortcut.0.weight"), None);
        assert_eq!(residual_alias("bodyguard.weight"), None);
    }
}
