//! One node's pass: cut its buffers from the arena ([`Fwd`], [`Bwd`]) and hand them to its op
//! family, one line per [`Exec`] variant. What a layer computes lives in its family's file in
//! [`crate::ops`]; this file only knows where the buffers are.

use core::ops::Range;

use super::Weights;
use crate::error::{Error, Result};
use crate::kernels::Gemm;
use crate::ops::family::gated;
use crate::ops::io::{Bwd, Fwd, State};
use crate::ops::{
    activation, batchnorm, bilinear, conv, conv_transpose, dropout, linear, merge, pad, pool, reshape, shuffle,
    softmax, upsample,
};
use crate::plan::{Exec, Fuse, FusedAct, Node, Plan, Slot, INPUT};
use crate::rng::Rng;

/// Runs node `i` forward on a batch of `n` samples (`x`: the network input).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_node<const CAP: usize>(
    gemm: &dyn Gemm,
    plan: &Plan<CAP>,
    i: usize,
    n: usize,
    x: &[f32],
    training: bool,
    rng: &mut Rng,
    params: &[f32],
    state: &mut Weights<'_>,
    arena: &mut [f32],
) -> Result<()> {
    let node = &plan.nodes()[i];
    match node.fuse {
        Fuse::None => {}
        Fuse::Into => return Ok(()),
        Fuse::ConvPool { conv, bn, act } => {
            let fused = ConvPool { conv, bn, act };
            return forward_conv_pool(gemm, plan, node, fused, n, x, params, state.get(), arena);
        }
        Fuse::InPlace => return forward_in_place(node, n, params, state.get(), arena),
    }
    let two = is_merge(node);
    let same = two && node.inputs[1] == node.inputs[0];
    let input = |p: u16, wanted: bool| {
        if !wanted || p == INPUT {
            0..0
        } else {
            producer_out(plan, p, n)
        }
    };
    let [y, extra, work, a_m, b_m, pool_indices] = split(
        arena,
        [
            prefix(node.out, n * node.out_shape.numel()),
            node.extra.range(),
            node.work_fwd.range(),
            input(node.inputs[0], true),
            input(node.inputs[1], two && !same),
            pool_slot(plan, node),
        ],
    )?;
    let a: &[f32] = if node.inputs[0] == INPUT { x } else { a_m };
    let b: &[f32] = match (two, same, node.inputs[1] == INPUT) {
        (false, _, _) => &[],
        (true, true, _) => a,
        (true, false, true) => x,
        (true, false, false) => b_m,
    };
    let (w, bias) = params[node.param_offset..node.param_offset + node.param_len()].split_at(node.weight_len);
    let st = node.state_offset..node.state_offset + node.state_len;
    let state = match state {
        Weights::Mut(s) => State::Mut(&mut s[st]),
        Weights::Ref(s) => State::Ref(&s[st]),
    };
    let mut io = Fwd {
        layer: i,
        op: node.op_name,
        gemm,
        n,
        training,
        x: a,
        x2: b,
        w,
        bias,
        y,
        extra,
        work,
        pool_indices,
        rng,
        state,
    };
    forward_exec(node.exec, &mut io)
}

/// The nodes a fused pool computes ([`Fuse::ConvPool`]).
struct ConvPool {
    conv: u16,
    bn: u16,
    act: FusedAct,
}

/// The forward pass of an element-wise node on its producer's buffer ([`Fuse::InPlace`]).
fn forward_in_place(node: &Node, n: usize, params: &[f32], state: &[f32], arena: &mut [f32]) -> Result<()> {
    let v = arena
        .get_mut(prefix(node.out, n * node.out_shape.numel()))
        .ok_or(Error::Structure {
            what: "an in-place node's buffer lies outside the arena",
        })?;
    let act = match node.exec {
        Exec::ReLU => FusedAct::ReLU,
        Exec::ReLU6 => FusedAct::ReLU6,
        Exec::LeakyReLU(s) => FusedAct::LeakyReLU(s),
        Exec::BatchNorm(mut g) => {
            g.n = n;
            let (w, bias) = params[node.param_offset..node.param_offset + node.param_len()].split_at(node.weight_len);
            let st = &state[node.state_offset..node.state_offset + node.state_len];
            batchnorm::batch_norm_eval_in_place(&g, w, bias, st, v);
            return Ok(());
        }
        _ => {
            return Err(Error::Structure {
                what: "an in-place node that is not element-wise",
            })
        }
    };
    for x in v {
        *x = act.apply(*x);
    }
    Ok(())
}

