//! [`GpuNetwork`](super::GpuNetwork)'s activation nodes (ReLU, LeakyReLU, Sigmoid, Tanh): one
//! elementwise forward, one elementwise input gradient reading the saved input (LeakyReLU) or
//! output (the others).

use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
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
