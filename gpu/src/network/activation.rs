//! [`GpuNetwork`](super::GpuNetwork)'s activation nodes (ReLU, LeakyReLU, Sigmoid, Tanh): one
//! elementwise forward, one elementwise input gradient reading the saved input (LeakyReLU) or
//! output (the others); the parameterised activations (ELU, GELU, SiLU, Hardswish,
//! Hardsigmoid, Softplus, Mish, ReLU6) likewise from their input through the shared kernels;
//! PReLU's forward, input gradient and weight gradient.

use torchlet::ops::activation::PreluGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::{Error, Result};
use crate::kernels::Kernel;
use crate::ops::activation::prelu::PreluSpec;
use crate::ops::activation::smooth::{self, ActSpec};
use crate::ops::activation::{Activation, ElementwiseSpec};

/// The passes of activation node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, act: Activation) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| ElementwiseSpec::new(kernel, node.out_shape.numel(), act.slope);
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(act.forward), &[x, y]));
    if let Some(gx) = gx {
        let saved = if act.reads_input { x } else { y };
        np.backward.push(b.pass(spec(act.backward), &[gx, saved, gy]));
    }
    Ok(np)
}

/// The passes of node `i`, an activation of the shared kernels (reads its input).
pub(super) fn act_passes(b: &mut Build<'_>, i: usize, node: &Node) -> Result<NodePasses> {
    let act = smooth::ActivationKind::of(node.exec).ok_or(Error::Unsupported {
        layer: i,
        op: node.op_name,
        what: "not an activation of activation_forward.wgsl",
    })?;
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| ActSpec {
        kernel,
        per_sample: node.out_shape.numel(),
        act,
    };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::ActivationForward), &[x, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::ActivationBackwardInput), &[gx, x, gy]));
    }
    Ok(np)
}

/// The passes of PReLU node `i`: forward, input gradient, weight gradient.
pub(super) fn prelu_passes(b: &mut Build<'_>, i: usize, node: &Node, g: PreluGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| PreluSpec {
        kernel,
        g,
        w: node.param_offset,
    };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::PreluForward), &[x, b.params, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::PreluBackwardInput), &[gx, b.params, gy, x]));
    }
    np.backward
        .push(b.pass(spec(Kernel::PreluBackwardWeight), &[x, b.grads, gy]));
    Ok(np)
}
