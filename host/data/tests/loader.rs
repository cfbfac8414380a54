//! DataLoader and samplers over synthetic in-memory datasets: epochs visit every index once,
//! seeds repeat runs, batch counts follow `drop_last`, workers give the same batches as the
//! caller's thread, sampler statistics, errors and early drops.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use torchlet_data::loader::{Batch, DataLoader};
use torchlet_data::sampler::{
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
};
use torchlet_data::{DataError, Dataset, Label, Sample, Tensor};

/// Item `i` is the `[1, 1, 1]` tensor `i` with label `i % 10`.
struct Ids(usize);

impl Dataset for Ids {
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
        if i >= self.0 {
            return Err(DataError::Index { index: i, len: self.0 });
        }
        Ok((
            Sample::Tensor(Tensor::new(vec![1, 1, 1], vec![i as f32])?),
            (i % 10) as Label,
        ))
    }
}

/// A transform-like dataset: item `i` is `[2, 3, 3]` values `i + noise` from the generator, and
/// sleeps a pseudo-random few hundred microseconds so workers finish out of order.
struct Noisy {
    n: usize,
    sleep: bool,
}

impl Dataset for Noisy {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
        self.get_seeded(i, &mut torchlet::Rng::new(0))
    }
    fn get_seeded(&self, i: usize, rng: &mut torchlet::Rng) -> Result<(Sample, Label), DataError> {
        if self.sleep {
            std::thread::sleep(Duration::from_micros((i as u64 * 7919) % 500));
        }
        let data = (0..18).map(|_| i as f32 + rng.next_f32()).collect();
        Ok((Sample::Tensor(Tensor::new(vec![2, 3, 3], data)?), rng.below(10)))
    }
}

/// Fails at index `bad` with a decode error naming `img<bad>.png`.
struct Failing {
    n: usize,
    bad: usize,
}

impl Dataset for Failing {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
        if i == self.bad {
            return Err(DataError::Decode {
                path: format!("img{i}.png").into(),
                reason: "truncated".into(),
            });
        }
        Ids(self.n).get(i)
    }
}

/// The ids of a batch of `Ids`.
fn ids(b: &Batch) -> Vec<usize> {
    b.images.iter().map(|&x| x as usize).collect()
}

fn all_batches<D: Dataset + 'static>(loader: &DataLoader<D>, epoch: u64) -> Vec<Batch> {
    loader.epoch(epoch).unwrap().map(Result::unwrap).collect()
}

#[test]
fn defaults_are_pytorchs_batch_of_one_in_order() {
    let loader = DataLoader::new(Ids(3));
    let b = all_batches(&loader, 0);
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].shape, [1, 1, 1, 1]);
    assert_eq!(
        (b[2].images.clone(), b[2].labels.clone(), b[2].indices.clone()),
        (vec![2.0], vec![2], vec![2])
    );
}

#[test]
fn shuffle_visits_every_index_once_and_reshuffles() {
    let loader = DataLoader::new(Ids(103)).batch_size(10).shuffle(true).seed(7);
    let mut orders = Vec::new();
    for epoch in 0..3 {
        let order: Vec<usize> = all_batches(&loader, epoch).iter().flat_map(ids).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..103).collect::<Vec<_>>(), "epoch {epoch}");
        assert_ne!(order, (0..103).collect::<Vec<_>>());
        orders.push(order);
    }
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);
    // Labels and indices follow the samples.
    for b in all_batches(&loader, 0) {
        assert_eq!(b.indices, ids(&b));
        assert_eq!(b.labels, b.indices.iter().map(|&i| (i % 10) as u32).collect::<Vec<_>>());
    }
}

#[test]
fn a_seed_repeats_batches_and_another_seed_does_not() {
    let make = |seed| {
        DataLoader::new(Noisy { n: 40, sleep: false })
            .batch_size(8)
            .shuffle(true)
            .seed(seed)
    };
    assert_eq!(all_batches(&make(3), 1), all_batches(&make(3), 1));
    assert_ne!(all_batches(&make(3), 1), all_batches(&make(4), 1));
    assert_ne!(all_batches(&make(3), 1), all_batches(&make(3), 2));
}

