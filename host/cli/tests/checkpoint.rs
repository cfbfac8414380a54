//! Checkpoints resume training exactly: N steps straight equal k steps, save, load, N - k more,
//! bit for bit, with SGD (momentum) and Adam, Dropout's RNG and BatchNorm's running statistics.

use std::ops::Range;

use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::model_file::OptimizerRecord;
use torchlet::optim::{Adam, Optimizer, Sgd};
use torchlet::{Mode, Network, Rng, Shape};
use torchlet_host::model::{Checkpoint, Model, ModelError};

static LAYERS: [Layer; 7] = [
    conv2d(1, 4, 3).padding(1),
    batch_norm2d(4),
    relu(),
    dropout(0.3),
    max_pool2d(2),
    flatten(),
    linear(4 * 4 * 4, 3),
];
const BATCH: usize = 4;
const STEPS: u64 = 6;
const SPLIT: u64 = 3;

fn model() -> Model {
    Model::new("ckpt-net", &LAYERS, Shape::chw(1, 8, 8), &["a", "b", "c"], 11).unwrap()
}

/// Trains `model` for `steps` (the data of step `s` depends on `s` only), starting with the
/// network's RNG at `rng`; returns the RNG after the last step.
fn train<O: Optimizer>(model: &mut Model, opt: &mut O, opt_state: &mut [f32], rng: Rng, steps: Range<u64>) -> Rng {
    let (plan, params, state) = model.plan_weights_mut(BATCH, Mode::Training).unwrap();
    let mut grads = vec![0.0; plan.param_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::new(&plan, params, &mut grads, state, &mut arena).unwrap();
    net.set_rng(rng);
    for s in steps {
        let mut data = Rng::new(1000 + s);
        let x: Vec<f32> = (0..BATCH * 64).map(|_| data.uniform(-1.0, 1.0)).collect();
        let y: Vec<u32> = (0..BATCH).map(|_| data.below(3)).collect();
        net.zero_grad();
        net.forward(&x).unwrap();
        net.backward(&CrossEntropyLoss::new(), &y).unwrap();
        net.step(opt, opt_state).unwrap();
    }
    net.rng()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs the straight and the interrupted run and compares them bit for bit.
fn resume_exactly<O>(opt: O, restore: fn(&OptimizerRecord) -> Option<O>)
where
    O: Optimizer + Clone + std::fmt::Debug,
    for<'o> &'o O: Into<OptimizerRecord>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.tlm");
    let n = model().param_count();

    // Straight through.
    let mut straight = model();
    let mut opt_a = opt.clone();
    let mut state_a = vec![0.0; opt.state_len(n)];
    train(&mut straight, &mut opt_a, &mut state_a, Rng::new(7), 0..STEPS);

    // k steps, checkpoint, and forget everything but the file.
    {
        let mut m = model();
        let mut o = opt.clone();
        let mut s = vec![0.0; opt.state_len(n)];
        let rng = train(&mut m, &mut o, &mut s, Rng::new(7), 0..SPLIT);
        let mut ckpt = Checkpoint::new(m, &o, &s, 1, SPLIT, rng);
        ckpt.train.best_metric = 0.75;
        ckpt.save(&path).unwrap();
    }
    let ckpt = Checkpoint::load(&path).unwrap();
    assert_eq!(
        (ckpt.train.epoch, ckpt.train.step, ckpt.train.best_metric),
        (1, SPLIT, 0.75)
    );
    assert_eq!(ckpt.train.optimizer_steps, SPLIT);
    let mut o = restore(&ckpt.train.optimizer).expect("the optimizer's kind");
    o.set_steps(ckpt.train.optimizer_steps);
    let mut m = ckpt.model.clone();
    let mut s = ckpt.optimizer_state.clone();
    train(&mut m, &mut o, &mut s, ckpt.rng(), SPLIT..STEPS);

    assert_eq!(bits(&m.params), bits(&straight.params), "parameters");
    assert_eq!(bits(&m.state), bits(&straight.state), "BatchNorm running statistics");
    assert_eq!(bits(&s), bits(&state_a), "optimizer state");
    assert_eq!(o.steps(), opt_a.steps());

    // The test can tell: resuming without the RNG, or without the step count, drifts.
    let mut m2 = ckpt.model.clone();
    let mut o2 = restore(&ckpt.train.optimizer).unwrap();
    o2.set_steps(ckpt.train.optimizer_steps);
    let mut s2 = ckpt.optimizer_state.clone();
    train(&mut m2, &mut o2, &mut s2, Rng::new(7), SPLIT..STEPS);
    assert_ne!(
        bits(&m2.params),
        bits(&straight.params),
        "dropout masks must depend on the RNG"
    );
    let mut m3 = ckpt.model.clone();
    let mut o3 = restore(&ckpt.train.optimizer).unwrap();
    let mut s3 = ckpt.optimizer_state.clone();
    train(&mut m3, &mut o3, &mut s3, ckpt.rng(), SPLIT..STEPS);
    assert_ne!(bits(&m3.params), bits(&straight.params), "the step count must matter");
}

#[test]
fn sgd_with_momentum_resumes_exactly() {
    resume_exactly(Sgd::new(0.05).momentum(0.9).weight_decay(1e-3), OptimizerRecord::sgd);
}

#[test]
fn adam_resumes_exactly() {
    resume_exactly(Adam::new(1e-2), OptimizerRecord::adam);
}

#[test]
fn adamw_with_amsgrad_resumes_exactly() {
    resume_exactly(Adam::adamw(1e-2).amsgrad(true), OptimizerRecord::adam);
}

#[test]
fn a_model_file_is_not_a_checkpoint_but_a_checkpoint_is_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.tlm");
    model().save(&path).unwrap();
    let e = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(e, ModelError::Kind { .. }), "{e:?}");
    assert!(
        e.to_string().contains("plain.tlm") && e.to_string().contains("training state"),
        "{e}"
    );

    let ckpt_path = dir.path().join("ckpt.tlm");
    let sgd = Sgd::new(0.1).momentum(0.5);
    let ckpt = Checkpoint::new(model(), &sgd, &vec![0.25; model().param_count()], 2, 40, Rng::new(3));
    ckpt.save(&ckpt_path).unwrap();
    assert_eq!(Model::load(&ckpt_path).unwrap(), model());
    let back = Checkpoint::load(&ckpt_path).unwrap();
    assert!(back.train.best_metric.is_nan());
    assert_eq!(back.rng(), Rng::new(3));
    assert_eq!((back.model, back.optimizer_state), (ckpt.model, ckpt.optimizer_state));
}

#[test]
fn optimizer_state_of_the_wrong_length_is_refused() {
    let sgd = Sgd::new(0.1).momentum(0.5);
    let ckpt = Checkpoint::new(model(), &sgd, &[0.0; 3], 0, 0, Rng::new(0));
    let e = ckpt.to_bytes().unwrap_err();
    assert!(e.to_string().contains("ckpt-net"), "{e}");
}
