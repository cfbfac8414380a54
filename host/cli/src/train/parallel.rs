//! Data-parallel training and evaluation on CPU threads (`torchlet train --threads N`), as
//! PyTorch's `DistributedDataParallel` does it on one machine, without copying the weights.
//!
//! [`DataParallel`] splits each batch into `N` contiguous slices (the first `len % N` one
//! sample longer). Each thread runs a [worker network](torchlet::Network::worker) over the
//! main network's parameters, read-only and shared, with its own gradients, BatchNorm state and
//! activation arena: allocated once, when the `DataParallel` is made, for the largest slice any
//! batch can give. After every thread has run forward and backward on its slice, the slices'
//! gradients are summed into the main network's gradients in a fixed order (thread 0, 1, ...),
//! each weighted by `slice_len / batch_len`, since each is the gradient of its slice's *mean*
//! loss; the loss is reduced likewise. The caller then takes one optimiser step on the main
//! network. So, with a fixed seed, the weights do not depend on the thread count beyond the
//! order of floating-point sums (tested in `host/cli/tests/parallel.rs`), except for:
//!
//! - **BatchNorm** normalises each slice with the slice's own statistics, as
//!   `DistributedDataParallel` without `SyncBatchNorm` does; a slice then needs at least 2
//!   samples, so a model with BatchNorm uses at most `len / 2` threads on a batch of `len`. The
//!   running statistics are deterministic: every worker starts from the main network's, updates
//!   them with its slice, and the main network takes their average weighted by slice length
//!   (so the running mean is the full batch's; the running variance is the weighted mean of the
//!   slices' unbiased variances). Values every worker agrees on (`num_batches_tracked`) are
//!   taken exactly.
//! - **Dropout** masks come from a generator per worker seeded from `(seed, step, thread)`, so
//!   they depend on the thread count (and the main network's generator is not used): a run
//!   resumes exactly for the same thread count, not across thread counts.
//!
//! The workers multiply matrices with the main network's kernel ([`Network::gemm`]): give it
//! the fast one (`net.set_gemm(crate::kernels::best())`) and every thread uses it.
//!
//! With one thread there are no workers and no thread pool: [`DataParallel::backward`] and
//! [`DataParallel::evaluate`] run the main network itself, exactly as a plain loop does.
//!
//! The reduction assumes `CrossEntropyLoss` with `reduction='mean'` (or `'sum'`) and neither
//! class weights nor an ignored index, whose mean is not a fixed weighting of slice means;
//! other settings are refused.

use std::ops::Range;

use rayon::prelude::*;
use torchlet::kernels::Gemm;
use torchlet::loss::{CrossEntropyLoss, Reduction};
use torchlet::{Error, Mode, Network, Rng};

use crate::model::{HostPlan, Model, OwnedPlan, MAX_NODES};

/// The most threads `--threads` accepts.
pub const MAX_THREADS: usize = 256;

/// The training network of a host model.
pub type HostNetwork<'a> = Network<'a, MAX_NODES>;

/// Why [`DataParallel`] or [`ParallelInference`] cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ParallelError {
    /// A thread count outside `1..=`[`MAX_THREADS`].
    #[error("--threads must be between 1 and {MAX_THREADS}, found {0}")]
    Threads(usize),
    /// A batch of 0 samples.
    #[error("--batch-size must be at least 1")]
    ZeroBatch,
    /// The batch is too large for any plan (a buffer would exceed the planner's limit).
    #[error("--batch-size {batch}: {error}")]
    BatchTooLarge {
        /// The batch size asked for.
        batch: usize,
        /// The planner's refusal (for the slice of one thread).
        error: crate::model::ModelError,
    },
    /// The model does not plan for the slice.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A thread's arena does not fit in memory.
    #[error(transparent)]
    Memory(#[from] crate::mem::OutOfMemory),
    /// The thread pool did not start.
    #[error("cannot start {threads} {purpose} threads: {error}")]
    ThreadPool {
        /// How many threads were asked for.
        threads: usize,
        /// `"training"` or `"inference"`.
        purpose: &'static str,
        /// What rayon said.
        error: rayon::ThreadPoolBuildError,
    },
}

