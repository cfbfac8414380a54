//! `DataLoader`: batches of NCHW `f32` tensors from a dataset, shuffled, seeded, and decoded
//! ahead by worker threads (`torch.utils.data.DataLoader`).
//!
//! The same settings as PyTorch, with the same defaults: `batch_size` 1, `shuffle` false,
//! `drop_last` false, `num_workers` 0 (load in the caller's thread), `prefetch_factor` 2
//! batches per worker; `sampler` or `batch_sampler` instead of `shuffle`. An epoch is an
//! iterator of `Result<Batch, DataError>`:
//!
//! ```
//! use torchlet_data::{loader::DataLoader, DataError, Dataset, Label, Sample, Tensor};
//!
//! struct Squares;
//! impl Dataset for Squares {
//!     fn len(&self) -> usize { 10 }
//!     fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
//!         Ok((Sample::Tensor(Tensor::new(vec![1, 1, 1], vec![(i * i) as f32])?), (i % 2) as Label))
//!     }
//! }
//! let loader = DataLoader::new(Squares).batch_size(4).shuffle(true).num_workers(2).seed(0);
//! assert_eq!(loader.len(), 3);
//! for epoch in 0..2 {
//!     for batch in loader.epoch(epoch)? {
//!         let batch = batch?;              // images: [N, 1, 1, 1], labels: [N]
//!         assert_eq!(batch.shape[0], batch.labels.len());
//!     }
//! }
//! # Ok::<(), DataError>(())
//! ```
//!
//! Sample `i` of epoch `e` is `dataset.get_seeded(i, &mut sample_rng(seed, e, i))`, so random
//! transforms draw the same numbers whichever worker runs them: batches are identical for any
//! `num_workers`, and a seed repeats a run. Workers take whole batches in turn, at most
//! `prefetch_factor * num_workers` ahead of the consumer, and batches come out in order. A
//! dataset error is the `Err` of its batch (the epoch goes on with the next batch); a panic in a
//! worker is raised again in the consumer's thread when its batch is due, as it would be without
//! workers; dropping the iterator stops the workers.
//!
//! Use [`Epoch::recycle`] to hand a used batch's buffer back, so that steady-state loading
//! allocates nothing but what the dataset itself returns.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::sampler::{BatchSampler, RandomSampler, Sampler, SequentialSampler};
use super::{sample_rng, DataError, Dataset, Label, Sample};

/// One batch, ready for the core.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[N, C, H, W]` samples, contiguous, in `indices` order.
    pub images: Vec<f32>,
    /// `[N]` labels.
    pub labels: Vec<Label>,
    /// `[N, C, H, W]`. Samples of shape `[C, H, W]` keep it; `[H, W]` become `[1, H, W]`;
    /// `[F]` (features) become `[F, 1, 1]`, which is also `[N, F]` in memory.
    pub shape: [usize; 4],
    /// `[N]` the dataset indices the samples came from.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of samples `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the batch has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Batches of a dataset (`torch.utils.data.DataLoader`); see the [module docs](self).
///
/// Settings are builder methods; conflicting ones (as PyTorch, `shuffle` with `sampler`, or
/// `batch_sampler` with any of `batch_size`, `shuffle`, `sampler`, `drop_last`) make
/// [`DataLoader::epoch`] return [`DataError::Argument`].
pub struct DataLoader<D> {
    dataset: Arc<D>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    num_workers: usize,
    prefetch_factor: usize,
    seed: u64,
    sampler: Option<Arc<dyn Sampler>>,
    batch_sampler: Option<Arc<BatchSampler>>,
}

impl<D> std::fmt::Debug for DataLoader<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("drop_last", &self.drop_last)
            .field("num_workers", &self.num_workers)
            .field("prefetch_factor", &self.prefetch_factor)
            .field("seed", &self.seed)
            .field("sampler", &self.sampler.as_ref().map(|s| s.len()))
            .field("batch_sampler", &self.batch_sampler)
            .finish()
    }
}

