//! The tensors of a model file: what a plan's parameters and state are called and shaped as
//! in PyTorch's `state_dict`, and [`TensorInfo`], one entry of a file's tensor table.
//!
//! For each plan node ([`node_tensors`]), in the order of the plan's parameter and state
//! buffers:
//!
//! | layer | tensor | shape (PyTorch) |
//! |---|---|---|
//! | `Conv1d/2d/3d` | `weight`, `bias` | `[out, in / groups, k...]` (one `k` per spatial dim), `[out]` |
//! | `ConvTranspose1d/2d/3d` | `weight`, `bias` | `[in, out / groups, *kernel]`, `[out]` |
//! | `Linear` | `weight`, `bias` | `[out, in]`, `[out]` |
//! | `Bilinear` | `weight`, `bias` | `[out, in1, in2]`, `[out]` |
//! | `BatchNorm1d/2d/3d` | `weight`, `bias` (affine) | `[C]`, `[C]` |
//! | | `running_mean`, `running_var`, `num_batches_tracked` (state) | `[C]`, `[C]`, `[]` |

use super::error::{part, FileError};
use super::wire::Dims;
use crate::error::Result;
use crate::plan::{Exec, Node};

/// What a tensor of a file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// A learnable parameter (weight, bias): the plan's parameter buffer. Code 0.
    Parameter,
    /// Non-trainable state (BatchNorm running statistics): the plan's state buffer. Code 1.
    State,
    /// Optimizer state (momentum, Adam moments) of a checkpoint. Code 2.
    Optimizer,
}

impl Role {
    /// The role's code in a file.
    pub const fn code(self) -> u8 {
        match self {
            Role::Parameter => 0,
            Role::State => 1,
            Role::Optimizer => 2,
        }
    }
    /// The role of a code; `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Role> {
        match code {
            0 => Some(Role::Parameter),
            1 => Some(Role::State),
            2 => Some(Role::Optimizer),
            _ => None,
        }
    }
}

/// Element type code of `f32` (little-endian IEEE 754), the only dtype of format version 1.
pub const DTYPE_F32: u8 = 0;

/// One tensor of a file's table: its name, role, shape and bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorInfo<'a> {
    /// PyTorch's `state_dict` key (`"features.0.weight"`, `"optimizer.exp_avg"`).
    pub name: &'a str,
    /// What the tensor is for.
    pub role: Role,
    /// Element type code ([`DTYPE_F32`]).
    pub dtype: u8,
    /// The shape, as PyTorch's.
    pub shape: Dims,
    /// Offset of the data in bytes from the start of the data section.
    pub offset: usize,
    /// Number of elements.
    pub numel: usize,
    /// The data: `4 * numel` bytes, little-endian `f32`.
    pub bytes: &'a [u8],
}

impl<'a> TensorInfo<'a> {
    /// The shape's dims.
    pub fn dims(&self) -> &[u64] {
        self.shape.as_slice()
    }

    /// The data as `&[f32]` without copying.
    ///
    /// # Errors
    /// A [`FileError`] with part `"alignment"` if the bytes are not 4-byte aligned in memory or
    /// the target is big-endian; use [`TensorInfo::copy_to`] then.
    pub fn as_f32(&self) -> Result<&'a [f32]> {
        cast(self.bytes)
    }

    /// Copies the data into `out` (`numel` floats), on any alignment and byte order.
    ///
    /// # Errors
    /// [`crate::Error::BufferLength`] if `out` does not have `numel` floats.
    pub fn copy_to(&self, out: &mut [f32]) -> Result<()> {
        copy_floats(self.bytes, out, crate::Buffer::Output)
    }
}

/// `bytes` as `&[f32]`, zero-copy.
pub(crate) fn cast(bytes: &[u8]) -> Result<&[f32]> {
    if cfg!(target_endian = "big") {
        return Err(FileError::new(
            part::ALIGNMENT,
            "data is little-endian and this target is big-endian; copy it instead",
            0,
            1,
        )
        .into());
    }
    bytemuck::try_cast_slice(bytes).map_err(|_| {
        let addr = bytes.as_ptr() as usize;
        FileError::new(
            part::ALIGNMENT,
            "tensor data is not 4-byte aligned in memory; copy it instead",
            0,
            (addr % 4) as u64,
        )
        .into()
    })
}

/// Decodes little-endian `f32`s from `bytes` into `out`.
pub(crate) fn copy_floats(bytes: &[u8], out: &mut [f32], buffer: crate::Buffer) -> Result<()> {
    crate::error::check_len(buffer, bytes.len() / 4, out.len())?;
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(())
}

