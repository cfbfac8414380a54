//! The buffers one plan node reads and writes, cut from the arena by [`crate::Network`].
//!
//! The network splits its arena, parameters and state into these structs once per node and
//! hands them to the node's op family ([`super::conv`], [`super::pool`], ...), whose
//! `forward`/`backward` glue calls the kernels. Lengths are those of the current batch (`n`
//! samples, at most the plan's batch), so a family never slices the arena itself.
//!
//! Empty slices mean "not planned for this node": `extra` is empty unless the family asked for
//! it, `gx` is empty when no gradient flows to the first input (it is the network input).

use crate::kernels::Gemm;
use crate::rng::Rng;

/// A node's non-trainable state (BatchNorm running statistics): writable, or read-only
/// (weights in flash, [`crate::Network::with_weights`]).
pub enum State<'a> {
    /// The state may be updated (training).
    Mut(&'a mut [f32]),
    /// Read-only state.
    Ref(&'a [f32]),
}

impl State<'_> {
    /// The state, read-only.
    pub fn get(&self) -> &[f32] {
        match self {
            State::Mut(s) => s,
            State::Ref(s) => s,
        }
    }
}

/// What a node's forward pass reads and writes.
pub struct Fwd<'a> {
    /// The node's index in the plan, for errors.
    pub layer: usize,
    /// PyTorch's class name of the node, for errors.
    pub op: &'static str,
    /// The matrix multiply of convolutions and linear layers.
    pub gemm: &'a dyn Gemm,
    /// Samples in this batch.
    pub n: usize,
    /// Training mode (BatchNorm's batch statistics, Dropout's masks).
    pub training: bool,
    /// The first input `[n, *in_shape]`.
    pub x: &'a [f32],
    /// The second input `[n, *in_shape2]` of a merge (empty otherwise).
    pub x2: &'a [f32],
    /// The weight (empty for layers without parameters).
    pub w: &'a [f32],
    /// The bias (empty without one).
    pub bias: &'a [f32],
    /// The output `[n, *out_shape]`, overwritten.
    pub y: &'a mut [f32],
    /// The node's `extra` slot (indices, saved statistics, dropout mask), whole.
    pub extra: &'a mut [f32],
    /// Forward scratch.
    pub work: &'a mut [f32],
    /// MaxUnpool: the indices saved by its max-pool (empty otherwise).
    pub pool_indices: &'a [f32],
    /// The network's dropout generator.
    pub rng: &'a mut Rng,
    /// The node's state.
    pub state: State<'a>,
}

/// What a node's backward pass reads and writes. Gradients accumulate (`+=`).
pub struct Bwd<'a> {
    /// The matrix multiply of convolutions and linear layers.
    pub gemm: &'a dyn Gemm,
    /// Samples in this batch.
    pub n: usize,
    /// Whether the forward pass ran in training mode.
    pub training: bool,
    /// Gradient with respect to the output `[n, *out_shape]`.
    pub gy: &'a [f32],
    /// Gradient with respect to the first input, or empty when none is needed.
    pub gx: &'a mut [f32],
    /// Gradient with respect to the second input of a merge (empty otherwise or when none is
    /// needed). When both inputs are the same tensor this is zeroed scratch the network adds
    /// into `gx` after the node ([`Bwd::same`]).
    pub gx2: &'a mut [f32],
    /// Whether both inputs of a merge are the same tensor.
    pub same: bool,
    /// The first input, kept for backward by families that need it (else empty).
    pub x: &'a [f32],
    /// The second input, kept by merges that need it (else empty).
    pub x2: &'a [f32],
    /// The node's output, kept by families that need it (else empty).
    pub y: &'a [f32],
    /// The weight.
    pub w: &'a [f32],
    /// The weight gradient, accumulated.
    pub gw: &'a mut [f32],
    /// The bias gradient, accumulated.
    pub gbias: &'a mut [f32],
    /// The node's `extra` slot, as forward left it.
    pub extra: &'a mut [f32],
    /// Backward scratch.
    pub work: &'a mut [f32],
    /// MaxUnpool: the indices saved by its max-pool.
    pub pool_indices: &'a [f32],
    /// The node's state (read-only in backward).
    pub state: &'a [f32],
}

impl Bwd<'_> {
    /// Whether a gradient with respect to the first input is wanted.
    pub fn has_gx(&self) -> bool {
        !self.gx.is_empty()
    }
}

/// `dst += src`.
pub(crate) fn acc(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}
