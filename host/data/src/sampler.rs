//! Samplers: which dataset indices an epoch visits, and in which order (`torch.utils.data`).
//!
//! A [`Sampler`] yields the indices of one epoch; a [`BatchSampler`] cuts them into batches.
//! The [`DataLoader`](super::loader::DataLoader) builds a [`SequentialSampler`] or, with
//! `shuffle(true)`, a [`RandomSampler`] itself; pass one of your own with `.sampler(...)` for
//! class balancing ([`WeightedRandomSampler`]) or a held-out split ([`SubsetRandomSampler`]).
//!
//! Randomness is seeded, never global: [`Sampler::indices`] gets the loader's seed and the epoch
//! number and draws from [`epoch_rng`]`(seed, epoch)`, so every epoch has a new order and a run
//! can be repeated exactly. `generator(seed)` gives a sampler its own seed, as PyTorch's
//! `generator=` argument does.
//!
//! ```
//! use torchlet_data::sampler::{BatchSampler, Sampler, SequentialSampler};
//!
//! let batches = BatchSampler::new(SequentialSampler::new(10), 3, false).unwrap();
//! assert_eq!(batches.len(), 4);
//! assert_eq!(batches.batches(0, 0)[3], vec![9]);
//! ```

use std::sync::Arc;

use super::DataError;

/// Which indices one epoch visits, in order (`torch.utils.data.Sampler`).
///
/// `Send + Sync` so a loader can be shared with its worker threads.
pub trait Sampler: Send + Sync {
    /// The indices of epoch `epoch`. `seed` is the loader's seed; random samplers draw from
    /// [`epoch_rng`]`(seed, epoch)` (or their own `generator` seed), deterministic ones ignore it.
    fn indices(&self, seed: u64, epoch: u64) -> Vec<usize>;

    /// How many indices an epoch has (`len(sampler)`).
    fn len(&self) -> usize;

    /// Whether an epoch has no indices.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn indices(&self, seed: u64, epoch: u64) -> Vec<usize> {
        (**self).indices(seed, epoch)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
}

impl<S: Sampler + ?Sized> Sampler for Arc<S> {
    fn indices(&self, seed: u64, epoch: u64) -> Vec<usize> {
        (**self).indices(seed, epoch)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
}

/// The generator a sampler draws epoch `epoch` from. Its streams differ from the per-sample
/// generators of [`sample_rng`](super::sample_rng), so the order and the augmentations are
/// independent.
pub fn epoch_rng(seed: u64, epoch: u64) -> torchlet::Rng {
    torchlet::Rng::with_stream(seed ^ 0x5DEE_CE66_D1CE_4E5B, epoch)
}

/// A uniform integer in `0..n` (`n > 0`), for any `usize`.
fn below(rng: &mut torchlet::Rng, n: usize) -> usize {
    match u32::try_from(n) {
        Ok(n) => rng.below(n) as usize,
        Err(_) => ((u64::from(rng.next_u32()) << 32 | u64::from(rng.next_u32())) % n as u64) as usize,
    }
}

/// A uniform `f64` in `[0, 1)` with 53 bits.
fn next_f64(rng: &mut torchlet::Rng) -> f64 {
    let bits = (u64::from(rng.next_u32()) << 32 | u64::from(rng.next_u32())) >> 11;
    bits as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Shuffles `v` in place (Fisher-Yates), as `torch.randperm` does for indices.
pub fn shuffle<T>(v: &mut [T], rng: &mut torchlet::Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, below(rng, i + 1));
    }
}

/// `0, 1, ..., n - 1`, every epoch (`SequentialSampler`; the loader's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequentialSampler {
    n: usize,
}

impl SequentialSampler {
    /// The indices of a dataset of `n` items, in order.
    pub fn new(n: usize) -> Self {
        SequentialSampler { n }
    }
}

impl Sampler for SequentialSampler {
    fn indices(&self, _seed: u64, _epoch: u64) -> Vec<usize> {
        (0..self.n).collect()
    }
    fn len(&self) -> usize {
        self.n
    }
}

/// Random indices of a dataset of `n` items (`RandomSampler`; the loader's `shuffle(true)`).
///
/// Without replacement (the default) an epoch is a new permutation of `0..n`; with
/// `num_samples > n`, as PyTorch, whole permutations follow each other and the last is cut.
/// With `replacement(true)`, `num_samples` independent uniform draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomSampler {
    n: usize,
    replacement: bool,
    num_samples: Option<usize>,
    generator: Option<u64>,
}

