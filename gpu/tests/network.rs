//! Training on the GPU against training on the CPU ([`torchlet::Network`]) from the same
//! initial parameters and batches: losses, correct counts, gradients, momentum and parameters
//! after each SGD step agree within 1e-4 relative.

mod common;

use common::{assert_close, device, floats};
use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::{Mode, Network, Plan, Rng, Shape};
use torchlet_gpu::{Device, Error, GpuNetwork};

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

/// PyTorch's "Training a classifier" tutorial network (LeNet-style, with ReLU).
static BLITZ_CNN: [Layer; 12] = [
    conv2d(3, 6, 5),
    relu(),
    max_pool2d(2),
    conv2d(6, 16, 5),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(400, 120),
    relu(),
    linear(120, 84),
    relu(),
    linear(84, 10),
];

fn sgd() -> Sgd {
    Sgd::new(0.01).momentum(0.9).weight_decay(5e-4)
}

/// Trains the same network on the CPU and the GPU, one step per entry of `batches` (its batch
/// size), comparing everything after each step.
fn train_both<const CAP: usize>(dev: &Device, plan: &Plan<CAP>, batches: &[usize], seed: u64) {
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(seed).unwrap();
    let mut gpu = GpuNetwork::new(dev, plan, cpu.params()).unwrap();
    assert_close("initial parameters", &gpu.params().unwrap(), cpu.params());

    let loss = CrossEntropyLoss::new();
    let (mut sgd_cpu, mut sgd_gpu) = (sgd(), sgd());
    let mut momentum = vec![0.0; sgd_cpu.state_len(p)];
    let in_len = plan.input_shape().numel();
    let mut rng = Rng::new(seed ^ 0x5eed);
    for (step, &n) in batches.iter().enumerate() {
        let images = floats(seed + step as u64 + 1, n * in_len);
        let labels: Vec<u32> = (0..n).map(|_| rng.below(10)).collect();

        cpu.zero_grad();
        let logits = cpu.forward(&images).unwrap().to_vec();
        let loss_cpu = cpu.backward(&loss, &labels).unwrap();
        cpu.step(&mut sgd_cpu, &mut momentum).unwrap();
        let stats = gpu.train_step(&images, &labels, &loss, &mut sgd_gpu).unwrap();

        let what = |w: &str| format!("step {} (batch {n}): {w}", step + 1);
        assert_eq!(stats.n, n);
        assert_close(&what("loss"), &[stats.loss], &[loss_cpu]);
        let correct = (0..n)
            .filter(|&r| {
                let row = &logits[r * 10..(r + 1) * 10];
                (0..10).fold(0, |a, k| if row[k] > row[a] { k } else { a }) == labels[r] as usize
            })
            .count() as u32;
        assert_eq!(stats.correct, correct, "{}", what("correct count"));
        assert_close(&what("gradients"), &gpu.grads().unwrap(), cpu.grads());
        assert_close(&what("momentum"), &gpu.momentum().unwrap(), &momentum);
        assert_close(&what("parameters"), &gpu.params().unwrap(), cpu.params());
        assert_eq!(sgd_gpu.steps(), sgd_cpu.steps());
    }
    // Inference on the trained parameters agrees too.
    let images = floats(seed ^ 99, 2 * in_len);
    let cpu_out = cpu.forward(&images).unwrap().to_vec();
    assert_close("forward after training", &gpu.forward(&images).unwrap(), &cpu_out);
}

#[test]
fn tutorial_cnn_three_sgd_steps_match_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<9> = Plan::try_new(&TUTORIAL_CNN, Shape::chw(3, 32, 32), 4, Mode::Training).unwrap();
    assert_eq!(plan.param_len(), 145_578);
    train_both(&dev, &plan, &[4, 4, 4], 1);
}

#[test]
fn blitz_cnn_with_relu_matches_cpu_including_partial_batches() {
    let Some(dev) = device() else { return };
    let plan: Plan<12> = Plan::try_new(&BLITZ_CNN, Shape::chw(3, 32, 32), 4, Mode::Training).unwrap();
    // A short last batch rewrites the uniforms; the full size afterwards rewrites them back.
    train_both(&dev, &plan, &[4, 3, 4], 2);
}

/// A small network through every other activation the GPU runs.
static ACTIVATIONS_NET: [Layer; 9] = [
    conv2d(1, 4, 3).padding(1),
    leaky_relu(0.1),
    max_pool2d(2),
    flatten(),
    linear(64, 32),
    tanh(),
    linear(32, 16),
    sigmoid(),
    linear(16, 10),
];

#[test]
fn leaky_relu_tanh_sigmoid_network_matches_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<9> = Plan::try_new(&ACTIVATIONS_NET, Shape::chw(1, 8, 8), 8, Mode::Training).unwrap();
    train_both(&dev, &plan, &[8, 8, 5], 3);
}

