//! `torchlet train`: train a zoo model on a data set, testing, logging and saving every epoch.
//!
//! With no arguments it trains `digits-cnn` on the embedded digits (360 held out) and reaches
//! about 98 % held-out accuracy in seconds: the README's first command. `--dataset cifar10
//! --data-dir DIR` runs the PyTorch tutorial's CIFAR-10 routine (`tutorial-cnn`, batch 64,
//! SGD lr 0.01 momentum 0.9); `DIR` is either CIFAR-10's binary folder
//! (`DIR/cifar-10-batches-bin/`) or a folder per class (`DIR/train/CLASS/*.png` and
//! `DIR/test/CLASS/...`, or `DIR/CLASS/...` split with `--val-split`). The loop itself is
//! [`crate::train::fit`].
//!
//! `--device cpu|gpu|auto` (default `auto`) picks where it trains
//! ([`crate::train::gpu::choose`]): `auto` takes a hardware GPU when wgpu finds one that runs
//! the model and the CPU otherwise; `gpu` also takes a software adapter (lavapipe) and is an
//! error when the GPU cannot run the model or the optimizer. The start line names the choice.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use clap::{Args, ValueEnum};

use super::dataset::{check_fit, load_data};
use super::run_record::{RunRecord, RunRecordError};
use crate::data::{Dataset, Subset};
use crate::model::Checkpoint;
use crate::train::gpu::{choose, Compute};
use crate::train::{fit_on_with, OptimizerKind, SchedulerKind, TrainConfig, TrainError};
use crate::zoo::ZooConfig;

/// The data sets `--dataset` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// The embedded 8×8 digits (1,797 images, 10 classes), 360 held out.
    Digits,
    /// CIFAR-10: its binary folder, or a folder per class.
    Cifar10,
    /// Any folder per class (`--val-split` when it has no `train/` and `test/`).
    ImageFolder,
    /// MNIST's IDX files (in DIR or DIR/MNIST/raw/, raw or gzipped).
    Mnist,
    /// Fashion-MNIST's IDX files (in DIR or DIR/FashionMNIST/raw/).
    FashionMnist,
}

impl DatasetKind {
    /// The name used in `--dataset` and in default output folders.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Digits => "digits",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::ImageFolder => "image-folder",
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }
}

