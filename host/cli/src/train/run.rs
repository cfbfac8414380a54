//! The epoch loop of [`fit`](super::fit), written once for every [`Backend`]: [`Run`] trains
//! an epoch, tests, logs, saves the checkpoints and prints the epoch's line, and stops on early
//! stopping, a non-finite loss or Ctrl-C. Each concern has its own small piece:
//!
//! - [`EpochBar`]: the progress bar on stderr;
//! - [`TrainLog`]: the TensorBoard event file (graph, inputs, losses, accuracy, the held-out
//!   confusion matrix as a picture, histograms);
//! - [`Tested`]: what the held-out pass measured, its confusion matrix counted from the
//!   predictions that pass makes anyway (no second pass over the data);
//! - [`Counters`]: steps, the best accuracy, epochs since it, the reports so far;
//! - [`Run::save_epoch`] and [`Run::stop_interrupted`]: the `.tlm` checkpoints;
//! - [`Run::batch_failure`]: a failed batch as the [`TrainError`] the user reads.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use torchlet::Shape;

use super::backend::{Backend, BatchError, HostState};
use super::divergence::Divergence;
use super::error::{KeptCheckpoint, TrainError};
use super::optimizer::{scheduled_lr, Position};
use super::parallel::HostNetwork;
use super::{EpochReport, Outcome, TrainConfig};
use crate::confusion_png;
use crate::data::loader::{Batch, DataLoader};
use crate::data::Dataset;
use crate::model::{Architecture, Checkpoint, Model};
use crate::summary::{DataFormat, SummaryWriter};

/// The most classes whose held-out confusion matrix a run counts and logs; above it the
/// `classes × classes` counts cost more memory than the picture is worth (4096: 128 MiB).
pub(crate) const CONFUSION_MAX_CLASSES: usize = 4096;

/// What a checkpoint needs of the model besides the network's buffers.
pub(crate) struct ModelInfo {
    name: String,
    architecture: Architecture,
    input: Shape,
    classes: Vec<String>,
    /// The run record saved with every checkpoint.
    run: Option<String>,
    /// PyTorch's state-dict name of each plan node ("features.0"), for the histograms.
    paths: Vec<String>,
}

impl ModelInfo {
    /// `model`'s architecture, names and node paths.
    ///
    /// # Errors
    /// A model that does not plan.
    pub(crate) fn of(model: &Model) -> Result<ModelInfo, TrainError> {
        Ok(ModelInfo {
            paths: model.node_paths()?,
            name: model.name.clone(),
            architecture: model.architecture().clone(),
            input: model.input,
            classes: model.classes.clone(),
            run: model.run.clone(),
        })
    }

    /// The model with `net`'s weights and state.
    fn snapshot(&self, net: &HostNetwork<'_>) -> Model {
        Model {
            name: self.name.clone(),
            architecture: self.architecture.clone(),
            input: self.input,
            classes: self.classes.clone(),
            params: net.params().to_vec(),
            state: net.state().to_vec(),
            run: self.run.clone(),
        }
    }
}

/// The progress bar of one training epoch (hidden without `--progress` or a terminal).
struct EpochBar(indicatif::ProgressBar);

impl EpochBar {
    /// A bar for `batches` batches of `epoch` (from 0), `done` of them already done.
    fn new(cfg: &TrainConfig, epoch: usize, batches: usize, done: usize) -> EpochBar {
        let bar = if cfg.progress {
            indicatif::ProgressBar::new(batches as u64)
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
        bar.set_position(done as u64);
        EpochBar(bar)
    }

    /// One more batch done; `mean_loss` so far.
    fn advance(&self, mean_loss: f64) {
        self.0.set_message(format!("{mean_loss:.4}"));
        self.0.inc(1);
    }
}

impl Drop for EpochBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The TensorBoard log of a run.
struct TrainLog {
    writer: SummaryWriter,
    /// Log the training loss every this many steps (at least 1).
    every: u64,
}

impl TrainLog {
    /// Opens `cfg.logdir`; a run that starts at step 0 logs the model's graph.
    fn open(cfg: &TrainConfig, info: &ModelInfo, step: u64) -> Result<TrainLog, TrainError> {
        let mut writer = SummaryWriter::new(&cfg.logdir)?;
        if step == 0 {
            writer.add_graph(info.architecture.layers(), info.input, &crate::print::op_repr)?;
        }
        Ok(TrainLog {
            writer,
            every: cfg.log_every.max(1) as u64,
        })
    }

    /// After training step `step`: the first batch's images, and the loss every `every` steps.
    fn batch(&mut self, batch: &Batch, loss: f32, step: u64) -> Result<(), TrainError> {
        if step == 0 {
            let s = batch.shape;
            self.writer
                .add_images("inputs", &batch.images, &s, DataFormat::Nchw, 0)?;
        }
        if step % self.every == 0 {
            self.writer.add_scalar("Loss/train", loss, step as i64)?;
        }
        Ok(())
    }

