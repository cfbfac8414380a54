//! The GPU kernels of softmax, log-softmax, padding (Pad2d and the padded input of convolutions
//! with padding modes reflect, replicate and circular), transposed convolution, max unpooling
//! and bilinear against the core's CPU kernels of the same name, on random valid
//! configurations (proptest, few cases, small sizes), forward and every gradient, within 1e-4
//! relative. Gradients are accumulated onto random prefilled values, so `+=` is tested too.

mod common;

use common::{check_close, device, floats, gpu_err, run};
use proptest::prelude::*;
use torchlet::ops::bilinear::{bilinear_backward_input, bilinear_backward_weight, bilinear_forward};
use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::ops::pad::{pad2d_backward_input, pad2d_forward};
use torchlet::ops::pool::{encode_index, max_unpool_backward_input, max_unpool_forward};
use torchlet::ops::softmax::{
    log_softmax_backward_input, log_softmax_forward, softmax_backward_input, softmax_forward,
};
use torchlet_gpu::{ops as gpu, Error};

const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Replicate,
    PaddingMode::Circular,
];

/// `[outer, axis, inner]` views, the batch folded into `outer`.
fn softmax_view() -> impl Strategy<Value = (usize, usize, usize, u64)> {
    (1usize..=4, 1usize..=7, 1usize..=3, any::<u64>())
}