/// Arguments of `torchlet train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The data set (default: digits).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Where the data set is (not needed for digits).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Image folders: decode every image first and leave out (and list) those that do not
    /// decode, instead of stopping at the first one. Refused for data sets without image files
    /// (digits, MNIST's IDX files, CIFAR-10's binary batches).
    #[arg(long)]
    pub skip_bad: bool,
    /// The zoo model to train: tutorial-cnn, digits-cnn, lenet5, mcu-cnn, alexnet, vgg11, vgg16
    /// or resnet18 (default: digits-cnn for digits and (Fashion-)MNIST, resized to 8×8;
    /// tutorial-cnn otherwise).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Outputs of the model's classifier head (default: the data set's class count).
    #[arg(long, value_name = "N", value_parser = num_classes, allow_negative_numbers = true, conflicts_with = "resume")]
    pub num_classes: Option<usize>,
    /// Start from the weights of this model file, checkpoint or state dict (transfer learning):
    /// a classifier head of another class count is re-initialised, everything else is loaded.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Epochs in all (default: 15 for digits, 10 otherwise).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Samples per batch (default: 32 for digits, 64 otherwise).
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Learning rate (default: 0.05 for digits, 0.01 otherwise).
    #[arg(long, allow_hyphen_values = true, value_name = "LR")]
    pub lr: Option<f32>,
    /// The optimizer (default: sgd).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// SGD momentum (default: 0.9).
    #[arg(long, allow_hyphen_values = true, value_name = "M")]
    pub momentum: Option<f32>,
    /// Weight decay, the L2 penalty (default: 0).
    #[arg(long, allow_hyphen_values = true, value_name = "WD")]
    pub weight_decay: Option<f32>,
    /// Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Learning-rate schedule (default: none).
    #[arg(long, value_enum)]
    pub scheduler: Option<SchedulerKind>,
    /// Augment training images: RandomCrop(size, padding=4) and RandomHorizontalFlip
    /// (image data sets only).
    #[arg(long)]
    pub augment: bool,
    /// Hold out this fraction of the training images instead of the data set's test split.
    #[arg(long, allow_hyphen_values = true, value_name = "F")]
    pub val_split: Option<f32>,
    /// Seed of the initialisation, the shuffles and the splits (default: 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// DataLoader worker threads.
    #[arg(long, value_name = "N", default_value = "0", allow_negative_numbers = true)]
    pub workers: usize,
    /// Where to train: cpu, gpu (any adapter, software ones such as lavapipe included; an
    /// error if there is none or it cannot run the model) or auto (a hardware GPU that can run
    /// the model, else the CPU).
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = crate::train::gpu::parse_device)]
    pub device: torchlet_gpu::Selection,
    /// Threads that share each batch's forward and backward pass (default: all cores). With
    /// a fixed seed the result does not depend on it beyond floating-point summation order
    /// (except BatchNorm statistics and Dropout masks, which are per thread).
    #[arg(long, value_name = "N", value_parser = crate::train::parallel::parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Continue from this checkpoint (exactly: weights, optimizer, epoch, step, RNG) with the
    /// run's own settings, which the checkpoint records: flags left out take the run's values,
    /// and flags that contradict them are refused, except --epochs, --lr (a note is printed)
    /// and --data-dir (the data may have moved).
    #[arg(long, value_name = "CHECKPOINT")]
    pub resume: Option<PathBuf>,
    /// Stop when the held-out accuracy has not improved for N epochs.
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true)]
    pub patience: Option<usize>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true)]
    pub limit: Option<usize>,
    /// Where the model files go (default: runs/DATASET-YYYYMMDD-HHMMSS/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Train into an `--out` folder that holds another run: its run files (last, best,
    /// interrupted, epoch-N, tensorboard/) are removed first. Without it such a folder is
    /// refused, unless `--resume` continues its checkpoint.
    #[arg(long)]
    pub overwrite: bool,
    /// Write OUT/epoch-N.tlm every N epochs (and after the last; default: 1); last.tlm and
    /// best.tlm are written every epoch. A resumed run keeps its own unless given again.
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true)]
    pub save_every: Option<usize>,
    /// Keep only the newest K epoch-N.tlm files (default: all; a resumed run keeps its own).
    #[arg(long, value_name = "K", value_parser = positive, allow_negative_numbers = true)]
    pub keep_last: Option<usize>,
    /// A folder of TensorBoard runs: this run logs to DIR/NAME, NAME being the --out folder's
    /// name, so `tensorboard --logdir DIR` compares runs (default: OUT/tensorboard).
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A whole number of at least 1 (`--batch-size`, `--limit`, `--patience`, `--save-every`, ...).
pub(crate) fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}

/// `--num-classes`: a whole number from 1 to 2^32 - 1 (model files count class names in 32
/// bits; larger heads could never be saved, and their weight counts overflow).
pub(crate) fn num_classes(s: &str) -> Result<usize, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n as usize),
        _ => Err(format!(
            "expected a whole number of at least 1 and at most {}",
            u32::MAX
        )),
    }
}

/// What `torchlet train` adapts its zoo model to: the data set's channels (and the digits'
/// fixed 8×8; other images are resized to the model's size) and `--num-classes`.
fn zoo_config(dataset: DatasetKind, num_classes: Option<usize>) -> ZooConfig {
    let (channels, size) = match dataset {
        DatasetKind::Digits => (Some(1), Some((8, 8))),
        DatasetKind::Mnist | DatasetKind::FashionMnist => (Some(1), None),
        DatasetKind::Cifar10 | DatasetKind::ImageFolder => (Some(3), None),
    };
    ZooConfig {
        channels,
        size,
        num_classes,
    }
}

