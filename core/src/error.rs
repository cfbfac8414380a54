//! The one error type of the core: small, `Copy`, and specific.
//!
//! Every fallible function in `torchlet` returns [`Result<T>`]. Errors carry what was expected
//! and what was found, and name the layer (by its index in the plan) or the buffer involved,
//! so a caller can print a useful message without the core ever allocating.
//!
//! Errors are only produced by validation: constructors ([`crate::Network::new`], the planner)
//! check lengths and shapes once; after that, running a model does not panic.

use core::fmt;

/// Which caller-owned buffer an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Buffer {
    /// The parameter buffer (`Plan::param_len` floats).
    Params,
    /// The gradient buffer (`Plan::param_len` floats, training plans only).
    Grads,
    /// The non-trainable state buffer: BatchNorm running statistics (`Plan::state_len`).
    State,
    /// The activation arena (`Plan::arena_len` floats).
    Arena,
    /// The network's input batch.
    Input,
    /// The target (labels or values) passed to a loss.
    Target,
    /// An output buffer passed by the caller.
    Output,
    /// A gradient buffer passed by the caller (for example to a loss or a backward kernel).
    Gradient,
    /// Optimizer state (momentum, Adam moments).
    OptimizerState,
    /// A class-weight vector passed to a loss.
    Weight,
    /// Scratch memory passed to a kernel (for example the int8 convolution's column buffer).
    Scratch,
}

/// Everything that can go wrong in the core.
///
/// Each variant's documentation doubles as its [`Display`](fmt::Display) text.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// A buffer has the wrong number of elements.
    BufferLength {
        /// Which buffer.
        buffer: Buffer,
        /// Number of elements required.
        expected: usize,
        /// Number of elements passed.
        found: usize,
    },
    /// A layer's configuration does not fit the shape of its input, or is invalid on its own.
    Shape {
        /// Index of the layer in the flattened plan.
        layer: usize,
        /// The operation, as PyTorch names it (`"Conv2d"`, `"Linear"`, ...).
        op: &'static str,
        /// What is wrong, as a sentence fragment (`"in_channels differs from the input's channels"`).
        what: &'static str,
        /// The value the layer required.
        expected: usize,
        /// The value that was found.
        found: usize,
    },
    /// A class index is not smaller than the number of classes.
    LabelOutOfRange {
        /// Position of the label in the target.
        index: usize,
        /// The label found.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A value that must be finite (a loss, an input, a hyper-parameter) is NaN or infinite.
    NonFinite {
        /// What was not finite (`"loss"`, `"input"`, `"lr"`, ...).
        what: &'static str,
    },
    /// A hyper-parameter or argument is outside its valid range.
    InvalidArgument {
        /// The argument, by its PyTorch name (`"momentum"`, `"label_smoothing"`, ...).
        name: &'static str,
        /// What it must satisfy (`"must be in [0, 1)"`).
        expected: &'static str,
    },
    /// The batch is larger than the batch size the plan was made for, or is empty.
    BatchSize {
        /// The plan's batch size (the largest batch that fits).
        max: usize,
        /// The batch size found (input length divided by the sample size).
        found: usize,
    },
    /// The model has more nodes or buffers than the plan's capacity `CAP`.
    Capacity {
        /// The capacity of the plan.
        capacity: usize,
        /// The number of slots needed (at least).
        needed: usize,
    },
    /// A buffer of the plan would be longer than [`crate::plan::MAX_BUFFER_LEN`] floats: the
    /// batch, the input or a layer is too large for any machine.
    TooLarge {
        /// The batch size planned for.
        batch: usize,
        /// The longest buffer a plan may hold, in floats.
        max: usize,
    },
    /// The model is empty or its structure is invalid (for example `MaxUnpool` without a `MaxPool`
    /// that returns indices).
    Structure {
        /// What is wrong.
        what: &'static str,
    },
    /// A layer has no int8 kernel (or its int8 form needs what the model does not give): keep
    /// the model in `f32` or drop the layer.
    Unsupported {
        /// Index of the layer in the flattened plan.
        layer: usize,
        /// The operation, as PyTorch names it.
        op: &'static str,
        /// What is missing, as a sentence fragment.
        what: &'static str,
    },
    /// Backward was called on a network planned for inference, or before a forward pass.
    NotReady {
        /// What is missing (`"a training plan"`, `"a forward pass"`).
        what: &'static str,
    },
    /// A layer's op family is not compiled into this build of the core (its `op-*` cargo
    /// feature is off; `all-ops`, the default, has them all). Refused by the planner.
    NotCompiled {
        /// The layer's index in the plan.
        layer: usize,
        /// The layer's op (PyTorch's class name).
        op: &'static str,
        /// The cargo feature of `torchlet` that compiles it in.
        feature: &'static str,
    },
    /// A model file is invalid or does not fit the plan: which part, what was expected and
    /// what was found.
    ModelFile(crate::model_file::FileError),
}

