//! `--device cpu|gpu|auto`: choosing where `torchlet train`, `eval` and `bench` compute, and
//! the glue between the CPU's buffers and a [`GpuNetwork`].
//!
//! [`choose`] turns the flag into a [`Compute`] and a line to print:
//!
//! - `cpu`: the CPU kernels; no GPU is looked for.
//! - `gpu`: the best adapter wgpu finds, a software one such as Mesa's lavapipe included. No
//!   adapter, or a layer the GPU cannot run yet, is an error naming it. Every optimizer (SGD,
//!   Adam, AdamW) runs on the GPU.
//! - `auto` (the default): a *hardware* GPU when wgpu finds one and it can run the model,
//!   otherwise the CPU, with the reason in the printed line. A software adapter is never
//!   chosen, since the CPU kernels are much faster than a software rasteriser.
//!
//! The layer check is real, not a list kept here: [`choose`] builds the model's network at
//! batch 1 on the chosen device, so whatever `torchlet-gpu` refuses is refused before a run
//! starts, and a run never starts on a device that cannot finish it.
//!
//! During training the GPU holds the parameters and the optimizer state (SGD's momentum, Adam's
//! moments, in the core's layout); [`copy_to_host`] brings them
//! into the CPU network's buffers (the core's layout, so the same `.tlm` file) before every
//! checkpoint, histogram and on Ctrl-C. If the copy fails (a lost device), nothing is saved,
//! so the last checkpoint on disk stays the last good one.

use std::fmt;

use torchlet::Mode;
use torchlet_gpu::{Device, GpuNetwork, Resolved, Selection};

use super::parallel::HostNetwork;
use super::OptimizerKind;
use crate::model::Model;

/// Where a run computes, once [`choose`] has decided.
#[derive(Clone, Debug)]
pub enum Compute {
    /// The CPU kernels (threads as `--threads` says).
    Cpu,
    /// This GPU device, through [`GpuNetwork`].
    Gpu(Device),
}

impl Compute {
    /// The device, for a GPU run.
    pub fn gpu(&self) -> Option<&Device> {
        match self {
            Compute::Cpu => None,
            Compute::Gpu(d) => Some(d),
        }
    }
}

/// What [`choose`] decided, with the sentence to print.
#[derive(Clone, Debug)]
pub struct Choice {
    /// Where to compute.
    pub compute: Compute,
    /// `"gpu: <adapter name> (<backend>, <type>, driver ...)"` for a GPU, `"cpu (<reason>)"`
    /// for the CPU.
    pub description: String,
}

impl Choice {
    /// The warning every command prints (to stderr) when the chosen GPU is a software adapter
    /// (Mesa's lavapipe: Vulkan on the CPU), which only `--device gpu` picks.
    pub fn warning(&self) -> Option<String> {
        let dev = self.compute.gpu()?;
        dev.adapter().software.then(|| {
            format!(
                "warning: --device gpu: {} is a software adapter (Vulkan running on the CPU): it \
                 runs the GPU code path correctly but far slower than --device cpu",
                dev.adapter().name
            )
        })
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// Parses `--device` (a clap value parser): `cpu`, `gpu` or `auto`.
///
/// # Errors
/// A message saying what was expected.
pub fn parse_device(s: &str) -> Result<Selection, String> {
    s.trim()
        .parse::<Selection>()
        .map_err(|_| "expected cpu, gpu or auto".to_string())
}

/// The name of a selection as the flag spells it.
pub fn selection_name(s: Selection) -> &'static str {
    match s {
        Selection::Cpu => "cpu",
        Selection::Gpu => "gpu",
        Selection::Auto => "auto",
    }
}

/// Why `--device gpu` cannot run a model ([`choose`]).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No adapter, or one that fails to open.
    #[error("--device {flag}: {error}")]
    Open {
        /// `gpu` or `auto`.
        flag: &'static str,
        /// What wgpu said.
        error: torchlet_gpu::Error,
    },
    /// The GPU cannot run the model.
    #[error("--device gpu: {refusal} (on {adapter}); use --device cpu")]
    Refused {
        /// Why (boxed: a planner's or the GPU's error is large).
        refusal: Box<Refusal>,
        /// The adapter's name.
        adapter: String,
    },
}