/// The forward pass of a pooling node fused with a convolution, an optional BatchNorm and an
/// activation (see [`crate::plan::fuse`]): it reads the convolution's input and weights.
#[allow(clippy::too_many_arguments)]
#[inline(never)] // kernel code of its own, for the firmware's size report
fn forward_conv_pool<const CAP: usize>(
    gemm: &dyn Gemm,
    plan: &Plan<CAP>,
    node: &Node,
    fused: ConvPool,
    n: usize,
    x: &[f32],
    params: &[f32],
    state: &[f32],
    arena: &mut [f32],
) -> Result<()> {
    const NOT_FUSABLE: Error = Error::Structure {
        what: "a fused pool node without its convolution",
    };
    let ConvPool { conv, bn, act } = fused;
    let c = plan.nodes().get(conv as usize).ok_or(NOT_FUSABLE)?;
    let Exec::Conv(mut cg) = c.exec else {
        return Err(NOT_FUSABLE);
    };
    let (kind, mut pg) = match node.exec {
        Exec::MaxPool(g) => (conv::fused::PoolKind::Max, g),
        Exec::AvgPool(g) => (conv::fused::PoolKind::Avg, g),
        _ => return Err(NOT_FUSABLE),
    };
    (cg.n, pg.n) = (n, n);
    let src = c.inputs[0];
    let [y, work, xm] = split(
        arena,
        [
            prefix(node.out, n * node.out_shape.numel()),
            node.work_fwd.range(),
            if src == INPUT { 0..0 } else { producer_out(plan, src, n) },
        ],
    )?;
    let xin: &[f32] = if src == INPUT { x } else { xm };
    let (w, bias) = params[c.param_offset..c.param_offset + c.param_len()].split_at(c.weight_len);
    let norm = match plan.nodes().get(bn as usize) {
        None => None,
        Some(b) => {
            let Exec::BatchNorm(g) = b.exec else {
                return Err(NOT_FUSABLE);
            };
            let (bw, bb) = params[b.param_offset..b.param_offset + b.param_len()].split_at(b.weight_len);
            let st = &state[b.state_offset..b.state_offset + b.state_len];
            Some(conv::fused::ChannelNorm {
                geom: g,
                weight: bw,
                bias: bb,
                state: st,
            })
        }
    };
    conv::fused::conv_pool_forward(gemm, &cg, act, norm.as_ref(), kind, &pg, xin, w, bias, y, work);
    Ok(())
}

/// The forward pass of each kind of node ([`Error::NotCompiled`] for an op family whose feature
/// is off: the planner refuses those layers first, see [`crate::ops::family`]).
#[inline(never)] // the op kernels inline here, not into the runtime: the firmware's size report
fn forward_exec(exec: Exec, io: &mut Fwd<'_>) -> Result<()> {
    match exec {
        Exec::Conv(g) => gated!("op-conv", io, do conv::forward(g, io)),
        Exec::ConvTranspose(g) => gated!("op-conv-transpose", io, do conv_transpose::forward(g, io)),
        Exec::MaxPool(g) => gated!("op-pool", io, do pool::forward_max(g, io)),
        Exec::AvgPool(g) => gated!("op-pool", io, do pool::forward_avg(g, io)),
        Exec::AdaptiveAvgPool(g) => gated!("op-adaptive-pool", io, do pool::adaptive::forward_avg(g, io)),
        Exec::AdaptiveMaxPool(g) => gated!("op-adaptive-pool", io, do pool::adaptive::forward_max(g, io)),
        Exec::MaxUnpool(g) => gated!("op-unpool", io, do pool::unpool::forward(g, io)),
        Exec::Pad2d(g) => gated!("op-pad", io, do pad::forward(g, io)),
        Exec::ReLU => gated!("op-activation", io, do activation::relu_forward(io.x, io.y)),
        Exec::LeakyReLU(s) => gated!("op-activation", io, do activation::leaky_relu_forward(s, io.x, io.y)),
        Exec::Sigmoid => gated!("op-smooth-activation", io, do activation::sigmoid_forward(io.x, io.y)),
        Exec::Tanh => gated!("op-smooth-activation", io, do activation::tanh_forward(io.x, io.y)),
        Exec::Softmax(g) => gated!("op-softmax", io, do softmax::forward(g, io)),
        Exec::LogSoftmax(g) => gated!("op-softmax", io, do softmax::forward_log(g, io)),
        Exec::BatchNorm(g) => gated!("op-batchnorm", io, batchnorm::forward(g, io)),
        Exec::Dropout(p) => gated!("op-dropout", io, do dropout::forward(p, io)),
        Exec::ChannelDropout(p, plane) => gated!("op-dropout", io, do dropout::forward_channels(p, plane, io)),
        Exec::ChannelShuffle(g) => gated!("op-shuffle", io, do shuffle::forward(g, io)),
        Exec::Upsample(g) => gated!("op-upsample", io, do upsample::forward(g, io)),
        Exec::Linear(g) => gated!("op-linear", io, do linear::forward(g, io)),
        Exec::Bilinear(g) => gated!("op-bilinear", io, do bilinear::forward(g, io)),
        Exec::Add => gated!("op-merge", io, do merge::add_forward(io.x, io.x2, io.y)),
        Exec::Concat(g) => gated!("op-merge", io, do merge::forward_concat(g, io)),
        Exec::Copy => {
            reshape::forward(io);
            Ok(())
        }
        Exec::ELU(alpha) => gated!("op-smooth-activation", io, do activation::elu_forward(alpha, io.x, io.y)),
        Exec::GELU(a) => gated!("op-smooth-activation", io, do activation::gelu_forward(a, io.x, io.y)),
        Exec::SiLU => gated!("op-smooth-activation", io, do activation::silu_forward(io.x, io.y)),
        Exec::Hardswish => gated!("op-activation", io, do activation::hardswish_forward(io.x, io.y)),
        Exec::Hardsigmoid => gated!("op-activation", io, do activation::hardsigmoid_forward(io.x, io.y)),
        Exec::Softplus(p) => gated!("op-smooth-activation", io, do activation::softplus_forward(p, io.x, io.y)),
        Exec::Mish => gated!("op-smooth-activation", io, do activation::mish_forward(io.x, io.y)),
        Exec::ReLU6 => gated!("op-activation", io, do activation::relu6_forward(io.x, io.y)),
        Exec::PReLU(g) => gated!("op-activation", io, do activation::prelu::forward(g, io)),
    }
}

