//! ELU, GELU (exact and tanh), SiLU, Hardswish, Hardsigmoid, Softplus, Mish, ReLU6 and PReLU
//! on the GPU against the core's CPU kernels of the same names: random inputs (proptest, few
//! cases) that include the kinks and both tails, forward and every gradient (PReLU's weight
//! gradient too, per channel and shared), within 1e-4 relative; gradients accumulate onto
//! random prefilled values, so the `+=` contract is tested too. Then a network with every one
//! of these layers trains three SGD steps on the GPU as on the CPU.

mod common;

use common::{assert_close, check_close, device, floats, gpu_err, run};
use proptest::prelude::*;
use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::ops::activation as cpu;
use torchlet::optim::Sgd;
use torchlet::plan::{Mode, Plan};
use torchlet::{Network, Rng, Shape};
use torchlet_gpu::ops::{self as gpu, ActivationKind};
use torchlet_gpu::{Device, GpuNetwork};

fn any_kind() -> impl Strategy<Value = ActivationKind> {
    prop_oneof![
        (0.1f32..2.0).prop_map(ActivationKind::Elu),
        Just(ActivationKind::Gelu(Approximate::None)),
        Just(ActivationKind::Gelu(Approximate::Tanh)),
        Just(ActivationKind::Silu),
        Just(ActivationKind::Hardswish),
        Just(ActivationKind::Hardsigmoid),
        (0.5f32..3.0, 2.0f32..20.0)
            .prop_map(|(beta, threshold)| ActivationKind::Softplus(Softplus { beta, threshold })),
        Just(ActivationKind::Mish),
        Just(ActivationKind::Relu6),
    ]
}

fn cpu_forward(k: ActivationKind, x: &[f32], y: &mut [f32]) {
    match k {
        ActivationKind::Elu(a) => cpu::elu_forward(a, x, y),
        ActivationKind::Gelu(a) => cpu::gelu_forward(a, x, y),
        ActivationKind::Silu => cpu::silu_forward(x, y),
        ActivationKind::Hardswish => cpu::hardswish_forward(x, y),
        ActivationKind::Hardsigmoid => cpu::hardsigmoid_forward(x, y),
        ActivationKind::Softplus(p) => cpu::softplus_forward(p, x, y),
        ActivationKind::Mish => cpu::mish_forward(x, y),
        ActivationKind::Relu6 => cpu::relu6_forward(x, y),
    }
}

fn cpu_backward(k: ActivationKind, x: &[f32], gy: &[f32], gx: &mut [f32]) {
    match k {
        ActivationKind::Elu(a) => cpu::elu_backward_input(a, x, gy, gx),
        ActivationKind::Gelu(a) => cpu::gelu_backward_input(a, x, gy, gx),
        ActivationKind::Silu => cpu::silu_backward_input(x, gy, gx),
        ActivationKind::Hardswish => cpu::hardswish_backward_input(x, gy, gx),
        ActivationKind::Hardsigmoid => cpu::hardsigmoid_backward_input(x, gy, gx),
        ActivationKind::Softplus(p) => cpu::softplus_backward_input(p, x, gy, gx),
        ActivationKind::Mish => cpu::mish_backward_input(x, gy, gx),
        ActivationKind::Relu6 => cpu::relu6_backward_input(x, gy, gx),
    }
}

/// `len` inputs: the kinks, Softplus's thresholds, tails and random values over `[-12, 12]`.
fn inputs(seed: u64, len: usize) -> Vec<f32> {
    let special = [0.0, -3.0, 3.0, 6.0, -1e-3, 1e-3, 10.0, 20.0, -40.0, 40.0, -90.0, 90.0];
    let mut x: Vec<f32> = floats(seed, len).iter().map(|v| v * 12.0).collect();
    for (v, s) in x.iter_mut().zip(special.iter().cycle().take(len / 3)) {
        *v = *s;
    }
    x
}

fn act_case(dev: &Device, k: ActivationKind, len: usize, seed: u64) -> Result<(), String> {
    let x = inputs(seed, len);
    let (mut y_cpu, mut y_gpu) = (vec![0.0; len], vec![7.0; len]);
    cpu_forward(k, &x, &mut y_cpu);
    gpu::activation_forward(dev, k, &x, &mut y_gpu).map_err(gpu_err)?;
    check_close(&format!("{k:?} forward"), &y_gpu, &y_cpu)?;
    let gy = floats(seed ^ 1, len);
    let prefill = floats(seed ^ 2, len);
    let (mut gx_cpu, mut gx_gpu) = (prefill.clone(), prefill);
    cpu_backward(k, &x, &gy, &mut gx_cpu);
    gpu::activation_backward_input(dev, k, &x, &gy, &mut gx_gpu).map_err(gpu_err)?;
    check_close(&format!("{k:?} input gradient"), &gx_gpu, &gx_cpu)
}

#[test]
fn activations_match_cpu() {
    let Some(dev) = device() else { return };
    run((any_kind(), 1usize..300, any::<u64>()), |(k, len, seed)| {
        act_case(&dev, k, len, seed)
    });
}

