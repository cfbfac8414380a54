//! The text of the firmware's errors and of `classify`'s lines, written with [`out::Line`]
//! (no `core::fmt`, see [`crate::out`]); with the `defmt` feature the lines are defmt frames.
//!
//! Error texts are the core's `Display` texts (`torchlet::Error`, `FileError`), written field
//! by field: `torchlet emulate` and the tests read them from the firmware's stdout.

use torchlet::model_file::{part, FileError};
use torchlet::Error;

use crate::out::Line;
use crate::BootError;

/// Writes `e` as its `Display` text.
pub fn core_error(l: &mut Line, e: &Error) {
    match *e {
        Error::BufferLength {
            buffer,
            expected,
            found,
        } => {
            _ = l
                .str(buffer.name())
                .str(": expected ")
                .usize(expected)
                .str(" elements, found ")
                .usize(found)
        }
        Error::Shape {
            layer,
            op,
            what,
            expected,
            found,
        } => {
            _ = l
                .str("layer ")
                .usize(layer)
                .str(" (")
                .str(op)
                .str("): ")
                .str(what)
                .str(": expected ")
                .usize(expected)
                .str(", found ")
                .usize(found)
        }
        Error::LabelOutOfRange { index, label, classes } => {
            _ = l
                .str("label ")
                .usize(label)
                .str(" at position ")
                .usize(index)
                .str(" is out of range for ")
                .usize(classes)
                .str(" classes")
        }
        Error::NonFinite { what } => _ = l.str(what).str(" is not finite (NaN or infinite)"),
        Error::InvalidArgument { name, expected } => _ = l.str(name).str(" ").str(expected),
        Error::BatchSize { max, found } => {
            _ = l
                .str("batch size ")
                .usize(found)
                .str(" is not in 1..=")
                .usize(max)
                .str(" (the plan's batch size)")
        }
        Error::Capacity { capacity, needed } => {
            _ = l
                .str("the model needs at least ")
                .usize(needed)
                .str(" plan slots, the plan has capacity ")
                .usize(capacity)
        }
        Error::TooLarge { batch, max } => {
            _ = l
                .str("a buffer of the plan for batch size ")
                .usize(batch)
                .str(" would hold more than ")
                .usize(max)
                .str(" floats: the batch, the input or a layer is too large")
        }
        Error::Structure { what } => _ = l.str("invalid model structure: ").str(what),
        Error::NotReady { what } => _ = l.str("this needs ").str(what),
        Error::Unsupported { layer, op, what } => {
            _ = l
                .str("layer ")
                .usize(layer)
                .str(" (")
                .str(op)
                .str(") cannot run in int8: ")
                .str(what)
                .str("; keep the model in f32 or drop this layer")
        }
        Error::NotCompiled { layer, op, feature } => {
            _ = l
                .str("layer ")
                .usize(layer)
                .str(" (")
                .str(op)
                .str("): not compiled into this build: enable the cargo feature `")
                .str(feature)
                .str("`")
        }
        Error::ModelFile(f) => file_error(l, &f),
    }
}

/// Writes `e` as its `Display` text.
pub fn file_error(l: &mut Line, e: &FileError) {
    l.str("model file: ").str(e.part);
    if let Some(i) = e.index {
        l.str(" ").u64(u64::from(i));
    }
    l.str(": ").str(e.what);
    if e.expected == e.found {
        l.str(" (at byte ").u64(e.found).str(")");
    } else if e.part == part::MAGIC || e.part == part::CRC {
        l.str(": expected ").hex(e.expected).str(", found ").hex(e.found);
    } else {
        l.str(": expected ").u64(e.expected).str(", found ").u64(e.found);
    }
}

/// Writes `e` as its `Display` text (see [`BootError`]).
pub fn boot_error(l: &mut Line, e: &BootError) {
    match e {
        BootError::NoModel => {
            _ = l.str(
                "model region: no model file (the region does not start with TORCHLET): write one with \
             `torchlet export --target firmware`",
            )
        }
        BootError::Corrupt(f) => {
            l.str("model region: invalid model file: ");
            file_error(l, f);
        }
        BootError::RegionOverflow { claimed, region } => {
            _ = l
                .str("model region: invalid model file: its header claims ")
                .usize(*claimed)
                .str(" bytes, the region holds ")
                .usize(*region)
        }
        BootError::ArenaTooSmall { needed, available } => {
            _ = l
                .str("model too large: its plan needs an arena of ")
                .usize(needed.saturating_mul(4))
                .str(" bytes, the firmware's static arena has ")
                .usize(available.saturating_mul(4))
                .str(" bytes")
        }
        BootError::TooManyLayers { needed, available } => {
            _ = l
                .str("model too large: ")
                .usize(*needed)
                .str(" layers or plan nodes, the firmware holds ")
                .usize(*available)
        }
        BootError::Unsupported(c) => {
            l.str("model not supported by this firmware: ");
            core_error(l, c);
        }
        BootError::Input(what) => _ = l.str("input source: ").str(what),
        BootError::Inference(c) => {
            l.str("inference failed: ");
            core_error(l, c);
        }
    }
}

