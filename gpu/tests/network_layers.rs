//! Whole networks with BatchNorm, Dropout, average and adaptive pooling, residual sums and
//! channel concatenations, trained on the GPU against [`torchlet::Network`] on the CPU from the
//! same initial parameters and batches: losses, gradients, parameters and the BatchNorm
//! running statistics after each SGD step agree within 1e-4 relative; then eval mode
//! (`model.eval()`: running statistics, no dropout) against the CPU's eval forward.

mod common;

use common::{assert_close, device, floats};
use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::plan::Exec;
use torchlet::{Mode, Network, Plan, Rng, Shape};
use torchlet_gpu::{Device, Error, GpuNetwork};

/// A ResNet-style basic block's body: conv, BatchNorm, ReLU, conv, BatchNorm.
static BODY: [Layer; 5] = [
    conv2d(8, 8, 3).padding(1),
    batch_norm2d(8),
    relu(),
    conv2d(8, 8, 3).padding(1),
    batch_norm2d(8),
];
/// Concatenated branches: a 1x1 convolution and a 3x3 average pool (stride 1, padding 1,
/// padded zeros not counted), both reading the same tensor.
static BRANCH_A: [Layer; 1] = [conv2d(8, 4, 1)];
static BRANCH_B: [Layer; 1] = [avg_pool2d(3).stride(1).padding(1).count_include_pad(false)];

/// Stem, a residual block (identity shortcut: the stem's ReLU feeds the body and the sum),
/// a concatenation (one producer, two branches), Dropout(p = 0), average pooling with
/// `ceil_mode`, adaptive average pooling and a classifier: 1,966 parameters.
static RESNET_NET: [Layer; 11] = [
    conv2d(3, 8, 3).padding(1),
    batch_norm2d(8),
    relu(),
    residual(&BODY, &[]),
    relu(),
    concat(&BRANCH_A, &BRANCH_B),
    dropout(0.0),
    avg_pool2d(3).stride(2).ceil_mode(true),
    adaptive_avg_pool2d(2, 2),
    flatten(),
    linear(48, 10),
];

/// BatchNorm1d with every option, adaptive max pooling, both merges of a tensor with itself
/// (`x + x`, `cat([x, x])`) and a BatchNorm reading the network's input (no input gradient).
static OPTIONS_NET: [Layer; 10] = [
    batch_norm1d(2).momentum(None),
    adaptive_max_pool1d(5),
    residual(&[], &[]),
    concat(&[], &[]),
    batch_norm1d(4).affine(false),
    flatten(),
    linear(20, 16),
    batch_norm1d(16).track_running_stats(false),
    relu(),
    linear(16, 10),
];

fn sgd() -> Sgd {
    Sgd::new(0.05).momentum(0.9).weight_decay(5e-4)
}

