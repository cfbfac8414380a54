//! [`ModelError`]: why a model, state dict or checkpoint could not be saved or loaded.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::fsutil::FsError;

/// Why saving or loading failed. `Display` names the file (or model), the part or tensor, what
/// was expected and what was found.
#[derive(Debug)]
pub enum ModelError {
    /// Reading or writing the file failed (missing file, read-only directory, full disk).
    Io(FsError),
    /// The file is not a valid model file (not a `.tlm`, truncated, corrupted, or a model the
    /// planner rejects); `error` names the part, e.g. `model file: crc: ...`.
    File {
        /// The file.
        path: PathBuf,
        /// The core's error, naming the part of the file.
        error: torchlet::Error,
    },
    /// The file is valid but of the wrong kind (a state dict where a whole model is needed, a
    /// model file without training state where a checkpoint is needed).
    Kind {
        /// The file.
        path: PathBuf,
        /// What was expected.
        expected: &'static str,
        /// What the file is.
        found: &'static str,
    },
    /// A tensor of a state dict has another shape than the model's tensor of that name.
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name (`"7.weight"`).
        name: String,
        /// Its shape in the file.
        file: Vec<u64>,
        /// Its shape in the model.
        model: Vec<u64>,
    },
    /// Strict loading found keys the model has and the file lacks, or the other way round.
    Keys {
        /// The file.
        path: PathBuf,
        /// The model's tensors that the file does not have.
        missing: Vec<String>,
        /// The file's tensors that the model does not have.
        unexpected: Vec<String>,
    },
    /// A tensor of the file holds NaN or infinite values: a model with non-finite weights is
    /// refused at load instead of predicting `NaN%`.
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's name (`"0.weight"`, `"1.running_var"`).
        name: String,
        /// The index of its first non-finite element.
        index: usize,
        /// That element.
        value: f32,
    },
    /// A PyTorch file (`torch.save`'s zip and pickle, or `.safetensors`) that could not be
    /// imported: not such a file, truncated, a pickle outside the allowlist of
    /// `torch.load(weights_only=True)`, a tensor beyond its storage, an unsupported dtype.
    PyTorch {
        /// The file.
        path: PathBuf,
        /// What was wrong, naming the part or tensor, what was expected and what was found.
        what: String,
    },
    /// The model itself is invalid (does not plan, or its buffers have the wrong length).
    Model {
        /// The model's name.
        model: String,
        /// The core's error.
        error: torchlet::Error,
    },
    /// A buffer of the model (parameters, state, activation arena) does not fit in memory.
    Memory {
        /// The model's name or file.
        model: String,
        /// How much was needed and available.
        error: crate::mem::OutOfMemory,
    },
}

impl ModelError {
    /// An error about the model file at `path`.
    pub fn file(path: &Path, error: torchlet::Error) -> Self {
        ModelError::File {
            path: path.to_path_buf(),
            error,
        }
    }

    /// An error about the PyTorch file at `path`.
    pub fn pytorch(path: &Path, what: impl Into<String>) -> Self {
        ModelError::PyTorch {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

fn dims(d: &[u64]) -> String {
    let items: Vec<String> = d.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Io(e) => write!(f, "{e}"),
            ModelError::File { path, error } => write!(f, "{}: {error}", path.display()),
            ModelError::Kind { path, expected, found } => {
                write!(f, "{}: expected {expected}, found {found}", path.display())
            }
            ModelError::ShapeMismatch {
                path,
                name,
                file,
                model,
            } => write!(
                f,
                "{}: tensor '{name}': shape {} in the file, {} in the model",
                path.display(),
                dims(file),
                dims(model)
            ),
            ModelError::Keys {
                path,
                missing,
                unexpected,
            } => {
                write!(f, "{}: error(s) in loading state_dict (strict):", path.display())?;
                if !missing.is_empty() {
                    write!(f, " missing key(s) in the file: {}.", quoted(missing))?;
                }
                if !unexpected.is_empty() {
                    write!(f, " unexpected key(s) in the file: {}.", quoted(unexpected))?;
                }
                Ok(())
            }
            ModelError::PyTorch { path, what } => write!(f, "{}: {what}", path.display()),
            ModelError::Model { model, error } => write!(f, "model '{model}': {error}"),
            ModelError::Memory { model, error } => write!(f, "model '{model}': {error}"),
            ModelError::NonFinite {
                path,
                name,
                index,
                value,
            } => write!(
                f,
                "{}: tensor '{name}' holds a non-finite value ({value} at element {index}); a model with NaN or \
                 infinite weights cannot predict (was it saved from a diverged run?)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ModelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModelError::Io(e) => Some(e),
            ModelError::File { error, .. } | ModelError::Model { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<FsError> for ModelError {
    fn from(e: FsError) -> Self {
        ModelError::Io(e)
    }
}
