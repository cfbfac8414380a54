//! The pooling family's problems: valid random geometry (shared by the CPU and GPU tests) and
//! naive references written directly from PyTorch's documented definitions.

// Geometry is `[D, H, W]` arrays read side by side, indexed by the dim.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use torchlet::ops::geom::{window_out, PoolGeom};
use torchlet::ops::pool::AdaptiveGeom;

/// Every output index `(plane, [od, oh, ow], flat)` in row-major order.
pub fn outputs(planes: usize, out: [usize; 3]) -> impl Iterator<Item = (usize, [usize; 3], usize)> {
    let per = out[0] * out[1] * out[2];
    (0..planes * per).map(move |flat| {
        let (p, r) = (flat / per, flat % per);
        (p, [r / (out[1] * out[2]), r / out[2] % out[1], r % out[2]], flat)
    })
}

/// The input positions of a dilated window along one dim: `o * s - p + k * d` for `k < kernel`,
/// keeping those inside `[0, input)`.
pub fn window_positions(o: usize, input: usize, kernel: usize, s: usize, d: usize, p: usize) -> Vec<usize> {
    (0..kernel)
        .map(|k| (o * s + k * d) as isize - p as isize)
        .filter(|&i| i >= 0 && (i as usize) < input)
        .map(|i| i as usize)
        .collect()
}

/// Max pool: `(y, argmax)`; the first maximum in scan order wins; `None` for an empty window.
pub fn ref_max_pool(g: &PoolGeom, x: &[f32]) -> Vec<Option<(f32, usize)>> {
    let [_, ih, iw] = g.input;
    outputs(g.n * g.c, g.output)
        .map(|(p, o, _)| {
            let pos: Vec<Vec<usize>> = (0..3)
                .map(|d| window_positions(o[d], g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad[d]))
                .collect();
            let mut best: Option<(f32, usize)> = None;
            for &a in &pos[0] {
                for &b in &pos[1] {
                    for &c in &pos[2] {
                        let at = (a * ih + b) * iw + c;
                        let v = x[p * g.in_spatial() + at];
                        if best.is_none_or(|(m, _)| v > m) {
                            best = Some((v, at));
                        }
                    }
                }
            }
            best
        })
        .collect()
}

/// Avg pool with PyTorch's divisor: positions `o * s - p + k`, `k < kernel`; those before
/// `input + pad` count in `pool_size`, those inside the input are summed (and counted when
/// `count_include_pad` is false).
pub fn ref_avg_pool(g: &PoolGeom, x: &[f32]) -> Vec<f32> {
    let [_, ih, iw] = g.input;
    outputs(g.n * g.c, g.output)
        .map(|(p, o, _)| {
            let mut pool_size = 1usize;
            let mut real: Vec<Vec<usize>> = Vec::new();
            for d in 0..3 {
                let pos: Vec<isize> = (0..g.kernel[d])
                    .map(|k| (o[d] * g.stride[d] + k) as isize - g.pad[d] as isize)
                    .collect();
                pool_size *= pos.iter().filter(|&&i| i < (g.input[d] + g.pad[d]) as isize).count();
                real.push(
                    pos.iter()
                        .filter(|&&i| i >= 0 && (i as usize) < g.input[d])
                        .map(|&i| i as usize)
                        .collect(),
                );
            }
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for &a in &real[0] {
                for &b in &real[1] {
                    for &c in &real[2] {
                        sum += x[p * g.in_spatial() + (a * ih + b) * iw + c] as f64;
                        count += 1;
                    }
                }
            }
            let divisor = if g.count_include_pad { pool_size } else { count };
            (sum / divisor as f64) as f32
        })
        .collect()
}

/// Adaptive window of output `i`: `[floor(i * in / out), ceil((i + 1) * in / out))`, in floats.
pub fn adaptive_window(i: usize, input: usize, output: usize) -> std::ops::Range<usize> {
    let start = (i as f64 * input as f64 / output as f64).floor() as usize;
    let end = ((i + 1) as f64 * input as f64 / output as f64).ceil() as usize;
    start..end
}