#[test]
fn workers_give_the_same_batches_as_the_callers_thread() {
    for (shuffle, drop_last, batch_size) in [(false, false, 1), (true, false, 7), (true, true, 5)] {
        let make = |w| {
            DataLoader::new(Noisy { n: 61, sleep: true })
                .batch_size(batch_size)
                .shuffle(shuffle)
                .drop_last(drop_last)
                .num_workers(w)
                .seed(11)
        };
        let reference = all_batches(&make(0), 2);
        for workers in [1, 2, 4] {
            assert_eq!(
                all_batches(&make(workers), 2),
                reference,
                "{workers} workers, batch {batch_size}"
            );
        }
    }
}

#[test]
fn recycled_buffers_give_the_same_batches() {
    for workers in [0, 2] {
        let loader = DataLoader::new(Noisy { n: 50, sleep: false })
            .batch_size(6)
            .shuffle(true)
            .num_workers(workers);
        let reference = all_batches(&loader, 0);
        let mut epoch = loader.epoch(0).unwrap();
        let mut got = Vec::new();
        while let Some(b) = epoch.next() {
            let b = b.unwrap();
            got.push(b.clone());
            epoch.recycle(b);
        }
        assert_eq!(got, reference, "{workers} workers");
    }
}

#[test]
fn sampler_and_batch_sampler_drive_the_loader() {
    let loader = DataLoader::new(Ids(20))
        .batch_size(4)
        .sampler(SubsetRandomSampler::new(vec![3, 5, 7, 9, 11]));
    assert_eq!(loader.len(), 2);
    let seen: Vec<usize> = all_batches(&loader, 0).iter().flat_map(ids).collect();
    let set: HashSet<usize> = seen.iter().copied().collect();
    assert_eq!((seen.len(), set), (5, HashSet::from([3, 5, 7, 9, 11])));

    let bs = BatchSampler::new(SequentialSampler::new(10), 3, true).unwrap();
    let loader = DataLoader::new(Ids(20)).batch_sampler(bs);
    assert_eq!(loader.len(), 3);
    let got: Vec<Vec<usize>> = all_batches(&loader, 0).iter().map(ids).collect();
    assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8]]);
}

#[test]
fn conflicting_settings_are_refused_as_pytorch() {
    let arg = |r: Result<_, DataError>| match r {
        Err(DataError::Argument { name, .. }) => name,
        other => panic!("expected an argument error, got {other:?}"),
    };
    let sampler = || SequentialSampler::new(4);
    let bs = || BatchSampler::new(SequentialSampler::new(4), 2, false).unwrap();
    assert_eq!(
        arg(DataLoader::new(Ids(4))
            .shuffle(true)
            .sampler(sampler())
            .epoch(0)
            .map(|_| ())),
        "sampler"
    );
    assert_eq!(
        arg(DataLoader::new(Ids(4))
            .batch_size(2)
            .batch_sampler(bs())
            .epoch(0)
            .map(|_| ())),
        "batch_sampler"
    );
    assert_eq!(
        arg(DataLoader::new(Ids(4))
            .drop_last(true)
            .batch_sampler(bs())
            .epoch(0)
            .map(|_| ())),
        "batch_sampler"
    );
    assert_eq!(
        arg(DataLoader::new(Ids(4))
            .shuffle(true)
            .batch_sampler(bs())
            .epoch(0)
            .map(|_| ())),
        "batch_sampler"
    );
    assert_eq!(
        arg(DataLoader::new(Ids(4)).batch_size(0).epoch(0).map(|_| ())),
        "batch_size"
    );
    assert_eq!(
        arg(DataLoader::new(Ids(4))
            .num_workers(1)
            .prefetch_factor(0)
            .epoch(0)
            .map(|_| ())),
        "prefetch_factor"
    );
}

