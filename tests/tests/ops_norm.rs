//! BatchNorm kernels: train and eval forward against a naive f64 reference (including the
//! running-statistics update), every gradient against central finite differences (train mode
//! through the batch statistics), and `nn.BatchNorm1d/2d` against PyTorch over three training
//! steps and an eval step (`tests/fixtures/norm.json`).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::ops::batchnorm::{
    batch_norm_backward_eval, batch_norm_backward_train, batch_norm_forward_eval, batch_norm_forward_train,
    batch_norm_state_len, BnGeom,
};
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, weighted_sum};

const H: f32 = 5e-3;
const RTOL: f32 = 1e-2;
const ATOL: f32 = 1e-3;

fn ok(r: Result<(), String>) -> Result<(), TestCaseError> {
    r.map_err(TestCaseError::fail)
}

fn minus(g: &[f32], prefill: f32) -> Vec<f32> {
    g.iter().map(|v| v - prefill).collect()
}

/// The `M = N * S` values of channel `c` of `x: [N, C, S]`, in f64.
fn channel(g: &BnGeom, x: &[f32], c: usize) -> Vec<f64> {
    let mut v = Vec::new();
    for n in 0..g.n {
        for s in 0..g.spatial {
            v.push(x[(n * g.c + c) * g.spatial + s] as f64);
        }
    }
    v
}

