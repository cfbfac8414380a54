//! `.safetensors` files (`safetensors.torch.save_file(model.state_dict(), path)`), read with
//! the `safetensors` crate: an 8-byte header length, a JSON header of names, dtypes, shapes
//! and byte ranges, then the data. The crate checks the header (its size, its JSON, that the
//! ranges tile the data exactly and match each shape and dtype); tensors of `F32` load as they
//! are, `F64`, `F16`, `BF16` and the integer types are converted to `f32`, any other dtype is
//! an error naming the tensor.

use std::ops::Range;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype as StDtype;
use safetensors::SafeTensors;

use super::Dtype;
use crate::fsutil;
use crate::model::state_dict::{SourceTensor, TensorSource};
use crate::model::ModelError;

/// A `.safetensors` file in memory, its header checked.
pub struct SafetensorsSource {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Name, dtype, shape and byte range in `bytes` of each tensor, in file order.
    tensors: Vec<(String, Dtype, Vec<u64>, Range<usize>)>,
}

/// Our dtype for a safetensors dtype, if it converts to `f32`.
fn dtype(d: StDtype) -> Option<Dtype> {
    Some(match d {
        StDtype::F32 => Dtype::F32,
        StDtype::F64 => Dtype::F64,
        StDtype::F16 => Dtype::F16,
        StDtype::BF16 => Dtype::BF16,
        StDtype::I64 => Dtype::I64,
        StDtype::I32 => Dtype::I32,
        StDtype::I16 => Dtype::I16,
        StDtype::I8 => Dtype::I8,
        StDtype::U8 => Dtype::U8,
        StDtype::BOOL => Dtype::Bool,
        _ => return None,
    })
}

impl SafetensorsSource {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// [`ModelError::Io`] if it cannot be read; [`ModelError::PyTorch`] for a header the
    /// crate refuses (truncated, not JSON, ranges beyond the data) or an unsupported dtype.
    pub fn open(path: &Path) -> Result<SafetensorsSource, ModelError> {
        let bytes = fsutil::read(path)?;
        let (header_len, metadata) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| ModelError::pytorch(path, format!("not a valid .safetensors file: {e}")))?;
        let start = header_len + 8;
        let infos = metadata.tensors();
        let mut tensors = Vec::with_capacity(infos.len());
        for name in metadata.offset_keys() {
            let Some(info) = infos.get(&name) else { continue };
            let d = dtype(info.dtype).ok_or_else(|| {
                ModelError::pytorch(
                    path,
                    format!(
                        "tensor '{name}': dtype {:?} is not supported (expected F32, or F64, F16, BF16 or an integer \
                         type, converted to f32)",
                        info.dtype
                    ),
                )
            })?;
            let (a, b) = info.data_offsets;
            let range = start
                .checked_add(a)
                .zip(start.checked_add(b))
                .map(|(a, b)| a..b)
                .filter(|r| r.start <= r.end && r.end <= bytes.len())
                .ok_or_else(|| ModelError::pytorch(path, format!("tensor '{name}': its data lies beyond the file")))?;
            let dims = info.shape.iter().map(|&s| s as u64).collect();
            tensors.push((name, d, dims, range));
        }
        Ok(SafetensorsSource {
            path: path.to_path_buf(),
            bytes,
            tensors,
        })
    }
}

impl TensorSource for SafetensorsSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn alias(&self, name: &str) -> Option<String> {
        super::residual_alias(name)
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        self.tensors
            .iter()
            .map(|(name, _, dims, _)| SourceTensor {
                name: name.clone(),
                dims: dims.clone(),
                role: None,
            })
            .collect()
    }

    fn copy_to(&mut self, index: usize, dst: &mut [f32]) -> Result<(), ModelError> {
        let Some((name, d, _, range)) = self.tensors.get(index) else {
            return Err(ModelError::pytorch(
                &self.path,
                "a tensor index beyond the file's header",
            ));
        };
        let es = usize::try_from(d.size()).unwrap_or(1);
        let data = self.bytes.get(range.clone()).unwrap_or_default();
        if data.len() != dst.len().saturating_mul(es) {
            return Err(ModelError::pytorch(
                &self.path,
                format!(
                    "tensor '{name}': {} bytes of data for {} elements of {}",
                    data.len(),
                    dst.len(),
                    d.name()
                ),
            ));
        }
        for (v, b) in dst.iter_mut().zip(data.chunks_exact(es)) {
            *v = super::element(*d, b);
        }
        Ok(())
    }
}