/// `threads` if it is in `1..=`[`MAX_THREADS`].
///
/// # Errors
/// [`ParallelError::Threads`] otherwise.
fn threads_in_range(threads: usize) -> Result<usize, ParallelError> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(threads)
    } else {
        Err(ParallelError::Threads(threads))
    }
}

/// `model.plan(len, mode)` for a slice of a batch of `batch` samples; a plan too large is
/// [`ParallelError::BatchTooLarge`] naming the batch size asked for.
fn plan_slice(model: &Model, batch: usize, len: usize, mode: Mode) -> Result<OwnedPlan, ParallelError> {
    model.owned_plan(len, mode).map_err(|e| match e {
        crate::model::ModelError::Model {
            error: Error::TooLarge { .. },
            ..
        } => ParallelError::BatchTooLarge { batch, error: e },
        e => ParallelError::Model(e),
    })
}

/// Checks a thread count given with `--threads`.
///
/// # Errors
/// A message naming the flag and the accepted range for 0 or more than [`MAX_THREADS`]
/// ([`ParallelError::Threads`]'s).
pub fn check_threads(threads: usize) -> Result<usize, String> {
    threads_in_range(threads).map_err(|e| e.to_string())
}

/// A thread pool of `threads` named `torchlet-<tag>-<i>`.
fn thread_pool(threads: usize, tag: &'static str, purpose: &'static str) -> Result<rayon::ThreadPool, ParallelError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("torchlet-{tag}-{i}"))
        .build()
        .map_err(|error| ParallelError::ThreadPool {
            threads,
            purpose,
            error,
        })
}

/// Parses `--threads`: a whole number from 1 to [`MAX_THREADS`] (a clap value parser).
///
/// # Errors
/// A message saying what was expected.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX_THREADS}")),
    }
}

/// The number of threads of this machine (`std::thread::available_parallelism`, 1 if unknown):
/// the default of `--threads`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
}

/// One thread's buffers: gradients and BatchNorm state as the main network's, an arena for
/// the largest slice, and what its last run produced.
struct Worker {
    grads: Vec<f32>,
    state: Vec<f32>,
    arena: Vec<f32>,
    /// Samples of the batch this worker runs (set before each run).
    range: Range<usize>,
    /// The slice's loss (mean, as the loss reduces it), or the error.
    result: torchlet::Result<f32>,
    /// The class each sample of the slice was predicted as (after an evaluation).
    predicted: Vec<u32>,
}

/// What a worker does with its slice.
#[derive(Clone, Copy)]
enum Job {
    /// Forward and backward in training mode, dropout drawn from `seed`/`step`.
    Train { seed: u64, step: u64 },
    /// Forward only, in the main network's mode; note each sample's predicted class.
    Eval,
}

impl Worker {
    /// Runs `job` on samples `self.range` of `x` (`[len, *input]`) and `labels` (`[len]`).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        t: usize,
        gemm: &dyn Gemm,
        plan: &HostPlan,
        params: &[f32],
        main_state: &[f32],
        training: bool,
        loss: &CrossEntropyLoss<'_>,
        x: &[f32],
        labels: &[u32],
        job: Job,
    ) -> torchlet::Result<f32> {
        let sample = plan.input_shape().numel();
        let (xs, ys) = (
            &x[self.range.start * sample..self.range.end * sample],
            &labels[self.range.clone()],
        );
        self.state.copy_from_slice(main_state);
        let mut net = Network::worker(plan, params, &mut self.grads, &mut self.state, &mut self.arena)?;
        net.set_gemm(gemm);
        if !training {
            net.eval();
        }
        match job {
            Job::Train { seed, step } => {
                net.zero_grad();
                net.set_rng(worker_rng(seed, step, t));
                net.forward(xs)?;
                net.backward(loss, ys)
            }
            Job::Eval => {
                let outputs = plan.output_shape().numel().max(1);
                self.predicted.clear();
                predict(net.forward(xs)?, outputs, &mut self.predicted);
                net.loss(loss, ys)
            }
        }
    }
}