/// Naive training-mode BatchNorm in f64: returns `y` and updates `state` as PyTorch documents.
fn reference_train(g: &BnGeom, x: &[f32], weight: &[f32], bias: &[f32], state: &mut [f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if g.track_running_stats {
        state[2 * g.c] += 1.0;
    }
    for c in 0..g.c {
        let v = channel(g, x, c);
        let m = v.len() as f64;
        let mean = v.iter().sum::<f64>() / m;
        let ss = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
        let var = ss / m;
        if g.track_running_stats {
            let f = match g.momentum {
                Some(mo) => mo as f64,
                None => 1.0 / state[2 * g.c] as f64,
            };
            state[c] = ((1.0 - f) * state[c] as f64 + f * mean) as f32;
            state[g.c + c] = ((1.0 - f) * state[g.c + c] as f64 + f * ss / (m - 1.0)) as f32;
        }
        let (w, b) = if g.affine {
            (weight[c] as f64, bias[c] as f64)
        } else {
            (1.0, 0.0)
        };
        for n in 0..g.n {
            for s in 0..g.spatial {
                let k = (n * g.c + c) * g.spatial + s;
                y[k] = ((x[k] as f64 - mean) / (var + g.eps as f64).sqrt() * w + b) as f32;
            }
        }
    }
    y
}

/// Naive eval-mode BatchNorm in f64.
fn reference_eval(g: &BnGeom, x: &[f32], weight: &[f32], bias: &[f32], state: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    for c in 0..g.c {
        let (w, b) = if g.affine {
            (weight[c] as f64, bias[c] as f64)
        } else {
            (1.0, 0.0)
        };
        let (mean, var) = (state[c] as f64, state[g.c + c] as f64);
        for n in 0..g.n {
            for s in 0..g.spatial {
                let k = (n * g.c + c) * g.spatial + s;
                y[k] = ((x[k] as f64 - mean) / (var + g.eps as f64).sqrt() * w + b) as f32;
            }
        }
    }
    y
}

#[derive(Debug, Clone)]
struct BnCase {
    g: BnGeom,
    x: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// Running statistics before the step (`[mean[C], var[C], tracked]`), or empty.
    state: Vec<f32>,
    gy: Vec<f32>,
}

fn bn_case() -> impl Strategy<Value = BnCase> {
    let geom = (
        1usize..5,
        1usize..4,
        1usize..5,
        prop::sample::select(vec![1e-5f32, 1e-3, 0.1]),
        prop::option::of(prop::sample::select(vec![0.1f32, 0.5, 1.0])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter("training needs more than one value per channel", |&(n, _, s, ..)| {
            n * s >= 2
        })
        .prop_map(|(n, c, spatial, eps, momentum, affine, track_running_stats)| BnGeom {
            n,
            c,
            spatial,
            eps,
            momentum,
            affine,
            track_running_stats,
        });
    geom.prop_flat_map(|g| {
        let len = g.n * g.c * g.spatial;
        let p = if g.affine { g.c } else { 0 };
        let state = if g.track_running_stats {
            (
                prop::collection::vec(-1.0f32..1.0, g.c),
                prop::collection::vec(0.2f32..2.0, g.c),
                0u32..5,
            )
                .prop_map(|(m, v, t)| [m, v, vec![t as f32]].concat())
                .boxed()
        } else {
            Just(Vec::new()).boxed()
        };
        (
            Just(g),
            prop::collection::vec(-3.0f32..3.0, len),
            prop::collection::vec(0.5f32..1.5, p),
            prop::collection::vec(-1.0f32..1.0, p),
            state,
            prop::collection::vec(-1.0f32..1.0, len),
        )
            .prop_map(|(g, x, weight, bias, state, gy)| BnCase {
                g,
                x,
                weight,
                bias,
                state,
                gy,
            })
    })
}

/// Smallest per-channel standard deviation: finite differences through the batch statistics
/// are only accurate when no channel is nearly constant.
fn min_std(g: &BnGeom, x: &[f32]) -> f64 {
    (0..g.c)
        .map(|c| {
            let v = channel(g, x, c);
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

fn check_train(case: &BnCase) -> Result<(), TestCaseError> {
    let g = case.g;
    let (x, w, b) = (&case.x, &case.weight, &case.bias);
    let mut state = case.state.clone();
    let mut saved = vec![f32::NAN; 2 * g.c];
    let mut y = vec![f32::NAN; x.len()];
    batch_norm_forward_train(&g, x, w, b, &mut state, &mut saved, &mut y);

    let mut ref_state = case.state.clone();
    let ref_y = reference_train(&g, x, w, b, &mut ref_state);
    ok(check_close("train y", &y, &ref_y, 1e-4, 1e-4))?;
    ok(check_close("running stats", &state, &ref_state, 1e-5, 1e-5))?;

    let mut gx = vec![0.5f32; x.len()];
    let (mut gw, mut gb) = (vec![-1.0f32; w.len()], vec![2.0f32; b.len()]);
    batch_norm_backward_train(&g, x, w, &saved, &case.gy, &mut gx, &mut gw, &mut gb);

    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        // Fresh copies of the state and outputs: the running statistics do not affect `y`.
        let mut state = case.state.clone();
        let (mut saved, mut y) = (vec![0.0f32; 2 * g.c], vec![0.0f32; x.len()]);
        batch_norm_forward_train(&g, x, w, b, &mut state, &mut saved, &mut y);
        weighted_sum(&case.gy, &y)
    };
    let nw = numeric_grad(w, H, |w| loss(x, w, b));
    let nb = numeric_grad(b, H, |b| loss(x, w, b));
    ok(check_close("train gweight", &minus(&gw, -1.0), &nw, RTOL, ATOL))?;
    ok(check_close("train gbias", &minus(&gb, 2.0), &nb, RTOL, ATOL))?;
    if min_std(&g, x) > 0.3 {
        let nx = numeric_grad(x, H, |x| loss(x, w, b));
        ok(check_close("train gx", &minus(&gx, 0.5), &nx, RTOL, ATOL))?;
    }
    Ok(())
}

fn check_eval(case: &BnCase) -> Result<(), TestCaseError> {
    let g = case.g;
    let (x, w, b, state) = (&case.x, &case.weight, &case.bias, &case.state);
    let mut y = vec![f32::NAN; x.len()];
    batch_norm_forward_eval(&g, x, w, b, state, &mut y);
    ok(check_close(
        "eval y",
        &y,
        &reference_eval(&g, x, w, b, state),
        1e-5,
        1e-5,
    ))?;

    let mut gx = vec![0.5f32; x.len()];
    let (mut gw, mut gb) = (vec![-1.0f32; w.len()], vec![2.0f32; b.len()]);
    batch_norm_backward_eval(&g, x, w, state, &case.gy, &mut gx, &mut gw, &mut gb);
    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0f32; x.len()];
        batch_norm_forward_eval(&g, x, w, b, state, &mut y);
        weighted_sum(&case.gy, &y)
    };
    let nx = numeric_grad(x, H, |x| loss(x, w, b));
    let nw = numeric_grad(w, H, |w| loss(x, w, b));
    let nb = numeric_grad(b, H, |b| loss(x, w, b));
    ok(check_close("eval gx", &minus(&gx, 0.5), &nx, RTOL, ATOL))?;
    ok(check_close("eval gweight", &minus(&gw, -1.0), &nw, RTOL, ATOL))?;
    ok(check_close("eval gbias", &minus(&gb, 2.0), &nb, RTOL, ATOL))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_norm_train_matches_reference_and_finite_differences(case in bn_case()) {
        check_train(&case)?;
    }

    #[test]
    fn batch_norm_eval_matches_reference_and_finite_differences(
        case in bn_case().prop_filter("eval mode uses running statistics", |c| c.g.track_running_stats)
    ) {
        check_eval(&case)?;
    }
}

/// Train-mode gradients through the batch statistics, on a case with well-spread values (so
/// the finite-difference check of `gx` always runs): `[N=3, C=2, S=4]`, affine.
#[test]
fn batch_norm_train_input_gradient_spread_case() {
    let g = BnGeom {
        n: 3,
        c: 2,
        spatial: 4,
        eps: 1e-5,
        momentum: Some(0.1),
        affine: true,
        track_running_stats: true,
    };
    let x: Vec<f32> = (0..24)
        .map(|i| ((i * 7 % 24) as f32 - 11.5) * 0.25 + (i / 4 % 2) as f32)
        .collect();
    assert!(min_std(&g, &x) > 0.3);
    let case = BnCase {
        g,
        weight: vec![1.3, 0.7],
        bias: vec![0.1, -0.4],
        state: vec![0.0, 0.0, 1.0, 1.0, 0.0],
        gy: torchlet_tests::rand_vec(24, 3),
        x,
    };
    check_train(&case).unwrap();
    check_eval(&case).unwrap();
}

#[test]
fn state_len_is_mean_var_and_counter() {
    assert_eq!(batch_norm_state_len(16), 33);
    assert_eq!(batch_norm_state_len(1), 3);
}

/// `nn.BatchNorm1d/2d` against PyTorch: three training steps (outputs, gradients, running
/// statistics and `num_batches_tracked` after each), then one eval step. Momentum 0.1, 0.3 and
/// `None`, with and without affine parameters, and one layer without running statistics.
#[test]
fn batch_norm_matches_pytorch() {
    let fx = load_fixture("norm.json");
    let cases = fx["batch_norm"].as_array().expect("batch_norm cases");
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let g = BnGeom {
            n: shape[0],
            c: shape[1],
            spatial: shape[2..].iter().product(),
            eps: case["eps"].as_f64().unwrap() as f32,
            momentum: case["momentum"].as_f64().map(|m| m as f32),
            affine: case["affine"].as_bool().unwrap(),
            track_running_stats: case["track_running_stats"].as_bool().unwrap(),
        };
        let (w, b) = (floats(&case["weight"]), floats(&case["bias"]));
        let mut state = if g.track_running_stats {
            [floats(&case["running_mean"]), floats(&case["running_var"]), vec![0.0]].concat()
        } else {
            Vec::new()
        };
        let len = g.n * g.c * g.spatial;
        let (rtol, atol) = (1e-4, 2e-5);

        let steps = case["steps"].as_array().unwrap();
        for (k, step) in steps.iter().enumerate() {
            let what = format!("{name} step {}", k + 1);
            let (x, gy) = (floats(&step["x"]), floats(&step["gy"]));
            let (mut saved, mut y) = (vec![0.0f32; 2 * g.c], vec![0.0f32; len]);
            batch_norm_forward_train(&g, &x, &w, &b, &mut state, &mut saved, &mut y);
            assert_close(&format!("{what}: y"), &y, &floats(&step["y"]), rtol, atol);
            if g.track_running_stats {
                assert_close(
                    &format!("{what}: running_mean"),
                    &state[..g.c],
                    &floats(&step["running_mean"]),
                    rtol,
                    atol,
                );
                assert_close(
                    &format!("{what}: running_var"),
                    &state[g.c..2 * g.c],
                    &floats(&step["running_var"]),
                    rtol,
                    atol,
                );
                assert_eq!(
                    state[2 * g.c],
                    step["num_batches_tracked"].as_u64().unwrap() as f32,
                    "{what}"
                );
            }
            let mut gx = vec![0.0f32; len];
            let (mut gw, mut gb) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
            batch_norm_backward_train(&g, &x, &w, &saved, &gy, &mut gx, &mut gw, &mut gb);
            assert_close(&format!("{what}: gx"), &gx, &floats(&step["gx"]), rtol, atol);
            if g.affine {
                assert_close(&format!("{what}: gweight"), &gw, &floats(&step["gweight"]), rtol, atol);
                assert_close(&format!("{what}: gbias"), &gb, &floats(&step["gbias"]), rtol, atol);
            }
        }

        let ev = &case["eval"];
        let what = format!("{name} eval");
        let (x, gy) = (floats(&ev["x"]), floats(&ev["gy"]));
        let mut y = vec![0.0f32; len];
        let mut gx = vec![0.0f32; len];
        let (mut gw, mut gb) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
        if g.track_running_stats {
            let before = state.clone();
            batch_norm_forward_eval(&g, &x, &w, &b, &state, &mut y);
            batch_norm_backward_eval(&g, &x, &w, &state, &gy, &mut gx, &mut gw, &mut gb);
            assert_eq!(state, before);
            assert_close(
                &format!("{what}: running_mean"),
                &state[..g.c],
                &floats(&ev["running_mean"]),
                rtol,
                atol,
            );
        } else {
            // PyTorch normalises with batch statistics when there are no running ones.
            let mut saved = vec![0.0f32; 2 * g.c];
            batch_norm_forward_train(&g, &x, &w, &b, &mut [], &mut saved, &mut y);
            batch_norm_backward_train(&g, &x, &w, &saved, &gy, &mut gx, &mut gw, &mut gb);
        }
        assert_close(&format!("{what}: y"), &y, &floats(&ev["y"]), rtol, atol);
        assert_close(&format!("{what}: gx"), &gx, &floats(&ev["gx"]), rtol, atol);
        if g.affine {
            assert_close(&format!("{what}: gweight"), &gw, &floats(&ev["gweight"]), rtol, atol);
            assert_close(&format!("{what}: gbias"), &gb, &floats(&ev["gbias"]), rtol, atol);
        }
    }
}
