//! The parameterised elementwise activations on the GPU (`torchlet::ops::activation::smooth`
//! and `hard`): ELU, GELU (exact and tanh), SiLU, Hardswish, Hardsigmoid, Softplus, Mish and
//! ReLU6, in two kernels, `activation_forward.wgsl` and `activation_backward_input.wgsl`,
//! with the formulas in `activation_functions.wgsl` selected by the uniform's `kind`.
//!
//! Every backward reads the forward input, as the core's.

use torchlet::ops::activation::{Approximate, Softplus};
use torchlet::plan::Exec;
use torchlet::Buffer;

use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};
use crate::ops::{bytes, check_len, submit, Dispatch, Pass};

uniform! {
    /// `struct Act` of `activation_forward.wgsl` and `activation_backward_input.wgsl`.
    pub(crate) struct Act {
        x_off: u32, y_off: u32, aux_off: u32, total: u32, kind: u32, a: f32, b: f32, _pad0: u32,
    }
}

/// One of the activations of the shared kernels, with its arguments, as the core's
/// [`Exec`] variants carry them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationKind {
    /// `nn.ELU(alpha)`.
    Elu(f32),
    /// `nn.GELU(approximate)`.
    Gelu(Approximate),
    /// `nn.SiLU`.
    Silu,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.Hardsigmoid`.
    Hardsigmoid,
    /// `nn.Softplus(beta, threshold)`.
    Softplus(Softplus),
    /// `nn.Mish`.
    Mish,
    /// `nn.ReLU6`.
    Relu6,
}

impl ActivationKind {
    /// The activation a plan node computes, if it is one of these.
    pub fn of(exec: Exec) -> Option<ActivationKind> {
        Some(match exec {
            Exec::ELU(alpha) => ActivationKind::Elu(alpha),
            Exec::GELU(a) => ActivationKind::Gelu(a),
            Exec::SiLU => ActivationKind::Silu,
            Exec::Hardswish => ActivationKind::Hardswish,
            Exec::Hardsigmoid => ActivationKind::Hardsigmoid,
            Exec::Softplus(p) => ActivationKind::Softplus(p),
            Exec::Mish => ActivationKind::Mish,
            Exec::ReLU6 => ActivationKind::Relu6,
            _ => return None,
        })
    }

    /// The shader's `kind`, `a` and `b` (the constants of `activation_functions.wgsl`).
    fn words(self) -> (u32, f32, f32) {
        match self {
            ActivationKind::Elu(alpha) => (0, alpha, 0.0),
            ActivationKind::Gelu(Approximate::None) => (1, 0.0, 0.0),
            ActivationKind::Gelu(Approximate::Tanh) => (2, 0.0, 0.0),
            ActivationKind::Silu => (3, 0.0, 0.0),
            ActivationKind::Hardswish => (4, 0.0, 0.0),
            ActivationKind::Hardsigmoid => (5, 0.0, 0.0),
            ActivationKind::Softplus(p) => (6, p.beta, p.threshold),
            ActivationKind::Mish => (7, 0.0, 0.0),
            ActivationKind::Relu6 => (8, 0.0, 0.0),
        }
    }
}

/// An activation pass over `per_sample` elements per sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ActSpec {
    pub(crate) kernel: Kernel,
    pub(crate) per_sample: usize,
    pub(crate) act: ActivationKind,
}

impl Dispatch for ActSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        n * self.per_sample
    }

    fn uniform(&self, _n: usize, total: u32) -> Vec<u8> {
        let (kind, a, b) = self.act.words();
        bytes(Act {
            total,
            kind,
            a,
            b,
            ..Act::default()
        })
    }
}

/// GPU forward of `act` (`torchlet::ops::activation::elu_forward`, `gelu_forward`, ...):
/// `y = act(x)`; `x`, `y`: `[*]`, same length.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) with a buffer length mismatch; wgpu errors.
pub fn activation_forward(dev: &Device, act: ActivationKind, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Output, x.len(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = ActSpec {
        kernel: Kernel::ActivationForward,
        per_sample: x.len(),
        act,
    };
    let pass = Pass::new(dev, spec, &[&xb, &yb], 1);
    submit(dev, &[&pass], "running an activation's forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU input gradient of `act` (`torchlet::ops::activation::elu_backward_input`, ...):
/// `gx += gy * act'(x)`.
///
/// - `x`: the forward input `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`activation_forward`].
pub fn activation_backward_input(
    dev: &Device,
    act: ActivationKind,
    x: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Gradient, x.len(), gy.len())?;
    check_len(Buffer::Gradient, x.len(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let xb = dev.storage_with("x", x)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = ActSpec {
        kernel: Kernel::ActivationBackwardInput,
        per_sample: x.len(),
        act,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &xb, &gyb], 1);
    submit(dev, &[&pass], "running an activation's backward")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}
