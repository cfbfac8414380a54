//! One node of the int8 executor ([`super::network`]): its buffers cut from the `i8` arena and
//! handed to its int8 kernel.

use core::ops::Range;

use super::merge::{add_s8, concat_s8, AddParams, Rescale};
use super::network::{channels_of, role, Layout, NodeQuant, QuantWeights, Role};
use super::scheme::{ActRange, FusedActivation, OutputStage, QuantParams};
use super::{adaptive_avg_pool_s8, avg_pool_s8, conv_s8, linear_s8, max_pool_s8};
use crate::error::{Error, Result};
use crate::plan::{Exec, Fuse, Node, Plan, INPUT};

/// The caller's buffers for one node.
pub(crate) struct Arenas<'b> {
    pub arena: &'b mut [i8],
    pub scratch: &'b mut [i16],
    pub layout: Layout,
}

/// The quantisation of node `p`'s output (`INPUT`: the network input's).
pub(crate) fn producer_params<const CAP: usize>(plan: &Plan<CAP>, w: &QuantWeights<'_>, p: u16) -> QuantParams {
    if p == INPUT {
        w.input
    } else {
        w.nodes[(p as usize).min(plan.len() - 1)].out
    }
}

/// Where node `p`'s output (or the input) of `n` samples lies in the arena.
fn out_range<const CAP: usize>(plan: &Plan<CAP>, base: usize, p: u16, n: usize) -> Range<usize> {
    if p == INPUT {
        0..n * plan.input_shape().numel()
    } else {
        let node = &plan.nodes()[p as usize];
        let start = base + node.out.offset;
        start..start + n * node.out_shape.numel()
    }
}

/// The packed parameter offsets `(weights, channels)` of node `i`: sums over earlier nodes.
fn param_offsets<const CAP: usize>(plan: &Plan<CAP>, i: usize) -> (usize, usize) {
    plan.nodes()[..i].iter().fold((0, 0), |(w, c), node| {
        let (nc, nw) = channels_of(&node.exec);
        (w + nw, c + nc)
    })
}

/// A node's parameters: weights, biases and its output stage.
pub(crate) struct NodeParams<'w> {
    pub w: &'w [i8],
    pub bias: &'w [i32],
    pub stage: OutputStage<'w>,
}

/// The packed parameters of `Conv`/`Linear` node `i` with record `rec`.
pub(crate) fn node_params<'w, const CAP: usize>(
    plan: &Plan<CAP>,
    w: &QuantWeights<'w>,
    i: usize,
    rec: &NodeQuant,
) -> Result<NodeParams<'w>> {
    let (w0, c0) = param_offsets(plan, i);
    let (c, wl) = channels_of(&plan.nodes()[i].exec);
    let bad = Error::Structure {
        what: "the int8 parameters are shorter than the plan's layout",
    };
    Ok(NodeParams {
        w: w.weights.get(w0..w0 + wl).ok_or(bad)?,
        bias: w.bias.get(c0..c0 + c).ok_or(bad)?,
        stage: OutputStage {
            multiplier: w.multiplier.get(c0..c0 + c).ok_or(bad)?,
            shift: w.shift.get(c0..c0 + c).ok_or(bad)?,
            output_zp: rec.out.zero_point,
            act: rec.act,
        },
    })
}

/// Splits `arena` into `K` disjoint mutable slices (empty ranges anywhere), or an error if
/// two overlap or one exceeds the arena.
fn split<const K: usize>(arena: &mut [i8], ranges: [Range<usize>; K]) -> Result<[&mut [i8]; K]> {
    let mut order: [usize; K] = core::array::from_fn(|k| k);
    order.sort_unstable_by_key(|&k| ranges[k].start);
    let mut out: [&mut [i8]; K] = core::array::from_fn(|_| <&mut [i8]>::default());
    let mut rest: &mut [i8] = arena;
    let mut cursor = 0usize;
    for &k in &order {
        let r = &ranges[k];
        if r.is_empty() {
            continue;
        }
        if r.start < cursor || r.end - cursor > rest.len() {
            return Err(Error::Structure {
                what: "internal: int8 arena slots overlap or exceed the arena",
            });
        }
        let tail = core::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(r.start - cursor);
        let (mid, tail) = tail.split_at_mut(r.len());
        out[k] = mid;
        rest = tail;
        cursor = r.end;
    }
    Ok(out)
}

