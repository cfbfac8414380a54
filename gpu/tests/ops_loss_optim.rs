//! Every loss and optimiser of the core on the GPU against the core's own functions, on random
//! valid configurations (proptest, few cases): for each loss `loss_and_grad` (value, gradient
//! and correct count), `forward` and `backward` with a random upstream gradient, under every
//! reduction and option (class weights, `ignore_index`, label smoothing, spatial targets,
//! `pos_weight`); for Adam, AdamW and AMSGrad several steps with and without weight decay,
//! parameters and state after each. Tolerance 1e-4 relative (see `common`).

mod common;

use common::{check_close, device, floats, gpu_err, run};
use proptest::prelude::*;
use torchlet::loss::{BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, Loss, MSELoss, NLLLoss, Reduction};
use torchlet::optim::{Adam, Optimizer};
use torchlet::{Rng, Shape};
use torchlet_gpu::{ops as gpu, Device, Error, GpuLoss, Target};

fn core_err(e: torchlet::Error) -> String {
    format!("core error: {e}")
}

/// [`check_close`], where a NaN on the CPU must be a NaN on the GPU too ('mean' over positions
/// that are all ignored divides 0 by 0, in PyTorch as in the core).
fn check(what: &str, gpu: &[f32], cpu: &[f32]) -> Result<(), String> {
    if let Some(i) = cpu.iter().zip(gpu).position(|(c, g)| c.is_nan() != g.is_nan()) {
        return Err(format!("{what}[{i}]: GPU {} vs CPU {}", gpu[i], cpu[i]));
    }
    let strip = |v: &[f32]| v.iter().map(|x| if x.is_nan() { 0.0 } else { *x }).collect::<Vec<_>>();
    check_close(what, &strip(gpu), &strip(cpu))
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop::sample::select(vec![Reduction::None, Reduction::Mean, Reduction::Sum])
}

/// A sample shape `[C, *spatial]` with 0, 1 or 2 spatial dims.
fn sample_shape() -> impl Strategy<Value = Shape> {
    (1usize..=6, 0usize..=2, 1usize..=4, 1usize..=3).prop_map(|(c, rank, a, b)| match rank {
        0 => Shape::features(c),
        1 => Shape::cl(c, a),
        _ => Shape::chw(c, a, b),
    })
}

/// `len` floats uniform in `[lo, hi)`.
fn uniform(seed: u64, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform(lo, hi)).collect()
}

/// The first maximal input over the classes at each non-ignored position equal to its label.
fn correct_count(input: &[f32], c: usize, s: usize, labels: &[u32], ignore: Option<u32>) -> u32 {
    let mut hits = 0;
    for (pos, &y) in labels.iter().enumerate() {
        if Some(y) == ignore {
            continue;
        }
        let (ni, si) = (pos / s, pos % s);
        let at = |k: usize| input[(ni * c + k) * s + si];
        let arg = (1..c).fold(0, |a, k| if at(k) > at(a) { k } else { a });
        hits += u32::from(arg == y as usize);
    }
    hits
}

