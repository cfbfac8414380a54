//! Elementwise kernels: activations, softmax / log-softmax, dropout and the merges (add,
//! concat). Forward against naive f64 references, every gradient against central finite
//! differences, softmax against PyTorch (`tests/fixtures/norm.json`), dropout statistics
//! against binomial bounds.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::ops::activation::*;
use torchlet::ops::dropout::{dropout_backward_input, dropout_forward};
use torchlet::ops::merge::{add_backward_input, add_forward, concat_backward_input, concat_forward};
use torchlet::ops::softmax::*;
use torchlet::Rng;
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

// ---------------------------------------------------------------------------------------------
// Activations

/// Which activation, with a naive f64 reference of its forward.
#[derive(Debug, Clone, Copy)]
enum Act {
    Relu,
    Leaky(f32),
    Sigmoid,
    Tanh,
}

impl Act {
    fn reference(self, x: f32) -> f32 {
        let x = x as f64;
        (match self {
            Act::Relu => x.max(0.0),
            Act::Leaky(s) => {
                if x > 0.0 {
                    x
                } else {
                    s as f64 * x
                }
            }
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
        }) as f32
    }

    fn forward(self, x: &[f32], y: &mut [f32]) {
        match self {
            Act::Relu => relu_forward(x, y),
            Act::Leaky(s) => leaky_relu_forward(s, x, y),
            Act::Sigmoid => sigmoid_forward(x, y),
            Act::Tanh => tanh_forward(x, y),
        }
    }

    /// Calls the backward kernel with what it documents to read: the output for ReLU,
    /// Sigmoid and Tanh, the input for LeakyReLU.
    fn backward(self, x: &[f32], y: &[f32], gy: &[f32], gx: &mut [f32]) {
        match self {
            Act::Relu => relu_backward_input(y, gy, gx),
            Act::Leaky(s) => leaky_relu_backward_input(s, x, gy, gx),
            Act::Sigmoid => sigmoid_backward_input(y, gy, gx),
            Act::Tanh => tanh_backward_input(y, gy, gx),
        }
    }
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        Just(Act::Relu),
        (-0.5f32..1.5).prop_map(Act::Leaky),
        Just(Act::Sigmoid),
        Just(Act::Tanh),
    ]
}

/// Values in `[-4, 4]` at least `0.05` away from 0 (the kink of ReLU and LeakyReLU).
fn away_from_zero() -> impl Strategy<Value = f32> {
    (0.05f32..4.0, any::<bool>()).prop_map(|(v, neg)| if neg { -v } else { v })
}

fn check_activation(a: Act, x: &[f32], gy: &[f32]) -> Result<(), TestCaseError> {
    let mut y = vec![f32::NAN; x.len()];
    a.forward(x, &mut y);
    let expected: Vec<f32> = x.iter().map(|&v| a.reference(v)).collect();
    ok(check_close(&format!("{a:?} y"), &y, &expected, 1e-6, 1e-6))?;

    let mut gx = vec![0.5f32; x.len()];
    a.backward(x, &y, gy, &mut gx);
    let numeric = numeric_grad(x, H, |x| {
        let mut y = vec![0.0f32; x.len()];
        a.forward(x, &mut y);
        weighted_sum(gy, &y)
    });
    ok(check_close(
        &format!("{a:?} gx"),
        &minus(&gx, 0.5),
        &numeric,
        RTOL,
        ATOL,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn activations_match_reference_and_finite_differences(
        a in act(),
        (x, gy) in (1usize..40).prop_flat_map(|n| (
            prop::collection::vec(away_from_zero(), n),
            prop::collection::vec(-1.0f32..1.0, n),
        )),
    ) {
        check_activation(a, &x, &gy)?;
    }
}

#[test]
fn relu_backward_reads_the_output_and_leaky_relu_the_input() {
    // Passing the forward output to ReLU's backward and the input to LeakyReLU's: with a
    // negative slope, the output's sign would pick the wrong branch.
    let x = [-2.0f32, 3.0];
    let mut y = [0.0; 2];
    leaky_relu_forward(-0.5, &x, &mut y);
    assert_eq!(y, [1.0, 3.0]);
    let mut gx = [0.0; 2];
    leaky_relu_backward_input(-0.5, &x, &[1.0, 1.0], &mut gx);
    assert_eq!(gx, [-0.5, 1.0]);

    relu_forward(&x, &mut y);
    let mut gx = [0.0; 2];
    relu_backward_input(&y, &[4.0, 4.0], &mut gx);
    assert_eq!(gx, [0.0, 4.0]);
}

// ---------------------------------------------------------------------------------------------
// Softmax and log-softmax over [outer, axis, inner]

fn reference_softmax(outer: usize, axis: usize, inner: usize, x: &[f32], log: bool) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let idx = |a: usize| (o * axis + a) * inner + i;
            let m = (0..axis).map(|a| x[idx(a)] as f64).fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..axis).map(|a| (x[idx(a)] as f64 - m).exp()).sum();
            for a in 0..axis {
                let z = x[idx(a)] as f64 - m;
                y[idx(a)] = if log { z - s.ln() } else { z.exp() / s } as f32;
            }
        }
    }
    y
}

