//! Convolution and transposed-convolution kernels on every backend (`test_device!`: the CPU's
//! portable kernels and the GPU's shaders, one test body each, geometry from
//! `torchlet_tests::problem::conv`): forward against naive direct loop nests
//! (explicit padding, as PyTorch does it), every gradient against central finite differences,
//! and the tricky configurations against PyTorch (`tests/fixtures/conv.json`).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::ops::conv::{conv_backward_input, conv_backward_weight, conv_forward, conv_workspace_len};
use torchlet::ops::conv_transpose::{
    conv_transpose_backward_input, conv_transpose_backward_weight, conv_transpose_forward, conv_transpose_workspace_len,
};
use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet_tests::backend::{check_cases, Backend};
use torchlet_tests::problem::conv::*;
use torchlet_tests::{
    assert_close, check_backend, check_close, floats, linear_adjoint, load_fixture, numeric_grad, plus, rand_vec,
    test_device, weighted_sum,
};

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

/// Scratch filled with NaN, so that a kernel reading scratch it did not write shows.
fn scratch(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

// ---------------------------------------------------------------------------------------------
// Cases: the shared geometry (`torchlet_tests::problem::conv`) with random tensors.

#[derive(Debug, Clone)]
struct Case {
    g: ConvGeom,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    gy: Vec<f32>,
}

fn with_tensors(g: ConvGeom, w_len: usize) -> impl Strategy<Value = Case> {
    let v = |n: usize| prop::collection::vec(-1.0f32..1.0, n);
    let x_len = g.n * g.c_in * g.in_spatial();
    let y_len = g.n * g.c_out * g.out_spatial();
    (v(x_len), v(w_len), v(if g.bias { g.c_out } else { 0 }), v(y_len)).prop_map(move |(x, w, b, gy)| Case {
        g,
        x,
        w,
        b,
        gy,
    })
}

fn conv_case() -> impl Strategy<Value = Case> {
    conv_geom().prop_flat_map(|g| with_tensors(g, g.weight_len()))
}

fn conv_transpose_case() -> impl Strategy<Value = Case> {
    conv_transpose_geom().prop_flat_map(|g| with_tensors(g, ct_weight_len(&g)))
}

// ---------------------------------------------------------------------------------------------
// One body per op, on every backend (`test_device!`): forward and every gradient against the
// references, gradients accumulated onto random prefilled values.

/// Random tensors of a convolution problem from `seed`: `(x, w, b, gy)`.
fn tensors(g: &ConvGeom, w_len: usize, seed: u64) -> [Vec<f32>; 4] {
    let b_len = if g.bias { g.c_out } else { 0 };
    [
        rand_vec(g.n * g.c_in * g.in_spatial(), seed),
        rand_vec(w_len, seed ^ 1),
        rand_vec(b_len, seed ^ 2),
        rand_vec(g.n * g.c_out * g.out_spatial(), seed ^ 3),
    ]
}

/// A convolution on `backend` against [`conv_reference`] and [`conv_grad_reference`].
fn conv_problem(backend: &dyn Backend, g: &ConvGeom, seed: u64) -> Result<(), String> {
    let [x, w, b, gy] = tensors(g, g.weight_len(), seed);
    let mut y = vec![f32::NAN; gy.len()];
    backend.conv_forward(g, &x, &w, &b, &mut y)?;
    check_backend("conv y", &y, &conv_reference(g, &x, &w, &b))?;
    let (rgx, rgw, rgb) = conv_grad_reference(g, &x, &w, &gy);
    let (gx0, gw0, gb0) = (
        rand_vec(x.len(), seed ^ 4),
        rand_vec(w.len(), seed ^ 5),
        rand_vec(b.len(), seed ^ 6),
    );
    let (mut gx, mut gw, mut gb) = (gx0.clone(), gw0.clone(), gb0.clone());
    backend.conv_backward_input(g, &w, &gy, &mut gx)?;
    check_backend("conv gx", &gx, &plus(&gx0, &rgx))?;
    backend.conv_backward_weight(g, &x, &gy, &mut gw, &mut gb)?;
    check_backend("conv gw", &gw, &plus(&gw0, &rgw))?;
    check_backend("conv gb", &gb, &plus(&gb0, &rgb))
}

fn conv_matches_reference(backend: &dyn Backend) {
    check_cases(backend, (conv_geom(), any::<u64>()), |b, (g, seed)| {
        conv_problem(b, &g, seed)
    });
}
test_device!(conv_on_every_backend, conv_matches_reference);

/// The tutorial network's first convolution at batch 2: 3 -> 32 channels, 5x5, padding 2, 32x32.
fn conv_tutorial_layer(backend: &dyn Backend) {
    let g = ConvGeom {
        n: 2,
        c_in: 3,
        c_out: 32,
        groups: 1,
        input: [1, 32, 32],
        output: [1, 32, 32],
        kernel: [1, 5, 5],
        stride: [1; 3],
        dilation: [1; 3],
        pad: [0, 2, 2],
        mode: PaddingMode::Zeros,
        bias: true,
    };
    conv_problem(backend, &g, 11).unwrap();
}
test_device!(conv_tutorial_layer_on_every_backend, conv_tutorial_layer);

/// A transposed convolution on `backend` against [`conv_transpose_reference`]; its gradients
/// against the exact adjoints of that (linear) reference.
fn conv_transpose_problem(backend: &dyn Backend, g: &ConvGeom, seed: u64) -> Result<(), String> {
    let [x, w, b, gy] = tensors(g, ct_weight_len(g), seed);
    let mut y = vec![f32::NAN; gy.len()];
    backend.conv_transpose_forward(g, &x, &w, &b, &mut y)?;
    check_backend("conv_transpose y", &y, &conv_transpose_reference(g, &x, &w, &b))?;
    let nobias = ConvGeom { bias: false, ..*g };
    let rgx = linear_adjoint(x.len(), &gy, |xe| conv_transpose_reference(&nobias, xe, &w, &[]));
    let rgw = linear_adjoint(w.len(), &gy, |we| conv_transpose_reference(&nobias, &x, we, &[]));
    let sp = g.out_spatial();
    let rgb: Vec<f32> = (0..b.len())
        .map(|o| {
            (0..g.n)
                .flat_map(|n| &gy[(n * g.c_out + o) * sp..(n * g.c_out + o + 1) * sp])
                .sum()
        })
        .collect();
    let (gx0, gw0, gb0) = (
        rand_vec(x.len(), seed ^ 4),
        rand_vec(w.len(), seed ^ 5),
        rand_vec(b.len(), seed ^ 6),
    );
    let (mut gx, mut gw, mut gb) = (gx0.clone(), gw0.clone(), gb0.clone());
    backend.conv_transpose_backward_input(g, &w, &gy, &mut gx)?;
    check_backend("conv_transpose gx", &gx, &plus(&gx0, &rgx))?;
    backend.conv_transpose_backward_weight(g, &x, &gy, &mut gw, &mut gb)?;
    check_backend("conv_transpose gw", &gw, &plus(&gw0, &rgw))?;
    check_backend("conv_transpose gb", &gb, &plus(&gb0, &rgb))
}

fn conv_transpose_matches_reference(backend: &dyn Backend) {
    check_cases(backend, (conv_transpose_geom(), any::<u64>()), |b, (g, seed)| {
        conv_transpose_problem(b, &g, seed)
    });
}
test_device!(conv_transpose_on_every_backend, conv_transpose_matches_reference);

// ---------------------------------------------------------------------------------------------
// CPU kernels against finite differences (the references above check the values; these check
// that backward is the derivative of forward, on the portable kernels)

fn check_conv(c: &Case) -> Result<(), TestCaseError> {
    let g = &c.g;
    let mut work = scratch(conv_workspace_len(g));
    let mut y = vec![f32::NAN; c.gy.len()];
    conv_forward(g, &c.x, &c.w, &c.b, &mut y, &mut work);
    ok(check_close(
        "conv y",
        &y,
        &conv_reference(g, &c.x, &c.w, &c.b),
        1e-4,
        1e-5,
    ))?;

    // Gradients start from a non-zero value to check that the kernels accumulate.
    let mut gx = vec![0.5f32; c.x.len()];
    let (mut gw, mut gb) = (vec![-0.25f32; c.w.len()], vec![2.0f32; c.b.len()]);
    conv_backward_input(g, &c.w, &c.gy, &mut gx, &mut scratch(work.len()));
    conv_backward_weight(g, &c.x, &c.gy, &mut gw, &mut gb, &mut scratch(work.len()));

    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0f32; c.gy.len()];
        conv_forward(g, x, w, b, &mut y, &mut work.clone());
        weighted_sum(&c.gy, &y)
    };
    let nx = numeric_grad(&c.x, H, |x| loss(x, &c.w, &c.b));
    let nw = numeric_grad(&c.w, H, |w| loss(&c.x, w, &c.b));
    let nb = numeric_grad(&c.b, H, |b| loss(&c.x, &c.w, b));
    ok(check_close("conv gx", &minus(&gx, 0.5), &nx, RTOL, ATOL))?;
    ok(check_close("conv gw", &minus(&gw, -0.25), &nw, RTOL, ATOL))?;
    ok(check_close("conv gb", &minus(&gb, 2.0), &nb, RTOL, ATOL))
}

