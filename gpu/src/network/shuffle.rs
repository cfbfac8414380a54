//! [`GpuNetwork`](super::GpuNetwork)'s ChannelShuffle nodes (`Exec::ChannelShuffle`): the
//! forward gather and the input gradient's inverse gather.

use torchlet::ops::shuffle::ShuffleGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::shuffle::ShuffleSpec;

/// The passes of channel-shuffle node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: ShuffleGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| ShuffleSpec { kernel, g };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::ChannelShuffleForward), &[y, x]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::ChannelShuffleBackwardInput), &[gx, gy]));
    }
    Ok(np)
}
