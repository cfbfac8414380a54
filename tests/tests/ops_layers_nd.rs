//! The 1-d and 3-d layers against PyTorch (`tools/fixtures/layers_nd.py`, committed output in
//! `tests/fixtures/layers_nd.json`): each case runs one layer as a [`Network`] and checks the
//! output, the input gradient, every parameter gradient, the running statistics and the
//! `print(model)` text. Then finite differences on random geometry, a training step over a
//! model made of the new layers, and a model-file round trip.

use proptest::prelude::*;
use serde_json::Value;
use torchlet::layer::*;
use torchlet::{Mode, Network, Plan, Shape};
use torchlet_host::model::Model;
use torchlet_host::print::op_repr;
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, rand_vec, weighted_sum};

const CAP: usize = 12;
const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-5;

/// The torchlet layers of each fixture case.
fn layers_for(name: &str) -> Option<&'static [Layer<'static>]> {
    static BN3D: [Layer; 1] = [batch_norm3d(3)];
    static AVG3D: [Layer; 1] = [adaptive_avg_pool3d(2, 3, 2)];
    static MAX3D: [Layer; 1] = [adaptive_max_pool3d(2, 2, 3)];
    static ZP1: [Layer; 1] = [zero_pad1d([1, 2])];
    static RFP1: [Layer; 1] = [reflection_pad1d([2, 1])];
    static RPP1: [Layer; 1] = [replication_pad1d([3, 1])];
    static CP1: [Layer; 1] = [circular_pad1d([1, 2])];
    static ZP3: [Layer; 1] = [zero_pad3d([1, 0, 2, 1, 0, 1])];
    static RFP3: [Layer; 1] = [reflection_pad3d([1, 2, 0, 1, 2, 1])];
    static RPP3: [Layer; 1] = [replication_pad3d([2, 1, 1, 0, 1, 2])];
    static CP3: [Layer; 1] = [circular_pad3d([1, 1, 2, 0, 0, 2])];
    static CT1: [Layer; 1] = [conv_transpose1d(4, 6, 3)
        .stride(2)
        .padding(1)
        .output_padding(1)
        .groups(2)];
    static CT3: [Layer; 1] = [conv_transpose3d(2, 3, 1)
        .kernel_size_each(&[2, 3, 2])
        .stride_each(&[2, 1, 2])
        .padding_each(&[0, 1, 1])];
    static UN1: [Layer; 2] = [max_pool1d(2).return_indices(true), max_unpool1d(2)];
    static UN3: [Layer; 2] = [max_pool3d(2).return_indices(true), max_unpool3d(2)];
    static SHUF: [Layer; 1] = [channel_shuffle(3)];
    static UPN2: [Layer; 1] = [upsample_scale(2.0)];
    static UPN57: [Layer; 1] = [upsample_size(5, 7)];
    static UPB57: [Layer; 1] = [upsample_size(5, 7).bilinear()];
    static UPBA: [Layer; 1] = [upsample_scale(2.0).bilinear().align_corners(true)];
    Some(match name {
        "batch_norm3d_train" | "batch_norm3d_eval" => &BN3D,
        "zero_pad1d" => &ZP1,
        "reflection_pad1d" => &RFP1,
        "replication_pad1d" => &RPP1,
        "circular_pad1d" => &CP1,
        "zero_pad3d" => &ZP3,
        "reflection_pad3d" => &RFP3,
        "replication_pad3d" => &RPP3,
        "circular_pad3d" => &CP3,
        "adaptive_avg_pool3d" => &AVG3D,
        "adaptive_max_pool3d" => &MAX3D,
        "conv_transpose1d" => &CT1,
        "conv_transpose3d" => &CT3,
        "max_unpool1d" => &UN1,
        "max_unpool3d" => &UN3,
        "channel_shuffle" => &SHUF,
        "upsample_nearest_scale" => &UPN2,
        "upsample_nearest_size" => &UPN57,
        "upsample_bilinear" => &UPB57,
        "upsample_bilinear_align" => &UPBA,
        _ => return None,
    })
}

