//! The `Dataset` trait and its combinators: concatenation, subsets, seeded random splits.
//!
//! As `torch.utils.data.Dataset`: a length and an item by index. Implement it for your own
//! data in a few lines:
//!
//! ```
//! use torchlet_data::{Dataset, DataError, Label, Sample, Tensor};
//!
//! /// Points on a line, labelled by sign.
//! struct Line(Vec<f32>);
//! impl Dataset for Line {
//!     fn len(&self) -> usize { self.0.len() }
//!     fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
//!         let x = *self.0.get(i).ok_or(DataError::Index { index: i, len: self.0.len() })?;
//!         Ok((Sample::Tensor(Tensor::new(vec![1], vec![x])?), (x > 0.0) as Label))
//!     }
//! }
//! let both = Line(vec![-1.0, 2.0]).concat(Line(vec![3.0]));   // `ants + bees`
//! assert_eq!(both.len(), 3);
//! ```

use std::sync::Arc;

use super::{DataError, Label, Sample};

/// A map-style dataset: `len()` items, each a `(sample, label)` pair.
///
/// `get` takes `&self` and datasets are `Send + Sync`, so loader workers share one dataset.
pub trait Dataset: Send + Sync {
    /// Number of items.
    fn len(&self) -> usize;

    /// Item `index` (`0..len()`).
    ///
    /// # Errors
    /// [`DataError::Index`] past the end; the dataset's own errors (a file that does not
    /// decode, naming the file).
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError>;

    /// Item `index`, with the generator random transforms draw from. The
    /// [`DataLoader`](super::loader::DataLoader) calls this with
    /// [`sample_rng`](super::sample_rng)`(seed, epoch, index)`, so an epoch's batches are the
    /// same whatever the number of workers. Datasets without randomness keep the default.
    ///
    /// # Errors
    /// As [`Dataset::get`].
    fn get_seeded(&self, index: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        let _ = rng;
        self.get(index)
    }

    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class names in label order, when the dataset knows them.
    fn classes(&self) -> Option<Vec<String>> {
        None
    }

    /// `self + other` (`torch.utils.data.ConcatDataset`): this dataset's items first.
    fn concat<B: Dataset>(self, other: B) -> Concat<Self, B>
    where
        Self: Sized,
    {
        Concat { a: self, b: other }
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        (**self).get(index)
    }
    fn get_seeded(&self, index: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        (**self).get_seeded(index, rng)
    }
    fn classes(&self) -> Option<Vec<String>> {
        (**self).classes()
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        (**self).get(index)
    }
    fn get_seeded(&self, index: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        (**self).get_seeded(index, rng)
    }
    fn classes(&self) -> Option<Vec<String>> {
        (**self).classes()
    }
}

/// Two datasets one after the other (`ConcatDataset`, `a + b`).
#[derive(Clone, Debug)]
pub struct Concat<A, B> {
    a: A,
    b: B,
}

impl<A: Dataset, B: Dataset> Dataset for Concat<A, B> {
    fn len(&self) -> usize {
        self.a.len() + self.b.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        self.get_seeded(index, &mut torchlet::Rng::new(0))
    }
    fn get_seeded(&self, index: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        let n = self.a.len();
        if index < n {
            self.a.get_seeded(index, rng)
        } else if index - n < self.b.len() {
            self.b.get_seeded(index - n, rng)
        } else {
            Err(DataError::Index { index, len: self.len() })
        }
    }
    fn classes(&self) -> Option<Vec<String>> {
        self.a.classes()
    }
}

/// The items of a dataset at given indices (`torch.utils.data.Subset`).
#[derive(Clone, Debug)]
pub struct Subset<D> {
    dataset: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// The items of `dataset` at `indices`, in that order.
    ///
    /// # Errors
    /// [`DataError::Index`] for an index past the end of `dataset`.
    pub fn new(dataset: D, indices: Vec<usize>) -> Result<Self, DataError> {
        let len = dataset.len();
        if let Some(&index) = indices.iter().find(|&&i| i >= len) {
            return Err(DataError::Index { index, len });
        }
        Ok(Subset { dataset, indices })
    }
    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        self.get_seeded(index, &mut torchlet::Rng::new(0))
    }
    fn get_seeded(&self, index: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        let i = *self.indices.get(index).ok_or(DataError::Index {
            index,
            len: self.indices.len(),
        })?;
        self.dataset.get_seeded(i, rng)
    }
    fn classes(&self) -> Option<Vec<String>> {
        self.dataset.classes()
    }
}

/// `torch.utils.data.random_split`: a seeded permutation of `dataset` cut into parts of the
/// given lengths (which must add up to its length), sharing the dataset.
///
/// # Errors
/// [`DataError::Argument`] if the lengths do not add up.
pub fn random_split<D: Dataset>(dataset: D, lengths: &[usize], seed: u64) -> Result<Vec<Subset<Arc<D>>>, DataError> {
    let total: usize = lengths.iter().sum();
    if total != dataset.len() {
        return Err(DataError::Argument {
            name: "lengths".into(),
            reason: format!("sum to {total}, the dataset has {} items", dataset.len()),
        });
    }
    let mut order: Vec<usize> = (0..total).collect();
    let mut rng = torchlet::Rng::new(seed);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u32 + 1) as usize);
    }
    let shared = Arc::new(dataset);
    let mut start = 0;
    Ok(lengths
        .iter()
        .map(|&n| {
            let part = Subset {
                dataset: Arc::clone(&shared),
                indices: order[start..start + n].to_vec(),
            };
            start += n;
            part
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    struct Range(usize, u32);
    impl Dataset for Range {
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
            if i >= self.0 {
                return Err(DataError::Index { index: i, len: self.0 });
            }
            Ok((Sample::Tensor(Tensor::new(vec![1], vec![i as f32]).unwrap()), self.1))
        }
    }

    fn value(s: Sample) -> f32 {
        s.into_tensor("test").unwrap().data[0]
    }

    #[test]
    fn concat_puts_the_first_dataset_first() {
        let c = Range(2, 0).concat(Range(3, 1));
        assert_eq!(c.len(), 5);
        assert_eq!(c.get(1).unwrap().1, 0);
        let (s, l) = c.get(2).unwrap();
        assert_eq!((value(s), l), (0.0, 1));
        assert!(matches!(c.get(5), Err(DataError::Index { index: 5, len: 5 })));
    }

    #[test]
    fn random_split_is_a_seeded_partition() {
        let parts = random_split(Range(10, 0), &[7, 3], 42).unwrap();
        let mut all: Vec<usize> = parts.iter().flat_map(|p| p.indices().to_vec()).collect();
        assert_eq!(parts[0].len(), 7);
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let again = random_split(Range(10, 0), &[7, 3], 42).unwrap();
        assert_eq!(again[0].indices(), parts[0].indices());
        let other = random_split(Range(10, 0), &[7, 3], 43).unwrap();
        assert_ne!(other[0].indices(), parts[0].indices());
        assert!(random_split(Range(10, 0), &[7, 4], 0).is_err());
        assert!(Subset::new(Range(3, 0), vec![3]).is_err());
    }
}
