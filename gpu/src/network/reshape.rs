//! [`GpuNetwork`](super::GpuNetwork)'s copy nodes (`Exec::Copy`: Flatten, Identity): a copy
//! forward and an accumulating copy backward.

use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::ops::reshape::{copy_backward_input, copy_forward};

/// The passes of copy node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let per_sample = node.out_shape.numel();
    let mut np = NodePasses::default();
    np.forward.push(b.pass(copy_forward(per_sample), &[x, y]));
    if let Some(gx) = gx {
        np.backward.push(b.pass(copy_backward_input(per_sample), &[gx, gy]));
    }
    Ok(np)
}
