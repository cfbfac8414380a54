//! [`GpuNetwork`](super::GpuNetwork)'s convolution nodes (`Exec::Conv`): forward, input
//! gradient, weight gradient in partial sums and their reduction.
//!
//! A convolution with a padding mode other than zeros runs as three steps, so the convolution
//! shaders stay zeros-only: `pad_forward.wgsl` writes the padded input into a scratch buffer
//! (exactly the positions the windows read, [`crate::ops::padded_conv_geom`]), the ordinary
//! convolution passes run on it with no padding, and `pad_backward_input.wgsl` folds the padded
//! input's gradient back onto the layer's input gradient. That scratch gradient is cleared with
//! the layers' output gradients before every step.

use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::conv::{check_conv, conv_weight_chunk, conv_weight_elems, padded_conv_geom, ConvSpec, ReduceSpec};
use crate::ops::pad::PadSpec;

/// The passes of convolution node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: ConvGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    if g.mode == PaddingMode::Zeros {
        return zeros_passes(b, i, node, g, x, gx);
    }
    let p = padded_conv_geom(&g);
    let len = b.batch * g.c_in * p.in_spatial();
    let xp = b.storage(i, node, "padded input", len)?;
    let gxp = match gx {
        Some(_) => Some(b.storage(i, node, "padded input gradient", len)?),
        None => None,
    };
    let pad = |kernel| PadSpec::conv_input(kernel, &g);
    let inner = zeros_passes(b, i, node, p, &xp, gxp.as_ref())?;
    let mut np = NodePasses::default();
    np.forward.push(b.pass(pad(Kernel::PadForward), &[x, &xp]));
    np.forward.extend(inner.forward);
    np.backward.extend(inner.backward);
    if let (Some(gx), Some(gxp)) = (gx, gxp) {
        np.backward.push(b.pass(pad(Kernel::PadBackwardInput), &[gx, &gxp]));
        b.scratch.push(gxp);
    }
    Ok(np)
}

/// The passes of a zeros-padded convolution reading `x` (and writing `gx`).
fn zeros_passes(
    b: &Build<'_>,
    i: usize,
    node: &Node,
    g: ConvGeom,
    x: &wgpu::Buffer,
    gx: Option<&wgpu::Buffer>,
) -> Result<NodePasses> {
    check_conv(i, node.op_name, &g)?;
    let (y, gy) = b.output(i);
    let (w, bias) = (node.param_offset, node.param_offset + node.weight_len);
    let elems = conv_weight_elems(&g);
    let chunk = conv_weight_chunk(b.batch, elems);
    let spec = |kernel| ConvSpec {
        kernel,
        g: ConvGeom { n: 0, ..g },
        w,
        b: bias,
        chunk,
    };
    let mut np = NodePasses::default();
    np.forward.push(b.pass(spec(Kernel::ConvForward), &[x, b.params, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::ConvBackwardInput), &[gx, b.params, gy]));
    }
    let partial = b.storage(i, node, "weight-gradient partial sums", b.batch.div_ceil(chunk) * elems)?;
    np.backward
        .push(b.pass(spec(Kernel::ConvBackwardWeight), &[x, gy, &partial]));
    let reduce = ReduceSpec {
        elems,
        split: node.weight_len,
        w,
        b: bias,
        chunk,
    };
    np.backward.push(b.pass(reduce, &[&partial, b.grads]));
    Ok(np)
}
