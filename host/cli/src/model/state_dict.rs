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
        let theirs: HashMap<&str, TensorInfo<'_>> = file
            .tensors()
            .filter(|t| t.role != Role::Optimizer)
            .map(|t| (t.name, t))
            .collect();

        // The model's own table, from its own state dict: the names and shapes, in the
        // order of the parameter and state buffers (each buffer is its tensors back to back).
        let own_bytes = self.state_dict_bytes()?;
        let own = ModelFile::parse(&own_bytes).map_err(|e| self.error(e))?;
        let mut params = self.params.clone();
        let mut state = self.state.clone();
        let (mut p_at, mut s_at) = (0usize, 0usize);
        let mut report = LoadReport::default();
        let mut own_names = Vec::new();
        for t in own.tensors() {
            own_names.push(t.name);
            let (buf, at) = match t.role {
                Role::Parameter => (&mut params, &mut p_at),
                Role::State => (&mut state, &mut s_at),
                Role::Optimizer => continue,
            };
            let range = *at..*at + t.numel;
            *at += t.numel;
            let Some(f) = theirs.get(t.name) else {
                report.missing.push(t.name.to_string());
                continue;
            };
            if f.dims() != t.dims() || f.role != t.role {
                return Err(ModelError::ShapeMismatch {
                    path: path.to_path_buf(),
                    name: t.name.to_string(),
                    file: f.dims().to_vec(),
                    model: t.dims().to_vec(),
                });
            }
            let dst = buf.get_mut(range).ok_or_else(|| {
                self.error(torchlet::Error::Structure {
                    what: "the state dict's tensors overrun the model's buffers",
                })
            })?;
            f.copy_to(dst).map_err(|e| ModelError::file(path, e))?;
        }
        let mut unexpected: Vec<&str> = theirs.keys().copied().filter(|n| !own_names.contains(n)).collect();
        unexpected.sort_unstable();
        report.unexpected = unexpected.into_iter().map(str::to_string).collect();
        if strict && (!report.missing.is_empty() || !report.unexpected.is_empty()) {
            return Err(ModelError::Keys {
                path: path.to_path_buf(),
                missing: report.missing,
                unexpected: report.unexpected,
            });
        }
        self.params = params;
        self.state = state;
        Ok(report)
    }
}