    /// After an epoch: the held-out loss and accuracy, its confusion matrix as a picture
    /// ([`confusion_png::TAG`]; none when not counted) and a histogram of each layer's weight.
    fn epoch(
        &mut self,
        net: &HostNetwork<'_>,
        info: &ModelInfo,
        report: &EpochReport,
        confusion: &[Vec<u64>],
    ) -> Result<(), TrainError> {
        let e = report.epoch as i64;
        self.writer.add_scalar("Loss/test", report.test_loss as f32, e)?;
        self.writer.add_scalar("Accuracy/test", report.accuracy as f32, e)?;
        if !confusion.is_empty() {
            let img = confusion_png::render(confusion, &info.classes);
            let shape = [img.height() as usize, img.width() as usize, 3];
            self.writer
                .add_image(confusion_png::TAG, img.as_raw(), &shape, DataFormat::Hwc, e)?;
        }
        let nodes = net.plan().nodes();
        for (path, node) in info.paths.iter().zip(nodes).filter(|(_, n)| n.weight_len > 0) {
            let w = &net.params()[node.param_offset..node.param_offset + node.weight_len];
            self.writer.add_histogram(&format!("{path}.weight"), w, e)?;
        }
        self.writer.flush()?;
        Ok(())
    }
}

/// Where a run stands: steps taken, the best accuracy and the epochs since, what each epoch
/// measured.
struct Counters {
    /// The epoch the run (or the resumed run) started with, from 0.
    first_epoch: usize,
    /// Training steps taken, from the start of the first run.
    step: u64,
    best: f64,
    since_best: usize,
    reports: Vec<EpochReport>,
    start: Instant,
}

impl Counters {
    /// Records an epoch's accuracy; whether it is the best so far.
    fn record(&mut self, accuracy: f64) -> bool {
        let improved = accuracy > self.best;
        if improved {
            self.best = accuracy;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        improved
    }

    /// How many of `epoch`'s `per_epoch` batches are already done: those of a checkpoint saved
    /// mid-epoch (Ctrl-C) in the epoch a run resumes with, else none. The epoch's batches
    /// depend only on the seed and the epoch, so skipping them resumes exactly.
    fn batches_done(&self, epoch: usize, per_epoch: u64) -> usize {
        let done = self.step.saturating_sub(epoch as u64 * per_epoch);
        if epoch == self.first_epoch && done < per_epoch {
            done as usize
        } else {
            0
        }
    }
}

/// The held-out loss, accuracy and confusion matrix of an epoch.
#[derive(Default)]
struct Tested {
    loss_sum: f64,
    correct: usize,
    samples: usize,
    /// `confusion[t][p]`: samples of class `t` predicted as `p` (empty above
    /// [`CONFUSION_MAX_CLASSES`] classes).
    confusion: Vec<Vec<u64>>,
}

impl Tested {
    /// Nothing measured yet, for a model with `classes` outputs.
    fn new(classes: usize) -> Tested {
        let counted = if classes <= CONFUSION_MAX_CLASSES { classes } else { 0 };
        Tested {
            confusion: vec![vec![0; counted]; counted],
            ..Tested::default()
        }
    }

    /// Counts a batch: `predicted[i]` is the class predicted for the sample labelled `labels[i]`.
    fn count(&mut self, predicted: &[u32], labels: &[u32]) {
        for (&p, &l) in predicted.iter().zip(labels) {
            self.correct += usize::from(p == l);
            if let Some(cell) = self.confusion.get_mut(l as usize).and_then(|r| r.get_mut(p as usize)) {
                *cell += 1;
            }
        }
        self.samples += labels.len();
    }
}

/// A training run between its setup and its [`Outcome`]; see the [module docs](self).
pub(crate) struct Run<'r> {
    cfg: &'r TrainConfig,
    train: DataLoader<Box<dyn Dataset>>,
    test: DataLoader<Box<dyn Dataset>>,
    info: ModelInfo,
    log: TrainLog,
    counters: Counters,
    divergence: Divergence,
    out: &'r mut dyn Write,
}

impl<'r> Run<'r> {
    /// Sets up the loaders and the TensorBoard log of a run that begins at `start`.
    ///
    /// # Errors
    /// The log cannot be written.
    pub(crate) fn new(
        cfg: &'r TrainConfig,
        (train, test): (Box<dyn Dataset>, Box<dyn Dataset>),
        info: ModelInfo,
        start: Position,
        out: &'r mut dyn Write,
    ) -> Result<Run<'r>, TrainError> {
        let train = DataLoader::new(train)
            .batch_size(cfg.batch_size)
            .shuffle(true)
            .num_workers(cfg.workers)
            .seed(cfg.seed);
        let test = DataLoader::new(test)
            .batch_size(cfg.batch_size)
            .num_workers(cfg.workers);
        let log = TrainLog::open(cfg, &info, start.step)?;
        let counters = Counters {
            first_epoch: start.epoch,
            step: start.step,
            best: start.best,
            since_best: 0,
            reports: Vec::new(),
            start: Instant::now(),
        };
        Ok(Run {
            cfg,
            train,
            test,
            info,
            log,
            counters,
            divergence: Divergence::default(),
            out,
        })
    }

