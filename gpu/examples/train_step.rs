//! Training throughput of the course's CIFAR-10 network (`tutorial-cnn`, 145,578 parameters) on
//! the GPU: prints the adapter, then training images per second at the chosen batch size.
//!
//! ```sh
//! cargo run --release -p torchlet-gpu --example train_step                  # batch 64, any adapter
//! cargo run --release -p torchlet-gpu --example train_step -- --batch 256 --steps 20 --device auto
//! ```
//!
//! The batches are synthetic (seeded uniform noise, random labels): this measures the step,
//! not a data pipeline. One warm-up step (drivers compile shaders lazily) is not timed. The
//! last line, `RESULT ...`, is what `tools/bench-gpu-vs-pytorch.sh` parses.

use std::process::ExitCode;
use std::time::Instant;

use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::Sgd;
use torchlet::{Mode, Network, Plan, Rng, Shape};
use torchlet_gpu::{GpuNetwork, Resolved, Selection};

/// The course's CIFAR-10 network, as `torchlet_host::zoo::TUTORIAL_CNN`.
static TUTORIAL_CNN: [Layer; 9] = [
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

struct Args {
    batch: usize,
    steps: usize,
    device: Selection,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        batch: 64,
        steps: 5,
        device: Selection::Gpu,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag}: expected a value"));
        match flag.as_str() {
            "--batch" => {
                a.batch = value()?
                    .parse()
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or("--batch: expected a positive integer")?
            }
            "--steps" => {
                a.steps = value()?
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or("--steps: expected a positive integer")?
            }
            "--device" => a.device = value()?.parse().map_err(|e: torchlet_gpu::Error| e.to_string())?,
            _ => {
                return Err(format!(
                    "unknown flag {flag:?} (expected --batch N, --steps N, --device gpu|auto)"
                ))
            }
        }
    }
    Ok(a)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let dev = match args.device.resolve()? {
        Resolved::Gpu(d) => d,
        Resolved::Cpu { reason } => return Err(format!("no GPU to measure: {reason}").into()),
    };
    let adapter = dev.adapter().clone();
    println!("adapter: {adapter}");
    if adapter.software {
        println!("note: a software adapter runs the shaders on the CPU; its numbers say nothing about GPU performance");
    }

    let plan: Plan<9> = Plan::try_new(&TUTORIAL_CNN, Shape::chw(3, 32, 32), args.batch, Mode::Training)?;
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena)?.init_params(0)?;
    let mut net = GpuNetwork::new(&dev, &plan, &params)?;

    let mut rng = Rng::new(1);
    let images: Vec<f32> = (0..args.batch * 3 * 32 * 32).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let labels: Vec<u32> = (0..args.batch).map(|_| rng.below(10)).collect();
    let loss = CrossEntropyLoss::new();
    let mut sgd = Sgd::new(0.01).momentum(0.9);

    let warm = net.train_step(&images, &labels, &loss, &mut sgd)?;
    println!("warm-up step: loss {:.4}", warm.loss);
    let start = Instant::now();
    let mut last = warm;
    for _ in 0..args.steps {
        last = net.train_step(&images, &labels, &loss, &mut sgd)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_s = (args.steps * args.batch) as f64 / secs;
    println!(
        "tutorial-cnn, batch {}: {} steps in {:.3} s, {:.1} ms/step, {:.0} training images/s (last loss {:.4})",
        args.batch,
        args.steps,
        secs,
        secs * 1e3 / args.steps as f64,
        per_s,
        last.loss
    );
    println!(
        "RESULT torchlet-gpu batch={} images_per_s={per_s:.1} adapter=\"{}\" software={}",
        args.batch, adapter.name, adapter.software
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train_step: {e}");
            ExitCode::FAILURE
        }
    }
}
