//! 2-d padding kernels (`torchlet::ops::pad`): PyTorch fixtures with asymmetric padding in every
//! mode, property tests against a naive reference, and finite-difference gradients.
//!
//! Fixtures: `tools/fixtures/pool.py` -> `tests/fixtures/pool.json` (`pad2d` cases).

use proptest::prelude::*;
use torchlet::ops::geom::PaddingMode;
use torchlet::ops::pad::*;
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, rand_vec, weighted_sum};

fn mode_of(name: &str) -> PaddingMode {
    match name {
        "zeros" => PaddingMode::Zeros,
        "reflect" => PaddingMode::Reflect,
        "replicate" => PaddingMode::Replicate,
        "circular" => PaddingMode::Circular,
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn pad2d_matches_pytorch() {
    let f = load_fixture("pool.json");
    let cases = f["pad2d"].as_array().unwrap();
    let mut modes = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let s: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let p: Vec<usize> = case["padding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let padding = [p[0], p[1], p[2], p[3]];
        let mode = mode_of(case["mode"].as_str().unwrap());
        modes.push(mode);
        let (x, gy) = (floats(&case["x"]), floats(&case["gy"]));
        let mut y = vec![f32::NAN; gy.len()];
        pad2d_forward(s[0], s[1], s[2], s[3], padding, mode, &x, &mut y);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), 0.0, 0.0);
        let mut gx = vec![0.0; x.len()];
        pad2d_backward_input(s[0], s[1], s[2], s[3], padding, mode, &gy, &mut gx);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), 1e-5, 1e-6);
    }
    for m in [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ] {
        assert!(modes.contains(&m), "no fixture for {m:?}");
    }
}

/// The source index of padded coordinate `i` along a dim of size `n`, written from PyTorch's
/// docs (not from `PaddingMode::map`): reflect mirrors about the edge element, replicate clamps,
/// circular wraps, zeros reads nothing.
fn source(mode: PaddingMode, i: isize, n: usize) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    Some(match mode {
        PaddingMode::Zeros => return None,
        PaddingMode::Reflect if i < 0 => -i,
        PaddingMode::Reflect => (n - 1) - (i - (n - 1)),
        PaddingMode::Replicate if i < 0 => 0,
        PaddingMode::Replicate => n - 1,
        PaddingMode::Circular if i < 0 => i + n,
        PaddingMode::Circular => i - n,
    } as usize)
}

fn ref_pad(n: usize, c: usize, h: usize, w: usize, [l, r, t, b]: [usize; 4], mode: PaddingMode, x: &[f32]) -> Vec<f32> {
    let (oh, ow) = (h + t + b, w + l + r);
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for p in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let v = match (
                    source(mode, i as isize - t as isize, h),
                    source(mode, j as isize - l as isize, w),
                ) {
                    (Some(a), Some(bb)) => x[p * h * w + a * w + bb],
                    _ => 0.0,
                };
                y.push(v);
            }
        }
    }
    y
}

/// Valid geometry as PyTorch checks it: reflect needs padding < size, circular padding <= size
/// (which is also what the one-wrap reference supports); zeros and replicate take any padding.
fn pad_case() -> impl Strategy<Value = (usize, usize, usize, usize, [usize; 4], PaddingMode)> {
    let mode = prop_oneof![
        Just(PaddingMode::Zeros),
        Just(PaddingMode::Reflect),
        Just(PaddingMode::Replicate),
        Just(PaddingMode::Circular)
    ];
    (
        1..=2usize,
        1..=3usize,
        1..=6usize,
        1..=6usize,
        [0..=5usize, 0..=5, 0..=5, 0..=5],
        mode,
    )
        .prop_map(|(n, c, h, w, p, mode)| {
            let limit = |size: usize| match mode {
                PaddingMode::Reflect => size - 1,
                PaddingMode::Circular => size,
                _ => usize::MAX,
            };
            let padding = [
                p[0].min(limit(w)),
                p[1].min(limit(w)),
                p[2].min(limit(h)),
                p[3].min(limit(h)),
            ];
            (n, c, h, w, padding, mode)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pad2d_matches_reference_and_finite_differences((n, c, h, w, padding, mode) in pad_case(), seed in any::<u64>()) {
        let [l, r, t, b] = padding;
        let (in_len, out_len) = (n * c * h * w, n * c * (h + t + b) * (w + l + r));
        let x = rand_vec(in_len, seed);
        let mut y = vec![f32::NAN; out_len];
        pad2d_forward(n, c, h, w, padding, mode, &x, &mut y);
        check_close("y", &y, &ref_pad(n, c, h, w, padding, mode, &x), 0.0, 0.0).map_err(TestCaseError::fail)?;

        let gy = rand_vec(out_len, seed ^ 1);
        let mut gx = vec![0.0; in_len];
        pad2d_backward_input(n, c, h, w, padding, mode, &gy, &mut gx);
        let num = numeric_grad(&x, 1e-2, |xp| {
            let mut y = vec![0.0; out_len];
            pad2d_forward(n, c, h, w, padding, mode, xp, &mut y);
            weighted_sum(&gy, &y)
        });
        check_close("gx", &gx, &num, 1e-2, 1e-3).map_err(TestCaseError::fail)?;

        // Backward accumulates into what gx already holds.
        let base = rand_vec(in_len, seed ^ 2);
        let mut acc = base.clone();
        pad2d_backward_input(n, c, h, w, padding, mode, &gy, &mut acc);
        let expected: Vec<f32> = base.iter().zip(&gx).map(|(a, g)| a + g).collect();
        // Summation order differs (base + g1 + g2 ... against base + (g1 + g2 ...)): with up to
        // ~60 terms in [-1, 1] that is a few ulps; missing the accumulation would be off by O(1).
        check_close("accumulated gx", &acc, &expected, 1e-5, 1e-5).map_err(TestCaseError::fail)?;
    }
}
