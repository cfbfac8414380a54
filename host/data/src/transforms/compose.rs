//! Chaining and choosing transforms ([`Compose`], [`RandomApply`], [`RandomChoice`]), and
//! attaching them to a dataset ([`Transformed`], [`with_transform`]) the way torchvision
//! datasets take `transform=` and `target_transform=`.
//!
//! ```
//! use torchlet_data::{Dataset, DataError, Label, Sample};
//! use torchlet_data::transforms::*;
//!
//! struct Black;
//! impl Dataset for Black {
//!     fn len(&self) -> usize { 4 }
//!     fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
//!         Ok((Sample::Image(image::DynamicImage::new_rgb8(40, 30)), i as Label))
//!     }
//! }
//! let ds = with_transform(Black, Compose::new(vec![CenterCrop::new(24).boxed(), ToTensor.boxed()]), None);
//! let (x, label) = ds.get(3)?;
//! assert_eq!(x.into_tensor("example")?.shape, [3, 24, 24]);
//! assert_eq!(label, 3);
//! # Ok::<(), DataError>(())
//! ```

use std::sync::Arc;

use super::Transform;
use crate::{sample_rng, DataError, Dataset, Label, Sample};

/// Indents every line of a nested transform's name, as torchvision's `Compose.__repr__`.
fn listing(head: &str, extra: Option<String>, transforms: &[Box<dyn Transform>]) -> String {
    let mut s = format!("{head}(");
    if let Some(e) = extra {
        s += &format!("\n    {e}");
    }
    for t in transforms {
        s += &format!("\n    {}", t.name().replace('\n', "\n    "));
    }
    s + "\n)"
}

/// `transforms.Compose(transforms)`: each transform in turn, all drawing from the same
/// generator.
pub struct Compose {
    transforms: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// The transforms, applied first to last.
    pub fn new(transforms: Vec<Box<dyn Transform>>) -> Self {
        Compose { transforms }
    }
    /// One more transform at the end.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.transforms.push(Box::new(t));
        self
    }
    /// The transforms.
    pub fn transforms(&self) -> &[Box<dyn Transform>] {
        &self.transforms
    }
}

impl Transform for Compose {
    fn apply(&self, mut x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        for t in &self.transforms {
            x = t.apply(x, rng)?;
        }
        Ok(x)
    }
    fn name(&self) -> String {
        listing("Compose", None, &self.transforms)
    }
}

/// `transforms.RandomApply(transforms, p=0.5)`: all the transforms with probability `p`, none
/// otherwise (torchvision: skipped when `p < torch.rand(1)`).
pub struct RandomApply {
    transforms: Vec<Box<dyn Transform>>,
    p: f32,
}

impl RandomApply {
    /// The transforms, applied together half the time.
    pub fn new(transforms: Vec<Box<dyn Transform>>) -> Self {
        RandomApply { transforms, p: 0.5 }
    }
    /// The probability.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]`.
    pub fn p(mut self, p: f32) -> Self {
        assert!(
            (0.0..=1.0).contains(&p),
            "RandomApply: p should be a probability in [0, 1], got {p}"
        );
        self.p = p;
        self
    }
}

impl Transform for RandomApply {
    fn apply(&self, mut x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        if self.p < rng.next_f32() {
            return Ok(x);
        }
        for t in &self.transforms {
            x = t.apply(x, rng)?;
        }
        Ok(x)
    }
    fn name(&self) -> String {
        listing("RandomApply", Some(format!("p={}", self.p)), &self.transforms)
    }
}

/// `transforms.RandomChoice(transforms, p=None)`: one transform, picked uniformly or with
/// the given relative weights (as Python's `random.choices`).
pub struct RandomChoice {
    transforms: Vec<Box<dyn Transform>>,
    p: Option<Vec<f32>>,
}

impl RandomChoice {
    /// Picks one of `transforms` uniformly.
    ///
    /// # Panics
    /// If `transforms` is empty.
    pub fn new(transforms: Vec<Box<dyn Transform>>) -> Self {
        assert!(!transforms.is_empty(), "RandomChoice: transforms must not be empty");
        RandomChoice { transforms, p: None }
    }
    /// Relative weights, one per transform.
    ///
    /// # Panics
    /// If the count differs from the transforms', a weight is negative, or all are zero.
    pub fn p(mut self, p: Vec<f32>) -> Self {
        assert_eq!(
            p.len(),
            self.transforms.len(),
            "RandomChoice: length of p doesn't match the number of transforms"
        );
        assert!(
            p.iter().all(|&w| w >= 0.0) && p.iter().sum::<f32>() > 0.0,
            "RandomChoice: weights must be non-negative and not all zero"
        );
        self.p = Some(p);
        self
    }

    fn pick(&self, rng: &mut torchlet::Rng) -> usize {
        match &self.p {
            None => rng.below(self.transforms.len() as u32) as usize,
            Some(w) => {
                let total: f32 = w.iter().sum();
                let r = rng.next_f32() * total;
                let mut acc = 0.0;
                for (i, &wi) in w.iter().enumerate() {
                    acc += wi;
                    if r < acc {
                        return i;
                    }
                }
                // Rounding left r at the total: the last transform with a weight.
                w.iter().rposition(|&wi| wi > 0.0).unwrap_or(0)
            }
        }
    }
}

impl Transform for RandomChoice {
    fn apply(&self, x: Sample, rng: &mut torchlet::Rng) -> Result<Sample, DataError> {
        let i = self.pick(rng);
        self.transforms[i].apply(x, rng)
    }
    fn name(&self) -> String {
        listing(
            "RandomChoice",
            self.p.as_ref().map(|p| format!("p={p:?}")),
            &self.transforms,
        )
    }
}

