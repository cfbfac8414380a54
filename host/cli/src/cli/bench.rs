//! `torchlet bench`: how fast a model trains and infers on this machine's CPU or GPU.
//!
//! Three figures, each the median over `--iters` timed runs after `--warmup` untimed ones, on
//! random inputs of the model's input shape (uniform in `[0, 1)`) and random labels:
//!
//! - **training images/s**: one full step at `--batch-size` (zero_grad, forward, backward,
//!   SGD step with lr 0.01 and momentum 0.9, CrossEntropyLoss), the batch split over
//!   `--threads` as `torchlet train` does ([`crate::train::parallel::DataParallel`]);
//! - **inference images/s**: a forward pass at `--batch-size` in eval mode with an inference
//!   plan, split over the threads ([`crate::train::parallel::ParallelInference`]);
//! - **latency**: one forward pass of a single image, on one thread (median over ten times
//!   as many runs, as each is short).
//!
//! The networks run on the fastest matrix multiply of this CPU ([`crate::kernels::best`];
//! `TORCHLET_KERNEL=portable` forces the portable one), which the output names.
//!
//! `--device gpu|auto` (default `auto`, see [`crate::train::gpu`]) measures the same three
//! figures on a GPU through [`torchlet_gpu::GpuNetwork`] instead ([`measure_gpu`]): a training
//! step is one submission that reads back the loss; an inference batch and the latency include
//! reading the logits back, as a user of them would. `--threads` does not apply there. On a
//! software adapter (lavapipe) the figures measure the CPU running Vulkan, not a GPU: the
//! output says so. The JSON has `device` (`"cpu"` or `"gpu"`) and `adapter` (the adapter's
//! description, `null` on the CPU).
//!
//! `--json` prints exactly one JSON object on stdout (progress goes to stderr), which
//! `tools/bench-vs-pytorch.sh` reads to compare with PyTorch on the same model.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use clap::Args;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::{Mode, Network, Rng};

use torchlet_gpu::GpuNetwork;

use crate::model::Model;
use crate::train::gpu::{choose, Compute};
use crate::train::parallel::{default_threads, parse_threads, DataParallel, ParallelInference};

/// Arguments of `torchlet bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A zoo model name or a model file (`.tlm`).
    #[arg(long, value_name = "NAME|FILE", default_value = "tutorial-cnn")]
    pub model: String,
    /// Samples per training and inference batch.
    #[arg(long, value_name = "N", default_value = "64", value_parser = at_least_one, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Threads sharing each batch (default: all cores).
    #[arg(long, value_name = "N", value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Untimed runs before measuring.
    #[arg(long, value_name = "N", default_value = "5", value_parser = whole, allow_negative_numbers = true)]
    pub warmup: usize,
    /// Timed runs (the medians are over these).
    #[arg(long, value_name = "N", default_value = "30", value_parser = at_least_one, allow_negative_numbers = true)]
    pub iters: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where to measure: cpu, gpu (any adapter, software ones included) or auto (a hardware
    /// GPU that can run the model, else the CPU).
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = crate::train::gpu::parse_device)]
    pub device: torchlet_gpu::Selection,
    /// Seed of the weights and the random data.
    #[arg(long, default_value = "0", allow_negative_numbers = true)]
    pub seed: u64,
}

/// A whole number of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}

/// A whole number (0 allowed).
fn whole(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| "expected a whole number (0 or more)".to_string())
}

/// What `torchlet bench` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// The model's name.
    pub model: String,
    /// Its parameter count.
    pub parameters: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Threads.
    pub threads: usize,
    /// The matrix-multiply kernel the networks used (`avx2+fma`, `portable`, ...).
    pub kernel: String,
    /// Why that kernel: what the CPU offers, or `TORCHLET_KERNEL`.
    pub kernel_detail: String,
    /// Median seconds of one training step.
    pub train_step_s: f64,
    /// Median seconds of one inference batch.
    pub infer_batch_s: f64,
    /// Median seconds of one single-image forward pass.
    pub latency_s: f64,
    /// `"cpu"` or `"gpu"`.
    pub device: String,
    /// The GPU adapter (name, backend, type, driver); `None` on the CPU.
    pub adapter: Option<String>,
    /// Whether the adapter is a software one running on the CPU (lavapipe): its figures are
    /// not a GPU's.
    pub software: bool,
}

