//! Pooling kernels (`torchlet::ops::pool`): PyTorch fixtures for the tricky cases, property tests
//! against naive loop-nest references over valid geometry, and finite-difference gradients.
//!
//! Fixtures: `tools/fixtures/pool.py` -> `tests/fixtures/pool.json` (PyTorch, float32, CPU).

// Geometry is `[D, H, W]` arrays read side by side, indexed by the dim.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use serde_json::Value;
use torchlet::ops::geom::{window_out, PoolGeom};
use torchlet::ops::pool::*;
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, rand_vec, weighted_sum};

// ---------------------------------------------------------------------------------------------
// Fixture helpers
// ---------------------------------------------------------------------------------------------

/// `[N, C, *spatial]` as `(N, C, [D, H, W])` with leading 1s.
fn split_shape(v: &Value) -> (usize, usize, [usize; 3]) {
    let s: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let mut sp = [1; 3];
    sp[3 - (s.len() - 2)..].copy_from_slice(&s[2..]);
    (s[0], s[1], sp)
}

/// A PyTorch size argument (an int or a list of `dims` ints) as `[D, H, W]`, leading dims `fill`.
fn param3(v: &Value, dims: usize, fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    for d in 0..dims {
        out[3 - dims + d] = match v {
            Value::Array(a) => a[d].as_u64().unwrap() as usize,
            n => n.as_u64().unwrap() as usize,
        };
    }
    out
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect()
}

fn decoded(v: &[f32]) -> Vec<usize> {
    v.iter().map(|&i| decode_index(i)).collect()
}

/// The [`PoolGeom`] of a max/avg pool fixture case; also checks that the planner's
/// [`window_out`] gives PyTorch's output size.
fn fixture_geom(case: &Value, max: bool) -> PoolGeom {
    let dims = case["dims"].as_u64().unwrap() as usize;
    let (n, c, input) = split_shape(&case["shape"]);
    let (_, _, output) = split_shape(&case["out_shape"]);
    let kernel = param3(&case["kernel"], dims, 1);
    let stride = param3(&case["stride"], dims, 1);
    let pad = param3(&case["padding"], dims, 0);
    let dilation = if max {
        param3(&case["dilation"], dims, 1)
    } else {
        [1; 3]
    };
    let ceil = case["ceil_mode"].as_bool().unwrap();
    for d in 0..3 {
        let out = window_out(input[d], kernel[d], stride[d], pad[d], pad[d], dilation[d], ceil);
        assert_eq!(out, Some(output[d]), "{}: window_out in dim {d}", case["name"]);
    }
    PoolGeom {
        n,
        c,
        input,
        output,
        kernel,
        stride,
        dilation,
        pad,
        count_include_pad: case.get("count_include_pad").and_then(Value::as_bool).unwrap_or(true),
    }
}

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

fn cases(kind: &str) -> Vec<Value> {
    let f = load_fixture("pool.json");
    let v = f[kind].as_array().unwrap_or_else(|| panic!("no {kind} cases")).clone();
    assert!(!v.is_empty());
    v
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn max_pool_matches_pytorch() {
    for case in cases("max_pool") {
        let name = case["name"].as_str().unwrap();
        let g = fixture_geom(&case, true);
        let (x, gy) = (floats(&case["x"]), floats(&case["gy"]));
        let mut y = vec![0.0; gy.len()];
        let mut idx = vec![0.0; gy.len()];
        max_pool_forward(&g, &x, &mut y, &mut idx);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), RTOL, ATOL);
        assert_eq!(decoded(&idx), ints(&case["indices"]), "{name}: indices");
        let mut gx = vec![0.0; x.len()];
        max_pool_backward_input(&g, &idx, &gy, &mut gx);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), RTOL, ATOL);
    }
}

