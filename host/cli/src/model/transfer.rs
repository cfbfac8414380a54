//! Transfer learning: start a model from another model's weights, with a new classifier head.
//!
//! [`Model::init_from`] is the course's transfer-learning step (`torchlet train --init-from
//! FILE --num-classes N`): every tensor of the model is loaded by name from a model file, a
//! checkpoint or a state dict, except the classifier head (the model's last `Linear`, weight
//! and bias) when its class count differs from the file's. The head then keeps the model's own
//! values, which for a model fresh from [`Model::new`] / the zoo are PyTorch's default
//! initialisation for the new size, as after `model.fc = nn.Linear(in_features, num_classes)`.
//!
//! Use it when the architecture is the same up to the head. Anything else that differs (a
//! tensor of another shape outside the head, a head with other input features, a tensor the
//! file lacks or has in excess) is an error naming the tensor and both shapes, and the model is
//! left as it was. For weights of exactly the same architecture, [`Model::load_state_dict`]
//! is the plain `load_state_dict`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use torchlet::model_file::{ModelFile, Role, TensorInfo};
use torchlet::Mode;

use super::{Model, ModelError};
use crate::fsutil;

/// A tensor of the head that [`Model::init_from`] re-initialised instead of loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// The tensor's name (`"classifier.6.weight"`).
    pub name: String,
    /// Its shape in the file.
    pub file: Vec<u64>,
    /// Its shape in the model (the new head).
    pub model: Vec<u64>,
}

/// What [`Model::init_from`] did, tensor by tensor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Tensors (parameters and BatchNorm statistics) loaded from the file, in model order.
    pub loaded: Vec<String>,
    /// Head tensors kept at the model's initialisation because the class count differs.
    pub replaced: Vec<Replaced>,
}

fn dims(d: &[u64]) -> String {
    let items: Vec<String> = d.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

impl fmt::Display for TransferReport {
    /// Two lines: `loaded N tensors: a, b, ...` and `replaced the head: w [10, 128] -> [5, 128], ...`
    /// (or `kept the file's head`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loaded {} tensors: {}", self.loaded.len(), self.loaded.join(", "))?;
        if self.replaced.is_empty() {
            write!(f, "\nkept the file's classifier head (same class count)")
        } else {
            let items: Vec<String> = self
                .replaced
                .iter()
                .map(|r| format!("{} {} -> {}", r.name, dims(&r.file), dims(&r.model)))
                .collect();
            write!(
                f,
                "\nreplaced the classifier head (new class count, PyTorch's default initialisation): {}",
                items.join(", ")
            )
        }
    }
}

impl Model {
    /// The path of the classifier head: the model's last `Linear` in plan order
    /// (`"7"`, `"classifier.6"`), or `None` without one.
    ///
    /// # Errors
    /// [`ModelError::Model`] if the model does not plan.
    pub fn head_path(&self) -> Result<Option<String>, ModelError> {
        let plan = self.plan(1, Mode::Inference)?;
        let paths = self.node_paths()?;
        Ok(plan
            .nodes()
            .iter()
            .zip(paths)
            .filter(|(n, _)| n.op_name == "Linear")
            .map(|(_, p)| p)
            .next_back())
    }

    /// Loads every tensor from the model file at `path` but a classifier head of another class
    /// count; see the [module docs](self).
    ///
    /// # Errors
    /// [`ModelError::Io`] / [`ModelError::File`] as [`Model::load`];
    /// [`ModelError::ShapeMismatch`] naming a tensor outside the head (or a head with other
    /// input features) and both shapes; [`ModelError::Keys`] listing the tensors that only
    /// one side has.
    pub fn init_from(&mut self, path: &Path) -> Result<TransferReport, ModelError> {
        let bytes = fsutil::read(path)?;
        self.init_from_bytes(&bytes, path)
    }

