//! A small ResNet against PyTorch: identical initial weights (PyTorch's, stored in the fixture),
//! one fixed batch of 4, three Adam steps (lr 1e-2) on `CrossEntropyLoss(label_smoothing=0.1)`
//! in training mode. The loss of every step, every parameter afterwards, the BatchNorm running
//! statistics and an eval-mode forward pass must match PyTorch within 1e-4 relative.
//! Fixture: `tools/fixtures/resnet.py`.

use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Adam, Optimizer};
use torchlet::plan::node_count;
use torchlet::{Network, Plan, Shape};
use torchlet_tests::{floats, load_fixture};

/// Basic block, 8 channels, identity shortcut.
const BLOCK1: [Layer; 5] = [
    conv2d(8, 8, 3).padding(1).bias(false),
    batch_norm2d(8),
    relu(),
    conv2d(8, 8, 3).padding(1).bias(false),
    batch_norm2d(8),
];
/// Basic block, 8 -> 16 channels with stride 2.
const BLOCK2: [Layer; 5] = [
    conv2d(8, 16, 3).stride(2).padding(1).bias(false),
    batch_norm2d(16),
    relu(),
    conv2d(16, 16, 3).padding(1).bias(false),
    batch_norm2d(16),
];
/// Its 1x1 projection shortcut.
const SHORTCUT2: [Layer; 2] = [conv2d(8, 16, 1).stride(2).bias(false), batch_norm2d(16)];

const LAYERS: [Layer; 10] = [
    conv2d(3, 8, 3).padding(1).bias(false),
    batch_norm2d(8),
    relu(),
    residual(&BLOCK1, &[]),
    relu(),
    residual(&BLOCK2, &SHORTCUT2),
    relu(),
    adaptive_avg_pool2d(1, 1),
    flatten(),
    linear(16, 10),
];
const CAP: usize = node_count(&LAYERS);
const N: usize = 4;
const PLAN: Plan<CAP> = Plan::training(&LAYERS, Shape::chw(3, 8, 8), N);

const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-6;

/// Like `assert_close`, but reports the worst element (and its initial value, if given).
fn assert_matches(what: &str, got: &[f32], want: &[f32], init: Option<&[f32]>) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = (g - w).abs() / (ATOL + RTOL * w.abs());
        assert!(!excess.is_nan(), "{what}: index {i}: got {g}, PyTorch {w}");
        if excess > worst.0 {
            worst = (excess, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 1.0,
        "{what}: index {i}: got {}, PyTorch {}{} (|error| / tolerance = {})",
        got[i],
        want[i],
        init.map_or(String::new(), |p| format!(" (initial {})", p[i])),
        worst.0
    );
}

#[test]
fn plan_layout_matches_pytorch() {
    let fx = load_fixture("resnet.json");
    assert_eq!(fx["param_count"].as_u64().unwrap() as usize, PLAN.param_len());
    // Each torchlet parameter tensor, in order, has PyTorch's size.
    let sizes: Vec<usize> = fx["param_shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e[1].as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .product()
        })
        .collect();
    let ours: Vec<usize> = PLAN
        .nodes()
        .iter()
        .flat_map(|n| [n.weight_len, n.bias_len])
        .filter(|&l| l > 0)
        .collect();
    assert_eq!(ours, sizes);
    // 6 BatchNorm layers of 8, 8, 8, 16, 16 and 16 channels: [mean, var, count] each.
    assert_eq!(PLAN.state_len(), fx["bn_state_after"].as_array().unwrap().len());
    assert_eq!(PLAN.output_shape(), Shape::features(10));
}