#[derive(Debug, Clone)]
struct SoftmaxCase {
    outer: usize,
    axis: usize,
    inner: usize,
    x: Vec<f32>,
    gy: Vec<f32>,
}

fn softmax_case() -> impl Strategy<Value = SoftmaxCase> {
    (
        1usize..4,
        1usize..7,
        1usize..4,
        prop::sample::select(vec![1.0f32, 5.0, 100.0]),
    )
        .prop_flat_map(|(outer, axis, inner, scale)| {
            let n = outer * axis * inner;
            (
                prop::collection::vec(-scale..scale, n),
                prop::collection::vec(-1.0f32..1.0, n),
            )
                .prop_map(move |(x, gy)| SoftmaxCase {
                    outer,
                    axis,
                    inner,
                    x,
                    gy,
                })
        })
}

fn check_softmax(c: &SoftmaxCase, log: bool) -> Result<(), TestCaseError> {
    let SoftmaxCase { outer, axis, inner, .. } = *c;
    let forward = |x: &[f32], y: &mut [f32]| {
        if log {
            log_softmax_forward(outer, axis, inner, x, y)
        } else {
            softmax_forward(outer, axis, inner, x, y)
        }
    };
    let name = if log { "log_softmax" } else { "softmax" };
    let mut y = vec![f32::NAN; c.x.len()];
    forward(&c.x, &mut y);
    // log-softmax values reach -200 for the widest logits: relative tolerance matters there.
    ok(check_close(
        &format!("{name} y"),
        &y,
        &reference_softmax(outer, axis, inner, &c.x, log),
        1e-5,
        1e-6,
    ))?;

    let mut gx = vec![0.5f32; c.x.len()];
    if log {
        log_softmax_backward_input(outer, axis, inner, &y, &c.gy, &mut gx);
    } else {
        softmax_backward_input(outer, axis, inner, &y, &c.gy, &mut gx);
    }
    let numeric = numeric_grad(&c.x, H, |x| {
        let mut y = vec![0.0f32; x.len()];
        forward(x, &mut y);
        weighted_sum(&c.gy, &y)
    });
    // With logits up to +-100 the f32 loss loses absolute precision: scale the tolerance.
    let loss_scale = if log {
        c.x.iter().fold(1.0f32, |m, v| m.max(v.abs()))
    } else {
        1.0
    };
    ok(check_close(
        &format!("{name} gx"),
        &minus(&gx, 0.5),
        &numeric,
        RTOL,
        ATOL * loss_scale,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn softmax_matches_reference_and_finite_differences(c in softmax_case()) {
        check_softmax(&c, false)?;
    }

    #[test]
    fn log_softmax_matches_reference_and_finite_differences(c in softmax_case()) {
        check_softmax(&c, true)?;
    }
}

/// Found by proptest: computing `x - (max + ln(sum))` rounded `ln(sum)` to the precision of a
/// large max, so log-probabilities near 0 of large logits were off by 1e-3 relative.
#[test]
fn log_softmax_keeps_small_log_probabilities_of_large_logits() {
    let x = [100.0f32, 93.0, -3.0];
    let mut y = [0.0f32; 3];
    log_softmax_forward(1, 3, 1, &x, &mut y);
    assert_close("log_softmax y", &y, &reference_softmax(1, 3, 1, &x, true), 1e-5, 1e-7);
}

/// `torch.softmax` and `torch.log_softmax` over several dims of 2-d to 4-d tensors, with wide
/// logits, forward and backward.
#[test]
fn softmax_matches_pytorch() {
    let fx = load_fixture("norm.json");
    let cases = fx["softmax"].as_array().expect("softmax cases");
    assert!(cases.len() >= 4);
    for case in cases {
        let u = |k: &str| case[k].as_u64().unwrap() as usize;
        let (outer, axis, inner) = (u("outer"), u("axis"), u("inner"));
        let (x, gy) = (floats(&case["x"]), floats(&case["gy"]));
        let what = format!("shape {} dim {}", case["shape"], case["dim"]);
        let (mut y, mut gx) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        softmax_forward(outer, axis, inner, &x, &mut y);
        softmax_backward_input(outer, axis, inner, &y, &gy, &mut gx);
        assert_close(
            &format!("softmax {what}: y"),
            &y,
            &floats(&case["softmax"]["y"]),
            1e-4,
            1e-7,
        );
        assert_close(
            &format!("softmax {what}: gx"),
            &gx,
            &floats(&case["softmax"]["gx"]),
            1e-4,
            1e-6,
        );

        let (mut y, mut gx) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        log_softmax_forward(outer, axis, inner, &x, &mut y);
        log_softmax_backward_input(outer, axis, inner, &y, &gy, &mut gx);
        assert_close(
            &format!("log_softmax {what}: y"),
            &y,
            &floats(&case["log_softmax"]["y"]),
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("log_softmax {what}: gx"),
            &gx,
            &floats(&case["log_softmax"]["gx"]),
            1e-4,
            1e-5,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dropout

/// Zeroes about `p * n` elements (within 5 binomial standard deviations), scales survivors by
/// exactly `1 / (1 - p)`, and backward multiplies by the saved mask.
#[test]
fn dropout_statistics_scale_and_backward() {
    let n = 20_000;
    let x = torchlet_tests::rand_vec(n, 11);
    let gy = torchlet_tests::rand_vec(n, 12);
    for (k, p) in [0.1f32, 0.25, 0.5, 0.8, 0.95].into_iter().enumerate() {
        let mut rng = Rng::new(100 + k as u64);
        let (mut y, mut mask) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        dropout_forward(p, &mut rng, &x, &mut y, &mut mask);

        let zeros = mask.iter().filter(|&&m| m == 0.0).count() as f64;
        let (mean, sd) = (n as f64 * p as f64, (n as f64 * p as f64 * (1.0 - p as f64)).sqrt());
        assert!(
            (zeros - mean).abs() <= 5.0 * sd,
            "p {p}: {zeros} zeros, expected {mean} +- {}",
            5.0 * sd
        );

        let scale = 1.0 / (1.0 - p);
        for i in 0..n {
            assert!(mask[i] == 0.0 || mask[i] == scale, "p {p}: mask[{i}] = {}", mask[i]);
            assert_eq!(y[i], x[i] * mask[i], "p {p}: y[{i}]");
        }

        let mut gx = vec![1.0f32; n];
        dropout_backward_input(&mask, &gy, &mut gx);
        for i in 0..n {
            assert_eq!(gx[i], 1.0 + gy[i] * mask[i], "p {p}: gx[{i}]");
        }
    }
}

#[test]
fn dropout_is_deterministic_and_consumes_one_draw_per_element() {
    let x = [1.0f32; 64];
    let run = |seed| {
        let mut rng = Rng::new(seed);
        let (mut y, mut mask) = ([0.0f32; 64], [0.0f32; 64]);
        dropout_forward(0.5, &mut rng, &x, &mut y, &mut mask);
        (mask, rng)
    };
    let (m1, r1) = run(5);
    let (m2, _) = run(5);
    let (m3, _) = run(6);
    assert_eq!(m1, m2);
    assert_ne!(m1, m3);
    let mut expected = Rng::new(5);
    for _ in 0..64 {
        expected.next_u32();
    }
    assert_eq!(r1, expected);
}

#[test]
fn dropout_extremes() {
    let x = torchlet_tests::rand_vec(100, 1);
    let (mut y, mut mask) = (vec![f32::NAN; 100], vec![f32::NAN; 100]);
    dropout_forward(0.0, &mut Rng::new(3), &x, &mut y, &mut mask);
    assert_eq!(y, x);
    dropout_forward(1.0, &mut Rng::new(3), &x, &mut y, &mut mask);
    assert!(y.iter().chain(&mask).all(|&v| v == 0.0));
}

// ---------------------------------------------------------------------------------------------
// Merges

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn add_matches_reference_and_accumulates(
        (a, b, gy) in (1usize..30).prop_flat_map(|n| {
            let v = || prop::collection::vec(-2.0f32..2.0, n);
            (v(), v(), v())
        })
    ) {
        let mut y = vec![f32::NAN; a.len()];
        add_forward(&a, &b, &mut y);
        let expected: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        prop_assert_eq!(&y, &expected);
        let (mut ga, mut gb) = (vec![1.0f32; a.len()], vec![-1.0f32; a.len()]);
        add_backward_input(&gy, &mut ga, &mut gb);
        let na = numeric_grad(&a, H, |a| { let mut y = vec![0.0; a.len()]; add_forward(a, &b, &mut y); weighted_sum(&gy, &y) });
        let nb = numeric_grad(&b, H, |b| { let mut y = vec![0.0; b.len()]; add_forward(&a, b, &mut y); weighted_sum(&gy, &y) });
        ok(check_close("add ga", &minus(&ga, 1.0), &na, RTOL, ATOL))?;
        ok(check_close("add gb", &minus(&gb, -1.0), &nb, RTOL, ATOL))?;
    }

    #[test]
    fn concat_matches_reference_and_finite_differences(
        (n, a_len, b_len, a, b, gy) in (1usize..4, 1usize..7, 1usize..7).prop_flat_map(|(n, al, bl)| {
            let v = |k| prop::collection::vec(-2.0f32..2.0, k);
            (Just(n), Just(al), Just(bl), v(n * al), v(n * bl), v(n * (al + bl)))
        })
    ) {
        let mut y = vec![f32::NAN; n * (a_len + b_len)];
        concat_forward(n, a_len, b_len, &a, &b, &mut y);
        // Reference: sample s of y is [a[s], b[s]], as torch.cat(dim=1) on [n, a_len] and [n, b_len].
        let mut expected = Vec::new();
        for s in 0..n {
            expected.extend_from_slice(&a[s * a_len..(s + 1) * a_len]);
            expected.extend_from_slice(&b[s * b_len..(s + 1) * b_len]);
        }
        prop_assert_eq!(&y, &expected);

        let (mut ga, mut gb) = (vec![0.5f32; a.len()], vec![0.5f32; b.len()]);
        concat_backward_input(n, a_len, b_len, &gy, &mut ga, &mut gb);
        let loss = |a: &[f32], b: &[f32]| {
            let mut y = vec![0.0; n * (a_len + b_len)];
            concat_forward(n, a_len, b_len, a, b, &mut y);
            weighted_sum(&gy, &y)
        };
        let na = numeric_grad(&a, H, |a| loss(a, &b));
        let nb = numeric_grad(&b, H, |b| loss(&a, b));
        ok(check_close("concat ga", &minus(&ga, 0.5), &na, RTOL, ATOL))?;
        ok(check_close("concat gb", &minus(&gb, 0.5), &nb, RTOL, ATOL))?;
    }
}