#[test]
fn a_dataset_error_is_its_batchs_err_and_the_epoch_goes_on() {
    for workers in [0, 1, 3] {
        let loader = DataLoader::new(Failing { n: 10, bad: 5 })
            .batch_size(3)
            .num_workers(workers);
        let results: Vec<_> = loader.epoch(0).unwrap().collect();
        assert_eq!(results.len(), 4);
        match &results[1] {
            Err(e @ DataError::Decode { .. }) => assert!(e.to_string().contains("img5.png"), "{e}"),
            other => panic!("{workers} workers: expected the decode error, got {other:?}"),
        }
        assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
    }
}

/// Item 4 has another shape; item 2 of `Images` is an image.
struct Mixed;

impl Dataset for Mixed {
    fn len(&self) -> usize {
        6
    }
    fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
        let t = match i {
            4 => Tensor::new(vec![1, 2, 1], vec![0.0; 2])?,
            _ => Tensor::new(vec![1, 1, 1], vec![0.0])?,
        };
        Ok((Sample::Tensor(t), 0))
    }
}

struct Images;

impl Dataset for Images {
    fn len(&self) -> usize {
        3
    }
    fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
        if i == 2 {
            return Ok((Sample::Image(image::DynamicImage::new_rgb8(2, 2)), 0));
        }
        Ok((Sample::Tensor(Tensor::new(vec![3, 2, 2], vec![0.5; 12])?), 0))
    }
}

#[test]
fn unequal_shapes_and_images_name_the_sample() {
    let results: Vec<_> = DataLoader::new(Mixed).batch_size(3).epoch(0).unwrap().collect();
    assert!(results[0].is_ok());
    let msg = results[1].as_ref().unwrap_err().to_string();
    assert!(
        matches!(results[1], Err(DataError::Shape { .. })) && msg.contains("sample 4"),
        "{msg}"
    );

    let results: Vec<_> = DataLoader::new(Images)
        .batch_size(3)
        .num_workers(1)
        .epoch(0)
        .unwrap()
        .collect();
    let msg = results[0].as_ref().unwrap_err().to_string();
    assert!(msg.contains("sample 2") && msg.contains("ToTensor"), "{msg}");
}

#[test]
fn features_and_planes_become_nchw() {
    struct Rank(Vec<usize>);
    impl Dataset for Rank {
        fn len(&self) -> usize {
            2
        }
        fn get(&self, _: usize) -> Result<(Sample, Label), DataError> {
            let n = self.0.iter().product();
            Ok((Sample::Tensor(Tensor::new(self.0.clone(), vec![1.0; n])?), 0))
        }
    }
    let shape = |s: Vec<usize>| all_batches(&DataLoader::new(Rank(s)).batch_size(2), 0)[0].shape;
    assert_eq!(shape(vec![5]), [2, 5, 1, 1]);
    assert_eq!(shape(vec![4, 3]), [2, 1, 4, 3]);
    assert_eq!(shape(vec![2, 4, 3]), [2, 2, 4, 3]);
    let r = DataLoader::new(Rank(vec![1, 1, 1, 1]))
        .epoch(0)
        .unwrap()
        .next()
        .unwrap();
    assert!(matches!(r, Err(DataError::Shape { .. })));
}

/// Counts loads and sleeps, to see how far workers run ahead.
struct Slow {
    loads: Arc<AtomicUsize>,
}

impl Dataset for Slow {
    fn len(&self) -> usize {
        10_000
    }
    fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1));
        Ids(self.len()).get(i)
    }
}

