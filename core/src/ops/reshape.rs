//! Layers that only copy: `nn.Identity` and `nn.Flatten` (start_dim 1). The arena keeps every
//! node's output in its own slot, so both are a copy forward and a gradient pass-through
//! backward; Flatten changes only the planned shape.

use super::io::{acc, Bwd, Fwd};
use crate::error::Result;
use crate::plan::{Exec, Node};
use crate::shape::Shape;

/// Plans `nn.Identity`.
pub(crate) const fn plan_identity(node: &mut Node) -> Result<()> {
    node.exec = Exec::Copy;
    Ok(())
}

/// Plans `nn.Flatten()`: `[C, ...]` becomes `[C * ...]`.
pub(crate) const fn plan_flatten(node: &mut Node) -> Result<()> {
    node.exec = Exec::Copy;
    node.out_shape = Shape::features(node.in_shape.numel());
    Ok(())
}

/// The network's forward pass of a copy node.
pub(crate) fn forward(io: &mut Fwd<'_>) {
    io.y.copy_from_slice(io.x);
}

/// The network's backward pass of a copy node.
pub(crate) fn backward(io: &mut Bwd<'_>) {
    if io.has_gx() {
        acc(io.gx, io.gy);
    }
}
