//! [`GpuNetwork`](super::GpuNetwork)'s transposed-convolution nodes (`Exec::ConvTranspose`):
//! forward, input gradient, weight gradient. A padding mode other than zeros is a planned
//! [`crate::Error::Unsupported`] (PyTorch refuses it too).

use torchlet::ops::geom::ConvGeom;
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::conv_transpose::{check_conv_transpose, ConvTSpec};

/// The passes of transposed-convolution node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: ConvGeom) -> Result<NodePasses> {
    check_conv_transpose(i, node.op_name, &g)?;
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let spec = |kernel| ConvTSpec {
        kernel,
        g,
        w: node.param_offset,
        b: node.param_offset + node.weight_len,
    };
    let mut np = NodePasses::default();
    np.forward
        .push(b.pass(spec(Kernel::ConvTransposeForward), &[x, b.params, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::ConvTransposeBackwardInput), &[gx, b.params, gy]));
    }
    np.backward
        .push(b.pass(spec(Kernel::ConvTransposeBackwardWeight), &[x, b.grads, gy]));
    Ok(np)
}