impl BenchReport {
    /// Training images per second (`batch_size / train_step_s`).
    pub fn train_images_per_sec(&self) -> f64 {
        self.batch_size as f64 / self.train_step_s
    }

    /// Inference images per second (`batch_size / infer_batch_s`).
    pub fn infer_images_per_sec(&self) -> f64 {
        self.batch_size as f64 / self.infer_batch_s
    }
}

/// The median of `times` (sorted in place; the mean of the middle two for an even count).
fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    }
}

/// Runs `f` `warmup` times, then `iters` timed times; returns the median seconds.
fn time<E>(warmup: usize, iters: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(&mut times))
}

/// Opens `--model`: a file if one exists at that path, else a zoo model.
fn open_model(name: &str, seed: u64) -> Result<Model, Box<dyn std::error::Error>> {
    let path = Path::new(name);
    if path.exists() {
        return Ok(Model::load(path)?);
    }
    if name.ends_with(".tlm") || name.contains(std::path::MAIN_SEPARATOR) {
        return Err(format!("--model {name}: no such model file").into());
    }
    Ok(Model::from_zoo(name, seed)?)
}

/// Measures `model` (see the [module docs](self)).
///
/// # Errors
/// A message for the user: a model that does not plan for the batch, a thread count out of
/// range, a network error (a loss that becomes NaN on the random data).
pub fn measure(
    model: &Model,
    batch: usize,
    threads: usize,
    warmup: usize,
    iters: usize,
    seed: u64,
) -> Result<BenchReport, Box<dyn std::error::Error>> {
    let sample = model.input.numel();
    let gemm = crate::kernels::best();
    // The buffers whose size the batch decides are checked (planned, then allocated against
    // the memory available) before the random batch is filled.
    let mut dp = DataParallel::new(model, batch, threads, seed)?;
    let plan = model.plan(dp.main_batch(), Mode::Training)?;
    let (mut params, mut state) = (model.params.clone(), model.state.clone());
    let mut grads = vec![0.0; plan.param_len()];
    let mut arena = crate::mem::zeros(plan.arena_len(), &format!("the training arena for batch {batch}"))?;
    let len = batch
        .checked_mul(sample)
        .ok_or_else(|| format!("--batch-size {batch}: a batch of that many samples does not fit in memory"))?;
    let mut rng = Rng::new(seed ^ 0xBE7C);
    let mut x = crate::mem::zeros(len, &format!("a random batch of {batch}"))?;
    x.iter_mut().for_each(|v| *v = rng.next_f32());
    let outputs = model.plan(1, Mode::Inference)?.output_shape().numel();
    let labels: Vec<u32> = (0..batch).map(|_| rng.below(outputs.max(1) as u32)).collect();

    eprintln!("bench: training steps ({warmup} warm-up, {iters} timed)");
    let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena)?;
    net.set_gemm(gemm);
    let loss = CrossEntropyLoss::new();
    let mut sgd = Sgd::new(0.01).momentum(0.9);
    let mut opt_state = vec![0.0; sgd.state_len(plan.param_len())];
    let mut step = 0u64;
    let train_step_s = time(warmup, iters, || -> Result<(), torchlet::Error> {
        net.zero_grad();
        dp.backward(&mut net, &loss, &x, &labels, step)?;
        net.step(&mut sgd, &mut opt_state)?;
        step += 1;
        Ok(())
    })
    .map_err(|e| format!("training step {step}: {e}"))?;

    eprintln!("bench: inference at batch {batch}");
    let mut infer = ParallelInference::new(model, batch, dp.threads())?;
    infer.set_gemm(gemm);
    let mut out = vec![0.0; batch * infer.outputs()];
    let infer_batch_s =
        time(warmup, iters, || infer.forward(&params, &state, &x, &mut out)).map_err(|e| format!("inference: {e}"))?;

    eprintln!("bench: latency at batch 1");
    let mut single = ParallelInference::new(model, 1, 1)?;
    single.set_gemm(gemm);
    let mut one = vec![0.0; single.outputs()];
    let latency_s = time(warmup * 10, iters * 10, || {
        single.forward(&params, &state, &x[..sample], &mut one)
    })
    .map_err(|e| format!("latency: {e}"))?;

    Ok(BenchReport {
        model: model.name.clone(),
        parameters: model.param_count(),
        batch_size: batch,
        threads,
        kernel: gemm.name().to_string(),
        kernel_detail: crate::kernels::describe().to_string(),
        train_step_s,
        infer_batch_s,
        latency_s,
        device: "cpu".to_string(),
        adapter: None,
        software: false,
    })
}

