//! Activations on the GPU (`torchlet::ops::activation`): ReLU, LeakyReLU, Sigmoid and Tanh,
//! one elementwise shader per direction (`relu_forward.wgsl`, `relu_backward_input.wgsl`, ...).
//!
//! [`ElementwiseSpec`] is the dispatch of every elementwise kernel (the copies of `reshape.rs`
//! too); [`Activation`] names an activation layer's kernels.
//! The host wrappers mirror the core's functions for tests. The parameterised activations
//! (ELU, GELU, SiLU, Hardswish, Hardsigmoid, Softplus, Mish, ReLU6) share two kernels in
//! [`smooth`]; PReLU's three kernels are in [`prelu`].

use torchlet::Buffer;

pub(crate) mod prelu;
pub(crate) mod smooth;

use super::{bytes, check_len, submit, Dispatch, Pass};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Elementwise` of the activation and copy shaders.
    pub(crate) struct Elementwise {
        x_off: u32, y_off: u32, aux_off: u32, total: u32, slope: f32, _pad0: u32, _pad1: u32, _pad2: u32,
    }
}

/// An elementwise pass over `per_sample` elements per sample; `slope` is LeakyReLU's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ElementwiseSpec {
    pub(crate) kernel: Kernel,
    pub(crate) per_sample: usize,
    pub(crate) slope: f32,
}

impl ElementwiseSpec {
    pub(crate) fn new(kernel: Kernel, per_sample: usize, slope: f32) -> ElementwiseSpec {
        ElementwiseSpec {
            kernel,
            per_sample,
            slope,
        }
    }
}

impl Dispatch for ElementwiseSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        n * self.per_sample
    }

    fn uniform(&self, _n: usize, total: u32) -> Vec<u8> {
        bytes(Elementwise {
            total,
            slope: self.slope,
            ..Elementwise::default()
        })
    }
}

/// An activation layer's kernels: forward, input gradient, LeakyReLU's slope, and whether the
/// backward reads the layer's input (LeakyReLU) rather than its output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Activation {
    pub(crate) forward: Kernel,
    pub(crate) backward: Kernel,
    pub(crate) slope: f32,
    pub(crate) reads_input: bool,
}

impl Activation {
    /// `nn.ReLU`.
    pub(crate) const RELU: Activation = Activation::of(Kernel::ReluForward, Kernel::ReluBackwardInput);
    /// `nn.Sigmoid`.
    pub(crate) const SIGMOID: Activation = Activation::of(Kernel::SigmoidForward, Kernel::SigmoidBackwardInput);
    /// `nn.Tanh`.
    pub(crate) const TANH: Activation = Activation::of(Kernel::TanhForward, Kernel::TanhBackwardInput);

    const fn of(forward: Kernel, backward: Kernel) -> Activation {
        Activation {
            forward,
            backward,
            slope: 0.0,
            reads_input: false,
        }
    }

    /// `nn.LeakyReLU(negative_slope)`.
    pub(crate) const fn leaky_relu(negative_slope: f32) -> Activation {
        Activation {
            forward: Kernel::LeakyReluForward,
            backward: Kernel::LeakyReluBackwardInput,
            slope: negative_slope,
            reads_input: true,
        }
    }
}

/// Runs an elementwise forward kernel: `y = f(x)`.
fn elementwise_forward(dev: &Device, kernel: Kernel, slope: f32, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Output, x.len(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = ElementwiseSpec::new(kernel, x.len(), slope);
    let pass = Pass::new(dev, spec, &[&xb, &yb], 1);
    submit(dev, &[&pass], "running an activation's forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// Runs an elementwise backward kernel: `gx += f'(saved) * gy`.
fn elementwise_backward(
    dev: &Device,
    kernel: Kernel,
    slope: f32,
    saved: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Gradient, saved.len(), gy.len())?;
    check_len(Buffer::Gradient, saved.len(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let sb = dev.storage_with("saved", saved)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = ElementwiseSpec::new(kernel, saved.len(), slope);
    let pass = Pass::new(dev, spec, &[&gxb, &sb, &gyb], 1);
    submit(dev, &[&pass], "running an activation's backward")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::activation::relu_forward`]: `y = max(x, 0)`; `x`, `y`: `[*]`, same length.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) with a buffer length mismatch; wgpu errors.
pub fn relu_forward(dev: &Device, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::ReluForward, 0.0, x, y)
}

/// GPU [`torchlet::ops::activation::relu_backward_input`]: `gx += gy` where `y > 0`.
///
/// - `y`: the forward output `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn relu_backward_input(dev: &Device, y: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    elementwise_backward(dev, Kernel::ReluBackwardInput, 0.0, y, gy, gx)
}

/// GPU [`torchlet::ops::activation::leaky_relu_forward`]: `y = x` if `x > 0`, else
/// `negative_slope * x`; `x`, `y`: `[*]`.
///
/// # Errors
/// As [`relu_forward`].
pub fn leaky_relu_forward(dev: &Device, negative_slope: f32, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::LeakyReluForward, negative_slope, x, y)
}

/// GPU [`torchlet::ops::activation::leaky_relu_backward_input`]: `gx += gy` if `x > 0`, else
/// `negative_slope * gy`.
///
/// - `x`: the forward input `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn leaky_relu_backward_input(
    dev: &Device,
    negative_slope: f32,
    x: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    elementwise_backward(dev, Kernel::LeakyReluBackwardInput, negative_slope, x, gy, gx)
}

/// GPU [`torchlet::ops::activation::sigmoid_forward`]: `y = 1 / (1 + e^-x)`; `x`, `y`: `[*]`.
///
/// # Errors
/// As [`relu_forward`].
pub fn sigmoid_forward(dev: &Device, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::SigmoidForward, 0.0, x, y)
}

/// GPU [`torchlet::ops::activation::sigmoid_backward_input`]: `gx += gy * y * (1 - y)`.
///
/// - `y`: the forward output `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn sigmoid_backward_input(dev: &Device, y: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    elementwise_backward(dev, Kernel::SigmoidBackwardInput, 0.0, y, gy, gx)
}

/// GPU [`torchlet::ops::activation::tanh_forward`]: `y = tanh(x)`; `x`, `y`: `[*]`.
///
/// # Errors
/// As [`relu_forward`].
pub fn tanh_forward(dev: &Device, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::TanhForward, 0.0, x, y)
}

/// GPU [`torchlet::ops::activation::tanh_backward_input`]: `gx += gy * (1 - y^2)`.
///
/// - `y`: the forward output `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn tanh_backward_input(dev: &Device, y: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    elementwise_backward(dev, Kernel::TanhBackwardInput, 0.0, y, gy, gx)
}
