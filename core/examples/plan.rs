//! Prints the plan of the course's CIFAR-10 network: every layer's output shape and parameter
//! count, the total, and the arena the compiler computed for inference at batch 1 and for
//! training at batch 64.
//!
//! ```text
//! cargo run -p torchlet --example plan
//! ```

use torchlet::layer::*;
use torchlet::{Plan, Shape};

const LAYERS: [Layer; 9] = [
    conv2d(3, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 64, 5).padding(2),
    max_pool2d(2),
    flatten(),
    linear(1024, 64),
    linear(64, 10),
];
const INPUT: Shape = Shape::chw(3, 32, 32);
/// Both plans are computed at compile time; a wrong layer would not compile.
const INFER: Plan<9> = Plan::inference(&LAYERS, INPUT, 1);
const TRAIN: Plan<9> = Plan::training(&LAYERS, INPUT, 64);
/// The arena is an ordinary static array: the linker checks that it fits.
static ARENA_FOR_BATCH_1: [f32; INFER.arena_len()] = [0.0; INFER.arena_len()];

fn main() {
    println!("{:<4} {:<12} {:>14} {:>10}", "#", "layer", "output", "params");
    for (i, n) in TRAIN.nodes().iter().enumerate() {
        println!(
            "{:<4} {:<12} {:>14} {:>10}",
            i,
            n.op_name,
            n.out_shape.to_string(),
            n.param_len()
        );
    }
    println!("total parameters: {}", TRAIN.param_len());
    println!(
        "arena, inference at batch 1: {} bytes ({:.1} KiB; static array of {} floats)",
        INFER.arena_bytes(),
        INFER.arena_bytes() as f64 / 1024.0,
        ARENA_FOR_BATCH_1.len()
    );
    println!(
        "arena, training at batch 64: {} bytes ({:.2} MiB; peak live {:.2} MiB)",
        TRAIN.arena_bytes(),
        TRAIN.arena_bytes() as f64 / (1024.0 * 1024.0),
        TRAIN.peak_live_len() as f64 * 4.0 / (1024.0 * 1024.0)
    );
}