#[test]
fn three_adam_steps_match_pytorch() {
    let fx = load_fixture("resnet.json");
    let x = floats(&fx["x"]);
    let labels: Vec<u32> = fx["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let init = floats(&fx["params_init"]);
    let losses = floats(&fx["losses"]);
    assert_eq!(fx["steps"].as_u64(), Some(losses.len() as u64));

    let mut params = init.clone();
    let mut grads = vec![0.0; PLAN.param_len()];
    let mut state = vec![f32::NAN; PLAN.state_len()];
    let mut arena = vec![0.0; PLAN.arena_len()];
    let mut net = Network::new(&PLAN, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    // Fresh BatchNorm state, as PyTorch's constructor (init_params would also redraw the
    // weights, so set the state directly): mean 0, var 1, count 0.
    let mut offset = 0;
    for node in PLAN.nodes().iter().filter(|n| n.state_len > 0) {
        let c = (node.state_len - 1) / 2;
        assert_eq!(node.state_offset, offset);
        let s = &mut net.state_mut().unwrap()[offset..offset + node.state_len];
        s[..c].fill(0.0);
        s[c..2 * c].fill(1.0);
        s[2 * c] = 0.0;
        offset += node.state_len;
    }

    let mut adam = Adam::new(fx["lr"].as_f64().unwrap() as f32);
    let mut moments = vec![0.0; adam.state_len(PLAN.param_len())];
    let ce = CrossEntropyLoss::new().label_smoothing(fx["label_smoothing"].as_f64().unwrap() as f32);
    assert!(net.is_training());
    for (step, &want) in losses.iter().enumerate() {
        net.zero_grad();
        net.forward(&x).unwrap();
        let loss = net.backward(&ce, &labels).unwrap();
        assert!(
            (loss - want).abs() <= RTOL * want.abs(),
            "step {step}: loss {loss}, PyTorch {want}"
        );
        net.step(&mut adam, &mut moments).unwrap();
    }

    let after = floats(&fx["params_after"]);
    assert_matches("parameters after 3 steps", net.params(), &after, Some(&init));
    // Not vacuous: Adam moves almost every parameter by about lr per step.
    let moved = init.iter().zip(&after).filter(|(a, b)| (*a - *b).abs() > 1e-3).count();
    assert!(moved > PLAN.param_len() * 9 / 10, "only {moved} parameters moved");

    let bn = floats(&fx["bn_state_after"]);
    assert_matches("BatchNorm running statistics", net.state(), &bn, None);
    // num_batches_tracked is an exact count.
    let mut offset = 0;
    for node in PLAN.nodes().iter().filter(|n| n.state_len > 0) {
        assert_eq!(net.state()[offset + node.state_len - 1], 3.0);
        offset += node.state_len;
    }

    net.eval();
    let out = net.forward(&x).unwrap().to_vec();
    assert_matches("eval-mode output", &out, &floats(&fx["eval_output"]), None);
    // Eval mode reads the running statistics and does not update them.
    assert_matches("BatchNorm running statistics after eval", net.state(), &bn, None);
}

#[test]
fn inference_plan_reproduces_the_eval_output() {
    // The trained weights loaded into an inference plan (batch 1, ping-pong arena) give
    // PyTorch's eval output sample by sample.
    const INFER: Plan<CAP> = Plan::inference(&LAYERS, Shape::chw(3, 8, 8), 1);
    let fx = load_fixture("resnet.json");
    let x = floats(&fx["x"]);
    let want = floats(&fx["eval_output"]);
    let mut params = floats(&fx["params_after"]);
    let mut state = floats(&fx["bn_state_after"]);
    let mut arena = vec![0.0; INFER.arena_len()];
    assert!(
        INFER.arena_len() < PLAN.arena_len(),
        "inference keeps nothing for backward"
    );
    let mut net = Network::new(&INFER, &mut params, &mut [], &mut state, &mut arena).unwrap();
    let sample = 3 * 8 * 8;
    for s in 0..N {
        let out = net.forward(&x[s * sample..(s + 1) * sample]).unwrap();
        assert_matches(&format!("sample {s}"), out, &want[s * 10..(s + 1) * 10], None);
    }
}