/// `core::result::Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl Buffer {
    /// What the buffer is, in words (its `Display` text).
    pub const fn name(&self) -> &'static str {
        match self {
            Buffer::Params => "parameter buffer",
            Buffer::Grads => "gradient buffer",
            Buffer::State => "state buffer",
            Buffer::Arena => "activation arena",
            Buffer::Input => "input",
            Buffer::Target => "target",
            Buffer::Output => "output buffer",
            Buffer::Gradient => "gradient",
            Buffer::OptimizerState => "optimizer state",
            Buffer::Weight => "class weights",
            Buffer::Scratch => "scratch buffer",
        }
    }
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BufferLength {
                buffer,
                expected,
                found,
            } => {
                write!(f, "{buffer}: expected {expected} elements, found {found}")
            }
            Error::Shape {
                layer,
                op,
                what,
                expected,
                found,
            } => {
                write!(f, "layer {layer} ({op}): {what}: expected {expected}, found {found}")
            }
            Error::LabelOutOfRange { index, label, classes } => write!(
                f,
                "label {label} at position {index} is out of range for {classes} classes"
            ),
            Error::NonFinite { what } => write!(f, "{what} is not finite (NaN or infinite)"),
            Error::InvalidArgument { name, expected } => write!(f, "{name} {expected}"),
            Error::BatchSize { max, found } => {
                write!(f, "batch size {found} is not in 1..={max} (the plan's batch size)")
            }
            Error::Capacity { capacity, needed } => write!(
                f,
                "the model needs at least {needed} plan slots, the plan has capacity {capacity}"
            ),
            Error::TooLarge { batch, max } => write!(
                f,
                "a buffer of the plan for batch size {batch} would hold more than {max} floats: \
                 the batch, the input or a layer is too large"
            ),
            Error::Structure { what } => write!(f, "invalid model structure: {what}"),
            Error::Unsupported { layer, op, what } => write!(
                f,
                "layer {layer} ({op}) cannot run in int8: {what}; keep the model in f32 or drop this layer"
            ),
            Error::NotReady { what } => write!(f, "this needs {what}"),
            Error::NotCompiled { layer, op, feature } => write!(
                f,
                "layer {layer} ({op}): not compiled into this build: enable the cargo feature `{feature}`"
            ),
            Error::ModelFile(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

impl Error {
    /// A fixed message for use in `const` contexts, where formatting is not available.
    ///
    /// The [`Plan`](crate::Plan) constructors panic with this text when a `const` plan is
    /// invalid, which turns the mistake into a compile error.
    pub const fn const_message(&self) -> &'static str {
        match self {
            Error::Shape { what, .. } => what,
            Error::Structure { what } => what,
            Error::InvalidArgument { expected, .. } => expected,
            Error::Capacity { .. } => "the plan's capacity CAP is smaller than the model's node count",
            Error::BufferLength { .. } => "a buffer has the wrong length",
            Error::LabelOutOfRange { .. } => "a label is out of range",
            Error::NonFinite { .. } => "a value is not finite",
            Error::BatchSize { .. } => "the batch size must be at least 1",
            Error::TooLarge { .. } => "a buffer of the plan is too large",
            Error::NotReady { what } => what,
            Error::NotCompiled { .. } => "the layer's op family is not compiled into this build",
            Error::Unsupported { what, .. } => what,
            Error::ModelFile(e) => e.what,
        }
    }
}

/// Checks a buffer length; used by every constructor and kernel entry point.
#[inline]
pub(crate) fn check_len(buffer: Buffer, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::BufferLength {
            buffer,
            expected,
            found,
        })
    }
}