/// Compares the three entry points of a class loss with the core's.
#[allow(clippy::too_many_arguments)]
fn compare_class_loss<L: Loss<Target = [u32]>>(
    dev: &Device,
    name: &str,
    cpu: &L,
    cpu_forward: impl Fn(&mut [f32]) -> torchlet::Result<()>,
    cpu_backward: impl Fn(&[f32], &mut [f32]) -> torchlet::Result<()>,
    gpu_loss: &GpuLoss<'_>,
    input: &[f32],
    n: usize,
    sample: Shape,
    labels: &[u32],
    ignore: Option<u32>,
    seed: u64,
) -> Result<(), String> {
    let c = sample.channels();
    let s = sample.numel() / c;
    let target = Target::Classes(labels);
    // loss_and_grad
    let mut g_cpu = vec![0.0; input.len()];
    let l_cpu = cpu
        .loss_and_grad(input, n, sample, labels, &mut g_cpu)
        .map_err(core_err)?;
    let mut g_gpu = vec![f32::NAN; input.len()];
    let (l_gpu, correct) = gpu::loss_and_grad(dev, gpu_loss, input, n, sample, target, &mut g_gpu).map_err(gpu_err)?;
    check(&format!("{name} loss_and_grad loss"), &[l_gpu], &[l_cpu])?;
    check(&format!("{name} loss_and_grad grad"), &g_gpu, &g_cpu)?;
    let expected = correct_count(input, c, s, labels, ignore);
    if correct != expected {
        return Err(format!("{name} correct: GPU {correct} vs CPU {expected}"));
    }
    // forward
    let out_len = if gpu_loss.reduction() == Reduction::None {
        n * s
    } else {
        1
    };
    let mut o_cpu = vec![0.0; out_len];
    cpu_forward(&mut o_cpu).map_err(core_err)?;
    let mut o_gpu = vec![f32::NAN; out_len];
    gpu::loss_forward(dev, gpu_loss, input, n, sample, target, &mut o_gpu).map_err(gpu_err)?;
    check(&format!("{name} forward"), &o_gpu, &o_cpu)?;
    // backward with a random upstream gradient
    let up = floats(seed ^ 0xb0b, out_len);
    let mut gi_cpu = vec![0.0; input.len()];
    cpu_backward(&up, &mut gi_cpu).map_err(core_err)?;
    let mut gi_gpu = vec![f32::NAN; input.len()];
    gpu::loss_backward(dev, gpu_loss, input, n, sample, target, &up, &mut gi_gpu).map_err(gpu_err)?;
    check(&format!("{name} backward"), &gi_gpu, &gi_cpu)
}

/// Random labels `[n * s]` below `c`, class weights and an ignored class, as drawn.
fn class_case(
    n: usize,
    sample: Shape,
    weighted: bool,
    ignore: bool,
    seed: u64,
) -> (Vec<u32>, Option<Vec<f32>>, Option<u32>) {
    let c = sample.channels();
    let s = sample.numel() / c;
    let mut rng = Rng::new(seed ^ 7);
    let labels: Vec<u32> = (0..n * s).map(|_| rng.below(c as u32)).collect();
    let weight = weighted.then(|| uniform(seed ^ 3, c, 0.5, 2.0));
    let ignore = ignore.then(|| rng.below(c as u32));
    (labels, weight, ignore)
}

#[test]
fn cross_entropy_with_every_option_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (
            (1usize..=40, sample_shape(), reduction()),
            (any::<bool>(), any::<bool>(), prop::sample::select(vec![0.0f32, 0.2])),
            any::<u64>(),
        ),
        |((n, sample, reduction), (weighted, ignore, smoothing), seed)| {
            let input: Vec<f32> = floats(seed, n * sample.numel()).iter().map(|v| v * 4.0).collect();
            let (labels, weight, ignore) = class_case(n, sample, weighted, ignore, seed);
            let mut loss = CrossEntropyLoss::new().reduction(reduction).label_smoothing(smoothing);
            if let Some(w) = &weight {
                loss = loss.weight(w);
            }
            if let Some(i) = ignore {
                loss = loss.ignore_index(i);
            }
            compare_class_loss(
                &dev,
                "cross_entropy",
                &loss,
                |out| loss.forward(&input, n, sample, &labels, out),
                |up, g| loss.backward(&input, n, sample, &labels, up, g),
                &loss.into(),
                &input,
                n,
                sample,
                &labels,
                ignore,
                seed,
            )
        },
    );
}

#[test]
fn nll_loss_with_every_option_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (
            (1usize..=40, sample_shape(), reduction()),
            (any::<bool>(), any::<bool>()),
            any::<u64>(),
        ),
        |((n, sample, reduction), (weighted, ignore), seed)| {
            // Log-probabilities, as after LogSoftmax: every term of the sum has the same sign.
            let input = uniform(seed, n * sample.numel(), -5.0, 0.0);
            let (labels, weight, ignore) = class_case(n, sample, weighted, ignore, seed);
            let mut loss = NLLLoss::new().reduction(reduction);
            if let Some(w) = &weight {
                loss = loss.weight(w);
            }
            if let Some(i) = ignore {
                loss = loss.ignore_index(i);
            }
            compare_class_loss(
                &dev,
                "nll_loss",
                &loss,
                |out| loss.forward(&input, n, sample, &labels, out),
                |up, g| loss.backward(&input, n, sample, &labels, up, g),
                &loss.into(),
                &input,
                n,
                sample,
                &labels,
                ignore,
                seed,
            )
        },
    );
}

