//! The 1-d and 3-d layers (BatchNorm3d, AdaptiveAvg/MaxPool3d, ...) on the GPU against
//! [`torchlet::Network`] on the CPU. Each layer sits between a convolution (so its backward
//! decides the convolution's gradients) and a classifier; both networks start from the same
//! parameters and take the same SGD steps, and the loss, every gradient, the parameters and
//! the running statistics agree within 1e-4 relative after each step, then the eval forward.
//! Geometry with several values in every spatial dim, so that the 3-d index arithmetic of
//! the shaders is exercised.

mod common;

use common::{assert_close, device, floats, gpu_err, run};
use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::{Network, Plan, Rng, Shape};
use torchlet_gpu::{ops as gpu, Device, GpuNetwork};

const CAP: usize = 8;

/// Trains `layers` on the CPU and the GPU for `steps` SGD steps of `batch` samples and compares
/// everything after each; then the eval forward.
fn train_both(dev: &Device, layers: &[Layer], input: Shape, batch: usize, steps: usize) {
    let plan = Plan::<CAP>::training(layers, input, batch);
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(11).unwrap();
    let mut gpu = GpuNetwork::new(dev, &plan, cpu.params()).unwrap();
    let loss = CrossEntropyLoss::new();
    let mk = || Sgd::new(0.05).momentum(0.9);
    let (mut sgd_cpu, mut sgd_gpu) = (mk(), mk());
    let mut momentum = vec![0.0; sgd_cpu.state_len(p)];
    let in_len = input.numel();
    let mut rng = Rng::new(5);
    for step in 0..steps {
        let images = floats(step as u64 + 1, batch * in_len);
        let labels: Vec<u32> = (0..batch).map(|_| rng.below(10)).collect();
        cpu.zero_grad();
        cpu.forward(&images).unwrap();
        let loss_cpu = cpu.backward(&loss, &labels).unwrap();
        cpu.step(&mut sgd_cpu, &mut momentum).unwrap();
        let stats = gpu.train_step(&images, &labels, &loss, &mut sgd_gpu).unwrap();
        let what = |w: &str| format!("{}: step {}: {w}", plan.nodes()[1].op_name, step + 1);
        assert_close(&what("loss"), &[stats.loss], &[loss_cpu]);
        assert_close(&what("gradients"), &gpu.grads().unwrap(), cpu.grads());
        assert_close(&what("parameters"), &gpu.params().unwrap(), cpu.params());
        assert_close(&what("running statistics"), &gpu.state().unwrap(), cpu.state());
    }
    cpu.eval();
    let images = floats(99, batch * in_len);
    let cpu_out = cpu.forward(&images).unwrap().to_vec();
    assert_close("eval forward", &gpu.forward(&images).unwrap(), &cpu_out);
}

#[test]
fn batch_norm3d_matches_cpu() {
    let Some(dev) = device() else { return };
    static NET: [Layer; 4] = [conv3d(2, 3, 2), batch_norm3d(3), flatten(), linear(3 * 2 * 3 * 4, 10)];
    train_both(&dev, &NET, Shape::cdhw(2, 3, 4, 5), 3, 3);
    static NO_AFFINE: [Layer; 4] = [
        conv3d(2, 3, 2),
        batch_norm3d(3).affine(false).momentum(None),
        flatten(),
        linear(3 * 2 * 3 * 4, 10),
    ];
    train_both(&dev, &NO_AFFINE, Shape::cdhw(2, 3, 4, 5), 2, 2);
}

#[test]
fn adaptive_pools3d_match_cpu() {
    let Some(dev) = device() else { return };
    static AVG: [Layer; 4] = [conv3d(2, 3, 2), adaptive_avg_pool3d(2, 3, 2), flatten(), linear(36, 10)];
    train_both(&dev, &AVG, Shape::cdhw(2, 4, 6, 4), 2, 2);
    static MAX: [Layer; 4] = [conv3d(2, 3, 2), adaptive_max_pool3d(3, 2, 4), flatten(), linear(72, 10)];
    train_both(&dev, &MAX, Shape::cdhw(2, 5, 4, 6), 2, 2);
}

