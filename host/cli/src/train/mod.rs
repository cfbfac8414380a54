//! The training loop of `torchlet train`, as a library: [`fit`] trains a [`Model`] on a
//! training set, tests it on a held-out set after every epoch, logs to TensorBoard and saves
//! checkpoints, as the PyTorch tutorial's loop does.
//!
//! Every epoch: a progress bar on stderr (loss, rate, ETA), the training loss to TensorBoard
//! every [`TrainConfig::log_every`] steps, then the held-out loss and accuracy (eval mode, no
//! gradients), the held-out confusion matrix as a picture (tag
//! [`Confusion/test`](crate::confusion_png::TAG)), a weight histogram per layer, one line on
//! `out`, and the model saved atomically
//! as `out/epoch-<n>.tlm`, `out/last.tlm` and, when the accuracy is the best so far,
//! `out/best.tlm`. These are [`Checkpoint`]s: `--resume` continues from any of them bit for bit
//! (the loader's shuffle depends only on the seed and the epoch).
//!
//! With [`TrainConfig::threads`] above 1, each batch is split across CPU threads
//! ([`parallel::DataParallel`]): the weights then do not depend on the thread count beyond
//! floating-point summation order, except with BatchNorm (per-slice statistics) and Dropout
//! (per-thread masks), as [`parallel`] explains; a run resumes exactly with the same thread
//! count.
//!
//! [`fit_on`] with [`gpu::Compute::Gpu`] trains on a GPU instead (`--device gpu|auto`): the
//! same epoch lines, TensorBoard logs, checkpoints, resume (from and to CPU runs: the files are
//! the same), NaN stop and early stopping, with SGD, Adam or AdamW; parameters and the
//! optimizer state (momentum, Adam's moments) stay on the GPU and are copied back before every
//! save (see [`gpu`]).
//!
//! # Layout
//!
//! - this file: the settings ([`TrainConfig`]), what a run returns ([`Outcome`]) and the two
//!   entry points, which set a run up and pick its backend;
//! - [`error`]: [`TrainError`], every way a run fails, with the messages users read;
//! - `backend`: the `Backend` trait (train a batch, evaluate a batch, copy the weights to the
//!   CPU) and its three implementations: one CPU thread, data-parallel CPU threads, the GPU;
//! - `run`: the epoch loop, once for every backend (progress bar, TensorBoard, checkpoints,
//!   early stopping, NaN stop, Ctrl-C);
//! - `optimizer`: the optimizer of a run, the learning-rate schedule, and resuming;
//! - [`parallel`]: data-parallel training and inference on CPU threads;
//! - [`gpu`]: `--device`, and copying a GPU's weights back.

mod backend;
mod checkpoints;
pub mod divergence;
pub mod error;
pub mod gpu;
mod optimizer;
pub mod parallel;
mod run;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use torchlet::{Mode, Network};

use self::backend::{GpuTrainer, HostState, SingleThread};
pub use self::error::{KeptCheckpoint, TrainError};
use self::gpu::Compute;
pub use self::optimizer::check_hyper_parameters;
use self::optimizer::Start;
use self::parallel::DataParallel;
use self::run::{ModelInfo, Run};
use crate::data::Dataset;
use crate::model::{Checkpoint, Model};

// `add_graph` plans the model with the TensorBoard crate's node bound: every model this crate
// can plan must fit it.
const _: () = assert!(crate::model::MAX_NODES <= crate::summary::graph::MAX_NODES);

/// Which optimizer trains the model (`--optimizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// `torch.optim.SGD` (with `--momentum`, `--weight-decay`, `--nesterov`).
    Sgd,
    /// `torch.optim.Adam` (with `--weight-decay`).
    Adam,
    /// `torch.optim.AdamW`: Adam with decoupled `--weight-decay` (PyTorch's default for AdamW
    /// is 0.01; pass it explicitly, the flag's default is 0).
    #[value(name = "adamw")]
    AdamW,
}

/// The learning-rate schedule, applied at the start of each epoch (`--scheduler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// A constant learning rate.
    None,
    /// `StepLR(step_size = max(epochs / 3, 1), gamma = 0.1)`.
    Step,
    /// `CosineAnnealingLR(T_max = epochs)`.
    Cosine,
}

