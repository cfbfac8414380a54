//! [`GpuNetwork`](super::GpuNetwork)'s linear nodes (`Exec::Linear`): forward, input
//! gradient, weight and bias gradient.

use torchlet::ops::linear::LinearGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::linear::LinearSpec;

/// The passes of linear node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: LinearGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| LinearSpec {
        kernel,
        g,
        w: node.param_offset,
        b: node.param_offset + node.weight_len,
    };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::LinearForward), &[x, b.params, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::LinearBackwardInput), &[gx, b.params, gy]));
    }
    np.backward
        .push(b.pass(spec(Kernel::LinearBackwardWeight), &[x, b.grads, gy]));
    Ok(np)
}
