//! Training on the GPU with every optimiser and loss, against [`torchlet::Network`] on the CPU
//! from the same initial parameters and batches: the loss, every gradient, the optimiser state
//! and every parameter after each step agree within 1e-4 relative. Also the optimiser state's
//! round trip through a checkpoint (`optimizer_state` / `set_optimizer_state`), and the
//! refusals of a state of the wrong length and of a target of the wrong kind.

mod common;

use common::{assert_close, device, floats};
use torchlet::layer::*;
use torchlet::loss::{BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, Reduction};
use torchlet::optim::{Adam, Optimizer, Sgd};
use torchlet::{Mode, Network, Plan, Rng, Shape};
use torchlet_gpu::{Device, Error, GpuLoss, GpuNetwork, GpuOptimizer, Target};

/// The course's CIFAR-10 network, as `torchlet_host::zoo::TUTORIAL_CNN` (145,578 parameters).
static TUTORIAL_CNN: [Layer; 9] = [
    conv2d(3, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 64, 5).padding(2),
    max_pool2d(2),
    flatten(),
    linear(1024, 64),
    linear(64, 10),
];

/// A small network with 8 outputs per sample.
static SMALL_NET: [Layer; 5] = [flatten(), linear(36, 24), tanh(), linear(24, 8), flatten()];

/// The same network ending in a Sigmoid, for BCELoss.
static SMALL_SIGMOID_NET: [Layer; 5] = [flatten(), linear(36, 24), tanh(), linear(24, 8), sigmoid()];

/// A 1-d convolutional network whose output is `[N, 3, 4]`: three classes at four positions.
static SPATIAL_NET: [Layer; 3] = [conv1d(1, 4, 3), tanh(), conv1d(4, 3, 1)];

/// Either optimiser, owned (one for the CPU, one for the GPU).
#[derive(Clone, Copy, Debug)]
enum Opt {
    Sgd(Sgd),
    Adam(Adam),
}

impl Opt {
    fn state_len(&self, n: usize) -> usize {
        match self {
            Opt::Sgd(o) => o.state_len(n),
            Opt::Adam(o) => o.state_len(n),
        }
    }

    fn steps(&self) -> u64 {
        match self {
            Opt::Sgd(o) => o.steps(),
            Opt::Adam(o) => o.steps(),
        }
    }

    fn gpu(&mut self) -> GpuOptimizer<'_> {
        match self {
            Opt::Sgd(o) => o.into(),
            Opt::Adam(o) => o.into(),
        }
    }

    fn cpu_step<const CAP: usize>(&mut self, net: &mut Network<'_, CAP>, state: &mut [f32]) {
        match self {
            Opt::Sgd(o) => net.step(o, state).unwrap(),
            Opt::Adam(o) => net.step(o, state).unwrap(),
        }
    }

    /// The core's step on slices.
    fn slice_step(&mut self, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        match self {
            Opt::Sgd(o) => o.step(params, grads, state).unwrap(),
            Opt::Adam(o) => o.step(params, grads, state).unwrap(),
        }
    }
}

/// A batch's target, owned.
enum Owned {
    Classes(Vec<u32>),
    Values(Vec<f32>),
}

impl Owned {
    fn target(&self) -> Target<'_> {
        match self {
            Owned::Classes(l) => Target::Classes(l),
            Owned::Values(v) => Target::Values(v),
        }
    }
}