/// The dropout generator of worker `t` at optimiser step `step` of a run seeded with `seed`.
fn worker_rng(seed: u64, step: u64, t: usize) -> Rng {
    Rng::with_stream(seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15), t as u64)
}

/// Appends to `predicted` the class each row of `logits` (`[n, outputs]`) predicts: the index
/// of its largest value.
pub(crate) fn predict(logits: &[f32], outputs: usize, predicted: &mut Vec<u32>) {
    predicted.extend(logits.chunks(outputs.max(1)).map(|row| super::argmax(row) as u32));
}

/// Data-parallel forward and backward over CPU threads; see the [module docs](self).
pub struct DataParallel {
    threads: usize,
    /// The largest batch [`DataParallel::backward`] accepts.
    batch: usize,
    seed: u64,
    /// Whether the model has non-trainable state (BatchNorm): slices of at least 2 samples.
    has_state: bool,
    /// The workers' training plan, for the largest slice (`None` with one thread).
    plan: Option<OwnedPlan>,
    workers: Vec<Worker>,
    pool: Option<rayon::ThreadPool>,
}

impl DataParallel {
    /// Prepares `threads` workers (at most `batch`) for `model` and batches of up to `batch`
    /// samples: one training plan for the largest slice, and per thread its gradients, state
    /// and arena, all allocated here, once. `seed` seeds the workers' dropout generators. With
    /// one thread nothing is allocated and the main network runs alone.
    ///
    /// # Errors
    /// A [`ParallelError`] for a thread count outside `1..=`[`MAX_THREADS`], a zero batch, a
    /// model that does not plan, an arena too large, or a thread pool that cannot start.
    pub fn new(model: &Model, batch: usize, threads: usize, seed: u64) -> Result<DataParallel, ParallelError> {
        threads_in_range(threads)?;
        if batch == 0 {
            return Err(ParallelError::ZeroBatch);
        }
        let mut dp = DataParallel {
            // More threads than samples would idle.
            threads: threads.min(batch),
            batch,
            seed,
            has_state: !model.state.is_empty(),
            plan: None,
            workers: Vec::new(),
            pool: None,
        };
        if dp.threads == 1 {
            return Ok(dp);
        }
        let threads = dp.threads;
        // The largest slice of any batch of 1..=batch samples, in either mode. Once every
        // thread is busy (`len >= 2 * threads` at most) the slice only grows with `len`, so
        // beyond that only `batch` itself counts: an absurd --batch-size is not a loop.
        let slice = (1..=batch.min(2 * threads))
            .chain([batch])
            .flat_map(|len| [true, false].map(|training| len.div_ceil(dp.active(len, training))))
            .max()
            .unwrap_or(1);
        let owned = plan_slice(model, batch, slice, Mode::Training)?;
        let plan = owned.plan();
        let what = format!("the training arena of each thread for a slice of {slice}");
        dp.workers = (0..threads)
            .map(|_| {
                Ok(Worker {
                    grads: vec![0.0; plan.param_len()],
                    state: vec![0.0; plan.state_len()],
                    arena: crate::mem::zeros(plan.arena_len(), &what)?,
                    range: 0..0,
                    result: Ok(0.0),
                    predicted: Vec::new(),
                })
            })
            .collect::<Result<_, ParallelError>>()?;
        dp.plan = Some(owned);
        dp.pool = Some(thread_pool(threads, "dp", "training")?);
        Ok(dp)
    }

    /// The number of threads: as asked, but at most the batch size.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The batch size the main network must be planned for: the full batch with one thread
    /// (it runs every sample), otherwise the workers' slice (it only steps, so a smaller arena).
    pub fn main_batch(&self) -> usize {
        self.plan.as_ref().map_or(self.batch, |p| p.plan().batch())
    }

