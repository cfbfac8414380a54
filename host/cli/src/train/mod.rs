//! The training loop of `torchlet train`, as a library: [`fit`] trains a [`Model`] on a
//! training set, tests it on a held-out set after every epoch, logs to TensorBoard and saves
//! checkpoints, as the PyTorch tutorial's loop does.
//!
//! Every epoch: a progress bar on stderr (loss, rate, ETA), the training loss to TensorBoard
//! every [`TrainConfig::log_every`] steps, then the held-out loss and accuracy (eval mode, no
//! gradients), a weight histogram per layer, one line on `out`, and the model saved atomically
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

pub mod gpu;
pub mod parallel;

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Adam, CosineAnnealingLr, LrScheduler, Optimizer, Sgd, StepLr};
use torchlet::{Mode, Network, Rng};

use torchlet_gpu::{GpuLoss, GpuNetwork, GpuOptimizer, Target};

use self::gpu::Compute;
use crate::data::loader::DataLoader;
use crate::data::Dataset;
use crate::model::{Checkpoint, Model};
use crate::summary::{DataFormat, SummaryWriter};

// `add_graph` plans the model with the TensorBoard crate's node bound: every model this crate
// can plan must fit it.
const _: () = assert!(crate::model::MAX_NODES <= crate::summary::graph::MAX_NODES);

/// Which optimizer trains the model (`--optimizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchedulerKind {
    /// A constant learning rate.
    None,
    /// `StepLR(step_size = max(epochs / 3, 1), gamma = 0.1)`.
    Step,
    /// `CosineAnnealingLR(T_max = epochs)`.
    Cosine,
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
    /// Seconds since the start of the run.
    pub seconds: f64,
}

/// The optimizer of a run, whichever kind it is.
enum Opt {
    Sgd(Sgd),
    Adam(Adam),
}

impl Opt {
    fn new(cfg: &TrainConfig) -> Opt {
        match cfg.optimizer {
            OptimizerKind::Sgd => Opt::Sgd(
                Sgd::new(cfg.lr)
                    .momentum(cfg.momentum)
                    .weight_decay(cfg.weight_decay)
                    .nesterov(cfg.nesterov),
            ),
            OptimizerKind::Adam => Opt::Adam(Adam::new(cfg.lr).weight_decay(cfg.weight_decay)),
            OptimizerKind::AdamW => Opt::Adam(Adam::adamw(cfg.lr).weight_decay(cfg.weight_decay)),
        }
    }

    fn state_len(&self, n: usize) -> usize {
        match self {
            Opt::Sgd(o) => o.state_len(n),
            Opt::Adam(o) => o.state_len(n),
        }
    }

    fn set_lr(&mut self, lr: f32) {
        match self {
            Opt::Sgd(o) => o.set_lr(lr),
            Opt::Adam(o) => o.set_lr(lr),
        }
    }

    fn step(&mut self, net: &mut Network<'_, { crate::model::MAX_NODES }>, state: &mut [f32]) -> torchlet::Result<()> {
        match self {
            Opt::Sgd(o) => net.step(o, state),
            Opt::Adam(o) => net.step(o, state),
        }
    }

    /// The optimizer of a GPU step (the state stays on the GPU).
    fn gpu(&mut self) -> GpuOptimizer<'_> {
        match self {
            Opt::Sgd(o) => GpuOptimizer::Sgd(o),
            Opt::Adam(o) => GpuOptimizer::Adam(o),
        }
    }

    fn checkpoint(&self, model: Model, state: &[f32], epoch: u32, step: u64, rng: Rng) -> Checkpoint {
        match self {
            Opt::Sgd(o) => Checkpoint::new(model, o, state, epoch, step, rng),
            Opt::Adam(o) => Checkpoint::new(model, o, state, epoch, step, rng),
        }
    }
}

/// Which checkpoint a run that fails during `epoch` (from 0) leaves, for the message.
fn kept_after(cfg: &TrainConfig, epoch: usize) -> String {
    if epoch == 0 {
        "no epoch finished, so no checkpoint was saved".to_string()
    } else {
        format!("the last good checkpoint is {}", cfg.out.join("last.tlm").display())
    }
}

