//! On-device training scenario: train the small digits CNN ([`DIGITS_CNN`](torchlet_firmware::DIGITS_CNN)) on the board, with
//! static buffers only (parameters, gradients, momentum, activation arena: all `static`, sized
//! by the compiler from [`TRAIN_PLAN`](torchlet_firmware::TRAIN_PLAN); no heap), streaming labelled digits from the frame
//! source (the simulated I2C sensor over the `INPUTS` region under QEMU).
//!
//! The last quarter of the frames is held out. Prints the held-out loss and accuracy before
//! training, the mean training loss of each epoch, then the held-out loss and accuracy after:
//!
//! ```text
//! before: loss <l> accuracy <correct>/<n>
//! epoch <e> loss <l>
//! after: loss <l> accuracy <correct>/<n>
//! ```
//!
//! Exit status 0 if the held-out loss fell, [`EXIT_LOSS_DID_NOT_FALL`] if not, or a
//! [`BootError`] code when the frames cannot be read.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::Sgd;
use torchlet::Network;
use torchlet_firmware::log::exit;
use torchlet_firmware::source::{BlobSensor, FrameSource, I2cFrameSource, VectorBlob, SENSOR_ADDRESS};
use torchlet_firmware::{error, info, BootError, BATCH, EXIT_LOSS_DID_NOT_FALL, EXIT_OK, TRAIN_PLAN as PLAN};

const P: usize = PLAN.param_len();
const SAMPLE: usize = PLAN.input_shape().numel();
const CLASSES: usize = PLAN.output_shape().numel();
const EPOCHS: usize = 4;

extern "C" {
    static _inputs_start: u8;
    static _inputs_end: u8;
}

#[entry]
fn main() -> ! {
    static mut PARAMS: [f32; P] = [0.0; P];
    static mut GRADS: [f32; P] = [0.0; P];
    static mut MOMENTUM: [f32; P] = [0.0; P];
    static mut STATE: [f32; PLAN.state_len()] = [0.0; PLAN.state_len()];
    static mut ARENA: [f32; PLAN.arena_len()] = [0.0; PLAN.arena_len()];
    static mut X: [f32; BATCH * SAMPLE] = [0.0; BATCH * SAMPLE];
    let (params, grads, momentum, state, arena, x) = (PARAMS, GRADS, MOMENTUM, STATE, ARENA, X);

    let (s, e) = unsafe { (&_inputs_start as *const u8, &_inputs_end as *const u8) };
    // SAFETY: memory.x places the INPUTS region in the memory map; the firmware never writes
    // it, and it lives as long as the program.
    let inputs: &'static [u8] = unsafe { core::slice::from_raw_parts(s, (e as usize).saturating_sub(s as usize)) };
    let mut net = match Network::new(&PLAN, params, grads, state, arena) {
        Ok(n) => n,
        Err(e) => fail(BootError::Unsupported(e)),
    };
    match train(&mut net, inputs, momentum, x) {
        Ok((before, after)) => exit(if after < before {
            EXIT_OK
        } else {
            EXIT_LOSS_DID_NOT_FALL
        }),
        Err(e) => fail(e),
    }
}

fn fail(e: BootError) -> ! {
    error!("{} (exit {})", e, e.exit_code());
    exit(e.exit_code())
}

/// Trains for [`EPOCHS`] on the first three quarters of the frames; returns the held-out loss
/// before and after.
fn train(
    net: &mut Network<'_, 8>,
    inputs: &'static [u8],
    momentum: &mut [f32],
    x: &mut [f32],
) -> Result<(f32, f32), BootError> {
    let blob = VectorBlob::parse(inputs).map_err(BootError::Input)?;
    let mut src = I2cFrameSource::new(BlobSensor::new(blob), SENSOR_ADDRESS).map_err(BootError::Input)?;
    if src.frame_len() != SAMPLE {
        return Err(BootError::Input("the frames are not 8x8 digits (64 floats)"));
    }
    let count = src.len().unwrap_or(0);
    let test_n = count / 4;
    let train_n = count - test_n;
    if train_n < BATCH || test_n == 0 {
        return Err(BootError::Input("too few frames to train (at least 12 needed)"));
    }
    net.init_params(1).map_err(BootError::Unsupported)?;
    let (before, correct) = evaluate(net, &mut src, train_n..count, x)?;
    info!("before: loss {} accuracy {}/{}", before, correct, test_n);
    let mut sgd = Sgd::new(0.05).momentum(0.9);
    let loss_fn = CrossEntropyLoss::new();
    let mut labels = [0u32; BATCH];
    for epoch in 0..EPOCHS {
        let (mut sum, mut batches) = (0.0, 0);
        net.train().map_err(BootError::Unsupported)?;
        for start in (0..train_n - train_n % BATCH).step_by(BATCH) {
            for k in 0..BATCH {
                // The frames come shuffled (a random split of the digits), so batches mix the classes.
                labels[k] = read(&mut src, start + k, &mut x[k * SAMPLE..(k + 1) * SAMPLE])?;
            }
            net.zero_grad();
            net.forward(x).map_err(BootError::Inference)?;
            sum += net.backward(&loss_fn, &labels).map_err(BootError::Inference)?;
            net.step(&mut sgd, momentum).map_err(BootError::Inference)?;
            batches += 1;
        }
        info!("epoch {} loss {}", epoch + 1, sum / batches as f32);
    }
    let (after, correct) = evaluate(net, &mut src, train_n..count, x)?;
    info!("after: loss {} accuracy {}/{}", after, correct, test_n);
    Ok((before, after))
}

/// Reads frame `i` and its label.
fn read(src: &mut impl FrameSource, i: usize, out: &mut [f32]) -> Result<u32, BootError> {
    match src.read_frame(i, out).map_err(BootError::Input)? {
        Some(l) if (l as usize) < CLASSES => Ok(l),
        _ => Err(BootError::Input("a training frame has no label in 0..10")),
    }
}

/// Mean loss and number correct over `range` in eval mode, a batch at a time.
fn evaluate(
    net: &mut Network<'_, 8>,
    src: &mut impl FrameSource,
    range: core::ops::Range<usize>,
    x: &mut [f32],
) -> Result<(f32, usize), BootError> {
    net.eval();
    let loss_fn = CrossEntropyLoss::new();
    let mut labels = [0u32; BATCH];
    let (mut sum, mut correct, mut n) = (0.0, 0, 0);
    let mut start = range.start;
    while start < range.end {
        let b = BATCH.min(range.end - start);
        for k in 0..b {
            labels[k] = read(src, start + k, &mut x[k * SAMPLE..(k + 1) * SAMPLE])?;
        }
        let y = net.forward(&x[..b * SAMPLE]).map_err(BootError::Inference)?;
        for (row, &l) in y.chunks(CLASSES).zip(&labels[..b]) {
            let best = (0..CLASSES).fold(0, |m, k| if row[k] > row[m] { k } else { m });
            correct += usize::from(best == l as usize);
        }
        sum += net.loss(&loss_fn, &labels[..b]).map_err(BootError::Inference)? * b as f32;
        n += b;
        start += b;
    }
    Ok((sum / n as f32, correct))
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    error!("HardFault at pc={}", ef.pc());
    exit(3)
}