#[test]
fn avg_pool_matches_pytorch() {
    for case in cases("avg_pool") {
        let name = case["name"].as_str().unwrap();
        let g = fixture_geom(&case, false);
        let (x, gy) = (floats(&case["x"]), floats(&case["gy"]));
        let mut y = vec![0.0; gy.len()];
        avg_pool_forward(&g, &x, &mut y);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), RTOL, ATOL);
        let mut gx = vec![0.0; x.len()];
        avg_pool_backward_input(&g, &gy, &mut gx);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), RTOL, ATOL);
    }
}

#[test]
fn adaptive_avg_pool_matches_pytorch() {
    for case in cases("adaptive_avg") {
        let name = case["name"].as_str().unwrap();
        let (n, c, input) = split_shape(&case["shape"]);
        let (_, _, output) = split_shape(&case["out_shape"]);
        let dims = case["dims"].as_u64().unwrap() as usize;
        assert_eq!(param3(&case["output_size"], dims, 1), output, "{name}");
        let (x, gy) = (floats(&case["x"]), floats(&case["gy"]));
        let mut y = vec![0.0; gy.len()];
        adaptive_avg_pool_forward(n, c, input, output, &x, &mut y);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), RTOL, ATOL);
        let mut gx = vec![0.0; x.len()];
        adaptive_avg_pool_backward_input(n, c, input, output, &gy, &mut gx);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), RTOL, ATOL);
    }
}

#[test]
fn adaptive_max_pool_matches_pytorch() {
    for case in cases("adaptive_max") {
        let name = case["name"].as_str().unwrap();
        let (n, c, input) = split_shape(&case["shape"]);
        let (_, _, output) = split_shape(&case["out_shape"]);
        let (x, gy) = (floats(&case["x"]), floats(&case["gy"]));
        let mut y = vec![0.0; gy.len()];
        let mut idx = vec![0.0; gy.len()];
        adaptive_max_pool_forward(n, c, input, output, &x, &mut y, &mut idx);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), RTOL, ATOL);
        assert_eq!(decoded(&idx), ints(&case["indices"]), "{name}: indices");
        let mut gx = vec![0.0; x.len()];
        adaptive_max_pool_backward_input(n, c, input, output, &idx, &gy, &mut gx);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), RTOL, ATOL);
    }
}

#[test]
fn max_unpool_matches_pytorch() {
    for case in cases("max_unpool") {
        let name = case["name"].as_str().unwrap();
        let (n, c, input) = split_shape(&case["shape"]);
        let (_, _, output) = split_shape(&case["out_shape"]);
        let (in_sp, out_sp) = (input.iter().product(), output.iter().product());
        let x = floats(&case["x"]);
        let idx: Vec<f32> = ints(&case["indices"]).into_iter().map(encode_index).collect();
        let gy = floats(&case["gy"]);
        let mut y = vec![f32::NAN; gy.len()];
        max_unpool_forward(n, c, in_sp, out_sp, &x, &idx, &mut y);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), RTOL, ATOL);
        let mut gx = vec![0.0; x.len()];
        max_unpool_backward_input(n, c, in_sp, out_sp, &idx, &gy, &mut gx);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), RTOL, ATOL);
    }
}

/// The unpool fixture with overlapping windows must actually contain a duplicate index, or it
/// would not test PyTorch's gather-style backward (every duplicate receives the gradient).
#[test]
fn unpool_fixture_has_duplicate_indices() {
    let case = cases("max_unpool")
        .into_iter()
        .find(|c| c["name"].as_str().unwrap().contains("overlapping"))
        .unwrap();
    let (n, c, input) = split_shape(&case["shape"]);
    let per_plane = input.iter().product::<usize>();
    let idx = ints(&case["indices"]);
    let dup = (0..n * c).any(|p| {
        let mut v = idx[p * per_plane..(p + 1) * per_plane].to_vec();
        v.sort_unstable();
        v.windows(2).any(|w| w[0] == w[1])
    });
    assert!(dup);
}