/// Logs the refusal `e` (`error: <text> (exit <status>)`).
pub fn refused(e: &BootError) {
    #[cfg(feature = "defmt")]
    defmt::error!("{} (exit {})", e, e.exit_code());
    #[cfg(not(feature = "defmt"))]
    {
        let mut l = Line::new();
        l.str("error: ");
        boot_error(&mut l, e);
        l.str(" (exit ").u64(u64::from(e.exit_code())).str(")");
        crate::out::print(&l);
    }
}

/// What `classify` says about the model it validated.
pub struct ModelInfo<'a> {
    /// The model's name.
    pub name: &'a str,
    /// The file's CRC-32.
    pub crc: u32,
    /// Parameters.
    pub params: usize,
    /// Classes.
    pub classes: usize,
    /// Arena bytes the plan uses.
    pub arena: usize,
    /// Bytes of the static arena.
    pub arena_available: usize,
}

/// Logs `model <name> ok: crc32 <crc>, <p> parameters, <c> classes, arena <a> of <b> bytes`.
pub fn model_ok(m: &ModelInfo<'_>) {
    #[cfg(feature = "defmt")]
    defmt::info!(
        "model {} ok: crc32 {}, {} parameters, {} classes, arena {} of {} bytes",
        m.name,
        m.crc,
        m.params,
        m.classes,
        m.arena,
        m.arena_available
    );
    #[cfg(not(feature = "defmt"))]
    crate::out::print(
        Line::new()
            .str("model ")
            .str(m.name)
            .str(" ok: crc32 ")
            .u64(u64::from(m.crc))
            .str(", ")
            .usize(m.params)
            .str(" parameters, ")
            .usize(m.classes)
            .str(" classes, arena ")
            .usize(m.arena)
            .str(" of ")
            .usize(m.arena_available)
            .str(" bytes"),
    );
}

/// Logs `pred <index> <class> <score> <label or -> <cycles>`, the score exactly as `0x` and
/// its 8 hex digits of bits ([`Line::f32_bits`]).
pub fn prediction(index: usize, class: usize, score: f32, label: Option<u32>, cycles: u32) {
    #[cfg(feature = "defmt")]
    match label {
        Some(l) => defmt::info!("pred {} {} {} {} {}", index, class, score, l, cycles),
        None => defmt::info!("pred {} {} {} - {}", index, class, score, cycles),
    }
    #[cfg(not(feature = "defmt"))]
    {
        let mut l = Line::new();
        l.str("pred ")
            .usize(index)
            .str(" ")
            .usize(class)
            .str(" ")
            .f32_bits(score)
            .str(" ");
        match label {
            Some(c) => l.u64(u64::from(c)),
            None => l.str("-"),
        };
        l.str(" ").u64(u64::from(cycles));
        crate::out::print(&l);
    }
}

/// Logs `done <count> <correct>`.
pub fn done(count: usize, correct: usize) {
    #[cfg(feature = "defmt")]
    defmt::info!("done {} {}", count, correct);
    #[cfg(not(feature = "defmt"))]
    crate::out::print(Line::new().str("done ").usize(count).str(" ").usize(correct));
}

/// Logs `error: HardFault at pc=0x<pc>`.
pub fn hard_fault(pc: u32) {
    #[cfg(feature = "defmt")]
    defmt::error!("HardFault at pc={=u32:#x}", pc);
    #[cfg(not(feature = "defmt"))]
    crate::out::print(Line::new().str("error: HardFault at pc=").hex(u64::from(pc)));
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use torchlet::error::Buffer;

    use super::*;

    fn text(f: impl FnOnce(&mut Line)) -> std::string::String {
        let mut l = Line::new();
        f(&mut l);
        l.as_str().to_string()
    }

    #[test]
    fn error_texts_are_the_cores_display_texts() {
        let errors = [
            Error::BufferLength {
                buffer: Buffer::Arena,
                expected: 3,
                found: 4,
            },
            Error::Shape {
                layer: 2,
                op: "Conv2d",
                what: "input channels",
                expected: 3,
                found: 1,
            },
            Error::NonFinite { what: "the input" },
            Error::Capacity { capacity: 8, needed: 9 },
            Error::Structure { what: "no layers" },
            Error::Unsupported {
                layer: 4,
                op: "Sigmoid",
                what: "no int8 kernel",
            },
            Error::NotCompiled {
                layer: 1,
                op: "ConvTranspose2d",
                feature: "op-conv-transpose",
            },
            Error::ModelFile(FileError::new(part::CRC, "differs", 0xab, 0xcd).with_index(3)),
            Error::ModelFile(FileError::new(part::BLOCK, "too many", 4, 5)),
            Error::ModelFile(FileError::at_byte(part::LAYER, "unknown kind", 77)),
        ];
        for e in errors {
            assert_eq!(text(|l| core_error(l, &e)), e.to_string());
        }
    }

    #[test]
    fn boot_error_texts() {
        let e = BootError::ArenaTooSmall {
            needed: 10,
            available: 5,
        };
        assert_eq!(
            text(|l| boot_error(l, &e)),
            "model too large: its plan needs an arena of 40 bytes, the firmware's static arena has 20 bytes"
        );
        let e = BootError::Corrupt(FileError::new(part::CRC, "mismatch", 1, 2));
        assert_eq!(
            text(|l| boot_error(l, &e)),
            "model region: invalid model file: model file: crc: mismatch: expected 0x1, found 0x2"
        );
    }
}