/// Trains the same network on the CPU and the GPU, one step per entry of `batches` (its batch
/// size), comparing everything after each step. `target(n, rng)` draws a batch's target and
/// `backward` runs the CPU's loss on it.
///
/// With `lockstep`, the GPU's update is compared with the core's optimiser applied to the
/// GPU's own parameters, gradients and state, and the CPU then continues from the GPU's
/// parameters and state: each step's loss and gradients are compared from the same
/// parameters. (Adam divides by `sqrt(v) + eps`, so a gradient near `eps` magnifies its
/// rounding: at PyTorch's default `eps = 1e-8` two runs that sum in different orders drift
/// apart in a few of the tutorial network's 145,578 parameters.)
#[allow(clippy::too_many_arguments)]
fn train_both<const CAP: usize>(
    dev: &Device,
    plan: &Plan<CAP>,
    batches: &[usize],
    seed: u64,
    lockstep: bool,
    opt: Opt,
    gpu_loss: &GpuLoss<'_>,
    target: impl Fn(usize, &mut Rng) -> Owned,
    backward: impl Fn(&mut Network<'_, CAP>, &Owned) -> f32,
) {
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(seed).unwrap();
    let mut gpu = GpuNetwork::new(dev, plan, cpu.params()).unwrap();
    let (mut opt_cpu, mut opt_gpu) = (opt, opt);
    let mut opt_state = vec![0.0; opt_cpu.state_len(p)];
    let in_len = plan.input_shape().numel();
    let mut rng = Rng::new(seed ^ 0x5eed);
    for (step, &n) in batches.iter().enumerate() {
        let images = floats(seed + step as u64 + 1, n * in_len);
        let t = target(n, &mut rng);

        let what = |w: &str| format!("{} step {} (batch {n}): {w}", gpu_loss.name(), step + 1);
        let (mut p_before, mut s_before) = (gpu.params().unwrap(), opt_state.clone());
        let mut opt_before = opt_gpu;

        cpu.zero_grad();
        cpu.forward(&images).unwrap();
        let loss_cpu = backward(&mut cpu, &t);
        opt_cpu.cpu_step(&mut cpu, &mut opt_state);
        let stats = gpu.step(&images, t.target(), gpu_loss, opt_gpu.gpu()).unwrap();

        assert_eq!(stats.n, n);
        assert_close(&what("loss"), &[stats.loss], &[loss_cpu]);
        assert_close(&what("gradients"), &gpu.grads().unwrap(), cpu.grads());
        if lockstep {
            opt_before.slice_step(&mut p_before, &gpu.grads().unwrap(), &mut s_before);
            let state = gpu.optimizer_state().unwrap();
            assert_close(&what("update of the GPU's state"), &state, &s_before);
            let params = gpu.params().unwrap();
            assert_close(&what("update of the GPU's parameters"), &params, &p_before);
            cpu.params_mut().unwrap().copy_from_slice(&params);
            opt_state.copy_from_slice(&state);
        }
        assert_close(&what("optimiser state"), &gpu.optimizer_state().unwrap(), &opt_state);
        assert_close(&what("parameters"), &gpu.params().unwrap(), cpu.params());
        assert_eq!(opt_gpu.steps(), opt_cpu.steps());
    }
}

fn labels(n: usize, classes: u32, rng: &mut Rng) -> Owned {
    Owned::Classes((0..n).map(|_| rng.below(classes)).collect())
}

#[test]
fn tutorial_cnn_three_adam_steps_match_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<9> = Plan::try_new(&TUTORIAL_CNN, Shape::chw(3, 32, 32), 4, Mode::Training).unwrap();
    let loss = CrossEntropyLoss::new();
    train_both(
        &dev,
        &plan,
        &[4, 4, 4],
        1,
        false,
        Opt::Adam(Adam::new(1e-3).weight_decay(5e-4).eps(1e-5)),
        &loss.into(),
        |n, rng| labels(n, 10, rng),
        |net, t| match t {
            Owned::Classes(l) => net.backward(&loss, l).unwrap(),
            Owned::Values(_) => unreachable!(),
        },
    );
}

#[test]
fn tutorial_cnn_adam_with_default_eps_steps_as_the_core_on_the_gpu_gradients() {
    let Some(dev) = device() else { return };
    let plan: Plan<9> = Plan::try_new(&TUTORIAL_CNN, Shape::chw(3, 32, 32), 4, Mode::Training).unwrap();
    let loss = CrossEntropyLoss::new();
    train_both(
        &dev,
        &plan,
        &[4, 4, 4],
        7,
        true,
        Opt::Adam(Adam::new(1e-3).weight_decay(5e-4)),
        &loss.into(),
        |n, rng| labels(n, 10, rng),
        |net, t| match t {
            Owned::Classes(l) => net.backward(&loss, l).unwrap(),
            Owned::Values(_) => unreachable!(),
        },
    );
}

