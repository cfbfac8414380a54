//! GPU kernels against the core's CPU kernel of the same name. The convolution and pooling
//! families are not here: one test body per op runs them on every backend against naive
//! references (`tests/tests/ops_conv.rs`, `ops_pool.rs`, with `torchlet_tests::test_device!`);
//! what stays of them is GPU-specific (refusals, an empty-window regression). Random valid
//! configurations (proptest, few cases, small sizes: lavapipe runs about 3 GFLOP/s), forward
//! and every gradient, within 1e-4 relative. Gradients are accumulated onto random prefilled
//! values, so the `+=` contract is tested too.

mod common;

use common::{check_close, device, floats, gpu_err, run};
use proptest::prelude::*;
use torchlet::loss::{CrossEntropyLoss, Loss, Reduction};
use torchlet::ops::activation::{
    leaky_relu_backward_input, leaky_relu_forward, relu_backward_input, relu_forward, sigmoid_backward_input,
    sigmoid_forward, tanh_backward_input, tanh_forward,
};
use torchlet::ops::geom::{ConvGeom, PaddingMode, PoolGeom};
use torchlet::ops::linear::{linear_backward_input, linear_backward_weight, linear_forward};
use torchlet::ops::pool::{decode_index, encode_index, max_pool_backward_input, max_pool_forward};
use torchlet::optim::{Optimizer, Sgd};
use torchlet::Shape;
use torchlet_gpu::{ops as gpu, Device, Error};

#[test]
fn conv_with_other_padding_modes_is_unsupported() {
    let Some(dev) = device() else { return };
    let g = ConvGeom {
        n: 1,
        c_in: 1,
        c_out: 1,
        groups: 1,
        input: [1, 4, 4],
        output: [1, 4, 4],
        kernel: [1, 3, 3],
        stride: [1; 3],
        dilation: [1; 3],
        pad: [0, 1, 1],
        mode: PaddingMode::Reflect,
        bias: false,
    };
    let mut y = vec![0.0; 16];
    let e = gpu::conv_forward(&dev, &g, &[0.0; 16], &[0.0; 9], &[], &mut y).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("padding_mode"), "{e}");
}

/// Shrunk proptest failure: along W (size 1), kernel 2, dilation 2, padding 1 reads positions
/// -1 and 1, neither in the input; the empty window's index (h * W + 1) aliases the next row's
/// element, where PyTorch and the CPU add its gradient. The GPU must do the same.
#[test]
fn max_pool_empty_window_index_aliases_like_the_cpu() {
    let Some(dev) = device() else { return };
    let g = PoolGeom {
        n: 1,
        c: 1,
        input: [1, 3, 1],
        output: [1, 3, 1],
        kernel: [1, 1, 2],
        stride: [1; 3],
        dilation: [1, 1, 2],
        pad: [0, 0, 1],
        count_include_pad: false,
    };
    max_pool_case(&dev, &g, 237281616530).unwrap();
}

fn max_pool_case(dev: &Device, g: &PoolGeom, seed: u64) -> Result<(), String> {
    let x = floats(seed, g.n * g.c * g.in_spatial());
    let y_len = g.n * g.c * g.out_spatial();
    let (mut y_cpu, mut idx_cpu) = (vec![0.0; y_len], vec![0.0; y_len]);
    max_pool_forward(g, &x, &mut y_cpu, &mut idx_cpu);
    let idx_cpu: Vec<u32> = idx_cpu.iter().map(|&v| decode_index(v) as u32).collect();
    let (mut y_gpu, mut idx_gpu) = (vec![f32::NAN; y_len], vec![u32::MAX; y_len]);
    gpu::max_pool_forward(dev, g, &x, &mut y_gpu, &mut idx_gpu).map_err(gpu_err)?;
    // A window with no input position (dilation and padding) gives -inf on both.
    check_close("max_pool_forward y", &y_gpu, &y_cpu)?;
    if idx_gpu != idx_cpu {
        return Err(format!("max_pool_forward indices: GPU {idx_gpu:?} vs CPU {idx_cpu:?}"));
    }

    let gy = floats(seed ^ 1, y_len);
    let gx0 = floats(seed ^ 2, x.len());
    let idx_f: Vec<f32> = idx_cpu.iter().map(|&i| encode_index(i as usize)).collect();
    let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
    max_pool_backward_input(g, &idx_f, &gy, &mut gx_cpu);
    gpu::max_pool_backward_input(dev, g, &idx_cpu, &gy, &mut gx_gpu).map_err(gpu_err)?;
    check_close("max_pool_backward_input gx", &gx_gpu, &gx_cpu)
}

