//! [`GpuNetwork`](super::GpuNetwork)'s nodes for Softmax, LogSoftmax, the Pad2d layers,
//! convolutions with `padding_mode` reflect, replicate or circular, ConvTranspose, MaxUnpool
//! and Bilinear (the kernels of `crate::ops::more_layers`).
//!
//! A convolution with a padding mode other than zeros runs as three steps, so the convolution
//! shaders stay zeros-only: `pad_forward.wgsl` writes the padded input into a scratch buffer
//! (exactly the positions the windows read, [`crate::ops::padded_conv_geom`]), the ordinary
//! convolution passes run on it with no padding, and `pad_backward_input.wgsl` folds the padded
//! input's gradient back onto the layer's input gradient. That scratch gradient is cleared with
//! the layers' output gradients before every step.

use torchlet::ops::bilinear::BilinearGeom;
use torchlet::ops::geom::PaddingMode;
use torchlet::ops::pad::PadGeom;
use torchlet::ops::pool::UnpoolGeom;
use torchlet::ops::softmax::SoftmaxGeom;
use torchlet::plan::{Exec, Node};

use super::{node_passes, producer, NodePasses};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Kernel;
use crate::ops::{check_conv_transpose, pad2d_dims, padded_conv_geom, LayerSpec, Pass, Spec};

/// The dispatches of one node of this module: forward in order, backward in order (input
/// gradients before the padding's fold, weight gradients last).
pub(super) struct LayerPasses {
    pub(super) forward: Vec<Pass>,
    pub(super) backward: Vec<Pass>,
}

/// What these nodes keep from the network's other nodes while it is built.
#[derive(Default)]
pub(super) struct Layers {
    /// Each max-pooling node's indices, for a later MaxUnpool.
    indices: Vec<Option<wgpu::Buffer>>,
    /// Gradients of padded convolution inputs: cleared before every step, with the layers'
    /// output gradients.
    pub(super) scratch: Vec<wgpu::Buffer>,
}

/// `Some(answer)` when node `i` is one of this module's layers, `None` otherwise.
pub(super) fn supported(i: usize, node: &Node) -> Option<Result<()>> {
    match node.exec {
        Exec::Softmax(_) | Exec::LogSoftmax(_) | Exec::Pad2d(_) | Exec::MaxUnpool(_) | Exec::Bilinear(_) => {
            Some(Ok(()))
        }
        Exec::Conv(g) if g.mode != PaddingMode::Zeros => Some(Ok(())),
        Exec::ConvTranspose(g) => Some(check_conv_transpose(i, node.op_name, &g)),
        _ => None,
    }
}

impl Layers {
    /// Keeps what node `i`, built by the parent's `node_passes`, leaves for later nodes.
    pub(super) fn keep(&mut self, i: usize, np: &NodePasses) {
        if self.indices.len() <= i {
            self.indices.resize(i + 1, None);
        }
        self.indices[i] = np.indices.clone();
    }

