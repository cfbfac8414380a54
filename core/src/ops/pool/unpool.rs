//! Max unpooling (`nn.MaxUnpool1d/2d/3d`): the values of a max pool put back where the pool found
//! them, with the pool's indices.

use super::decode_index;
use crate::error::{Error, Result};
use crate::layer::MaxUnpool;
use crate::ops::io::{Bwd, Fwd};
use crate::plan::{At, Exec, Node};

/// Geometry of a max unpool over `[N, C, in_spatial] -> [N, C, out_spatial]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnpoolGeom {
    /// Channels.
    pub c: usize,
    /// Input (pooled) spatial size.
    pub in_spatial: usize,
    /// Output (unpooled) spatial size: the matching pool's input size.
    pub out_spatial: usize,
    /// The plan node of the matching max pool, whose `extra` slot holds the indices.
    pub pool: u16,
}

/// Max unpooling (`nn.MaxUnpool2d`, <https://pytorch.org/docs/stable/generated/torch.nn.MaxUnpool2d.html>):
/// puts every value back where its max pool found it.
///
/// - `x: [N, C, in_spatial]`: the pooled values;
/// - `indices: [N, C, in_spatial]`: the pool's indices ([`encode_index`](super::encode_index) encoding), each a flat
///   position in an output plane;
/// - `y: [N, C, out_spatial]`: zero, then `y[n, c, indices[n, c, i]] = x[n, c, i]`. When two
///   indices coincide the later one wins, as PyTorch's CPU kernel; an index `>= out_spatial` is
///   skipped (PyTorch raises an error).
pub fn max_unpool_forward(
    n: usize,
    c: usize,
    in_spatial: usize,
    out_spatial: usize,
    x: &[f32],
    indices: &[f32],
    y: &mut [f32],
) {
    debug_assert_eq!(x.len(), n * c * in_spatial);
    debug_assert_eq!(indices.len(), x.len());
    debug_assert_eq!(y.len(), n * c * out_spatial);
    y.fill(0.0);
    for p in 0..n * c {
        let yp = &mut y[p * out_spatial..(p + 1) * out_spatial];
        let range = p * in_spatial..(p + 1) * in_spatial;
        for (&i, &v) in indices[range.clone()].iter().zip(&x[range]) {
            if let Some(slot) = yp.get_mut(decode_index(i)) {
                *slot = v;
            }
        }
    }
}

/// Gradient of [`max_unpool_forward`] with respect to its input:
/// `gx[n, c, i] += gy[n, c, indices[n, c, i]]` (nothing for a skipped index).
///
/// - `indices: [N, C, in_spatial]`;
/// - `gy: [N, C, out_spatial]`;
/// - `gx: [N, C, in_spatial]`, accumulated.
///
/// With duplicate indices every duplicate receives the gradient, as PyTorch's autograd does
/// (its backward is a gather).
pub fn max_unpool_backward_input(
    n: usize,
    c: usize,
    in_spatial: usize,
    out_spatial: usize,
    indices: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    debug_assert_eq!(indices.len(), n * c * in_spatial);
    debug_assert_eq!(gy.len(), n * c * out_spatial);
    debug_assert_eq!(gx.len(), indices.len());
    for p in 0..n * c {
        let gyp = &gy[p * out_spatial..(p + 1) * out_spatial];
        let range = p * in_spatial..(p + 1) * in_spatial;
        for (&i, g) in indices[range.clone()].iter().zip(&mut gx[range]) {
            if let Some(&v) = gyp.get(decode_index(i)) {
                *g += v;
            }
        }
    }
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.MaxUnpool1d/2d/3d` (`dims` spatial dims) after the max pool `pool` (plan node
/// `pool_node`) whose indices it uses: the output is the pool's input shape, which must be a
/// size the unpool accepts, `(in - 1) * stride - 2 * padding + kernel` plus less than `stride`.
pub(crate) const fn plan(u: &MaxUnpool, dims: u8, at: At, node: &mut Node, pool: u16, pool_node: &Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, dims as usize + 1));
    if !pool_node.out_shape.const_eq(&s) {
        return Err(at.err(
            "input must have the shape of its MaxPool's output (elements)",
            pool_node.out_shape.numel(),
            s.numel(),
        ));
    }
    let ps = pool_node.in_shape.spatial3();
    let inp = s.spatial3();
    let mut d = 3 - dims as usize;
    while d < 3 {
        let base = (inp[d] - 1) * u.stride[d] + u.kernel_size[d];
        if base < 2 * u.padding[d] {
            return Err(at.err("padding larger than the unpooled size", base, 2 * u.padding[d]));
        }
        let def = base - 2 * u.padding[d];
        if ps[d] < def || ps[d] >= def + u.stride[d] {
            return Err(at.err(
                "the MaxPool's input size is not a valid output size for this MaxUnpool",
                def,
                ps[d],
            ));
        }
        d += 1;
    }
    node.out_shape = pool_node.in_shape;
    node.exec = Exec::MaxUnpool(UnpoolGeom {
        c: s.channels(),
        in_spatial: inp[0] * inp[1] * inp[2],
        out_spatial: ps[0] * ps[1] * ps[2],
        pool,
    });
    Ok(())
}

/// The error of a `MaxUnpool2d` with no unmatched `MaxPool2d(return_indices=True)` before it.
pub(crate) const NO_POOL: Error = Error::Structure {
    what: "MaxUnpool2d needs an earlier MaxPool2d with return_indices(true)",
};

/// The network's forward pass of a max-unpool node.
pub(crate) fn forward(g: UnpoolGeom, io: &mut Fwd<'_>) {
    let len = io.n * g.c * g.in_spatial;
    max_unpool_forward(
        io.n,
        g.c,
        g.in_spatial,
        g.out_spatial,
        io.x,
        &io.pool_indices[..len],
        io.y,
    );
}

/// The network's backward pass of a max-unpool node.
pub(crate) fn backward(g: UnpoolGeom, io: &mut Bwd<'_>) {
    if io.has_gx() {
        let len = io.n * g.c * g.in_spatial;
        max_unpool_backward_input(
            io.n,
            g.c,
            g.in_spatial,
            g.out_spatial,
            &io.pool_indices[..len],
            io.gy,
            io.gx,
        );
    }
}