#[test]
fn dropping_an_epoch_early_stops_the_workers() {
    let loads = Arc::new(AtomicUsize::new(0));
    let loader = DataLoader::new(Slow {
        loads: Arc::clone(&loads),
    })
    .batch_size(4)
    .num_workers(2);
    let start = Instant::now();
    {
        let mut epoch = loader.epoch(0).unwrap();
        assert_eq!(ids(&epoch.next().unwrap().unwrap()), vec![0, 1, 2, 3]);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Dropped: the workers are joined, and at most 2 per worker ran ahead (plus the one taken).
    let after_drop = loads.load(Ordering::SeqCst);
    assert!(after_drop <= 4 * (1 + 2 * 2), "{after_drop} samples loaded");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        loads.load(Ordering::SeqCst),
        after_drop,
        "workers still running after the drop"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_worker_panic_is_raised_in_the_consumer() {
    struct Panics;
    impl Dataset for Panics {
        fn len(&self) -> usize {
            8
        }
        fn get(&self, i: usize) -> Result<(Sample, Label), DataError> {
            assert!(i != 5, "bad sample 5");
            Ids(8).get(i)
        }
    }
    for workers in [0, 2] {
        let loader = DataLoader::new(Panics).batch_size(2).num_workers(workers);
        let mut epoch = loader.epoch(0).unwrap();
        assert!(epoch.next().unwrap().is_ok());
        assert!(epoch.next().unwrap().is_ok());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| epoch.next()));
        let payload = caught.expect_err("batch 2 holds sample 5");
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or(payload.downcast_ref::<String>().map(String::as_str));
        assert_eq!(msg, Some("bad sample 5"), "{workers} workers");
        // As without workers, the epoch goes on after a caught panic.
        assert_eq!(ids(&epoch.next().unwrap().unwrap()), vec![6, 7]);
        assert!(epoch.next().is_none());
    }
}

#[test]
fn empty_dataset_gives_no_batches() {
    for shuffle in [false, true] {
        let loader = DataLoader::new(Ids(0)).batch_size(4).shuffle(shuffle).num_workers(2);
        assert_eq!((loader.len(), loader.epoch(0).unwrap().count()), (0, 0));
    }
}

/// `count` draws with probability `p` each are within 5 standard deviations of `count * p`.
fn assert_binomial(hits: usize, draws: usize, p: f64, what: &str) {
    let mean = draws as f64 * p;
    let sd = (draws as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - mean).abs() <= 5.0 * sd + 1.0,
        "{what}: {hits} hits, expected {mean:.1} ± {:.1}",
        5.0 * sd
    );
}

#[test]
fn weighted_sampler_frequencies_follow_the_weights() {
    let weights = [1.0, 2.0, 0.0, 3.0, 4.0];
    let s = WeightedRandomSampler::new(&weights, 20_000, true).unwrap();
    let mut counts = [0usize; 5];
    for i in s.indices(9, 0) {
        counts[i] += 1;
    }
    for (i, &w) in weights.iter().enumerate() {
        assert_binomial(counts[i], 20_000, w / 10.0, &format!("index {i}"));
    }
    assert_eq!(counts[2], 0);
    assert_ne!(s.indices(9, 0), s.indices(9, 1));
}

#[test]
fn weighted_sampler_without_replacement_draws_in_weight_order() {
    // Without replacement, the first draw is index i with probability w_i / sum(w), and the
    // second, given the first was j, has probability w_i / (sum(w) - w_j).
    let weights = [1.0, 2.0, 3.0, 4.0];
    let s = WeightedRandomSampler::new(&weights, 2, false).unwrap();
    let epochs = 20_000;
    let (mut first, mut second_after_3) = ([0usize; 4], [0usize; 4]);
    for e in 0..epochs {
        let idx = s.indices(1, e);
        assert!(idx.len() == 2 && idx[0] != idx[1]);
        first[idx[0]] += 1;
        if idx[0] == 3 {
            second_after_3[idx[1]] += 1;
        }
    }
    for i in 0..4 {
        assert_binomial(first[i], epochs as usize, weights[i] / 10.0, &format!("first draw {i}"));
        if i != 3 {
            assert_binomial(
                second_after_3[i],
                first[3],
                weights[i] / 6.0,
                &format!("second draw {i}"),
            );
        }
    }
}