/// Measures `model` on the GPU `dev` as [`measure`] does on the CPU: the same random batch,
/// SGD (lr 0.01, momentum 0.9) and cross-entropy; inference and latency read the logits back.
///
/// # Errors
/// A message for the user: a model the GPU cannot run, or a GPU error (out of memory, a lost
/// device) naming the figure being measured.
pub fn measure_gpu(
    model: &Model,
    dev: &torchlet_gpu::Device,
    batch: usize,
    warmup: usize,
    iters: usize,
    seed: u64,
) -> Result<BenchReport, Box<dyn std::error::Error>> {
    let sample = model.input.numel();
    let mut rng = Rng::new(seed ^ 0xBE7C);
    let mut x = crate::mem::zeros(batch * sample, &format!("a random batch of {batch}"))?;
    x.iter_mut().for_each(|v| *v = rng.next_f32());
    let outputs = model.plan(1, Mode::Inference)?.output_shape().numel();
    let labels: Vec<u32> = (0..batch).map(|_| rng.below(outputs.max(1) as u32)).collect();

    eprintln!(
        "bench: training steps on {} ({warmup} warm-up, {iters} timed)",
        dev.adapter().name
    );
    let plan = model.plan(batch, Mode::Training)?;
    let mut net = GpuNetwork::new(dev, &*plan, &model.params)?;
    let loss = CrossEntropyLoss::new();
    let mut sgd = Sgd::new(0.01).momentum(0.9);
    let mut step = 0u64;
    let train_step_s = time(warmup, iters, || -> Result<(), torchlet_gpu::Error> {
        net.train_step(&x, &labels, &loss, &mut sgd)?;
        step += 1;
        Ok(())
    })
    .map_err(|e| format!("training step {step} on the GPU: {e}"))?;
    if std::env::var_os("TORCHLET_GPU_PROFILE").is_some_and(|v| v == "1") {
        print_gpu_profile(&mut net, &x, &labels, &loss, &mut sgd, train_step_s);
    }

    eprintln!("bench: inference at batch {batch}");
    let infer_batch_s =
        time(warmup, iters, || net.forward(&x).map(drop)).map_err(|e| format!("inference on the GPU: {e}"))?;

    eprintln!("bench: latency at batch 1");
    let one_plan = model.plan(1, Mode::Training)?;
    let mut single = GpuNetwork::new(dev, &*one_plan, &net.params()?)?;
    let latency_s = time(warmup * 10, iters * 10, || single.forward(&x[..sample]).map(drop))
        .map_err(|e| format!("latency on the GPU: {e}"))?;

    Ok(BenchReport {
        model: model.name.clone(),
        parameters: model.param_count(),
        batch_size: batch,
        threads: 1,
        kernel: "wgsl".to_string(),
        kernel_detail: "torchlet-gpu compute shaders".to_string(),
        train_step_s,
        infer_batch_s,
        latency_s,
        device: "gpu".to_string(),
        adapter: Some(dev.adapter().to_string()),
        software: dev.adapter().software,
    })
}