/// Why a GPU cannot run a model: the middle of [`DeviceError::Refused`]'s message, and of the
/// line `--device auto` prints when it falls back to the CPU.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The model does not plan for training.
    #[error("model {model} cannot be planned for training: {error}")]
    Plan {
        /// The model's name.
        model: String,
        /// The planner's error.
        error: crate::model::ModelError,
    },
    /// `torchlet-gpu` refuses the network (a layer without a kernel, memory).
    #[error("model {model}: {error}")]
    Network {
        /// The model's name.
        model: String,
        /// The GPU's error.
        error: torchlet_gpu::Error,
    },
}

/// Opens the device `selection` asks for and checks that it runs `model`: see the
/// [module docs](self). `optimizer` is the command's, when it trains; every
/// [`OptimizerKind`] runs on the GPU, so it decides nothing.
///
/// # Errors
/// Under `--device gpu` only: no adapter (listing what wgpu saw), a device that fails to open,
/// or the first layer the GPU cannot run, each naming the flag. Under `auto` these fall back
/// to the CPU instead, except a hardware adapter that exists but fails to open, which is
/// reported.
pub fn choose(selection: Selection, model: &Model, optimizer: Option<OptimizerKind>) -> Result<Choice, DeviceError> {
    // SGD, Adam and AdamW all run on the GPU (torchlet-gpu's sgd_step and adam_step shaders).
    let _ = optimizer;
    let cpu = |reason: String| Choice {
        compute: Compute::Cpu,
        description: format!("cpu ({reason})"),
    };
    let strict = selection == Selection::Gpu;
    let flag = selection_name(selection);
    let dev = match selection.resolve() {
        Ok(Resolved::Cpu { reason }) => return Ok(cpu(reason)),
        Ok(Resolved::Gpu(dev)) => dev,
        Err(error) => return Err(DeviceError::Open { flag, error }),
    };
    let refuse = |why: Refusal| -> Result<Choice, DeviceError> {
        if strict {
            Err(DeviceError::Refused {
                refusal: Box::new(why),
                adapter: dev.adapter().name.clone(),
            })
        } else {
            Ok(cpu(format!(
                "--device auto: the GPU {} cannot run this: {why}",
                dev.adapter().name
            )))
        }
    };
    let plan = match model.plan(1, Mode::Training) {
        Ok(p) => p,
        Err(error) => {
            return refuse(Refusal::Plan {
                model: model.name.clone(),
                error,
            })
        }
    };
    if let Err(error) = GpuNetwork::new(&dev, &*plan, &model.params) {
        return refuse(Refusal::Network {
            model: model.name.clone(),
            error,
        });
    }
    Ok(Choice {
        description: format!("gpu: {}", dev.adapter()),
        compute: Compute::Gpu(dev),
    })
}

/// Why [`copy_to_host`] failed; the CPU network is then unchanged.
#[derive(Debug, thiserror::Error)]
pub enum CopyBackError {
    /// Reading a buffer back failed (a lost device).
    #[error("copying the model back from the GPU: {0}")]
    Read(torchlet_gpu::Error),
    /// The GPU holds another number of BatchNorm statistics than the CPU network.
    #[error("copying the model back from the GPU: {found} BatchNorm statistics, expected {expected}")]
    StateLength {
        /// On the GPU.
        found: usize,
        /// On the CPU.
        expected: usize,
    },
    /// The GPU holds another number of parameters or optimizer state values.
    #[error(
        "copying the model back from the GPU: {params} parameters and {optimizer_state} optimizer state values, \
         expected {expected_params} and {expected_optimizer_state}"
    )]
    Lengths {
        /// Parameters on the GPU.
        params: usize,
        /// Optimizer state values on the GPU.
        optimizer_state: usize,
        /// Parameters on the CPU.
        expected_params: usize,
        /// Optimizer state values on the CPU.
        expected_optimizer_state: usize,
    },
    /// The CPU network refused the write.
    #[error(transparent)]
    Network(#[from] torchlet::Error),
}