#[test]
fn linear_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (1usize..=6, 1usize..=40, 1usize..=16, any::<bool>(), any::<u64>()),
        |(rows, in_f, out_f, bias, seed)| {
            let x = floats(seed, rows * in_f);
            let w = floats(seed ^ 1, out_f * in_f);
            let b = if bias { floats(seed ^ 2, out_f) } else { vec![] };
            let mut y_cpu = vec![0.0; rows * out_f];
            linear_forward(rows, in_f, out_f, &x, &w, &b, &mut y_cpu);
            let mut y_gpu = vec![f32::NAN; rows * out_f];
            gpu::linear_forward(&dev, rows, in_f, out_f, &x, &w, &b, &mut y_gpu).map_err(gpu_err)?;
            check_close("linear_forward y", &y_gpu, &y_cpu)?;

            let gy = floats(seed ^ 3, rows * out_f);
            let gx0 = floats(seed ^ 4, x.len());
            let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
            linear_backward_input(rows, in_f, out_f, &w, &gy, &mut gx_cpu);
            gpu::linear_backward_input(&dev, rows, in_f, out_f, &w, &gy, &mut gx_gpu).map_err(gpu_err)?;
            check_close("linear_backward_input gx", &gx_gpu, &gx_cpu)?;

            let gw0 = floats(seed ^ 5, w.len());
            let gb0 = floats(seed ^ 6, b.len());
            let (mut gw_cpu, mut gb_cpu, mut gw_gpu, mut gb_gpu) = (gw0.clone(), gb0.clone(), gw0, gb0);
            linear_backward_weight(rows, in_f, out_f, &x, &gy, &mut gw_cpu, &mut gb_cpu);
            gpu::linear_backward_weight(&dev, rows, in_f, out_f, &x, &gy, &mut gw_gpu, &mut gb_gpu).map_err(gpu_err)?;
            check_close("linear_backward_weight gw", &gw_gpu, &gw_cpu)?;
            check_close("linear_backward_weight gb", &gb_gpu, &gb_cpu)
        },
    );
}