    /// How many threads share a batch of `len` samples: at most one per sample, and with
    /// BatchNorm in training mode at most one per two samples.
    fn active(&self, len: usize, training: bool) -> usize {
        let per = if training && self.has_state { 2 } else { 1 };
        self.threads.min(len / per).max(1)
    }

    /// Splits `len` samples into contiguous slices for the first `active` workers.
    fn assign(&mut self, len: usize, active: usize) {
        let (base, rem) = (len / active, len % active);
        let mut start = 0;
        for (t, w) in self.workers.iter_mut().enumerate().take(active) {
            let n = base + usize::from(t < rem);
            w.range = start..start + n;
            start += n;
        }
    }

    /// Checks the batch and that `loss` reduces to a fixed weighting of slice losses; returns
    /// the batch length and whether the loss is a mean (a slice of `n` samples then weighs
    /// `n / len`; a sum's slices weigh 1).
    fn weighting(
        &self,
        loss: &CrossEntropyLoss<'_>,
        x: &[f32],
        labels: &[u32],
        sample: usize,
    ) -> torchlet::Result<(usize, bool)> {
        let len = labels.len();
        if len == 0 || len > self.batch {
            return Err(Error::BatchSize {
                max: self.batch,
                found: len,
            });
        }
        if x.len() != len * sample {
            return Err(Error::BufferLength {
                buffer: torchlet::Buffer::Input,
                expected: len * sample,
                found: x.len(),
            });
        }
        if loss.weight.is_some() || loss.ignore_index.is_some() {
            return Err(Error::NotReady {
                what: "a CrossEntropyLoss without class weights or ignore_index (data-parallel reduction)",
            });
        }
        let mean = match loss.reduction {
            Reduction::Mean => true,
            Reduction::Sum => false,
            _ => {
                return Err(Error::NotReady {
                    what: "a CrossEntropyLoss with reduction 'mean' or 'sum' (data-parallel reduction)",
                })
            }
        };
        Ok((len, mean))
    }

    /// Runs `job` on every active worker, on the pool.
    fn dispatch(
        &mut self,
        net: &HostNetwork<'_>,
        loss: &CrossEntropyLoss<'_>,
        x: &[f32],
        labels: &[u32],
        active: usize,
        job: Job,
    ) {
        let (Some(plan), Some(pool)) = (self.plan.as_ref().map(OwnedPlan::plan), self.pool.as_ref()) else {
            return;
        };
        let (params, state, training, gemm) = (net.params(), net.state(), net.is_training(), net.gemm());
        let workers = &mut self.workers[..active];
        pool.install(|| {
            workers.par_iter_mut().enumerate().for_each(|(t, w)| {
                w.result = w.run(t, gemm, plan, params, state, training, loss, x, labels, job);
            });
        });
    }