/// Compares the three entry points of a loss of values with the core's.
#[allow(clippy::too_many_arguments)]
fn compare_value_loss<L: Loss<Target = [f32]>>(
    dev: &Device,
    name: &str,
    cpu: &L,
    cpu_forward: impl Fn(&mut [f32]) -> torchlet::Result<()>,
    cpu_backward: impl Fn(&[f32], &mut [f32]) -> torchlet::Result<()>,
    gpu_loss: &GpuLoss<'_>,
    input: &[f32],
    n: usize,
    sample: Shape,
    values: &[f32],
    seed: u64,
) -> Result<(), String> {
    let target = Target::Values(values);
    let mut g_cpu = vec![0.0; input.len()];
    let l_cpu = cpu
        .loss_and_grad(input, n, sample, values, &mut g_cpu)
        .map_err(core_err)?;
    let mut g_gpu = vec![f32::NAN; input.len()];
    let (l_gpu, correct) = gpu::loss_and_grad(dev, gpu_loss, input, n, sample, target, &mut g_gpu).map_err(gpu_err)?;
    check(&format!("{name} loss_and_grad loss"), &[l_gpu], &[l_cpu])?;
    check(&format!("{name} loss_and_grad grad"), &g_gpu, &g_cpu)?;
    if correct != 0 {
        return Err(format!("{name}: a loss of values counted {correct} correct"));
    }
    let out_len = if gpu_loss.reduction() == Reduction::None {
        input.len()
    } else {
        1
    };
    let mut o_cpu = vec![0.0; out_len];
    cpu_forward(&mut o_cpu).map_err(core_err)?;
    let mut o_gpu = vec![f32::NAN; out_len];
    gpu::loss_forward(dev, gpu_loss, input, n, sample, target, &mut o_gpu).map_err(gpu_err)?;
    check(&format!("{name} forward"), &o_gpu, &o_cpu)?;
    let up = floats(seed ^ 0xb0b, out_len);
    let mut gi_cpu = vec![0.0; input.len()];
    cpu_backward(&up, &mut gi_cpu).map_err(core_err)?;
    let mut gi_gpu = vec![f32::NAN; input.len()];
    gpu::loss_backward(dev, gpu_loss, input, n, sample, target, &up, &mut gi_gpu).map_err(gpu_err)?;
    check(&format!("{name} backward"), &gi_gpu, &gi_cpu)
}

#[test]
fn mse_and_l1_losses_match_cpu() {
    let Some(dev) = device() else { return };
    run(
        (1usize..=40, sample_shape(), reduction(), any::<u64>()),
        |(n, sample, reduction, seed)| {
            let len = n * sample.numel();
            let input: Vec<f32> = floats(seed, len).iter().map(|v| v * 3.0).collect();
            let mut values = floats(seed ^ 5, len);
            // Some exact ties: L1's gradient is 0 there.
            for i in (0..len).step_by(5) {
                values[i] = input[i];
            }
            let mse = MSELoss::new().reduction(reduction);
            compare_value_loss(
                &dev,
                "mse_loss",
                &mse,
                |out| mse.forward(&input, n, sample, &values, out),
                |up, g| mse.backward(&input, n, sample, &values, up, g),
                &mse.into(),
                &input,
                n,
                sample,
                &values,
                seed,
            )?;
            let l1 = L1Loss::new().reduction(reduction);
            compare_value_loss(
                &dev,
                "l1_loss",
                &l1,
                |out| l1.forward(&input, n, sample, &values, out),
                |up, g| l1.backward(&input, n, sample, &values, up, g),
                &l1.into(),
                &input,
                n,
                sample,
                &values,
                seed,
            )
        },
    );
}

