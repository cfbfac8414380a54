//! Convolution and transposed-convolution kernels: forward against naive direct loop nests
//! (explicit padding, as PyTorch does it), every gradient against central finite differences,
//! and the tricky configurations against PyTorch (`tests/fixtures/conv.json`).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::ops::conv::{conv_backward_input, conv_backward_weight, conv_forward, conv_workspace_len};
use torchlet::ops::conv_transpose::{
    conv_transpose_backward_input, conv_transpose_backward_weight, conv_transpose_forward, conv_transpose_workspace_len,
};
use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, weighted_sum};

/// Finite-difference step and tolerances for f32 kernels.
const H: f32 = 1e-2;
const RTOL: f32 = 1e-2;
const ATOL: f32 = 1e-3;

const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Replicate,
    PaddingMode::Circular,
];

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

/// Elements of a transposed convolution's weight `[C_in, C_out / groups, k...]`.
fn ct_weight_len(g: &ConvGeom) -> usize {
    g.c_in * (g.c_out / g.groups) * g.kernel.iter().product::<usize>()
}

// ---------------------------------------------------------------------------------------------
// Reference convolution: pad explicitly (as torch.nn.functional.pad), then a direct loop nest.

/// Index into the unpadded input for padded coordinate `i` (may be negative), written from
/// PyTorch's definitions of the padding modes.
fn source(mode: PaddingMode, i: isize, n: usize) -> Option<usize> {
    let n = n as isize;
    let j = match mode {
        _ if (0..n).contains(&i) => i,
        PaddingMode::Zeros => return None,
        // "d c b | a b c d | c b a": mirror about the edge element.
        PaddingMode::Reflect if i < 0 => -i,
        PaddingMode::Reflect => 2 * (n - 1) - i,
        PaddingMode::Replicate => i.clamp(0, n - 1),
        PaddingMode::Circular => ((i % n) + n) % n,
    };
    assert!((0..n).contains(&j), "reference padding out of its valid range");
    Some(j as usize)
}

fn conv_reference(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let at = |d: usize, o: usize, k: usize| (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let mut y = vec![0.0f32; g.n * g.c_out * od * oh * ow];
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for (z, yy, xx) in (0..od).flat_map(|z| (0..oh).flat_map(move |yy| (0..ow).map(move |xx| (z, yy, xx)))) {
                let mut acc = if g.bias { b[o] as f64 } else { 0.0 };
                for c in 0..cin_g {
                    let ci = grp * cin_g + c;
                    for (a, bb, cc) in
                        (0..kd).flat_map(|a| (0..kh).flat_map(move |bb| (0..kw).map(move |cc| (a, bb, cc))))
                    {
                        let (Some(sd), Some(sh), Some(sw)) = (
                            source(g.mode, at(0, z, a), id),
                            source(g.mode, at(1, yy, bb), ih),
                            source(g.mode, at(2, xx, cc), iw),
                        ) else {
                            continue;
                        };
                        let xv = x[(((n * g.c_in + ci) * id + sd) * ih + sh) * iw + sw];
                        let wv = w[(((o * cin_g + c) * kd + a) * kh + bb) * kw + cc];
                        acc += xv as f64 * wv as f64;
                    }
                }
                y[(((n * g.c_out + o) * od + z) * oh + yy) * ow + xx] = acc as f32;
            }
        }
    }
    y
}

/// Reference convolution gradients `(gx, gw, gb)` of `sum(gy * y)`: the same loop nest as
/// [`conv_reference`], accumulating instead of reading.
fn conv_grad_reference(g: &ConvGeom, x: &[f32], w: &[f32], gy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let at = |d: usize, o: usize, k: usize| (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let (mut gx, mut gw, mut gb) = (vec![0.0f64; x.len()], vec![0.0f64; w.len()], vec![0.0f64; g.c_out]);
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for (z, yy, xx) in (0..od).flat_map(|z| (0..oh).flat_map(move |yy| (0..ow).map(move |xx| (z, yy, xx)))) {
                let gv = gy[(((n * g.c_out + o) * od + z) * oh + yy) * ow + xx] as f64;
                gb[o] += gv;
                for c in 0..cin_g {
                    let ci = grp * cin_g + c;
                    for (a, bb, cc) in
                        (0..kd).flat_map(|a| (0..kh).flat_map(move |bb| (0..kw).map(move |cc| (a, bb, cc))))
                    {
                        let (Some(sd), Some(sh), Some(sw)) = (
                            source(g.mode, at(0, z, a), id),
                            source(g.mode, at(1, yy, bb), ih),
                            source(g.mode, at(2, xx, cc), iw),
                        ) else {
                            continue;
                        };
                        let xi = (((n * g.c_in + ci) * id + sd) * ih + sh) * iw + sw;
                        let wi = (((o * cin_g + c) * kd + a) * kh + bb) * kw + cc;
                        gx[xi] += w[wi] as f64 * gv;
                        gw[wi] += x[xi] as f64 * gv;
                    }
                }
            }
        }
    }
    let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (f(gx), f(gw), if g.bias { f(gb) } else { Vec::new() })
}

