//! The error type of `torchlet-gpu`: every way choosing an adapter, building a network on it or
//! running it can fail.
//!
//! wgpu reports validation errors, out-of-memory and a lost device through callbacks, and by
//! default panics on them. [`crate::Device`] installs its own handlers instead, keeps the first
//! error, and every fallible call of this crate checks it after its work is submitted, so these
//! arrive as [`Error::Wgpu`] or [`Error::DeviceLost`] from the call that met them.

use core::fmt;

/// What wgpu reported (the class of a [`Error::Wgpu`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgpuErrorKind {
    /// A validation error: a bug in this crate or a limit of the adapter that was not checked.
    Validation,
    /// The device ran out of memory.
    OutOfMemory,
    /// An internal error of the driver or of wgpu.
    Internal,
}

impl fmt::Display for WgpuErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WgpuErrorKind::Validation => "validation error",
            WgpuErrorKind::OutOfMemory => "out of GPU memory",
            WgpuErrorKind::Internal => "internal error",
        })
    }
}

/// Everything that can go wrong in `torchlet-gpu`. Each variant's documentation says when it
/// happens; [`Display`](fmt::Display) gives a one-line message naming what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// No adapter of the requested kind exists (`wanted`); `found` lists the adapters wgpu saw
    /// (name, backend, type), or says that it saw none.
    NoAdapter {
        /// What was asked for (`"a hardware GPU"`, `"any GPU adapter"`).
        wanted: &'static str,
        /// The adapters wgpu enumerated, for the message.
        found: String,
    },
    /// The adapter exists but refused to create a device.
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// A `--device` value other than `cpu`, `gpu` or `auto`.
    UnknownDevice {
        /// The value given.
        value: String,
    },
    /// The plan holds a layer (or the call asks for a configuration) this backend cannot run yet.
    Unsupported {
        /// Index of the layer in the plan (`usize::MAX`: not a layer, for example a loss).
        layer: usize,
        /// The operation, as PyTorch names it (`"BatchNorm2d"`, `"CrossEntropyLoss"`).
        op: &'static str,
        /// What is not supported.
        what: &'static str,
    },
    /// A buffer would exceed a limit of the adapter.
    TooLarge {
        /// Which buffer (`"parameters"`, `"layer 3 output"`, ...).
        buffer: String,
        /// Bytes it needs.
        bytes: u64,
        /// The adapter's limit in bytes.
        limit: u64,
    },
    /// An error of the core's kind: wrong buffer lengths, labels out of range, a non-finite
    /// input or loss, an invalid hyper-parameter, a plan that cannot train.
    Core(torchlet::Error),
    /// wgpu reported an error while this crate was `context` (`"building the network"`, ...).
    Wgpu {
        /// What this crate was doing.
        context: &'static str,
        /// The class of error.
        kind: WgpuErrorKind,
        /// wgpu's message.
        message: String,
    },
    /// The device was lost (driver reset, GPU removed, timeout); nothing more can run on it.
    DeviceLost {
        /// wgpu's reason and message.
        message: String,
    },
    /// Reading a result back from the GPU failed.
    Readback {
        /// wgpu's message.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter { wanted, found } => write!(f, "no {wanted} found by wgpu; adapters seen: {found}"),
            Error::RequestDevice { adapter, message } => {
                write!(f, "GPU adapter {adapter:?} refused to create a device: {message}")
            }
            Error::UnknownDevice { value } => {
                write!(f, "--device: expected cpu, gpu or auto, found {value:?}")
            }
            Error::Unsupported { layer, op, what } => {
                if *layer == usize::MAX {
                    write!(f, "{op}: not supported on the GPU yet: {what}")
                } else {
                    write!(f, "layer {layer} ({op}): not supported on the GPU yet: {what}")
                }
            }
            Error::TooLarge { buffer, bytes, limit } => write!(
                f,
                "GPU buffer {buffer} needs {bytes} bytes, more than the adapter's limit of {limit} bytes (a smaller batch needs less)"
            ),
            Error::Core(e) => write!(f, "{e}"),
            Error::Wgpu { context, kind, message } => write!(f, "GPU {kind} while {context}: {message}"),
            Error::DeviceLost { message } => write!(f, "the GPU device was lost: {message}"),
            Error::Readback { message } => write!(f, "reading results back from the GPU failed: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<torchlet::Error> for Error {
    fn from(e: torchlet::Error) -> Self {
        Error::Core(e)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
