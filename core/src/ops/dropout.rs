//! `nn.Dropout(p)` and `nn.Dropout1d/2d/3d(p)` in training mode: inverted dropout with a
//! saved mask, of single elements or of whole channels.
//!
//! Each element is zeroed with probability `p` and the survivors are scaled by `1 / (1 - p)`,
//! so the expected output equals the input and evaluation needs no rescaling (in eval mode
//! dropout is the identity and no kernel runs)
//! ([PyTorch docs](https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html)).
//!
//! The mask holds the factor itself (`0` or `1 / (1 - p)`), so backward is one multiply.
//! The random numbers come from [`crate::Rng`], not PyTorch's generator: the same seed
//! drops other elements than `torch.manual_seed` would, with the same distribution.

use super::io::{acc, Bwd, Fwd};
use crate::error::{Error, Result};
use crate::plan::{At, Exec, Node};
use crate::Rng;

/// Inverted dropout: `mask[i] = 0` with probability `p`, else `1 / (1 - p)`;
/// `y[i] = x[i] * mask[i]`. `p == 0` keeps everything (mask 1); `p == 1` zeroes everything.
///
/// Draws one [`Rng::next_f32`] per element, in order; element `i` is dropped when the draw is
/// below `p`.
///
/// - `p`: drop probability in `[0, 1]` (the planner checks the range).
/// - `rng`: the generator, advanced by `x.len()` draws.
/// - `x`: input `[*]`.
/// - `y`: output `[*]` (overwritten).
/// - `mask`: the factors `[*]` (overwritten), kept for [`dropout_backward_input`].
pub fn dropout_forward(p: f32, rng: &mut Rng, x: &[f32], y: &mut [f32], mask: &mut [f32]) {
    debug_assert!(x.len() == y.len() && y.len() == mask.len());
    let keep = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
    for ((y, m), &x) in y.iter_mut().zip(mask.iter_mut()).zip(x) {
        *m = if rng.next_f32() < p { 0.0 } else { keep };
        *y = x * *m;
    }
}

/// Backward of [`dropout_forward`]: `gx[i] += gy[i] * mask[i]`.
///
/// - `mask`: the factors saved by the forward pass `[*]`.
/// - `gy`: gradient with respect to the output `[*]`.
/// - `gx`: gradient with respect to the input `[*]` (accumulated).
pub fn dropout_backward_input(mask: &[f32], gy: &[f32], gx: &mut [f32]) {
    debug_assert!(mask.len() == gy.len() && gy.len() == gx.len());
    for ((gx, &gy), &m) in gx.iter_mut().zip(gy).zip(mask) {
        *gx += gy * m;
    }
}

/// Channel dropout (`nn.Dropout1d/2d/3d`,
/// <https://pytorch.org/docs/stable/generated/torch.nn.Dropout2d.html>): each channel plane of
/// `plane` elements is zeroed with probability `p`, else scaled by `1 / (1 - p)`.
///
/// Draws one [`Rng::next_f32`] per plane (`x.len() / plane` of them), in order.
///
/// - `x`: input `[N, C, *spatial]`, `plane = prod(spatial)`;
/// - `y`: output `[N, C, *spatial]` (overwritten);
/// - `mask`: the factor of every element `[N, C, *spatial]` (overwritten), for
///   [`dropout_backward_input`].
pub fn channel_dropout_forward(p: f32, plane: usize, rng: &mut Rng, x: &[f32], y: &mut [f32], mask: &mut [f32]) {
    debug_assert!(x.len() == y.len() && y.len() == mask.len() && plane > 0);
    let keep = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
    for ((y, m), x) in y.chunks_mut(plane).zip(mask.chunks_mut(plane)).zip(x.chunks(plane)) {
        let f = if rng.next_f32() < p { 0.0 } else { keep };
        m.fill(f);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x * f;
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.Dropout(p)`: the mask lives in `extra` (training).
pub(crate) const fn plan(p: f32, at: At, node: &mut Node) -> Result<()> {
    if p.is_nan() || p < 0.0 || p > 1.0 {
        return Err(Error::InvalidArgument {
            name: "p",
            expected: "dropout probability must be in [0, 1]",
        });
    }
    node.exec = Exec::Dropout(p);
    node.extra.len = crate::plan::batch_len(at.batch, node.in_shape.numel());
    Ok(())
}

/// Plans `nn.Dropout1d/2d/3d(p)` (`dims` spatial dims) over `[N, C, *spatial]`; the mask lives
/// in `extra` (training). PyTorch also accepts an unbatched input; torchlet's samples are
/// always batched.
pub(crate) const fn plan_channels(p: f32, dims: u8, at: At, node: &mut Node) -> Result<()> {
    ctry!(plan(p, at, node));
    let s = node.in_shape;
    ctry!(at.rank(&s, dims as usize + 1));
    node.exec = Exec::ChannelDropout(p, s.numel() / s.channels());
    Ok(())
}

/// The network's forward pass of a dropout node: a fresh mask in training, the identity in eval.
pub(crate) fn forward(p: f32, io: &mut Fwd<'_>) {
    if io.training {
        let len = io.y.len();
        dropout_forward(p, io.rng, io.x, io.y, &mut io.extra[..len]);
    } else {
        io.y.copy_from_slice(io.x);
    }
}

/// The network's forward pass of a channel-dropout node.
pub(crate) fn forward_channels(p: f32, plane: usize, io: &mut Fwd<'_>) {
    if io.training {
        let len = io.y.len();
        channel_dropout_forward(p, plane, io.rng, io.x, io.y, &mut io.extra[..len]);
    } else {
        io.y.copy_from_slice(io.x);
    }
}

/// The network's backward pass of a dropout or channel-dropout node.
pub(crate) fn backward(io: &mut Bwd<'_>) {
    if io.has_gx() {
        if io.training {
            dropout_backward_input(&io.extra[..io.gy.len()], io.gy, io.gx);
        } else {
            acc(io.gx, io.gy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_probabilities() {
        let x = [1.0, -2.0, 3.0, 4.0];
        let (mut y, mut mask) = ([9.0; 4], [9.0; 4]);
        dropout_forward(0.0, &mut Rng::new(1), &x, &mut y, &mut mask);
        assert_eq!((y, mask), (x, [1.0; 4]));
        dropout_forward(1.0, &mut Rng::new(1), &x, &mut y, &mut mask);
        assert_eq!((y, mask), ([0.0, -0.0, 0.0, 0.0], [0.0; 4]));
    }

    #[test]
    fn channel_masks_are_constant_per_plane() {
        let x = [1.0; 64];
        let (mut y, mut mask) = ([9.0; 64], [9.0; 64]);
        channel_dropout_forward(0.5, 4, &mut Rng::new(3), &x, &mut y, &mut mask);
        for m in mask.chunks(4) {
            assert!(m.iter().all(|&v| v == m[0]) && (m[0] == 0.0 || m[0] == 2.0), "{m:?}");
        }
        assert!(mask.contains(&0.0) && mask.contains(&2.0));
        assert_eq!(y, mask);
    }
}
