//! Data-parallel training (`--threads`): with a fixed seed, the weights do not depend on the
//! thread count beyond floating-point summation order; BatchNorm running statistics are the
//! slice-weighted average; runs with dropout are deterministic and resume exactly.

use std::path::Path;

use torchlet::layer::*;
use torchlet::loss::{CrossEntropyLoss, Reduction};
use torchlet::{Mode, Network, Shape};
use torchlet_host::data::{Dataset, Subset};
use torchlet_host::digits::Digits;
use torchlet_host::model::{Checkpoint, Model};
use torchlet_host::train::parallel::{check_threads, DataParallel, ParallelInference};
use torchlet_host::train::{fit, OptimizerKind, SchedulerKind, TrainConfig};

fn config(out: &Path, threads: usize, batch_size: usize, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        lr: 0.05,
        optimizer: OptimizerKind::Sgd,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
        scheduler: SchedulerKind::None,
        seed: 7,
        workers: 0,
        threads,
        patience: None,
        out: out.to_path_buf(),
        save_every: 1,
        keep_last: None,
        logdir: out.join("tb"),
        log_every: 10,
        progress: false,
        interrupt: None,
    }
}

/// The first `n` training digits and 60 held-out ones.
fn digits(n: usize) -> (Box<dyn Dataset>, Box<dyn Dataset>) {
    let (train, test) = Digits::embedded().split(360, 0);
    let train: Box<dyn Dataset> = Box::new(train);
    let test: Box<dyn Dataset> = Box::new(test);
    (
        Box::new(Subset::new(train, (0..n).collect()).unwrap()),
        Box::new(Subset::new(test, (0..60).collect()).unwrap()),
    )
}

/// Trains `model` on `n` digits and returns it with the per-epoch train losses.
fn train(mut model: Model, n: usize, threads: usize, batch: usize, epochs: usize) -> (Model, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = digits(n);
    let outcome = fit(
        &mut model,
        tr,
        te,
        &config(dir.path(), threads, batch, epochs),
        None,
        &mut Vec::new(),
    )
    .unwrap();
    (model, outcome.epochs.iter().map(|e| e.train_loss).collect())
}

/// The largest `|a - b| / max(|a|, 1e-2)` over the two slices.
fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-2))
        .fold(0.0, f32::max)
}

#[test]
fn digits_cnn_weights_do_not_depend_on_the_thread_count() {
    // Batch 61 over 200 samples: 4 steps (61, 61, 61, 17), slices of 31/30 and 21/20/20 and a
    // partial last batch.
    for (batch, n, epochs) in [(32, 96, 2), (61, 200, 1)] {
        let base = Model::from_zoo("digits-cnn", 3).unwrap();
        let (one, loss1) = train(base.clone(), n, 1, batch, epochs);
        assert_ne!(one.params, base.params, "training changed nothing");
        for threads in [2, 3] {
            let (many, loss) = train(base.clone(), n, threads, batch, epochs);
            let d = max_rel_diff(&one.params, &many.params);
            eprintln!("batch {batch}, {threads} threads: largest relative parameter difference {d:e}");
            assert!(
                d < 1e-5,
                "batch {batch}, {threads} threads: params differ by {d} (relative)"
            );
            for (a, b) in loss1.iter().zip(&loss) {
                assert!((a - b).abs() < 1e-5 * a.abs().max(1.0), "losses {loss1:?} vs {loss:?}");
            }
        }
    }
}