    /// The passes of node `i` when it is one of this module's layers, `None` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn node_passes(
        &mut self,
        dev: &Device,
        i: usize,
        node: &Node,
        batch: usize,
        input: &wgpu::Buffer,
        outs: &[wgpu::Buffer],
        node_grads: &[wgpu::Buffer],
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
    ) -> Result<Option<LayerPasses>> {
        let (x, gx) = producer(node.inputs[0], input, outs, node_grads);
        let (y, gy) = (&outs[i], &node_grads[i]);
        let w = node.param_offset;
        let b = node.param_offset + node.weight_len;
        let pass = |spec: LayerSpec, buffers: &[&wgpu::Buffer]| Pass::new(dev, Spec::Layer(spec), buffers, batch);
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        match node.exec {
            Exec::Softmax(SoftmaxGeom { outer, axis, inner })
            | Exec::LogSoftmax(SoftmaxGeom { outer, axis, inner }) => {
                let (fwd, bwd) = if matches!(node.exec, Exec::Softmax(_)) {
                    (Kernel::SoftmaxForward, Kernel::SoftmaxBackwardInput)
                } else {
                    (Kernel::LogSoftmaxForward, Kernel::LogSoftmaxBackwardInput)
                };
                let spec = |kernel| LayerSpec::Softmax {
                    kernel,
                    outer,
                    axis,
                    inner,
                    x: 0,
                    y: 0,
                    aux: 0,
                };
                forward.push(pass(spec(fwd), &[x, y]));
                if let Some(gx) = gx {
                    backward.push(pass(spec(bwd), &[gx, y, gy]));
                }
            }
            Exec::Pad2d(PadGeom {
                c,
                h,
                w: width,
                padding,
                mode,
            }) => {
                let [input, output, front] = pad2d_dims(h, width, padding);
                let spec = |kernel| LayerSpec::Pad {
                    kernel,
                    c,
                    input,
                    output,
                    front,
                    mode,
                    x: 0,
                    y: 0,
                };
                forward.push(pass(spec(Kernel::PadForward), &[x, y]));
                if let Some(gx) = gx {
                    backward.push(pass(spec(Kernel::PadBackwardInput), &[gx, gy]));
                }
            }
            Exec::Conv(g) if g.mode != PaddingMode::Zeros => {
                let p = padded_conv_geom(&g);
                let len = batch * g.c_in * p.in_spatial();
                let xp = dev.storage(&format!("layer {i} ({}) padded input", node.op_name), len)?;
                let gxp = match gx {
                    Some(_) => Some(dev.storage(&format!("layer {i} ({}) padded input gradient", node.op_name), len)?),
                    None => None,
                };
                let spec = |kernel| LayerSpec::Pad {
                    kernel,
                    c: g.c_in,
                    input: g.input,
                    output: p.input,
                    front: g.pad,
                    mode: g.mode,
                    x: 0,
                    y: 0,
                };
                // The parent's convolution passes, on the padded input with zeros padding
                // (they read the geometry only from `exec`).
                let conv = Node {
                    exec: Exec::Conv(p),
                    ..*node
                };
                let inner = node_passes(dev, i, &conv, batch, &xp, gxp.as_ref(), y, gy, params, grads)?;
                forward.push(pass(spec(Kernel::PadForward), &[x, &xp]));
                forward.push(inner.forward);
                backward.extend(inner.backward);
                if let (Some(gx), Some(gxp)) = (gx, gxp) {
                    backward.push(pass(spec(Kernel::PadBackwardInput), &[gx, &gxp]));
                    self.scratch.push(gxp);
                }
            }
            Exec::ConvTranspose(g) => {
                check_conv_transpose(i, node.op_name, &g)?;
                let spec = |kernel| LayerSpec::ConvTranspose {
                    kernel,
                    g,
                    x: 0,
                    w,
                    b,
                    y: 0,
                };
                forward.push(pass(spec(Kernel::ConvTransposeForward), &[x, params, y]));
                if let Some(gx) = gx {
                    backward.push(pass(spec(Kernel::ConvTransposeBackwardInput), &[gx, params, gy]));
                }
                backward.push(pass(spec(Kernel::ConvTransposeBackwardWeight), &[x, grads, gy]));
            }
            Exec::MaxUnpool(UnpoolGeom {
                c,
                in_spatial,
                out_spatial,
                pool,
            }) => {
                let indices = self
                    .indices
                    .get(pool as usize)
                    .and_then(Option::as_ref)
                    .ok_or(Error::Unsupported {
                        layer: i,
                        op: node.op_name,
                        what: "MaxUnpool whose indices do not come from a MaxPool run on the GPU",
                    })?;
                let spec = |kernel| LayerSpec::MaxUnpool {
                    kernel,
                    c,
                    in_spatial,
                    out_spatial,
                    x: 0,
                    y: 0,
                };
                forward.push(pass(spec(Kernel::MaxUnpoolForward), &[x, indices, y]));
                if let Some(gx) = gx {
                    backward.push(pass(spec(Kernel::MaxUnpoolBackwardInput), &[gx, indices, gy]));
                }
            }
            Exec::Bilinear(BilinearGeom {
                rows,
                in1,
                in2,
                out,
                bias,
            }) => {
                let (x2, gx2) = producer(node.inputs[1], input, outs, node_grads);
                let spec = |kernel, which| LayerSpec::Bilinear {
                    kernel,
                    rows,
                    in1,
                    in2,
                    out,
                    bias,
                    x1: 0,
                    x2: 0,
                    w,
                    b,
                    y: 0,
                    which,
                };
                forward.push(pass(spec(Kernel::BilinearForward, 0), &[x, params, y, x2]));
                if let Some(gx) = gx {
                    backward.push(pass(spec(Kernel::BilinearBackwardInput, 0), &[gx, params, gy, x2]));
                }
                if let Some(gx2) = gx2 {
                    backward.push(pass(spec(Kernel::BilinearBackwardInput, 1), &[gx2, params, gy, x]));
                }
                backward.push(pass(spec(Kernel::BilinearBackwardWeight, 0), &[x, grads, gy, x2]));
            }
            _ => return Ok(None),
        }
        Ok(Some(LayerPasses { forward, backward }))
    }
}