    /// `loss.backward()` on a batch: accumulates into `net`'s gradients the gradient of
    /// `loss` over the whole batch and returns the loss, computed on the threads. Call
    /// `net.zero_grad()` before, as for a plain backward, then step `net`.
    ///
    /// `x`: `[len, *input]`, `labels`: `[len]`, `1 <= len <=` the batch given to
    /// [`DataParallel::new`]; `step` (the optimiser step) seeds the workers' dropout.
    /// In training mode the main network's BatchNorm running statistics are updated as the
    /// [module docs](self) say.
    ///
    /// # Errors
    /// Those of the network's `forward` and `backward` (the first failing slice's, in thread
    /// order), for example [`Error::NonFinite`] for a loss that is NaN; [`Error::BatchSize`]
    /// for a batch larger than planned; [`Error::NotReady`] for a loss that cannot be reduced.
    pub fn backward(
        &mut self,
        net: &mut HostNetwork<'_>,
        loss: &CrossEntropyLoss<'_>,
        x: &[f32],
        labels: &[u32],
        step: u64,
    ) -> torchlet::Result<f32> {
        if self.threads == 1 {
            return backward_serial(net, loss, x, labels);
        }
        let sample = net.plan().input_shape().numel();
        let (len, mean) = self.weighting(loss, x, labels, sample)?;
        let weight = |n: usize| if mean { n as f64 / len as f64 } else { 1.0 };
        let training = net.is_training();
        let active = self.active(len, training);
        self.assign(len, active);
        let job = Job::Train { seed: self.seed, step };
        self.dispatch(net, loss, x, labels, active, job);
        let workers = &self.workers[..active];
        let mut value = 0.0f64;
        for w in workers {
            value += f64::from(w.result?) * weight(w.range.len());
        }
        let value = value as f32;
        if !value.is_finite() {
            return Err(Error::NonFinite { what: "loss" });
        }
        let grads = net.grads_mut();
        for w in workers {
            let k = weight(w.range.len()) as f32;
            for (g, s) in grads.iter_mut().zip(&w.grads) {
                *g += k * *s;
            }
        }
        if training && self.has_state {
            let state = net.state_mut()?;
            for (i, s) in state.iter_mut().enumerate() {
                let first = workers[0].state[i];
                *s = if workers.iter().all(|w| w.state[i] == first) {
                    first
                } else {
                    let sum: f64 = workers
                        .iter()
                        .map(|w| f64::from(w.state[i]) * w.range.len() as f64)
                        .sum();
                    (sum / len as f64) as f32
                };
            }
        }
        Ok(value)
    }

    /// The model's output on a batch without gradients, in `net`'s mode: returns the sum of
    /// the per-sample losses (the mean loss times `len`) and the number of samples whose
    /// largest output is their label. Call it in eval mode (`net.eval()`), as for a held-out
    /// set: in training mode BatchNorm would update the running statistics with one thread and
    /// not with several.
    ///
    /// `x`: `[len, *input]`, `labels`: `[len]`, `1 <= len <=` the batch given to
    /// [`DataParallel::new`].
    ///
    /// # Errors
    /// As [`DataParallel::backward`].
    pub fn evaluate(
        &mut self,
        net: &mut HostNetwork<'_>,
        loss: &CrossEntropyLoss<'_>,
        x: &[f32],
        labels: &[u32],
    ) -> torchlet::Result<(f64, usize)> {
        let mut predicted = Vec::with_capacity(labels.len());
        let total = self.evaluate_predicting(net, loss, x, labels, &mut predicted)?;
        let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok((total, correct))
    }

    /// [`DataParallel::evaluate`] that appends the class each sample is predicted as (the
    /// index of its largest output) to `predicted`, in batch order, instead of counting the
    /// correct ones: what a confusion matrix needs. Returns the summed loss.
    ///
    /// # Errors
    /// As [`DataParallel::backward`]; `predicted` then holds any number of the batch's classes.
    pub fn evaluate_predicting(
        &mut self,
        net: &mut HostNetwork<'_>,
        loss: &CrossEntropyLoss<'_>,
        x: &[f32],
        labels: &[u32],
        predicted: &mut Vec<u32>,
    ) -> torchlet::Result<f64> {
        if self.threads == 1 {
            return evaluate_serial(net, loss, x, labels, predicted);
        }
        let sample = net.plan().input_shape().numel();
        let (len, _) = self.weighting(loss, x, labels, sample)?;
        let active = self.active(len, net.is_training());
        self.assign(len, active);
        self.dispatch(net, loss, x, labels, active, Job::Eval);
        let mut total = 0.0f64;
        for w in &self.workers[..active] {
            // A slice's mean loss times its length, or its summed loss.
            total += f64::from(w.result?)
                * if loss.reduction == Reduction::Mean {
                    w.range.len() as f64
                } else {
                    1.0
                };
            predicted.extend_from_slice(&w.predicted);
        }
        Ok(total)
    }
}

