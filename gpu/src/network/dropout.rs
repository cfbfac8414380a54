//! [`GpuNetwork`](super::GpuNetwork)'s Dropout and Dropout1d/2d/3d nodes: the training forward drawing a mask on
//! the GPU (its seed advanced before every step by [`super::train_eval::Modes`]), a copy as
//! its eval pass, and the backward multiplying by the mask.

use torchlet::plan::Node;

use super::train_eval::Swap;
use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::dropout::DropoutSpec;
use crate::ops::reshape::copy_forward;

/// The passes of Dropout node `i` with probability `p`; `Some(plane)` is a
/// channel dropout (`Dropout1d/2d/3d`) over channel planes of that many elements.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, p: f32, plane: Option<usize>) -> Result<NodePasses> {
    let forward = if plane.is_some() {
        Kernel::ChannelDropoutForward
    } else {
        Kernel::DropoutForward
    };
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let per_sample = node.out_shape.numel();
    let mask = b.storage(i, node, "mask", b.batch * per_sample)?;
    let spec = |kernel| DropoutSpec {
        kernel,
        per_sample,
        plane: plane.unwrap_or(1),
        p,
        seed: 0,
    };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(forward), &[x, &mask, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::DropoutBackwardInput), &[gx, &mask, gy]));
    }
    let copy = b.pass(copy_forward(per_sample), &[x, y]);
    b.modes.dropout.push((b.at, i, spec(forward)));
    b.modes.swaps.push(Swap {
        start: b.at,
        len: 1,
        passes: vec![copy],
    });
    Ok(np)
}
