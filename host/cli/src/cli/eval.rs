//! `torchlet eval`: a saved model's loss, accuracy, per-class accuracy and confusion matrix on a
//! data set, in eval mode without gradients (the tutorial's test loop).
//!
//! The data set is opened as `torchlet train` opens it (`--dataset`, `--data-dir`). Which images
//! are scored follows the model's run record ([`super::run_record`]): on the data the model was
//! trained on (the default when `--dataset` and `--data-dir` are left out), `--split test` (the
//! default) is that run's held-out part, picked with the run's seed and `--val-split`, and
//! `--split train` its training part; on any other data set `--split all` (the default) scores
//! every image. A model without a run record gets the data set's test split (the digits' 360
//! held out with `--seed`). The report says which images it used. Labels are
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
use super::run_record::{RunRecord, RunRecordError};
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
    /// The held-out part (the run's, or the data set's test split).
    Test,
    /// The training part.
    Train,
    /// Every image.
    All,
}

impl Split {
    /// The name `--split` takes.
    pub fn name(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Train => "train",
            Split::All => "all",
        }
    }
}

/// Arguments of `torchlet eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file (.tlm: a model or a checkpoint).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The data set (default: the one the model was trained on, else digits).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Where the data set is (default: the folder the model was trained on; not needed for
    /// digits).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Image folders: decode every image first and leave out (and list) those that do not
    /// decode, instead of stopping at the first one. Refused for data sets without image files
    /// (digits, MNIST's IDX files, CIFAR-10's binary batches).
    #[arg(long)]
    pub skip_bad: bool,
    /// Which part to measure (default: the held-out images of the run that trained the model
    /// on its own data; every image of any other data set).
    #[arg(long, value_enum)]
    pub split: Option<Split>,
    /// The seed that picks held-out images (default: the run's; 0 for a model without a run
    /// record).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Samples per batch.
    #[arg(long, value_name = "N", default_value = "256", value_parser = super::train::positive, allow_negative_numbers = true)]
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

/// What `torchlet eval` scores: the data set, its folder and which of its images.
struct Scope {
    dataset: DatasetKind,
    data_dir: Option<PathBuf>,
    split: Split,
    seed: u64,
    val_split: Option<f32>,
    /// Leave out images that do not decode (`--skip-bad`, or the run did).
    skip_bad: bool,
    /// The record of the run that trained the model, when this is the data it was trained on.
    trained_here: Option<RunRecord>,
    /// The model has a run record (of this data or another).
    has_record: bool,
    /// `--seed` differs from the seed of the run that trained the model here.
    seed_differs: bool,
}

impl Scope {
    /// The scope of `args` for `model` (see the [module docs](self)).
    fn of(args: &EvalArgs, model: &Model) -> Result<Scope, RunRecordError> {
        let run = model
            .run
            .as_deref()
            .map(|text| RunRecord::parse(text, &args.model))
            .transpose()?;
        let dataset = args
            .dataset
            .or(run.as_ref().map(|r| r.dataset))
            .unwrap_or(DatasetKind::Digits);
        let data_dir = args.data_dir.clone().or_else(|| {
            run.as_ref()
                .filter(|r| r.dataset == dataset)
                .and_then(|r| r.data_dir.clone())
        });
        let has_record = run.is_some();
        let trained_here = run.filter(|r| r.same_data(dataset, data_dir.as_deref()));
        let seed = args.seed.or(trained_here.as_ref().map(|r| r.seed)).unwrap_or(0);
        Ok(Scope {
            dataset,
            data_dir,
            split: args.split.unwrap_or(if has_record && trained_here.is_none() {
                Split::All
            } else {
                Split::Test
            }),
            seed,
            val_split: trained_here.as_ref().and_then(|r| r.val_split),
            // The run's split indexes the images it kept: skip the same ones.
            skip_bad: args.skip_bad || trained_here.as_ref().is_some_and(|r| r.skip_bad),
            seed_differs: trained_here.as_ref().is_some_and(|r| r.seed != seed),
            trained_here,
            has_record,
        })
    }