#[test]
fn bce_loss_matches_cpu_including_saturated_probabilities() {
    let Some(dev) = device() else { return };
    run(
        (1usize..=40, sample_shape(), reduction(), any::<u64>()),
        |(n, sample, reduction, seed)| {
            let len = n * sample.numel();
            let mut input = uniform(seed, len, 0.0, 1.0);
            // Saturated probabilities hit the -100 clamp of both logarithms.
            for i in (0..len).step_by(7) {
                input[i] = if i % 2 == 0 { 0.0 } else { 1.0 };
            }
            let values = uniform(seed ^ 5, len, 0.0, 1.0);
            let bce = BCELoss::new().reduction(reduction);
            compare_value_loss(
                &dev,
                "bce_loss",
                &bce,
                |out| bce.forward(&input, n, sample, &values, out),
                |up, g| bce.backward(&input, n, sample, &values, up, g),
                &bce.into(),
                &input,
                n,
                sample,
                &values,
                seed,
            )
        },
    );
}

#[test]
fn bce_with_logits_loss_with_pos_weight_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (1usize..=40, sample_shape(), reduction(), any::<bool>(), any::<u64>()),
        |(n, sample, reduction, weighted, seed)| {
            let len = n * sample.numel();
            let input: Vec<f32> = floats(seed, len).iter().map(|v| v * 20.0).collect();
            let values = uniform(seed ^ 5, len, 0.0, 1.0);
            let pos_weight = uniform(seed ^ 9, sample.last(), 0.25, 4.0);
            let mut loss = BCEWithLogitsLoss::new().reduction(reduction);
            if weighted {
                loss = loss.pos_weight(&pos_weight);
            }
            compare_value_loss(
                &dev,
                "bce_with_logits_loss",
                &loss,
                |out| loss.forward(&input, n, sample, &values, out),
                |up, g| loss.backward(&input, n, sample, &values, up, g),
                &loss.into(),
                &input,
                n,
                sample,
                &values,
                seed,
            )
        },
    );
}