/// The environment variable that injects a GPU fault, for testing what a run does when the
/// device goes away: `lose-at-step:N` loses the device (as a driver reset would) just before
/// training step `N` (counted from 0 over the whole run).
pub const GPU_FAULT: &str = "TORCHLET_GPU_FAULT";

/// The step [`GPU_FAULT`] asks to lose the device at, if it is set.
fn gpu_fault() -> Result<Option<u64>, String> {
    let Some(v) = std::env::var_os(GPU_FAULT) else {
        return Ok(None);
    };
    let v = v.to_string_lossy();
    v.strip_prefix("lose-at-step:")
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| format!("{GPU_FAULT}: expected lose-at-step:N (N a step number), found {v:?}"))
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
/// A message for the user: a loading or planning error, a file that cannot be written, or a
/// loss that is not finite (naming the epoch and step; the last checkpoint is kept).
pub fn fit(
    model: &mut Model,
    train: Box<dyn Dataset>,
    test: Box<dyn Dataset>,
    cfg: &TrainConfig,
    resume: Option<Checkpoint>,
    out: &mut dyn Write,
) -> Result<Outcome, Box<dyn Error>> {
    fit_on(model, train, test, cfg, &Compute::Cpu, resume, out)
}

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
) -> Result<Outcome, Box<dyn Error>> {
    if cfg.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    if train.is_empty() {
        return Err("the training set is empty".into());
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| format!("{}: {e}", cfg.out.display()))?;
    let mut opt = Opt::new(cfg);
    let (mut first_epoch, mut step, mut best) = (0usize, 0u64, f64::NEG_INFINITY);
    let mut opt_state = vec![0.0; opt.state_len(model.params.len())];
    let mut rng = Rng::new(cfg.seed);
    if let Some(ckpt) = resume {
        if ckpt.model.layers != model.layers || ckpt.model.input != model.input {
            return Err("the checkpoint's architecture differs from the model being trained".into());
        }
        *model = ckpt.model.clone();
        opt = match (cfg.optimizer, ckpt.train.optimizer.sgd(), ckpt.train.optimizer.adam()) {
            (OptimizerKind::Sgd, Some(o), _) => Opt::Sgd(o),
            (OptimizerKind::Adam, _, Some(o)) if !o.decoupled_weight_decay => Opt::Adam(o),
            (OptimizerKind::AdamW, _, Some(o)) if o.decoupled_weight_decay => Opt::Adam(o),
            _ => return Err("the checkpoint was trained with another optimizer than --optimizer".into()),
        };
        let steps = ckpt.train.optimizer_steps;
        match &mut opt {
            Opt::Sgd(o) => o.set_steps(steps),
            Opt::Adam(o) => o.set_steps(steps),
        }
        opt_state = ckpt.optimizer_state.clone();
        first_epoch = ckpt.train.epoch as usize;
        step = ckpt.train.step;
        rng = ckpt.rng();
        if ckpt.train.best_metric.is_finite() {
            best = f64::from(ckpt.train.best_metric);
        }
    }
    let base_lr = cfg.lr;
    // On a GPU the CPU network only holds the weights to save: one thread, no workers.
    let threads = if compute.gpu().is_some() { 1 } else { cfg.threads };
    let mut dp = parallel::DataParallel::new(model, cfg.batch_size, threads, cfg.seed)?;
    // With several threads the main network only steps: it is planned for one slice.
    let plan = model.plan(dp.main_batch(), Mode::Training)?;
    let mut grads = vec![0.0; plan.param_len()];
    let mut arena = crate::mem::zeros(
        plan.arena_len(),
        &format!("the training arena for batch {}", dp.main_batch()),
    )?;
    // Histograms are tagged with PyTorch's state-dict names ("features.0.weight").
    let paths = model.node_paths()?;
    let (name, layers, input, classes) = (model.name.clone(), model.layers, model.input, model.classes.clone());
    let mut net = Network::new(&plan, &mut model.params, &mut grads, &mut model.state, &mut arena)?;
    // The fastest matrix multiply of this CPU (the data-parallel workers use it too).
    net.set_gemm(crate::kernels::best());
    net.set_rng(rng);
    let loss_fn = CrossEntropyLoss::new();
    let lose_at = gpu_fault()?;
    // The GPU's copy of the network, from the initial or resumed weights and momentum.
    let mut gpu_net = match compute.gpu() {
        None => None,
        Some(dev) => {
            let mut g = GpuNetwork::new(dev, &*plan, net.params())?;
            g.set_optimizer_state(&opt_state)?;
            g.set_state(net.state())?;
            g.seed_dropout(cfg.seed);
            Some(g)
        }
    };
    let train_loader = DataLoader::new(train)
        .batch_size(cfg.batch_size)
        .shuffle(true)
        .num_workers(cfg.workers)
        .seed(cfg.seed);
    let test_loader = DataLoader::new(test)
        .batch_size(cfg.batch_size)
        .num_workers(cfg.workers);
    let mut writer = SummaryWriter::new(&cfg.logdir)?;
    if step == 0 {
        writer.add_graph(layers, input, &crate::print::op_repr)?;
    }
    let snapshot = |net: &Network<'_, { crate::model::MAX_NODES }>| Model {
        name: name.clone(),
        layers,
        input,
        classes: classes.clone(),
        params: net.params().to_vec(),
        state: net.state().to_vec(),
    };
    let start = Instant::now();
    let mut reports = Vec::new();
    let mut since_best = 0usize;
    for epoch in first_epoch..cfg.epochs {
        let lr = match cfg.scheduler {
            SchedulerKind::None => base_lr,
            SchedulerKind::Step => StepLr::new((cfg.epochs / 3).max(1)).lr_at(base_lr, epoch),
            SchedulerKind::Cosine => CosineAnnealingLr::new(cfg.epochs).lr_at(base_lr, epoch),
        };
        opt.set_lr(lr);
        net.train()?;
        let bar = if cfg.progress {
            indicatif::ProgressBar::new(train_loader.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
        let (mut total, mut seen) = (0.0f64, 0usize);
        // A checkpoint saved mid-epoch (Ctrl-C) resumes after the batches it had done: the
        // epoch's batches depend only on the seed and the epoch, so skip that many.
        let per_epoch = train_loader.len() as u64;
        let done = step.saturating_sub(epoch as u64 * per_epoch);
        let skip = if epoch == first_epoch && done < per_epoch {
            done as usize
        } else {
            0
        };
        bar.set_position(skip as u64);
        for batch in train_loader.epoch(epoch as u64)?.skip(skip) {
            if cfg.interrupt.as_ref().is_some_and(|i| i.load(Ordering::SeqCst)) {
                bar.finish_and_clear();
                if let Some(g) = &gpu_net {
                    gpu::copy_back(g, &mut net, &mut opt_state)
                        .map_err(|e| format!("Ctrl-C: {e}; {}", kept_after(cfg, epoch)))?;
                }
                let mut ckpt = opt.checkpoint(snapshot(&net), &opt_state, epoch as u32, step, net.rng());
                ckpt.train.best_metric = best as f32;
                let path = cfg.out.join("interrupted.tlm");
                ckpt.save(&path)?;
                writer.close()?;
                return Ok(Outcome {
                    epochs: reports,
                    interrupted: Some(path),
                });
            }
            let batch = batch?;
            if let (Some(g), true) = (&gpu_net, lose_at == Some(step)) {
                g.device().simulate_loss(&format!("{GPU_FAULT}=lose-at-step:{step}"));
            }
            let result = match (&mut gpu_net, &mut opt) {
                (Some(g), opt) => match g.step(
                    &batch.images,
                    Target::Classes(&batch.labels),
                    &GpuLoss::CrossEntropy(loss_fn),
                    opt.gpu(),
                ) {
                    Ok(stats) => Ok(stats.loss),
                    Err(torchlet_gpu::Error::Core(e @ torchlet::Error::NonFinite { .. })) => Err(e),
                    Err(e) => {
                        bar.finish_and_clear();
                        return Err(format!(
                            "training on the GPU failed at epoch {} step {step}: {e}; stopping; {}",
                            epoch + 1,
                            kept_after(cfg, epoch)
                        )
                        .into());
                    }
                },
                (None, _) => {
                    net.zero_grad();
                    dp.backward(&mut net, &loss_fn, &batch.images, &batch.labels, step)
                }
            };
            let loss = match result {
                Ok(loss) if loss.is_finite() => loss,
                Ok(_) | Err(torchlet::Error::NonFinite { .. }) => {
                    bar.finish_and_clear();
                    return Err(format!(
                        "the training loss is not finite (NaN or infinite) at epoch {} step {step}: \
                         stopping; {} (try a smaller --lr)",
                        epoch + 1,
                        kept_after(cfg, epoch)
                    )
                    .into());
                }
                Err(e) => return Err(e.into()),
            };
            if gpu_net.is_none() {
                opt.step(&mut net, &mut opt_state)?;
            }
            if step == 0 {
                let s = batch.shape;
                writer.add_images("inputs", &batch.images, &s, DataFormat::Nchw, 0)?;
            }
            if step % cfg.log_every.max(1) as u64 == 0 {
                writer.add_scalar("Loss/train", loss, step as i64)?;
            }
            step += 1;
            total += f64::from(loss) * batch.len() as f64;
            seen += batch.len();
            bar.set_message(format!("{:.4}", total / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        net.eval();
        let (mut test_total, mut correct, mut tested) = (0.0f64, 0usize, 0usize);
        for batch in test_loader.epoch(0)? {
            let batch = batch?;
            let (sum, right) = match &mut gpu_net {
                Some(g) => {
                    let s = g.evaluate(&batch.images, &batch.labels, &loss_fn).map_err(|e| {
                        format!(
                            "testing on the GPU after epoch {} failed: {e}; {}",
                            epoch + 1,
                            kept_after(cfg, epoch)
                        )
                    })?;
                    (f64::from(s.loss) * s.n as f64, s.correct as usize)
                }
                None => dp.evaluate(&mut net, &loss_fn, &batch.images, &batch.labels)?,
            };
            test_total += sum;
            correct += right;
            tested += batch.len();
        }
        let report = EpochReport {
            epoch: epoch + 1,
            train_loss: total / seen.max(1) as f64,
            test_loss: test_total / tested.max(1) as f64,
            accuracy: correct as f64 / tested.max(1) as f64,
            seconds: start.elapsed().as_secs_f64(),
        };
        // From here on the CPU network is saved and logged: bring the GPU's weights over first.
        // A failed copy (a lost device) returns before anything is written.
        if let Some(g) = &gpu_net {
            gpu::copy_back(g, &mut net, &mut opt_state)
                .map_err(|e| format!("after epoch {}: {e}; {}", report.epoch, kept_after(cfg, epoch)))?;
        }
        let e = report.epoch as i64;
        writer.add_scalar("Loss/test", report.test_loss as f32, e)?;
        writer.add_scalar("Accuracy/test", report.accuracy as f32, e)?;
        for (path, node) in paths.iter().zip(plan.nodes()).filter(|(_, n)| n.weight_len > 0) {
            let w = &net.params()[node.param_offset..node.param_offset + node.weight_len];
            writer.add_histogram(&format!("{path}.weight"), w, e)?;
        }
        writer.flush()?;
        let improved = report.accuracy > best;
        if improved {
            best = report.accuracy;
            since_best = 0;
        } else {
            since_best += 1;
        }
        let mut ckpt = opt.checkpoint(snapshot(&net), &opt_state, report.epoch as u32, step, net.rng());
        ckpt.train.best_metric = best as f32;
        ckpt.save(&cfg.out.join(format!("epoch-{}.tlm", report.epoch)))?;
        if improved {
            ckpt.save(&cfg.out.join("best.tlm"))?;
        }
        ckpt.save(&cfg.out.join("last.tlm"))?;
        writeln!(
            out,
            "epoch {:>2}/{}  train loss {:.4}  test loss {:.4}  accuracy {:.1}% ({correct}/{tested})  [{:.1} s]{}",
            report.epoch,
            cfg.epochs,
            report.train_loss,
            report.test_loss,
            100.0 * report.accuracy,
            report.seconds,
            if improved { "  *best" } else { "" }
        )?;
        reports.push(report);
        if cfg.patience.is_some_and(|p| since_best >= p) {
            writeln!(out, "early stop: no better accuracy for {since_best} epochs")?;
            break;
        }
    }
    writer.close()?;
    Ok(Outcome {
        epochs: reports,
        interrupted: None,
    })
}