#[test]
fn adamw_with_amsgrad_and_a_weighted_spatial_cross_entropy_match_cpu() {
    let Some(dev) = device() else { return };
    // Output [N, 3, 4]: three classes at four positions; class weights, one class ignored,
    // label smoothing, a short batch in the middle.
    let plan: Plan<3> = Plan::try_new(&SPATIAL_NET, Shape::cl(1, 6), 5, Mode::Training).unwrap();
    assert_eq!(plan.output_shape(), Shape::cl(3, 4));
    let weights = [0.7f32, 1.6, 1.2];
    let loss = CrossEntropyLoss::new()
        .weight(&weights)
        .ignore_index(2)
        .label_smoothing(0.1);
    train_both(
        &dev,
        &plan,
        &[5, 2, 5],
        2,
        false,
        Opt::Adam(Adam::adamw(0.01).amsgrad(true)),
        &loss.into(),
        |n, rng| labels(n * 4, 3, rng),
        |net, t| match t {
            Owned::Classes(l) => net.backward(&loss, l).unwrap(),
            Owned::Values(_) => unreachable!(),
        },
    );
}

#[test]
fn regression_losses_train_like_the_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<5> = Plan::try_new(&SMALL_NET, Shape::chw(1, 6, 6), 4, Mode::Training).unwrap();
    let values = |n: usize, rng: &mut Rng| Owned::Values((0..n * 8).map(|_| rng.uniform(-1.0, 1.0)).collect());
    let mse = MSELoss::new();
    train_both(
        &dev,
        &plan,
        &[4, 3, 4],
        3,
        false,
        Opt::Adam(Adam::new(0.01)),
        &mse.into(),
        values,
        |net, t| match t {
            Owned::Values(v) => net.backward(&mse, v).unwrap(),
            Owned::Classes(_) => unreachable!(),
        },
    );
    let l1 = L1Loss::new().reduction(Reduction::Sum);
    train_both(
        &dev,
        &plan,
        &[4, 4],
        4,
        false,
        Opt::Sgd(Sgd::new(0.01).momentum(0.9)),
        &l1.into(),
        values,
        |net, t| match t {
            Owned::Values(v) => net.backward(&l1, v).unwrap(),
            Owned::Classes(_) => unreachable!(),
        },
    );
    let probabilities = |n: usize, rng: &mut Rng| Owned::Values((0..n * 8).map(|_| rng.uniform(0.0, 1.0)).collect());
    let pos_weight = [0.5f32, 1.0, 2.0, 3.0, 1.5, 0.25, 1.0, 4.0];
    let bcel = BCEWithLogitsLoss::new().pos_weight(&pos_weight);
    train_both(
        &dev,
        &plan,
        &[4, 4],
        5,
        false,
        Opt::Adam(Adam::new(0.01).weight_decay(0.1)),
        &bcel.into(),
        probabilities,
        |net, t| match t {
            Owned::Values(v) => net.backward(&bcel, v).unwrap(),
            Owned::Classes(_) => unreachable!(),
        },
    );
    let sig: Plan<5> = Plan::try_new(&SMALL_SIGMOID_NET, Shape::chw(1, 6, 6), 4, Mode::Training).unwrap();
    let bce = BCELoss::new();
    train_both(
        &dev,
        &sig,
        &[4, 4],
        6,
        false,
        Opt::Sgd(Sgd::new(0.1)),
        &bce.into(),
        probabilities,
        |net, t| match t {
            Owned::Values(v) => net.backward(&bce, v).unwrap(),
            Owned::Classes(_) => unreachable!(),
        },
    );
}

