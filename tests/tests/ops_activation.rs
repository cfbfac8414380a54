//! The activations ELU, GELU (exact and tanh), SiLU, Hardswish, Hardsigmoid, Softplus, Mish,
//! ReLU6 and PReLU: forward and every gradient against PyTorch (`tests/fixtures/activation.json`,
//! from `tools/fixtures/activation.py`, with values at every kink and in both tails), central
//! finite differences on random inputs away from the kinks, and the layers inside a
//! [`Network`]: gradients of parameters and input against finite differences, a few SGD steps,
//! a model file round trip and `print(model)`.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::ops::activation::*;
use torchlet::optim::Sgd;
use torchlet::plan::Mode;
use torchlet::{Network, Plan, Rng, Shape};
use torchlet_tests::{check_close, floats, load_fixture, numeric_grad, weighted_sum};

/// Every elementwise activation this file covers, with its arguments.
#[derive(Clone, Copy, Debug)]
enum Act {
    Elu(f32),
    Gelu(Approximate),
    Silu,
    Hardswish,
    Hardsigmoid,
    Softplus(Softplus),
    Mish,
    Relu6,
    /// PReLU over `[N, C, S]`; the weight is passed separately.
    Prelu {
        channels: usize,
        inner: usize,
    },
}

impl Act {
    fn forward(self, w: &[f32], x: &[f32], y: &mut [f32]) {
        match self {
            Act::Elu(a) => elu_forward(a, x, y),
            Act::Gelu(a) => gelu_forward(a, x, y),
            Act::Silu => silu_forward(x, y),
            Act::Hardswish => hardswish_forward(x, y),
            Act::Hardsigmoid => hardsigmoid_forward(x, y),
            Act::Softplus(p) => softplus_forward(p, x, y),
            Act::Mish => mish_forward(x, y),
            Act::Relu6 => relu6_forward(x, y),
            Act::Prelu { channels, inner } => prelu_forward(channels, inner, w, x, y),
        }
    }

    fn backward(self, w: &[f32], x: &[f32], gy: &[f32], gx: &mut [f32], gw: &mut [f32]) {
        match self {
            Act::Elu(a) => elu_backward_input(a, x, gy, gx),
            Act::Gelu(a) => gelu_backward_input(a, x, gy, gx),
            Act::Silu => silu_backward_input(x, gy, gx),
            Act::Hardswish => hardswish_backward_input(x, gy, gx),
            Act::Hardsigmoid => hardsigmoid_backward_input(x, gy, gx),
            Act::Softplus(p) => softplus_backward_input(p, x, gy, gx),
            Act::Mish => mish_backward_input(x, gy, gx),
            Act::Relu6 => relu6_backward_input(x, gy, gx),
            Act::Prelu { channels, inner } => {
                prelu_backward_input(channels, inner, w, x, gy, gx);
                prelu_backward_weight(channels, inner, x, gy, gw);
            }
        }
    }

    /// Whether `x` is within `d` of a point where the derivative jumps (finite differences
    /// avoid them): ELU's and PReLU's 0, ReLU6's 0 and 6, Hardswish's and Hardsigmoid's ±3,
    /// Softplus's switch to the identity at `beta x = threshold` (where `y` itself jumps by
    /// `log1p(e^-threshold) / beta`).
    fn near_kink(self, x: f32, d: f32) -> bool {
        let near = |k: f32| (x - k).abs() <= d;
        match self {
            Act::Elu(_) | Act::Prelu { .. } => near(0.0),
            Act::Relu6 => near(0.0) || near(6.0),
            Act::Hardswish | Act::Hardsigmoid => near(-3.0) || near(3.0),
            Act::Softplus(p) => near(p.threshold / p.beta),
            Act::Gelu(_) | Act::Silu | Act::Mish => false,
        }
    }
}

/// The activation of a fixture case.
fn case_act(case: &serde_json::Value, shape: &[usize]) -> Act {
    let args = &case["args"];
    let f = |k: &str| args[k].as_f64().unwrap() as f32;
    match case["name"].as_str().unwrap() {
        "elu" | "elu_alpha" => Act::Elu(f("alpha")),
        "gelu" => Act::Gelu(Approximate::None),
        "gelu_tanh" => Act::Gelu(Approximate::Tanh),
        "silu" => Act::Silu,
        "hardswish" => Act::Hardswish,
        "hardsigmoid" => Act::Hardsigmoid,
        "softplus" | "softplus_beta" => Act::Softplus(Softplus {
            beta: f("beta"),
            threshold: f("threshold"),
        }),
        "mish" => Act::Mish,
        "relu6" => Act::Relu6,
        "prelu" | "prelu_channels" => Act::Prelu {
            channels: shape[1],
            inner: shape[2..].iter().product(),
        },
        other => panic!("unknown fixture case {other}"),
    }
}

