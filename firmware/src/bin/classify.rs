//! Inference scenario: validate the model region, then classify every frame of the simulated I2C
//! sensor (test vectors in the `INPUTS` region) with the weights in flash, one line per frame:
//!
//! ```text
//! pred <index> <class> <score> <label or -> <cycles>
//! ```
//!
//! (the score exactly, as `0x` and the 8 hex digits of the `f32`'s bits),
//! then `done <count> <correct>`. Exit status 0, or the refusal's [`BootError`] code (see
//! `torchlet_firmware::exit`). `torchlet emulate` runs this under QEMU and parses the lines.
//!
//! Cycles come from the DWT cycle counter on a real Cortex-M4 (QEMU does not emulate it and
//! reads 0; there the `torchlet_inference_mark` function, called right before and right after
//! each inference, lets the project's TCG plugin count instructions exactly).
#![no_std]
#![no_main]

use cortex_m::peripheral::{Peripherals, DWT};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use torchlet::layer::Layer;
use torchlet::Network;
use torchlet_firmware::infer::classify;
use torchlet_firmware::log::exit;
use torchlet_firmware::region::{load_model, EMPTY_LAYER};
use torchlet_firmware::report::{self, ModelInfo};
use torchlet_firmware::source::{BlobSensor, FrameSource, I2cFrameSource, VectorBlob, SENSOR_ADDRESS};
use torchlet_firmware::{BootError, ARENA_LEN, EXIT_OK, MAX_FRAME, MAX_LAYERS, MAX_NODES};

extern "C" {
    static _model_start: u8;
    static _model_end: u8;
    static _inputs_start: u8;
    static _inputs_end: u8;
}

/// A flash region between two linker symbols, as a byte slice.
fn region(start: &'static u8, end: &'static u8) -> &'static [u8] {
    let (s, e) = (start as *const u8, end as *const u8);
    let len = (e as usize).saturating_sub(s as usize);
    // SAFETY: memory.x places the region inside the memory map, the firmware never writes it
    // (it is flash on a board, a ROM blob QEMU loads), and it lives as long as the program.
    unsafe { core::slice::from_raw_parts(s, len) }
}

/// The marker the instruction-count plugin watches (`mark=<address of this symbol>`): called
/// right before and right after each inference, so the difference of two consecutive counts
/// is the instructions of one inference.
#[no_mangle]
#[inline(never)]
pub extern "C" fn torchlet_inference_mark(i: u32) {
    core::hint::black_box(i);
}

#[entry]
fn main() -> ! {
    static mut LAYERS: [Layer; MAX_LAYERS] = [EMPTY_LAYER; MAX_LAYERS];
    static mut ARENA: [f32; ARENA_LEN] = [0.0; ARENA_LEN];
    static mut FRAME: [f32; MAX_FRAME] = [0.0; MAX_FRAME];
    let (layers, arena, frame) = (LAYERS, ARENA, FRAME);

    let mut cp = Peripherals::take().unwrap_or_else(|| exit(1));
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();

    // SAFETY: the symbols are defined by memory.x; only their addresses are used.
    let (model, inputs) = unsafe { (region(&_model_start, &_model_end), region(&_inputs_start, &_inputs_end)) };
    match run(model, inputs, layers, arena, frame) {
        Ok(()) => exit(EXIT_OK),
        Err(e) => {
            report::refused(&e);
            exit(e.exit_code())
        }
    }
}

fn run(
    model: &'static [u8],
    inputs: &'static [u8],
    layers: &'static mut [Layer<'static>],
    arena: &'static mut [f32],
    frame: &'static mut [f32],
) -> Result<(), BootError> {
    let m = load_model::<MAX_NODES>(model, layers, arena.len())?;
    report::model_ok(&ModelInfo {
        name: m.file.name(),
        crc: m.file.crc(),
        params: m.plan.param_len(),
        classes: m.file.class_count(),
        arena: m.plan.arena_bytes(),
        arena_available: arena.len() * 4,
    });
    let blob = VectorBlob::parse(inputs).map_err(BootError::Input)?;
    let mut source = I2cFrameSource::new(BlobSensor::new(blob), SENSOR_ADDRESS).map_err(BootError::Input)?;
    let n = m.plan.input_shape().numel();
    if source.frame_len() != n || n > frame.len() {
        return Err(BootError::Input("the frames' length is not the model's input size"));
    }
    let params = m.file.params().map_err(BootError::Unsupported)?;
    let state = m.file.state().map_err(BootError::Unsupported)?;
    let mut net = Network::with_weights(&m.plan, params, state, arena).map_err(BootError::Unsupported)?;
    let x = &mut frame[..n];
    let count = source.len().unwrap_or(0);
    let mut correct = 0;
    for i in 0..count {
        let label = source.read_frame(i, x).map_err(BootError::Input)?;
        torchlet_inference_mark(2 * i as u32);
        let start = DWT::cycle_count();
        let p = classify(&mut net, x)?;
        let cycles = DWT::cycle_count().wrapping_sub(start);
        torchlet_inference_mark(2 * i as u32 + 1);
        correct += usize::from(label == Some(p.class as u32));
        report::prediction(i, p.class, p.score, label, cycles);
    }
    report::done(count, correct);
    Ok(())
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    report::hard_fault(ef.pc());
    exit(3)
}
