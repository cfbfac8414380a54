//! `torchlet eval`: a saved model's loss, accuracy, per-class accuracy and confusion matrix on a
//! data set, in eval mode without gradients (the tutorial's test loop).
//!
//! The data set is opened as `torchlet train` opens it (`--dataset`, `--data-dir`, `--seed` for
//! the digits' held-out split) and `--split test` (the held-out part) or `train`. Labels are
//! mapped to the model's classes by name: a folder whose class names are not the model's is
//! refused. `--json` prints one JSON object: `accuracy` (0 to 1), `loss`, `per_class` (class
//! name to accuracy) and `confusion` (rows: true class, columns: predicted class, in the
//! model's class order).
//!
//! `--confusion-png FILE` also draws the confusion matrix as a picture ([`crate::confusion_png`])
//! and writes it atomically ([`crate::fsutil::write_atomic`]); the path is checked before the
//! data is read, and the report says where the picture went (on stderr with `--json`, so that
//! stdout stays one JSON object).
//!
//! `--device cpu|gpu|auto` (default `auto`, see [`crate::train::gpu`]) runs the forward passes
//! on a GPU when asked ([`evaluate_gpu`]); the loss is then computed on the CPU from the logits
//! brought back. The report names the device.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use torchlet::loss::CrossEntropyLoss;
use torchlet::{Mode, Network};

use super::dataset::load_data;
use super::train::DatasetKind;
use crate::data::loader::DataLoader;
use crate::data::{Dataset, Label};
use crate::model::Model;
use crate::train::argmax;
use crate::train::gpu::{choose, cross_entropy_sum, Compute};
use crate::transforms::Transformed;

/// Which part of the data set `torchlet eval` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Split {
    /// The held-out part (the data set's test split, or the digits' 360 held out).
    Test,
    /// The training part.
    Train,
}

/// Arguments of `torchlet eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file (.tlm: a model or a checkpoint).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The data set.
    #[arg(long, value_enum, default_value = "digits")]
    pub dataset: DatasetKind,
    /// Where the data set is (not needed for digits).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Which part to measure.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// The seed the model was trained with (it picks the digits' held-out images).
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Samples per batch.
    #[arg(long, value_name = "N", default_value = "256")]
    pub batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write the confusion matrix as a picture (PNG): rows the true class, columns the
    /// predicted class, cells coloured by their share of the row.
    #[arg(long, value_name = "FILE")]
    pub confusion_png: Option<PathBuf>,
    /// Where to run the model: cpu, gpu (any adapter, software ones included) or auto (a
    /// hardware GPU that can run the model, else the CPU).
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = crate::train::gpu::parse_device)]
    pub device: torchlet_gpu::Selection,
}

/// What `torchlet eval` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy loss.
    pub loss: f64,
    /// Fraction classified correctly, 0 to 1.
    pub accuracy: f64,
    /// `confusion[t][p]`: samples of class `t` predicted as `p`.
    pub confusion: Vec<Vec<u64>>,
}

/// Evaluates `model` on `data` (labels already in the model's class order), `batch` samples
/// at a time.
///
/// # Errors
/// A loading error, or a model that does not plan for the data.
pub fn evaluate(model: &Model, data: Box<dyn Dataset>, batch: usize) -> Result<Evaluation, Box<dyn std::error::Error>> {
    let plan = model.plan(batch.max(1), Mode::Inference)?;
    let outputs = plan.output_shape().numel().max(1);
    let mut arena = crate::mem::zeros(
        plan.arena_len(),
        &format!("the inference arena for batch {}", batch.max(1)),
    )?;
    let mut net = Network::with_weights(&plan, &model.params, &model.state, &mut arena)?;
    net.set_gemm(crate::kernels::best());
    let loss_fn = CrossEntropyLoss::new();
    let mut confusion = vec![vec![0u64; outputs]; outputs];
    let (mut total, mut n) = (0.0f64, 0usize);
    for b in DataLoader::new(data).batch_size(batch.max(1)).epoch(0)? {
        let b = b?;
        let logits = net.forward(&b.images)?;
        for (row, &l) in logits.chunks(outputs).zip(&b.labels) {
            if let Some(r) = confusion.get_mut(l as usize) {
                r[argmax(row)] += 1;
            }
        }
        total += f64::from(net.loss(&loss_fn, &b.labels[..])?) * b.len() as f64;
        n += b.len();
    }
    let correct: u64 = (0..outputs).map(|k| confusion[k][k]).sum();
    Ok(Evaluation {
        loss: total / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
    })
}