#[test]
fn adam_state_resumes_through_a_checkpoint() {
    let Some(dev) = device() else { return };
    let plan: Plan<5> = Plan::try_new(&SMALL_NET, Shape::chw(1, 6, 6), 4, Mode::Training).unwrap();
    let params = floats(11, plan.param_len());
    let loss: GpuLoss = CrossEntropyLoss::new().into();
    let batch = |k: u64| (floats(20 + k, 4 * 36), vec![(k % 8) as u32, 1, 2, 3]);
    let make = || Adam::new(0.01).amsgrad(true);

    // Three steps in one run.
    let mut whole = GpuNetwork::new(&dev, &plan, &params).unwrap();
    let mut adam = make();
    for k in 0..3 {
        let (x, y) = batch(k);
        whole.step(&x, Target::Classes(&y), &loss, (&mut adam).into()).unwrap();
    }

    // Two steps, a checkpoint (parameters, state, step count), then a fresh network resumes.
    let mut first = GpuNetwork::new(&dev, &plan, &params).unwrap();
    let mut adam1 = make();
    for k in 0..2 {
        let (x, y) = batch(k);
        first.step(&x, Target::Classes(&y), &loss, (&mut adam1).into()).unwrap();
    }
    let (saved_params, saved_state) = (first.params().unwrap(), first.optimizer_state().unwrap());
    assert_eq!(
        saved_state.len(),
        3 * plan.param_len(),
        "[exp_avg | exp_avg_sq | max_exp_avg_sq]"
    );
    let mut resumed = GpuNetwork::new(&dev, &plan, &saved_params).unwrap();
    resumed.set_optimizer_state(&saved_state).unwrap();
    let mut adam2 = make();
    adam2.set_steps(adam1.steps());
    let (x, y) = batch(2);
    resumed
        .step(&x, Target::Classes(&y), &loss, (&mut adam2).into())
        .unwrap();
    assert_close(
        "resumed parameters",
        &resumed.params().unwrap(),
        &whole.params().unwrap(),
    );
    assert_close(
        "resumed state",
        &resumed.optimizer_state().unwrap(),
        &whole.optimizer_state().unwrap(),
    );

    // An optimiser whose state has another length than the one set is refused, unchanged.
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let before = resumed.params().unwrap();
    let e = resumed
        .step(&x, Target::Classes(&y), &loss, (&mut sgd).into())
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::BufferLength {
                buffer: torchlet::Buffer::OptimizerState,
                ..
            })
        ),
        "{e}"
    );
    assert_eq!(sgd.steps(), 0);
    assert_eq!(resumed.params().unwrap(), before);
    // A state no optimiser has.
    let e = resumed.set_optimizer_state(&[0.0; 5]).unwrap_err();
    assert!(matches!(e, Error::Core(torchlet::Error::BufferLength { .. })), "{e}");
}

#[test]
fn targets_of_the_wrong_kind_or_length_are_refused() {
    let Some(dev) = device() else { return };
    let plan: Plan<5> = Plan::try_new(&SMALL_NET, Shape::chw(1, 6, 6), 2, Mode::Training).unwrap();
    let params = floats(12, plan.param_len());
    let mut net = GpuNetwork::new(&dev, &plan, &params).unwrap();
    let x = floats(13, 2 * 36);
    let mut adam = Adam::new(0.01);
    let e = net
        .step(&x, Target::Classes(&[0, 1]), &MSELoss::new().into(), (&mut adam).into())
        .unwrap_err();
    assert!(e.to_string().contains("Target::Values"), "{e}");
    let e = net
        .step(
            &x,
            Target::Values(&[0.0; 15]),
            &MSELoss::new().into(),
            (&mut adam).into(),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::BufferLength {
                buffer: torchlet::Buffer::Target,
                expected: 16,
                found: 15
            })
        ),
        "{e}"
    );
    assert_eq!(adam.steps(), 0);
    assert_eq!(net.params().unwrap(), params);
    // BCELoss on outputs that are not probabilities: a non-finite loss, no update.
    let e = net
        .step(
            &x,
            Target::Values(&[0.5; 16]),
            &BCELoss::new().into(),
            (&mut adam).into(),
        )
        .unwrap_err();
    assert_eq!(e, Error::Core(torchlet::Error::NonFinite { what: "loss" }));
    assert_eq!(adam.steps(), 0);
    assert_eq!(net.params().unwrap(), params);
}
