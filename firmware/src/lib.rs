//! # torchlet-firmware: a trained torchlet model on a Cortex-M board
//!
//! The path from the desktop to the board, in four pieces, each in its own module:
//!
//! - [`region`]: the model lives in its own flash region (`MODEL` in `memory/<board>.x`), written
//!   independently of the firmware (`torchlet export --target firmware`). At boot
//!   [`region::load_model`] validates it with the core's model-file reader (magic, CRC, every
//!   record), rebuilds and plans its layers, and checks that the plan fits the static arena;
//!   a bad or too large model is refused with a [`BootError`] whose [`BootError::exit_code`] is
//!   distinct per cause, before any weight is used.
//! - [`source`]: inputs come through a [`source::FrameSource`]; [`source::I2cFrameSource`] reads
//!   frames from any `embedded_hal::i2c::I2c` bus, so a real camera or sensor driver plugs in.
//!   Under QEMU, [`source::BlobSensor`] is a simulated I2C sensor serving test vectors from the
//!   `INPUTS` region ([`source::VectorBlob`]).
//! - [`infer`]: classification over the weights *in flash* (`Network::with_weights`, zero
//!   copy), one frame at a time, with the static arena as the only RAM.
//! - [`log`]: the logging shim of the training scenarios: text over semihosting through
//!   `core::fmt`, or defmt frames with the `defmt` feature.
//! - [`out`] and [`report`]: `classify`'s lines and every error's text without `core::fmt`
//!   (scores as exact `f32` bits, which `torchlet emulate` parses), and `panic`, a panic
//!   handler that prints the location only: `classify` links no formatting code.
//!
//! The binaries are the scenarios: `classify` (inference on the model region, exit status
//! [`EXIT_OK`] or a [`BootError`] code), `finetune` (training on the board with static buffers
//! only) and `smoke` (a few training steps on synthetic data). `docs/firmware.md` documents the
//! regions, the exit statuses and which model sizes fit which RAM.
//!
//! The static arena is sized at compile time by the core's `const fn` planner for the model
//! the `arena-*` feature names ([`ARENA_PLAN`]), so the linker refuses a board whose RAM is too
//! small, and `torchlet emulate --size-report` checks that the linked arena is the planned one.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "board-mps2-an386", feature = "board-stm32f405"))]
compile_error!(
    "features `board-mps2-an386` and `board-stm32f405` conflict: build with --no-default-features for another board"
);
#[cfg(all(feature = "arena-digits", feature = "arena-cifar10"))]
compile_error!("features `arena-digits` and `arena-cifar10` conflict: build with --no-default-features --features board-...,arena-cifar10,all-ops (or op-* features)");

// The defmt global logger (frames over semihosting), linked in by the `defmt` feature.
#[cfg(all(feature = "defmt", target_arch = "arm", target_os = "none"))]
use defmt_semihosting as _;

pub mod exit;
pub mod infer;
#[macro_use]
pub mod log;
pub mod out;
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub mod panic;
pub mod region;
pub mod report;
pub mod source;

pub use exit::{BootError, EXIT_LOSS_DID_NOT_FALL, EXIT_OK};

use torchlet::layer::*;
use torchlet::{Plan, Shape};

/// A small CNN for 8×8 digits: the model the `smoke` and `finetune` scenarios train on the board
/// (1,898 parameters).
pub const DIGITS_CNN: [Layer; 8] = [
    conv2d(1, 8, 3).padding(1),
    relu(),
    max_pool2d(2),
    conv2d(8, 16, 3).padding(1),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(16 * 2 * 2, 10),
];

/// Batch size of on-board training.
pub const BATCH: usize = 8;

/// The training plan of [`DIGITS_CNN`], computed by the compiler.
pub const TRAIN_PLAN: Plan<8> = Plan::training(&DIGITS_CNN, Shape::chw(1, 8, 8), BATCH);

/// The inference plan (batch 1) the static arena of `classify` is sized for: the zoo's
/// digits-cnn (feature `arena-digits`, the default) or tutorial-cnn (feature `arena-cifar10`).
/// A model in the region whose plan needs more is refused at boot ([`BootError::ArenaTooSmall`]).
#[cfg(not(feature = "arena-cifar10"))]
pub const ARENA_PLAN: Plan<9> = Plan::inference(&torchlet::zoo::DIGITS_CNN, Shape::chw(1, 8, 8), 1);
/// The inference plan (batch 1) the static arena of `classify` is sized for: the zoo's
/// digits-cnn (feature `arena-digits`, the default) or tutorial-cnn (feature `arena-cifar10`).
/// A model in the region whose plan needs more is refused at boot ([`BootError::ArenaTooSmall`]).
#[cfg(feature = "arena-cifar10")]
pub const ARENA_PLAN: Plan<9> = Plan::inference(&torchlet::zoo::TUTORIAL_CNN, Shape::chw(3, 32, 32), 1);

/// Floats in the static arena of `classify`: `ARENA_PLAN.arena_len()`.
pub const ARENA_LEN: usize = ARENA_PLAN.arena_len();

/// Most layers (containers included) a model in the region may have: the size of the static
/// layer storage the model's architecture is rebuilt into.
pub const MAX_LAYERS: usize = 32;

/// Most plan nodes a model in the region may have (the `CAP` of its [`Plan`]). A plan takes
/// about 514 bytes per node of capacity and is built on the stack at boot (`Plan<64>` would be
/// 33 KB, too much next to a 128 KiB board's arena): 16 covers the zoo's models (8 and 9 nodes).
pub const MAX_NODES: usize = 16;

/// Floats in the largest input frame `classify` accepts (a 3×32×32 image).
pub const MAX_FRAME: usize = 3 * 32 * 32;