/// Trains the same network on the CPU and the GPU, one step per entry of `batches` (its batch
/// size), comparing the loss, gradients, momentum, parameters and running statistics after
/// each step; then evaluates both in eval mode.
fn train_both<const CAP: usize>(dev: &Device, plan: &Plan<CAP>, batches: &[usize], seed: u64) {
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(seed).unwrap();
    let mut gpu = GpuNetwork::new(dev, plan, cpu.params()).unwrap();
    assert_close("initial running statistics", &gpu.state().unwrap(), cpu.state());

    let loss = CrossEntropyLoss::new();
    let (mut sgd_cpu, mut sgd_gpu) = (sgd(), sgd());
    let mut momentum = vec![0.0; sgd_cpu.state_len(p)];
    let in_len = plan.input_shape().numel();
    let mut rng = Rng::new(seed ^ 0x5eed);
    for (step, &n) in batches.iter().enumerate() {
        let images = floats(seed + step as u64 + 1, n * in_len);
        let labels: Vec<u32> = (0..n).map(|_| rng.below(10)).collect();

        cpu.zero_grad();
        cpu.forward(&images).unwrap();
        let loss_cpu = cpu.backward(&loss, &labels).unwrap();
        cpu.step(&mut sgd_cpu, &mut momentum).unwrap();
        let stats = gpu.train_step(&images, &labels, &loss, &mut sgd_gpu).unwrap();

        let what = |w: &str| format!("step {} (batch {n}): {w}", step + 1);
        assert_close(&what("loss"), &[stats.loss], &[loss_cpu]);
        assert_close(&what("gradients"), &gpu.grads().unwrap(), cpu.grads());
        assert_close(&what("momentum"), &gpu.momentum().unwrap(), &momentum);
        assert_close(&what("parameters"), &gpu.params().unwrap(), cpu.params());
        assert_close(&what("running statistics"), &gpu.state().unwrap(), cpu.state());
    }

    // model.eval(): running statistics, Dropout off; loss and outputs as the CPU's.
    cpu.eval();
    let n = batches[0];
    let images = floats(seed ^ 99, n * in_len);
    let labels: Vec<u32> = (0..n).map(|_| rng.below(10)).collect();
    let cpu_out = cpu.forward(&images).unwrap().to_vec();
    let cpu_loss = cpu.loss(&loss, &labels).unwrap();
    assert_close("eval forward", &gpu.forward(&images).unwrap(), &cpu_out);
    let stats = gpu.evaluate(&images, &labels, &loss).unwrap();
    assert_close("eval loss", &[stats.loss], &[cpu_loss]);
    // Evaluation changes neither the running statistics nor the parameters.
    assert_close("running statistics after eval", &gpu.state().unwrap(), cpu.state());
    assert_close("parameters after eval", &gpu.params().unwrap(), cpu.params());
}

#[test]
fn resnet_style_network_three_sgd_steps_match_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<32> = Plan::try_new(&RESNET_NET, Shape::chw(3, 8, 8), 4, Mode::Training).unwrap();
    assert_eq!(plan.param_len(), 1_966);
    // A short middle batch rewrites the uniforms, eval passes included.
    train_both(&dev, &plan, &[4, 3, 4], 1);
}

#[test]
fn batch_norm_options_and_self_merges_match_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<16> = Plan::try_new(&OPTIONS_NET, Shape::cl(2, 7), 5, Mode::Training).unwrap();
    // Both merges read one producer twice: its gradient must receive both contributions.
    let merges: Vec<_> = plan
        .nodes()
        .iter()
        .filter(|n| matches!(n.exec, Exec::Add | Exec::Concat(_)))
        .collect();
    assert_eq!(merges.len(), 2);
    assert!(merges.iter().all(|n| n.inputs[0] == n.inputs[1]), "{merges:?}");
    train_both(&dev, &plan, &[5, 5, 2], 2);
}

static DROPOUT_NET: [Layer; 3] = [linear(64, 256), dropout(0.5), linear(256, 10)];

