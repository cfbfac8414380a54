//! State dicts: the weights alone, loaded by name into a model of the same architecture.
//!
//! [`Model::save_state_dict`] writes a `.tlm` state dict: the tensor table (PyTorch's
//! `state_dict` names and shapes, `"0.weight": [32, 3, 5, 5]`) and the data, without the
//! architecture. [`Model::load_state_dict`] is PyTorch's `model.load_state_dict(sd, strict)`:
//! each of the model's tensors is looked up by name in the file and must have the same shape
//! (a mismatch is always an error, naming the tensor and both shapes); with `strict`, a tensor
//! the file lacks (missing) or a tensor the model lacks (unexpected) is an error too, without
//! it they are reported in the [`LoadReport`]. The model changes only if the load succeeds.
//!
//! Any model file works as a state dict: a whole model or a checkpoint (whose optimizer
//! tensors are not part of the model's state dict and are ignored).

use std::collections::HashMap;
use std::path::Path;

use torchlet::model_file::{ModelFile, Role, TensorInfo};

use super::{Model, ModelError};
use crate::fsutil;

/// What [`Model::load_state_dict`] did not match, as PyTorch's `_IncompatibleKeys`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The model's tensors that the file does not have (they kept their values).
    pub missing: Vec<String>,
    /// The file's tensors that the model does not have (ignored).
    pub unexpected: Vec<String>,
}

impl Model {
    /// The weights as a `.tlm` state dict (what [`Model::save_state_dict`] writes).
    ///
    /// # Errors
    /// As [`Model::to_bytes`].
    pub fn state_dict_bytes(&self) -> Result<Vec<u8>, ModelError> {
        self.encode(true, None)
    }

    /// Saves the weights alone, atomically (`torch.save(model.state_dict(), path)`).
    ///
    /// # Errors
    /// As [`Model::save`].
    pub fn save_state_dict(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.state_dict_bytes()?;
        Ok(fsutil::write_atomic(path, &bytes)?)
    }

    /// Loads weights by name from a state dict (or any model file) at `path`
    /// (`model.load_state_dict(torch.load(path), strict)`); see the [module docs](self).
    ///
    /// # Errors
    /// [`ModelError::Io`] / [`ModelError::File`] as [`Model::load`];
    /// [`ModelError::ShapeMismatch`] naming the tensor and both shapes;
    /// [`ModelError::Keys`] listing missing and unexpected tensors when `strict`.
    pub fn load_state_dict(&mut self, path: &Path, strict: bool) -> Result<LoadReport, ModelError> {
        let bytes = fsutil::read(path)?;
        self.load_state_dict_bytes(&bytes, path, strict)
    }

    /// [`Model::load_state_dict`] from file bytes; `path` names them in errors.
    ///
    /// # Errors
    /// As [`Model::load_state_dict`].
    pub fn load_state_dict_bytes(&mut self, bytes: &[u8], path: &Path, strict: bool) -> Result<LoadReport, ModelError> {
        let file = ModelFile::parse(bytes).map_err(|e| ModelError::file(path, e))?;
        super::check_finite(&file, path)?;
        let mut source = ModelFileSource {
            path,
            tensors: file.tensors().filter(|t| t.role != Role::Optimizer).collect(),
        };
        self.load_from_source(&mut source, strict)
    }

