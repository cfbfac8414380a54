//! The course's CIFAR-10 network against PyTorch: identical initial weights (PyTorch's default
//! initialisation, `torch.manual_seed(0)`), one fixed batch of 64, three SGD steps with momentum
//! 0.9 and lr 0.01. The loss of every step and every parameter afterwards must match PyTorch
//! within 1e-4 relative. Fixture: `tools/fixtures/tutorial.py`.

use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::{Network, Plan, Shape};
use torchlet_tests::{fixture_path, floats, load_fixture};

const LAYERS: [Layer; 9] = [
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
const N: usize = 64;
const PLAN: Plan<9> = Plan::training(&LAYERS, Shape::chw(3, 32, 32), N);

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture_path(name)).expect("fixture");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The batch of `tools/fixtures/tutorial.py`, rebuilt with the same f32 operations.
fn batch() -> (Vec<f32>, Vec<u32>) {
    let labels: Vec<u32> = (0..N as u32).map(|i| i % 10).collect();
    let mut x = vec![0.0f32; N * 3 * 32 * 32];
    for (i, v) in x.iter_mut().enumerate() {
        let mut h = (i as u64 * 2654435761) & 0xFFFF_FFFF;
        h ^= h >> 16;
        h = (h * 0x45D9F3B) & 0xFFFF_FFFF;
        h ^= h >> 16;
        let noise = (h % 1000) as f32 / 1000.0 - 0.5;
        let (n, c) = (i / 3072, (i / 1024) % 3);
        let offset = ((labels[n] as usize + c) % 10) as f32 / 10.0;
        *v = noise + offset;
    }
    (x, labels)
}

#[test]
fn three_sgd_steps_match_pytorch() {
    let meta = load_fixture("tutorial_sgd.json");
    assert_eq!(meta["param_count"].as_u64().unwrap() as usize, PLAN.param_len());
    let mut params = read_f32("tutorial_init.bin");
    let expected = read_f32("tutorial_after3.bin");
    let losses = floats(&meta["losses"]);
    let mut grads = vec![0.0; PLAN.param_len()];
    let mut arena = vec![0.0; PLAN.arena_len()];
    let mut net = Network::new(&PLAN, &mut params, &mut grads, &mut [], &mut arena).unwrap();
    let mut sgd = Sgd::new(0.01).momentum(0.9);
    let mut buf = vec![0.0; sgd.state_len(PLAN.param_len())];
    let (x, y) = batch();
    for (step, &want) in losses.iter().enumerate() {
        net.zero_grad();
        net.forward(&x).unwrap();
        let loss = net.backward(&CrossEntropyLoss::new(), &y).unwrap();
        assert!(
            (loss - want).abs() <= 1e-4 * want.abs(),
            "step {step}: loss {loss}, PyTorch {want}"
        );
        net.step(&mut sgd, &mut buf).unwrap();
    }
    let got = net.params();
    let init = read_f32("tutorial_init.bin");
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        let err = (g - e).abs() / e.abs().max(1e-3);
        if err > worst.0 {
            worst = (err, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 1e-4,
        "parameter {i}: got {}, PyTorch {} (initial {}), relative error {}",
        got[i],
        expected[i],
        init[i],
        worst.0
    );
    // The test would be vacuous if nothing moved: PyTorch's update is visible at this tolerance.
    let moved = init
        .iter()
        .zip(&expected)
        .filter(|(a, b)| (*a - *b).abs() > 1e-4 * b.abs().max(1e-3))
        .count();
    assert!(moved > PLAN.param_len() / 2, "only {moved} parameters moved");
}