/// The largest absolute error, and the largest relative error where `|b| >= 1e-3`.
fn max_errs(a: &[f32], b: &[f32]) -> String {
    let abs = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let rel = a
        .iter()
        .zip(b)
        .filter(|(_, y)| y.abs() >= 1e-3)
        .map(|(x, y)| (x - y).abs() / y.abs())
        .fold(0.0, f32::max);
    format!("abs {abs:.1e} rel {rel:.1e}")
}

#[test]
fn activations_match_pytorch() {
    let fx = load_fixture("activation.json");
    let mut report = Vec::new();
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let act = case_act(case, &shape);
        let (x, gy, y_ref, gx_ref) = (
            floats(&case["x"]),
            floats(&case["gy"]),
            floats(&case["y"]),
            floats(&case["gx"]),
        );
        let w = if case.get("weight").is_some() {
            floats(&case["weight"])
        } else {
            Vec::new()
        };
        let mut y = vec![f32::NAN; x.len()];
        act.forward(&w, &x, &mut y);
        check_close(&format!("{name} forward"), &y, &y_ref, 1e-5, 1e-6).unwrap();
        // Gradients accumulate onto a prefilled buffer.
        let mut gx = vec![0.5; x.len()];
        let mut gw = vec![0.25; w.len()];
        act.backward(&w, &x, &gy, &mut gx, &mut gw);
        let gx: Vec<f32> = gx.iter().map(|g| g - 0.5).collect();
        check_close(&format!("{name} input gradient"), &gx, &gx_ref, 1e-4, 1e-6).unwrap();
        let mut errs = format!("{name}: y {}, gx {}", max_errs(&y, &y_ref), max_errs(&gx, &gx_ref));
        if !w.is_empty() {
            let gw: Vec<f32> = gw.iter().map(|g| g - 0.25).collect();
            let gw_ref = floats(&case["gweight"]);
            check_close(&format!("{name} weight gradient"), &gw, &gw_ref, 1e-4, 1e-5).unwrap();
            errs += &format!(", gweight {}", max_errs(&gw, &gw_ref));
        }
        report.push(errs);
    }
    assert_eq!(report.len(), 13, "every fixture case ran");
    println!("max errors against PyTorch:\n{}", report.join("\n"));
}