#[test]
fn bad_batches_are_refused_before_anything_runs() {
    let Some(dev) = device() else { return };
    let plan: Plan<12> = Plan::try_new(&BLITZ_CNN, Shape::chw(3, 32, 32), 2, Mode::Training).unwrap();
    let params = floats(3, plan.param_len());
    let mut net = GpuNetwork::new(&dev, &plan, &params).unwrap();
    let mut sgd = sgd();
    let loss = CrossEntropyLoss::new();
    let img = vec![0.1; 3 * 32 * 32];
    // Label out of range.
    let e = net.train_step(&img, &[10], &loss, &mut sgd).unwrap_err();
    assert_eq!(
        e,
        Error::Core(torchlet::Error::LabelOutOfRange {
            index: 0,
            label: 10,
            classes: 10
        })
    );
    // More samples than the plan's batch.
    let three = vec![0.1; 3 * 3 * 32 * 32];
    let e = net.train_step(&three, &[0, 1, 2], &loss, &mut sgd).unwrap_err();
    assert_eq!(e, Error::Core(torchlet::Error::BatchSize { max: 2, found: 3 }));
    // Not a whole number of samples.
    let e = net.forward(&img[..100]).unwrap_err();
    assert!(matches!(e, Error::Core(torchlet::Error::BufferLength { .. })), "{e}");
    // NaN input.
    let mut nan = img.clone();
    nan[5] = f32::NAN;
    let e = net.train_step(&nan, &[1], &loss, &mut sgd).unwrap_err();
    assert_eq!(e, Error::Core(torchlet::Error::NonFinite { what: "input" }));
    // Nothing was trained and no step was counted.
    assert_eq!(sgd.steps(), 0);
    assert_eq!(net.params().unwrap(), params);
}

#[test]
fn inference_plans_and_wrong_parameter_lengths_are_refused() {
    let Some(dev) = device() else { return };
    let plan: Plan<12> = Plan::try_new(&BLITZ_CNN, Shape::chw(3, 32, 32), 2, Mode::Inference).unwrap();
    let e = GpuNetwork::new(&dev, &plan, &vec![0.0; plan.param_len()])
        .err()
        .unwrap();
    assert!(matches!(e, Error::Core(torchlet::Error::NotReady { .. })), "{e}");
    let plan: Plan<12> = Plan::try_new(&BLITZ_CNN, Shape::chw(3, 32, 32), 2, Mode::Training).unwrap();
    let e = GpuNetwork::new(&dev, &plan, &[0.0; 3]).err().unwrap();
    assert!(e.to_string().contains("3"), "{e}");
}

/// A batch whose activations exceed what the adapter can bind is refused when the network is
/// built, naming the buffer and both sizes, before any step runs (the GPU's out-of-memory
/// that can be known in advance; the rest arrives as `Error::Wgpu` of kind out-of-memory).
#[test]
fn a_batch_beyond_the_adapters_buffer_limit_is_too_large() {
    let Some(dev) = device() else { return };
    static LAYERS: [Layer; 4] = [conv2d(3, 32, 5).padding(2), max_pool2d(2), flatten(), linear(8192, 10)];
    let l = dev.wgpu_device().limits();
    let limit = l.max_buffer_size.min(l.max_storage_buffer_binding_size);
    // The first layer's output is 32 x 32 x 32 floats a sample: one sample more than fits.
    let per_sample = 32 * 32 * 32 * 4;
    let batch = (limit / per_sample + 1) as usize;
    let plan: Plan<4> = Plan::try_new(&LAYERS, Shape::chw(3, 32, 32), batch, Mode::Training).unwrap();
    let e = GpuNetwork::new(&dev, &plan, &vec![0.0; plan.param_len()])
        .err()
        .unwrap();
    match &e {
        Error::TooLarge {
            buffer,
            bytes,
            limit: l,
        } => {
            assert!(buffer.contains("layer 0 (Conv2d) output"), "{e}");
            assert_eq!(*bytes, batch as u64 * per_sample);
            assert_eq!(*l, limit);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("more than the adapter's limit"), "{e}");
}

/// The per-shader profile of a training step (`TORCHLET_GPU_PROFILE=1 torchlet bench`): every
/// dispatch of the step is counted under its shader, with a GPU time, and the step it runs is
/// a real one (SGD's step count and the parameters move).
#[test]
fn the_profile_times_every_dispatch_of_a_step() {
    let Some(dev) = device() else { return };
    if !dev.has_timestamps() {
        eprintln!("skipping: {} has no timestamp queries", dev.adapter());
        return;
    }
    let plan: Plan<12> = Plan::try_new(&BLITZ_CNN, Shape::chw(3, 32, 32), 2, Mode::Training).unwrap();
    let params = floats(5, plan.param_len());
    let mut net = GpuNetwork::new(&dev, &plan, &params).unwrap();
    let mut sgd = sgd();
    let times = torchlet_gpu::profile::profile_step(
        &mut net,
        &floats(6, 2 * 3 * 32 * 32),
        &[1, 7],
        &CrossEntropyLoss::new(),
        &mut sgd,
    )
    .unwrap();
    assert_eq!(sgd.steps(), 1);
    assert_ne!(net.params().unwrap(), params);
    let count = |s: &str| times.iter().find(|k| k.shader == s).map_or(0, |k| k.dispatches);
    // Two convolutions: two forward passes, two weight gradients and their reductions, and one
    // input gradient (the first layer's input needs none).
    assert_eq!(count("conv_forward.wgsl"), 2, "{times:?}");
    assert_eq!(count("conv_backward_weight.wgsl"), 2, "{times:?}");
    assert_eq!(count("reduce_partials.wgsl"), 2, "{times:?}");
    assert_eq!(count("conv_backward_input.wgsl"), 1, "{times:?}");
    assert_eq!(count("relu_forward.wgsl"), 4, "{times:?}");
    assert_eq!(count("linear_forward.wgsl"), 3, "{times:?}");
    assert_eq!(count("cross_entropy.wgsl"), 1, "{times:?}");
    assert_eq!(count("sgd_step.wgsl"), 1, "{times:?}");
    assert!(
        times.iter().all(|k| k.micros >= 0.0 && k.micros.is_finite()),
        "{times:?}"
    );
    assert!(times.iter().map(|k| k.micros).sum::<f64>() > 0.0, "{times:?}");
    assert!(
        times.windows(2).all(|w| w[0].micros >= w[1].micros),
        "slowest first: {times:?}"
    );
}
