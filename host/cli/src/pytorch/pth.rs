//! `torch.save`'s file: a zip archive (stored entries) holding `<archive>/data.pkl`, the
//! pickled state dict, and `<archive>/data/<key>`, one entry of raw little-endian bytes per
//! storage (`<archive>/byteorder` says `little` when present).
//!
//! [`PthSource::open`] reads the zip's directory and the pickle (at most [`MAX_PICKLE`] bytes,
//! run by the restricted [`pickle`] reader), then checks every tensor before any storage is
//! read: its storage entry exists and is stored uncompressed, holds the storage's declared
//! length, and the tensor's strided view lies inside the storage. Storages are read one at a
//! time by [`TensorSource::copy_to`], only for tensors whose names and shapes matched the
//! model's, and converted to `f32` (strides honoured, so non-contiguous views load too).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use zip::{CompressionMethod, ZipArchive};

use super::pickle::{self, Tensor, Value};
use crate::fsutil;
use crate::model::state_dict::{SourceTensor, TensorSource};
use crate::model::ModelError;

/// The largest `data.pkl` read (a state dict's pickle is about 150 bytes per tensor).
pub const MAX_PICKLE: u64 = 64 << 20;

/// A `torch.save` state dict, its tensors checked against the archive (see the module docs).
pub struct PthSource {
    path: PathBuf,
    archive: ZipArchive<File>,
    file_len: u64,
    /// `<archive>/data/`.
    data_dir: String,
    tensors: Vec<(String, Tensor)>,
}

impl PthSource {
    /// Opens `path` and reads its pickle; see the module docs.
    ///
    /// # Errors
    /// [`ModelError::Io`] if the file cannot be opened; [`ModelError::PyTorch`] naming what is
    /// wrong: not a zip, no `data.pkl`, big-endian storages, a pickle the restricted reader
    /// refuses (a global outside the allowlist, named), a value that is not a tensor, a tensor
    /// beyond its storage or a storage beyond its entry.
    pub fn open(path: &Path) -> Result<PthSource, ModelError> {
        let file = fsutil::open_regular(path)?;
        let file_len = file
            .metadata()
            .map_err(|e| ModelError::pytorch(path, format!("cannot read the file's length: {e}")))?
            .len();
        // The legacy format (`_use_new_zipfile_serialization=False`) starts with a pickle.
        let mut magic = [0u8; 2];
        let legacy = (&file).read_exact(&mut magic).is_ok() && magic[0] == 0x80 && magic[1] <= 5;
        let mut archive = ZipArchive::new(file).map_err(|e| {
            let found = if legacy {
                "a pickle: the legacy torch.save format (_use_new_zipfile_serialization=False), which is not \
                 supported: load it in PyTorch and save it again with torch.save"
                    .to_string()
            } else {
                format!("not a zip archive ({e})")
            };
            ModelError::pytorch(
                path,
                format!("not a PyTorch file: torch.save (PyTorch 1.6 and later) writes a zip archive, this is {found}"),
            )
        })?;
        let pkl = archive
            .file_names()
            .filter(|n| *n == "data.pkl" || n.strip_suffix("/data.pkl").is_some_and(|p| !p.contains('/')))
            .min()
            .map(str::to_string)
            .ok_or_else(|| {
                ModelError::pytorch(
                    path,
                    "a zip archive without <archive>/data.pkl: not written by torch.save",
                )
            })?;
        let prefix = &pkl[..pkl.len() - "data.pkl".len()];
        let (data_dir, byteorder) = (format!("{prefix}data/"), format!("{prefix}byteorder"));
        if archive.index_for_name(&byteorder).is_some() {
            let order = read_entry(&mut archive, path, &byteorder, 64, file_len)?;
            if order != b"little" {
                return Err(ModelError::pytorch(
                    path,
                    format!(
                        "{byteorder} says '{}': only little-endian storages are supported",
                        String::from_utf8_lossy(&order)
                    ),
                ));
            }
        }
        let bytes = read_entry(&mut archive, path, &pkl, MAX_PICKLE, file_len)?;
        let value = pickle::load(&bytes).map_err(|e| ModelError::pytorch(path, format!("{pkl}: {e}")))?;
        let tensors = state_dict_tensors(value).map_err(|e| ModelError::pytorch(path, format!("{pkl}: {e}")))?;
        let mut source = PthSource {
            path: path.to_path_buf(),
            archive,
            file_len,
            data_dir,
            tensors,
        };
        for i in 0..source.tensors.len() {
            source.check(i)?;
        }
        Ok(source)
    }

    /// The zip entry of tensor `i`'s storage and its length in bytes, checked against the
    /// storage's declared length and the tensor's view.
    fn check(&mut self, i: usize) -> Result<(String, u64), ModelError> {
        let Some((name, t)) = self.tensors.get(i) else {
            return Err(ModelError::pytorch(&self.path, "a tensor index beyond the state dict"));
        };
        let err = |what: String| ModelError::pytorch(&self.path, format!("tensor '{name}': {what}"));
        let entry = format!("{}{}", self.data_dir, t.storage.key);
        let (size, method) = match self.archive.by_name(&entry) {
            Ok(f) => (f.size(), f.compression()),
            Err(e) => return Err(err(format!("its storage {entry} cannot be read: {e}"))),
        };
        if method != CompressionMethod::Stored {
            return Err(err(format!(
                "its storage {entry} is compressed ({method}); torch.save stores it"
            )));
        }
        let declared = t.storage.numel.checked_mul(t.storage.dtype.size());
        match declared {
            Some(d) if d <= size && size <= self.file_len => {}
            _ => {
                return Err(err(format!(
                    "its storage declares {} elements of {} ({} bytes), but {entry} holds {size} bytes",
                    t.storage.numel,
                    t.storage.dtype.name(),
                    declared.map_or_else(|| "over 2^64".to_string(), |d| d.to_string()),
                )))
            }
        }
        // The last element the view reaches must lie inside the storage.
        if t.size.iter().all(|&s| s > 0) {
            let last = t.size.iter().zip(&t.stride).try_fold(t.offset, |acc, (&s, &st)| {
                (s - 1).checked_mul(st).and_then(|x| acc.checked_add(x))
            });
            if last.is_none_or(|l| l >= t.storage.numel) {
                return Err(err(format!(
                    "its view (offset {}, size {:?}, stride {:?}) reaches beyond its storage of {} elements",
                    t.offset, t.size, t.stride, t.storage.numel
                )));
            }
        }
        Ok((entry, size))
    }
}