fn check_conv_transpose(c: &Case) -> Result<(), TestCaseError> {
    let g = &c.g;
    let mut work = scratch(conv_transpose_workspace_len(g));
    let mut y = vec![f32::NAN; c.gy.len()];
    conv_transpose_forward(g, &c.x, &c.w, &c.b, &mut y, &mut work);
    ok(check_close(
        "conv_transpose y",
        &y,
        &conv_transpose_reference(g, &c.x, &c.w, &c.b),
        1e-4,
        1e-5,
    ))?;

    let mut gx = vec![0.5f32; c.x.len()];
    let (mut gw, mut gb) = (vec![-0.25f32; c.w.len()], vec![2.0f32; c.b.len()]);
    conv_transpose_backward_input(g, &c.w, &c.gy, &mut gx, &mut scratch(work.len()));
    conv_transpose_backward_weight(g, &c.x, &c.gy, &mut gw, &mut gb, &mut scratch(work.len()));

    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0f32; c.gy.len()];
        conv_transpose_forward(g, x, w, b, &mut y, &mut work.clone());
        weighted_sum(&c.gy, &y)
    };
    let nx = numeric_grad(&c.x, H, |x| loss(x, &c.w, &c.b));
    let nw = numeric_grad(&c.w, H, |w| loss(&c.x, w, &c.b));
    let nb = numeric_grad(&c.b, H, |b| loss(&c.x, &c.w, b));
    ok(check_close("conv_transpose gx", &minus(&gx, 0.5), &nx, RTOL, ATOL))?;
    ok(check_close("conv_transpose gw", &minus(&gw, -0.25), &nw, RTOL, ATOL))?;
    ok(check_close("conv_transpose gb", &minus(&gb, 2.0), &nb, RTOL, ATOL))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv_matches_reference_and_finite_differences(c in conv_case()) {
        check_conv(&c)?;
    }

    #[test]
    fn conv_transpose_matches_reference_and_finite_differences(c in conv_transpose_case()) {
        check_conv_transpose(&c)?;
    }
}