    /// [`Model::init_from`] from file bytes; `path` names them in errors.
    ///
    /// # Errors
    /// As [`Model::init_from`].
    pub fn init_from_bytes(&mut self, bytes: &[u8], path: &Path) -> Result<TransferReport, ModelError> {
        let file = ModelFile::parse(bytes).map_err(|e| ModelError::file(path, e))?;
        super::check_finite(&file, path)?;
        let theirs: HashMap<&str, TensorInfo<'_>> = file
            .tensors()
            .filter(|t| t.role != Role::Optimizer)
            .map(|t| (t.name, t))
            .collect();
        let head = self.head_path()?;
        let head_weight = head.as_ref().map(|h| format!("{h}.weight"));
        let head_bias = head.as_ref().map(|h| format!("{h}.bias"));

        // The model's own tensor table, in buffer order (as Model::load_state_dict).
        let own_bytes = self.state_dict_bytes()?;
        let own = ModelFile::parse(&own_bytes).map_err(|e| self.error(e))?;
        let mut params = self.params.clone();
        let mut state = self.state.clone();
        let (mut p_at, mut s_at) = (0usize, 0usize);
        let mut report = TransferReport::default();
        let mut missing = Vec::new();
        let mut own_names = Vec::new();
        // Whether the head's weight differs in its class count only (then its bias may too).
        let mut new_head = false;
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
                missing.push(t.name.to_string());
                continue;
            };
            if f.dims() != t.dims() || f.role != t.role {
                let is_weight = head_weight.as_deref() == Some(t.name);
                let is_bias = head_bias.as_deref() == Some(t.name);
                let classes_only = f.role == t.role
                    && f.dims().len() == t.dims().len()
                    && f.dims().get(1..) == t.dims().get(1..)
                    && (is_weight || (is_bias && new_head));
                if !classes_only {
                    return Err(ModelError::ShapeMismatch {
                        path: path.to_path_buf(),
                        name: t.name.to_string(),
                        file: f.dims().to_vec(),
                        model: t.dims().to_vec(),
                    });
                }
                new_head |= is_weight;
                report.replaced.push(Replaced {
                    name: t.name.to_string(),
                    file: f.dims().to_vec(),
                    model: t.dims().to_vec(),
                });
                continue;
            }
            let dst = buf.get_mut(range).ok_or_else(|| {
                self.error(torchlet::Error::Structure {
                    what: "the state dict's tensors overrun the model's buffers",
                })
            })?;
            f.copy_to(dst).map_err(|e| ModelError::file(path, e))?;
            report.loaded.push(t.name.to_string());
        }
        let mut unexpected: Vec<String> = theirs
            .keys()
            .filter(|n| !own_names.contains(n))
            .map(|n| n.to_string())
            .collect();
        unexpected.sort_unstable();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(ModelError::Keys {
                path: path.to_path_buf(),
                missing,
                unexpected,
            });
        }
        // A head bias of another length with a weight that matched is not a class change.
        if !new_head && !report.replaced.is_empty() {
            let r = &report.replaced[0];
            return Err(ModelError::ShapeMismatch {
                path: path.to_path_buf(),
                name: r.name.clone(),
                file: r.file.clone(),
                model: r.model.clone(),
            });
        }
        self.params = params;
        self.state = state;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo::{self, ZooConfig};

    fn classes(n: usize) -> ZooConfig {
        ZooConfig {
            num_classes: Some(n),
            ..ZooConfig::default()
        }
    }

    #[test]
    fn a_new_class_count_replaces_only_the_head() {
        let source = Model::from_zoo("vgg11", 1).unwrap();
        let bytes = source.state_dict_bytes().unwrap();
        let fresh = zoo::build("vgg11", &classes(4), 2).unwrap();
        let mut m = fresh.clone();
        assert_eq!(m.head_path().unwrap().as_deref(), Some("classifier.6"));
        let report = m.init_from_bytes(&bytes, Path::new("src.tlm")).unwrap();
        let names: Vec<&str> = report.replaced.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["classifier.6.weight", "classifier.6.bias"]);
        assert_eq!(report.replaced[0].file, [10, 512]);
        assert_eq!(report.replaced[0].model, [4, 512]);
        // Everything before the head is the source's; the head is the fresh model's.
        let head = 512 * 4 + 4;
        let n = m.params.len();
        assert_eq!(
            m.params[..n - head],
            source.params[..source.params.len() - (512 * 10 + 10)]
        );
        assert_eq!(m.params[n - head..], fresh.params[n - head..]);
        assert_eq!(m.state, source.state);
        assert!(report.to_string().contains("classifier.6.weight [10, 512] -> [4, 512]"));
        // The same class count loads everything.
        let mut same = Model::from_zoo("vgg11", 3).unwrap();
        let r = same.init_from_bytes(&bytes, Path::new("src.tlm")).unwrap();
        assert!(r.replaced.is_empty());
        assert_eq!(same.params, source.params);
    }

    #[test]
    fn other_mismatches_are_errors_and_leave_the_model_alone() {
        // Another input channel count: the first convolution differs.
        let source = Model::from_zoo("digits-cnn", 1).unwrap();
        let bytes = source.to_bytes().unwrap();
        let cfg = ZooConfig {
            channels: Some(3),
            num_classes: Some(5),
            size: None,
        };
        let mut m = zoo::build("digits-cnn", &cfg, 2).unwrap();
        let before = m.clone();
        let e = m.init_from_bytes(&bytes, Path::new("src.tlm")).unwrap_err().to_string();
        assert_eq!(
            e,
            "src.tlm: tensor '0.weight': shape [16, 1, 3, 3] in the file, [16, 3, 3, 3] in the model"
        );
        assert_eq!(m, before);
        // Another architecture: missing and unexpected tensors.
        let mut t = Model::from_zoo("alexnet", 0).unwrap();
        let e = t.init_from_bytes(&bytes, Path::new("src.tlm")).unwrap_err().to_string();
        assert!(
            e.contains("src.tlm") && e.contains("\"features.0.weight\"") && e.contains("\"0.weight\""),
            "{e}"
        );
    }
}
