//! Exit statuses of the firmware scenarios, and the reasons a model is refused at boot.
//!
//! Under QEMU with semihosting the status reaches the host as `qemu-system-arm`'s own exit
//! status (`SYS_EXIT_EXTENDED`), so CI and `torchlet emulate` tell the causes apart without
//! parsing text. The table is repeated in `docs/firmware.md`:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done: every input classified ([`EXIT_OK`]) |
//! | 1 | panic (`error: panicked at <file>:<line>`, `src/panic.rs`) |
//! | 3 | HardFault |
//! | 10 | [`BootError::NoModel`]: the model region holds no model file (erased, or never written) |
//! | 11 | [`BootError::Corrupt`]: the region's model file is invalid (CRC, record, length) |
//! | 12 | [`BootError::ArenaTooSmall`]: the model's plan needs more arena than the firmware has |
//! | 13 | [`BootError::TooManyLayers`]: more layers or plan nodes than the static storage holds |
//! | 14 | [`BootError::Unsupported`]: the model does not plan (a layer whose op family, an `op-*` feature, is not compiled in), or its input is not the frames' |
//! | 15 | [`BootError::Input`]: the input source failed or holds invalid test vectors |
//! | 16 | [`BootError::Inference`]: a forward pass failed (for example a non-finite input) |
//! | 20 | [`EXIT_LOSS_DID_NOT_FALL`]: on-device training ended with a loss not below the first |
//! | 124 | (QEMU runs) the run hit the host's `timeout` |

use core::fmt;

use torchlet::model_file::FileError;

use crate::out::Line;

/// The scenario finished and everything it checks held.
pub const EXIT_OK: u8 = 0;

/// The on-device training scenario ended with a loss not below its first loss.
pub const EXIT_LOSS_DID_NOT_FALL: u8 = 20;

/// Why the firmware refuses to run: a model that must not be used, or inputs that cannot be
/// read. Each variant has its own exit status ([`BootError::exit_code`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootError {
    /// The model region does not start with the model-file magic `TORCHLET` (erased flash, or
    /// the region was never written).
    NoModel,
    /// The region's model file is invalid: the core reader's error names the part.
    Corrupt(FileError),
    /// The model file claims more bytes than the region holds.
    RegionOverflow {
        /// Bytes the file's header claims.
        claimed: usize,
        /// Bytes in the region.
        region: usize,
    },
    /// The model's plan needs a larger activation arena than the firmware's static one.
    ArenaTooSmall {
        /// Floats the model's plan needs.
        needed: usize,
        /// Floats in the static arena.
        available: usize,
    },
    /// The model has more layers or plan nodes than the firmware's static storage holds.
    TooManyLayers {
        /// Layers or nodes needed.
        needed: usize,
        /// Layers or nodes the firmware holds.
        available: usize,
    },
    /// The model does not plan, or its input does not match the frames of the source.
    Unsupported(torchlet::Error),
    /// The input source failed, or its frames do not fit the model.
    Input(&'static str),
    /// A forward pass failed.
    Inference(torchlet::Error),
}

impl BootError {
    /// The exit status for this error (see the [module docs](self)).
    pub const fn exit_code(&self) -> u8 {
        match self {
            BootError::NoModel => 10,
            BootError::Corrupt(_) | BootError::RegionOverflow { .. } => 11,
            BootError::ArenaTooSmall { .. } => 12,
            BootError::TooManyLayers { .. } => 13,
            BootError::Unsupported(_) => 14,
            BootError::Input(_) => 15,
            BootError::Inference(_) => 16,
        }
    }
}

/// The text `classify` prints ([`crate::report::boot_error`]), without `core::fmt` there.
impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = Line::new();
        crate::report::boot_error(&mut l, self);
        f.write_str(l.as_str())?;
        if l.is_cut() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl From<FileError> for BootError {
    fn from(e: FileError) -> Self {
        BootError::Corrupt(e)
    }
}