/// Reference transposed convolution: every input element scatters `x · w` into the output.
fn conv_transpose_reference(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let to = |d: usize, i: usize, k: usize| (i * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let inside = |v: isize, n: usize| (0..n as isize).contains(&v).then_some(v as usize);
    let mut y = vec![0.0f64; g.n * g.c_out * od * oh * ow];
    for n in 0..g.n {
        for c in 0..g.c_in {
            let grp = c / cin_g;
            for (z, yy, xx) in (0..id).flat_map(|z| (0..ih).flat_map(move |yy| (0..iw).map(move |xx| (z, yy, xx)))) {
                let xv = x[(((n * g.c_in + c) * id + z) * ih + yy) * iw + xx] as f64;
                for oc in 0..cout_g {
                    let o = grp * cout_g + oc;
                    for (a, bb, cc) in
                        (0..kd).flat_map(|a| (0..kh).flat_map(move |bb| (0..kw).map(move |cc| (a, bb, cc))))
                    {
                        let (Some(pd), Some(ph), Some(pw)) = (
                            inside(to(0, z, a), od),
                            inside(to(1, yy, bb), oh),
                            inside(to(2, xx, cc), ow),
                        ) else {
                            continue;
                        };
                        let wv = w[(((c * cout_g + oc) * kd + a) * kh + bb) * kw + cc] as f64;
                        y[(((n * g.c_out + o) * od + pd) * oh + ph) * ow + pw] += xv * wv;
                    }
                }
            }
        }
    }
    let sp = od * oh * ow;
    y.iter()
        .enumerate()
        .map(|(i, &v)| (if g.bias { v + b[i / sp % g.c_out] as f64 } else { v }) as f32)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Strategies: only valid geometry.

#[derive(Debug, Clone)]
struct Case {
    g: ConvGeom,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    gy: Vec<f32>,
}

/// One spatial dim's raw draw: (kernel, stride, dilation, padding, input size).
type Dim = (usize, usize, usize, usize, usize);

fn dim() -> impl Strategy<Value = Dim> {
    (1usize..=3, 1usize..=2, 1usize..=2, 0usize..=2, 1usize..=5)
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
    (
        1usize..=3,
        [dim(), dim(), dim()],
        1usize..=3,
        1usize..=2,
        1usize..=2,
        1usize..=2,
        0usize..4,
        any::<bool>(),
    )
        .prop_map(|(dims, raw, groups, cin_g, cout_g, n, mode, bias)| {
            let mode = MODES[mode];
            let mut g = ConvGeom {
                n,
                c_in: groups * cin_g,
                c_out: groups * cout_g,
                groups,
                input: [1; 3],
                output: [1; 3],
                kernel: [1; 3],
                stride: [1; 3],
                dilation: [1; 3],
                pad: [0; 3],
                mode,
                bias,
            };
            for (d, &(k, s, dil, p, in_raw)) in raw.iter().enumerate().skip(3 - dims) {
                let span = dil * (k - 1) + 1;
                // Large enough for one window, and (reflect, circular) larger than the padding.
                let min_in = span
                    .saturating_sub(2 * p)
                    .max(if mode == PaddingMode::Zeros { 1 } else { p + 1 });
                let input = in_raw.min(if dims == 3 { 3 } else { 5 }).max(min_in);
                g.kernel[d] = k;
                g.stride[d] = s;
                g.dilation[d] = dil;
                g.pad[d] = p;
                g.input[d] = input;
                g.output[d] = (input + 2 * p - span) / s + 1;
            }
            g
        })
        .prop_flat_map(|g| with_tensors(g, g.weight_len()))
}

fn conv_transpose_case() -> impl Strategy<Value = Case> {
    let ct_dim = (1usize..=3, 1usize..=3, 1usize..=2, 0usize..=2, 1usize..=4, 0usize..3);
    (
        1usize..=3,
        [ct_dim.clone(), ct_dim.clone(), ct_dim],
        1usize..=2,
        1usize..=2,
        1usize..=3,
        1usize..=2,
        any::<bool>(),
    )
        .prop_map(|(dims, raw, groups, cin_g, cout_g, n, bias)| {
            let mut g = ConvGeom {
                n,
                c_in: groups * cin_g,
                c_out: groups * cout_g,
                groups,
                input: [1; 3],
                output: [1; 3],
                kernel: [1; 3],
                stride: [1; 3],
                dilation: [1; 3],
                pad: [0; 3],
                mode: PaddingMode::Zeros,
                bias,
            };
            for (d, &(k, s, dil, p, input, op_raw)) in raw.iter().enumerate().skip(3 - dims) {
                let input = input.min(if dims == 3 { 3 } else { 4 });
                // PyTorch: output_padding must be smaller than either stride or dilation.
                let op = op_raw % s.max(dil);
                let full = (input - 1) * s + dil * (k - 1) + op;
                // The output must not be empty: 2 * padding <= full.
                let p = p.min(full / 2);
                g.kernel[d] = k;
                g.stride[d] = s;
                g.dilation[d] = dil;
                g.pad[d] = p;
                g.input[d] = input;
                g.output[d] = full - 2 * p + 1;
            }
            g
        })
        .prop_flat_map(|g| with_tensors(g, ct_weight_len(&g)))
}

// ---------------------------------------------------------------------------------------------
// Checks

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