impl OptimizerKind {
    /// The name `--optimizer` takes.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

impl SchedulerKind {
    /// The name `--scheduler` takes.
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::None => "none",
            SchedulerKind::Step => "step",
            SchedulerKind::Cosine => "cosine",
        }
    }
}

/// The settings of a training run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Epochs to train in all (a resumed run counts the epochs already done).
    pub epochs: usize,
    /// Samples per batch (at least 1).
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f32,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f32,
    /// L2 penalty (`weight_decay`).
    pub weight_decay: f32,
    /// Nesterov momentum (SGD).
    pub nesterov: bool,
    /// The learning-rate schedule.
    pub scheduler: SchedulerKind,
    /// Seed of the loader's shuffle (and of the network's RNG).
    pub seed: u64,
    /// DataLoader worker threads (0: load in the training thread).
    pub workers: usize,
    /// Threads that share each batch's forward and backward pass (1: no threads; see
    /// [`parallel`]).
    pub threads: usize,
    /// Stop when the held-out accuracy has not improved for this many epochs.
    pub patience: Option<usize>,
    /// Where the model files go.
    pub out: PathBuf,
    /// Write `out/epoch-<n>.tlm` after every this many epochs (and after the last one); 1:
    /// every epoch. `last.tlm` and `best.tlm` are written every epoch regardless.
    pub save_every: usize,
    /// Keep only the newest this many `epoch-<n>.tlm` files (`None`: all of them).
    pub keep_last: Option<usize>,
    /// Where the TensorBoard event file goes.
    pub logdir: PathBuf,
    /// Log the training loss every this many steps.
    pub log_every: usize,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Set (by a Ctrl-C handler) to stop at the next step boundary, saving
    /// `out/interrupted.tlm`.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// What each completed epoch measured.
    pub epochs: Vec<EpochReport>,
    /// Where the checkpoint of an interrupted run went (`None`: the run finished or stopped
    /// early). Resuming from it continues with the next batch of the interrupted epoch, as
    /// if the run had not stopped (with the same data, batch size and seed).
    pub interrupted: Option<PathBuf>,
    /// The best held-out accuracy of the whole run, epochs before a `--resume` included
    /// (`None` before any epoch finished).
    pub best: Option<f64>,
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Mean held-out loss.
    pub test_loss: f64,
    /// Held-out accuracy, 0 to 1.
    pub accuracy: f64,
    /// Seconds since the start of the run (this process).
    pub seconds: f64,
}

/// The environment variable that injects a GPU fault, for testing what a run does when the
/// device goes away: `lose-at-step:N` loses the device (as a driver reset would) just before
/// training step `N` (counted from 0 over the whole run).
pub const GPU_FAULT: &str = "TORCHLET_GPU_FAULT";

/// The step [`GPU_FAULT`] asks to lose the device at, if it is set.
pub(crate) fn gpu_fault() -> Result<Option<u64>, TrainError> {
    let Some(v) = std::env::var_os(GPU_FAULT) else {
        return Ok(None);
    };
    let v = v.to_string_lossy();
    v.strip_prefix("lose-at-step:")
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| TrainError::GpuFaultSyntax(v.into_owned()))
}

/// Index of the largest value of `row` (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (k, &v)| if v > row[best] { k } else { best })
}

/// Trains `model` on `train`, testing on `test` after every epoch (see the [module docs](self));
/// `resume` continues a run from its checkpoint (its model replaces `model`). Prints one line
/// per epoch to `out` and returns how the run went; `model` ends with the last weights.
///
/// # Errors
/// A [`TrainError`] whose message is for the user: a loading or planning error, a file that
/// cannot be written, or a loss that is not finite (naming the epoch and step; the last
/// checkpoint is kept).
pub fn fit(
    model: &mut Model,
    train: Box<dyn Dataset>,
    test: Box<dyn Dataset>,
    cfg: &TrainConfig,
    resume: Option<Checkpoint>,
    out: &mut dyn Write,
) -> Result<Outcome, TrainError> {
    fit_on(model, train, test, cfg, &Compute::Cpu, resume, out)
}