/// A label transform (`target_transform`).
pub type TargetTransform = Arc<dyn Fn(Label) -> Label + Send + Sync>;

/// A dataset whose samples go through `transform` and labels through `target_transform`, as a
/// torchvision dataset built with `transform=` and `target_transform=`.
///
/// [`Dataset::get_seeded`] hands the loader's per-sample generator to the transform, so a
/// seed reproduces every augmentation; [`Dataset::get`] uses the generator of epoch 0 and seed
/// 0 for that index ([`sample_rng`]`(0, 0, index)`). A transform that fails reports the item.
pub struct Transformed<D> {
    dataset: D,
    transform: Option<Box<dyn Transform>>,
    target_transform: Option<TargetTransform>,
}

impl<D: Dataset> Transformed<D> {
    /// `dataset` with no transforms yet.
    pub fn new(dataset: D) -> Self {
        Transformed {
            dataset,
            transform: None,
            target_transform: None,
        }
    }
    /// The sample transform.
    pub fn transform(mut self, t: impl Transform + 'static) -> Self {
        self.transform = Some(Box::new(t));
        self
    }
    /// The label transform.
    pub fn target_transform(mut self, f: impl Fn(Label) -> Label + Send + Sync + 'static) -> Self {
        self.target_transform = Some(Arc::new(f));
        self
    }
    /// The underlying dataset.
    pub fn inner(&self) -> &D {
        &self.dataset
    }
}

/// `dataset` with a sample `transform` and an optional `target_transform`.
pub fn with_transform<D: Dataset>(
    dataset: D,
    transform: impl Transform + 'static,
    target_transform: Option<TargetTransform>,
) -> Transformed<D> {
    Transformed {
        dataset,
        transform: Some(Box::new(transform)),
        target_transform,
    }
}

impl<D: Dataset> Dataset for Transformed<D> {
    fn len(&self) -> usize {
        self.dataset.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        self.get_seeded(index, &mut sample_rng(0, 0, index))
    }
    fn get_seeded(&self, index: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        let (mut x, mut y) = self.dataset.get_seeded(index, rng)?;
        if let Some(t) = &self.transform {
            x = t.apply(x, rng).map_err(|e| match e {
                DataError::Transform { name, reason } => DataError::Transform {
                    name,
                    reason: format!("{reason} (item {index})"),
                },
                other => other,
            })?;
        }
        if let Some(f) = &self.target_transform {
            y = f(y);
        }
        Ok((x, y))
    }
    fn classes(&self) -> Option<Vec<String>> {
        self.dataset.classes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::Lambda;
    use crate::Tensor;

    fn add(v: f32) -> Box<dyn Transform> {
        Lambda::new(move |x| {
            let mut t = x.into_tensor("add")?;
            t.data[0] += v;
            Ok(Sample::Tensor(t))
        })
        .boxed()
    }

    fn one(v: f32) -> Sample {
        Sample::Tensor(Tensor::new(vec![1], vec![v]).unwrap())
    }

    fn value(s: Sample) -> f32 {
        s.into_tensor("t").unwrap().data[0]
    }

    #[test]
    fn compose_runs_in_order_and_prints_nested() {
        let c = Compose::new(vec![add(1.0), add(10.0)]);
        assert_eq!(value(c.apply(one(0.0), &mut torchlet::Rng::new(0)).unwrap()), 11.0);
        assert_eq!(c.name(), "Compose(\n    Lambda()\n    Lambda()\n)");
    }

    #[test]
    fn random_apply_and_choice_follow_their_probabilities() {
        let mut rng = torchlet::Rng::new(5);
        let ra = RandomApply::new(vec![add(1.0)]).p(0.25);
        let applied: f32 = (0..4000).map(|_| value(ra.apply(one(0.0), &mut rng).unwrap())).sum();
        assert!((800.0..1200.0).contains(&applied), "{applied}");
        let rc = RandomChoice::new(vec![add(1.0), add(100.0)]).p(vec![3.0, 1.0]);
        let big = (0..4000)
            .filter(|_| value(rc.apply(one(0.0), &mut rng).unwrap()) > 50.0)
            .count();
        assert!((800..1200).contains(&big), "{big}");
        assert_eq!(
            RandomApply::new(vec![add(1.0)])
                .p(0.0)
                .apply(one(0.0), &mut rng)
                .map(value)
                .unwrap(),
            0.0
        );
    }

    struct Ones(usize);
    impl Dataset for Ones {
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
            Ok((one(i as f32), i as Label))
        }
    }

    #[test]
    fn transformed_dataset_applies_both_transforms() {
        let noisy = Lambda::with_rng(|x, rng| {
            let mut t = x.into_tensor("noise")?;
            t.data[0] += rng.next_f32();
            Ok(Sample::Tensor(t))
        });
        let ds = with_transform(Ones(3), noisy, Some(Arc::new(|y| y + 10)));
        let (x, y) = ds.get_seeded(2, &mut torchlet::Rng::new(9)).unwrap();
        let (x2, _) = ds.get_seeded(2, &mut torchlet::Rng::new(9)).unwrap();
        assert_eq!(y, 12);
        let v = value(x);
        assert!((2.0..3.0).contains(&v));
        assert_eq!(v, value(x2));
        assert_eq!(value(ds.get(2).unwrap().0), value(ds.get(2).unwrap().0));
        let failing = Transformed::new(Ones(1)).transform(crate::transforms::ToTensor);
        let err = failing.get(0).unwrap_err().to_string();
        assert!(err.contains("ToTensor") && err.contains("item 0"), "{err}");
    }
}
