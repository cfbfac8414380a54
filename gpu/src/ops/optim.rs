//! The optimisers of the core on the GPU (`torchlet::optim`): SGD (momentum, dampening,
//! Nesterov, weight decay) and Adam (AdamW, AMSGrad), one invocation per parameter.
//!
//! [`GpuOptimizer`] is `&mut Sgd` or `&mut Adam`; the step count stays in the core's value,
//! the state (momentum, Adam's moments) on the GPU in the core's layout
//! (`optimizer.state_len(param_len)` floats). Hyper-parameters are validated with the core's
//! own rules (its `step` on zero parameters) before anything runs.

use torchlet::optim::Optimizer;
use torchlet::Buffer;

use super::{bytes, check_len, submit, w32, Dispatch, Pass, Spec};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Sgd` of `sgd_step.wgsl`.
    pub(crate) struct Sgd {
        len: u32, first: u32, nesterov: u32, _pad0: u32, lr: f32, momentum: f32, dampening: f32, weight_decay: f32,
    }
}

uniform! {
    /// `struct Adam` of `adam_step.wgsl`.
    pub(crate) struct Adam {
        len: u32, amsgrad: u32, decoupled: u32, _pad0: u32, step_size: f32, bc2_sqrt: f32, decay: f32,
        weight_decay: f32, beta1: f32, beta2: f32, eps: f32, _pad1: u32,
    }
}

/// One SGD step over `len` parameters; `first`: the optimiser's first step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SgdSpec {
    pub(crate) len: usize,
    pub(crate) sgd: torchlet::optim::Sgd,
    pub(crate) first: bool,
}

impl Dispatch for SgdSpec {
    fn kernel(&self) -> Kernel {
        Kernel::SgdStep
    }

    fn invocations(&self, _n: usize) -> usize {
        self.len
    }

    fn uniform(&self, _n: usize, _total: u32) -> Vec<u8> {
        let s = &self.sgd;
        bytes(Sgd {
            len: w32(self.len),
            first: u32::from(self.first),
            nesterov: u32::from(s.nesterov),
            _pad0: 0,
            lr: s.lr,
            momentum: s.momentum,
            dampening: s.dampening,
            weight_decay: s.weight_decay,
        })
    }
}

/// One Adam step over `len` parameters; `t`: the step number, from 1 (for the bias
/// corrections).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdamSpec {
    pub(crate) len: usize,
    pub(crate) adam: torchlet::optim::Adam,
    pub(crate) t: u64,
}

impl Dispatch for AdamSpec {
    fn kernel(&self) -> Kernel {
        Kernel::AdamStep
    }

    fn invocations(&self, _n: usize) -> usize {
        self.len
    }

    /// The bias corrections and the decoupled decay in `f64`, rounded to `f32`, as the core
    /// computes them.
    fn uniform(&self, _n: usize, _total: u32) -> Vec<u8> {
        let (adam, t) = (&self.adam, self.t as f64);
        let (beta1, beta2) = adam.betas;
        let bias_correction1 = 1.0 - f64::from(beta1).powf(t);
        let bias_correction2 = 1.0 - f64::from(beta2).powf(t);
        bytes(Adam {
            len: w32(self.len),
            amsgrad: u32::from(adam.amsgrad),
            decoupled: u32::from(adam.decoupled_weight_decay),
            _pad0: 0,
            step_size: (f64::from(adam.lr) / bias_correction1) as f32,
            bc2_sqrt: bias_correction2.sqrt() as f32,
            decay: (1.0 - f64::from(adam.lr) * f64::from(adam.weight_decay)) as f32,
            weight_decay: adam.weight_decay,
            beta1,
            beta2,
            eps: adam.eps,
            _pad1: 0,
        })
    }
}

/// The optimiser of a GPU training step: the core's value, whose step count it advances; the
/// state lives on the GPU.
#[derive(Debug)]
pub enum GpuOptimizer<'o> {
    /// `torch.optim.SGD` (momentum, dampening, Nesterov, weight decay).
    Sgd(&'o mut torchlet::optim::Sgd),
    /// `torch.optim.Adam` / `AdamW` (coupled or decoupled weight decay, AMSGrad).
    Adam(&'o mut torchlet::optim::Adam),
}

impl<'o> From<&'o mut torchlet::optim::Sgd> for GpuOptimizer<'o> {
    fn from(o: &'o mut torchlet::optim::Sgd) -> Self {
        GpuOptimizer::Sgd(o)
    }
}

impl<'o> From<&'o mut torchlet::optim::Adam> for GpuOptimizer<'o> {
    fn from(o: &'o mut torchlet::optim::Adam) -> Self {
        GpuOptimizer::Adam(o)
    }
}

impl GpuOptimizer<'_> {
    /// Floats of state for `n_params` parameters ([`Optimizer::state_len`]).
    pub fn state_len(&self, n_params: usize) -> usize {
        match self {
            GpuOptimizer::Sgd(o) => o.state_len(n_params),
            GpuOptimizer::Adam(o) => o.state_len(n_params),
        }
    }

    /// Steps taken ([`Optimizer::steps`]).
    pub fn steps(&self) -> u64 {
        match self {
            GpuOptimizer::Sgd(o) => o.steps(),
            GpuOptimizer::Adam(o) => o.steps(),
        }
    }

    /// Restores the step count ([`Optimizer::set_steps`]).
    pub fn set_steps(&mut self, steps: u64) {
        match self {
            GpuOptimizer::Sgd(o) => o.set_steps(steps),
            GpuOptimizer::Adam(o) => o.set_steps(steps),
        }
    }

    /// Validates the hyper-parameters with the core's own rules and counts the step (the core's
    /// `step` on zero parameters does exactly that and nothing else), returning the dispatch of
    /// the update of `len` parameters.
    pub(crate) fn count_step(&mut self, len: usize) -> Result<Spec> {
        match self {
            GpuOptimizer::Sgd(sgd) => {
                let first = sgd.steps() == 0;
                sgd.step(&mut [], &[], &mut [])?;
                Ok(SgdSpec { len, sgd: **sgd, first }.into())
            }
            GpuOptimizer::Adam(adam) => {
                adam.step(&mut [], &[], &mut [])?;
                Ok(AdamSpec {
                    len,
                    adam: **adam,
                    t: adam.steps(),
                }
                .into())
            }
        }
    }
}

/// Validates `sgd`'s hyper-parameters with the core's own rules and counts the step, returning
/// whether it is the first; the update itself runs on the GPU.
///
/// The core's [`torchlet::optim::Sgd::step`] checks its hyper-parameters before touching any buffer and then
/// increments its step count; stepping zero parameters does exactly that and nothing else.
pub(crate) fn count_sgd_step(sgd: &mut torchlet::optim::Sgd) -> Result<bool> {
    let first = sgd.steps() == 0;
    sgd.step(&mut [], &[], &mut [])?;
    Ok(first)
}

/// GPU [`torchlet::optim::Sgd`] step, as [`Optimizer::step`]: updates `params` from `grads` and the momentum
/// buffer `state` (`sgd.state_len(params.len())` floats), and counts the step in `sgd`.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for an invalid hyper-parameter (the core's checks, nothing modified) or
/// wrong lengths; wgpu errors.
pub fn sgd_step(
    dev: &Device,
    sgd: &mut torchlet::optim::Sgd,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Grads, params.len(), grads.len())?;
    check_len(Buffer::OptimizerState, sgd.state_len(params.len()), state.len())?;
    let first = count_sgd_step(sgd)?;
    let pb = dev.storage_with("params", params)?;
    let gb = dev.storage_with("grads", grads)?;
    let sb = dev.storage_with("momentum", state)?;
    let lb = dev.storage_with("loss", &[0.0f32])?;
    let spec = SgdSpec {
        len: params.len(),
        sgd: *sgd,
        first,
    };
    let pass = Pass::new(dev, spec, &[&pb, &gb, &sb, &lb], 1);
    submit(dev, &[&pass], "running sgd_step")?;
    params.copy_from_slice(&dev.read::<f32>(&pb, 0, params.len())?);
    state.copy_from_slice(&dev.read::<f32>(&sb, 0, state.len())?);
    Ok(())
}

/// GPU [`torchlet::optim::Adam`] step, as [`Optimizer::step`]: updates `params` from `grads` and the state
/// `state` (`adam.state_len(params.len())` floats: `[exp_avg | exp_avg_sq]`, then
/// `max_exp_avg_sq` with AMSGrad), and counts the step in `adam`.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for an invalid hyper-parameter (the core's checks, nothing modified) or
/// wrong lengths; wgpu errors.
pub fn adam_step(
    dev: &Device,
    adam: &mut torchlet::optim::Adam,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Grads, params.len(), grads.len())?;
    check_len(Buffer::OptimizerState, adam.state_len(params.len()), state.len())?;
    let spec = GpuOptimizer::Adam(adam).count_step(params.len())?;
    let pb = dev.storage_with("params", params)?;
    let gb = dev.storage_with("grads", grads)?;
    let sb = dev.storage_with("adam state", state)?;
    let lb = dev.storage_with("loss", &[0.0f32])?;
    let pass = Pass::new(dev, spec, &[&pb, &gb, &sb, &lb], 1);
    submit(dev, &[&pass], "running adam_step")?;
    params.copy_from_slice(&dev.read::<f32>(&pb, 0, params.len())?);
    state.copy_from_slice(&dev.read::<f32>(&sb, 0, state.len())?);
    Ok(())
}
