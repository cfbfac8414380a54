//! [`FileError`]: what is wrong with a model file, precisely enough to fix it.
//!
//! Every check of the reader ([`super::ModelFile::parse`], [`super::ModelFile::check_plan`])
//! fails with a `FileError` naming the part of the file (a field of the fixed header, a record,
//! a tensor), what was expected and what was found. The part names are the constants in
//! [`part`], so a caller (or a test) can match on them.

use core::fmt;

/// One failed check of a model file. Wrapped in [`crate::Error::ModelFile`].
///
/// `expected` and `found` are numbers (lengths, offsets, counts, codes). When they are equal
/// the check has no numbers to compare (a malformed record, a wrong name) and both hold the
/// byte offset in the file where the problem starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FileError {
    /// Which part of the file: one of the [`part`] constants (`"magic"`, `"crc"`, `"tensor shape"`, ...).
    pub part: &'static str,
    /// Which one of several (class name, block, layer record, tensor), counting from 0.
    pub index: Option<u32>,
    /// What is wrong, as a sentence fragment.
    pub what: &'static str,
    /// The value the reader required.
    pub expected: u64,
    /// The value in the file.
    pub found: u64,
}

/// The names of the parts of a model file that a [`FileError`] can be about.
pub mod part {
    /// The 8 magic bytes `TORCHLET` at offset 0.
    pub const MAGIC: &str = "magic";
    /// The length of the file (truncated files, wrong data length).
    pub const FILE_LENGTH: &str = "file length";
    /// The format version at offset 8.
    pub const VERSION: &str = "version";
    /// The flags at offset 10.
    pub const FLAGS: &str = "flags";
    /// The header length at offset 12.
    pub const HEADER_LENGTH: &str = "header length";
    /// The data offset at offset 16.
    pub const DATA_OFFSET: &str = "data offset";
    /// The data length at offset 20.
    pub const DATA_LENGTH: &str = "data length";
    /// The CRC-32 in the last 4 bytes.
    pub const CRC: &str = "crc";
    /// Padding bytes (between the header and the data, between data blocks), which must be 0.
    pub const PADDING: &str = "padding";
    /// The meta record (model name, input shape, counts).
    pub const META: &str = "meta record";
    /// The input shape in the meta record.
    pub const INPUT_SHAPE: &str = "input shape";
    /// A class name record (index: the class).
    pub const CLASS_NAME: &str = "class name";
    /// A block's layer count (index: the block).
    pub const BLOCK: &str = "block";
    /// A layer record (index: the layer record, counting over all blocks).
    pub const LAYER: &str = "layer";
    /// A layer's name (index: the layer record).
    pub const LAYER_NAME: &str = "layer name";
    /// A layer's reference to a block (index: the layer record).
    pub const LAYER_REFERENCE: &str = "layer reference";
    /// Containers nested deeper than [`super::super::MAX_DEPTH`].
    pub const NESTING: &str = "nesting";
    /// A tensor record that is not valid postcard (index: the tensor).
    pub const TENSOR: &str = "tensor";
    /// A tensor's name (index: the tensor).
    pub const TENSOR_NAME: &str = "tensor name";
    /// A tensor's role (index: the tensor).
    pub const TENSOR_ROLE: &str = "tensor role";
    /// A tensor's dtype (index: the tensor).
    pub const TENSOR_DTYPE: &str = "tensor dtype";
    /// A tensor's shape or element count (index: the tensor).
    pub const TENSOR_SHAPE: &str = "tensor shape";
    /// A tensor's data offset (index: the tensor).
    pub const TENSOR_OFFSET: &str = "tensor offset";
    /// The tensor count (against the plan).
    pub const TENSOR_COUNT: &str = "tensor count";
    /// The training-state record.
    pub const TRAINING_STATE: &str = "training state";
    /// The optimizer-state tensors (against the training-state record).
    pub const OPTIMIZER_STATE: &str = "optimizer state";
    /// The run record (flags bit 2).
    pub const RUN_RECORD: &str = "run record";
    /// The number of parameters (against the plan).
    pub const PARAMETER_COUNT: &str = "parameter count";
    /// The number of state values (against the plan).
    pub const STATE_COUNT: &str = "state count";
    /// The layers (against the plan).
    pub const ARCHITECTURE: &str = "architecture";
    /// The memory the tensor data is in (alignment, byte order) for a zero-copy view.
    pub const ALIGNMENT: &str = "alignment";
    /// The int8 record of an int8 model (flags bit 3): input quantisation, counts, the int8 data.
    pub const INT8: &str = "int8 record";
    /// An int8 node record.
    pub const INT8_NODE: &str = "int8 node record";
}

impl FileError {
    /// An error about `part`: `what`, with the expected and the found value.
    pub const fn new(part: &'static str, what: &'static str, expected: u64, found: u64) -> Self {
        FileError {
            part,
            index: None,
            what,
            expected,
            found,
        }
    }

    /// An error without numbers to compare, at byte `offset` of the file.
    pub const fn at_byte(part: &'static str, what: &'static str, offset: usize) -> Self {
        FileError {
            part,
            index: None,
            what,
            expected: offset as u64,
            found: offset as u64,
        }
    }

    /// The same error about item `index` of the part.
    pub const fn with_index(mut self, index: usize) -> Self {
        self.index = Some(if index > u32::MAX as usize {
            u32::MAX
        } else {
            index as u32
        });
        self
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("model file: ")?;
        f.write_str(self.part)?;
        if let Some(i) = self.index {
            write!(f, " {i}")?;
        }
        write!(f, ": {}", self.what)?;
        if self.expected == self.found {
            write!(f, " (at byte {})", self.found)
        } else if self.part == part::MAGIC || self.part == part::CRC {
            write!(f, ": expected {:#x}, found {:#x}", self.expected, self.found)
        } else {
            write!(f, ": expected {}, found {}", self.expected, self.found)
        }
    }
}

impl From<FileError> for crate::Error {
    fn from(e: FileError) -> Self {
        crate::Error::ModelFile(e)
    }
}
