//! `Linear` and `Bilinear` kernels: forward against naive loop nests, every gradient against
//! central finite differences, and `nn.Bilinear` against PyTorch (`tests/fixtures/norm.json`).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::ops::bilinear::{bilinear_backward_input, bilinear_backward_weight, bilinear_forward};
use torchlet::ops::linear::{linear_backward_input, linear_backward_weight, linear_forward};
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, weighted_sum};

/// Finite-difference step and tolerances for f32 kernels.
const H: f32 = 1e-2;
const RTOL: f32 = 1e-2;
const ATOL: f32 = 1e-3;

fn ok(r: Result<(), String>) -> Result<(), TestCaseError> {
    r.map_err(TestCaseError::fail)
}

/// Subtracts the pre-filled value from an accumulated gradient (`+=` kernels).
fn minus(g: &[f32], prefill: f32) -> Vec<f32> {
    g.iter().map(|v| v - prefill).collect()
}

// ---------------------------------------------------------------------------------------------
// Linear: y[r, o] = sum_i x[r, i] w[o, i] + b[o]

fn linear_reference(rows: usize, in_f: usize, out_f: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * out_f];
    for r in 0..rows {
        for o in 0..out_f {
            let mut acc = if b.is_empty() { 0.0f64 } else { b[o] as f64 };
            for i in 0..in_f {
                acc += x[r * in_f + i] as f64 * w[o * in_f + i] as f64;
            }
            y[r * out_f + o] = acc as f32;
        }
    }
    y
}

#[derive(Debug, Clone)]
struct LinearCase {
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    gy: Vec<f32>,
}

fn linear_case() -> impl Strategy<Value = LinearCase> {
    (1usize..6, 1usize..7, 1usize..6, any::<bool>()).prop_flat_map(|(rows, in_f, out_f, bias)| {
        let v = |n| prop::collection::vec(-1.0f32..1.0, n);
        (
            v(rows * in_f),
            v(out_f * in_f),
            v(if bias { out_f } else { 0 }),
            v(rows * out_f),
        )
            .prop_map(move |(x, w, b, gy)| LinearCase {
                rows,
                in_f,
                out_f,
                x,
                w,
                b,
                gy,
            })
    })
}

fn check_linear(c: &LinearCase) -> Result<(), TestCaseError> {
    let LinearCase { rows, in_f, out_f, .. } = *c;
    let mut y = vec![f32::NAN; rows * out_f];
    linear_forward(rows, in_f, out_f, &c.x, &c.w, &c.b, &mut y);
    ok(check_close(
        "linear y",
        &y,
        &linear_reference(rows, in_f, out_f, &c.x, &c.w, &c.b),
        1e-5,
        1e-5,
    ))?;

    // Gradients start from a non-zero value to check that the kernels accumulate.
    let mut gx = vec![0.5f32; c.x.len()];
    let (mut gw, mut gb) = (vec![-0.25f32; c.w.len()], vec![2.0f32; c.b.len()]);
    linear_backward_input(rows, in_f, out_f, &c.w, &c.gy, &mut gx);
    linear_backward_weight(rows, in_f, out_f, &c.x, &c.gy, &mut gw, &mut gb);

    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0f32; rows * out_f];
        linear_forward(rows, in_f, out_f, x, w, b, &mut y);
        weighted_sum(&c.gy, &y)
    };
    let nx = numeric_grad(&c.x, H, |x| loss(x, &c.w, &c.b));
    let nw = numeric_grad(&c.w, H, |w| loss(&c.x, w, &c.b));
    let nb = numeric_grad(&c.b, H, |b| loss(&c.x, &c.w, b));
    ok(check_close("linear gx", &minus(&gx, 0.5), &nx, RTOL, ATOL))?;
    ok(check_close("linear gw", &minus(&gw, -0.25), &nw, RTOL, ATOL))?;
    ok(check_close("linear gb", &minus(&gb, 2.0), &nb, RTOL, ATOL))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn linear_matches_reference_and_finite_differences(c in linear_case()) {
        check_linear(&c)?;
    }

    #[test]
    fn bilinear_matches_reference_and_finite_differences(c in bilinear_case()) {
        check_bilinear(&c)?;
    }
}

#[test]
fn linear_forward_overwrites_and_bias_is_optional() {
    // x [2, 3], w [2, 3]: y = x w^T (+ b). Output starts as garbage to check it is overwritten.
    let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
    let w = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
    let mut y = [f32::NAN; 4];
    linear_forward(2, 3, 2, &x, &w, &[], &mut y);
    assert_eq!(y, [-2.0, 3.0, -2.0, 0.0]);
    linear_forward(2, 3, 2, &x, &w, &[10.0, 20.0], &mut y);
    assert_eq!(y, [8.0, 23.0, 8.0, 20.0]);
}

// ---------------------------------------------------------------------------------------------
// Bilinear: y[r, o] = sum_ij x1[r, i] w[o, i, j] x2[r, j] + b[o]

#[allow(clippy::too_many_arguments)]
fn bilinear_reference(
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    b: &[f32],
) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let mut acc = if b.is_empty() { 0.0f64 } else { b[o] as f64 };
            for i in 0..in1 {
                for j in 0..in2 {
                    acc += x1[r * in1 + i] as f64 * w[(o * in1 + i) * in2 + j] as f64 * x2[r * in2 + j] as f64;
                }
            }
            y[r * out + o] = acc as f32;
        }
    }
    y
}