/// Runs node `i` backward for the `n` samples of the last forward pass.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_node<const CAP: usize>(
    gemm: &dyn Gemm,
    plan: &Plan<CAP>,
    i: usize,
    n: usize,
    training: bool,
    params: &[f32],
    grads: &mut [f32],
    state: &[f32],
    arena: &mut [f32],
) -> Result<()> {
    let node = &plan.nodes()[i];
    let t = (2 * plan.len() + 1 - i) as u16;
    let two = is_merge(node);
    let (pa, pb) = (node.inputs[0], if two { node.inputs[1] } else { INPUT });
    let same = two && pa == pb;
    let in_len = |p: u16| {
        n * if p == INPUT {
            plan.input_shape()
        } else {
            plan.nodes()[p as usize].out_shape
        }
        .numel()
    };
    // Gradient destinations: the producers' gradient buffers; the input-gradient scratch for
    // kernels that always write one; the backward scratch for a second use of the same tensor.
    let grad_range = |p: u16| -> Range<usize> {
        match (p == INPUT, node.joint_input_grad() || plan.has_input_grad()) {
            (true, true) => prefix(plan.input_grad_slot(), in_len(p)),
            (true, false) => 0..0,
            (false, _) => prefix(plan.nodes()[p as usize].grad, in_len(p)),
        }
    };
    let rgb = match (two, same) {
        (false, _) => 0..0,
        (true, true) => prefix(node.work_bwd, in_len(pb)),
        (true, false) => grad_range(pb),
    };
    let keeps_in = node.keeps_input();
    let [gy, gx, gx2, xa, xb, y, extra, work, pool_indices] = split(
        arena,
        [
            prefix(node.grad, n * node.out_shape.numel()),
            grad_range(pa),
            rgb,
            if keeps_in { producer_out(plan, pa, n) } else { 0..0 },
            if keeps_in && two && !same {
                producer_out(plan, pb, n)
            } else {
                0..0
            },
            if node.keeps_output() {
                prefix(node.out, n * node.out_shape.numel())
            } else {
                0..0
            },
            node.extra.range(),
            if same { 0..0 } else { node.work_bwd.range() },
            pool_slot(plan, node),
        ],
    )?;
    // A gradient buffer starts accumulating at its first writer's step; scratch always does.
    // The planned input gradient is zeroed once, before the backward pass.
    let fresh = |p: u16| match p {
        INPUT => !plan.has_input_grad(),
        _ => plan.nodes()[p as usize].grad.first == t,
    };
    if !gx.is_empty() && fresh(pa) {
        gx.fill(0.0);
    }
    if !gx2.is_empty() && (same || fresh(pb)) {
        gx2.fill(0.0);
    }
    let params = &params[node.param_offset..node.param_offset + node.param_len()];
    let (gw, gbias) = grads[node.param_offset..node.param_offset + node.param_len()].split_at_mut(node.weight_len);
    let mut io = Bwd {
        gemm,
        n,
        training,
        gy,
        gx,
        gx2,
        same,
        x: xa,
        x2: if same { xa } else { xb },
        y,
        w: &params[..node.weight_len],
        gw,
        gbias,
        extra,
        work,
        pool_indices,
        state: &state[node.state_offset..node.state_offset + node.state_len],
    };
    backward_exec(node.exec, &mut io);
    Ok(())
}