/// Copies the GPU's parameters and BatchNorm running statistics into `net` and its optimizer
/// state into `opt_state` (`optimizer.state_len(param_len)` floats: SGD's momentum, none
/// without momentum, or Adam's moments), so that `net` can be saved as a checkpoint.
///
/// # Errors
/// The GPU's error (a lost device, a failed read-back); `net` and `opt_state` are then
/// unchanged, so nothing half-copied is ever saved.
pub fn copy_to_host(gpu: &GpuNetwork, net: &mut HostNetwork<'_>, opt_state: &mut [f32]) -> Result<(), CopyBackError> {
    let params = gpu.params().map_err(CopyBackError::Read)?;
    let running = gpu.state().map_err(CopyBackError::Read)?;
    if running.len() != net.state().len() {
        return Err(CopyBackError::StateLength {
            found: running.len(),
            expected: net.state().len(),
        });
    }
    let state = if opt_state.is_empty() {
        Vec::new()
    } else {
        gpu.optimizer_state().map_err(CopyBackError::Read)?
    };
    let dst = net.params_mut()?;
    if dst.len() != params.len() || state.len() != opt_state.len() {
        return Err(CopyBackError::Lengths {
            params: params.len(),
            optimizer_state: state.len(),
            expected_params: dst.len(),
            expected_optimizer_state: opt_state.len(),
        });
    }
    dst.copy_from_slice(&params);
    opt_state.copy_from_slice(&state);
    net.state_mut()?.copy_from_slice(&running);
    Ok(())
}

/// Why [`cross_entropy_sum`] cannot score a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogitsError {
    /// Not one row of `classes` logits per sample.
    #[error("the GPU returned {logits} logits for {samples} samples of {classes} classes")]
    Count {
        /// Logits returned.
        logits: usize,
        /// Samples in the batch.
        samples: usize,
        /// Classes per sample.
        classes: usize,
    },
    /// A label of no class.
    #[error("label {label} out of range for {classes} classes")]
    Label {
        /// The label.
        label: usize,
        /// Classes per sample.
        classes: usize,
    },
}

/// The mean cross-entropy of `logits` (`[n, classes]`) against `labels` (`[n]`), summed over
/// the samples in `f64`: what `CrossEntropyLoss(reduction='sum')` gives, computed on the CPU
/// from the logits a GPU forward pass brought back (so `eval` reads them back once).
///
/// # Errors
/// A label out of range, or `logits` not `labels.len()` rows.
pub fn cross_entropy_sum(logits: &[f32], classes: usize, labels: &[u32]) -> Result<f64, LogitsError> {
    if classes == 0 || logits.len() != classes * labels.len() {
        return Err(LogitsError::Count {
            logits: logits.len(),
            samples: labels.len(),
            classes,
        });
    }
    let mut total = 0.0f64;
    for (row, &l) in logits.chunks(classes).zip(labels) {
        let l = l as usize;
        if l >= classes {
            return Err(LogitsError::Label { label: l, classes });
        }
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let lse = max + row.iter().map(|&v| (f64::from(v) - max).exp()).sum::<f64>().ln();
        total += lse - f64::from(row[l]);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flag_parses_the_three_values_and_names_what_it_expects() {
        assert_eq!(parse_device("cpu"), Ok(Selection::Cpu));
        assert_eq!(parse_device("gpu"), Ok(Selection::Gpu));
        assert_eq!(parse_device("auto"), Ok(Selection::Auto));
        assert_eq!(parse_device("cuda"), Err("expected cpu, gpu or auto".to_string()));
    }

    #[test]
    fn cpu_is_chosen_without_looking_for_a_gpu() {
        let model = Model::from_zoo("digits-cnn", 0).unwrap();
        let c = choose(Selection::Cpu, &model, Some(OptimizerKind::Adam)).unwrap();
        assert!(matches!(c.compute, Compute::Cpu));
        assert_eq!(c.description, "cpu (--device cpu)");
    }

    #[test]
    fn cross_entropy_of_logits_matches_the_formula() {
        // Row 0: uniform over 2 classes (ln 2); row 1: logits (0, ln 3), label 1: -ln(3/4).
        let logits = [1.0, 1.0, 0.0, 3f32.ln()];
        let got = cross_entropy_sum(&logits, 2, &[0, 1]).unwrap();
        let want = 2f64.ln() - (0.75f64).ln();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert!(cross_entropy_sum(&logits, 2, &[0, 2]).is_err());
        assert!(cross_entropy_sum(&logits, 2, &[0]).is_err());
    }
}
