//! What a parsed [`ModelFile`] holds: its name, input shape, class names, tensor table,
//! training state, and zero-copy views (or copies) of its data blocks.

use super::error::part;
use super::reader::{ModelFile, Records};
use super::tensors::{cast, copy_floats, Role, TensorInfo};
use super::train::TrainState;
use super::wire::{TensorRecord, FLAG_STATE_DICT};
use crate::error::{Buffer, Result};
use crate::shape::Shape;

impl<'a> ModelFile<'a> {
    /// The format version of the file.
    pub fn version(&self) -> u16 {
        self.version
    }
    /// The CRC-32 of the file (as stored in its last 4 bytes).
    pub fn crc(&self) -> u32 {
        self.crc
    }
    /// Whether the file is a state dict (tensors only, no architecture).
    pub fn is_state_dict(&self) -> bool {
        self.flags & FLAG_STATE_DICT != 0
    }
    /// The model's name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// The shape of one input sample.
    pub fn input_shape(&self) -> Shape {
        self.input
    }
    /// Number of class names.
    pub fn class_count(&self) -> usize {
        self.classes as usize
    }
    /// Class name `i` (the label of output `i`), borrowed from the file.
    pub fn class_name(&self, i: usize) -> Option<&'a str> {
        self.class_names().nth(i)
    }
    /// The class names in order.
    pub fn class_names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Records {
            bytes: self.bytes,
            pos: self.classes_at,
            end: self.header_end,
        };
        (0..self.classes).map_while(move |_| r.str(part::CLASS_NAME, None).ok())
    }
    /// The number of [`Layer`](crate::layer::Layer) slots [`ModelFile::layers`] needs: one per layer record plus
    /// one per block.
    pub fn layer_count(&self) -> usize {
        self.layers as usize + self.blocks as usize
    }
    /// Number of blocks (containers) of the architecture.
    pub fn block_count(&self) -> usize {
        self.blocks as usize
    }
    /// Number of computing layers (plan nodes) of the architecture: a `CAP` that fits.
    pub fn node_count(&self) -> usize {
        self.nodes as usize
    }
    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.tensors as usize
    }
    /// The tensor table, in file order: parameters, state, optimizer state.
    pub fn tensors(&self) -> Tensors<'a> {
        Tensors {
            bytes: self.bytes,
            pos: self.tensors_at,
            end: self.header_end,
            data: self.data,
            left: self.tensors,
        }
    }
    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<TensorInfo<'a>> {
        self.tensors().find(|t| t.name == name)
    }
    /// The training state of a checkpoint.
    pub fn train_state(&self) -> Option<TrainState> {
        self.train
    }
    /// The run record: how the run that produced the model was configured (the writer's
    /// text; the `torchlet` CLI's is a JSON object), if the file has one (flags bit 2).
    pub fn run_record(&self) -> Option<&'a str> {
        self.run
    }

    fn region(&self, role: usize) -> &'a [u8] {
        let (start, floats) = self.regions[role];
        let a = self.data + start;
        self.bytes.get(a..a + 4 * floats).unwrap_or(&[])
    }
    /// Floats of parameters (the plan's `param_len`).
    pub fn param_len(&self) -> usize {
        self.regions[0].1
    }
    /// Floats of state (the plan's `state_len`).
    pub fn state_len(&self) -> usize {
        self.regions[1].1
    }
    /// Floats of optimizer state.
    pub fn optimizer_state_len(&self) -> usize {
        self.regions[2].1
    }
    /// All parameters, laid out as the plan's parameter buffer, without copying.
    ///
    /// # Errors
    /// A [`FileError`](super::FileError) with part `"alignment"` if the file's bytes are not 4-byte aligned in
    /// memory or the target is big-endian: use [`ModelFile::copy_params_into`] then.
    pub fn params(&self) -> Result<&'a [f32]> {
        cast(self.region(0))
    }
    /// The state (BatchNorm running statistics), laid out as the plan's state buffer.
    ///
    /// # Errors
    /// As [`ModelFile::params`].
    pub fn state(&self) -> Result<&'a [f32]> {
        cast(self.region(1))
    }
    /// The optimizer's state buffer (empty without one).
    ///
    /// # Errors
    /// As [`ModelFile::params`].
    pub fn optimizer_state(&self) -> Result<&'a [f32]> {
        cast(self.region(2))
    }
    /// Copies the parameters into `out` (`param_len` floats), on any alignment and byte order.
    ///
    /// # Errors
    /// [`Error::BufferLength`](crate::Error::BufferLength) if `out` has the wrong length.
    pub fn copy_params_into(&self, out: &mut [f32]) -> Result<()> {
        copy_floats(self.region(0), out, Buffer::Params)
    }
    /// Copies the state into `out` (`state_len` floats).
    ///
    /// # Errors
    /// [`Error::BufferLength`](crate::Error::BufferLength) if `out` has the wrong length.
    pub fn copy_state_into(&self, out: &mut [f32]) -> Result<()> {
        copy_floats(self.region(1), out, Buffer::State)
    }
    /// Copies the optimizer state into `out` (`optimizer_state_len` floats).
    ///
    /// # Errors
    /// [`Error::BufferLength`](crate::Error::BufferLength) if `out` has the wrong length.
    pub fn copy_optimizer_state_into(&self, out: &mut [f32]) -> Result<()> {
        copy_floats(self.region(2), out, Buffer::OptimizerState)
    }
}

/// The tensor table of a [`ModelFile`], in file order.
#[derive(Clone, Debug)]
pub struct Tensors<'a> {
    bytes: &'a [u8],
    /// Byte position of the next record in the file.
    pub(super) pos: usize,
    end: usize,
    data: usize,
    left: u32,
}

impl<'a> Iterator for Tensors<'a> {
    type Item = TensorInfo<'a>;

    fn next(&mut self) -> Option<TensorInfo<'a>> {
        if self.left == 0 {
            return None;
        }
        let mut r = Records {
            bytes: self.bytes,
            pos: self.pos,
            end: self.end,
        };
        let rec: TensorRecord<'a> = match r.tensor(None) {
            Ok(rec) => rec,
            Err(_) => {
                self.left = 0;
                return None;
            }
        };
        self.pos = r.pos;
        self.left -= 1;
        let offset = rec.offset as usize;
        let numel = rec.numel as usize;
        let a = self.data.saturating_add(offset);
        let bytes = self
            .bytes
            .get(a..a.saturating_add(numel.saturating_mul(4)))
            .unwrap_or(&[]);
        Some(TensorInfo {
            name: rec.name,
            role: Role::from_code(rec.role).unwrap_or(Role::Parameter),
            dtype: rec.dtype,
            shape: rec.shape,
            offset,
            numel,
            bytes,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}