/// [`DataParallel::backward`] on the calling thread: `net`'s own forward and backward.
///
/// # Errors
/// The network's.
pub(crate) fn backward_serial(
    net: &mut HostNetwork<'_>,
    loss: &CrossEntropyLoss<'_>,
    x: &[f32],
    labels: &[u32],
) -> torchlet::Result<f32> {
    net.forward(x)?;
    net.backward(loss, labels)
}

/// [`DataParallel::evaluate_predicting`] on the calling thread: the summed loss of `net`'s own
/// forward pass, each sample's predicted class appended to `predicted`.
///
/// # Errors
/// The network's.
pub(crate) fn evaluate_serial(
    net: &mut HostNetwork<'_>,
    loss: &CrossEntropyLoss<'_>,
    x: &[f32],
    labels: &[u32],
    predicted: &mut Vec<u32>,
) -> torchlet::Result<f64> {
    let outputs = net.plan().output_shape().numel().max(1);
    predict(net.forward(x)?, outputs, predicted);
    let l = net.loss(loss, labels)?;
    Ok(match loss.reduction {
        Reduction::Mean => f64::from(l) * labels.len() as f64,
        _ => f64::from(l),
    })
}

/// Data-parallel inference (eval mode, no gradients) over CPU threads, each with an inference
/// plan's arena (smaller than a training arena: it keeps nothing for backward), on the fast
/// matrix multiply ([`crate::kernels::best`]). Used by `torchlet bench`; with one thread it
/// runs on the caller's thread.
pub struct ParallelInference {
    threads: usize,
    batch: usize,
    /// The inference plan of one slice.
    plan: OwnedPlan,
    arenas: Vec<Vec<f32>>,
    results: Vec<torchlet::Result<()>>,
    pool: Option<rayon::ThreadPool>,
    gemm: &'static dyn Gemm,
}

impl ParallelInference {
    /// Prepares `threads` arenas for `model` and batches of up to `batch` samples (allocated
    /// here, once).
    ///
    /// # Errors
    /// As [`DataParallel::new`].
    pub fn new(model: &Model, batch: usize, threads: usize) -> Result<ParallelInference, ParallelError> {
        threads_in_range(threads)?;
        if batch == 0 {
            return Err(ParallelError::ZeroBatch);
        }
        let threads = threads.min(batch);
        let plan = plan_slice(model, batch, batch.div_ceil(threads), Mode::Inference)?;
        let pool = if threads > 1 {
            Some(thread_pool(threads, "infer", "inference")?)
        } else {
            None
        };
        Ok(ParallelInference {
            threads,
            batch,
            arenas: (0..threads)
                .map(|_| {
                    crate::mem::zeros(
                        plan.plan().arena_len(),
                        &format!("the inference arena for batch {batch}"),
                    )
                })
                .collect::<Result<_, _>>()?,
            results: (0..threads).map(|_| Ok(())).collect(),
            plan,
            pool,
            gemm: crate::kernels::best(),
        })
    }

    /// Sets the matrix multiply (by default [`crate::kernels::best`]).
    pub fn set_gemm(&mut self, gemm: &'static dyn Gemm) {
        self.gemm = gemm;
    }