#[test]
fn relu_matches_cpu() {
    let Some(dev) = device() else { return };
    run((1usize..=300, any::<u64>()), |(len, seed)| {
        let x = floats(seed, len);
        let mut y_cpu = vec![0.0; len];
        relu_forward(&x, &mut y_cpu);
        let mut y_gpu = vec![f32::NAN; len];
        gpu::relu_forward(&dev, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("relu_forward y", &y_gpu, &y_cpu)?;
        let gy = floats(seed ^ 1, len);
        let gx0 = floats(seed ^ 2, len);
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
        relu_backward_input(&y_cpu, &gy, &mut gx_cpu);
        gpu::relu_backward_input(&dev, &y_cpu, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("relu_backward_input gx", &gx_gpu, &gx_cpu)
    });
}

#[test]
fn leaky_relu_sigmoid_tanh_match_cpu() {
    let Some(dev) = device() else { return };
    run((1usize..=300, -0.5f32..0.5, any::<u64>()), |(len, slope, seed)| {
        // Inputs in [-12, 12): both saturated tails of sigmoid and tanh, and the middle.
        let x: Vec<f32> = floats(seed, len).iter().map(|v| v * 12.0).collect();
        let gy = floats(seed ^ 1, len);
        let gx0 = floats(seed ^ 2, len);
        let mut y_cpu = vec![0.0; len];
        let mut y_gpu = vec![f32::NAN; len];
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0.clone());

        leaky_relu_forward(slope, &x, &mut y_cpu);
        gpu::leaky_relu_forward(&dev, slope, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("leaky_relu_forward y", &y_gpu, &y_cpu)?;
        leaky_relu_backward_input(slope, &x, &gy, &mut gx_cpu);
        gpu::leaky_relu_backward_input(&dev, slope, &x, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("leaky_relu_backward_input gx", &gx_gpu, &gx_cpu)?;

        sigmoid_forward(&x, &mut y_cpu);
        gpu::sigmoid_forward(&dev, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("sigmoid_forward y", &y_gpu, &y_cpu)?;
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0.clone());
        sigmoid_backward_input(&y_cpu, &gy, &mut gx_cpu);
        gpu::sigmoid_backward_input(&dev, &y_cpu, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("sigmoid_backward_input gx", &gx_gpu, &gx_cpu)?;

        tanh_forward(&x, &mut y_cpu);
        gpu::tanh_forward(&dev, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("tanh_forward y", &y_gpu, &y_cpu)?;
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
        tanh_backward_input(&y_cpu, &gy, &mut gx_cpu);
        gpu::tanh_backward_input(&dev, &y_cpu, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("tanh_backward_input gx", &gx_gpu, &gx_cpu)
    });
}

#[test]
fn cross_entropy_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (
            1usize..=300,
            2usize..=12,
            prop::sample::select(vec![0.0f32, 0.1]),
            any::<bool>(),
            any::<u64>(),
        ),
        |(n, classes, smoothing, mean, seed)| {
            let logits: Vec<f32> = floats(seed, n * classes).iter().map(|v| v * 4.0).collect();
            let mut rng = torchlet::Rng::new(seed ^ 1);
            let labels: Vec<u32> = (0..n).map(|_| rng.below(classes as u32)).collect();
            let loss = CrossEntropyLoss::new().label_smoothing(smoothing).reduction(if mean {
                Reduction::Mean
            } else {
                Reduction::Sum
            });
            let mut g_cpu = vec![0.0; n * classes];
            let l_cpu = loss
                .loss_and_grad(&logits, n, Shape::features(classes), &labels, &mut g_cpu)
                .map_err(|e| e.to_string())?;
            let mut g_gpu = vec![f32::NAN; n * classes];
            let (l_gpu, correct) =
                gpu::cross_entropy(&dev, &loss, &logits, classes, &labels, &mut g_gpu).map_err(gpu_err)?;
            check_close("cross_entropy loss", &[l_gpu], &[l_cpu])?;
            check_close("cross_entropy grad", &g_gpu, &g_cpu)?;
            let expected = (0..n)
                .filter(|&r| {
                    let row = &logits[r * classes..(r + 1) * classes];
                    let arg = (0..classes).fold(0, |a, k| if row[k] > row[a] { k } else { a });
                    arg == labels[r] as usize
                })
                .count() as u32;
            if correct != expected {
                return Err(format!("cross_entropy correct: GPU {correct} vs CPU {expected}"));
            }
            Ok(())
        },
    );
}

#[test]
fn cross_entropy_refuses_bad_labels_and_configurations() {
    let Some(dev) = device() else { return };
    let mut g = vec![0.0; 6];
    let e = gpu::cross_entropy(&dev, &CrossEntropyLoss::new(), &[0.0; 6], 3, &[0, 3], &mut g).unwrap_err();
    assert_eq!(
        e,
        Error::Core(torchlet::Error::LabelOutOfRange {
            index: 1,
            label: 3,
            classes: 3
        })
    );
    // Class weights are supported (gpu/tests/ops_loss_optim.rs); a wrong length is refused.
    let weights = [1.0, 2.0];
    let e = gpu::cross_entropy(
        &dev,
        &CrossEntropyLoss::new().weight(&weights),
        &[0.0; 6],
        3,
        &[0, 1],
        &mut g,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::BufferLength {
                buffer: torchlet::Buffer::Weight,
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn sgd_matches_cpu() {
    let Some(dev) = device() else { return };
    let hyper = (
        prop::sample::select(vec![0.0f32, 0.9]),
        prop::sample::select(vec![0.0f32, 0.1]),
        prop::sample::select(vec![0.0f32, 1e-3]),
        any::<bool>(),
    );
    run(
        (1usize..=200, hyper, any::<u64>()),
        |(len, (momentum, dampening, wd, nesterov), seed)| {
            let nesterov = nesterov && momentum > 0.0 && dampening == 0.0;
            let make = || {
                Sgd::new(0.05)
                    .momentum(momentum)
                    .dampening(dampening)
                    .weight_decay(wd)
                    .nesterov(nesterov)
            };
            let (mut cpu, mut gpu_opt) = (make(), make());
            let p0 = floats(seed, len);
            let (mut p_cpu, mut p_gpu) = (p0.clone(), p0);
            let mut s_cpu = vec![0.0; cpu.state_len(len)];
            let mut s_gpu = s_cpu.clone();
            for step in 0..3u64 {
                let grads = floats(seed ^ (step + 1), len);
                cpu.step(&mut p_cpu, &grads, &mut s_cpu).map_err(|e| e.to_string())?;
                gpu::sgd_step(&dev, &mut gpu_opt, &mut p_gpu, &grads, &mut s_gpu).map_err(gpu_err)?;
                check_close(&format!("sgd params after step {}", step + 1), &p_gpu, &p_cpu)?;
                check_close(&format!("sgd momentum after step {}", step + 1), &s_gpu, &s_cpu)?;
            }
            if gpu_opt.steps() != 3 {
                return Err(format!("sgd counted {} steps, expected 3", gpu_opt.steps()));
            }
            Ok(())
        },
    );
}

#[test]
fn sgd_refuses_invalid_hyper_parameters_like_the_core() {
    let Some(dev) = device() else { return };
    let mut sgd = Sgd::new(-1.0);
    let mut p = vec![1.0; 4];
    let e = gpu::sgd_step(&dev, &mut sgd, &mut p, &[0.5; 4], &mut []).unwrap_err();
    assert!(
        matches!(e, Error::Core(torchlet::Error::InvalidArgument { name: "lr", .. })),
        "{e}"
    );
    assert_eq!(p, vec![1.0; 4]);
    assert_eq!(sgd.steps(), 0);
}