#[test]
fn random_sampler_with_replacement_is_uniform() {
    let s = RandomSampler::new(8).replacement(true).num_samples(16_000);
    assert_eq!(s.len(), 16_000);
    let mut counts = [0usize; 8];
    for i in s.indices(2, 0) {
        counts[i] += 1;
    }
    for (i, &c) in counts.iter().enumerate() {
        assert_binomial(c, 16_000, 1.0 / 8.0, &format!("index {i}"));
    }
}

#[test]
fn shuffled_positions_are_uniform() {
    // Over many epochs, index 0 lands at each position of a permutation of 6 equally often.
    let s = RandomSampler::new(6);
    let mut at = [0usize; 6];
    for e in 0..12_000 {
        at[s.indices(0, e).iter().position(|&i| i == 0).unwrap()] += 1;
    }
    for (p, &c) in at.iter().enumerate() {
        assert_binomial(c, 12_000, 1.0 / 6.0, &format!("position {p}"));
    }
}

#[test]
fn subset_sampler_yields_only_its_indices_once_per_epoch() {
    let subset = vec![40, 2, 17, 5, 33, 8, 21];
    let s = SubsetRandomSampler::new(subset.clone());
    let mut want = subset.clone();
    want.sort_unstable();
    let mut orders = HashSet::new();
    for e in 0..10 {
        let mut got = s.indices(0, e);
        orders.insert(got.clone());
        got.sort_unstable();
        assert_eq!(got, want);
    }
    assert!(orders.len() > 5, "the order changes between epochs");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_counts_and_contents(n in 0usize..60, batch_size in 1usize..13, drop_last: bool, shuffle: bool, workers in 0usize..3) {
        let loader = DataLoader::new(Ids(n)).batch_size(batch_size).drop_last(drop_last).shuffle(shuffle).num_workers(workers).seed(n as u64);
        let expected = if drop_last { n / batch_size } else { n.div_ceil(batch_size) };
        prop_assert_eq!(loader.len(), expected);
        let epoch = loader.epoch(0).unwrap();
        prop_assert_eq!(epoch.len(), expected);
        let batches: Vec<Batch> = epoch.map(Result::unwrap).collect();
        prop_assert_eq!(batches.len(), expected);
        let mut seen = Vec::new();
        for (k, b) in batches.iter().enumerate() {
            let full = k + 1 < expected || drop_last || n % batch_size == 0;
            prop_assert_eq!(b.len(), if full { batch_size } else { n % batch_size });
            prop_assert_eq!(b.shape, [b.len(), 1, 1, 1]);
            prop_assert_eq!(b.images.len(), b.len());
            seen.extend(ids(b));
        }
        // Every index at most once; all of them unless the short batch was dropped.
        let set: HashSet<usize> = seen.iter().copied().collect();
        prop_assert_eq!(set.len(), seen.len());
        prop_assert_eq!(seen.len(), seen_len(n, batch_size, drop_last));
        prop_assert!(seen.iter().all(|&i| i < n));
        if !shuffle {
            prop_assert_eq!(seen, (0..seen_len(n, batch_size, drop_last)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn batch_sampler_partitions_its_sampler(n in 0usize..50, batch_size in 1usize..9, drop_last: bool, seed: u64) {
        let bs = BatchSampler::new(RandomSampler::new(n), batch_size, drop_last).unwrap();
        let batches = bs.batches(seed, 0);
        prop_assert_eq!(batches.len(), bs.len());
        let flat: Vec<usize> = batches.concat();
        prop_assert_eq!(&flat[..], &RandomSampler::new(n).indices(seed, 0)[..flat.len()]);
        prop_assert_eq!(flat.len(), seen_len(n, batch_size, drop_last));
    }
}

/// How many samples an epoch of `n` items yields.
fn seen_len(n: usize, batch_size: usize, drop_last: bool) -> usize {
    if drop_last {
        n / batch_size * batch_size
    } else {
        n
    }
}