/// [`evaluate`] on the GPU `dev`: the forward passes there, the logits read back per batch, the
/// loss and the confusion matrix computed from them on the CPU.
///
/// # Errors
/// A loading error, a model the GPU cannot run, or a GPU error (out of memory, a lost device).
pub fn evaluate_gpu(
    model: &Model,
    dev: &torchlet_gpu::Device,
    data: Box<dyn Dataset>,
    batch: usize,
) -> Result<Evaluation, Box<dyn std::error::Error>> {
    // torchlet-gpu runs training plans only; its forward pass runs in eval mode (BatchNorm
    // with the model's running statistics, Dropout off), the same as an inference plan's.
    let plan = model.plan(batch.max(1), Mode::Training)?;
    let outputs = plan.output_shape().numel().max(1);
    let mut net = torchlet_gpu::GpuNetwork::new(dev, &*plan, &model.params)?;
    net.set_state(&model.state)?;
    let mut confusion = vec![vec![0u64; outputs]; outputs];
    let (mut total, mut n) = (0.0f64, 0usize);
    for b in DataLoader::new(data).batch_size(batch.max(1)).epoch(0)? {
        let b = b?;
        let logits = net
            .forward(&b.images)
            .map_err(|e| format!("running the model on the GPU: {e}"))?;
        for (row, &l) in logits.chunks(outputs).zip(&b.labels) {
            if let Some(r) = confusion.get_mut(l as usize) {
                r[argmax(row)] += 1;
            }
        }
        total += cross_entropy_sum(&logits, outputs, &b.labels)?;
        n += b.len();
    }
    let correct: u64 = (0..outputs).map(|k| confusion[k][k]).sum();
    Ok(Evaluation {
        loss: total / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
    })
}

/// The model's label of each of the data's classes, by name; an error naming the first class
/// the model does not know.
fn class_map(model: &Model, path: &Path, data: &[String]) -> Result<Vec<Label>, String> {
    if model.classes.is_empty() {
        return Ok((0..data.len() as Label).collect());
    }
    data.iter()
        .map(|c| {
            model
                .classes
                .iter()
                .position(|m| m == c)
                .map(|i| i as Label)
                .ok_or_else(|| {
                    format!(
                        "the data set's class '{c}' is not one of the classes of {} ({}): \
                     the data's classes are [{}]",
                        path.display(),
                        model.classes.join(", "),
                        data.join(", ")
                    )
                })
        })
        .collect()
}

/// Checks, before evaluating, that `--confusion-png` can write `path`: its folder exists and
/// it is not a directory, a FIFO or a device.
fn check_png_path(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "--confusion-png {}: expected a file in an existing folder, but {} is not a folder",
            path.display(),
            dir.display()
        ));
    }
    crate::fsutil::check_target(path).map_err(|e| format!("--confusion-png: {e}"))
}

/// Draws `confusion` named with `classes` and writes it to `path` (`--confusion-png`).
fn write_png(path: &Path, confusion: &[Vec<u64>], classes: &[String]) -> Result<(), String> {
    let img = crate::confusion_png::render(confusion, classes);
    let bytes = crate::confusion_png::png(&img)
        .map_err(|e| format!("--confusion-png {}: cannot encode the picture: {e}", path.display()))?;
    crate::fsutil::write_atomic(path, &bytes).map_err(|e| {
        if e.path == path {
            format!("--confusion-png: {e}")
        } else {
            format!("--confusion-png {}: {e}", path.display())
        }
    })
}