/// Adaptive pools: `(mean, max, argmax)` of each window.
pub fn ref_adaptive(n: usize, c: usize, input: [usize; 3], output: [usize; 3], x: &[f32]) -> Vec<(f32, f32, usize)> {
    let in_sp = input.iter().product::<usize>();
    outputs(n * c, output)
        .map(|(p, o, _)| {
            let (mut sum, mut count, mut best, mut at) = (0.0f64, 0usize, f32::NEG_INFINITY, usize::MAX);
            for a in adaptive_window(o[0], input[0], output[0]) {
                for b in adaptive_window(o[1], input[1], output[1]) {
                    for c in adaptive_window(o[2], input[2], output[2]) {
                        let i = (a * input[1] + b) * input[2] + c;
                        let v = x[p * in_sp + i];
                        sum += v as f64;
                        count += 1;
                        if at == usize::MAX || v > best {
                            (best, at) = (v, i);
                        }
                    }
                }
            }
            ((sum / count as f64) as f32, best, at)
        })
        .collect()
}

/// Per-dim parameters `(input, kernel, stride, dilation, pad draw)`.
pub type DimDraw = (usize, usize, usize, usize, usize);

/// Builds a pool geometry from draws, as PyTorch validates it: `pad <= kernel / 2`, the output
/// at least 1. Max pools additionally need every window to touch the input (see
/// `max_pool_window_without_input_matches_pytorch_and_backward_skips_it` in the kernel's unit
/// tests for the other case).
pub fn build_geom(
    dims: usize,
    n: usize,
    c: usize,
    draws: [DimDraw; 3],
    ceil: bool,
    cip: bool,
    max: bool,
) -> Option<PoolGeom> {
    let mut g = PoolGeom {
        n,
        c,
        input: [1; 3],
        output: [1; 3],
        kernel: [1; 3],
        stride: [1; 3],
        dilation: [1; 3],
        pad: [0; 3],
        count_include_pad: cip,
    };
    for d in 3 - dims..3 {
        let (input, kernel, stride, dilation, pad) = draws[d];
        g.input[d] = input;
        g.kernel[d] = kernel;
        g.stride[d] = stride;
        g.dilation[d] = if max { dilation } else { 1 };
        g.pad[d] = pad % (kernel / 2 + 1);
        g.output[d] = window_out(input, kernel, stride, g.pad[d], g.pad[d], g.dilation[d], ceil)?;
        if max
            && (0..g.output[d]).any(|o| window_positions(o, input, kernel, stride, g.dilation[d], g.pad[d]).is_empty())
        {
            return None;
        }
    }
    Some(g)
}

/// A valid max (`max`) or average pooling window with 1 to 3 spatial dims: PyTorch's rules,
/// `ceil_mode` and `count_include_pad` drawn; max windows all touch the input.
pub fn pool_geom(max: bool) -> impl Strategy<Value = PoolGeom> {
    let dim = |max_in: usize| (1..=max_in, 1..=4usize, 1..=3usize, 1..=2usize, 0..=2usize);
    (
        1..=3usize,
        1..=2usize,
        1..=2usize,
        [dim(4), dim(5), dim(6)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter_map("invalid pool geometry", move |(dims, n, c, draws, ceil, cip)| {
            build_geom(dims, n, c, draws, ceil, cip, max)
        })
}

/// An adaptive pooling problem `(n, geometry)`: 1 to 3 spatial dims, outputs smaller than,
/// equal to or larger than the inputs (windows then overlap or repeat).
pub fn adaptive_geom() -> impl Strategy<Value = (usize, AdaptiveGeom)> {
    (
        1usize..=3,
        1usize..=2,
        1usize..=3,
        [
            (1usize..=7, 1usize..=5),
            (1usize..=7, 1usize..=5),
            (1usize..=8, 1usize..=5),
        ],
    )
        .prop_map(|(dims, n, c, ds)| {
            let (mut input, mut output) = ([1; 3], [1; 3]);
            for (d, &(i, o)) in ds.iter().enumerate().skip(3 - dims) {
                input[d] = i;
                output[d] = o;
            }
            (n, AdaptiveGeom { c, input, output })
        })
}
