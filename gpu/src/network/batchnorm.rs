//! [`GpuNetwork`](super::GpuNetwork)'s BatchNorm nodes: the training forward with batch
//! statistics (a counting dispatch, then the statistics), its eval pass with the running
//! statistics (registered in [`super::train_eval::Modes`]), and the backward pass.
//!
//! A layer without `track_running_stats` uses batch statistics in both modes, as PyTorch; the
//! batch rule is the core's [`BnGeom::check_batch`], checked before every step.

use torchlet::ops::batchnorm::{batch_norm_state_len, BnGeom};
use torchlet::plan::{Node, INPUT};

use super::train_eval::{BnNode, Swap};
use super::{Build, NodePasses};
use crate::error::Result;
use crate::kernels::Kernel;
use crate::ops::batchnorm::BnSpec;

/// The passes of BatchNorm node `i`.
pub(super) fn passes(b: &mut Build<'_>, i: usize, node: &Node, g: BnGeom) -> Result<NodePasses> {
    let (x, gx) = b.producer(node.inputs[0]);
    let (y, gy) = b.output(i);
    let track = g.track_running_stats && node.state_len == batch_norm_state_len(g.c);
    let g = BnGeom {
        n: 0,
        track_running_stats: track,
        ..g
    };
    let saved = b.modes.state_len + b.modes.saved_next;
    b.modes.saved_next += 2 * g.c;
    let spec = |kernel, count, has_gx| BnSpec {
        kernel,
        g,
        w: node.param_offset,
        b: node.param_offset + node.weight_len,
        state: node.state_offset,
        saved,
        count,
        has_gx,
    };
    let mut np = NodePasses::default();
    let state = &b.modes.state;
    let fwd = [x, b.params, y, state];
    if track {
        np.forward
            .push(b.pass(spec(Kernel::BatchNormForwardTrain, true, false), &fwd));
    }
    np.forward
        .push(b.pass(spec(Kernel::BatchNormForwardTrain, false, false), &fwd));
    let eval = track.then(|| b.pass(spec(Kernel::BatchNormForwardEval, false, false), &fwd));
    if gx.is_some() || g.affine {
        let gx = gx.unwrap_or(&b.modes.dummy);
        let spec = spec(Kernel::BatchNormBackwardTrain, false, node.inputs[0] != INPUT);
        np.backward.push(b.pass(spec, &[gx, b.params, gy, state, x, b.grads]));
    }
    if let Some(eval) = eval {
        b.modes.swaps.push(Swap {
            start: b.at,
            len: np.forward.len(),
            passes: vec![eval],
        });
    }
    b.modes.batch_norms.push(BnNode {
        layer: i,
        op: node.op_name,
        g,
    });
    Ok(np)
}