/// Runs `torchlet eval`, printing the report (or one JSON object) to `out`.
///
/// # Errors
/// A message for the user: a model or data set that cannot be read or that do not fit.
pub fn run(args: &EvalArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    if let Some(path) = &args.confusion_png {
        check_png_path(path)?;
    }
    let model = Model::load(&args.model)?;
    let data = load_data(
        args.dataset,
        args.data_dir.as_deref(),
        model.input,
        false,
        None,
        args.seed,
    )?;
    let map = class_map(&model, &args.model, &data.classes)?;
    let part = match args.split {
        Split::Test => data.test,
        Split::Train => data.train,
    };
    super::dataset::check_fit(&model, &*part, 0)?;
    let n = part.len();
    let mapped = Transformed::new(part).target_transform(move |l| map.get(l as usize).copied().unwrap_or(l));
    let choice = choose(args.device, &model, None)?;
    let e = match &choice.compute {
        Compute::Gpu(dev) => evaluate_gpu(&model, dev, Box::new(mapped), args.batch_size)?,
        Compute::Cpu => evaluate(&model, Box::new(mapped), args.batch_size)?,
    };
    let device = match &choice.compute {
        Compute::Gpu(_) => "gpu",
        Compute::Cpu => "cpu",
    };
    let name = |k: usize| model.classes.get(k).cloned().unwrap_or_else(|| k.to_string());
    let per_class: Vec<(String, f64, u64, u64)> = e
        .confusion
        .iter()
        .enumerate()
        .filter(|(_, row)| row.iter().sum::<u64>() > 0)
        .map(|(k, row)| {
            let t: u64 = row.iter().sum();
            (name(k), row[k] as f64 / t as f64, row[k], t)
        })
        .collect();
    if args.json {
        let per: serde_json::Map<String, serde_json::Value> = per_class
            .iter()
            .map(|(c, a, _, _)| (c.clone(), serde_json::json!(a)))
            .collect();
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "dataset": args.dataset.name(),
            "split": match args.split { Split::Test => "test", Split::Train => "train" },
            "samples": n,
            "device": device,
            "adapter": choice.compute.gpu().map(|d| d.adapter().to_string()),
            "loss": e.loss,
            "accuracy": e.accuracy,
            "per_class": per,
            "classes": (0..e.confusion.len()).map(name).collect::<Vec<_>>(),
            "confusion": e.confusion,
        });
        writeln!(out, "{v}")?;
        return save_picture(args, &e.confusion, &model.classes, out);
    }
    writeln!(
        out,
        "model: {} ({}); data: {}, {} images; device {choice}",
        args.model.display(),
        model.name,
        args.dataset.name(),
        n
    )?;
    writeln!(out, "loss {:.4}  accuracy {:.2}%", e.loss, 100.0 * e.accuracy)?;
    writeln!(out, "per class:")?;
    for (c, a, ok, t) in &per_class {
        writeln!(out, "  {c:>12}  {:6.2}%  ({ok}/{t})", 100.0 * a)?;
    }
    writeln!(out, "confusion matrix (rows: true class, columns: predicted):")?;
    for (k, row) in e.confusion.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:5}")).collect();
        writeln!(out, "  {:>12} {}", name(k), cells.join(""))?;
    }
    save_picture(args, &e.confusion, &model.classes, out)
}

/// `--confusion-png`, if given: writes the picture, then says where (on stderr with `--json`).
fn save_picture(
    args: &EvalArgs,
    confusion: &[Vec<u64>],
    classes: &[String],
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = &args.confusion_png else {
        return Ok(());
    };
    write_png(path, confusion, classes)?;
    let line = format!("confusion matrix picture written to {}", path.display());
    if args.json {
        eprintln!("{line}");
    } else {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
