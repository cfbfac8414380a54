//! `nn.PReLU(num_parameters, init)`: a leaky ReLU whose negative slope is learned, one per
//! channel (dim 1 of the input) or one shared by all
//! ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.PReLU.html)).
//!
//! `y = x` where `x > 0`, else `w[c] x`. Backward reads the input, as PyTorch's:
//! `gx += gy` where `x > 0`, else `w[c] gy`; `gw[c] += sum gy x` over the elements of channel
//! `c` with `x <= 0` (batch and spatial positions; every element when the weight is shared).
//! At `x == 0` the input gradient is `w[c] gy` and the weight gradient gets `0`.
//!
//! Tensors are `[N, C, S]` flattened, `S` the product of the spatial dims (1 for `[N, C]`).

use crate::error::{Error, Result};
use crate::layer::PReLU;
use crate::ops::io::{Bwd, Fwd};
use crate::plan::{At, Exec, Node};

/// A PReLU layer over samples of `channels * inner` values.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PreluGeom {
    /// Channels `C` (dim 1 of the input).
    pub channels: usize,
    /// Values per channel and sample `S` (the spatial dims' product).
    pub inner: usize,
    /// Weights: 1 (shared) or `channels`.
    pub num_parameters: usize,
    /// The value PyTorch's constructor fills the weight with (`init`, default 0.25).
    pub init: f32,
}

/// The weight index of flat element `i` of `[N, C, S]`.
fn weight_index(channels: usize, inner: usize, shared: bool, i: usize) -> usize {
    if shared {
        0
    } else {
        (i / inner) % channels
    }
}

/// Forward: `y = x` where `x > 0`, else `w[c] x`.
///
/// - `channels`, `inner`: `C` and `S`.
/// - `w`: the weight `[C]`, or `[1]` shared.
/// - `x`: input `[N, C, S]`.
/// - `y`: output `[N, C, S]` (overwritten).
pub fn prelu_forward(channels: usize, inner: usize, w: &[f32], x: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() == y.len() && (w.len() == 1 || w.len() == channels));
    let shared = w.len() == 1;
    for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
        *y = if x > 0.0 {
            x
        } else {
            w[weight_index(channels, inner, shared, i)] * x
        };
    }
}

/// Backward with respect to the input: `gx += gy` where `x > 0`, else `w[c] gy`.
///
/// - `w`: the weight `[C]` or `[1]`.
/// - `x`: the forward input `[N, C, S]`.
/// - `gy`: gradient with respect to the output `[N, C, S]`.
/// - `gx`: gradient with respect to `x`, `[N, C, S]` (accumulated).
pub fn prelu_backward_input(channels: usize, inner: usize, w: &[f32], x: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(x.len() == gy.len() && gy.len() == gx.len());
    let shared = w.len() == 1;
    for (i, ((gx, &gy), &x)) in gx.iter_mut().zip(gy).zip(x).enumerate() {
        *gx += if x > 0.0 {
            gy
        } else {
            w[weight_index(channels, inner, shared, i)] * gy
        };
    }
}

/// Backward with respect to the weight: `gw[c] += sum gy x` over the elements of channel `c`
/// (all elements for a shared weight) where `x <= 0`.
///
/// - `x`: the forward input `[N, C, S]`.
/// - `gy`: gradient with respect to the output `[N, C, S]`.
/// - `gw`: weight gradient `[C]` or `[1]` (accumulated).
pub fn prelu_backward_weight(channels: usize, inner: usize, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    debug_assert!(x.len() == gy.len() && (gw.len() == 1 || gw.len() == channels));
    let shared = gw.len() == 1;
    for (i, (&gy, &x)) in gy.iter().zip(x).enumerate() {
        if x <= 0.0 {
            gw[weight_index(channels, inner, shared, i)] += gy * x;
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.PReLU(num_parameters, init)`: `num_parameters` must be 1 or the input's channels.
pub(crate) const fn plan(p: &PReLU, at: At, node: &mut Node) -> Result<()> {
    let c = node.in_shape.channels();
    if p.num_parameters == 0 {
        return Err(Error::InvalidArgument {
            name: "num_parameters",
            expected: "must be positive",
        });
    }
    if p.num_parameters != 1 && p.num_parameters != c {
        return Err(at.err(
            "num_parameters must be 1 or the input's channels (dim 1)",
            c,
            p.num_parameters,
        ));
    }
    node.exec = Exec::PReLU(PreluGeom {
        channels: c,
        inner: node.in_shape.numel() / c,
        num_parameters: p.num_parameters,
        init: p.init,
    });
    node.weight_len = p.num_parameters;
    Ok(())
}

/// The network's forward pass of a PReLU node.
pub(crate) fn forward(g: PreluGeom, io: &mut Fwd<'_>) {
    prelu_forward(g.channels, g.inner, io.w, io.x, io.y);
}

/// The network's backward pass of a PReLU node: input and weight gradients (reads its input).
pub(crate) fn backward(g: PreluGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        prelu_backward_input(g.channels, g.inner, io.w, io.x, io.gy, io.gx);
    }
    prelu_backward_weight(g.channels, g.inner, io.x, io.gy, io.gw);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_and_shared_weights() {
        // [N=1, C=2, S=2]
        let x = [-1.0, 2.0, -3.0, 0.0];
        let mut y = [0.0; 4];
        prelu_forward(2, 2, &[0.5, 0.1], &x, &mut y);
        assert_eq!(y, [-0.5, 2.0, -0.3, 0.0]);
        let mut gw = [0.0; 2];
        prelu_backward_weight(2, 2, &x, &[1.0; 4], &mut gw);
        assert_eq!(gw, [-1.0, -3.0]);
        let mut gw = [0.0];
        prelu_backward_weight(2, 2, &x, &[1.0; 4], &mut gw);
        assert_eq!(gw, [-4.0]);
        let mut gx = [0.0; 4];
        prelu_backward_input(2, 2, &[0.25], &x, &[2.0; 4], &mut gx);
        assert_eq!(gx, [0.5, 2.0, 0.5, 0.5]);
    }
}