impl<D: Dataset + 'static> DataLoader<D> {
    /// A loader over `dataset` with PyTorch's defaults (batch size 1, in order, no workers).
    pub fn new(dataset: D) -> Self {
        Self::from_arc(Arc::new(dataset))
    }

    /// A loader over a shared dataset.
    pub fn from_arc(dataset: Arc<D>) -> Self {
        DataLoader {
            dataset,
            batch_size: 1,
            shuffle: false,
            drop_last: false,
            num_workers: 0,
            prefetch_factor: 2,
            seed: 0,
            sampler: None,
            batch_sampler: None,
        }
    }

    /// Samples per batch (`batch_size`, default 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// A new random order every epoch (`shuffle`, default false).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// Drop the last batch if it is short (`drop_last`, default false).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }
    /// Worker threads that load batches ahead (`num_workers`, default 0: the caller's thread).
    pub fn num_workers(mut self, num_workers: usize) -> Self {
        self.num_workers = num_workers;
        self
    }
    /// Batches each worker may load ahead (`prefetch_factor`, default 2).
    pub fn prefetch_factor(mut self, prefetch_factor: usize) -> Self {
        self.prefetch_factor = prefetch_factor;
        self
    }
    /// The seed of the shuffle, the samplers and the per-sample generators (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Which indices an epoch visits (`sampler`); excludes `shuffle`.
    pub fn sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Some(Arc::new(sampler));
        self
    }
    /// The batches themselves (`batch_sampler`); excludes `batch_size`, `shuffle`, `sampler`
    /// and `drop_last`.
    pub fn batch_sampler(mut self, batch_sampler: BatchSampler) -> Self {
        self.batch_sampler = Some(Arc::new(batch_sampler));
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// Number of batches per epoch (`len(loader)`).
    pub fn len(&self) -> usize {
        if let Some(bs) = &self.batch_sampler {
            return bs.len();
        }
        let n = self.sampler.as_ref().map_or(self.dataset.len(), |s| s.len());
        match (self.batch_size, self.drop_last) {
            (0, _) => 0,
            (b, true) => n / b,
            (b, false) => n.div_ceil(b),
        }
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The settings are consistent (the checks PyTorch makes in its constructor).
    fn check(&self) -> Result<(), DataError> {
        let arg = |name: &str, reason: &str| {
            Err(DataError::Argument {
                name: name.into(),
                reason: reason.into(),
            })
        };
        if self.batch_sampler.is_some()
            && (self.batch_size != 1 || self.shuffle || self.sampler.is_some() || self.drop_last)
        {
            return arg(
                "batch_sampler",
                "option is mutually exclusive with batch_size, shuffle, sampler, and drop_last",
            );
        }
        if self.sampler.is_some() && self.shuffle {
            return arg("sampler", "option is mutually exclusive with shuffle");
        }
        if self.batch_size == 0 {
            return arg("batch_size", "must be a positive integer, found 0");
        }
        if self.num_workers > 0 && self.prefetch_factor == 0 {
            return arg("prefetch_factor", "must be positive when num_workers > 0");
        }
        Ok(())
    }

    /// The batches of epoch `epoch`, as lists of dataset indices.
    fn plan(&self, epoch: u64) -> Result<Vec<Vec<usize>>, DataError> {
        if let Some(bs) = &self.batch_sampler {
            return Ok(bs.batches(self.seed, epoch));
        }
        let sampler: Arc<dyn Sampler> = match (&self.sampler, self.shuffle) {
            (Some(s), _) => Arc::clone(s),
            (None, true) => Arc::new(RandomSampler::new(self.dataset.len())),
            (None, false) => Arc::new(SequentialSampler::new(self.dataset.len())),
        };
        Ok(BatchSampler::new(sampler, self.batch_size, self.drop_last)?.batches(self.seed, epoch))
    }

    /// The batches of epoch `epoch` (0, 1, ...): shuffled anew for every epoch when `shuffle`.
    ///
    /// # Errors
    /// [`DataError::Argument`] for conflicting settings. Loading errors are the items' `Err`.
    pub fn epoch(&self, epoch: u64) -> Result<Epoch<D>, DataError> {
        self.check()?;
        let batches = Arc::new(self.plan(epoch)?);
        let job = Job {
            dataset: Arc::clone(&self.dataset),
            batches,
            seed: self.seed,
            epoch,
        };
        let workers = (self.num_workers > 0 && !job.batches.is_empty())
            .then(|| Workers::start(&job, self.num_workers, self.num_workers * self.prefetch_factor));
        Ok(Epoch {
            job,
            next: 0,
            workers,
            spare: Vec::new(),
        })
    }
}

/// What an epoch loads: shared by the consumer and the workers.
struct Job<D> {
    dataset: Arc<D>,
    batches: Arc<Vec<Vec<usize>>>,
    seed: u64,
    epoch: u64,
}

impl<D> Clone for Job<D> {
    fn clone(&self) -> Self {
        Job {
            dataset: Arc::clone(&self.dataset),
            batches: Arc::clone(&self.batches),
            seed: self.seed,
            epoch: self.epoch,
        }
    }
}

impl<D: Dataset> Job<D> {
    /// Loads batch `b` into `images` (a recycled buffer or a new one).
    fn load(&self, b: usize, mut images: Vec<f32>) -> Result<Batch, DataError> {
        let indices = &self.batches[b];
        let mut labels = Vec::with_capacity(indices.len());
        let mut shape = [indices.len(), 0, 0, 0];
        images.clear();
        for (k, &i) in indices.iter().enumerate() {
            let (sample, label) = self.dataset.get_seeded(i, &mut sample_rng(self.seed, self.epoch, i))?;
            let t = match sample {
                Sample::Tensor(t) => t,
                Sample::Image(_) => {
                    return Err(DataError::Transform {
                        name: "DataLoader".into(),
                        reason: format!(
                            "sample {i} is an image, batches need tensors (add ToTensor to the transforms)"
                        ),
                    })
                }
            };
            let chw = match *t.shape.as_slice() {
                [f] => [f, 1, 1],
                [h, w] => [1, h, w],
                [c, h, w] => [c, h, w],
                _ => {
                    return Err(DataError::Shape {
                        what: format!("sample {i}"),
                        expected: "a tensor of shape [C, H, W], [H, W] or [F]".into(),
                        found: format!("{:?}", t.shape),
                    })
                }
            };
            if k == 0 {
                shape[1..].copy_from_slice(&chw);
                images.reserve(indices.len() * t.numel());
            } else if chw != shape[1..] {
                return Err(DataError::Shape {
                    what: format!("sample {i} in a batch starting with sample {}", indices[0]),
                    expected: format!("{:?} (the batch's first sample)", &shape[1..]),
                    found: format!("{:?}", t.shape),
                });
            }
            images.extend_from_slice(&t.data);
            labels.push(label);
        }
        Ok(Batch {
            images,
            labels,
            shape,
            indices: indices.clone(),
        })
    }
}

/// The batches of one epoch, in order: `Iterator<Item = Result<Batch, DataError>>`.
///
/// Dropping it early stops the workers (each finishes at most the batch it is loading).
pub struct Epoch<D: Dataset + 'static> {
    job: Job<D>,
    next: usize,
    workers: Option<Workers>,
    /// Recycled buffers when there are no workers.
    spare: Vec<Vec<f32>>,
}

