//! [`GpuNetwork`](super::GpuNetwork)'s Softmax and LogSoftmax nodes: forward, and the input
//! gradient reading the saved output.

use torchlet::ops::softmax::SoftmaxGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::softmax::SoftmaxSpec;

/// Softmax's forward and backward kernels.
pub(super) const SOFTMAX: [Kernel; 2] = [Kernel::SoftmaxForward, Kernel::SoftmaxBackwardInput];
/// LogSoftmax's forward and backward kernels.
pub(super) const LOG_SOFTMAX: [Kernel; 2] = [Kernel::LogSoftmaxForward, Kernel::LogSoftmaxBackwardInput];

/// The passes of softmax node `i` with `[forward, backward]` kernels.
pub(super) fn passes(
    b: &mut Build<'_>,
    i: usize,
    node: &Node,
    g: SoftmaxGeom,
    [fwd, bwd]: [Kernel; 2],
) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let mut np = NodePasses::default();
    np.forward.push(b.pass(SoftmaxSpec { kernel: fwd, g }, &[x, y]));
    if let Some(gx) = gx {
        np.backward.push(b.pass(SoftmaxSpec { kernel: bwd, g }, &[gx, y, gy]));
    }
    Ok(np)
}