#[test]
fn every_activation_kind_matches_cpu_on_the_kinks() {
    let Some(dev) = device() else { return };
    for k in [
        ActivationKind::Elu(1.0),
        ActivationKind::Gelu(Approximate::None),
        ActivationKind::Gelu(Approximate::Tanh),
        ActivationKind::Silu,
        ActivationKind::Hardswish,
        ActivationKind::Hardsigmoid,
        ActivationKind::Softplus(Softplus {
            beta: 1.0,
            threshold: 20.0,
        }),
        ActivationKind::Mish,
        ActivationKind::Relu6,
    ] {
        act_case(&dev, k, 200, 3).unwrap();
    }
}

fn prelu_case(dev: &Device, n: usize, c: usize, inner: usize, shared: bool, seed: u64) -> Result<(), String> {
    let len = n * c * inner;
    let x = inputs(seed, len);
    let w = floats(seed ^ 3, if shared { 1 } else { c });
    let (mut y_cpu, mut y_gpu) = (vec![0.0; len], vec![7.0; len]);
    cpu::prelu_forward(c, inner, &w, &x, &mut y_cpu);
    gpu::prelu_forward(dev, c, inner, &w, &x, &mut y_gpu).map_err(gpu_err)?;
    check_close("PReLU forward", &y_gpu, &y_cpu)?;
    let gy = floats(seed ^ 1, len);
    let prefill = floats(seed ^ 2, len);
    let (mut gx_cpu, mut gx_gpu) = (prefill.clone(), prefill);
    cpu::prelu_backward_input(c, inner, &w, &x, &gy, &mut gx_cpu);
    gpu::prelu_backward_input(dev, c, inner, &w, &x, &gy, &mut gx_gpu).map_err(gpu_err)?;
    check_close("PReLU input gradient", &gx_gpu, &gx_cpu)?;
    let prefill = floats(seed ^ 4, w.len());
    let (mut gw_cpu, mut gw_gpu) = (prefill.clone(), prefill);
    cpu::prelu_backward_weight(c, inner, &x, &gy, &mut gw_cpu);
    gpu::prelu_backward_weight(dev, c, inner, &x, &gy, &mut gw_gpu).map_err(gpu_err)?;
    check_close("PReLU weight gradient", &gw_gpu, &gw_cpu)
}

#[test]
fn prelu_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (1usize..5, 1usize..6, 1usize..40, any::<bool>(), any::<u64>()),
        |(n, c, inner, shared, seed)| prelu_case(&dev, n, c, inner, shared, seed),
    );
    // More elements per weight than one workgroup has invocations.
    prelu_case(&dev, 3, 2, 300, false, 9).unwrap();
    prelu_case(&dev, 3, 2, 300, true, 9).unwrap();
}

/// Every new layer once (PReLU per channel and shared) between a convolution and a linear head.
static NET: [Layer; 14] = [
    conv2d(2, 3, 3).padding(1),
    prelu().num_parameters(3).init(0.1),
    elu().alpha(0.5),
    gelu(),
    gelu().approximate(Approximate::Tanh),
    silu(),
    hardswish(),
    hardsigmoid(),
    softplus().beta(2.0).threshold(10.0),
    mish(),
    relu6(),
    prelu(),
    flatten(),
    linear(48, 10),
];

#[test]
fn a_network_with_every_new_activation_trains_as_on_the_cpu() {
    let Some(dev) = device() else { return };
    let plan: Plan<16> = Plan::try_new(&NET, Shape::chw(2, 4, 4), 4, Mode::Training).unwrap();
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    net.init_params(5).unwrap();
    let mut g = GpuNetwork::new(&dev, &plan, net.params()).unwrap();
    let loss = CrossEntropyLoss::new();
    let (mut sgd_cpu, mut sgd_gpu) = (Sgd::new(0.1), Sgd::new(0.1));
    let mut rng = Rng::new(7);
    // A short middle batch rewrites the uniforms.
    for (step, n) in [4usize, 3, 4].into_iter().enumerate() {
        let images: Vec<f32> = floats(step as u64 + 1, n * 32).iter().map(|v| v * 4.0).collect();
        let labels: Vec<u32> = (0..n).map(|_| rng.below(10)).collect();
        net.zero_grad();
        net.forward(&images).unwrap();
        let l = net.backward(&loss, &labels).unwrap();
        net.step(&mut sgd_cpu, &mut []).unwrap();
        let stats = g.train_step(&images, &labels, &loss, &mut sgd_gpu).unwrap();
        assert_close(&format!("step {step} loss"), &[stats.loss], &[l]);
        assert_close(&format!("step {step} gradients"), &g.grads().unwrap(), net.grads());
        assert_close(&format!("step {step} parameters"), &g.params().unwrap(), net.params());
    }
    let images = floats(99, 4 * 32);
    let out = net.forward(&images).unwrap().to_vec();
    assert_close("eval forward", &g.forward(&images).unwrap(), &out);
}