#[test]
fn losses_refuse_what_the_core_refuses() {
    let Some(dev) = device() else { return };
    let sample = Shape::features(3);
    let mut g = vec![0.0; 6];
    let input = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6];
    // A label out of range is named; the ignored index may be anything.
    let ce = CrossEntropyLoss::new();
    let e = gpu::loss_and_grad(&dev, &ce.into(), &input, 2, sample, Target::Classes(&[0, 3]), &mut g).unwrap_err();
    assert_eq!(
        e,
        Error::Core(torchlet::Error::LabelOutOfRange {
            index: 1,
            label: 3,
            classes: 3
        })
    );
    let ignoring = CrossEntropyLoss::new().ignore_index(7);
    gpu::loss_and_grad(
        &dev,
        &ignoring.into(),
        &input,
        2,
        sample,
        Target::Classes(&[0, 7]),
        &mut g,
    )
    .unwrap();
    assert_eq!(&g[3..], &[0.0; 3], "an ignored row has no gradient");
    // Class weights of the wrong length, as the core says it.
    let w = [1.0f32; 2];
    let e = gpu::loss_and_grad(
        &dev,
        &NLLLoss::new().weight(&w).into(),
        &input,
        2,
        sample,
        Target::Classes(&[0, 1]),
        &mut g,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::BufferLength {
                buffer: torchlet::Buffer::Weight,
                expected: 3,
                found: 2
            })
        ),
        "{e}"
    );
    // The wrong kind of target.
    let e = gpu::loss_and_grad(
        &dev,
        &MSELoss::new().into(),
        &input,
        2,
        sample,
        Target::Classes(&[0, 1]),
        &mut g,
    )
    .unwrap_err();
    assert!(e.to_string().contains("Target::Values"), "{e}");
    // BCELoss on something that is not a probability, as the core.
    let bad = [0.5f32, 1.5, 0.5, 0.5, 0.5, 0.5];
    let e = gpu::loss_and_grad(
        &dev,
        &BCELoss::new().into(),
        &bad,
        2,
        sample,
        Target::Values(&[0.0; 6]),
        &mut g,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Core(torchlet::Error::InvalidArgument { name: "input", .. })),
        "{e}"
    );
    // Label smoothing outside [0, 1].
    let e = gpu::loss_and_grad(
        &dev,
        &CrossEntropyLoss::new().label_smoothing(1.5).into(),
        &input,
        2,
        sample,
        Target::Classes(&[0, 1]),
        &mut g,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::InvalidArgument {
                name: "label_smoothing",
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn adam_adamw_and_amsgrad_match_cpu_over_several_steps() {
    let Some(dev) = device() else { return };
    let hyper = (
        prop::sample::select(vec![1e-3f32, 0.05]),
        prop::sample::select(vec![(0.9f32, 0.999f32), (0.8, 0.99)]),
        prop::sample::select(vec![1e-8f32, 1e-3]),
        prop::sample::select(vec![0.0f32, 1e-2]),
        any::<bool>(),
        any::<bool>(),
    );
    run(
        (1usize..=200, hyper, any::<u64>()),
        |(len, (lr, (b1, b2), eps, wd, amsgrad, decoupled), seed)| {
            let make = || {
                Adam::new(lr)
                    .betas(b1, b2)
                    .eps(eps)
                    .weight_decay(wd)
                    .amsgrad(amsgrad)
                    .decoupled_weight_decay(decoupled)
            };
            let (mut cpu, mut gpu_opt) = (make(), make());
            let p0 = floats(seed, len);
            let (mut p_cpu, mut p_gpu) = (p0.clone(), p0);
            let mut s_cpu = vec![0.0; cpu.state_len(len)];
            let mut s_gpu = s_cpu.clone();
            for step in 0..4u64 {
                // Gradients of varied scale, so the second moment and AMSGrad's maximum move.
                let scale = [1.0f32, 0.1, 2.0, 0.01][step as usize];
                let grads: Vec<f32> = floats(seed ^ (step + 1), len).iter().map(|g| g * scale).collect();
                cpu.step(&mut p_cpu, &grads, &mut s_cpu).map_err(core_err)?;
                gpu::adam_step(&dev, &mut gpu_opt, &mut p_gpu, &grads, &mut s_gpu).map_err(gpu_err)?;
                check(&format!("adam params after step {}", step + 1), &p_gpu, &p_cpu)?;
                check(&format!("adam state after step {}", step + 1), &s_gpu, &s_cpu)?;
            }
            if gpu_opt.steps() != 4 {
                return Err(format!("adam counted {} steps, expected 4", gpu_opt.steps()));
            }
            Ok(())
        },
    );
}

#[test]
fn adam_refuses_invalid_hyper_parameters_and_lengths_like_the_core() {
    let Some(dev) = device() else { return };
    let mut adam = Adam::new(1e-3).betas(1.0, 0.999);
    let mut p = vec![1.0; 4];
    let mut state = vec![0.0; 8];
    let e = gpu::adam_step(&dev, &mut adam, &mut p, &[0.5; 4], &mut state).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::InvalidArgument { name: "betas[0]", .. })
        ),
        "{e}"
    );
    assert_eq!((p.as_slice(), adam.steps()), (&[1.0; 4][..], 0));
    // AMSGrad needs three buffers.
    let mut ams = Adam::new(1e-3).amsgrad(true);
    let e = gpu::adam_step(&dev, &mut ams, &mut p, &[0.5; 4], &mut state).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::BufferLength {
                buffer: torchlet::Buffer::OptimizerState,
                expected: 12,
                found: 8
            })
        ),
        "{e}"
    );
    assert_eq!(ams.steps(), 0);
}

/// Shrunk from a proptest failure: 'mean' over positions that are all ignored is 0 / 0 = NaN
/// on the CPU (and in PyTorch); the GPU must say NaN too, with a zero gradient.
#[test]
fn mean_over_only_ignored_positions_is_nan_as_on_the_cpu() {
    let Some(dev) = device() else { return };
    let sample = Shape::features(3);
    let input = [-1.0f32, -2.0, -0.5, -0.1, -3.0, -1.5];
    let labels = [2u32, 2];
    for loss in [
        GpuLoss::from(NLLLoss::new().ignore_index(2)),
        GpuLoss::from(CrossEntropyLoss::new().ignore_index(2)),
    ] {
        let mut g = vec![f32::NAN; 6];
        let (l, correct) =
            gpu::loss_and_grad(&dev, &loss, &input, 2, sample, Target::Classes(&labels), &mut g).unwrap();
        assert!(l.is_nan(), "{}: {l}", loss.name());
        assert_eq!((g, correct), (vec![0.0; 6], 0), "{}", loss.name());
    }
    let cpu = NLLLoss::new().ignore_index(2);
    let mut g = vec![0.0; 6];
    assert!(cpu.loss_and_grad(&input, 2, sample, &labels, &mut g).unwrap().is_nan());
}
