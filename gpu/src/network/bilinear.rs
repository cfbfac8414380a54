//! [`GpuNetwork`](super::GpuNetwork)'s Bilinear nodes (`Exec::Bilinear`): forward, the input
//! gradient of each input (one dispatch each), the weight and bias gradient.

use torchlet::ops::bilinear::BilinearGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::bilinear::BilinearSpec;

/// The passes of bilinear node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: BilinearGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (x2, gx2) = b.producer(node.inputs[1]);
    let (y, gy) = b.output(i);
    let spec = |kernel, which| BilinearSpec {
        kernel,
        g,
        which,
        w: node.param_offset,
        b: node.param_offset + node.weight_len,
    };
    let mut np = NodePasses::default();
    np.forward
        .push(b.pass(spec(Kernel::BilinearForward, 0), &[x, b.params, y, x2]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::BilinearBackwardInput, 0), &[gx, b.params, gy, x2]));
    }
    if let Some(gx2) = gx2 {
        np.backward
            .push(b.pass(spec(Kernel::BilinearBackwardInput, 1), &[gx2, b.params, gy, x]));
    }
    np.backward
        .push(b.pass(spec(Kernel::BilinearBackwardWeight, 0), &[x, b.grads, gy, x2]));
    Ok(np)
}