    /// Loads weights by name from any [`TensorSource`] (a model file, a PyTorch state dict):
    /// the one matcher behind every state-dict load (see the [module docs](self)). Names and
    /// shapes are all checked before any data is read, so a mismatch never reads a tensor.
    ///
    /// # Errors
    /// [`ModelError::ShapeMismatch`] naming the tensor and both shapes; [`ModelError::Keys`]
    /// listing missing and unexpected tensors when `strict`; the source's read errors;
    /// [`ModelError::NonFinite`] for a NaN or infinite value.
    pub(crate) fn load_from_source(
        &mut self,
        source: &mut dyn TensorSource,
        strict: bool,
    ) -> Result<LoadReport, ModelError> {
        let path = source.path().to_path_buf();
        let theirs: HashMap<String, (usize, SourceTensor)> = source
            .tensors()
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), (i, t)))
            .collect();

        // The model's own table, from its own state dict: the names and shapes, in the
        // order of the parameter and state buffers (each buffer is its tensors back to back).
        let own_bytes = self.state_dict_bytes()?;
        let own = ModelFile::parse(&own_bytes).map_err(|e| self.error(e))?;
        let (mut p_at, mut s_at) = (0usize, 0usize);
        let mut report = LoadReport::default();
        // The file's names that matched a tensor of the model.
        let mut used = std::collections::HashSet::new();
        // (source index, name, role, range in its buffer) of each tensor to copy.
        let mut copies = Vec::new();
        for t in own.tensors() {
            let at = match t.role {
                Role::Parameter => &mut p_at,
                Role::State => &mut s_at,
                Role::Optimizer => continue,
            };
            let range = *at..*at + t.numel;
            *at += t.numel;
            let found = theirs.get(t.name).map(|f| (t.name.to_string(), f)).or_else(|| {
                let alias = source.alias(t.name)?;
                theirs.get(&alias).map(|f| (alias, f))
            });
            let Some((their_name, (index, f))) = found else {
                report.missing.push(t.name.to_string());
                continue;
            };
            used.insert(their_name);
            if f.dims != t.dims() || f.role.is_some_and(|r| r != t.role) {
                return Err(ModelError::ShapeMismatch {
                    path,
                    name: t.name.to_string(),
                    file: f.dims.clone(),
                    model: t.dims().to_vec(),
                });
            }
            copies.push((*index, t.name, t.role, range));
        }
        let mut unexpected: Vec<&str> = theirs
            .keys()
            .map(String::as_str)
            .filter(|n| !used.contains(*n))
            .collect();
        unexpected.sort_unstable();
        report.unexpected = unexpected.into_iter().map(str::to_string).collect();
        if strict && (!report.missing.is_empty() || !report.unexpected.is_empty()) {
            return Err(ModelError::Keys {
                path,
                missing: report.missing,
                unexpected: report.unexpected,
            });
        }
        let mut params = self.params.clone();
        let mut state = self.state.clone();
        for (index, name, role, range) in copies {
            let buf = if role == Role::State { &mut state } else { &mut params };
            let dst = buf.get_mut(range).ok_or_else(|| {
                self.error(torchlet::Error::Structure {
                    what: "the state dict's tensors overrun the model's buffers",
                })
            })?;
            source.copy_to(index, dst)?;
            if let Some((index, &value)) = dst.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ModelError::NonFinite {
                    path,
                    name: name.to_string(),
                    index,
                    value,
                });
            }
        }
        self.params = params;
        self.state = state;
        Ok(report)
    }
}

/// One tensor a [`TensorSource`] offers: its state-dict name, its shape and, for model
/// files, its role (a source without roles matches parameters and state alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTensor {
    /// PyTorch's `state_dict` key (`"0.weight"`).
    pub name: String,
    /// The shape.
    pub dims: Vec<u64>,
    /// Parameter or state, where the source says.
    pub role: Option<Role>,
}

/// Where `Model::load_from_source` reads a state dict from: a table of named tensors whose
/// values are read (as `f32`) only once names and shapes matched.
pub trait TensorSource {
    /// The file, for errors.
    fn path(&self) -> &Path;
    /// The tensors, by name and shape.
    fn tensors(&self) -> Vec<SourceTensor>;
    /// Copies the values of tensor `index` (of [`TensorSource::tensors`]) into `dst`, which
    /// has exactly its element count.
    ///
    /// # Errors
    /// The file's error, naming the file and the tensor.
    fn copy_to(&mut self, index: usize, dst: &mut [f32]) -> Result<(), ModelError>;
    /// Another name to look the model's tensor `name` up by when the source lacks `name`
    /// itself (none by default).
    fn alias(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
}

/// A parsed `.tlm` file as a [`TensorSource`] (its optimizer tensors left out).
struct ModelFileSource<'a> {
    path: &'a Path,
    tensors: Vec<TensorInfo<'a>>,
}

impl TensorSource for ModelFileSource<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        self.tensors
            .iter()
            .map(|t| SourceTensor {
                name: t.name.to_string(),
                dims: t.dims().to_vec(),
                role: Some(t.role),
            })
            .collect()
    }

    fn copy_to(&mut self, index: usize, dst: &mut [f32]) -> Result<(), ModelError> {
        let t = self.tensors.get(index).ok_or_else(|| {
            ModelError::file(
                self.path,
                torchlet::Error::Structure {
                    what: "a tensor index beyond the file's table",
                },
            )
        })?;
        t.copy_to(dst).map_err(|e| ModelError::file(self.path, e))
    }
}