/// Reads the whole entry `name`, refusing one longer than `limit` or than the file.
fn read_entry(
    archive: &mut ZipArchive<File>,
    path: &Path,
    name: &str,
    limit: u64,
    file_len: u64,
) -> Result<Vec<u8>, ModelError> {
    let err = |what: String| ModelError::pytorch(path, format!("{name}: {what}"));
    let mut f = archive.by_name(name).map_err(|e| err(format!("cannot be read: {e}")))?;
    let size = f.size();
    if size > limit.min(file_len) {
        return Err(err(format!(
            "declares {size} bytes, more than the file's {file_len} bytes or the limit of {limit}"
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    (&mut f)
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot be read (truncated or corrupted?): {e}")))?;
    if bytes.len() as u64 != size {
        return Err(err(format!("holds {} bytes, its header says {size}", bytes.len())));
    }
    // Reading to the end checks the CRC-32.
    let mut rest = [0u8; 1];
    f.read(&mut rest)
        .map_err(|e| err(format!("cannot be read (truncated or corrupted?): {e}")))?;
    Ok(bytes)
}

/// The `(name, tensor)` pairs of a state dict (a dict of string keys and tensor values).
fn state_dict_tensors(value: Value) -> Result<Vec<(String, Tensor)>, String> {
    let Value::Dict(d) = value else {
        return Err(format!(
            "the pickle holds {}, not a state dict (a dict of tensors)",
            value.kind()
        ));
    };
    let mut out = Vec::with_capacity(d.items().len());
    for (k, v) in d.items() {
        let Value::Str(name) = k else {
            return Err(format!("a state dict key that is {}, not a string", k.kind()));
        };
        match v {
            Value::Tensor(t) => out.push((name.to_string(), (**t).clone())),
            other => {
                return Err(format!(
                    "entry '{name}' is {}, not a tensor (save model.state_dict() itself, not a checkpoint dict)",
                    other.kind()
                ))
            }
        }
    }
    // A repeated key: the last one wins, as in a dict.
    let mut seen = std::collections::HashSet::new();
    let mut deduped: Vec<(String, Tensor)> = out.into_iter().rev().filter(|(n, _)| seen.insert(n.clone())).collect();
    deduped.reverse();
    Ok(deduped)
}

impl TensorSource for PthSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn alias(&self, name: &str) -> Option<String> {
        super::residual_alias(name)
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        self.tensors
            .iter()
            .map(|(name, t)| SourceTensor {
                name: name.clone(),
                dims: t.size.clone(),
                role: None,
            })
            .collect()
    }

    fn copy_to(&mut self, index: usize, dst: &mut [f32]) -> Result<(), ModelError> {
        let (entry, size) = self.check(index)?;
        let bytes = read_entry(&mut self.archive, &self.path, &entry, size, self.file_len)?;
        let Some((name, t)) = self.tensors.get(index) else {
            return Err(ModelError::pytorch(&self.path, "a tensor index beyond the state dict"));
        };
        gather(t, &bytes, dst).map_err(|what| ModelError::pytorch(&self.path, format!("tensor '{name}': {what}")))
    }
}

/// Copies the view `t` of the storage `bytes` into `dst` (row-major), converting to `f32`.
fn gather(t: &Tensor, bytes: &[u8], dst: &mut [f32]) -> Result<(), String> {
    let numel = t.size.iter().try_fold(1u64, |a, &s| a.checked_mul(s));
    if numel != Some(dst.len() as u64) {
        return Err(format!(
            "{} elements, the model's tensor has {}",
            numel.unwrap_or(u64::MAX),
            dst.len()
        ));
    }
    let es = usize::try_from(t.storage.dtype.size()).unwrap_or(1);
    let element = |i: u64| -> Result<f32, String> {
        let at = usize::try_from(i).ok().and_then(|i| i.checked_mul(es));
        let b = at
            .and_then(|a| bytes.get(a..a.checked_add(es)?))
            .ok_or_else(|| format!("element {i} lies beyond its storage"))?;
        Ok(super::element(t.storage.dtype, b))
    };
    // An odometer over the view's indices; `at` is the storage index of `idx`.
    let mut idx = vec![0u64; t.size.len()];
    let mut at = t.offset;
    for d in dst.iter_mut() {
        *d = element(at)?;
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            at = at.wrapping_add(t.stride[k]);
            if idx[k] < t.size[k] {
                break;
            }
            at = at.wrapping_sub(t.stride[k].wrapping_mul(t.size[k]));
            idx[k] = 0;
        }
    }
    Ok(())
}