/// The run `args` start, or continue from `resume` (saved at `args.resume`): see
/// [`RunRecord::resume`]. Lines for the user go to `notes`.
///
/// # Errors
/// A checkpoint whose run record is unreadable, or flags that contradict it.
fn run_record(
    args: &TrainArgs,
    resume: Option<&Checkpoint>,
    notes: &mut Vec<String>,
) -> Result<RunRecord, RunRecordError> {
    let (Some(path), Some(ckpt)) = (&args.resume, resume) else {
        return Ok(RunRecord::new(args));
    };
    match &ckpt.model.run {
        Some(text) => RunRecord::parse(text, path)?.resume(args, path, notes),
        None => {
            notes.push(format!(
                "--resume {}: the checkpoint has no run record (an older torchlet wrote it), so the \
                 flags given are used as they are, unchecked",
                path.display()
            ));
            Ok(RunRecord::new(args))
        }
    }
}

/// The flag Ctrl-C sets (the handler is installed once per process).
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    Arc::clone(FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = Arc::clone(&flag);
        // Without a handler (another one is installed), Ctrl-C just ends the process.
        let _ = ctrlc::set_handler(move || {
            eprintln!("\nCtrl-C: stopping after this step and saving a checkpoint");
            set.store(true, Ordering::SeqCst);
        });
        flag
    }))
}