#[test]
fn large_convs_build_the_column_matrix_in_chunks() {
    // Column matrices larger than COL_BUDGET are built a chunk of output positions at a time;
    // chunks end mid-row (864 positions of 32-wide rows, 896 of 33-wide rows with stride 2,
    // 21 of 8-wide rows). Compared with the loop-nest references for the value and all three
    // gradients.
    let geoms = [
        // (c_in, c_out, groups, input [H, W], kernel, stride, pad, mode)
        (3, 8, 1, [32, 32], 5, 1, 2, PaddingMode::Zeros),
        (16, 4, 2, [80, 65], 3, 2, 1, PaddingMode::Reflect),
        (120, 2, 1, [8, 8], 5, 1, 2, PaddingMode::Circular),
    ];
    for (i, &(c_in, c_out, groups, [h, w], k, s, p, mode)) in geoms.iter().enumerate() {
        let out = |n: usize| (n + 2 * p - k) / s + 1;
        let g = ConvGeom {
            n: 2,
            c_in,
            c_out,
            groups,
            input: [1, h, w],
            output: [1, out(h), out(w)],
            kernel: [1, k, k],
            stride: [1, s, s],
            dilation: [1; 3],
            pad: [0, p, p],
            mode,
            bias: true,
        };
        let c = case_of(g, g.weight_len());
        let full = c_in / groups * k * k * g.out_spatial();
        let work_len = conv_workspace_len(&g);
        assert!(
            work_len < full,
            "case {i}: workspace {work_len} is not a chunk of {full}"
        );
        let mut y = vec![f32::NAN; c.gy.len()];
        conv_forward(&g, &c.x, &c.w, &c.b, &mut y, &mut scratch(work_len));
        assert_close(
            &format!("case {i}: y"),
            &y,
            &conv_reference(&g, &c.x, &c.w, &c.b),
            1e-4,
            1e-5,
        );
        let (rx, rw, rb) = conv_grad_reference(&g, &c.x, &c.w, &c.gy);
        let mut gx = vec![0.0f32; c.x.len()];
        let (mut gw, mut gb) = (vec![0.0f32; c.w.len()], vec![0.0f32; c_out]);
        conv_backward_input(&g, &c.w, &c.gy, &mut gx, &mut scratch(work_len));
        conv_backward_weight(&g, &c.x, &c.gy, &mut gw, &mut gb, &mut scratch(work_len));
        assert_close(&format!("case {i}: gx"), &gx, &rx, 1e-4, 1e-4);
        assert_close(&format!("case {i}: gw"), &gw, &rw, 1e-4, 1e-4);
        assert_close(&format!("case {i}: gb"), &gb, &rb, 1e-4, 1e-4);
    }
}