#[test]
fn dropout_drops_in_training_only_with_a_new_mask_every_step() {
    let Some(dev) = device() else { return };
    let plan: Plan<3> = Plan::try_new(&DROPOUT_NET, Shape::features(64), 8, Mode::Training).unwrap();
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(3).unwrap();
    let mut gpu = GpuNetwork::new(&dev, &plan, cpu.params()).unwrap();
    let images = floats(5, 8 * 64);
    let labels = [1u32, 2, 3, 4, 5, 6, 7, 8];
    let loss = CrossEntropyLoss::new();
    // Learning rate 0: the parameters stay, so every step sees the same pre-dropout values.
    let mut sgd = Sgd::new(0.0);
    let mut masks = Vec::new();
    let mut outputs = Vec::new();
    for _ in 0..2 {
        gpu.train_step(&images, &labels, &loss, &mut sgd).unwrap();
        let (before, after) = (gpu.layer_output(0).unwrap(), gpu.layer_output(1).unwrap());
        let mask: Vec<bool> = before
            .iter()
            .zip(&after)
            .map(|(&b, &a)| {
                assert!(a == 0.0 || a == 2.0 * b, "dropout(0.5) output {a} from {b}");
                a != 0.0 || b == 0.0
            })
            .collect();
        let kept = mask.iter().filter(|&&k| k).count() as f64;
        let len = mask.len() as f64;
        // 5 sigma of a binomial(2048, 0.5) fraction.
        assert!(
            (kept / len - 0.5).abs() < 5.0 * (0.25 / len).sqrt(),
            "kept {kept} of {len}"
        );
        masks.push(mask);
        outputs.push((before, after));
    }
    assert_ne!(masks[0], masks[1], "each step draws a new mask");
    // Eval mode is the identity: the CPU's eval forward.
    cpu.eval();
    let cpu_out = cpu.forward(&images).unwrap().to_vec();
    assert_close("eval forward", &gpu.forward(&images).unwrap(), &cpu_out);
    // Backward uses the forward's mask: the first layer's gradients, computed here from the
    // GPU's mask and parameters (the learning rate was 0), agree with the GPU's.
    let params = gpu.params().unwrap();
    let (w1, b1) = (
        &params[64 * 256 + 256..64 * 256 + 256 + 2560],
        &params[64 * 256 + 256 + 2560..],
    );
    let (before, after) = &outputs[1];
    let mut gw0 = vec![0.0f32; 256 * 64];
    let mut gb0 = vec![0.0f32; 256];
    for s in 0..8 {
        let d = &after[s * 256..(s + 1) * 256];
        let logits: Vec<f32> = (0..10)
            .map(|k| b1[k] + (0..256).map(|u| w1[k * 256 + u] * d[u]).sum::<f32>())
            .collect();
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let z: f32 = logits.iter().map(|&v| (v - max).exp()).sum();
        let gl: Vec<f32> = (0..10)
            .map(|k| ((logits[k] - max).exp() / z - if k == labels[s] as usize { 1.0 } else { 0.0 }) / 8.0)
            .collect();
        for u in 0..256 {
            let factor = if before[s * 256 + u] != 0.0 {
                d[u] / before[s * 256 + u]
            } else {
                0.0
            };
            let gh = factor * (0..10).map(|k| gl[k] * w1[k * 256 + u]).sum::<f32>();
            gb0[u] += gh;
            for i in 0..64 {
                gw0[u * 64 + i] += gh * images[s * 64 + i];
            }
        }
    }
    let g = gpu.grads().unwrap();
    assert_close("first layer weight gradient", &g[..64 * 256], &gw0);
    assert_close("first layer bias gradient", &g[64 * 256..64 * 256 + 256], &gb0);
}

#[test]
fn state_round_trips_and_wrong_lengths_are_refused() {
    let Some(dev) = device() else { return };
    let plan: Plan<32> = Plan::try_new(&RESNET_NET, Shape::chw(3, 8, 8), 2, Mode::Training).unwrap();
    let mut gpu = GpuNetwork::new(&dev, &plan, &vec![0.1; plan.param_len()]).unwrap();
    // Three BatchNorm2d(8): 3 x (8 + 8 + 1) floats.
    assert_eq!(plan.state_len(), 51);
    let state = floats(7, plan.state_len());
    gpu.set_state(&state).unwrap();
    assert_eq!(gpu.state().unwrap(), state);
    let e = gpu.set_state(&state[1..]).unwrap_err();
    assert!(matches!(e, Error::Core(torchlet::Error::BufferLength { .. })), "{e}");
    // A batch of one sample gives BatchNorm2d 64 values per channel: fine. BatchNorm1d on
    // [N, C] needs 2 samples in training, as PyTorch.
    let plan1: Plan<16> = Plan::try_new(&OPTIONS_NET, Shape::cl(2, 7), 2, Mode::Training).unwrap();
    let mut gpu1 = GpuNetwork::new(&dev, &plan1, &vec![0.1; plan1.param_len()]).unwrap();
    let before = gpu1.state().unwrap();
    let e = gpu1
        .train_step(&floats(1, 14), &[0], &CrossEntropyLoss::new(), &mut Sgd::new(0.1))
        .unwrap_err();
    assert!(e.to_string().contains("more than 1 value per channel"), "{e}");
    assert_eq!(gpu1.state().unwrap(), before, "a refused step changes nothing");
    // The BatchNorm without running statistics needs batch statistics in eval mode too.
    assert!(gpu1.forward(&floats(1, 14)).is_err());
    assert!(gpu1.forward(&floats(1, 28)).is_ok());
}