#[test]
fn one_parallel_step_gives_the_full_batch_gradient() {
    // The gradient of the whole batch's mean loss, against a plain forward and backward.
    let model = Model::from_zoo("digits-cnn", 5).unwrap();
    let (tr, _) = digits(61);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..61 {
        let (s, l) = tr.get(i).unwrap();
        x.extend(s.into_tensor("digits").unwrap().data);
        y.push(l);
    }
    for loss in [
        CrossEntropyLoss::new(),
        CrossEntropyLoss::new().reduction(Reduction::Sum),
    ] {
        let plan = model.plan(61, Mode::Training).unwrap();
        let (mut p, mut s) = (model.params.clone(), model.state.clone());
        let (mut g1, mut a1) = (vec![0.0; plan.param_len()], vec![0.0; plan.arena_len()]);
        let mut net = Network::new(&plan, &mut p, &mut g1, &mut s, &mut a1).unwrap();
        net.forward(&x).unwrap();
        let l1 = net.backward(&loss, &y).unwrap();
        let g_serial = net.grads().to_vec();
        // The held-out figures of the first 17 samples, on one thread.
        let mut serial = DataParallel::new(&model, 61, 1, 0).unwrap();
        net.eval();
        let (sum1, correct1) = serial.evaluate(&mut net, &loss, &x[..17 * 64], &y[..17]).unwrap();
        let mut predicted1 = Vec::new();
        serial
            .evaluate_predicting(&mut net, &loss, &x[..17 * 64], &y[..17], &mut predicted1)
            .unwrap();
        // Several classes predicted: a slice gathered out of order would show.
        let mut classes = predicted1.clone();
        classes.sort_unstable();
        classes.dedup();
        assert!(classes.len() > 1, "{predicted1:?}");
        for threads in [2, 3, 4, 61, 64] {
            let mut dp = DataParallel::new(&model, 61, threads, 0).unwrap();
            let plan = model.plan(dp.main_batch(), Mode::Training).unwrap();
            let (mut p, mut s) = (model.params.clone(), model.state.clone());
            let (mut g, mut a) = (vec![0.0; plan.param_len()], vec![0.0; plan.arena_len()]);
            let mut net = Network::new(&plan, &mut p, &mut g, &mut s, &mut a).unwrap();
            net.zero_grad();
            let l = dp.backward(&mut net, &loss, &x, &y, 0).unwrap();
            let what = format!("{threads} threads, {:?}", loss.reduction);
            assert!((l - l1).abs() < 1e-5 * l1.abs(), "{what}: loss {l} vs {l1}");
            let scale = g_serial.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = g_serial
                .iter()
                .zip(net.grads())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-5 * scale,
                "{what}: gradients differ by {worst} (max {scale})"
            );
            // A smaller batch than planned (the last batch of an epoch) works too.
            net.eval();
            let (sum, correct) = dp.evaluate(&mut net, &loss, &x[..17 * 64], &y[..17]).unwrap();
            assert!(
                (sum - sum1).abs() < 1e-5 * sum1.abs(),
                "{what}: held-out loss {sum} vs {sum1}"
            );
            assert_eq!(correct, correct1, "{what}");
            let mut predicted = Vec::new();
            dp.evaluate_predicting(&mut net, &loss, &x[..17 * 64], &y[..17], &mut predicted)
                .unwrap();
            assert_eq!(predicted, predicted1, "{what}: predicted classes, in batch order");
            // More samples than planned is a clear error, not a panic.
            net.train().unwrap();
            let big = vec![0.0; 62 * 64];
            let e = dp.backward(&mut net, &loss, &big, &[0; 62], 1).unwrap_err();
            assert!(matches!(e, torchlet::Error::BatchSize { max: 61, found: 62 }), "{e:?}");
        }
    }
}

#[test]
fn thread_counts_outside_the_range_are_refused_with_the_flag_name() {
    assert!(check_threads(0).unwrap_err().contains("--threads"));
    assert!(check_threads(100_000).unwrap_err().contains("--threads"));
    assert_eq!(check_threads(2), Ok(2));
    let model = Model::from_zoo("digits-cnn", 0).unwrap();
    assert!(DataParallel::new(&model, 32, 0, 0).is_err());
}

/// A small CNN with BatchNorm for 8×8 digits.
const BN_CNN: [Layer; 7] = [
    conv2d(1, 8, 3).padding(1),
    batch_norm2d(8),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(8 * 4 * 4, 10),
    relu(),
];

/// The same with Dropout.
const DROPOUT_CNN: [Layer; 8] = [
    conv2d(1, 8, 3).padding(1),
    batch_norm2d(8),
    relu(),
    max_pool2d(2),
    flatten(),
    dropout(0.3),
    linear(8 * 4 * 4, 10),
    relu(),
];

