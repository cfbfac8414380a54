//! Errors: wrong buffer lengths, bad inputs, backward without a training plan or a forward
//! pass, loss errors, failed forward passes.

use super::*;
#[allow(unused_imports)]
use crate::{graphs::*, init::*, modes::*, weights::*};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

pub(crate) const SMALL: [Layer; 4] = [conv2d(1, 2, 3), batch_norm2d(2), flatten(), linear(8, 3)];
pub(crate) const SMALL_TRAIN: Plan<4> = Plan::training(&SMALL, Shape::chw(1, 4, 4), 2);
pub(crate) const SMALL_INFER: Plan<4> = Plan::inference(&SMALL, Shape::chw(1, 4, 4), 2);

#[test]
pub(crate) fn new_rejects_each_wrong_buffer_length() {
    let p = &SMALL_TRAIN;
    let (pl, sl, al) = (p.param_len(), p.state_len(), p.arena_len());
    assert_eq!(sl, 5);
    let v = |n: usize| vec![0.0f32; n];
    let err = |params: usize, grads: usize, state: usize, arena: usize| {
        Network::new(p, &mut v(params), &mut v(grads), &mut v(state), &mut v(arena)).err()
    };
    assert_eq!(err(pl, pl, sl, al), None);
    assert_eq!(err(pl, pl, sl, al + 100), None, "a larger arena is fine");
    assert_eq!(
        err(pl - 1, pl, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Params,
            expected: pl,
            found: pl - 1
        })
    );
    assert_eq!(
        err(pl + 1, pl, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Params,
            expected: pl,
            found: pl + 1
        })
    );
    assert_eq!(
        err(pl, pl + 1, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Grads,
            expected: pl,
            found: pl + 1
        })
    );
    assert_eq!(
        err(pl, 0, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Grads,
            expected: pl,
            found: 0
        })
    );
    assert_eq!(
        err(pl, pl, sl - 1, al),
        Some(Error::BufferLength {
            buffer: Buffer::State,
            expected: sl,
            found: sl - 1
        })
    );
    assert_eq!(
        err(pl, pl, 0, al),
        Some(Error::BufferLength {
            buffer: Buffer::State,
            expected: sl,
            found: 0
        })
    );
    assert_eq!(
        err(pl, pl, sl, al - 1),
        Some(Error::BufferLength {
            buffer: Buffer::Arena,
            expected: al,
            found: al - 1
        })
    );
    assert_eq!(
        err(pl, pl, sl, 0),
        Some(Error::BufferLength {
            buffer: Buffer::Arena,
            expected: al,
            found: 0
        })
    );
    // An inference plan takes no gradient buffer.
    let q = &SMALL_INFER;
    let e = Network::new(q, &mut v(pl), &mut v(pl), &mut v(sl), &mut v(q.arena_len())).err();
    assert_eq!(
        e,
        Some(Error::BufferLength {
            buffer: Buffer::Grads,
            expected: 0,
            found: pl
        })
    );
    assert!(Network::new(q, &mut v(pl), &mut [], &mut v(sl), &mut v(q.arena_len())).is_ok());
}

#[test]
pub(crate) fn forward_rejects_bad_inputs() {
    let mut b = Bufs::new(&SMALL_TRAIN);
    let mut net = b.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    let sample = 16;
    let x = rand_vec(3 * sample, 60);
    // Not a whole number of samples: the length of the next whole batch is expected.
    assert_eq!(
        net.forward(&x[..2 * sample - 1]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Input,
            expected: 2 * sample,
            found: 2 * sample - 1
        })
    );
    assert_eq!(
        net.forward(&x[..5]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Input,
            expected: sample,
            found: 5
        })
    );
    assert_eq!(
        net.forward(&x[..3 * sample]).err(),
        Some(Error::BatchSize { max: 2, found: 3 })
    );
    assert_eq!(net.forward(&[]).err(), Some(Error::BatchSize { max: 2, found: 0 }));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut xb = x[..sample].to_vec();
        xb[7] = bad;
        assert_eq!(net.forward(&xb).err(), Some(Error::NonFinite { what: "input" }));
    }
    // None of these ran the model.
    assert_eq!(net.output().err(), Some(Error::NotReady { what: "a forward pass" }));
    // BatchNorm in training mode needs more than one value per channel, as PyTorch.
    let mut one = Bufs::new(&SMALL_TRAIN);
    let mut tiny = one.net(&SMALL_TRAIN);
    tiny.init_params(0).unwrap();
    // conv output is [2, 2, 2]: a single sample has 4 values per channel, which is enough.
    assert!(tiny.forward(&x[..sample]).is_ok());
    const BN1: [Layer; 2] = [linear(3, 2), batch_norm1d(2)];
    const BN1_PLAN: Plan<2> = Plan::training(&BN1, Shape::features(3), 2);
    let mut b1 = Bufs::new(&BN1_PLAN);
    let mut net1 = b1.net(&BN1_PLAN);
    net1.init_params(0).unwrap();
    assert_eq!(
        net1.forward(&[0.1, 0.2, 0.3]).err(),
        Some(Error::Shape {
            layer: 1,
            op: "BatchNorm1d",
            what: "batch statistics need more than 1 value per channel (batch x spatial size)",
            expected: 2,
            found: 1
        })
    );
    net1.eval();
    assert!(
        net1.forward(&[0.1, 0.2, 0.3]).is_ok(),
        "eval mode uses the running statistics"
    );
}

