//! BatchNorm, Dropout, average and adaptive pooling and the merges on the GPU against the
//! core's CPU kernels of the same names, on random valid configurations (proptest, few cases,
//! small sizes: lavapipe runs about 3 GFLOP/s), forward and every gradient, within 1e-4
//! relative. Gradients are accumulated onto random prefilled values, so the `+=` contract is
//! tested too.
//!
//! Dropout's mask cannot match the CPU's bit for bit (the GPU hashes a seed and the element
//! index, the CPU draws from a sequential generator), so its test checks what the mask must
//! be: factors 0 or `1 / (1 - p)`, a kept fraction within 5 sigma of `1 - p`, the output
//! `x * mask` and a backward pass that uses the same mask, as the core's backward does.

mod common;

use common::{check_close, device, floats, gpu_err, run};
use proptest::prelude::*;
use torchlet::ops::batchnorm::{
    batch_norm_backward_eval, batch_norm_backward_train, batch_norm_forward_eval, batch_norm_forward_train,
    batch_norm_state_len, BnGeom,
};
use torchlet::ops::dropout::dropout_backward_input;
use torchlet::ops::merge::{add_backward_input, add_forward, concat_backward_input, concat_forward};
use torchlet_gpu::{ops as gpu, Device, Error};

/// A BatchNorm layer over `[N, C, S]` with at least 2 values per channel (PyTorch's rule for
/// batch statistics), every option drawn.
fn bn_geom() -> impl Strategy<Value = BnGeom> {
    (
        1usize..=4,
        1usize..=4,
        1usize..=6,
        prop_oneof![Just(1e-5f32), Just(1e-3)],
        prop_oneof![Just(None), (0.05f32..0.95).prop_map(Some)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter_map(
            "batch statistics need 2 values per channel",
            |(n, c, spatial, eps, momentum, affine, track_running_stats)| {
                (n * spatial >= 2).then_some(BnGeom {
                    n,
                    c,
                    spatial,
                    eps,
                    momentum,
                    affine,
                    track_running_stats,
                })
            },
        )
}

/// Running statistics as a trained layer has them: any mean, a positive variance, a whole
/// number of tracked batches.
fn bn_state(g: &BnGeom, seed: u64) -> Vec<f32> {
    if !g.track_running_stats {
        return Vec::new();
    }
    let mut s = floats(seed, batch_norm_state_len(g.c));
    for v in &mut s[g.c..2 * g.c] {
        *v = v.abs() + 0.1;
    }
    s[2 * g.c] = (seed % 5) as f32;
    s
}

fn bn_case(dev: &Device, g: &BnGeom, seed: u64) -> Result<(), String> {
    let len = g.n * g.c * g.spatial;
    let pc = if g.affine { g.c } else { 0 };
    let x = floats(seed, len);
    let (weight, bias) = (floats(seed ^ 1, pc), floats(seed ^ 2, pc));
    let state0 = bn_state(g, seed ^ 3);

    // Training forward: output, saved statistics and the running-statistics update.
    let (mut cpu_state, mut gpu_state) = (state0.clone(), state0.clone());
    let (mut cpu_saved, mut gpu_saved) = (vec![0.0; 2 * g.c], vec![7.0; 2 * g.c]);
    let (mut cpu_y, mut gpu_y) = (vec![0.0; len], vec![0.0; len]);
    batch_norm_forward_train(g, &x, &weight, &bias, &mut cpu_state, &mut cpu_saved, &mut cpu_y);
    gpu::batch_norm_forward_train(dev, g, &x, &weight, &bias, &mut gpu_state, &mut gpu_saved, &mut gpu_y)
        .map_err(gpu_err)?;
    check_close("batch_norm_forward_train y", &gpu_y, &cpu_y)?;
    check_close("batch_norm_forward_train saved", &gpu_saved, &cpu_saved)?;
    check_close("batch_norm_forward_train state", &gpu_state, &cpu_state)?;

    // Training backward, through the batch statistics, onto prefilled gradients.
    let gy = floats(seed ^ 4, len);
    let gx0 = floats(seed ^ 5, len);
    let (gw0, gb0) = (floats(seed ^ 6, pc), floats(seed ^ 7, pc));
    let (mut cgx, mut cgw, mut cgb) = (gx0.clone(), gw0.clone(), gb0.clone());
    let (mut ggx, mut ggw, mut ggb) = (gx0.clone(), gw0.clone(), gb0.clone());
    batch_norm_backward_train(g, &x, &weight, &cpu_saved, &gy, &mut cgx, &mut cgw, &mut cgb);
    gpu::batch_norm_backward_train(dev, g, &x, &weight, &cpu_saved, &gy, &mut ggx, &mut ggw, &mut ggb)
        .map_err(gpu_err)?;
    check_close("batch_norm_backward_train gx", &ggx, &cgx)?;
    check_close("batch_norm_backward_train gweight", &ggw, &cgw)?;
    check_close("batch_norm_backward_train gbias", &ggb, &cgb)?;

    if g.track_running_stats {
        // Eval forward and backward with the running statistics.
        let (mut cpu_y, mut gpu_y) = (vec![0.0; len], vec![0.0; len]);
        batch_norm_forward_eval(g, &x, &weight, &bias, &state0, &mut cpu_y);
        gpu::batch_norm_forward_eval(dev, g, &x, &weight, &bias, &state0, &mut gpu_y).map_err(gpu_err)?;
        check_close("batch_norm_forward_eval y", &gpu_y, &cpu_y)?;
        let (mut cgx, mut cgw, mut cgb) = (gx0.clone(), gw0.clone(), gb0.clone());
        let (mut ggx, mut ggw, mut ggb) = (gx0, gw0, gb0);
        batch_norm_backward_eval(g, &x, &weight, &state0, &gy, &mut cgx, &mut cgw, &mut cgb);
        gpu::batch_norm_backward_eval(dev, g, &x, &weight, &state0, &gy, &mut ggx, &mut ggw, &mut ggb)
            .map_err(gpu_err)?;
        check_close("batch_norm_backward_eval gx", &ggx, &cgx)?;
        check_close("batch_norm_backward_eval gweight", &ggw, &cgw)?;
        check_close("batch_norm_backward_eval gbias", &ggb, &cgb)?;
    }
    Ok(())
}

#[test]
fn batch_norm_matches_cpu() {
    let Some(dev) = device() else { return };
    run((bn_geom(), any::<u64>()), |(g, seed)| bn_case(&dev, &g, seed));
}

#[test]
fn batch_norm_with_many_values_per_channel_matches_cpu() {
    // More values per channel than the 256 invocations of a workgroup: each one sums a
    // strided share before the tree.
    let Some(dev) = device() else { return };
    let g = BnGeom {
        n: 3,
        c: 2,
        spatial: 300,
        eps: 1e-5,
        momentum: None,
        affine: true,
        track_running_stats: true,
    };
    bn_case(&dev, &g, 11).unwrap();
}

#[test]
fn dropout_masks_have_the_right_factors_and_rate() {
    let Some(dev) = device() else { return };
    run(
        (
            prop_oneof![Just(0.0f32), Just(1.0), 0.05f32..0.95],
            1000usize..4000,
            any::<u64>(),
        ),
        |(p, len, seed)| {
            let x = floats(seed, len);
            let (mut y, mut mask) = (vec![9.0; len], vec![9.0; len]);
            gpu::dropout_forward(&dev, p, seed, &x, &mut y, &mut mask).map_err(gpu_err)?;
            let keep = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
            if let Some(m) = mask.iter().find(|&&m| m != 0.0 && m != keep) {
                return Err(format!("mask factor {m}, expected 0 or {keep}"));
            }
            for i in 0..len {
                if y[i] != x[i] * mask[i] {
                    return Err(format!("y[{i}] = {} but x * mask = {}", y[i], x[i] * mask[i]));
                }
            }
            let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64;
            let (q, n) = (1.0 - f64::from(p), len as f64);
            let sigma = (q * (1.0 - q) / n).sqrt();
            if (kept / n - q).abs() > 5.0 * sigma + 1e-12 {
                return Err(format!("kept {kept} of {n}, expected {q} (sigma {sigma})"));
            }
            // The same seed gives the same mask; another seed another one (0 < p < 1).
            let (mut y2, mut mask2) = (vec![0.0; len], vec![0.0; len]);
            gpu::dropout_forward(&dev, p, seed, &x, &mut y2, &mut mask2).map_err(gpu_err)?;
            if mask2 != mask {
                return Err("the same seed drew another mask".into());
            }
            gpu::dropout_forward(&dev, p, seed.wrapping_add(1), &x, &mut y2, &mut mask2).map_err(gpu_err)?;
            if p > 0.0 && p < 1.0 && mask2 == mask {
                return Err("another seed drew the same mask".into());
            }
            // Backward with the forward's mask, onto prefilled gradients.
            let gy = floats(seed ^ 1, len);
            let mut cgx = floats(seed ^ 2, len);
            let mut ggx = cgx.clone();
            dropout_backward_input(&mask, &gy, &mut cgx);
            gpu::dropout_backward_input(&dev, &mask, &gy, &mut ggx).map_err(gpu_err)?;
            check_close("dropout_backward_input gx", &ggx, &cgx)
        },
    );
}

#[test]
fn add_matches_cpu() {
    let Some(dev) = device() else { return };
    run((1usize..300, any::<u64>()), |(len, seed)| {
        let (a, b) = (floats(seed, len), floats(seed ^ 1, len));
        let (mut cy, mut gy_) = (vec![0.0; len], vec![0.0; len]);
        add_forward(&a, &b, &mut cy);
        gpu::add_forward(&dev, &a, &b, &mut gy_).map_err(gpu_err)?;
        check_close("add_forward y", &gy_, &cy)?;
        let gy = floats(seed ^ 2, len);
        let (mut cga, mut cgb) = (floats(seed ^ 3, len), floats(seed ^ 4, len));
        let (mut gga, mut ggb) = (cga.clone(), cgb.clone());
        add_backward_input(&gy, &mut cga, &mut cgb);
        gpu::add_backward_input(&dev, &gy, &mut gga, &mut ggb).map_err(gpu_err)?;
        check_close("add_backward_input ga", &gga, &cga)?;
        check_close("add_backward_input gb", &ggb, &cgb)
    });
}

#[test]
fn concat_matches_cpu() {
    let Some(dev) = device() else { return };
    run(
        (1usize..=3, 1usize..=40, 1usize..=40, any::<u64>()),
        |(n, la, lb, seed)| {
            let (a, b) = (floats(seed, n * la), floats(seed ^ 1, n * lb));
            let ol = n * (la + lb);
            let (mut cy, mut gy_) = (vec![0.0; ol], vec![0.0; ol]);
            concat_forward(n, la, lb, &a, &b, &mut cy);
            gpu::concat_forward(&dev, n, la, lb, &a, &b, &mut gy_).map_err(gpu_err)?;
            check_close("concat_forward y", &gy_, &cy)?;
            let gy = floats(seed ^ 2, ol);
            let (mut cga, mut cgb) = (floats(seed ^ 3, n * la), floats(seed ^ 4, n * lb));
            let (mut gga, mut ggb) = (cga.clone(), cgb.clone());
            concat_backward_input(n, la, lb, &gy, &mut cga, &mut cgb);
            gpu::concat_backward_input(&dev, n, la, lb, &gy, &mut gga, &mut ggb).map_err(gpu_err)?;
            check_close("concat_backward_input ga", &gga, &cga)?;
            check_close("concat_backward_input gb", &ggb, &cgb)
        },
    );
}

#[test]
fn bad_inputs_are_refused_with_what_was_expected() {
    let Some(dev) = device() else { return };
    let g = BnGeom {
        n: 1,
        c: 2,
        spatial: 1,
        eps: 1e-5,
        momentum: Some(0.1),
        affine: true,
        track_running_stats: true,
    };
    let mut state = vec![0.0, 0.0, 1.0, 1.0, 0.0];
    let (mut saved, mut y) = (vec![0.0; 4], vec![0.0; 2]);
    // One value per channel: no batch statistics, as PyTorch.
    let e = gpu::batch_norm_forward_train(
        &dev,
        &g,
        &[1.0, 2.0],
        &[1.0; 2],
        &[0.0; 2],
        &mut state,
        &mut saved,
        &mut y,
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than 1 value per channel"), "{e}");
    assert_eq!(state, [0.0, 0.0, 1.0, 1.0, 0.0], "nothing was updated");
    // A state buffer of the wrong length.
    let g2 = BnGeom { n: 2, ..g };
    let e =
        gpu::batch_norm_forward_eval(&dev, &g2, &[0.0; 4], &[1.0; 2], &[0.0; 2], &[0.0; 4], &mut [0.0; 4]).unwrap_err();
    assert!(matches!(e, Error::Core(torchlet::Error::BufferLength { .. })), "{e}");
    // The eval kernels need running statistics.
    let g3 = BnGeom {
        track_running_stats: false,
        ..g2
    };
    let e = gpu::batch_norm_forward_eval(&dev, &g3, &[0.0; 4], &[1.0; 2], &[0.0; 2], &[], &mut [0.0; 4]).unwrap_err();
    assert!(e.to_string().contains("track_running_stats"), "{e}");
    // Dropout probabilities outside [0, 1].
    for p in [-0.1, 1.5, f32::NAN] {
        let e = gpu::dropout_forward(&dev, p, 0, &[1.0; 4], &mut [0.0; 4], &mut [0.0; 4]).unwrap_err();
        assert!(e.to_string().contains("[0, 1]"), "{e}");
    }
    // Lengths.
    assert!(gpu::add_forward(&dev, &[1.0; 3], &[1.0; 2], &mut [0.0; 3]).is_err());
    assert!(gpu::concat_forward(&dev, 2, 3, 1, &[0.0; 6], &[0.0; 3], &mut [0.0; 8]).is_err());
    assert!(gpu::adaptive_avg_pool_forward(&dev, 1, 1, [1, 1, 4], [1, 1, 0], &[0.0; 4], &mut []).is_err());
}
