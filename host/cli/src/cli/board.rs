//! The boards the firmware is built for (`--board` of `torchlet emulate` and `torchlet
//! export`): each is a memory layout in `firmware/memory/<board>.x`, a cargo feature of
//! `firmware/`, and the QEMU machine that emulates it.
//!
//! | board | core | flash: firmware / model region / inputs | RAM | QEMU machine |
//! |---|---|---|---|---|
//! | `mps2-an386` (default) | Cortex-M4F | 2 MiB / 1.5 MiB / 512 KiB | 4 MiB | `mps2-an386` |
//! | `stm32f405` | Cortex-M4F | 256 KiB / 640 KiB / 128 KiB | 128 KiB | `netduinoplus2` |

use clap::ValueEnum;

/// A board `torchlet emulate` runs the firmware on. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Board {
    /// Arm's MPS2 with an AN386 image (Cortex-M4F, 4 MiB flash, 4 MiB RAM).
    #[default]
    #[value(name = "mps2-an386")]
    Mps2An386,
    /// An STM32F405 board (Cortex-M4F, 1 MiB flash, 128 KiB RAM), as QEMU's netduinoplus2.
    #[value(name = "stm32f405")]
    Stm32f405,
}

impl Board {
    /// The name `--board` takes.
    pub fn name(self) -> &'static str {
        match self {
            Board::Mps2An386 => "mps2-an386",
            Board::Stm32f405 => "stm32f405",
        }
    }

    /// The firmware's cargo feature for this board's memory layout.
    pub fn feature(self) -> &'static str {
        match self {
            Board::Mps2An386 => "board-mps2-an386",
            Board::Stm32f405 => "board-stm32f405",
        }
    }

    /// `qemu-system-arm -machine` for this board.
    pub fn qemu_machine(self) -> &'static str {
        match self {
            Board::Mps2An386 => "mps2-an386",
            Board::Stm32f405 => "netduinoplus2",
        }
    }

    /// Bytes of the model region (`firmware/memory/<board>.x`).
    pub fn model_region(self) -> usize {
        match self {
            Board::Mps2An386 => 1536 * 1024,
            Board::Stm32f405 => 640 * 1024,
        }
    }

    /// Address of the model region.
    pub fn model_address(self) -> u64 {
        match self {
            Board::Mps2An386 => 0x0020_0000,
            Board::Stm32f405 => 0x0804_0000,
        }
    }

    /// The board in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Board::Mps2An386 => "qemu-system-arm mps2-an386, Cortex-M4F",
            Board::Stm32f405 => "qemu-system-arm netduinoplus2: STM32F405, Cortex-M4F, 128 KiB RAM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layouts here are the linker scripts' (`firmware/memory/<board>.x`).
    #[test]
    fn regions_match_the_linker_scripts() {
        for board in [Board::Mps2An386, Board::Stm32f405] {
            let path = format!(
                "{}/../../firmware/memory/{}.x",
                env!("CARGO_MANIFEST_DIR"),
                board.name()
            );
            let script = std::fs::read_to_string(&path).unwrap();
            let line = script
                .lines()
                .find(|l| l.trim_start().starts_with("MODEL"))
                .unwrap_or_else(|| panic!("{path}: no MODEL region"));
            let want = format!(
                "ORIGIN = {:#010X}, LENGTH = {}K",
                board.model_address(),
                board.model_region() / 1024
            )
            .replace("0X", "0x");
            let compact = |s: &str| s.replace('_', "").to_lowercase();
            assert!(compact(line).contains(&compact(&want)), "{path}: {line} vs {want}");
        }
    }
}