/// What [`fit_on_with`] calls before a run writes: `torchlet train --overwrite` removes the old
/// run's files then.
pub type BeforeWriting<'a> = dyn FnMut(&mut dyn Write) -> Result<(), TrainError> + 'a;

/// [`fit`] on `compute`: the CPU, or a GPU chosen by [`gpu::choose`]. On a GPU, `cfg.threads`
/// is not used; every optimizer runs there, its state kept on the GPU.
///
/// # Errors
/// As [`fit`], and on a GPU: a model or optimizer it cannot run, or a GPU failure (a lost
/// device, out of memory) naming the epoch and step; the last checkpoint saved is then kept
/// as it was.
pub fn fit_on(
    model: &mut Model,
    train: Box<dyn Dataset>,
    test: Box<dyn Dataset>,
    cfg: &TrainConfig,
    compute: &Compute,
    resume: Option<Checkpoint>,
    out: &mut dyn Write,
) -> Result<Outcome, TrainError> {
    fit_on_with(model, train, test, cfg, compute, resume, out, &mut |_| Ok(()))
}

/// [`fit_on`], calling `before_writing` once the run is set up (its buffers, threads and GPU)
/// and before it writes anything but the `cfg.out` folder itself: `torchlet train --overwrite`
/// removes the old run's files there, so that a run refused at its setup (a batch too large
/// for memory, a GPU that cannot run the model) leaves them as they were.
///
/// # Errors
/// As [`fit_on`], and `before_writing`'s.
#[allow(clippy::too_many_arguments)]
pub fn fit_on_with(
    model: &mut Model,
    train: Box<dyn Dataset>,
    test: Box<dyn Dataset>,
    cfg: &TrainConfig,
    compute: &Compute,
    resume: Option<Checkpoint>,
    out: &mut dyn Write,
    before_writing: &mut BeforeWriting<'_>,
) -> Result<Outcome, TrainError> {
    check_run(cfg, &*train)?;
    let start = Start::new(cfg, model, resume)?;
    // On a GPU the CPU network only holds the weights to save: one thread, no workers.
    let threads = if compute.gpu().is_some() { 1 } else { cfg.threads };
    let mut dp = DataParallel::new(model, cfg.batch_size, threads, cfg.seed)?;
    let info = ModelInfo::of(model)?;
    // With several threads the main network only steps: it is planned for one slice. The
    // plan borrows the model's layers while the network trains its weights in place.
    let (plan, params, state) = model.plan_weights_mut(dp.main_batch(), Mode::Training)?;
    let mut grads = vec![0.0; plan.param_len()];
    let what = format!("the training arena for batch {}", dp.main_batch());
    let mut arena = crate::mem::zeros(plan.arena_len(), &what)?;
    let Start {
        optimizer,
        optimizer_state,
        rng,
        position,
    } = start;
    let mut net = Network::new(&plan, params, &mut grads, state, &mut arena)?;
    // The fastest matrix multiply of this CPU (the data-parallel workers use it too).
    net.set_gemm(crate::kernels::best());
    net.set_rng(rng);
    let lose_at = gpu_fault()?;
    let mut host = HostState {
        net,
        optimizer,
        optimizer_state,
    };
    // The GPU's copy of the network, from the initial or resumed weights and momentum.
    let gpu = match compute.gpu() {
        Some(dev) => Some(GpuTrainer::new(dev, &plan, &host, cfg.seed, lose_at)?),
        None => None,
    };
    before_writing(out)?;
    let run = Run::new(cfg, (train, test), info, position, out)?;
    match gpu {
        Some(mut gpu) => run.fit(&mut gpu, &mut host),
        None if dp.threads() == 1 => run.fit(&mut SingleThread, &mut host),
        None => run.fit(&mut dp, &mut host),
    }
}

/// Checks what a run cannot start without and creates `cfg.out`.
fn check_run(cfg: &TrainConfig, train: &dyn Dataset) -> Result<(), TrainError> {
    if cfg.batch_size == 0 {
        return Err(TrainError::ZeroBatch);
    }
    if train.is_empty() {
        return Err(TrainError::EmptyTrainingSet);
    }
    std::fs::create_dir_all(&cfg.out).map_err(|error| TrainError::OutputDir {
        path: cfg.out.clone(),
        error,
    })
}