impl<D: Dataset + 'static> Epoch<D> {
    /// Hands a used batch back, so a later batch reuses its buffer instead of allocating.
    pub fn recycle(&mut self, batch: Batch) {
        let mut images = batch.images;
        images.clear();
        match &self.workers {
            Some(w) => {
                let mut s = w.lock();
                if s.spare.len() < w.capacity + 1 {
                    s.spare.push(images);
                }
            }
            None if self.spare.is_empty() => self.spare.push(images),
            None => {}
        }
    }
}

impl<D: Dataset + 'static> Iterator for Epoch<D> {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.next;
        if b >= self.job.batches.len() {
            return None;
        }
        self.next += 1;
        match &self.workers {
            None => Some(self.job.load(b, self.spare.pop().unwrap_or_default())),
            Some(w) => Some(w.take(b)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.job.batches.len() - self.next;
        (left, Some(left))
    }
}

impl<D: Dataset + 'static> ExactSizeIterator for Epoch<D> {}

impl<D: Dataset + 'static> std::fmt::Debug for Epoch<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("epoch", &self.job.epoch)
            .field("next", &self.next)
            .field("batches", &self.job.batches.len())
            .field("workers", &self.workers.as_ref().map_or(0, |w| w.handles.len()))
            .finish()
    }
}

