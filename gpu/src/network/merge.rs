//! [`GpuNetwork`](super::GpuNetwork)'s merge nodes (residual `Add`, channel `Concat`). A
//! node's backward adds into the output gradient of each producer with one dispatch per
//! input, so a producer feeding both inputs, or several consumers, receives every
//! contribution, one dispatch after the other (no atomics).

use torchlet::ops::merge::ConcatGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::merge::MergeSpec;

/// `Add`'s forward and backward kernels.
pub(super) const ADD: [Kernel; 2] = [Kernel::AddForward, Kernel::AddBackwardInput];
/// `Concat`'s forward and backward kernels.
pub(super) const CONCAT: [Kernel; 2] = [Kernel::ConcatForward, Kernel::ConcatBackwardInput];

/// The passes of merge node `i` with `[forward, backward]` kernels (for `Add`, `g.a` and `g.b`
/// are both the sample length).
pub(super) fn passes(
    b: &mut Build<'_>,
    i: usize,
    node: &Node,
    g: ConcatGeom,
    [fwd, bwd]: [Kernel; 2],
) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (x2, gx2) = b.producer(node.inputs[1]);
    let (y, gy) = b.output(i);
    let spec = |kernel, second| MergeSpec { kernel, g, second };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(fwd, false), &[x, x2, y]));
    if let Some(gx) = gx {
        np.backward.push(b.pass(spec(bwd, false), &[gx, gy]));
    }
    if let Some(gx2) = gx2 {
        np.backward.push(b.pass(spec(bwd, true), &[gx2, gy]));
    }
    Ok(np)
}