    /// Trains the remaining epochs on `backend`; see the [module docs](self).
    ///
    /// # Errors
    /// See [`super::fit_on`].
    pub(crate) fn fit<B: Backend>(mut self, backend: &mut B, host: &mut HostState<'_>) -> Result<Outcome, TrainError> {
        for epoch in self.counters.first_epoch..self.cfg.epochs {
            let began = Instant::now();
            host.optimizer.set_lr(scheduled_lr(self.cfg, epoch));
            host.net.train()?;
            let Some(train_loss) = self.train_epoch(backend, host, epoch)? else {
                return self.stop_interrupted(backend, host, epoch);
            };
            host.net.eval();
            let tested = self.test_epoch(backend, host, epoch)?;
            let report = EpochReport {
                epoch: epoch + 1,
                train_loss,
                test_loss: tested.loss_sum / tested.samples.max(1) as f64,
                accuracy: tested.correct as f64 / tested.samples.max(1) as f64,
                seconds: self.counters.start.elapsed().as_secs_f64(),
            };
            // From here on the CPU network is saved and logged: bring the GPU's weights over
            // first. A failed copy (a lost device) returns before anything is written.
            backend.sync_to_host(host).map_err(|error| TrainError::CopyAfterEpoch {
                epoch: report.epoch,
                error,
                kept: self.kept(epoch),
            })?;
            self.log.epoch(&host.net, &self.info, &report, &tested.confusion)?;
            let improved = self.counters.record(report.accuracy);
            self.save_epoch(host, report.epoch, improved)?;
            self.print_epoch(&report, &tested, improved, began.elapsed().as_secs_f64())?;
            self.counters.reports.push(report);
            if self.stop_early()? {
                break;
            }
        }
        self.finish(None)
    }