    /// The matrix multiply in use.
    pub fn gemm(&self) -> &'static dyn Gemm {
        self.gemm
    }

    /// The number of outputs per sample.
    pub fn outputs(&self) -> usize {
        self.plan.plan().output_shape().numel()
    }

    /// The model's output in eval mode: `x`: `[len, *input]` with `1 <= len <=` the batch
    /// given to [`ParallelInference::new`]; writes `out`: `[len, *output]`. `params` and
    /// `state` are the model's.
    ///
    /// # Errors
    /// [`Error::BatchSize`] or [`Error::BufferLength`] for a batch or `out` of the wrong size;
    /// the network's errors (the first failing slice's, in thread order).
    pub fn forward(&mut self, params: &[f32], state: &[f32], x: &[f32], out: &mut [f32]) -> torchlet::Result<()> {
        let (sample, outputs) = (self.plan.plan().input_shape().numel(), self.outputs());
        let len = x.len() / sample.max(1);
        if len == 0 || len > self.batch {
            return Err(Error::BatchSize {
                max: self.batch,
                found: len,
            });
        }
        if x.len() != len * sample || out.len() != len * outputs {
            let (expected, found) = if x.len() != len * sample {
                (len * sample, x.len())
            } else {
                (len * outputs, out.len())
            };
            return Err(Error::BufferLength {
                buffer: torchlet::Buffer::Input,
                expected,
                found,
            });
        }
        let (plan, gemm): (&HostPlan<'_>, &dyn Gemm) = (self.plan.plan(), self.gemm);
        let run = |arena: &mut [f32], xs: &[f32], ys: &mut [f32]| -> torchlet::Result<()> {
            let mut net = Network::with_weights(plan, params, state, arena)?;
            net.set_gemm(gemm);
            ys.copy_from_slice(net.forward(xs)?);
            Ok(())
        };
        let active = self.threads.min(len);
        let Some(pool) = self.pool.as_ref().filter(|_| active > 1) else {
            return run(&mut self.arenas[0], x, out);
        };
        let (base, rem) = (len / active, len % active);
        let (arenas, results) = (&mut self.arenas, &mut self.results);
        pool.scope(|s| {
            let (mut xs, mut ys) = (x, out);
            for (t, (arena, result)) in arenas.iter_mut().zip(results.iter_mut()).take(active).enumerate() {
                let n = base + usize::from(t < rem);
                let (xa, xr) = xs.split_at(n * sample);
                let (ya, yr) = std::mem::take(&mut ys).split_at_mut(n * outputs);
                (xs, ys) = (xr, yr);
                let run = &run;
                s.spawn(move |_| *result = run(arena, xa, ya));
            }
        });
        self.results[..active].iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest slice, found by trying every batch length (what `DataParallel::new` did
    /// before it skipped the lengths that cannot be the largest).
    fn largest_slice_by_search(dp: &DataParallel, batch: usize) -> usize {
        (1..=batch)
            .flat_map(|len| [true, false].map(|training| len.div_ceil(dp.active(len, training))))
            .max()
            .unwrap_or(1)
    }

    #[test]
    fn the_largest_slice_is_found_without_trying_every_batch_length() {
        use torchlet::layer::{batch_norm2d, conv2d, flatten, linear, Layer};
        const WITH_BN: &[Layer] = &[conv2d(1, 2, 3), batch_norm2d(2), flatten(), linear(72, 3)];
        let with_bn = Model::new("bn", WITH_BN, torchlet::Shape::chw(1, 8, 8), &[], 0).unwrap();
        for (name, model) in [
            ("digits-cnn", Model::from_zoo("digits-cnn", 0).unwrap()),
            ("bn", with_bn),
        ] {
            assert_eq!(model.state.is_empty(), name == "digits-cnn");
            for threads in 2..=5 {
                for batch in 1..=24 {
                    let dp = DataParallel::new(&model, batch, threads, 0).unwrap();
                    if dp.threads() > 1 {
                        assert_eq!(
                            dp.main_batch(),
                            largest_slice_by_search(&dp, batch),
                            "{name}, {threads} threads, batch {batch}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_absurd_batch_is_refused_at_once_naming_the_flag() {
        let model = Model::from_zoo("digits-cnn", 0).unwrap();
        let start = std::time::Instant::now();
        for threads in [2, 7] {
            let e = DataParallel::new(&model, 1_000_000_000_000_000, threads, 0)
                .err()
                .unwrap()
                .to_string();
            // Refused by the planner (a buffer too large for any machine) or by the memory
            // check (more than this machine has): either way naming the flag.
            assert!(e.contains("--batch-size"), "{e}");
        }
        let e = ParallelInference::new(&model, usize::MAX, 2).err().unwrap().to_string();
        assert!(e.starts_with("--batch-size 18446744073709551615: "), "{e}");
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }
}
