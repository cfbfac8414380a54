//! The zoo's BatchNorm models on the GPU: `vgg11` (BatchNorm2d after every convolution) and
//! `resnet18` (BatchNorm2d, residual sums, adaptive average pooling) build a `GpuNetwork` and
//! its eval-mode forward pass (running statistics loaded from the model) gives the CPU's
//! outputs within 1e-4 relative. One image each: lavapipe, the CI's adapter, runs a few
//! hundred MFLOP per second.

use torchlet::{Mode, Network};
use torchlet_gpu::{Device, GpuNetwork, Preference};
use torchlet_host::model::Model;

fn device(test: &str) -> Option<Device> {
    match Device::new(Preference::Any) {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(
                std::env::var("TORCHLET_REQUIRE_GPU").as_deref() != Ok("1"),
                "TORCHLET_REQUIRE_GPU=1 but no GPU adapter for {test}: {e}"
            );
            eprintln!("skipping {test}: no GPU adapter ({e})");
            None
        }
    }
}

/// Builds zoo model `name` on the GPU with non-trivial running statistics and compares one
/// image's eval-mode output with the CPU's inference plan.
fn eval_matches_cpu(name: &str) {
    let Some(dev) = device(name) else { return };
    let mut model = Model::from_zoo(name, 1).unwrap();
    // Running statistics as after training: means and variances other than 0 and 1.
    for (i, v) in model.state.iter_mut().enumerate() {
        *v = 0.5 + 0.25 * ((i % 7) as f32 / 7.0);
    }
    let plan = model.plan(1, Mode::Training).unwrap();
    let mut gpu = GpuNetwork::new(&dev, &*plan, &model.params).unwrap();
    gpu.set_state(&model.state).unwrap();
    assert_eq!(gpu.state().unwrap(), model.state);
    let in_len = plan.input_shape().numel();
    let image: Vec<f32> = (0..in_len).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let out = gpu.forward(&image).unwrap();

    let iplan = model.plan(1, Mode::Inference).unwrap();
    let mut arena = vec![0.0; iplan.arena_len()];
    let mut cpu = Network::with_weights(&*iplan, &model.params, &model.state, &mut arena).unwrap();
    let want = cpu.forward(&image).unwrap();
    assert_eq!(out.len(), want.len());
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (k, (&g, &c)) in out.iter().zip(want).enumerate() {
        assert!(
            (g - c).abs() <= 1e-4 * c.abs() + 1e-5 * scale,
            "{name} output {k}: GPU {g} vs CPU {c}"
        );
    }
}

#[test]
fn vgg11_with_batch_norm_runs_on_the_gpu() {
    eval_matches_cpu("vgg11");
}

#[test]
fn resnet18_runs_on_the_gpu() {
    eval_matches_cpu("resnet18");
}