/// Prints, to stderr, the GPU time per shader of one training step (`TORCHLET_GPU_PROFILE=1`),
/// against the median wall time of a step; a profile the adapter cannot take is reported, not
/// fatal.
fn print_gpu_profile(
    net: &mut GpuNetwork,
    x: &[f32],
    labels: &[u32],
    loss: &CrossEntropyLoss<'_>,
    sgd: &mut Sgd,
    step_s: f64,
) {
    match torchlet_gpu::profile::profile_step(net, x, labels, loss, sgd) {
        Ok(times) => {
            let total: f64 = times.iter().map(|k| k.micros).sum();
            eprintln!(
                "profile: GPU time of one training step {total:.1} us (median wall {:.1} us)",
                step_s * 1e6
            );
            for k in &times {
                eprintln!(
                    "profile: {:>10.1} us {:>5.1} %  {:>3} x {}",
                    k.micros,
                    100.0 * k.micros / total.max(1e-9),
                    k.dispatches,
                    k.shader
                );
            }
        }
        Err(e) => eprintln!("profile: not taken: {e}"),
    }
}

/// Runs `torchlet bench`, printing the figures (or one JSON object) to `out`.
///
/// # Errors
/// A message for the user: an unknown model or unreadable file, or those of [`measure`].
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = open_model(&args.model, args.seed)?;
    let threads = args.threads.unwrap_or_else(default_threads);
    let choice = choose(args.device, &model, None)?;
    let r = match &choice.compute {
        Compute::Gpu(dev) => measure_gpu(&model, dev, args.batch_size, args.warmup, args.iters, args.seed)?,
        Compute::Cpu => measure(&model, args.batch_size, threads, args.warmup, args.iters, args.seed)?,
    };
    if args.json {
        let v = serde_json::json!({
            "model": r.model,
            "parameters": r.parameters,
            "batch_size": r.batch_size,
            "threads": r.threads,
            "kernel": r.kernel,
            "kernel_detail": r.kernel_detail,
            "device": r.device,
            "adapter": r.adapter,
            "software_adapter": r.software,
            "warmup": args.warmup,
            "iters": args.iters,
            "train_images_per_sec": r.train_images_per_sec(),
            "infer_images_per_sec": r.infer_images_per_sec(),
            "latency_ms_batch1": 1e3 * r.latency_s,
            "train_step_ms": 1e3 * r.train_step_s,
            "infer_batch_ms": 1e3 * r.infer_batch_s,
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    let on = match &r.adapter {
        Some(a) => format!("device gpu: {a}"),
        None => format!(
            "device {choice}, {} thread{}, kernel {}",
            r.threads,
            if r.threads == 1 { "" } else { "s" },
            r.kernel
        ),
    };
    writeln!(
        out,
        "model {} ({} parameters), batch {}, {on}; medians of {} runs after {} warm-up",
        r.model, r.parameters, r.batch_size, args.iters, args.warmup
    )?;
    if r.software {
        writeln!(
            out,
            "note: {} is a software adapter (Vulkan on the CPU): these figures say nothing about GPU speed",
            r.adapter.as_deref().unwrap_or("the adapter")
        )?;
    }
    writeln!(
        out,
        "training:  {:>9.1} images/s  ({:.2} ms per step: forward, backward, SGD)",
        r.train_images_per_sec(),
        1e3 * r.train_step_s
    )?;
    writeln!(
        out,
        "inference: {:>9.1} images/s  ({:.2} ms per batch of {}, eval mode)",
        r.infer_images_per_sec(),
        1e3 * r.infer_batch_s,
        r.batch_size
    )?;
    writeln!(
        out,
        "latency:   {:>9.3} ms       (batch 1{})",
        1e3 * r.latency_s,
        if r.device == "cpu" {
            ", one thread"
        } else {
            ", logits read back"
        }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
