//! Multiply-accumulates: the arithmetic a forward pass costs, for reports (`torchlet inspect`,
//! the firmware's instructions per MAC).
//!
//! The count is the convention of PyTorch's profilers (thop, ptflops): the weighted layers'
//! multiply-accumulates per sample, `Conv` `C_out · C_in/groups · k · output positions`,
//! `ConvTranspose` the same over input positions, `Linear` `rows · in · out`, `Bilinear`
//! `rows · out · in1 · in2`. Activations, pooling, normalisation and copies count 0: they are a
//! few operations per element, not a product of two dimensions.

use super::{Exec, Node, Plan};

impl Node {
    /// Multiply-accumulates of this node's forward pass for one sample: PyTorch's profilers'
    /// count (`Conv`, `ConvTranspose`, `Linear`, `Bilinear`; every other layer counts 0).
    pub const fn macs(&self) -> u64 {
        match self.exec {
            Exec::Conv(g) => {
                let positions = g.output[0] * g.output[1] * g.output[2];
                (g.weight_len() as u64).saturating_mul(positions as u64)
            }
            Exec::ConvTranspose(g) => {
                let positions = g.input[0] * g.input[1] * g.input[2];
                (g.weight_len() as u64).saturating_mul(positions as u64)
            }
            Exec::Linear(g) => (g.rows as u64)
                .saturating_mul(g.in_f as u64)
                .saturating_mul(g.out_f as u64),
            Exec::Bilinear(g) => (g.rows as u64)
                .saturating_mul(g.out as u64)
                .saturating_mul(g.in1 as u64)
                .saturating_mul(g.in2 as u64),
            _ => 0,
        }
    }
}

impl<const CAP: usize> Plan<'_, CAP> {
    /// Multiply-accumulates of one sample's forward pass: the sum of [`Node::macs`].
    pub const fn macs(&self) -> u64 {
        let mut total = 0u64;
        let mut i = 0;
        while i < self.len {
            total = total.saturating_add(self.nodes[i].macs());
            i += 1;
        }
        total
    }
}