fn small(layers: &'static [Layer]) -> Model {
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    Model::new("small", layers, Shape::chw(1, 8, 8), &names, 11).unwrap()
}

#[test]
fn batchnorm_running_stats_are_the_slice_weighted_average() {
    // One step on one batch of 60 (from the same initial weights): the running mean equals
    // the full batch's, the running variance is close to it, and num_batches_tracked is 1.
    let (one, _) = train(small(&BN_CNN), 60, 1, 60, 1);
    let (two, _) = train(small(&BN_CNN), 60, 2, 60, 1);
    let (three, _) = train(small(&BN_CNN), 60, 3, 60, 1);
    let c = 8;
    assert_eq!(one.state.len(), 2 * c + 1);
    for m in [&two, &three] {
        let mean = max_rel_diff(&one.state[..c], &m.state[..c]);
        assert!(
            mean < 1e-4,
            "running mean differs by {mean}: {:?} vs {:?}",
            one.state,
            m.state
        );
        let var = max_rel_diff(&one.state[c..2 * c], &m.state[c..2 * c]);
        assert!(
            var < 0.05,
            "running var differs by {var}: {:?} vs {:?}",
            one.state,
            m.state
        );
        assert_eq!(m.state[2 * c], 1.0, "num_batches_tracked");
    }
    // Per-slice normalisation changes the gradients a little, not the outcome.
    assert!(max_rel_diff(&one.params, &two.params) < 0.1);
    // A run with 2 threads is deterministic.
    let (again, _) = train(small(&BN_CNN), 60, 2, 60, 1);
    assert_eq!(again, two);
}

#[test]
fn dropout_runs_are_deterministic_and_resume_exactly_with_threads() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let (tr, te) = digits(150);
    let mut a = small(&DROPOUT_CNN);
    fit(&mut a, tr, te, &config(&whole, 2, 32, 2), None, &mut Vec::new()).unwrap();
    let (b, _) = train(small(&DROPOUT_CNN), 150, 2, 32, 2);
    assert_eq!(a, b, "two runs with the same seed and threads differ");
    // Resume after epoch 1 gives the same weights as the uninterrupted run.
    let part = dir.path().join("part");
    let (tr, te) = digits(150);
    let mut c = small(&DROPOUT_CNN);
    fit(&mut c, tr, te, &config(&part, 2, 32, 1), None, &mut Vec::new()).unwrap();
    let ckpt = Checkpoint::load(&part.join("epoch-1.tlm")).unwrap();
    let (tr, te) = digits(150);
    let mut d = small(&DROPOUT_CNN);
    fit(&mut d, tr, te, &config(&part, 2, 32, 2), Some(ckpt), &mut Vec::new()).unwrap();
    assert_eq!(d.params, a.params, "resumed run differs");
    assert_eq!(d.state, a.state);
    // Dropout masks depend on the thread count: 3 threads train to other weights.
    let (e, _) = train(small(&DROPOUT_CNN), 150, 3, 32, 2);
    assert_ne!(e.params, a.params);
}

#[test]
fn parallel_inference_matches_the_model_forward() {
    let model = Model::from_zoo("digits-cnn", 9).unwrap();
    let x: Vec<f32> = (0..13 * 64).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
    let want = model.forward(&x).unwrap();
    for threads in [1, 2, 3, 13, 20] {
        let mut inf = ParallelInference::new(&model, 13, threads).unwrap();
        for len in [13, 5, 1] {
            let mut out = vec![0.0; len * inf.outputs()];
            inf.forward(&model.params, &model.state, &x[..len * 64], &mut out)
                .unwrap();
            let worst = max_rel_diff(&want[..len * 10], &out);
            assert!(
                worst < 1e-5,
                "{threads} threads, batch {len}: outputs differ by {worst}"
            );
        }
        let mut out = vec![0.0; 14 * 10];
        let e = inf
            .forward(&model.params, &model.state, &[0.0; 14 * 64], &mut out)
            .unwrap_err();
        assert!(matches!(e, torchlet::Error::BatchSize { max: 13, found: 14 }), "{e:?}");
    }
}
