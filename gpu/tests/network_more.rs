//! Training networks built from the remaining layers (convolutions with padding modes reflect,
//! replicate and circular, the Pad2d layers, ConvTranspose, MaxUnpool, Softmax, LogSoftmax,
//! Bilinear) on the GPU against [`torchlet::Network`] on the CPU, from the same initial
//! parameters and batches: loss, gradients and parameters after each of three SGD steps agree
//! within 1e-4 relative, and so does the forward pass on the trained parameters.

mod common;

use common::{assert_close, device, floats};
use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::ops::geom::PaddingMode;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::{Mode, Network, Plan, Rng, Shape};
use torchlet_gpu::{Device, GpuNetwork};

/// Trains `plan` on the CPU and the GPU, one SGD step per entry of `batches` (its batch size),
/// comparing the loss, every gradient and every parameter after each step.
fn train_both<const CAP: usize>(dev: &Device, plan: &Plan<CAP>, batches: &[usize], seed: u64) {
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(seed).unwrap();
    let mut gpu = GpuNetwork::new(dev, plan, cpu.params()).unwrap();

    let loss = CrossEntropyLoss::new();
    let sgd = || Sgd::new(0.05).momentum(0.9).weight_decay(5e-4);
    let (mut sgd_cpu, mut sgd_gpu) = (sgd(), sgd());
    let mut momentum = vec![0.0; sgd_cpu.state_len(p)];
    let in_len = plan.input_shape().numel();
    let classes = plan.output_shape().numel() as u32;
    let mut rng = Rng::new(seed ^ 0x5eed);
    for (step, &n) in batches.iter().enumerate() {
        let images = floats(seed + step as u64 + 1, n * in_len);
        let labels: Vec<u32> = (0..n).map(|_| rng.below(classes)).collect();

        cpu.zero_grad();
        cpu.forward(&images).unwrap();
        let loss_cpu = cpu.backward(&loss, &labels).unwrap();
        cpu.step(&mut sgd_cpu, &mut momentum).unwrap();
        let stats = gpu.train_step(&images, &labels, &loss, &mut sgd_gpu).unwrap();

        let what = |w: &str| format!("step {} (batch {n}): {w}", step + 1);
        assert_close(&what("loss"), &[stats.loss], &[loss_cpu]);
        assert_close(&what("gradients"), &gpu.grads().unwrap(), cpu.grads());
        assert_close(&what("parameters"), &gpu.params().unwrap(), cpu.params());
    }
    let images = floats(seed ^ 99, 2 * in_len);
    let cpu_out = cpu.forward(&images).unwrap().to_vec();
    assert_close("forward after training", &gpu.forward(&images).unwrap(), &cpu_out);
}

/// Every image layer of this slice in one network: 2 x 6 x 6 in, 10 classes out.
static IMAGE_NET: [Layer; 12] = [
    // Reflect-padded convolution, not the first layer's only: its input gradient is folded back.
    conv2d(2, 4, 3).padding(1).padding_mode(PaddingMode::Reflect),
    relu(),
    replication_pad2d([1, 0, 0, 1]),
    // 4 x 7 x 7 -> 4 x 3 x 3 -> back to 4 x 7 x 7 through the pool's indices.
    max_pool2d(2).return_indices(true),
    max_unpool2d(2),
    conv_transpose2d(4, 3, 3).stride(2).padding(1).output_padding(1),
    conv2d(3, 2, 3).stride(2).padding(1).padding_mode(PaddingMode::Circular),
    softmax(1),
    reflection_pad2d([1, 1, 1, 1]),
    flatten(),
    linear(2 * 9 * 9, 10),
    log_softmax(1),
];

#[test]
fn padded_conv_pad_unpool_conv_transpose_softmax_network_matches_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<12> = Plan::try_new(&IMAGE_NET, Shape::chw(2, 6, 6), 3, Mode::Training).unwrap();
    assert_eq!(plan.output_shape().numel(), 10);
    // A short middle batch rewrites every uniform, the full one rewrites them back.
    train_both(&dev, &plan, &[3, 2, 3], 11);
}

/// The first layer is a convolution with a padding mode (no input gradient to fold) and a
/// zero-padding layer follows.
static FIRST_LAYER_NET: [Layer; 5] = [
    conv2d(1, 3, 3).padding(2).padding_mode(PaddingMode::Replicate),
    zero_pad2d([0, 1, 2, 0]),
    tanh(),
    flatten(),
    linear(3 * 10 * 8, 5),
];

#[test]
fn replicate_padded_first_conv_and_zero_pad_match_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<5> = Plan::try_new(&FIRST_LAYER_NET, Shape::chw(1, 6, 5), 2, Mode::Training).unwrap();
    train_both(&dev, &plan, &[2, 2, 2], 12);
}

/// Bilinear layers: two different inputs (each branch with parameters or an activation), then
/// one whose two inputs are the same tensor (both gradients land in one buffer).
static BILINEAR_NET: [Layer; 4] = [
    linear(6, 5),
    bilinear(&[tanh()], &[linear(5, 3)], 5, 3, 4),
    bilinear(&[], &[], 4, 4, 7),
    softmax(-1),
];

#[test]
fn bilinear_network_matches_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<8> = Plan::try_new(&BILINEAR_NET, Shape::features(6), 4, Mode::Training).unwrap();
    train_both(&dev, &plan, &[4, 4, 3], 13);
}
