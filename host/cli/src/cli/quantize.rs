//! `torchlet quantize`: post-training int8 quantisation of a trained model.
//!
//! ```text
//! torchlet quantize --model M.tlm [--dataset D --data-dir DIR] --calibration N --out q.tlm
//!                   [--observer minmax|percentile]
//! ```
//!
//! Calibrates on the first `N` images of the training part of the data (the images the run
//! that trained the model trained on, picked as `torchlet eval --split train` picks them),
//! builds the int8 model ([`crate::quant`]: BatchNorm folded, ReLU/ReLU6 fused, weights per
//! channel), scores the `f32` and the int8 model on the held-out part (the images `torchlet
//! eval` scores by default) and writes the int8 file atomically. A progress bar runs over the
//! calibration images on a terminal (`--quiet` hides it). Nothing is written when calibration
//! fails: an empty or one-class calibration set, a layer without an int8 kernel (named),
//! NaN or infinite activations, scales outside the fixed-point range.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::eval::{evaluate, scored_data, EvalArgs, Evaluation, Split};
use super::train::DatasetKind;
use crate::data::loader::DataLoader;
use crate::data::Dataset;
use crate::model::Model;
use crate::quant::{calibrate, quantize, Observer, QuantizedModel, Runner};
use crate::train::argmax;

/// Arguments of `torchlet quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The trained f32 model (.tlm).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The data set (default: the one the model was trained on, else digits).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Where the data set is (default: the model's training folder; not needed for digits).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How many training images to calibrate on (at least 1).
    #[arg(long, value_name = "N", default_value = "500", value_parser = super::train::positive, allow_negative_numbers = true)]
    pub calibration: usize,
    /// How each activation range is chosen.
    #[arg(long, value_enum, default_value = "minmax")]
    pub observer: Observer,
    /// The int8 model file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The seed that picks held-out images (default: the run's).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Samples per batch.
    #[arg(long, value_name = "N", default_value = "64", value_parser = super::train::positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// [`evaluate`] for an int8 model (on the CPU, with the int8 executor; the loss is computed
/// from the dequantised logits).
///
/// # Errors
/// A loading error or a model that does not run.
pub fn evaluate_int8(
    q: &QuantizedModel,
    data: Box<dyn Dataset>,
    batch: usize,
) -> Result<Evaluation, Box<dyn std::error::Error>> {
    let plan = q.plan(batch.max(1))?;
    let outputs = plan.output_shape().numel().max(1);
    let mut runner = Runner::new(q, &plan)?;
    let mut confusion = vec![vec![0u64; outputs]; outputs];
    let (mut total, mut n) = (0.0f64, 0usize);
    for b in DataLoader::new(data).batch_size(batch.max(1)).epoch(0)? {
        let b = b?;
        let logits = runner.forward(&b.images)?;
        for (row, &l) in logits.chunks(outputs).zip(&b.labels) {
            if let Some(r) = confusion.get_mut(l as usize) {
                r[argmax(row)] += 1;
            }
        }
        total += crate::train::gpu::cross_entropy_sum(&logits, outputs, &b.labels)?;
        n += b.len();
    }
    let correct: u64 = (0..outputs).map(|k| confusion[k][k]).sum();
    Ok(Evaluation {
        loss: total / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
    })
}

/// The first `n` images of `data` (`[n, *input]`) and how many distinct labels they have.
fn first_images(
    data: Box<dyn Dataset>,
    n: usize,
    batch: usize,
) -> Result<(Vec<f32>, usize), Box<dyn std::error::Error>> {
    let mut images = Vec::new();
    let mut labels = std::collections::BTreeSet::new();
    let mut taken = 0usize;
    for b in DataLoader::new(data).batch_size(batch.max(1)).epoch(0)? {
        let b = b?;
        let per = b.images.len() / b.len().max(1);
        let k = b.len().min(n - taken);
        images.extend_from_slice(&b.images[..k * per]);
        labels.extend(b.labels[..k].iter().copied());
        taken += k;
        if taken == n {
            break;
        }
    }
    Ok((images, labels.len()))
}