#[derive(Debug, Clone)]
struct BilinearCase {
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: Vec<f32>,
    x2: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    gy: Vec<f32>,
}

fn bilinear_case() -> impl Strategy<Value = BilinearCase> {
    (1usize..5, 1usize..5, 1usize..5, 1usize..4, any::<bool>()).prop_flat_map(|(rows, in1, in2, out, bias)| {
        let v = |n| prop::collection::vec(-1.0f32..1.0, n);
        (
            v(rows * in1),
            v(rows * in2),
            v(out * in1 * in2),
            v(if bias { out } else { 0 }),
            v(rows * out),
        )
            .prop_map(move |(x1, x2, w, b, gy)| BilinearCase {
                rows,
                in1,
                in2,
                out,
                x1,
                x2,
                w,
                b,
                gy,
            })
    })
}

fn check_bilinear(c: &BilinearCase) -> Result<(), TestCaseError> {
    let BilinearCase {
        rows, in1, in2, out, ..
    } = *c;
    let mut y = vec![f32::NAN; rows * out];
    bilinear_forward(rows, in1, in2, out, &c.x1, &c.x2, &c.w, &c.b, &mut y);
    let expected = bilinear_reference(rows, in1, in2, out, &c.x1, &c.x2, &c.w, &c.b);
    ok(check_close("bilinear y", &y, &expected, 1e-5, 1e-5))?;

    let (mut gx1, mut gx2) = (vec![0.5f32; c.x1.len()], vec![-1.0f32; c.x2.len()]);
    let (mut gw, mut gb) = (vec![0.25f32; c.w.len()], vec![3.0f32; c.b.len()]);
    bilinear_backward_input(rows, in1, in2, out, &c.x1, &c.x2, &c.w, &c.gy, &mut gx1, &mut gx2);
    bilinear_backward_weight(rows, in1, in2, out, &c.x1, &c.x2, &c.gy, &mut gw, &mut gb);

    let loss = |x1: &[f32], x2: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0f32; rows * out];
        bilinear_forward(rows, in1, in2, out, x1, x2, w, b, &mut y);
        weighted_sum(&c.gy, &y)
    };
    let n1 = numeric_grad(&c.x1, H, |x1| loss(x1, &c.x2, &c.w, &c.b));
    let n2 = numeric_grad(&c.x2, H, |x2| loss(&c.x1, x2, &c.w, &c.b));
    let nw = numeric_grad(&c.w, H, |w| loss(&c.x1, &c.x2, w, &c.b));
    let nb = numeric_grad(&c.b, H, |b| loss(&c.x1, &c.x2, &c.w, b));
    ok(check_close("bilinear gx1", &minus(&gx1, 0.5), &n1, RTOL, ATOL))?;
    ok(check_close("bilinear gx2", &minus(&gx2, -1.0), &n2, RTOL, ATOL))?;
    ok(check_close("bilinear gw", &minus(&gw, 0.25), &nw, RTOL, ATOL))?;
    ok(check_close("bilinear gb", &minus(&gb, 3.0), &nb, RTOL, ATOL))
}

/// `nn.Bilinear` forward and all four gradients, against PyTorch.
#[test]
fn bilinear_matches_pytorch() {
    let fx = load_fixture("norm.json");
    let cases = fx["bilinear"].as_array().expect("bilinear cases");
    assert!(!cases.is_empty());
    for case in cases {
        let u = |k: &str| case[k].as_u64().expect("size") as usize;
        let (rows, in1, in2, out) = (u("rows"), u("in1"), u("in2"), u("out"));
        let (x1, x2, w, b, gy) = (
            floats(&case["x1"]),
            floats(&case["x2"]),
            floats(&case["weight"]),
            floats(&case["b"]),
            floats(&case["gy"]),
        );
        assert_eq!(b.is_empty(), !case["bias"].as_bool().unwrap());
        let what = format!("bilinear lead {} in1 {in1} in2 {in2} out {out}", case["lead"]);

        let mut y = vec![0.0f32; rows * out];
        bilinear_forward(rows, in1, in2, out, &x1, &x2, &w, &b, &mut y);
        assert_close(&format!("{what}: y"), &y, &floats(&case["y"]), 1e-4, 1e-5);

        let (mut gx1, mut gx2) = (vec![0.0f32; x1.len()], vec![0.0f32; x2.len()]);
        let (mut gw, mut gb) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
        bilinear_backward_input(rows, in1, in2, out, &x1, &x2, &w, &gy, &mut gx1, &mut gx2);
        bilinear_backward_weight(rows, in1, in2, out, &x1, &x2, &gy, &mut gw, &mut gb);
        assert_close(&format!("{what}: gx1"), &gx1, &floats(&case["gx1"]), 1e-4, 1e-5);
        assert_close(&format!("{what}: gx2"), &gx2, &floats(&case["gx2"]), 1e-4, 1e-5);
        assert_close(&format!("{what}: gweight"), &gw, &floats(&case["gweight"]), 1e-4, 1e-5);
        assert_close(&format!("{what}: gbias"), &gb, &floats(&case["gbias"]), 1e-4, 1e-5);
    }
}
