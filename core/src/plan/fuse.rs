//! Fused inference: `Conv -> [BatchNorm] -> [ReLU | ReLU6 | LeakyReLU] -> MaxPool | AvgPool`
//! without the pre-pool map, and element-wise layers in place.
//!
//! An inference plan never needs a convolution's full output when a pooling layer is its only
//! reader: the pool node computes the convolution a few rows at a time (the rows one pooled
//! output row covers, every output channel, with im2col and the matrix multiply over a column
//! chunk of at most [`crate::ops::conv::fused::FUSED_COL_BUDGET`] floats), applies the
//! activation, and pools them straight into its output. The convolution
//! and activation nodes stay in the plan (their parameters, names and file tensors are
//! unchanged) but are marked [`Fuse::Into`]: no buffer, no pass of their own. For the course's
//! CIFAR-10 network this takes the inference arena at batch 1 from 423,040 bytes to 61,056.
//!
//! Fused when, in an inference plan:
//! - the pool is 1-d or 2-d, without padding or dilation, and every window lies inside the
//!   convolution's output (PyTorch's `ceil_mode` windows that would hang over are not fused);
//! - a max pool's indices are not read by a `MaxUnpool`;
//! - the convolution is 1-d or 2-d, its padding (if any) is zeros, and its output (and the
//!   activation's) has no other reader.
//!
//! A `BatchNorm` between the convolution and the activation (eval mode, running statistics:
//! always so in an inference plan) is applied to the convolution's rows inside the same pass,
//! per channel, with the unfused layer's formula: `(v - mean) * (weight / sqrt(var + eps)) +
//! bias`. So vgg's and resnet's `Conv -> BatchNorm -> ReLU -> MaxPool` fuse too.
//!
//! **In place.** A `ReLU`, `ReLU6`, `LeakyReLU` or `BatchNorm` (running statistics) whose input
//! is another node's output with no other reader is marked [`Fuse::InPlace`]: it rewrites that
//! buffer instead of writing one of its own, so `Conv -> BatchNorm -> ReLU` needs one buffer,
//! not three. PyTorch allows the same (`nn.ReLU(inplace=True)`); the values are identical.
//!
//! Numerics: the same operations as the unfused path (bias, then the matrix multiply over
//! column chunks of another width), so outputs agree to rounding (`tests/tests/fused.rs` compares the two on random
//! models). Training plans are never fused: backward needs every activation.

use super::{Exec, Mode, Plan, INPUT};
use crate::ops::geom::{PaddingMode, PoolGeom};

/// How a node takes part in a fused computation.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fuse {
    /// Runs as planned.
    None,
    /// Computed inside a later node's pass: no output buffer, no pass of its own.
    Into,
    /// A pooling node that computes node `conv` (a convolution), the BatchNorm node `bn` (if
    /// not [`INPUT`]), the activation `act` and itself in one pass, reading the
    /// convolution's input.
    ConvPool {
        /// The convolution node.
        conv: u16,
        /// The BatchNorm node between the convolution and the activation, or
        /// [`INPUT`] for none.
        bn: u16,
        /// The activation between them.
        act: FusedAct,
    },
    /// An element-wise node (`ReLU`, `ReLU6`, `LeakyReLU`, `BatchNorm` with running
    /// statistics) that rewrites its producer's output buffer, which no other node reads: its
    /// output slot is the producer's (the same offset once placed).
    InPlace,
}

/// An activation applied inside a fused pass.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FusedAct {
    /// None.
    Identity,
    /// `nn.ReLU`.
    ReLU,
    /// `nn.ReLU6`.
    ReLU6,
    /// `nn.LeakyReLU(negative_slope)`.
    LeakyReLU(f32),
}

impl FusedAct {
    /// The activation of one value, as the unfused layer computes it.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            FusedAct::Identity => x,
            // `x < 0` is false for NaN, which passes through as in PyTorch.
            FusedAct::ReLU => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            FusedAct::ReLU6 => x.clamp(0.0, 6.0),
            FusedAct::LeakyReLU(s) => {
                if x > 0.0 {
                    x
                } else {
                    x * s
                }
            }
        }
    }
}

/// Whether the pooling geometry `g` reads only whole windows inside its input, along `H` and
/// `W`, with no depth (1-d or 2-d).
const fn pool_fusable(g: &PoolGeom) -> bool {
    const fn full(o: usize, k: usize, s: usize, i: usize) -> bool {
        o > 0 && (o - 1) * s + k <= i
    }
    g.input[0] == 1
        && g.kernel[0] == 1
        && g.pad[0] == 0
        && g.pad[1] == 0
        && g.pad[2] == 0
        && g.dilation[1] == 1
        && g.dilation[2] == 1
        && full(g.output[1], g.kernel[1], g.stride[1], g.input[1])
        && full(g.output[2], g.kernel[2], g.stride[2], g.input[2])
}