pub(crate) const TRAINING_PLAN_NEEDED: Error = Error::NotReady {
    what: "a training plan (this network was planned for inference)",
};
pub(crate) const FORWARD_NEEDED: Error = Error::NotReady { what: "a forward pass" };

#[test]
pub(crate) fn backward_needs_a_training_plan_and_a_forward_pass() {
    let x = rand_vec(2 * 16, 61);
    let w = rand_vec(2 * 3, 62);
    let labels = [0u32, 2];

    let mut ib = Bufs::new(&SMALL_INFER);
    let mut infer = ib.net(&SMALL_INFER);
    infer.init_params(0).unwrap();
    assert!(!infer.is_training());
    assert_eq!(infer.train().err(), Some(TRAINING_PLAN_NEEDED));
    assert!(!infer.is_training(), "a failed train() leaves eval mode");
    assert_eq!(
        infer.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(TRAINING_PLAN_NEEDED)
    );
    infer.forward(&x).unwrap();
    assert_eq!(
        infer.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(TRAINING_PLAN_NEEDED)
    );
    assert_eq!(infer.backward_from(&w).err(), Some(TRAINING_PLAN_NEEDED));
    assert!(infer.loss(&CrossEntropyLoss::new(), &labels).unwrap().is_finite());

    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut net = tb.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(FORWARD_NEEDED)
    );
    assert_eq!(net.backward_from(&w).err(), Some(FORWARD_NEEDED));
    assert_eq!(net.loss(&CrossEntropyLoss::new(), &labels).err(), Some(FORWARD_NEEDED));
    net.forward(&x).unwrap();
    let before = net.loss(&CrossEntropyLoss::new(), &labels).unwrap();
    let loss = net.backward(&CrossEntropyLoss::new(), &labels).unwrap();
    assert_eq!(loss, before, "backward returns the loss `loss()` computes");
    // The activations were consumed: a second backward needs a new forward, as in PyTorch.
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(FORWARD_NEEDED)
    );
    assert_eq!(net.backward_from(&w).err(), Some(FORWARD_NEEDED));
    // init_params invalidates the last pass too.
    net.forward(&x).unwrap();
    net.init_params(1).unwrap();
    assert_eq!(net.backward_from(&w).err(), Some(FORWARD_NEEDED));
}

#[test]
pub(crate) fn backward_from_checks_its_gradient() {
    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut net = tb.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    net.forward(&rand_vec(16, 63)).unwrap();
    // One sample: the gradient must have one sample's output length.
    assert_eq!(
        net.backward_from(&[0.0; 6]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Gradient,
            expected: 3,
            found: 6
        })
    );
    assert_eq!(
        net.backward_from(&[0.0, f32::NAN, 1.0]).err(),
        Some(Error::NonFinite { what: "grad_output" })
    );
    assert!(net.grads().iter().all(|&g| g == 0.0));
    net.backward_from(&[1.0, -1.0, 0.5]).unwrap();
    assert!(net.grads().iter().any(|&g| g != 0.0));
}

#[test]
pub(crate) fn loss_errors_leave_the_gradients_untouched() {
    let x = rand_vec(2 * 16, 64);
    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut net = tb.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    net.zero_grad();
    net.forward(&x).unwrap();
    // 3 classes: label 3 at position 1 is out of range.
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &[2, 3]).err(),
        Some(Error::LabelOutOfRange {
            index: 1,
            label: 3,
            classes: 3
        })
    );
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &[2, 1, 0]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Target,
            expected: 2,
            found: 3
        })
    );
    // A NaN target makes the loss NaN.
    let mut t = vec![0.5f32; 6];
    t[4] = f32::NAN;
    assert_eq!(
        net.backward(&MSELoss::new(), &t).err(),
        Some(Error::NonFinite { what: "loss" })
    );
    assert!(net.grads().iter().all(|&g| g == 0.0), "no gradient after a failed loss");
    // A loss that overflows to infinity from finite outputs.
    let last = SMALL_TRAIN.nodes()[3];
    let p = &mut net.params_mut().unwrap()[last.param_offset..last.param_offset + last.param_len()];
    p[..last.weight_len].fill(0.0);
    p[last.weight_len..].fill(3e38);
    let y = net.forward(&x).unwrap();
    assert!(y.iter().all(|v| *v == 3e38), "{y:?}");
    assert_eq!(
        net.backward(&MSELoss::new(), &[0.0; 6]).err(),
        Some(Error::NonFinite { what: "loss" })
    );
    assert!(net.grads().iter().all(|&g| g == 0.0), "no gradient after a failed loss");
}

/// Regression: a forward pass that fails midway (here BatchNorm's "more than 1 value per channel"
/// check, network.rs `forward_node`) leaves `last_n` of the previous successful pass, so
/// `output()` returns a mix of old and new activations and `backward` runs on them.
#[test]
pub(crate) fn a_failed_forward_invalidates_the_previous_pass() {
    const BN1: [Layer; 2] = [linear(3, 2), batch_norm1d(2)];
    const PLAN: Plan<2> = Plan::training(&BN1, Shape::features(3), 2);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    net.init_params(0).unwrap();
    net.forward(&[0.1, 0.2, 0.3, -0.3, 0.5, 0.9]).unwrap();
    assert!(net.forward(&[0.1, 0.2, 0.3]).is_err());
    assert_eq!(net.output().err(), Some(FORWARD_NEEDED));
    assert_eq!(net.backward_from(&[1.0; 4]).err(), Some(FORWARD_NEEDED));
}