/// Runs node `i` on `n` samples.
pub(crate) fn forward_node<const CAP: usize>(
    plan: &Plan<CAP>,
    w: &QuantWeights<'_>,
    i: usize,
    n: usize,
    io: &mut Arenas<'_>,
) -> Result<()> {
    let node = &plan.nodes()[i];
    let r = role(plan, i)?;
    match node.fuse {
        Fuse::Into => return Ok(()),
        Fuse::ConvPool { conv, .. } => return super::fused::conv_pool(plan, w, i, conv as usize, n, io),
        Fuse::None | Fuse::InPlace => {}
    }
    let base = io.layout.slots_base;
    let y_range = out_range(plan, base, i as u16, n);
    let a_range = out_range(plan, base, node.inputs[0], n);
    if matches!(r, Role::Alias | Role::Clamp) {
        return elementwise(plan, node, r, w, a_range, y_range, io.arena);
    }
    let two = matches!(node.exec, Exec::Add | Exec::Concat(_));
    let same = two && node.inputs[1] == node.inputs[0];
    let b_range = if two && !same {
        out_range(plan, base, node.inputs[1], n)
    } else {
        0..0
    };
    let [y, a, b_m] = split(io.arena, [y_range, a_range, b_range])?;
    let b: &[i8] = if same { a } else { b_m };
    let rec = &w.nodes[i];
    let pa = producer_params(plan, w, node.inputs[0]);
    let in_zp = pa.zero_point;
    let at = |e: Error| located(e, i, node);
    match node.exec {
        Exec::Conv(mut g) => {
            g.n = n;
            g.bias = true;
            let p = node_params(plan, w, i, rec)?;
            conv_s8(&g, in_zp, &p.stage, a, p.w, p.bias, y, io.scratch).map_err(at)
        }
        Exec::Linear(mut g) => {
            g.bias = true;
            let p = node_params(plan, w, i, rec)?;
            linear_s8(n, &g, in_zp, &p.stage, a, p.w, p.bias, y).map_err(at)
        }
        Exec::MaxPool(mut g) => {
            g.n = n;
            max_pool_s8(&g, ActRange::FULL, a, y).map_err(at)
        }
        Exec::AvgPool(mut g) => {
            g.n = n;
            avg_pool_s8(&g, in_zp, ActRange::FULL, a, y).map_err(at)
        }
        Exec::AdaptiveAvgPool(g) => adaptive_avg_pool_s8(n, &g, ActRange::FULL, a, y).map_err(at),
        Exec::Add => {
            let pb = producer_params(plan, w, node.inputs[1]);
            let p = AddParams::new(pa, pb, rec.out, rec.act).map_err(at)?;
            add_s8(&p, a, b, y).map_err(at)
        }
        Exec::Concat(g) => {
            let pb = producer_params(plan, w, node.inputs[1]);
            let (ra, rb) = (Rescale::new(pa, rec.out), Rescale::new(pb, rec.out));
            concat_s8(n, &g, a, &ra.map_err(at)?, b, &rb.map_err(at)?, y).map_err(at)
        }
        _ => Err(Error::Unsupported {
            layer: i,
            op: node.op_name,
            what: "there is no int8 kernel for this op",
        }),
    }
}

/// A kernel's geometry error (`layer: 0`) placed at node `i`.
pub(crate) fn located(e: Error, i: usize, node: &Node) -> Error {
    match e {
        Error::Shape {
            what, expected, found, ..
        } => Error::Shape {
            layer: i,
            op: node.op_name,
            what,
            expected,
            found,
        },
        other => other,
    }
}

/// A copy (aliases) or a clamp (standalone ReLU/ReLU6), in place when the plan put the node
/// on its producer's buffer.
fn elementwise<const CAP: usize>(
    plan: &Plan<CAP>,
    node: &Node,
    r: Role,
    w: &QuantWeights<'_>,
    a_range: Range<usize>,
    y_range: Range<usize>,
    arena: &mut [i8],
) -> Result<()> {
    let act = if r == Role::Clamp {
        let p = producer_params(plan, w, node.inputs[0]);
        let f = if node.exec == Exec::ReLU6 {
            FusedActivation::Relu6
        } else {
            FusedActivation::Relu
        };
        ActRange::fused(f, p)
    } else {
        ActRange::FULL
    };
    if a_range == y_range {
        let v = arena.get_mut(y_range).ok_or(Error::Structure {
            what: "internal: an int8 slot exceeds the arena",
        })?;
        if act != ActRange::FULL {
            v.iter_mut().for_each(|q| *q = act.clamp(*q as i32));
        }
        return Ok(());
    }
    let [y, a] = split(arena, [y_range, a_range])?;
    if y.len() != a.len() {
        return Err(Error::Structure {
            what: "internal: an int8 copy between buffers of different lengths",
        });
    }
    for (d, &s) in y.iter_mut().zip(a.iter()) {
        *d = act.clamp(s as i32);
    }
    Ok(())
}