impl RandomSampler {
    /// A permutation of `0..n` every epoch.
    pub fn new(n: usize) -> Self {
        RandomSampler {
            n,
            replacement: false,
            num_samples: None,
            generator: None,
        }
    }
    /// Draw with replacement (`replacement=True`).
    pub fn replacement(mut self, replacement: bool) -> Self {
        self.replacement = replacement;
        self
    }
    /// Indices per epoch (`num_samples`, default `n`).
    pub fn num_samples(mut self, num_samples: usize) -> Self {
        self.num_samples = Some(num_samples);
        self
    }
    /// Draw from this seed instead of the loader's (PyTorch's `generator=`).
    pub fn generator(mut self, seed: u64) -> Self {
        self.generator = Some(seed);
        self
    }
}

impl Sampler for RandomSampler {
    fn indices(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut rng = epoch_rng(self.generator.unwrap_or(seed), epoch);
        let k = self.len();
        if self.replacement {
            return (0..k).map(|_| below(&mut rng, self.n)).collect();
        }
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let mut perm: Vec<usize> = (0..self.n).collect();
            shuffle(&mut perm, &mut rng);
            let take = (k - out.len()).min(self.n);
            out.extend_from_slice(&perm[..take]);
        }
        out
    }
    /// `num_samples`, or `n`; 0 for an empty dataset (there is nothing to draw).
    fn len(&self) -> usize {
        if self.n == 0 {
            0
        } else {
            self.num_samples.unwrap_or(self.n)
        }
    }
}

/// A new permutation of the given indices every epoch (`SubsetRandomSampler`), for example the
/// training part of a split whose other part validates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsetRandomSampler {
    indices: Vec<usize>,
    generator: Option<u64>,
}

impl SubsetRandomSampler {
    /// Samples exactly `indices`, shuffled.
    pub fn new(indices: Vec<usize>) -> Self {
        SubsetRandomSampler {
            indices,
            generator: None,
        }
    }
    /// Draw from this seed instead of the loader's (PyTorch's `generator=`).
    pub fn generator(mut self, seed: u64) -> Self {
        self.generator = Some(seed);
        self
    }
}

impl Sampler for SubsetRandomSampler {
    fn indices(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut out = self.indices.clone();
        shuffle(&mut out, &mut epoch_rng(self.generator.unwrap_or(seed), epoch));
        out
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Index `i` with probability `weights[i] / sum(weights)` (`WeightedRandomSampler`), for
/// example to balance classes: weight each sample by `1 / count(its class)`.
///
/// With replacement (PyTorch's default) the `num_samples` draws are independent; without, an
/// index is drawn at most once per epoch (as `torch.multinomial(replacement=False)`: successive
/// draws proportional to the weights left).
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedRandomSampler {
    /// Running sums of the weights: `cumulative[i] = weights[0] + ... + weights[i]`.
    cumulative: Vec<f64>,
    weights: Vec<f64>,
    num_samples: usize,
    replacement: bool,
    generator: Option<u64>,
}

impl WeightedRandomSampler {
    /// `num_samples` indices per epoch drawn from `weights` (which need not sum to 1).
    ///
    /// # Errors
    /// [`DataError::Argument`] for a negative or non-finite weight, all weights zero, or
    /// `replacement == false` with more samples than positive weights.
    pub fn new(weights: &[f64], num_samples: usize, replacement: bool) -> Result<Self, DataError> {
        let arg = |reason: String| {
            Err(DataError::Argument {
                name: "weights".into(),
                reason,
            })
        };
        if let Some((i, w)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            return arg(format!("must be finite and non-negative, weights[{i}] is {w}"));
        }
        let positive = weights.iter().filter(|&&w| w > 0.0).count();
        if positive == 0 && num_samples > 0 {
            return arg("at least one weight must be positive".into());
        }
        if !replacement && num_samples > positive {
            return Err(DataError::Argument {
                name: "num_samples".into(),
                reason: format!("{num_samples} samples without replacement, only {positive} weights are positive"),
            });
        }
        let cumulative = weights
            .iter()
            .scan(0.0, |sum, &w| {
                *sum += w;
                Some(*sum)
            })
            .collect();
        Ok(WeightedRandomSampler {
            cumulative,
            weights: weights.to_vec(),
            num_samples,
            replacement,
            generator: None,
        })
    }
    /// Draw from this seed instead of the loader's (PyTorch's `generator=`).
    pub fn generator(mut self, seed: u64) -> Self {
        self.generator = Some(seed);
        self
    }
}

impl Sampler for WeightedRandomSampler {
    fn indices(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut rng = epoch_rng(self.generator.unwrap_or(seed), epoch);
        let Some(&total) = self.cumulative.last() else {
            return Vec::new();
        };
        if self.replacement {
            let last_positive = self.weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
            return (0..self.num_samples)
                .map(|_| {
                    let u = next_f64(&mut rng) * total;
                    // The first running sum above `u`: zero weights never win.
                    self.cumulative.partition_point(|&c| c <= u).min(last_positive)
                })
                .collect();
        }
        // Efraimidis and Spirakis (2006): the `num_samples` largest keys `ln(u) / w` are a draw
        // without replacement with probabilities proportional to the weights.
        let mut keyed: Vec<(f64, usize)> = self
            .weights
            .iter()
            .enumerate()
            .filter(|(_, &w)| w > 0.0)
            .map(|(i, &w)| ((1.0 - next_f64(&mut rng)).ln() / w, i))
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        keyed.iter().take(self.num_samples).map(|&(_, i)| i).collect()
    }
    fn len(&self) -> usize {
        self.num_samples
    }
}

/// A sampler's indices cut into batches of `batch_size` (`BatchSampler`); the last one is
/// smaller unless `drop_last`.
pub struct BatchSampler {
    sampler: Box<dyn Sampler>,
    batch_size: usize,
    drop_last: bool,
}

impl std::fmt::Debug for BatchSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSampler")
            .field("len(sampler)", &self.sampler.len())
            .field("batch_size", &self.batch_size)
            .field("drop_last", &self.drop_last)
            .finish()
    }
}

