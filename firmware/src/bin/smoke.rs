//! Smoke scenario: train the digits CNN for a few steps on synthetic data in static memory,
//! print the loss falling over semihosting, exit 0 if it fell below half its first value,
//! 20 (`EXIT_LOSS_DID_NOT_FALL`) otherwise.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::Sgd;
use torchlet::Network;
use torchlet_firmware::log::exit;
use torchlet_firmware::{error, info, BATCH, EXIT_LOSS_DID_NOT_FALL, EXIT_OK, TRAIN_PLAN as PLAN};

const P: usize = PLAN.param_len();

#[entry]
fn main() -> ! {
    // Stack-free storage: everything lives in .bss, sized by the plan.
    static mut PARAMS: [f32; P] = [0.0; P];
    static mut GRADS: [f32; P] = [0.0; P];
    static mut MOMENTUM: [f32; P] = [0.0; P];
    static mut STATE: [f32; PLAN.state_len()] = [0.0; PLAN.state_len()];
    static mut ARENA: [f32; PLAN.arena_len()] = [0.0; PLAN.arena_len()];
    static mut X: [f32; BATCH * 64] = [0.0; BATCH * 64];
    // cortex-m-rt turns `static mut` in #[entry] into `&'static mut`, without unsafe.
    let (params, grads, momentum, state, arena, x) = (PARAMS, GRADS, MOMENTUM, STATE, ARENA, X);

    // Synthetic task: class k lights up row k % 8 of the image.
    let labels: [u32; BATCH] = [0, 1, 2, 3, 4, 5, 6, 7];
    for (s, &l) in labels.iter().enumerate() {
        for p in 0..64 {
            x[s * 64 + p] = if p / 8 == l as usize % 8 { 1.0 } else { 0.0 };
        }
    }
    let mut net = match Network::new(&PLAN, params, grads, state, arena) {
        Ok(n) => n,
        Err(_) => fail(),
    };
    if net.init_params(1).is_err() {
        fail();
    }
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let loss_fn = CrossEntropyLoss::new();
    let mut first = 0.0;
    let mut last = 0.0;
    for step in 0..30 {
        net.zero_grad();
        if net.forward(x).is_err() {
            fail();
        }
        let loss = match net.backward(&loss_fn, &labels) {
            Ok(l) => l,
            Err(_) => fail(),
        };
        if net.step(&mut sgd, momentum).is_err() {
            fail();
        }
        if step == 0 {
            first = loss;
        }
        last = loss;
        if step % 5 == 0 {
            info!("step {} loss {}", step, loss);
        }
    }
    info!(
        "loss {} -> {} (arena {} bytes, params {})",
        first,
        last,
        PLAN.arena_bytes(),
        P
    );
    exit(if last < first * 0.5 {
        EXIT_OK
    } else {
        EXIT_LOSS_DID_NOT_FALL
    })
}

fn fail() -> ! {
    error!("a training step failed");
    exit(1)
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    error!("HardFault at pc={}", ef.pc());
    exit(3)
}