#[test]
fn pads1d_and_3d_match_cpu() {
    let Some(dev) = device() else { return };
    static P3: [Layer; 7] = [
        conv3d(2, 2, 1),
        reflection_pad3d([1, 2, 0, 1, 2, 1]),
        replication_pad3d([2, 1, 1, 0, 1, 2]),
        circular_pad3d([1, 1, 2, 0, 0, 2]),
        zero_pad3d([1, 0, 2, 1, 0, 1]),
        flatten(),
        linear(2 * 12 * 11 * 13, 10),
    ];
    train_both(&dev, &P3, Shape::cdhw(2, 3, 4, 4), 2, 2);
    static P1: [Layer; 7] = [
        conv1d(2, 3, 1),
        reflection_pad1d([2, 1]),
        replication_pad1d([3, 1]),
        circular_pad1d([1, 2]),
        zero_pad1d([1, 2]),
        flatten(),
        linear(3 * 18, 10),
    ];
    train_both(&dev, &P1, Shape::cl(2, 5), 2, 2);
}

#[test]
fn conv_transpose1d_and_3d_match_cpu() {
    let Some(dev) = device() else { return };
    static T1: [Layer; 4] = [
        conv1d(2, 4, 1),
        conv_transpose1d(4, 6, 3)
            .stride(2)
            .padding(1)
            .output_padding(1)
            .groups(2),
        flatten(),
        linear(6 * 10, 10),
    ];
    train_both(&dev, &T1, Shape::cl(2, 5), 2, 2);
    static T3: [Layer; 4] = [
        conv3d(2, 2, 1),
        conv_transpose3d(2, 3, 1)
            .kernel_size_each(&[2, 3, 2])
            .stride_each(&[2, 1, 2])
            .padding_each(&[0, 1, 1])
            .dilation_each(&[1, 2, 1]),
        flatten(),
        linear(3 * 4 * 5 * 4, 10),
    ];
    train_both(&dev, &T3, Shape::cdhw(2, 2, 3, 3), 2, 2);
}

#[test]
fn max_unpool1d_and_3d_match_cpu() {
    let Some(dev) = device() else { return };
    static U1: [Layer; 5] = [
        conv1d(2, 3, 1),
        max_pool1d(2).return_indices(true),
        max_unpool1d(2),
        flatten(),
        linear(3 * 7, 10),
    ];
    train_both(&dev, &U1, Shape::cl(2, 7), 2, 2);
    static U3: [Layer; 5] = [
        conv3d(2, 2, 1),
        max_pool3d(2).return_indices(true),
        max_unpool3d(2),
        flatten(),
        linear(2 * 4 * 5 * 4, 10),
    ];
    train_both(&dev, &U3, Shape::cdhw(2, 4, 5, 4), 2, 2);
}

/// Channel dropout on the GPU: every plane is dropped or kept as a whole with factor 0 or
/// `1 / (1 - p)`, `y = x * mask`, the kept share of planes is `1 - p` within 5 sigma, and the
/// same seed gives the same mask. (The CPU draws its masks from another generator.)
#[test]
fn channel_dropout_masks_have_whole_planes_the_right_factors_and_rate() {
    use proptest::prelude::*;
    let Some(dev) = device() else { return };
    run(
        (
            prop_oneof![Just(0.0f32), Just(1.0), 0.05f32..0.95],
            1000usize..3000,
            1usize..6,
            any::<u64>(),
        ),
        |(p, planes, plane, seed)| {
            let len = planes * plane;
            let x = floats(seed, len);
            let (mut y, mut mask) = (vec![9.0; len], vec![9.0; len]);
            gpu::channel_dropout_forward(&dev, p, plane, seed, &x, &mut y, &mut mask).map_err(gpu_err)?;
            let keep = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
            for (k, m) in mask.chunks(plane).enumerate() {
                if m.iter().any(|&v| v != m[0]) || (m[0] != 0.0 && m[0] != keep) {
                    return Err(format!("plane {k}: mask {m:?}, expected all 0 or all {keep}"));
                }
            }
            if (0..len).any(|i| y[i] != x[i] * mask[i]) {
                return Err("y != x * mask".into());
            }
            let kept = mask.chunks(plane).filter(|m| m[0] != 0.0).count() as f64;
            let (q, n) = (1.0 - f64::from(p), planes as f64);
            let sigma = (q * (1.0 - q) / n).sqrt();
            if (kept / n - q).abs() > 5.0 * sigma + 1e-12 {
                return Err(format!("kept {kept} of {n} planes, expected {q} (sigma {sigma})"));
            }
            let (mut y2, mut mask2) = (vec![0.0; len], vec![0.0; len]);
            gpu::channel_dropout_forward(&dev, p, plane, seed, &x, &mut y2, &mut mask2).map_err(gpu_err)?;
            if mask2 != mask {
                return Err("the same seed drew another mask".into());
            }
            Ok(())
        },
    );
}