/// The line that starts a run: the data, the model, the schedule and the device.
fn start_line(
    out: &mut dyn Write,
    run: &RunRecord,
    (train, held_out): (usize, usize),
    model: &crate::model::Model,
    cfg: &TrainConfig,
    choice: &crate::train::gpu::Choice,
) -> std::io::Result<()> {
    let compute = match &choice.compute {
        Compute::Gpu(_) => format!("device {choice}"),
        Compute::Cpu => format!(
            "device {choice}, {} thread{} ({} matrix multiply)",
            cfg.threads,
            if cfg.threads == 1 { "" } else { "s" },
            crate::kernels::best().name()
        ),
    };
    writeln!(
        out,
        "{}: {train} training images, {held_out} held out; model {} ({} parameters); {} epochs, batch {}, lr {}; {compute}",
        run.dataset.name(),
        model.name,
        model.param_count(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
    )
}

/// The lines that end a run: interrupted, nothing to do, or the best accuracy and the files.
fn finish(
    out: &mut dyn Write,
    outcome: &crate::train::Outcome,
    cfg: &TrainConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = &outcome.interrupted {
        writeln!(
            out,
            "interrupted: saved {} (continue with --resume {0})",
            path.display()
        )?;
        return Ok(());
    }
    if outcome.epochs.is_empty() {
        // --epochs 0, or a resume of a run that already has its epochs: nothing was written.
        writeln!(
            out,
            "no epoch left to train (--epochs {}): nothing was saved",
            cfg.epochs
        )?;
        return Ok(());
    }
    if let Some(best) = outcome.best {
        writeln!(out, "best held-out accuracy {:.1}%", 100.0 * best)?;
    }
    writeln!(
        out,
        "saved {0}/last.tlm and {0}/best.tlm; TensorBoard: tensorboard --logdir {1}",
        cfg.out.display(),
        cfg.logdir.display()
    )?;
    Ok(())
}

/// Runs `torchlet train`, printing a line per epoch to `out`.
///
/// # Errors
/// A message for the user: bad arguments, data or model that do not fit, I/O, a non-finite loss.
pub fn run(args: &TrainArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let mut resume = match &args.resume {
        Some(p) => Some(Checkpoint::load(p)?),
        None => None,
    };
    let mut notes = Vec::new();
    let run = run_record(args, resume.as_ref(), &mut notes)?;
    for note in &notes {
        writeln!(out, "{note}")?;
    }
    let zoo_config = zoo_config(run.dataset, args.num_classes);
    let mut model = match &mut resume {
        Some(c) => {
            // The checkpoints of the continued run record its settings (--epochs, --lr).
            c.model.run = Some(run.to_text());
            c.model.clone()
        }
        None => crate::zoo::build(&run.model, &zoo_config, run.seed)?,
    };
    let data = load_data(
        run.dataset,
        run.data_dir.as_deref(),
        model.input,
        run.augment,
        run.val_split,
        run.seed,
        run.skip_bad,
    )?;
    let _ = data.left_out.print(&mut std::io::stderr());
    let outputs = model.plan(1, torchlet::Mode::Inference)?.output_shape().numel();
    if resume.is_none() && args.num_classes.is_none() && !data.classes.is_empty() && outputs != data.classes.len() {
        let config = ZooConfig {
            num_classes: Some(data.classes.len()),
            ..zoo_config
        };
        model = crate::zoo::build(&run.model, &config, run.seed)?;
    }
    if let Some(path) = &args.init_from {
        let report = model.init_from(path)?;
        writeln!(out, "--init-from {}: {report}", path.display())?;
    }
    check_fit(&model, &*data.train, data.classes.len())?;
    if resume.is_some() && model.classes != data.classes {
        return Err("the checkpoint's class names differ from the data set's".into());
    }
    model.classes = data.classes.clone();
    model.run = Some(run.to_text());
    let train: Box<dyn Dataset> = match run.limit {
        Some(n) => {
            let n = n.min(data.train.len());
            Box::new(Subset::new(data.train, (0..n).collect())?)
        }
        None => data.train,
    };
    let out_dir = args.out.clone().unwrap_or_else(|| {
        let now = chrono::Local::now().format("%Y%m%d-%H%M%S");
        PathBuf::from(format!("runs/{}-{now}", run.dataset.name()))
    });
    let logdir = match &args.logdir {
        Some(dir) => dir.join(out_dir.file_name().unwrap_or(std::ffi::OsStr::new("run"))),
        None => out_dir.join("tensorboard"),
    };
    // Every check that can refuse the run comes before --overwrite removes anything.
    crate::train::gpu_fault()?;
    crate::train::check_hyper_parameters(run.optimizer, run.lr, run.momentum, run.weight_decay, run.nesterov)?;
    let resume_path = args.resume.as_deref();
    if args.logdir.is_some() {
        super::run_dir::check_logdir(&logdir, resume_path, args.overwrite)?;
    }
    // --overwrite removes the old run once this one is set up, just before it writes.
    let old_run = super::run_dir::prepare(&out_dir, resume_path, args.overwrite)?;
    let clear_logs = args.logdir.is_some() && args.overwrite;
    let cfg = TrainConfig {
        epochs: run.epochs,
        batch_size: run.batch_size,
        lr: run.lr,
        optimizer: run.optimizer,
        momentum: run.momentum,
        weight_decay: run.weight_decay,
        nesterov: run.nesterov,
        scheduler: run.scheduler,
        seed: run.seed,
        workers: args.workers,
        threads: args.threads.unwrap_or_else(crate::train::parallel::default_threads),
        patience: args.patience,
        logdir,
        out: out_dir,
        save_every: run.save_every,
        keep_last: run.keep_last,
        log_every: if train.len() < 10_000 { 10 } else { 100 },
        progress: !args.quiet,
        interrupt: Some(interrupt_flag()),
    };
    let choice = choose(args.device, &model, Some(cfg.optimizer))?;
    if let Some(warning) = choice.warning() {
        eprintln!("{warning}");
    }
    start_line(out, &run, (train.len(), data.test.len()), &model, &cfg, &choice)?;
    let mut overwrite = |out: &mut dyn Write| -> Result<(), TrainError> {
        let logs = if clear_logs {
            super::run_dir::clear_logdir(&cfg.logdir).map_err(|e| TrainError::Overwrite(e.into()))?
        } else {
            Vec::new()
        };
        let files = super::run_dir::remove(&old_run).map_err(|e| TrainError::Overwrite(e.into()))?;
        for removed in files.iter().chain(&logs) {
            writeln!(out, "--overwrite: removed {}", removed.display())?;
        }
        Ok(())
    };
    let outcome = fit_on_with(
        &mut model,
        train,
        data.test,
        &cfg,
        &choice.compute,
        resume,
        out,
        &mut overwrite,
    )
    .map_err(TrainError::into_report)?;
    finish(out, &outcome, &cfg)
}