// ---------------------------------------------------------------------------------------------
// Naive references, written directly from PyTorch's documented definitions
// ---------------------------------------------------------------------------------------------

/// Every output index `(plane, [od, oh, ow], flat)` in row-major order.
fn outputs(planes: usize, out: [usize; 3]) -> impl Iterator<Item = (usize, [usize; 3], usize)> {
    let per = out[0] * out[1] * out[2];
    (0..planes * per).map(move |flat| {
        let (p, r) = (flat / per, flat % per);
        (p, [r / (out[1] * out[2]), r / out[2] % out[1], r % out[2]], flat)
    })
}

/// The input positions of a dilated window along one dim: `o * s - p + k * d` for `k < kernel`,
/// keeping those inside `[0, input)`.
fn window_positions(o: usize, input: usize, kernel: usize, s: usize, d: usize, p: usize) -> Vec<usize> {
    (0..kernel)
        .map(|k| (o * s + k * d) as isize - p as isize)
        .filter(|&i| i >= 0 && (i as usize) < input)
        .map(|i| i as usize)
        .collect()
}

/// Max pool: `(y, argmax)`; the first maximum in scan order wins; `None` for an empty window.
fn ref_max_pool(g: &PoolGeom, x: &[f32]) -> Vec<Option<(f32, usize)>> {
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
fn ref_avg_pool(g: &PoolGeom, x: &[f32]) -> Vec<f32> {
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
fn adaptive_window(i: usize, input: usize, output: usize) -> std::ops::Range<usize> {
    let start = (i as f64 * input as f64 / output as f64).floor() as usize;
    let end = ((i + 1) as f64 * input as f64 / output as f64).ceil() as usize;
    start..end
}

/// Adaptive pools: `(mean, max, argmax)` of each window.
fn ref_adaptive(n: usize, c: usize, input: [usize; 3], output: [usize; 3], x: &[f32]) -> Vec<(f32, f32, usize)> {
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

// ---------------------------------------------------------------------------------------------
// Strategies: valid geometry only
// ---------------------------------------------------------------------------------------------

/// Per-dim parameters `(input, kernel, stride, dilation, pad draw)`.
type DimDraw = (usize, usize, usize, usize, usize);

/// Builds a pool geometry from draws, as PyTorch validates it: `pad <= kernel / 2`, the output
/// at least 1. Max pools additionally need every window to touch the input (see
/// `max_pool_window_without_input_matches_pytorch_and_backward_skips_it` in the kernel's unit
/// tests for the other case).
fn build_geom(
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

fn pool_geom(max: bool) -> impl Strategy<Value = PoolGeom> {
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

/// `len` distinct values, `spacing` apart, in a random order (so argmaxes are unique and stay
/// put under finite-difference steps smaller than `spacing / 2`).
fn distinct(len: usize, seed: u64, spacing: f32) -> Vec<f32> {
    let r = rand_vec(len, seed);
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
    let mut v = vec![0.0; len];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = (rank as f32 - len as f32 / 2.0) * spacing;
    }
    v
}

/// Checks that `backward(gx)` accumulates: running it on `base` gives `base + backward(0)`.
fn check_accumulates(len: usize, seed: u64, backward: impl Fn(&mut [f32])) -> Result<(), TestCaseError> {
    let mut fresh = vec![0.0; len];
    backward(&mut fresh);
    let base = rand_vec(len, seed);
    let mut acc = base.clone();
    backward(&mut acc);
    let expected: Vec<f32> = base.iter().zip(&fresh).map(|(a, b)| a + b).collect();
    close("accumulated gradient", &acc, &expected, 1e-6, 1e-6)
}

/// [`check_close`] for proptest bodies.
fn close(what: &str, a: &[f32], b: &[f32], rtol: f32, atol: f32) -> Result<(), TestCaseError> {
    check_close(what, a, b, rtol, atol).map_err(TestCaseError::fail)
}

const H: f32 = 5e-3;

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn max_pool_matches_reference_and_finite_differences(g in pool_geom(true), seed in any::<u64>()) {
        let (in_len, out_len) = (g.n * g.c * g.in_spatial(), g.n * g.c * g.out_spatial());
        let x = distinct(in_len, seed, 0.05);
        let (mut y, mut idx) = (vec![0.0; out_len], vec![0.0; out_len]);
        max_pool_forward(&g, &x, &mut y, &mut idx);
        let reference: Vec<(f32, usize)> = ref_max_pool(&g, &x).into_iter().map(Option::unwrap).collect();
        let ry: Vec<f32> = reference.iter().map(|r| r.0).collect();
        close("y", &y, &ry, 0.0, 0.0)?;
        prop_assert_eq!(decoded(&idx), reference.iter().map(|r| r.1).collect::<Vec<_>>());

        let w = rand_vec(out_len, seed ^ 1);
        let mut gx = vec![0.0; in_len];
        max_pool_backward_input(&g, &idx, &w, &mut gx);
        let num = numeric_grad(&x, H, |xp| {
            let (mut y, mut i) = (vec![0.0; out_len], vec![0.0; out_len]);
            max_pool_forward(&g, xp, &mut y, &mut i);
            weighted_sum(&w, &y)
        });
        close("gx", &gx, &num, 1e-2, 1e-3)?;
        check_accumulates(in_len, seed ^ 2, |gx| max_pool_backward_input(&g, &idx, &w, gx))?;
    }

    #[test]
    fn avg_pool_matches_reference_and_finite_differences(g in pool_geom(false), seed in any::<u64>()) {
        let (in_len, out_len) = (g.n * g.c * g.in_spatial(), g.n * g.c * g.out_spatial());
        let x = rand_vec(in_len, seed);
        let mut y = vec![f32::NAN; out_len];
        avg_pool_forward(&g, &x, &mut y);
        close("y", &y, &ref_avg_pool(&g, &x), 1e-5, 1e-6)?;

        let w = rand_vec(out_len, seed ^ 1);
        let mut gx = vec![0.0; in_len];
        avg_pool_backward_input(&g, &w, &mut gx);
        let num = numeric_grad(&x, H, |xp| {
            let mut y = vec![0.0; out_len];
            avg_pool_forward(&g, xp, &mut y);
            weighted_sum(&w, &y)
        });
        close("gx", &gx, &num, 1e-2, 1e-3)?;
        check_accumulates(in_len, seed ^ 2, |gx| avg_pool_backward_input(&g, &w, gx))?;
    }

    #[test]
    fn adaptive_pools_match_reference_and_finite_differences(
        dims in 1..=3usize,
        n in 1..=2usize,
        c in 1..=2usize,
        sizes in [(1..=4usize, 1..=4usize), (1..=6usize, 1..=5usize), (1..=8usize, 1..=5usize)],
        seed in any::<u64>(),
    ) {
        let (mut input, mut output) = ([1; 3], [1; 3]);
        for d in 3 - dims..3 {
            (input[d], output[d]) = sizes[d];
        }
        let (in_len, out_len) = (n * c * input.iter().product::<usize>(), n * c * output.iter().product::<usize>());
        let x = distinct(in_len, seed, 0.05);
        let reference = ref_adaptive(n, c, input, output, &x);

        let mut y = vec![f32::NAN; out_len];
        adaptive_avg_pool_forward(n, c, input, output, &x, &mut y);
        close("avg y", &y, &reference.iter().map(|r| r.0).collect::<Vec<_>>(), 1e-5, 1e-6)?;
        let mut idx = vec![0.0; out_len];
        adaptive_max_pool_forward(n, c, input, output, &x, &mut y, &mut idx);
        close("max y", &y, &reference.iter().map(|r| r.1).collect::<Vec<_>>(), 0.0, 0.0)?;
        prop_assert_eq!(decoded(&idx), reference.iter().map(|r| r.2).collect::<Vec<_>>());

        let w = rand_vec(out_len, seed ^ 1);
        let mut gx = vec![0.0; in_len];
        adaptive_avg_pool_backward_input(n, c, input, output, &w, &mut gx);
        let num = numeric_grad(&x, H, |xp| {
            let mut y = vec![0.0; out_len];
            adaptive_avg_pool_forward(n, c, input, output, xp, &mut y);
            weighted_sum(&w, &y)
        });
        close("avg gx", &gx, &num, 1e-2, 1e-3)?;
        check_accumulates(in_len, seed ^ 2, |gx| adaptive_avg_pool_backward_input(n, c, input, output, &w, gx))?;

        let mut gx = vec![0.0; in_len];
        adaptive_max_pool_backward_input(n, c, input, output, &idx, &w, &mut gx);
        let num = numeric_grad(&x, H, |xp| {
            let (mut y, mut i) = (vec![0.0; out_len], vec![0.0; out_len]);
            adaptive_max_pool_forward(n, c, input, output, xp, &mut y, &mut i);
            weighted_sum(&w, &y)
        });
        close("max gx", &gx, &num, 1e-2, 1e-3)?;
        check_accumulates(in_len, seed ^ 3, |gx| adaptive_max_pool_backward_input(n, c, input, output, &idx, &w, gx))?;
    }

    /// MaxPool2d(return_indices) then MaxUnpool2d back to the pool's input size: each pooled
    /// value lands on its argmax, everything else is zero; backward gathers `gy` at the indices.
    #[test]
    fn max_unpool_inverts_the_pool_positions(g in pool_geom(true), seed in any::<u64>()) {
        let (in_sp, out_sp) = (g.in_spatial(), g.out_spatial());
        let planes = g.n * g.c;
        let x = distinct(planes * in_sp, seed, 0.05);
        let (mut pooled, mut idx) = (vec![0.0; planes * out_sp], vec![0.0; planes * out_sp]);
        max_pool_forward(&g, &x, &mut pooled, &mut idx);
        // Unpool other values than the pooled ones, so a value cannot be right by accident.
        let v = rand_vec(planes * out_sp, seed ^ 1);
        let mut y = vec![f32::NAN; planes * in_sp];
        max_unpool_forward(g.n, g.c, out_sp, in_sp, &v, &idx, &mut y);
        let mut expected = vec![0.0; planes * in_sp];
        for (p, _, o) in outputs(planes, g.output) {
            expected[p * in_sp + decode_index(idx[o])] = v[o]; // later duplicates win
        }
        close("y", &y, &expected, 0.0, 0.0)?;

        let gy = rand_vec(planes * in_sp, seed ^ 2);
        let mut gv = vec![0.0; planes * out_sp];
        max_unpool_backward_input(g.n, g.c, out_sp, in_sp, &idx, &gy, &mut gv);
        let gathered: Vec<f32> = outputs(planes, g.output).map(|(p, _, o)| gy[p * in_sp + decode_index(idx[o])]).collect();
        close("gx", &gv, &gathered, 0.0, 0.0)?;
        check_accumulates(planes * out_sp, seed ^ 3, |gv| max_unpool_backward_input(g.n, g.c, out_sp, in_sp, &idx, &gy, gv))?;

        // Where no two windows share an argmax, unpooling is linear with this gradient.
        let mut unique = decoded(&idx).into_iter().enumerate().map(|(o, i)| (o / out_sp, i)).collect::<Vec<_>>();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() == idx.len() {
            let num = numeric_grad(&v, H, |vp| {
                let mut y = vec![0.0; planes * in_sp];
                max_unpool_forward(g.n, g.c, out_sp, in_sp, vp, &idx, &mut y);
                weighted_sum(&gy, &y)
            });
            close("gx (finite differences)", &gv, &num, 1e-2, 1e-3)?;
        }
    }
}
