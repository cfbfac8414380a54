//! Building a plan: flattening the layer tree into nodes and inferring every shape.
//!
//! One line per operation: each op family's file in [`crate::ops`] has the `const fn plan` that
//! checks its layer against the input shape (PyTorch's rules and messages) and fills the node's
//! geometry, output shape, parameter and state sizes and buffers, with the plan's batch size.

use super::*;
use crate::layer::{Kind, Layer, Merge, Op};
use crate::ops::family::gated;
use crate::ops::{
    activation, batchnorm, bilinear, conv, conv_transpose, dropout, linear, merge, pad, pool, reshape, shuffle,
    softmax, upsample,
};

impl<'l, const CAP: usize> Plan<'l, CAP> {
    // ---- building ----

    pub(super) const fn add_seq(
        &mut self,
        layers: &'l [Layer<'l>],
        mut src: u16,
        mut shape: Shape,
        unpool: &mut Unpool,
    ) -> Result<(u16, Shape)> {
        let mut i = 0;
        while i < layers.len() {
            let l = &layers[i];
            match l.kind {
                Kind::Op(op) => {
                    let (id, s) = ctry!(self.add_op(op, src, shape, unpool));
                    src = id;
                    shape = s;
                }
                Kind::Sequential(inner) => {
                    let (id, s) = ctry!(self.add_seq(inner, src, shape, unpool));
                    src = id;
                    shape = s;
                }
                Kind::Merge { merge, a, b } => {
                    let (ia, sa) = ctry!(self.add_seq(a, src, shape, unpool));
                    let (ib, sb) = ctry!(self.add_seq(b, src, shape, unpool));
                    let (id, s) = ctry!(self.add_merge(merge, ia, sa, ib, sb));
                    src = id;
                    shape = s;
                }
                Kind::Misuse(what) => return Err(Error::Structure { what }),
            }
            i += 1;
        }
        Ok((src, shape))
    }

    const fn push(&mut self, mut node: Node, src: u16, src2: u16) -> Result<(u16, Shape)> {
        let id = self.len;
        node.inputs = [src, src2];
        node.param_offset = self.param_len;
        // Saturating: a layer too large makes the plan TooLarge (checked once it is built).
        self.param_len = self
            .param_len
            .saturating_add(node.weight_len)
            .saturating_add(node.bias_len);
        node.state_offset = self.state_len;
        self.state_len = self.state_len.saturating_add(node.state_len);
        let b = self.batch;
        node.out.len = super::batch_len(b, node.out_shape.numel());
        self.nodes[id] = node;
        self.len += 1;
        Ok((id as u16, node.out_shape))
    }

    /// Plans a merge of the branch outputs `ia` (shape `sa`) and `ib` (`sb`).
    const fn add_merge(&mut self, merge: Merge, ia: u16, sa: Shape, ib: u16, sb: Shape) -> Result<(u16, Shape)> {
        let mut n = Node::EMPTY;
        n.in_shape = sa;
        n.in_shape2 = sb;
        n.op_name = match merge {
            Merge::Add => "Add",
            Merge::Concat => "Concat",
            Merge::Bilinear(_) => "Bilinear",
        };
        let at = self.at(n.op_name);
        ctry!(match merge {
            Merge::Add => gated!("op-merge", at, merge::plan_add(at, &mut n)),
            Merge::Concat => gated!("op-merge", at, merge::plan_concat(at, &mut n)),
            Merge::Bilinear(b) => gated!("op-bilinear", at, bilinear::plan(&b, at, &mut n, ia == ib)),
        });
        self.push(n, ia, ib)
    }

    /// Plans one computing layer on input `s` (from node `src`): its op family checks it and
    /// sizes its buffers. `unpool` pairs `MaxUnpool` layers with the max pools before them.
    const fn add_op(&mut self, op: Op, src: u16, s: Shape, unpool: &mut Unpool) -> Result<(u16, Shape)> {
        let mut n = Node::EMPTY;
        n.op_name = op.torch_name();
        n.in_shape = s;
        n.in_shape2 = s;
        n.out_shape = s;
        let at = self.at(n.op_name);
        ctry!(match op {
            Op::Conv(c) => gated!("op-conv", at, conv::plan(&c, at, &mut n)),
            Op::ConvTranspose(c) => gated!("op-conv-transpose", at, conv_transpose::plan(&c, 2, at, &mut n)),
            Op::MaxPool(p) => gated!(
                "op-pool",
                at,
                match pool::plan_max(&p, at, &mut n) {
                    Ok(()) if p.return_indices => unpool.push(at.layer as u16),
                    r => r,
                }
            ),
            Op::MaxUnpool(u) => gated!(
                "op-unpool",
                at,
                match unpool.pop() {
                    Ok(id) => pool::plan_unpool(&u, 2, at, &mut n, id, &self.nodes[id as usize]),
                    Err(e) => Err(e),
                }
            ),
            Op::AvgPool(p) => gated!("op-pool", at, pool::plan_avg(&p, at, &mut n)),
            Op::AdaptiveAvgPool(a) => gated!("op-adaptive-pool", at, pool::plan_adaptive(&a, false, at, &mut n)),
            Op::AdaptiveMaxPool(a) => gated!("op-adaptive-pool", at, pool::plan_adaptive(&a, true, at, &mut n)),
            Op::Pad2d(p) => gated!("op-pad", at, pad::plan2d(&p, at, &mut n)),
            Op::ReLU => gated!("op-activation", at, activation::plan(Exec::ReLU, &mut n)),
            Op::LeakyReLU(a) => gated!("op-activation", at, activation::plan(Exec::LeakyReLU(a), &mut n)),
            Op::Sigmoid => gated!("op-smooth-activation", at, activation::plan(Exec::Sigmoid, &mut n)),
            Op::Tanh => gated!("op-smooth-activation", at, activation::plan(Exec::Tanh, &mut n)),
            Op::Softmax(dim) => gated!("op-softmax", at, softmax::plan(dim, false, at, &mut n)),
            Op::LogSoftmax(dim) => gated!("op-softmax", at, softmax::plan(dim, true, at, &mut n)),
            Op::BatchNorm(bn) => gated!("op-batchnorm", at, batchnorm::plan(&bn, at, &mut n)),
            Op::Dropout(p) => gated!("op-dropout", at, dropout::plan(p, at, &mut n)),
            Op::Linear(l) => gated!("op-linear", at, linear::plan(&l, at, &mut n)),
            Op::Identity => reshape::plan_identity(&mut n),
            Op::Flatten => reshape::plan_flatten(&mut n),
            Op::Pad(p) => gated!("op-pad", at, pad::plan(&p, at, &mut n)),
            Op::ELU(alpha) => gated!("op-smooth-activation", at, activation::plan(Exec::ELU(alpha), &mut n)),
            Op::GELU(a) => gated!("op-smooth-activation", at, activation::plan(Exec::GELU(a), &mut n)),
            Op::SiLU => gated!("op-smooth-activation", at, activation::plan(Exec::SiLU, &mut n)),
            Op::Hardswish => gated!("op-activation", at, activation::plan(Exec::Hardswish, &mut n)),
            Op::Hardsigmoid => gated!("op-activation", at, activation::plan(Exec::Hardsigmoid, &mut n)),
            Op::Softplus(p) => gated!("op-smooth-activation", at, activation::plan(Exec::Softplus(p), &mut n)),
            Op::Mish => gated!("op-smooth-activation", at, activation::plan(Exec::Mish, &mut n)),
            Op::ReLU6 => gated!("op-activation", at, activation::plan(Exec::ReLU6, &mut n)),
            Op::PReLU(p) => gated!("op-activation", at, activation::prelu::plan(&p, at, &mut n)),
            Op::ConvTransposeNd(c, d) => gated!("op-conv-transpose", at, conv_transpose::plan(&c, d, at, &mut n)),
            Op::MaxUnpoolNd(u, d) => gated!(
                "op-unpool",
                at,
                match unpool.pop() {
                    Ok(id) => pool::plan_unpool(&u, d, at, &mut n, id, &self.nodes[id as usize]),
                    Err(e) => Err(e),
                }
            ),
            Op::ChannelDropout(p, d) => gated!("op-dropout", at, dropout::plan_channels(p, d, at, &mut n)),
            Op::ChannelShuffle(groups) => gated!("op-shuffle", at, shuffle::plan(groups, at, &mut n)),
            Op::Upsample(u) => gated!("op-upsample", at, upsample::plan(&u, at, &mut n)),
        });
        if n.out_shape.numel() == 0 {
            return Err(at.err("output would be empty", 1, 0));
        }
        self.push(n, src, INPUT)
    }

    /// The planning context of the next node.
    const fn at(&self, op: &'static str) -> At {
        At {
            layer: self.len,
            op,
            batch: self.batch,
        }
    }
}

/// The max pools with `return_indices(true)` not yet matched by a `MaxUnpool`, innermost last
/// (a stack, so encoder-decoder nets pair up naturally).
pub(super) struct Unpool {
    pools: [u16; 16],
    depth: usize,
}

impl Unpool {
    pub(super) const NEW: Unpool = Unpool {
        pools: [INPUT; 16],
        depth: 0,
    };

    const fn push(&mut self, pool: u16) -> Result<()> {
        if self.depth >= self.pools.len() {
            return Err(Error::Structure {
                what: "more than 16 nested MaxPool layers with return_indices",
            });
        }
        self.pools[self.depth] = pool;
        self.depth += 1;
        Ok(())
    }

    const fn pop(&mut self) -> Result<u16> {
        if self.depth == 0 {
            return Err(pool::NO_POOL);
        }
        self.depth -= 1;
        Ok(self.pools[self.depth])
    }
}