/// What the workers and the consumer share, under one lock.
struct State {
    /// The next batch a worker will take.
    next_claim: usize,
    /// Batches handed to the consumer so far.
    delivered: usize,
    /// Loaded batches waiting for the consumer; `Err` holds the panic of the worker that
    /// loaded it, for the consumer to raise again.
    ready: BTreeMap<usize, std::thread::Result<Result<Batch, DataError>>>,
    /// Set when the epoch is dropped: take no more batches.
    stop: bool,
    /// Recycled buffers.
    spare: Vec<Vec<f32>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a batch may be claimed (one was delivered, or stop).
    work: Condvar,
    /// Signalled when a batch is ready.
    done: Condvar,
}

/// Worker threads of one epoch.
struct Workers {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// Batches loaded or being loaded ahead of the consumer, at most.
    capacity: usize,
}

impl Workers {
    fn start<D: Dataset + 'static>(job: &Job<D>, num_workers: usize, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_claim: 0,
                delivered: 0,
                ready: BTreeMap::new(),
                stop: false,
                spare: Vec::new(),
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let handles = (0..num_workers.min(job.batches.len()))
            .map(|w| {
                let (job, shared) = (job.clone(), Arc::clone(&shared));
                std::thread::Builder::new()
                    .name(format!("torchlet-loader-{w}"))
                    .spawn(move || work(&job, &shared, capacity))
                    .expect("cannot spawn a data loader worker thread")
            })
            .collect();
        Workers {
            shared,
            handles,
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Waits for batch `b` (the next in order), or raises the panic of the worker loading it
    /// (the workers go on: if the panic is caught, the epoch continues with batch `b + 1`).
    fn take(&self, b: usize) -> Result<Batch, DataError> {
        let mut s = self.lock();
        let result = loop {
            if let Some(r) = s.ready.remove(&b) {
                break r;
            }
            s = self.shared.done.wait(s).unwrap_or_else(|e| e.into_inner());
        };
        s.delivered = b + 1;
        drop(s);
        self.shared.work.notify_one();
        result.unwrap_or_else(|payload| panic::resume_unwind(payload))
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.lock().stop = true;
        self.shared.work.notify_all();
        for h in self.handles.drain(..) {
            // A worker's panic was caught and handed to the consumer already.
            let _ = h.join();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A worker: take the next batch while fewer than `capacity` are ahead of the consumer, load
/// it, hand it over; stop at the end of the epoch or when told.
fn work<D: Dataset>(job: &Job<D>, shared: &Shared, capacity: usize) {
    loop {
        let (b, buffer) = {
            let mut s = lock(shared);
            loop {
                if s.stop || s.next_claim >= job.batches.len() {
                    return;
                }
                if s.next_claim < s.delivered + capacity {
                    break;
                }
                s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            s.next_claim += 1;
            (s.next_claim - 1, s.spare.pop().unwrap_or_default())
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| job.load(b, buffer)));
        lock(shared).ready.insert(b, result);
        shared.done.notify_one();
    }
}