    /// Which images are scored, in words.
    fn describe(&self) -> String {
        let warning = if self.seed_differs {
            format!(
                " (warning: --seed {} is not the run's seed, so these are not the images it held out \
                 and may include images it trained on)",
                self.seed
            )
        } else {
            String::new()
        };
        match (self.split, &self.trained_here) {
            (Split::Test, Some(r)) => format!(
                "the held-out images of the run that trained the model ({}){warning}",
                r.held_out()
            ),
            (Split::Train, Some(r)) => format!(
                "the training images of the run that trained the model ({}){warning}",
                r.held_out()
            ),
            (Split::All, Some(_)) => "every image of the data set, training images of the model included".to_string(),
            (Split::All, None) if self.has_record => "every image (the model was not trained on this data)".to_string(),
            (Split::All, None) => "every image".to_string(),
            (Split::Test, None) if self.has_record => {
                "the data set's held-out split (the model was not trained on this data)".to_string()
            }
            (Split::Test, None) => {
                "the data set's held-out split (the model has no run record, so its own held-out images are not known)"
                    .to_string()
            }
            (Split::Train, None) => "the data set's training split".to_string(),
        }
    }
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

/// The images `torchlet eval` scores for `model` with `args` (`split` overriding `--split`):
/// the scope, the data with labels in the model's class order, and its length.
///
/// # Errors
/// A data set that cannot be read or does not fit the model.
pub(crate) fn scored_data(
    args: &EvalArgs,
    model: &Model,
    split: Option<Split>,
) -> Result<ScoredData, Box<dyn std::error::Error>> {
    let mut scope = Scope::of(args, model)?;
    if let Some(s) = split {
        scope.split = s;
    }
    let data = load_data(
        scope.dataset,
        scope.data_dir.as_deref(),
        model.input,
        false,
        scope.val_split,
        scope.seed,
        scope.skip_bad,
    )?;
    let _ = data.left_out.print(&mut std::io::stderr());
    let map = class_map(model, &args.model, &data.classes)?;
    let part = match scope.split {
        Split::Test => data.test,
        Split::Train => data.train,
        Split::All => Box::new(data.train.concat(data.test)),
    };
    super::dataset::check_fit(model, &*part, 0)?;
    let n = part.len();
    let mapped = Transformed::new(part).target_transform(move |l| map.get(l as usize).copied().unwrap_or(l));
    let info = ScopeInfo {
        dataset: scope.dataset,
        split: scope.split,
        describe: scope.describe(),
    };
    Ok((info, Box::new(mapped), n))
}

/// What [`scored_data`] returns: the scope, the data, its length.
pub(crate) type ScoredData = (ScopeInfo, Box<dyn Dataset>, usize);

/// Which images were scored, for reports.
pub(crate) struct ScopeInfo {
    /// The data set.
    pub dataset: DatasetKind,
    /// The part of it.
    pub split: Split,
    /// In words.
    pub describe: String,
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
    let loaded = crate::quant::AnyModel::load(&args.model)?;
    let (model, int8) = match loaded {
        crate::quant::AnyModel::F32(m) => (*m, None),
        crate::quant::AnyModel::Int8(q) => (q.meta_model()?, Some(q)),
    };
    let (scope, mapped, n) = scored_data(args, &model, args.split)?;
    let (e, device, choice_line, adapter) = match &int8 {
        Some(q) => (
            super::quantize::evaluate_int8(q, mapped, args.batch_size)?,
            "cpu",
            "cpu (int8 executor)".to_string(),
            None,
        ),
        None => {
            let choice = choose(args.device, &model, None)?;
            if let Some(warning) = choice.warning() {
                eprintln!("{warning}");
            }
            let e = match &choice.compute {
                Compute::Gpu(dev) => evaluate_gpu(&model, dev, mapped, args.batch_size)?,
                Compute::Cpu => evaluate(&model, mapped, args.batch_size)?,
            };
            let device = match &choice.compute {
                Compute::Gpu(_) => "gpu",
                Compute::Cpu => "cpu",
            };
            let adapter = choice.compute.gpu().map(|d| d.adapter().to_string());
            (e, device, choice.to_string(), adapter)
        }
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
            "dataset": scope.dataset.name(),
            "split": scope.split.name(),
            "images": scope.describe,
            "samples": n,
            "device": device,
            "adapter": adapter,
            "dtype": if int8.is_some() { "int8" } else { "f32" },
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
        "model: {} ({}{}); data: {}, {} images; device {choice_line}",
        args.model.display(),
        model.name,
        if int8.is_some() { ", int8" } else { "" },
        scope.dataset.name(),
        n
    )?;
    writeln!(out, "images: {}", scope.describe)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn scope(model: &Model, line: &str) -> Scope {
        let cli =
            crate::cli::Cli::try_parse_from(format!("torchlet eval --model m.tlm {line}").split_whitespace()).unwrap();
        match cli.command {
            crate::cli::Command::Eval(a) => Scope::of(&a, model).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_run_record_picks_the_images() {
        let mut model = Model::from_zoo("digits-cnn", 0).unwrap();
        // No record: the data set's test split, seed 0.
        let s = scope(&model, "");
        assert_eq!(
            (s.dataset, s.split, s.seed, s.val_split),
            (DatasetKind::Digits, Split::Test, 0, None)
        );
        assert!(s.describe().contains("no run record"), "{}", s.describe());
        // Trained on a folder of images: that folder by default, the run's split and seed.
        let train =
            |line: &str| match crate::cli::Cli::try_parse_from(format!("torchlet train {line}").split_whitespace())
                .unwrap()
                .command
            {
                crate::cli::Command::Train(a) => RunRecord::new(&a),
                _ => unreachable!(),
            };
        model.run = Some(train("--dataset image-folder --data-dir /no/such/folder --seed 5 --val-split 0.2").to_text());
        let s = scope(&model, "");
        assert_eq!(s.dataset, DatasetKind::ImageFolder);
        assert_eq!(s.data_dir.as_deref(), Some(Path::new("/no/such/folder")));
        assert_eq!((s.split, s.seed, s.val_split), (Split::Test, 5, Some(0.2)));
        assert!(
            s.describe().contains("--val-split 0.2 with --seed 5"),
            "{}",
            s.describe()
        );
        // Any other data: every image.
        let s = scope(&model, "--dataset digits");
        assert_eq!((s.split, s.val_split), (Split::All, None));
        assert!(s.describe().contains("not trained on this data"), "{}", s.describe());
        let s = scope(&model, "--dataset image-folder --data-dir /another/folder");
        assert_eq!(s.split, Split::All);
    }
}
