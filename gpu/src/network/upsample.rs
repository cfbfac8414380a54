//! [`GpuNetwork`](super::GpuNetwork)'s Upsample nodes (`Exec::Upsample`): the forward gather
//! and the input gradient's gather.

use torchlet::ops::upsample::UpsampleGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::upsample::UpsampleSpec;

/// The passes of upsampling node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: UpsampleGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| UpsampleSpec { kernel, g };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::UpsampleForward), &[y, x]));
    if let Some(gx) = gx {
        np.backward.push(b.pass(spec(Kernel::UpsampleBackwardInput), &[gx, gy]));
    }
    Ok(np)
}