/// One tensor a plan node owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeTensor {
    /// The name after the layer path: `weight`, `running_var`, ...
    pub suffix: &'static str,
    pub role: Role,
    pub shape: Dims,
    /// Offset in floats in the plan's parameter or state buffer.
    pub offset: usize,
    pub numel: usize,
}

/// Calls `f` for each tensor of `node`: parameters (weight, bias), then state.
pub(crate) fn node_tensors(node: &Node, mut f: impl FnMut(NodeTensor) -> Result<()>) -> Result<()> {
    let d = |dims: &[usize]| {
        let mut a = [0u64; 6];
        for (x, &y) in a.iter_mut().zip(dims) {
            *x = y as u64;
        }
        Dims::new(&a[..dims.len().min(6)]).unwrap_or_default()
    };
    // The PyTorch shape of the weight, if the layer has one.
    let weight = match node.exec {
        Exec::Conv(g) => {
            let sd = node.in_shape.rank().saturating_sub(1).clamp(1, 3);
            let k = &g.kernel[3 - sd..];
            let mut dims = [g.c_out, g.c_in / g.groups.max(1), 1, 1, 1];
            dims[2..2 + sd].copy_from_slice(k);
            d(&dims[..2 + sd])
        }
        Exec::ConvTranspose(g) => {
            let sd = node.in_shape.rank().saturating_sub(1).clamp(1, 3);
            let mut dims = [g.c_in, g.c_out / g.groups.max(1), 1, 1, 1];
            dims[2..2 + sd].copy_from_slice(&g.kernel[3 - sd..]);
            d(&dims[..2 + sd])
        }
        Exec::Linear(g) => d(&[g.out_f, g.in_f]),
        Exec::Bilinear(g) => d(&[g.out, g.in1, g.in2]),
        _ => d(&[node.weight_len]),
    };
    // Fall back to a flat shape if the planner's length ever disagrees with the shape.
    let weight = if weight.numel() == Some(node.weight_len as u64) {
        weight
    } else {
        d(&[node.weight_len])
    };
    if node.weight_len > 0 {
        f(NodeTensor {
            suffix: "weight",
            role: Role::Parameter,
            shape: weight,
            offset: node.param_offset,
            numel: node.weight_len,
        })?;
    }
    if node.bias_len > 0 {
        let offset = node.param_offset + node.weight_len;
        f(NodeTensor {
            suffix: "bias",
            role: Role::Parameter,
            shape: d(&[node.bias_len]),
            offset,
            numel: node.bias_len,
        })?;
    }
    if node.state_len > 0 {
        let o = node.state_offset;
        match node.exec {
            Exec::BatchNorm(g) if node.state_len == 2 * g.c + 1 => {
                let c = g.c;
                f(NodeTensor {
                    suffix: "running_mean",
                    role: Role::State,
                    shape: d(&[c]),
                    offset: o,
                    numel: c,
                })?;
                f(NodeTensor {
                    suffix: "running_var",
                    role: Role::State,
                    shape: d(&[c]),
                    offset: o + c,
                    numel: c,
                })?;
                f(NodeTensor {
                    suffix: "num_batches_tracked",
                    role: Role::State,
                    shape: d(&[]),
                    offset: o + 2 * c,
                    numel: 1,
                })?;
            }
            _ => f(NodeTensor {
                suffix: "state",
                role: Role::State,
                shape: d(&[node.state_len]),
                offset: o,
                numel: node.state_len,
            })?,
        }
    }
    Ok(())
}

/// Places tensors in the data section: each role's tensors contiguous in table order, each
/// role's block starting at the next multiple of 64 bytes. Writer and reader share it, so
/// they agree on every offset.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Layout {
    /// End of the last tensor placed, in bytes from the start of the data section.
    pub cursor: usize,
    role: Option<u8>,
    /// Start (bytes) and length (floats) of each role's block.
    pub blocks: [(usize, usize); 3],
}

impl Layout {
    /// The offset of the next tensor of `role` with `numel` elements; `None` on overflow.
    /// Roles must come in order (the reader checks that first).
    pub fn place(&mut self, role: u8, numel: usize) -> Option<usize> {
        let r = role as usize;
        if r >= 3 {
            return None;
        }
        if self.role != Some(role) {
            self.cursor = super::wire::align(self.cursor)?;
            self.role = Some(role);
            self.blocks[r] = (self.cursor, 0);
        }
        let offset = self.cursor;
        self.cursor = offset.checked_add(numel.checked_mul(4)?)?;
        self.blocks[r].1 += numel;
        Some(offset)
    }
}