/// The cases this crate implements (each must be in the fixture file).
const CASES: &[&str] = &[
    "batch_norm3d_train",
    "batch_norm3d_eval",
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "zero_pad1d",
    "reflection_pad1d",
    "replication_pad1d",
    "circular_pad1d",
    "zero_pad3d",
    "reflection_pad3d",
    "replication_pad3d",
    "circular_pad3d",
    "conv_transpose1d",
    "conv_transpose3d",
    "max_unpool1d",
    "max_unpool3d",
    "channel_shuffle",
    "upsample_nearest_scale",
    "upsample_nearest_size",
    "upsample_bilinear",
    "upsample_bilinear_align",
];

fn shape_of(dims: &[usize]) -> Shape {
    Shape::from_dims(&dims[1..]).expect("a sample shape")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Runs one fixture case and returns the largest absolute error over everything it checks.
fn run_case(case: &Value, layers: &'static [Layer]) -> f32 {
    let name = case["name"].as_str().unwrap();
    let dims = usizes(&case["shape"]);
    let batch = dims[0];
    let plan = Plan::<CAP>::try_new_with_input_grad(layers, shape_of(&dims), batch).unwrap();
    let mut params = floats(&case["params"]);
    assert_eq!(params.len(), plan.param_len(), "{name}: parameter count");
    let mut grads = vec![0.0; plan.param_len()];
    let mut state = vec![0.0; plan.state_len()];
    if let Some(s0) = case.get("state0") {
        let s0 = floats(s0);
        state[..s0.len()].copy_from_slice(&s0);
    }
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    if !case["train"].as_bool().unwrap() {
        net.eval();
    }
    let y = net.forward(&floats(&case["x"])).unwrap().to_vec();
    let want_y = floats(&case["y"]);
    assert_close(&format!("{name}: y"), &y, &want_y, RTOL, ATOL);
    net.backward_from(&floats(&case["gy"])).unwrap();
    let gx = net.input_grad().unwrap().to_vec();
    let want_gx = floats(&case["gx"]);
    assert_close(&format!("{name}: gx"), &gx, &want_gx, RTOL, ATOL);
    let want_gp = floats(&case["gparams"]);
    assert_close(&format!("{name}: gparams"), net.grads(), &want_gp, RTOL, ATOL);
    let mut err = max_err(&y, &want_y)
        .max(max_err(&gx, &want_gx))
        .max(max_err(net.grads(), &want_gp));
    if let Some(s) = case.get("state") {
        let want = floats(s);
        let got = &net.state()[..want.len()];
        assert_close(&format!("{name}: running stats"), got, &want, RTOL, ATOL);
        err = err.max(max_err(got, &want));
    }
    if let Kind::Op(op) = layers[layers.len() - 1].kind {
        assert_eq!(op_repr(&op), case["repr"].as_str().unwrap(), "{name}: print(model)");
    }
    err
}

#[test]
fn fixture_cases_match_pytorch() {
    let fx = load_fixture("layers_nd.json");
    let cases = fx["cases"].as_array().unwrap();
    for &want in CASES {
        assert!(
            cases.iter().any(|c| c["name"] == want),
            "{want} missing from layers_nd.json"
        );
    }
    for case in cases {
        let name = case["name"].as_str().unwrap();
        if let Some(layers) = layers_for(name) {
            let err = run_case(case, layers);
            eprintln!("{name}: max abs error {err:e}");
        }
    }
}

// ---- finite differences on random geometry ----

/// `sum(w * net(x))` and its gradient with respect to `x` from the network, for a training plan.
fn loss_and_grad(layers: &'static [Layer], input: Shape, batch: usize, x: &[f32], w: &[f32]) -> (f64, Vec<f32>) {
    let plan = Plan::<CAP>::try_new_with_input_grad(layers, input, batch).unwrap();
    let mut params = vec![0.0; plan.param_len()];
    let mut grads = vec![0.0; plan.param_len()];
    let mut state = vec![0.0; plan.state_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    net.init_params(5).unwrap();
    let y = net.forward(x).unwrap().to_vec();
    net.backward_from(w).unwrap();
    (weighted_sum(w, &y), net.input_grad().unwrap().to_vec())
}

fn leak(layers: Vec<Layer>) -> &'static [Layer] {
    Box::leak(layers.into_boxed_slice())
}

/// Checks the network's input gradient of `layers` against central differences. `distinct`
/// draws inputs at least 0.1 apart (a shuffled ramp), so that a max never flips under the
/// finite-difference step.
fn check_input_grad(
    layers: &'static [Layer],
    input: Shape,
    batch: usize,
    seed: u64,
    distinct: bool,
) -> Result<(), TestCaseError> {
    let len = batch * input.numel();
    let x: Vec<f32> = if distinct {
        let p = [7919usize, 104729, 1299709][seed as usize % 3];
        (0..len).map(|i| ((i * p + seed as usize) % len) as f32 * 0.1).collect()
    } else {
        rand_vec(len, seed)
    };
    let plan = Plan::<CAP>::try_new(layers, input, batch, Mode::Inference).unwrap();
    let out = plan.nodes()[plan.len() - 1].out_shape.numel() * batch;
    let w = rand_vec(out, seed + 1);
    let (_, g) = loss_and_grad(layers, input, batch, &x, &w);
    let num = numeric_grad(&x, 1e-2, |xp| loss_and_grad(layers, input, batch, xp, &w).0);
    check_close("gx vs finite differences", &g, &num, 2e-2, 2e-2).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn batch_norm3d_input_grad(c in 1usize..3, d in 1usize..3, h in 1usize..3, w in 2usize..4, seed in 0u64..1000) {
        check_input_grad(leak(vec![batch_norm3d(c)]), Shape::cdhw(c, d, h, w), 2, seed, false)?;
    }

    #[test]
    fn adaptive_pool3d_input_grad(
        d in 1usize..5, h in 1usize..5, w in 1usize..5,
        od in 1usize..4, oh in 1usize..4, ow in 1usize..4, max in any::<bool>(), seed in 0u64..1000,
    ) {
        let l = if max { adaptive_max_pool3d(od, oh, ow) } else { adaptive_avg_pool3d(od, oh, ow) };
        check_input_grad(leak(vec![l]), Shape::cdhw(2, d, h, w), 2, seed, max)?;
    }
}

/// A padding mode drawn from all four.
fn mode() -> impl Strategy<Value = PaddingMode> {
    prop_oneof![
        Just(PaddingMode::Zeros),
        Just(PaddingMode::Reflect),
        Just(PaddingMode::Replicate),
        Just(PaddingMode::Circular)
    ]
}

/// Clamps each padding to what `mode` allows on its dim (`input` is `[D, H, W]`).
fn fit(mode: PaddingMode, input: [usize; 3], mut p: [usize; 6]) -> [usize; 6] {
    for (k, v) in p.iter_mut().enumerate() {
        let n = input[2 - k / 2];
        *v = match mode {
            PaddingMode::Reflect => (*v).min(n - 1),
            PaddingMode::Circular => (*v).min(n),
            _ => *v,
        };
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn pad1d_and_pad3d_input_grad(
        three in any::<bool>(), d in 1usize..4, h in 1usize..4, w in 1usize..5,
        p in proptest::array::uniform6(0usize..3), mode in mode(), seed in 0u64..1000,
    ) {
        let (l, input) = if three {
            let p = fit(mode, [d, h, w], p);
            let l = match mode {
                PaddingMode::Zeros => zero_pad3d(p),
                PaddingMode::Reflect => reflection_pad3d(p),
                PaddingMode::Replicate => replication_pad3d(p),
                PaddingMode::Circular => circular_pad3d(p),
            };
            (l, Shape::cdhw(2, d, h, w))
        } else {
            let p = fit(mode, [1, 1, w], [p[0], p[1], 0, 0, 0, 0]);
            let q = [p[0], p[1]];
            let l = match mode {
                PaddingMode::Zeros => zero_pad1d(q),
                PaddingMode::Reflect => reflection_pad1d(q),
                PaddingMode::Replicate => replication_pad1d(q),
                PaddingMode::Circular => circular_pad1d(q),
            };
            (l, Shape::cl(2, w))
        };
        check_input_grad(leak(vec![l]), input, 2, seed, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn conv_transpose1d_and_3d_grads(
        three in any::<bool>(), d in 1usize..3, h in 1usize..3, w in 1usize..4,
        k in proptest::array::uniform3(1usize..3), s in proptest::array::uniform3(1usize..3),
        groups in 1usize..3, seed in 0u64..1000,
    ) {
        // output_padding 1 where the stride allows it; padding 1 where the kernel and input allow it.
        let (l, input) = if three {
            let l = conv_transpose3d(2 * groups, 2 * groups, 1)
                .kernel_size_each(&k)
                .stride_each(&s)
                .padding_each(&[0, (k[1] - 1).min(h - 1), 0])
                .groups(groups);
            (l, Shape::cdhw(2 * groups, d, h, w))
        } else {
            let l = conv_transpose1d(groups, 3 * groups, k[2])
                .stride(s[2])
                .output_padding(s[2] - 1)
                .groups(groups);
            (l, Shape::cl(groups, w + 1))
        };
        check_input_grad(leak(vec![l]), input, 2, seed, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn max_unpool1d_and_3d_input_grad(
        three in any::<bool>(), d in 1usize..3, h in 1usize..3, w in 1usize..4,
        k in 1usize..3, extra in 0usize..2, seed in 0u64..1000,
    ) {
        // The pool's input may be up to stride - 1 larger than the unpool's default output.
        let extra = extra.min(k - 1);
        let layers = if three {
            vec![max_pool3d(k).return_indices(true), max_unpool3d(k)]
        } else {
            vec![max_pool1d(k).return_indices(true), max_unpool1d(k)]
        };
        let input = if three {
            Shape::cdhw(2, d * k + extra, h * k, w * k)
        } else {
            Shape::cl(2, w * k + extra)
        };
        check_input_grad(leak(layers), input, 2, seed, true)?;
    }
}

/// Dropout1d/2d/3d on the CPU: whole channels dropped at rate p, the rest scaled by
/// 1 / (1 - p), the input gradient is the mask times the upstream gradient, eval is the
/// identity, and print(model) is PyTorch's. (Masks come from torchlet's generator, so there is
/// no PyTorch fixture to compare elementwise.)
#[test]
fn channel_dropout_drops_whole_channels() {
    static D: [Layer; 3] = [dropout1d(0.25), dropout2d(0.5), dropout3d(0.75)];
    let shapes = [Shape::cl(64, 3), Shape::chw(64, 2, 3), Shape::cdhw(64, 2, 1, 3)];
    for (l, (input, p)) in D.iter().zip(shapes.iter().zip([0.25f32, 0.5, 0.75])) {
        let layers = leak(vec![*l]);
        let batch = 16;
        let plan = Plan::<CAP>::try_new_with_input_grad(layers, *input, batch).unwrap();
        let (mut params, mut grads, mut state) = (vec![], vec![], vec![]);
        let mut arena = vec![0.0; plan.arena_len()];
        let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
        net.set_seed(42);
        let x: Vec<f32> = (0..batch * input.numel()).map(|i| 1.0 + i as f32).collect();
        let y = net.forward(&x).unwrap().to_vec();
        net.backward_from(&vec![1.0; y.len()]).unwrap();
        let gx = net.input_grad().unwrap().to_vec();
        let plane = input.numel() / 64;
        let keep = 1.0 / (1.0 - p);
        let mut kept = 0;
        for ((y, x), g) in y.chunks(plane).zip(x.chunks(plane)).zip(gx.chunks(plane)) {
            if y.iter().all(|&v| v == 0.0) {
                assert!(g.iter().all(|&v| v == 0.0));
            } else {
                kept += 1;
                for ((&y, &x), &g) in y.iter().zip(x).zip(g) {
                    assert_eq!((y, g), (x * keep, keep), "{:?}", l.kind);
                }
            }
        }
        let (n, q) = ((batch * 64) as f64, 1.0 - f64::from(p));
        assert!(
            (kept as f64 / n - q).abs() < 5.0 * (q * (1.0 - q) / n).sqrt(),
            "kept {kept} of {n}"
        );
        net.eval();
        assert_eq!(net.forward(&x).unwrap(), &x[..]);
    }
    let repr: Vec<String> = D
        .iter()
        .map(|l| match l.kind {
            Kind::Op(op) => op_repr(&op),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        repr,
        [
            "Dropout1d(p=0.25, inplace=False)",
            "Dropout2d(p=0.5, inplace=False)",
            "Dropout3d(p=0.75, inplace=False)"
        ]
    );
    static WRONG_RANK: [Layer; 1] = [dropout2d(0.5)];
    assert!(Plan::<CAP>::try_new(&WRONG_RANK, Shape::cl(2, 3), 1, Mode::Inference).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn channel_shuffle_input_grad(groups in 1usize..4, per in 1usize..4, rank in 2usize..5, seed in 0u64..1000) {
        let c = groups * per;
        let input = Shape::with_spatial3(rank, c, [2, 1, 3]);
        check_input_grad(leak(vec![channel_shuffle(groups)]), input, 2, seed, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn upsample_input_grad(
        h in 1usize..4, w in 1usize..4, oh in 1usize..7, ow in 1usize..7, scale in prop_oneof![Just(0.0f32), Just(1.5), Just(2.0), Just(3.0)],
        bilinear in any::<bool>(), align in any::<bool>(), seed in 0u64..1000,
    ) {
        let l = if scale > 0.0 { upsample_scale(scale) } else { upsample_size(oh, ow) };
        let l = if bilinear { l.bilinear().align_corners(align) } else { l };
        check_input_grad(leak(vec![l]), Shape::chw(2, h, w), 2, seed, false)?;
    }
}

#[test]
fn channel_shuffle_checks_are_pytorchs() {
    static BAD: [Layer; 1] = [channel_shuffle(4)];
    assert!(Plan::<CAP>::try_new(&BAD, Shape::chw(6, 2, 2), 1, Mode::Inference).is_err());
    static FLAT: [Layer; 1] = [channel_shuffle(2)];
    assert!(Plan::<CAP>::try_new(&FLAT, Shape::features(6), 1, Mode::Inference).is_err());
}

#[test]
fn pad_limits_are_pytorchs() {
    static TOO_DEEP: [Layer; 1] = [reflection_pad3d([0, 0, 0, 0, 2, 0])];
    let e = Plan::<CAP>::try_new(&TOO_DEEP, Shape::cdhw(1, 2, 3, 3), 1, Mode::Inference).unwrap_err();
    assert!(e.to_string().contains("front/back padding too large"), "{e}");
    static RANK: [Layer; 1] = [zero_pad1d([1, 1])];
    assert!(Plan::<CAP>::try_new(&RANK, Shape::chw(1, 2, 3), 1, Mode::Inference).is_err());
}

// ---- a model of the new layers: a training step and a model-file round trip ----

static BLOCK: [Layer; 10] = [
    reflection_pad3d([1, 1, 1, 1, 1, 1]),
    conv3d(2, 4, 3),
    conv_transpose3d(4, 4, 3).padding(1),
    max_pool3d(2).return_indices(true),
    max_unpool3d(2),
    batch_norm3d(4),
    relu(),
    adaptive_avg_pool3d(2, 2, 2),
    flatten(),
    linear(32, 3),
];
const BLOCK_IN: Shape = Shape::cdhw(2, 3, 4, 5);

#[test]
fn a_training_step_lowers_the_loss() {
    use torchlet::loss::CrossEntropyLoss;
    use torchlet::optim::Sgd;
    let plan = Plan::<CAP>::try_new(&BLOCK, BLOCK_IN, 4, Mode::Training).unwrap();
    let mut params = vec![0.0; plan.param_len()];
    let mut grads = vec![0.0; plan.param_len()];
    let mut state = vec![0.0; plan.state_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    net.init_params(1).unwrap();
    let x = rand_vec(4 * BLOCK_IN.numel(), 9);
    let labels = [0u32, 1, 2, 1];
    let mut sgd = Sgd::new(0.1);
    let mut losses = Vec::new();
    for _ in 0..5 {
        net.zero_grad();
        net.forward(&x).unwrap();
        losses.push(net.backward(&CrossEntropyLoss::new(), &labels[..]).unwrap());
        net.step(&mut sgd, &mut []).unwrap();
    }
    assert!(losses[4] < losses[0], "loss did not fall: {losses:?}");
}

#[test]
fn model_file_round_trip_keeps_the_outputs() {
    let mut model = Model::new("nd", &BLOCK, BLOCK_IN, &["a", "b", "c"], 3).unwrap();
    // Non-default running statistics, so that the state travels too.
    for (i, s) in model.state.iter_mut().enumerate() {
        *s = 0.5 + 0.1 * i as f32;
    }
    let bytes = model.to_bytes().unwrap();
    let back = Model::from_bytes(bytes, std::path::Path::new("nd.tlm")).unwrap();
    assert_eq!(back, model);
    let x = rand_vec(2 * BLOCK_IN.numel(), 4);
    assert_eq!(back.forward(&x).unwrap(), model.forward(&x).unwrap());
}
