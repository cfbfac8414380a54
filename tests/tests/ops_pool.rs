//! Pooling kernels (`torchlet::ops::pool`) on every backend (`test_device!`: CPU and GPU, one
//! body per op, geometry from `torchlet_tests::problem::pool`): PyTorch fixtures for the tricky cases, property tests
//! against naive loop-nest references over valid geometry, and finite-difference gradients.
//!
//! Fixtures: `tools/fixtures/pool.py` -> `tests/fixtures/pool.json` (PyTorch, float32, CPU).

// Geometry is `[D, H, W]` arrays read side by side, indexed by the dim.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use serde_json::Value;
use torchlet::ops::geom::{window_out, PoolGeom};
use torchlet::ops::pool::*;
use torchlet_tests::backend::{check_cases, Backend};
use torchlet_tests::problem::pool::*;
use torchlet_tests::{
    assert_close, check_backend, check_close, floats, linear_adjoint, load_fixture, numeric_grad, plus, rand_vec,
    test_device, weighted_sum,
};

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
// One body per op, on every backend (`test_device!`): values and indices against the naive
// references of `torchlet_tests::problem::pool`, gradients (accumulated onto random prefilled
// values) against the exact adjoint or scatter of the reference.
// ---------------------------------------------------------------------------------------------

/// `gx0` plus `gy` scattered to `indices` plane by plane: a max pool's input gradient.
fn scatter(gx0: &[f32], planes: usize, in_sp: usize, indices: &[usize], gy: &[f32]) -> Vec<f32> {
    let mut gx = gx0.to_vec();
    let out_sp = gy.len() / planes;
    for (o, (&i, &g)) in indices.iter().zip(gy).enumerate() {
        gx[(o / out_sp) * in_sp + i] += g;
    }
    gx
}

fn max_pool_problem(backend: &dyn Backend, g: &PoolGeom, seed: u64) -> Result<(), String> {
    let (in_len, out_len) = (g.n * g.c * g.in_spatial(), g.n * g.c * g.out_spatial());
    let x = distinct(in_len, seed, 0.05);
    let (mut y, mut idx) = (vec![f32::NAN; out_len], vec![u32::MAX; out_len]);
    backend.max_pool_forward(g, &x, &mut y, &mut idx)?;
    let reference: Vec<(f32, usize)> = ref_max_pool(g, &x).into_iter().map(Option::unwrap).collect();
    check_backend("max_pool y", &y, &reference.iter().map(|r| r.0).collect::<Vec<_>>())?;
    let want: Vec<usize> = reference.iter().map(|r| r.1).collect();
    if idx.iter().map(|&i| i as usize).ne(want.iter().copied()) {
        return Err(format!("max_pool indices: got {idx:?}, expected {want:?}"));
    }
    let (gy, gx0) = (rand_vec(out_len, seed ^ 1), rand_vec(in_len, seed ^ 2));
    let mut gx = gx0.clone();
    backend.max_pool_backward_input(g, &idx, &gy, &mut gx)?;
    check_backend(
        "max_pool gx",
        &gx,
        &scatter(&gx0, g.n * g.c, g.in_spatial(), &want, &gy),
    )
}

fn max_pool_matches_reference(backend: &dyn Backend) {
    check_cases(backend, (pool_geom(true), any::<u64>()), |b, (g, seed)| {
        max_pool_problem(b, &g, seed)
    });
}
test_device!(max_pool_on_every_backend, max_pool_matches_reference);

fn avg_pool_problem(backend: &dyn Backend, g: &PoolGeom, seed: u64) -> Result<(), String> {
    let (in_len, out_len) = (g.n * g.c * g.in_spatial(), g.n * g.c * g.out_spatial());
    let x = rand_vec(in_len, seed);
    let mut y = vec![f32::NAN; out_len];
    backend.avg_pool_forward(g, &x, &mut y)?;
    check_backend("avg_pool y", &y, &ref_avg_pool(g, &x))?;
    let (gy, gx0) = (rand_vec(out_len, seed ^ 1), rand_vec(in_len, seed ^ 2));
    let mut gx = gx0.clone();
    backend.avg_pool_backward_input(g, &gy, &mut gx)?;
    let want = linear_adjoint(in_len, &gy, |xe| ref_avg_pool(g, xe));
    check_backend("avg_pool gx", &gx, &plus(&gx0, &want))
}

fn avg_pool_matches_reference(backend: &dyn Backend) {
    check_cases(backend, (pool_geom(false), any::<u64>()), |b, (g, seed)| {
        avg_pool_problem(b, &g, seed)
    });
}
test_device!(avg_pool_on_every_backend, avg_pool_matches_reference);

/// With `ties`, the input holds few distinct values, so windows hold ties and the first
/// maximum in scan order must win.
fn adaptive_problem(backend: &dyn Backend, n: usize, g: &AdaptiveGeom, seed: u64, ties: bool) -> Result<(), String> {
    let (in_len, out_len) = (n * g.c * g.in_spatial(), n * g.c * g.out_spatial());
    let x = if ties {
        rand_vec(in_len, seed).iter().map(|v| (v * 2.0).round() / 2.0).collect()
    } else {
        distinct(in_len, seed, 0.05)
    };
    let reference = ref_adaptive(n, g.c, g.input, g.output, &x);
    let mut y = vec![f32::NAN; out_len];
    backend.adaptive_avg_pool_forward(n, g, &x, &mut y)?;
    check_backend(
        "adaptive_avg_pool y",
        &y,
        &reference.iter().map(|r| r.0).collect::<Vec<_>>(),
    )?;
    let (gy, gx0) = (rand_vec(out_len, seed ^ 1), rand_vec(in_len, seed ^ 2));
    let mut gx = gx0.clone();
    backend.adaptive_avg_pool_backward_input(n, g, &gy, &mut gx)?;
    let want = linear_adjoint(in_len, &gy, |xe| {
        ref_adaptive(n, g.c, g.input, g.output, xe)
            .iter()
            .map(|r| r.0)
            .collect()
    });
    check_backend("adaptive_avg_pool gx", &gx, &plus(&gx0, &want))?;

    let mut idx = vec![u32::MAX; out_len];
    backend.adaptive_max_pool_forward(n, g, &x, &mut y, &mut idx)?;
    check_backend(
        "adaptive_max_pool y",
        &y,
        &reference.iter().map(|r| r.1).collect::<Vec<_>>(),
    )?;
    let want: Vec<usize> = reference.iter().map(|r| r.2).collect();
    if idx.iter().map(|&i| i as usize).ne(want.iter().copied()) {
        return Err(format!("adaptive_max_pool indices: got {idx:?}, expected {want:?}"));
    }
    let mut gx = gx0.clone();
    backend.adaptive_max_pool_backward_input(n, g, &idx, &gy, &mut gx)?;
    check_backend(
        "adaptive_max_pool gx",
        &gx,
        &scatter(&gx0, n * g.c, g.in_spatial(), &want, &gy),
    )
}

fn adaptive_pools_match_reference(backend: &dyn Backend) {
    check_cases(
        backend,
        (adaptive_geom(), any::<u64>(), any::<bool>()),
        |b, ((n, g), seed, ties)| adaptive_problem(b, n, &g, seed, ties),
    );
}
test_device!(adaptive_pools_on_every_backend, adaptive_pools_match_reference);

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
