//! [`GpuNetwork`](super::GpuNetwork)'s Dropout nodes: the training forward drawing a mask on
//! the GPU (its seed advanced before every step by [`super::train_eval::Modes`]), a copy as
//! its eval pass, and the backward multiplying by the mask.

use torchlet::plan::Node;

use super::train_eval::Swap;
use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::dropout::DropoutSpec;
use crate::ops::reshape::copy_forward;

/// The passes of Dropout node `i` with probability `p`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, p: f32) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let per_sample = node.out_shape.numel();
    let mask = b.storage(i, node, "mask", b.batch * per_sample)?;
    let spec = |kernel| DropoutSpec {
        kernel,
        per_sample,
        p,
        seed: 0,
    };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::DropoutForward), &[x, &mask, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::DropoutBackwardInput), &[gx, &mask, gy]));
    }
    let copy = b.pass(copy_forward(per_sample), &[x, y]);
    b.modes.dropout.push((b.at, i, spec(Kernel::DropoutForward)));
    b.modes.swaps.push(Swap {
        start: b.at,
        len: 1,
        passes: vec![copy],
    });
    Ok(np)
}