impl BatchSampler {
    /// Batches of `batch_size` indices of `sampler`.
    ///
    /// # Errors
    /// [`DataError::Argument`] if `batch_size` is 0.
    pub fn new(sampler: impl Sampler + 'static, batch_size: usize, drop_last: bool) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::Argument {
                name: "batch_size".into(),
                reason: "must be a positive integer, found 0".into(),
            });
        }
        Ok(BatchSampler {
            sampler: Box::new(sampler),
            batch_size,
            drop_last,
        })
    }

    /// The batches of epoch `epoch` (see [`Sampler::indices`] for `seed`).
    pub fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        let indices = self.sampler.indices(seed, epoch);
        let chunks = indices.chunks(self.batch_size);
        if self.drop_last {
            chunks
                .filter(|c| c.len() == self.batch_size)
                .map(<[usize]>::to_vec)
                .collect()
        } else {
            chunks.map(<[usize]>::to_vec).collect()
        }
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.sampler.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Indices per batch (the last may have fewer unless `drop_last`).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whether a short last batch is dropped.
    pub fn drop_last(&self) -> bool {
        self.drop_last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn random_sampler_permutes_and_reshuffles() {
        let s = RandomSampler::new(20);
        let (a, b) = (s.indices(1, 0), s.indices(1, 1));
        assert_eq!(sorted(a.clone()), (0..20).collect::<Vec<_>>());
        assert_eq!(sorted(b.clone()), (0..20).collect::<Vec<_>>());
        assert_ne!(a, b);
        assert_eq!(a, s.indices(1, 0));
        assert_ne!(a, s.indices(2, 0));
        assert_eq!(s.generator(5).indices(1, 0), s.indices(5, 0));
    }

    #[test]
    fn random_sampler_more_samples_than_items_repeats_whole_permutations() {
        let idx = RandomSampler::new(4).num_samples(10).indices(0, 0);
        assert_eq!(idx.len(), 10);
        assert_eq!(sorted(idx[..4].to_vec()), vec![0, 1, 2, 3]);
        assert_eq!(sorted(idx[4..8].to_vec()), vec![0, 1, 2, 3]);
        assert_eq!(RandomSampler::new(0).num_samples(3).len(), 0);
    }

    #[test]
    fn weighted_sampler_rejects_bad_weights() {
        assert!(WeightedRandomSampler::new(&[1.0, -1.0], 3, true).is_err());
        assert!(WeightedRandomSampler::new(&[1.0, f64::NAN], 3, true).is_err());
        assert!(WeightedRandomSampler::new(&[0.0, 0.0], 3, true).is_err());
        assert!(WeightedRandomSampler::new(&[1.0, 0.0, 2.0], 3, false).is_err());
        assert!(WeightedRandomSampler::new(&[1.0, 0.0, 2.0], 2, false).is_ok());
    }

    #[test]
    fn weighted_sampler_never_draws_zero_weights() {
        let s = WeightedRandomSampler::new(&[0.0, 1.0, 0.0, 3.0, 0.0], 1000, true).unwrap();
        assert!(s.indices(0, 0).iter().all(|&i| i == 1 || i == 3));
        let s = WeightedRandomSampler::new(&[0.0, 1.0, 0.0, 3.0, 0.0], 2, false).unwrap();
        assert_eq!(sorted(s.indices(0, 3)), vec![1, 3]);
    }

    #[test]
    fn batch_sampler_rejects_zero_and_counts() {
        assert!(BatchSampler::new(SequentialSampler::new(3), 0, false).is_err());
        let b = BatchSampler::new(SequentialSampler::new(10), 4, true).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.batches(0, 0), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    }
}
