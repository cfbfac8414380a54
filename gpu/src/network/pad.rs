//! [`GpuNetwork`](super::GpuNetwork)'s Pad2d nodes (`Exec::Pad2d`): forward, and the input
//! gradient gathering the padded positions that read each input element.

use torchlet::ops::pad::PadGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::pad::PadSpec;

/// The passes of padding node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: PadGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let mut np = NodePasses::default();
    np.forward.push(b.pass(PadSpec::pad2d(Kernel::PadForward, &g), &[x, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(PadSpec::pad2d(Kernel::PadBackwardInput, &g), &[gx, gy]));
    }
    Ok(np)
}
