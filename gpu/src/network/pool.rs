//! [`GpuNetwork`](super::GpuNetwork)'s pooling nodes: max pooling (its indices kept for a
//! later MaxUnpool), average pooling, adaptive average and max pooling, and max unpooling.

use torchlet::ops::geom::PoolGeom;
use torchlet::ops::pool::{AdaptiveGeom, UnpoolGeom};
use torchlet::plan::Node;

use super::{Build, NodePasses};
use crate::error::{Error, Result};
use crate::kernels::Kernel;
use crate::ops::pool::{AdaptiveSpec, PoolSpec, UnpoolSpec};

/// The passes of max-pooling node `i`; its indices stay in `b.indices[i]`.
pub(super) fn max_pool(b: &mut Build<'_>, i: usize, node: &Node, g: PoolGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let indices = b.dev.storage(
        &format!("layer {i} (MaxPool) indices"),
        b.batch * node.out_shape.numel(),
    )?;
    let mut np = NodePasses::default();
    np.forward.push(b.pass(
        PoolSpec {
            kernel: Kernel::MaxPoolForward,
            g,
        },
        &[x, &indices, y],
    ));
    if let Some(gx) = gx {
        np.backward.push(b.pass(
            PoolSpec {
                kernel: Kernel::MaxPoolBackwardInput,
                g,
            },
            &[gx, &indices, gy],
        ));
    }
    b.indices[i] = Some(indices);
    Ok(np)
}

/// The passes of average-pooling node `i`.
pub(super) fn avg_pool(b: &mut Build<'_>, i: usize, node: &Node, g: PoolGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let mut np = NodePasses::default();
    np.forward.push(b.pass(
        PoolSpec {
            kernel: Kernel::AvgPoolForward,
            g,
        },
        &[x, y],
    ));
    if let Some(gx) = gx {
        np.backward.push(b.pass(
            PoolSpec {
                kernel: Kernel::AvgPoolBackwardInput,
                g,
            },
            &[gx, gy],
        ));
    }
    Ok(np)
}

/// The passes of adaptive-average-pooling node `i`.
pub(super) fn adaptive_avg_pool(b: &mut Build<'_>, i: usize, node: &Node, g: AdaptiveGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let mut np = NodePasses::default();
    np.forward.push(b.pass(
        AdaptiveSpec {
            kernel: Kernel::AdaptiveAvgPoolForward,
            g,
        },
        &[x, y],
    ));
    if let Some(gx) = gx {
        np.backward.push(b.pass(
            AdaptiveSpec {
                kernel: Kernel::AdaptiveAvgPoolBackwardInput,
                g,
            },
            &[gx, gy],
        ));
    }
    Ok(np)
}

/// The passes of adaptive-max-pooling node `i` (its indices in a buffer of its own).
pub(super) fn adaptive_max_pool(b: &mut Build<'_>, i: usize, node: &Node, g: AdaptiveGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let indices = b.storage(i, node, "indices", b.batch * node.out_shape.numel())?;
    let spec = |kernel| AdaptiveSpec { kernel, g };
    let mut np = NodePasses::default();
    np.forward
        .push(b.pass(spec(Kernel::AdaptiveMaxPoolForward), &[x, &indices, y]));
    if let Some(gx) = gx {
        np.backward
            .push(b.pass(spec(Kernel::AdaptiveMaxPoolBackwardInput), &[gx, &indices, gy]));
    }
    Ok(np)
}

/// The passes of max-unpooling node `i`, reading the indices of max-pooling node `g.pool`.
pub(super) fn max_unpool(b: &mut Build<'_>, i: usize, node: &Node, g: UnpoolGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let indices = b
        .indices
        .get(g.pool as usize)
        .and_then(Option::as_ref)
        .ok_or(Error::Unsupported {
            layer: i,
            op: node.op_name,
            what: "MaxUnpool whose indices do not come from a MaxPool run on the GPU",
        })?;
    let mut np = NodePasses::default();
    np.forward.push(b.pass(
        UnpoolSpec {
            kernel: Kernel::MaxUnpoolForward,
            g,
        },
        &[x, indices, y],
    ));
    if let Some(gx) = gx {
        np.backward.push(b.pass(
            UnpoolSpec {
                kernel: Kernel::MaxUnpoolBackwardInput,
                g,
            },
            &[gx, indices, gy],
        ));
    }
    Ok(np)
}