/// The `EvalArgs` that pick the same images `torchlet eval` would for this model.
fn eval_args(args: &QuantizeArgs) -> EvalArgs {
    EvalArgs {
        model: args.model.clone(),
        dataset: args.dataset,
        data_dir: args.data_dir.clone(),
        skip_bad: false,
        split: None,
        seed: args.seed,
        batch_size: args.batch_size,
        json: false,
        confusion_png: None,
        device: torchlet_gpu::Selection::Cpu,
    }
}

/// Runs `torchlet quantize`, printing the report to `out`.
///
/// # Errors
/// A message for the user; nothing is written then.
pub fn run(args: &QuantizeArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    crate::fsutil::check_target(&args.out).map_err(|e| format!("--out: {e}"))?;
    let model = Model::load(&args.model)?;
    let ea = eval_args(args);
    let (train_scope, train, available) = scored_data(&ea, &model, Some(Split::Train))?;
    let n = args.calibration.min(available);
    if n == 0 {
        return Err(format!(
            "--calibration: the training part of {} is empty",
            train_scope.dataset.name()
        )
        .into());
    }
    let (images, classes) = first_images(train, n, args.batch_size)?;
    if classes < 2 {
        return Err(format!(
            "--calibration {n}: the calibration images hold {classes} class; quantising needs \
             images of at least 2 classes (use more images)"
        )
        .into());
    }
    let bar = progress_bar(n, args.quiet);
    let ranges = calibrate(&model, &images, args.batch_size, args.observer, |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let q = quantize(&model, &ranges)?;
    let (scope, test, held) = scored_data(&ea, &model, None)?;
    let f = evaluate(&model, test, args.batch_size)?;
    let (_, test, _) = scored_data(&ea, &model, None)?;
    let e = evaluate_int8(&q, test, args.batch_size)?;
    q.save(&args.out)?;
    report(out, args, &model, &q, n, held, &scope.describe, &f, &e)
}

/// The calibration progress bar (hidden with `--quiet` or without a terminal).
fn progress_bar(n: usize, quiet: bool) -> indicatif::ProgressBar {
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(n as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("calibrating [{bar:30}] {pos}/{len} images {per_sec} ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Prints what was done and measured.
#[allow(clippy::too_many_arguments)]
fn report(
    out: &mut dyn Write,
    args: &QuantizeArgs,
    model: &Model,
    q: &QuantizedModel,
    calibrated: usize,
    held: usize,
    images: &str,
    f: &Evaluation,
    e: &Evaluation,
) -> Result<(), Box<dyn std::error::Error>> {
    let lay = q.layout(1)?;
    let f32_plan = model.plan(1, torchlet::Mode::Inference)?;
    writeln!(
        out,
        "quantised {} ({}) to int8: calibrated on {calibrated} training images ({} observer)",
        args.model.display(),
        model.name,
        match args.observer {
            Observer::MinMax => "min/max",
            Observer::Percentile => "percentile",
        }
    )?;
    writeln!(out, "held-out images: {images} ({held} images)")?;
    writeln!(
        out,
        "accuracy: f32 {:.2}%  int8 {:.2}%  ({:+.2} points); loss f32 {:.4}  int8 {:.4}",
        100.0 * f.accuracy,
        100.0 * e.accuracy,
        100.0 * (e.accuracy - f.accuracy),
        f.loss,
        e.loss
    )?;
    writeln!(
        out,
        "weights: f32 {} bytes, int8 {} bytes ({} weights + {} channels × 12 bytes of bias/multiplier/shift)",
        4 * model.param_count(),
        lay.param_bytes(),
        lay.weights,
        lay.channels
    )?;
    writeln!(
        out,
        "arena at batch 1: f32 {} bytes, int8 {} bytes ({} i8 + {} i16 scratch)",
        f32_plan.arena_bytes(),
        lay.ram_bytes(),
        lay.arena,
        lay.scratch
    )?;
    writeln!(out, "wrote {}", args.out.display())?;
    Ok(())
}