impl<const CAP: usize> Plan<'_, CAP> {
    /// How many node inputs read node `p`'s output.
    const fn readers(&self, p: u16) -> usize {
        let mut count = 0;
        let mut j = 0;
        while j < self.len {
            let n = &self.nodes[j];
            let two = matches!(n.exec, Exec::Add | Exec::Concat(_) | Exec::Bilinear(_));
            if n.inputs[0] == p {
                count += 1;
            }
            if two && n.inputs[1] == p {
                count += 1;
            }
            if let Exec::MaxUnpool(u) = n.exec {
                if u.pool == p {
                    count += 1;
                }
            }
            j += 1;
        }
        count
    }

    /// Marks every fusable `Conv -> [activation] -> pool` chain of an inference plan (see the
    /// [module docs](self)); called after the nodes are planned, before lifetimes.
    pub(super) const fn fuse(&mut self) {
        if !matches!(self.mode, Mode::Inference) {
            return;
        }
        let mut j = 0;
        while j < self.len {
            self.fuse_at(j);
            j += 1;
        }
        let mut j = 0;
        while j < self.len {
            self.in_place_at(j);
            j += 1;
        }
    }

    /// Marks node `j` [`Fuse::InPlace`] if it is element-wise and the sole reader of a
    /// buffer-owning producer.
    const fn in_place_at(&mut self, j: usize) {
        let n = &self.nodes[j];
        let elementwise = match n.exec {
            Exec::ReLU | Exec::ReLU6 | Exec::LeakyReLU(_) => true,
            Exec::BatchNorm(g) => g.track_running_stats,
            _ => false,
        };
        let p = n.inputs[0];
        if !elementwise || !matches!(n.fuse, Fuse::None) || p == INPUT || self.readers(p) != 1 {
            return;
        }
        if matches!(self.nodes[p as usize].fuse, Fuse::Into) {
            return;
        }
        let n = &mut self.nodes[j];
        n.fuse = Fuse::InPlace;
        n.out.len = 0;
        n.extra.len = 0;
        n.work_fwd.len = 0;
    }

    /// The node whose buffer holds node `p`'s output: `p`, or for an in-place node the first
    /// producer up its chain that owns a buffer.
    pub(super) const fn storage(&self, p: u16) -> u16 {
        let mut p = p;
        while p != INPUT && matches!(self.nodes[p as usize].fuse, Fuse::InPlace) {
            p = self.nodes[p as usize].inputs[0];
        }
        p
    }

    /// Gives every in-place node its storage's slot (offsets are placed by then).
    pub(super) const fn alias_in_place(&mut self) {
        let mut j = 0;
        while j < self.len {
            if matches!(self.nodes[j].fuse, Fuse::InPlace) {
                let s = self.storage(j as u16) as usize;
                self.nodes[j].out = self.nodes[s].out;
            }
            j += 1;
        }
    }

    /// Fuses the chain that ends in node `j`, if it is one.
    const fn fuse_at(&mut self, j: usize) {
        let g = match self.nodes[j].exec {
            Exec::MaxPool(g) | Exec::AvgPool(g) => g,
            _ => return,
        };
        if !pool_fusable(&g) || self.unpooled(j) {
            return;
        }
        let a = self.nodes[j].inputs[0];
        if a == INPUT || self.readers(a) != 1 {
            return;
        }
        let (act, b) = match self.nodes[a as usize].exec {
            Exec::ReLU => (FusedAct::ReLU, self.nodes[a as usize].inputs[0]),
            Exec::ReLU6 => (FusedAct::ReLU6, self.nodes[a as usize].inputs[0]),
            Exec::LeakyReLU(s) => (FusedAct::LeakyReLU(s), self.nodes[a as usize].inputs[0]),
            _ => (FusedAct::Identity, a),
        };
        if b == INPUT || (b != a && self.readers(b) != 1) {
            return;
        }
        // An optional BatchNorm with running statistics between the convolution and the activation.
        let (bn, c) = match self.nodes[b as usize].exec {
            Exec::BatchNorm(g) if g.track_running_stats => (b, self.nodes[b as usize].inputs[0]),
            _ => (INPUT, b),
        };
        if c == INPUT || (c != b && self.readers(c) != 1) {
            return;
        }
        let cg = match self.nodes[c as usize].exec {
            Exec::Conv(cg) => cg,
            _ => return,
        };
        let zero_pad = matches!(cg.mode, PaddingMode::Zeros) || (cg.pad[0] == 0 && cg.pad[1] == 0 && cg.pad[2] == 0);
        if cg.input[0] != 1 || cg.kernel[0] != 1 || !zero_pad {
            return;
        }
        let conv = &mut self.nodes[c as usize];
        conv.fuse = Fuse::Into;
        conv.out.len = 0;
        conv.work_fwd.len = 0;
        if a != c {
            self.nodes[a as usize].fuse = Fuse::Into;
            self.nodes[a as usize].out.len = 0;
        }
        if bn != INPUT {
            let n = &mut self.nodes[bn as usize];
            n.fuse = Fuse::Into;
            n.out.len = 0;
            n.extra.len = 0;
            n.work_fwd.len = 0;
        }
        let pool = &mut self.nodes[j];
        pool.fuse = Fuse::ConvPool { conv: c, bn, act };
        // A column-matrix chunk and the conv rows of one pooled row.
        pool.work_fwd.len = crate::ops::conv::fused::fused_workspace_len(&cg, g.kernel[1]);
        pool.extra.len = 0;
    }

    /// Whether a `MaxUnpool` reads the indices of max-pool node `j`.
    const fn unpooled(&self, j: usize) -> bool {
        let mut k = 0;
        while k < self.len {
            if let Exec::MaxUnpool(u) = self.nodes[k].exec {
                if u.pool as usize == j {
                    return true;
                }
            }
            k += 1;
        }
        false
    }
}