#[test]
fn weight_len_agrees_for_conv_transpose() {
    // ConvGeom::weight_len counts C_out * C_in/g * k; the transposed layout C_in * C_out/g * k
    // has the same count because both channel counts are multiples of groups.
    let g = ConvGeom {
        n: 1,
        c_in: 6,
        c_out: 9,
        groups: 3,
        input: [1, 2, 2],
        output: [1, 4, 4],
        kernel: [1, 3, 2],
        stride: [1, 2, 2],
        dilation: [1; 3],
        pad: [0, 1, 0],
        mode: PaddingMode::Zeros,
        bias: true,
    };
    assert_eq!(g.weight_len(), ct_weight_len(&g));
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures

fn geom_of(case: &serde_json::Value) -> ConvGeom {
    let u = |k: &str| case[k].as_u64().unwrap_or_else(|| panic!("{k}")) as usize;
    let d3 = |k: &str| -> [usize; 3] {
        let v: Vec<usize> = case[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        [v[0], v[1], v[2]]
    };
    let mode = match case["mode"].as_str().unwrap() {
        "zeros" => PaddingMode::Zeros,
        "reflect" => PaddingMode::Reflect,
        "replicate" => PaddingMode::Replicate,
        "circular" => PaddingMode::Circular,
        other => panic!("unknown padding mode {other}"),
    };
    ConvGeom {
        n: u("n"),
        c_in: u("c_in"),
        c_out: u("c_out"),
        groups: u("groups"),
        input: d3("input"),
        output: d3("output"),
        kernel: d3("kernel"),
        stride: d3("stride"),
        dilation: d3("dilation"),
        pad: d3("pad"),
        mode,
        bias: case["bias"].as_bool().unwrap(),
    }
}

#[test]
fn pytorch_fixtures() {
    let fixture = load_fixture("conv.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let g = geom_of(case);
        let (x, w, b, gy) = (
            floats(&case["x"]),
            floats(&case["w"]),
            floats(&case["b"]),
            floats(&case["gy"]),
        );
        let transpose = case["kind"] == "conv_transpose";
        let work_len = if transpose {
            conv_transpose_workspace_len(&g)
        } else {
            conv_workspace_len(&g)
        };
        let mut work = scratch(work_len);
        let mut y = vec![f32::NAN; gy.len()];
        let mut gx = vec![0.0f32; x.len()];
        let (mut gw, mut gb) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
        if transpose {
            assert_eq!(w.len(), ct_weight_len(&g), "{name}: weight length");
            conv_transpose_forward(&g, &x, &w, &b, &mut y, &mut work);
            conv_transpose_backward_input(&g, &w, &gy, &mut gx, &mut work);
            conv_transpose_backward_weight(&g, &x, &gy, &mut gw, &mut gb, &mut work);
        } else {
            assert_eq!(w.len(), g.weight_len(), "{name}: weight length");
            conv_forward(&g, &x, &w, &b, &mut y, &mut work);
            conv_backward_input(&g, &w, &gy, &mut gx, &mut work);
            conv_backward_weight(&g, &x, &gy, &mut gw, &mut gb, &mut work);
        }
        let (rtol, atol) = (1e-4, 1e-5);
        assert_close(&format!("{name}: y"), &y, &floats(&case["y"]), rtol, atol);
        assert_close(&format!("{name}: gx"), &gx, &floats(&case["gx"]), rtol, atol);
        assert_close(&format!("{name}: gw"), &gw, &floats(&case["gw"]), rtol, atol);
        assert_close(&format!("{name}: gb"), &gb, &floats(&case["gb"]), rtol, atol);
    }
}

#[test]
fn fixture_reference_agrees_with_pytorch() {
    // The loop-nest references above are themselves checked against PyTorch, so the property
    // tests compare with something known to be right.
    let fixture = load_fixture("conv.json");
    for case in fixture["cases"].as_array().unwrap() {
        let g = geom_of(case);
        let (x, w, b) = (floats(&case["x"]), floats(&case["w"]), floats(&case["b"]));
        let y = if case["kind"] == "conv_transpose" {
            conv_transpose_reference(&g, &x, &w, &b)
        } else {
            conv_reference(&g, &x, &w, &b)
        };
        assert_close(case["name"].as_str().unwrap(), &y, &floats(&case["y"]), 1e-4, 1e-5);
    }
}

// ---------------------------------------------------------------------------------------------
// Shrunk proptest failures, kept as regression tests.

/// A 1-d geometry with one channel in and `c_out` out, for the regression cases.
fn geom_1d(c_out: usize, input: usize, output: usize, k: usize, s: usize, d: usize, p: usize, bias: bool) -> ConvGeom {
    ConvGeom {
        n: 2,
        c_in: 1,
        c_out,
        groups: 1,
        input: [1, 1, input],
        output: [1, 1, output],
        kernel: [1, 1, k],
        stride: [1, 1, s],
        dilation: [1, 1, d],
        pad: [0, 0, p],
        mode: PaddingMode::Zeros,
        bias,
    }
}

fn case_of(g: ConvGeom, w_len: usize) -> Case {
    let v = |n: usize, seed: u64| torchlet_tests::rand_vec(n, seed);
    let (x_len, y_len) = (g.n * g.c_in * g.in_spatial(), g.n * g.c_out * g.out_spatial());
    Case {
        g,
        x: v(x_len, 1),
        w: v(w_len, 2),
        b: v(if g.bias { g.c_out } else { 0 }, 3),
        gy: v(y_len, 4),
    }
}

#[test]
fn window_offset_that_never_lands_inside_the_input() {
    // Kernel offset 1 (dilation 2, padding 1, stride 3) reads index 1 of a length-1 input for
    // the only output: an empty interior must not be sliced past the row's end. This panicked.
    let g = geom_1d(2, 1, 1, 2, 3, 2, 1, true);
    check_conv_transpose(&case_of(g, ct_weight_len(&g))).unwrap();
    let g = geom_1d(2, 1, 1, 3, 1, 2, 2, true);
    check_conv(&case_of(g, g.weight_len())).unwrap();
    check_conv_transpose(&case_of(g, ct_weight_len(&g))).unwrap();
}

#[test]
fn pointwise_transpose_with_output_padding() {
    // Kernel 1, stride 1, no padding, dilation 2 and output_padding 1: the output is one longer
    // than the input, so the input cannot be used as the column matrix directly. This was
    // wrong (the pointwise shortcut ignored the size change).
    let g = geom_1d(2, 1, 2, 1, 1, 2, 0, true);
    check_conv_transpose(&case_of(g, ct_weight_len(&g))).unwrap();
}
