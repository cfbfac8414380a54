//! Channel shuffle (`nn.ChannelShuffle(groups)`, ShuffleNet): a fixed permutation of the
//! channels, forward and input gradient.
//!
//! PyTorch views the `C` channels as `[groups, C / groups]` and transposes that to
//! `[C / groups, groups]`: output channel `j · groups + i` is input channel `i · (C / groups) + j`
//! (<https://pytorch.org/docs/stable/generated/torch.nn.ChannelShuffle.html>). The backward is
//! the inverse permutation. Use it between grouped convolutions so that the groups mix.

use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::plan::{At, Exec, Node};

/// Geometry of a channel shuffle over `[N, C, *spatial]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShuffleGeom {
    /// Channels `C` (a multiple of `groups`).
    pub c: usize,
    /// Groups.
    pub groups: usize,
    /// Elements of one channel plane, `prod(spatial)`.
    pub plane: usize,
}

impl ShuffleGeom {
    /// The input channel that output channel `o` reads.
    pub const fn source(&self, o: usize) -> usize {
        let per = self.c / self.groups;
        (o % self.groups) * per + o / self.groups
    }
}

/// Channel shuffle forward: `y[n, j · groups + i] = x[n, i · (C / groups) + j]`.
///
/// - `x`: `[N, C, *spatial]`;
/// - `y`: `[N, C, *spatial]`, overwritten.
pub fn channel_shuffle_forward(g: &ShuffleGeom, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    let p = g.plane;
    for (k, yp) in y.chunks_mut(p).enumerate() {
        let (n, o) = (k / g.c, k % g.c);
        let src = (n * g.c + g.source(o)) * p;
        yp.copy_from_slice(&x[src..src + p]);
    }
}

/// Channel shuffle input gradient: `gx[n, i · (C / groups) + j] += gy[n, j · groups + i]`.
///
/// - `gy`: `[N, C, *spatial]`;
/// - `gx`: `[N, C, *spatial]`, accumulated.
pub fn channel_shuffle_backward_input(g: &ShuffleGeom, gy: &[f32], gx: &mut [f32]) {
    debug_assert_eq!(gy.len(), gx.len());
    let p = g.plane;
    for (k, gyp) in gy.chunks(p).enumerate() {
        let (n, o) = (k / g.c, k % g.c);
        let dst = (n * g.c + g.source(o)) * p;
        for (a, &b) in gx[dst..dst + p].iter_mut().zip(gyp) {
            *a += b;
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.ChannelShuffle(groups)`: PyTorch's checks (at least one spatial dim, `groups`
/// positive and dividing the channels); the output has the input's shape.
pub(crate) const fn plan(groups: usize, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    if s.rank() < 2 {
        return Err(at.err("input rank (channels + spatial dims) is at least", 2, s.rank()));
    }
    if groups == 0 || s.channels() % groups != 0 {
        return Err(at.err("groups must be positive and divide the channels", groups, s.channels()));
    }
    node.exec = Exec::ChannelShuffle(ShuffleGeom {
        c: s.channels(),
        groups,
        plane: s.numel() / s.channels(),
    });
    Ok(())
}

/// The network's forward pass of a channel-shuffle node.
pub(crate) fn forward(g: ShuffleGeom, io: &mut Fwd<'_>) {
    channel_shuffle_forward(&g, io.x, io.y);
}

/// The network's backward pass of a channel-shuffle node.
pub(crate) fn backward(g: ShuffleGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        channel_shuffle_backward_input(&g, io.gy, io.gx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_channels_in_three_groups() {
        let g = ShuffleGeom {
            c: 6,
            groups: 3,
            plane: 1,
        };
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut y = [9.0; 6];
        channel_shuffle_forward(&g, &x, &mut y);
        // torch.nn.ChannelShuffle(3)(torch.arange(6.).view(1, 6, 1)) = [0, 2, 4, 1, 3, 5]
        assert_eq!(y, [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        let mut gx = [1.0; 6];
        channel_shuffle_backward_input(&g, &y, &mut gx);
        assert_eq!(gx, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
}