fn any_act() -> impl Strategy<Value = Act> {
    prop_oneof![
        (0.1f32..2.0).prop_map(Act::Elu),
        Just(Act::Gelu(Approximate::None)),
        Just(Act::Gelu(Approximate::Tanh)),
        Just(Act::Silu),
        Just(Act::Hardswish),
        Just(Act::Hardsigmoid),
        (0.5f32..3.0, 5.0f32..25.0).prop_map(|(beta, threshold)| Act::Softplus(Softplus { beta, threshold })),
        Just(Act::Mish),
        Just(Act::Relu6),
        (1usize..4, 1usize..4).prop_map(|(channels, inner)| Act::Prelu { channels, inner }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Input (and PReLU weight) gradients equal central finite differences of
    /// `sum(gy * y)`, on random inputs at least 0.05 away from every kink.
    #[test]
    fn gradients_match_finite_differences(act in any_act(), seed in 0u64..10_000, n in 1usize..4, shared in any::<bool>()) {
        let per_sample = match act {
            Act::Prelu { channels, inner } => channels * inner,
            _ => 7,
        };
        let len = n * per_sample;
        let mut rng = Rng::new(seed);
        let x: Vec<f32> = (0..len)
            .map(|_| loop {
                let v = rng.uniform(-8.0, 9.0);
                if !act.near_kink(v, 0.05) {
                    break v;
                }
            })
            .collect();
        let gy: Vec<f32> = (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let w: Vec<f32> = match act {
            Act::Prelu { channels, .. } => (0..if shared { 1 } else { channels }).map(|_| rng.uniform(-0.5, 0.5)).collect(),
            _ => Vec::new(),
        };
        let mut gx = vec![0.0; len];
        let mut gw = vec![0.0; w.len()];
        act.backward(&w, &x, &gy, &mut gx, &mut gw);
        let h = 1e-2;
        let fx = |x: &[f32]| {
            let mut y = vec![0.0; x.len()];
            act.forward(&w, x, &mut y);
            weighted_sum(&gy, &y)
        };
        let num = numeric_grad(&x, h, fx);
        check_close(&format!("{act:?} input gradient"), &gx, &num, 1e-2, 2e-3).map_err(TestCaseError::fail)?;
        if !w.is_empty() {
            let fw = |w: &[f32]| {
                let mut y = vec![0.0; x.len()];
                act.forward(w, &x, &mut y);
                weighted_sum(&gy, &y)
            };
            let num = numeric_grad(&w, h, fw);
            check_close(&format!("{act:?} weight gradient"), &gw, &num, 1e-2, 2e-3).map_err(TestCaseError::fail)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The layers in a network

/// Every new layer once (PReLU twice: per channel and shared), after a convolution.
static NET: [Layer; 15] = [
    conv2d(2, 3, 3).padding(1),
    prelu().num_parameters(3).init(0.1),
    elu().alpha(0.5),
    gelu(),
    gelu().approximate(Approximate::Tanh),
    silu(),
    hardswish(),
    hardsigmoid(),
    softplus().beta(2.0).threshold(10.0),
    mish(),
    relu6(),
    prelu(),
    flatten(),
    linear(48, 3),
    softplus(),
];
const IN: Shape = Shape::chw(2, 4, 4);
const BATCH: usize = 2;
static PLAN: Plan<15> = Plan::training_with_input_grad(&NET, IN, BATCH);

fn input(seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..BATCH * IN.numel()).map(|_| rng.uniform(-2.0, 2.0)).collect()
}

struct Bufs {
    params: Vec<f32>,
    grads: Vec<f32>,
    state: Vec<f32>,
    arena: Vec<f32>,
}

fn bufs() -> Bufs {
    Bufs {
        params: vec![0.0; PLAN.param_len()],
        grads: vec![0.0; PLAN.param_len()],
        state: vec![0.0; PLAN.state_len()],
        arena: vec![0.0; PLAN.arena_len()],
    }
}

/// `sum(gy * model(x))` with parameters `params` (training mode: no layer here differs).
fn objective(params: &[f32], x: &[f32], gy: &[f32]) -> f64 {
    let mut b = bufs();
    b.params.copy_from_slice(params);
    let mut net = Network::new(&PLAN, &mut b.params, &mut b.grads, &mut b.state, &mut b.arena).unwrap();
    let y = net.forward(x).unwrap();
    weighted_sum(gy, y)
}

#[test]
fn network_gradients_match_finite_differences() {
    let mut b = bufs();
    let mut net = Network::new(&PLAN, &mut b.params, &mut b.grads, &mut b.state, &mut b.arena).unwrap();
    net.init_params(11).unwrap();
    let params = net.params().to_vec();
    // PReLU's weights start at `init`, as PyTorch's constructor fills them.
    let nodes = PLAN.nodes();
    assert_eq!(nodes[1].op_name, "PReLU");
    assert_eq!(&params[nodes[1].param_offset..][..3], &[0.1; 3]);
    assert_eq!(params[nodes[11].param_offset], 0.25);
    assert_eq!((nodes[1].weight_len, nodes[11].weight_len), (3, 1));

    let x = input(5);
    let mut rng = Rng::new(9);
    let gy: Vec<f32> = (0..BATCH * 3).map(|_| rng.uniform(-1.0, 1.0)).collect();
    net.forward(&x).unwrap();
    net.backward_from(&gy).unwrap();
    let grads = net.grads().to_vec();
    let gx = net.input_grad().unwrap().to_vec();

    let num_w = numeric_grad(&params, 1e-2, |p| objective(p, &x, &gy));
    check_close("parameter gradients", &grads, &num_w, 2e-2, 2e-3).unwrap();
    let num_x = numeric_grad(&x, 1e-2, |x| objective(&params, x, &gy));
    check_close("input gradient", &gx, &num_x, 2e-2, 2e-3).unwrap();
    // The PReLU weight gradients are not trivially zero.
    assert!(grads[nodes[1].param_offset..][..3].iter().any(|g| g.abs() > 1e-4));
}

#[test]
fn a_model_with_every_new_layer_trains() {
    static CLS: [Layer; 14] = [
        conv2d(2, 3, 3).padding(1),
        prelu().num_parameters(3),
        elu(),
        gelu(),
        gelu().approximate(Approximate::Tanh),
        silu(),
        hardswish(),
        hardsigmoid(),
        softplus(),
        mish(),
        relu6(),
        prelu(),
        flatten(),
        linear(48, 3),
    ];
    static TRAIN: Plan<14> = Plan::training(&CLS, IN, BATCH);
    let (mut params, mut grads) = (vec![0.0; TRAIN.param_len()], vec![0.0; TRAIN.param_len()]);
    let (mut state, mut arena) = (vec![0.0; TRAIN.state_len()], vec![0.0; TRAIN.arena_len()]);
    let mut net = Network::new(&TRAIN, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    net.init_params(3).unwrap();
    let x = input(1);
    let labels = [0u32, 2];
    let mut sgd = Sgd::new(0.05);
    let mut losses = Vec::new();
    for _ in 0..20 {
        net.forward(&x).unwrap();
        losses.push(net.backward(&CrossEntropyLoss::new(), &labels).unwrap());
        net.step(&mut sgd, &mut []).unwrap();
        net.zero_grad();
    }
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(losses[19] < losses[0] * 0.8, "the loss did not fall: {losses:?}");
}

#[test]
fn model_file_round_trip_and_print() {
    use torchlet_host::model::Model;
    let m = Model::new("acts", &NET, IN, &["a", "b", "c"], 4).unwrap();
    let bytes = m.to_bytes().unwrap();
    let back = Model::from_bytes(bytes, std::path::Path::new("acts.tlm")).unwrap();
    assert_eq!(back.layers(), &NET[..]);
    assert_eq!(back.params, m.params);
    let x = input(2);
    assert_eq!(back.forward(&x).unwrap(), m.forward(&x).unwrap());
    // The PReLU weights are named and shaped as PyTorch's state_dict.
    let plan = m.plan(1, Mode::Inference).unwrap();
    assert_eq!(plan.nodes()[1].weight_len, 3);

    let repr = torchlet_host::print::model_repr(&NET);
    for line in [
        "(1): PReLU(num_parameters=3)",
        "(2): ELU(alpha=0.5)",
        "(3): GELU(approximate='none')",
        "(4): GELU(approximate='tanh')",
        "(5): SiLU()",
        "(6): Hardswish()",
        "(7): Hardsigmoid()",
        "(8): Softplus(beta=2.0, threshold=10.0)",
        "(9): Mish()",
        "(10): ReLU6()",
        "(11): PReLU(num_parameters=1)",
        "(14): Softplus(beta=1.0, threshold=20.0)",
    ] {
        assert!(repr.contains(line), "{line} missing from\n{repr}");
    }
}

#[test]
fn the_fixture_reprs_are_torchs() {
    let fx = load_fixture("activation.json");
    let reprs: Vec<&str> = fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["repr"].as_str().unwrap())
        .collect();
    let ours = [
        elu(),
        elu().alpha(0.5),
        gelu(),
        gelu().approximate(Approximate::Tanh),
        silu(),
        hardswish(),
        hardsigmoid(),
        softplus(),
        softplus().beta(2.0).threshold(10.0),
        mish(),
        relu6(),
        prelu(),
        prelu().num_parameters(3),
    ];
    let ours: Vec<String> = ours.iter().map(torchlet_host::print::layer_repr).collect();
    assert_eq!(ours, reprs);
}

#[test]
fn misused_builders_and_bad_prelu_channels_are_errors() {
    assert!(matches!(relu().alpha(1.0).kind, Kind::Misuse(_)));
    assert!(matches!(elu().beta(1.0).kind, Kind::Misuse(_)));
    assert!(matches!(gelu().init(1.0).kind, Kind::Misuse(_)));
    static BAD: [Layer; 1] = [prelu().num_parameters(4)];
    let err = Plan::<1>::try_new(&BAD, Shape::chw(3, 2, 2), 1, Mode::Training).unwrap_err();
    assert!(err.to_string().contains("num_parameters"), "{err}");
    static OK: [Layer; 1] = [prelu().num_parameters(5)];
    assert!(Plan::<1>::try_new(&OK, Shape::features(5), 1, Mode::Training).is_ok());
}