#[test]
fn channel_dropout_networks_match_cpu_at_p_0_and_1() {
    let Some(dev) = device() else { return };
    static D1: [Layer; 4] = [conv1d(2, 3, 1), dropout1d(0.0), flatten(), linear(3 * 5, 10)];
    train_both(&dev, &D1, Shape::cl(2, 5), 2, 2);
    static D2: [Layer; 4] = [conv2d(2, 3, 1), dropout2d(1.0), flatten(), linear(3 * 4 * 5, 10)];
    train_both(&dev, &D2, Shape::chw(2, 4, 5), 2, 2);
    static D3: [Layer; 4] = [conv3d(2, 3, 1), dropout3d(0.0), flatten(), linear(3 * 2 * 3 * 4, 10)];
    train_both(&dev, &D3, Shape::cdhw(2, 2, 3, 4), 2, 2);
}

/// In a GPU training step, Dropout2d (p = 0.5) zeroes whole channels of its input and
/// doubles the rest.
#[test]
fn dropout2d_network_drops_whole_channels_on_the_gpu() {
    let Some(dev) = device() else { return };
    static NET: [Layer; 4] = [conv2d(2, 16, 1), dropout2d(0.5), flatten(), linear(16 * 9, 10)];
    let plan = Plan::<CAP>::training(&NET, Shape::chw(2, 3, 3), 4);
    let p = plan.param_len();
    let (mut params, mut grads) = (vec![0.0; p], vec![0.0; p]);
    let (mut state, mut arena) = (vec![0.0; plan.state_len()], vec![0.0; plan.arena_len()]);
    let mut cpu = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    cpu.init_params(3).unwrap();
    let mut gpu = GpuNetwork::new(&dev, &plan, cpu.params()).unwrap();
    let x = floats(7, 4 * 2 * 9);
    let mut sgd = Sgd::new(0.0);
    gpu.train_step(&x, &[1, 2, 3, 4], &CrossEntropyLoss::new(), &mut sgd)
        .unwrap();
    let (before, after) = (gpu.layer_output(0).unwrap(), gpu.layer_output(1).unwrap());
    let (mut zero, mut kept) = (0, 0);
    for (a, b) in after.chunks(9).zip(before.chunks(9)) {
        if a.iter().all(|&v| v == 0.0) {
            zero += 1;
        } else {
            kept += 1;
            for (u, v) in a.iter().zip(b) {
                assert!(*u == 2.0 * v, "kept channel {u} from {v}");
            }
        }
    }
    assert!(zero > 0 && kept > 0, "{zero} channels dropped, {kept} kept");
}

#[test]
fn channel_shuffle_matches_cpu() {
    let Some(dev) = device() else { return };
    static S2: [Layer; 5] = [
        conv2d(2, 6, 1),
        channel_shuffle(3),
        conv2d(6, 6, 1).groups(2),
        flatten(),
        linear(6 * 12, 10),
    ];
    train_both(&dev, &S2, Shape::chw(2, 3, 4), 2, 2);
    static S3: [Layer; 4] = [
        conv3d(2, 4, 1),
        channel_shuffle(2),
        flatten(),
        linear(4 * 2 * 2 * 3, 10),
    ];
    train_both(&dev, &S3, Shape::cdhw(2, 2, 2, 3), 2, 2);
}

#[test]
fn upsample_matches_cpu() {
    let Some(dev) = device() else { return };
    static N2: [Layer; 4] = [conv2d(2, 3, 1), upsample_scale(2.0), flatten(), linear(3 * 6 * 8, 10)];
    train_both(&dev, &N2, Shape::chw(2, 3, 4), 2, 2);
    static N57: [Layer; 4] = [conv2d(2, 3, 1), upsample_size(5, 7), flatten(), linear(3 * 5 * 7, 10)];
    train_both(&dev, &N57, Shape::chw(2, 3, 4), 2, 2);
    static B57: [Layer; 4] = [
        conv2d(2, 3, 1),
        upsample_size(5, 7).bilinear(),
        flatten(),
        linear(3 * 5 * 7, 10),
    ];
    train_both(&dev, &B57, Shape::chw(2, 3, 4), 2, 2);
    static BA: [Layer; 4] = [
        conv2d(2, 3, 1),
        upsample_scale(1.5).bilinear().align_corners(true),
        flatten(),
        linear(3 * 4 * 6, 10),
    ];
    train_both(&dev, &BA, Shape::chw(2, 3, 4), 2, 2);
    static B15: [Layer; 4] = [
        conv2d(2, 3, 1),
        upsample_scale(1.5).bilinear(),
        flatten(),
        linear(3 * 4 * 6, 10),
    ];
    train_both(&dev, &B15, Shape::chw(2, 3, 4), 2, 2);
}