/// The backward pass of each kind of node.
fn backward_exec(exec: Exec, io: &mut Bwd<'_>) {
    match exec {
        Exec::Conv(g) => conv::backward(g, io),
        Exec::ConvTranspose(g) => conv_transpose::backward(g, io),
        Exec::MaxPool(g) => pool::backward_max(g, io),
        Exec::AvgPool(g) => pool::backward_avg(g, io),
        Exec::AdaptiveAvgPool(g) => pool::adaptive::backward_avg(g, io),
        Exec::AdaptiveMaxPool(g) => pool::adaptive::backward_max(g, io),
        Exec::MaxUnpool(g) => pool::unpool::backward(g, io),
        Exec::Pad2d(g) => pad::backward(g, io),
        Exec::ReLU => activation::backward_relu(io),
        Exec::LeakyReLU(s) => activation::backward_leaky_relu(s, io),
        Exec::Sigmoid => activation::backward_sigmoid(io),
        Exec::Tanh => activation::backward_tanh(io),
        Exec::Softmax(g) => softmax::backward(g, io),
        Exec::LogSoftmax(g) => softmax::backward_log(g, io),
        Exec::BatchNorm(g) => batchnorm::backward(g, io),
        Exec::Dropout(_) | Exec::ChannelDropout(..) => dropout::backward(io),
        Exec::ChannelShuffle(g) => shuffle::backward(g, io),
        Exec::Upsample(g) => upsample::backward(g, io),
        Exec::Linear(g) => linear::backward(g, io),
        Exec::Bilinear(g) => bilinear::backward(g, io),
        Exec::Add => merge::backward_add(io),
        Exec::Concat(g) => merge::backward_concat(g, io),
        Exec::Copy => reshape::backward(io),
        Exec::ELU(alpha) => {
            activation::backward_from_input(io, |x, gy, gx| activation::elu_backward_input(alpha, x, gy, gx))
        }
        Exec::GELU(a) => activation::backward_from_input(io, |x, gy, gx| activation::gelu_backward_input(a, x, gy, gx)),
        Exec::SiLU => activation::backward_from_input(io, activation::silu_backward_input),
        Exec::Hardswish => activation::backward_from_input(io, activation::hardswish_backward_input),
        Exec::Hardsigmoid => activation::backward_from_input(io, activation::hardsigmoid_backward_input),
        Exec::Softplus(p) => {
            activation::backward_from_input(io, |x, gy, gx| activation::softplus_backward_input(p, x, gy, gx))
        }
        Exec::Mish => activation::backward_from_input(io, activation::mish_backward_input),
        Exec::ReLU6 => activation::backward_from_input(io, activation::relu6_backward_input),
        Exec::PReLU(g) => activation::prelu::backward(g, io),
    }
}

/// Whether the node reads two inputs.
fn is_merge(node: &Node) -> bool {
    matches!(node.exec, Exec::Add | Exec::Concat(_) | Exec::Bilinear(_))
}

/// MaxUnpool: the arena range of its max pool's indices.
fn pool_slot<const CAP: usize>(plan: &Plan<CAP>, node: &Node) -> Range<usize> {
    match node.exec {
        Exec::MaxUnpool(g) => plan.nodes()[g.pool as usize].extra.range(),
        _ => 0..0,
    }
}

/// The first `len` floats of a slot, as an arena range.
pub(super) fn prefix(s: Slot, len: usize) -> Range<usize> {
    s.offset..s.offset + len.min(s.len)
}

/// Splits the arena into `K` disjoint mutable slices; empty ranges are allowed anywhere.
pub(super) fn split<const K: usize>(arena: &mut [f32], ranges: [Range<usize>; K]) -> Result<[&mut [f32]; K]> {
    let mut order = [0usize; K];
    for (k, o) in order.iter_mut().enumerate() {
        *o = k;
    }
    order.sort_unstable_by_key(|&k| ranges[k].start);
    let mut out: [&mut [f32]; K] = core::array::from_fn(|_| <&mut [f32]>::default());
    let mut rest: &mut [f32] = arena;
    let mut cursor = 0usize;
    for &k in &order {
        let r = &ranges[k];
        if r.is_empty() {
            continue;
        }
        if r.start < cursor || r.end - cursor > rest.len() {
            return Err(Error::Structure {
                what: "internal: arena slots overlap or exceed the arena",
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

/// The arena range of producer `p`'s output (the input copy for the network input).
fn producer_out<const CAP: usize>(plan: &Plan<CAP>, p: u16, n: usize) -> Range<usize> {
    if p == INPUT {
        prefix(plan.input_slot(), n * plan.input_shape().numel())
    } else {
        let node = &plan.nodes()[p as usize];
        prefix(node.out, n * node.out_shape.numel())
    }
}