#[test]
fn softmax_matches_cpu() {
    let Some(dev) = device() else { return };
    run(softmax_view(), |(outer, axis, inner, seed)| {
        // Spread the logits so some lines are dominated by one entry.
        let x: Vec<f32> = floats(seed, outer * axis * inner).iter().map(|v| v * 8.0).collect();
        let mut y_cpu = vec![0.0; x.len()];
        softmax_forward(outer, axis, inner, &x, &mut y_cpu);
        let mut y_gpu = vec![f32::NAN; x.len()];
        gpu::softmax_forward(&dev, outer, axis, inner, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("softmax_forward y", &y_gpu, &y_cpu)?;

        let gy = floats(seed ^ 1, x.len());
        let gx0 = floats(seed ^ 2, x.len());
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
        softmax_backward_input(outer, axis, inner, &y_cpu, &gy, &mut gx_cpu);
        gpu::softmax_backward_input(&dev, outer, axis, inner, &y_cpu, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("softmax_backward_input gx", &gx_gpu, &gx_cpu)
    });
}

#[test]
fn log_softmax_matches_cpu() {
    let Some(dev) = device() else { return };
    run(softmax_view(), |(outer, axis, inner, seed)| {
        let x: Vec<f32> = floats(seed, outer * axis * inner).iter().map(|v| v * 8.0).collect();
        let mut y_cpu = vec![0.0; x.len()];
        log_softmax_forward(outer, axis, inner, &x, &mut y_cpu);
        let mut y_gpu = vec![f32::NAN; x.len()];
        gpu::log_softmax_forward(&dev, outer, axis, inner, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("log_softmax_forward y", &y_gpu, &y_cpu)?;

        let gy = floats(seed ^ 1, x.len());
        let gx0 = floats(seed ^ 2, x.len());
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
        log_softmax_backward_input(outer, axis, inner, &y_cpu, &gy, &mut gx_cpu);
        gpu::log_softmax_backward_input(&dev, outer, axis, inner, &y_cpu, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("log_softmax_backward_input gx", &gx_gpu, &gx_cpu)
    });
}

/// A Pad2d configuration the planner accepts: reflect padding smaller than the input.
fn pad2d_case() -> impl Strategy<Value = (usize, usize, usize, usize, [usize; 4], PaddingMode, u64)> {
    (
        1usize..=2,
        1usize..=2,
        1usize..=5,
        1usize..=5,
        [0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3],
        0usize..4,
        any::<u64>(),
    )
        .prop_filter_map(
            "reflect padding must be smaller than the input",
            |(n, c, h, w, p, m, seed)| {
                let mode = MODES[m];
                let [l, r, t, b] = p;
                if mode == PaddingMode::Reflect && (l.max(r) >= w || t.max(b) >= h) {
                    return None;
                }
                Some((n, c, h, w, p, mode, seed))
            },
        )
}

#[test]
fn pad2d_matches_cpu() {
    let Some(dev) = device() else { return };
    run(pad2d_case(), |(n, c, h, w, padding, mode, seed)| {
        let [l, r, t, b] = padding;
        let x = floats(seed, n * c * h * w);
        let y_len = n * c * (h + t + b) * (w + l + r);
        let mut y_cpu = vec![0.0; y_len];
        pad2d_forward(n, c, h, w, padding, mode, &x, &mut y_cpu);
        let mut y_gpu = vec![f32::NAN; y_len];
        gpu::pad2d_forward(&dev, n, c, h, w, padding, mode, &x, &mut y_gpu).map_err(gpu_err)?;
        check_close("pad2d_forward y", &y_gpu, &y_cpu)?;

        let gy = floats(seed ^ 1, y_len);
        let gx0 = floats(seed ^ 2, x.len());
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
        pad2d_backward_input(n, c, h, w, padding, mode, &gy, &mut gx_cpu);
        gpu::pad2d_backward_input(&dev, n, c, h, w, padding, mode, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("pad2d_backward_input gx", &gx_gpu, &gx_cpu)
    });
}

/// Indices drawn over a little more than the output plane: duplicates (the later wins) and
/// out-of-range indices (skipped) both occur.
#[test]
fn max_unpool_matches_cpu() {
    let Some(dev) = device() else { return };
    let case = (1usize..=2, 1usize..=3, 1usize..=6, 1usize..=12, any::<u64>());
    run(case, |(n, c, in_sp, out_sp, seed)| {
        let x = floats(seed, n * c * in_sp);
        let idx: Vec<u32> = floats(seed ^ 1, x.len())
            .iter()
            .map(|v| ((v + 1.0) * 0.5 * (out_sp + 2) as f32) as u32)
            .collect();
        let idx_cpu: Vec<f32> = idx.iter().map(|&i| encode_index(i as usize)).collect();
        let y_len = n * c * out_sp;
        let mut y_cpu = vec![0.0; y_len];
        max_unpool_forward(n, c, in_sp, out_sp, &x, &idx_cpu, &mut y_cpu);
        let mut y_gpu = vec![f32::NAN; y_len];
        gpu::max_unpool_forward(&dev, n, c, in_sp, out_sp, &x, &idx, &mut y_gpu).map_err(gpu_err)?;
        check_close("max_unpool_forward y", &y_gpu, &y_cpu)?;

        let gy = floats(seed ^ 2, y_len);
        let gx0 = floats(seed ^ 3, x.len());
        let (mut gx_cpu, mut gx_gpu) = (gx0.clone(), gx0);
        max_unpool_backward_input(n, c, in_sp, out_sp, &idx_cpu, &gy, &mut gx_cpu);
        gpu::max_unpool_backward_input(&dev, n, c, in_sp, out_sp, &idx, &gy, &mut gx_gpu).map_err(gpu_err)?;
        check_close("max_unpool_backward_input gx", &gx_gpu, &gx_cpu)
    });
}

#[test]
fn bilinear_matches_cpu() {
    let Some(dev) = device() else { return };
    let case = (
        1usize..=4,
        1usize..=4,
        1usize..=4,
        1usize..=3,
        any::<bool>(),
        any::<u64>(),
    );
    run(case, |(rows, in1, in2, out, bias, seed)| {
        let x1 = floats(seed, rows * in1);
        let x2 = floats(seed ^ 1, rows * in2);
        let w = floats(seed ^ 2, out * in1 * in2);
        let b = if bias { floats(seed ^ 3, out) } else { vec![] };
        let mut y_cpu = vec![0.0; rows * out];
        bilinear_forward(rows, in1, in2, out, &x1, &x2, &w, &b, &mut y_cpu);
        let mut y_gpu = vec![f32::NAN; rows * out];
        gpu::bilinear_forward(&dev, rows, in1, in2, out, &x1, &x2, &w, &b, &mut y_gpu).map_err(gpu_err)?;
        check_close("bilinear_forward y", &y_gpu, &y_cpu)?;

        let gy = floats(seed ^ 4, rows * out);
        let (g10, g20) = (floats(seed ^ 5, x1.len()), floats(seed ^ 6, x2.len()));
        let (mut g1_cpu, mut g2_cpu, mut g1_gpu, mut g2_gpu) = (g10.clone(), g20.clone(), g10, g20);
        bilinear_backward_input(rows, in1, in2, out, &x1, &x2, &w, &gy, &mut g1_cpu, &mut g2_cpu);
        gpu::bilinear_backward_input(&dev, rows, in1, in2, out, &x1, &x2, &w, &gy, &mut g1_gpu, &mut g2_gpu)
            .map_err(gpu_err)?;
        check_close("bilinear_backward_input gx1", &g1_gpu, &g1_cpu)?;
        check_close("bilinear_backward_input gx2", &g2_gpu, &g2_cpu)?;

        let (gw0, gb0) = (floats(seed ^ 7, w.len()), floats(seed ^ 8, b.len()));
        let (mut gw_cpu, mut gb_cpu, mut gw_gpu, mut gb_gpu) = (gw0.clone(), gb0.clone(), gw0, gb0);
        bilinear_backward_weight(rows, in1, in2, out, &x1, &x2, &gy, &mut gw_cpu, &mut gb_cpu);
        gpu::bilinear_backward_weight(&dev, rows, in1, in2, out, &x1, &x2, &gy, &mut gw_gpu, &mut gb_gpu)
            .map_err(gpu_err)?;
        check_close("bilinear_backward_weight gw", &gw_gpu, &gw_cpu)?;
        check_close("bilinear_backward_weight gb", &gb_gpu, &gb_cpu)
    });
}

/// Bad arguments are errors naming what was expected, never panics.
#[test]
fn bad_arguments_are_refused() {
    let Some(dev) = device() else { return };
    let mut y = vec![0.0; 5];
    let e = gpu::softmax_forward(&dev, 1, 2, 3, &[0.0; 6], &mut y).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(torchlet::Error::BufferLength {
                expected: 6,
                found: 5,
                ..
            })
        ),
        "{e}"
    );
    let mut y = vec![0.0; 4];
    let e = gpu::pad_forward(
        &dev,
        1,
        1,
        [1, 1, 0],
        [0, 0, 1],
        [1, 1, 4],
        PaddingMode::Reflect,
        &[],
        &mut y,
    )
    .unwrap_err();
    assert!(e.to_string().contains("non-empty input"), "{e}");
    let g = ConvGeom {
        n: 1,
        c_in: 1,
        c_out: 1,
        groups: 1,
        input: [1, 1, 2],
        output: [1, 1, 3],
        kernel: [1, 1, 2],
        stride: [1; 3],
        dilation: [1; 3],
        pad: [0; 3],
        mode: PaddingMode::Reflect,
        bias: false,
    };
    let mut y = vec![0.0; 3];
    let e = gpu::conv_transpose_forward(&dev, &g, &[0.0; 2], &[0.0; 2], &[], &mut y).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    let mut y = vec![0.0; 2];
    let e = gpu::bilinear_forward(&dev, 2, 1, 1, 0, &[0.0; 2], &[0.0; 2], &[], &[], &mut y).unwrap_err();
    assert!(e.to_string().contains("out_features"), "{e}");
    let mut y = vec![0.0; 4];
    let e = gpu::max_unpool_forward(&dev, 1, 1, 2, 4, &[0.0; 2], &[0], &mut y).unwrap_err();
    assert!(matches!(e, Error::Core(torchlet::Error::BufferLength { .. })), "{e}");
}

/// Every mode on one row, against PyTorch's documented results for `[1, 2, 3]`.
#[test]
fn pad2d_modes_on_a_row() {
    let Some(dev) = device() else { return };
    let x = [1.0, 2.0, 3.0];
    let cases = [
        (PaddingMode::Zeros, [0.0, 0.0, 1.0, 2.0, 3.0, 0.0]),
        (PaddingMode::Reflect, [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]),
        (PaddingMode::Replicate, [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]),
        (PaddingMode::Circular, [2.0, 3.0, 1.0, 2.0, 3.0, 1.0]),
    ];
    for (mode, want) in cases {
        let mut y = [9.0; 6];
        gpu::pad2d_forward(&dev, 1, 1, 1, 3, [2, 1, 0, 0], mode, &x, &mut y).unwrap();
        assert_eq!(y, want, "{mode:?}");
    }
}
