//! # torchlet-firmware: torchlet on a Cortex-M board
//!
//! The model, its plan and every buffer are `static`s sized by the core's `const fn` planner,
//! so the linker checks that they fit the board's RAM before anything runs. This crate holds
//! the scenarios shared by the binaries in `src/bin/`; each binary is one scenario run under
//! `qemu-system-arm -machine mps2-an386` (Cortex-M4F) by `cargo run --release --bin <name>`.
#![no_std]
#![forbid(unsafe_code)]

use torchlet::layer::*;
use torchlet::{Plan, Shape};

/// A small CNN for 8×8 digits: the model the smoke scenario trains on the board.
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

/// The training plan, computed by the compiler.
pub const TRAIN_PLAN: Plan<8> = Plan::training(&DIGITS_CNN, Shape::chw(1, 8, 8), BATCH);