    /// Trains `epoch` (from 0); its mean loss, or `None` when Ctrl-C stopped it.
    fn train_epoch<B: Backend>(
        &mut self,
        backend: &mut B,
        host: &mut HostState<'_>,
        epoch: usize,
    ) -> Result<Option<f64>, TrainError> {
        let batches = self.train.len();
        let skip = self.counters.batches_done(epoch, batches as u64);
        let bar = EpochBar::new(self.cfg, epoch, batches, skip);
        let (mut total, mut seen) = (0.0f64, 0usize);
        for batch in self.train.epoch(epoch as u64)?.skip(skip) {
            if self.cfg.interrupt.as_ref().is_some_and(|i| i.load(Ordering::SeqCst)) {
                return Ok(None);
            }
            let batch = batch?;
            let step = self.counters.step;
            let loss = match backend.train_batch(host, &batch, step) {
                Ok(loss) => loss,
                Err(e) => return Err(self.batch_failure(e, epoch)),
            };
            if let Some(d) = self.divergence.observe(loss) {
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    step,
                    loss: d.loss,
                    first: d.first,
                    kept: self.kept(epoch),
                });
            }
            self.log.batch(&batch, loss, step)?;
            self.counters.step += 1;
            total += f64::from(loss) * batch.len() as f64;
            seen += batch.len();
            bar.advance(total / seen as f64);
        }
        Ok(Some(total / seen.max(1) as f64))
    }

    /// Tests on the held-out set after `epoch` (from 0), in `host.net`'s mode (eval).
    fn test_epoch<B: Backend>(
        &mut self,
        backend: &mut B,
        host: &mut HostState<'_>,
        epoch: usize,
    ) -> Result<Tested, TrainError> {
        let mut tested = Tested::new(host.net.plan().output_shape().numel());
        let mut predicted = Vec::with_capacity(self.cfg.batch_size);
        for batch in self.test.epoch(0)? {
            let batch = batch?;
            predicted.clear();
            let sum = match backend.evaluate_batch(host, &batch, &mut predicted) {
                Ok(r) => r,
                Err(BatchError::Gpu(error)) => {
                    return Err(TrainError::GpuTest {
                        epoch: epoch + 1,
                        error,
                        kept: self.kept(epoch),
                    })
                }
                Err(e) => return Err(self.batch_failure(e, epoch)),
            };
            tested.loss_sum += sum;
            tested.count(&predicted, &batch.labels);
        }
        Ok(tested)
    }

    /// A training batch's failure during `epoch` (from 0), at the current step.
    fn batch_failure(&self, e: BatchError, epoch: usize) -> TrainError {
        let (epoch1, step, kept) = (epoch + 1, self.counters.step, self.kept(epoch));
        match e {
            BatchError::NonFiniteLoss => TrainError::NonFiniteLoss {
                epoch: epoch1,
                step,
                kept,
            },
            BatchError::Cpu(e) => TrainError::Network(e),
            BatchError::Gpu(error) => TrainError::GpuTrainStep {
                epoch: epoch1,
                step,
                error,
                kept,
            },
        }
    }

    /// The checkpoint a failure during `epoch` (from 0) leaves.
    fn kept(&self, epoch: usize) -> KeptCheckpoint {
        KeptCheckpoint::after(&self.cfg.out, epoch)
    }

    /// A checkpoint of `host` after `epoch` epochs, at the current step.
    fn checkpoint(&self, host: &HostState<'_>, epoch: usize) -> Checkpoint {
        let model = self.info.snapshot(&host.net);
        let step = self.counters.step;
        let mut ckpt = host
            .optimizer
            .checkpoint(model, &host.optimizer_state, epoch as u32, step, host.net.rng());
        ckpt.train.best_metric = self.counters.best as f32;
        ckpt
    }

    /// Saves `out/epoch-<n>.tlm` (every [`TrainConfig::save_every`] epochs and after the last,
    /// keeping the newest [`TrainConfig::keep_last`]), `out/best.tlm` when `improved`, and
    /// `out/last.tlm`.
    fn save_epoch(&self, host: &HostState<'_>, epoch: usize, improved: bool) -> Result<(), TrainError> {
        let ckpt = self.checkpoint(host, epoch);
        let numbered = epoch % self.cfg.save_every.max(1) == 0 || epoch == self.cfg.epochs;
        if numbered {
            ckpt.save(&self.cfg.out.join(format!("epoch-{epoch}.tlm")))?;
        }
        if improved {
            ckpt.save(&self.cfg.out.join("best.tlm"))?;
        }
        ckpt.save(&self.cfg.out.join("last.tlm"))?;
        if let (true, Some(keep)) = (numbered, self.cfg.keep_last) {
            super::checkpoints::keep_newest(&self.cfg.out, keep);
        }
        Ok(())
    }

    /// The epoch's line on the output; `seconds` is the epoch's own duration (training,
    /// testing and saving).
    fn print_epoch(
        &mut self,
        report: &EpochReport,
        tested: &Tested,
        improved: bool,
        seconds: f64,
    ) -> Result<(), TrainError> {
        writeln!(
            self.out,
            "epoch {:>2}/{}  train loss {:.4}  test loss {:.4}  accuracy {:.1}% ({}/{})  [{:.1} s]{}",
            report.epoch,
            self.cfg.epochs,
            report.train_loss,
            report.test_loss,
            100.0 * report.accuracy,
            tested.correct,
            tested.samples,
            seconds,
            if improved { "  *best" } else { "" }
        )?;
        Ok(())
    }

    /// Whether `--patience` epochs passed without a better accuracy (then says so).
    fn stop_early(&mut self) -> Result<bool, TrainError> {
        let since = self.counters.since_best;
        if self.cfg.patience.is_some_and(|p| since >= p) {
            writeln!(self.out, "early stop: no better accuracy for {since} epochs")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Ctrl-C during `epoch` (from 0): saves `out/interrupted.tlm`, which resumes with the
    /// next batch.
    fn stop_interrupted<B: Backend>(
        self,
        backend: &mut B,
        host: &mut HostState<'_>,
        epoch: usize,
    ) -> Result<Outcome, TrainError> {
        backend
            .sync_to_host(host)
            .map_err(|error| TrainError::CopyOnInterrupt {
                error,
                kept: self.kept(epoch),
            })?;
        let path = self.cfg.out.join("interrupted.tlm");
        self.checkpoint(host, epoch).save(&path)?;
        self.finish(Some(path))
    }

    /// Closes the log; the outcome, `interrupted` naming the Ctrl-C checkpoint if any.
    fn finish(self, interrupted: Option<PathBuf>) -> Result<Outcome, TrainError> {
        self.log.writer.close()?;
        let best = (self.counters.best.is_finite() && self.counters.best >= 0.0).then_some(self.counters.best);
        Ok(Outcome {
            epochs: self.counters.reports,
            interrupted,
            best,
        })
    }
}
