//! Losses: every loss and reduction against a naive f64 reference (proptest), every gradient
//! against central finite differences, PyTorch fixtures (`tools/fixtures/loss.py`), and the
//! errors a loss must return instead of panicking.

use proptest::prelude::*;
use serde_json::Value;
use torchlet::loss::{BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, Loss, MSELoss, NLLLoss, Reduction};
use torchlet::{Buffer, Error, Rng, Shape};
use torchlet_tests::{assert_close, check_close, floats, load_fixture, numeric_grad, weighted_sum};

const ALL: [Reduction; 3] = [Reduction::None, Reduction::Mean, Reduction::Sum];

fn shape(dims: &[usize]) -> Shape {
    Shape::from_dims(dims).expect("rank 1 to 4")
}

fn uniform(rng: &mut Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.uniform(lo, hi)).collect()
}

// ---------------------------------------------------------------------------------------------
// A uniform face over the six losses, so one test body checks them all.
// ---------------------------------------------------------------------------------------------

/// One configured loss with its target, for the generic checks below.
#[derive(Clone, Debug)]
enum Case {
    L1(Vec<f32>),
    Mse(Vec<f32>),
    Bce(Vec<f32>),
    BceLogits {
        target: Vec<f32>,
        pos_weight: Option<Vec<f32>>,
    },
    Ce {
        target: Vec<u32>,
        weight: Option<Vec<f32>>,
        ignore: Option<u32>,
        smoothing: f32,
    },
    Nll {
        target: Vec<u32>,
        weight: Option<Vec<f32>>,
        ignore: Option<u32>,
    },
}

/// Calls `$body` with `$l` bound to the configured loss and `$t` to its target.
macro_rules! with_loss {
    ($case:expr, $r:expr, |$l:ident, $t:ident| $body:expr) => {{
        let r = $r;
        match $case {
            Case::L1(t) => {
                let ($l, $t) = (L1Loss::new().reduction(r), &t[..]);
                $body
            }
            Case::Mse(t) => {
                let ($l, $t) = (MSELoss::new().reduction(r), &t[..]);
                $body
            }
            Case::Bce(t) => {
                let ($l, $t) = (BCELoss::new().reduction(r), &t[..]);
                $body
            }
            Case::BceLogits { target, pos_weight } => {
                let mut l = BCEWithLogitsLoss::new().reduction(r);
                if let Some(p) = pos_weight {
                    l = l.pos_weight(p);
                }
                let ($l, $t) = (l, &target[..]);
                $body
            }
            Case::Ce {
                target,
                weight,
                ignore,
                smoothing,
            } => {
                let mut l = CrossEntropyLoss::new().reduction(r).label_smoothing(*smoothing);
                if let Some(w) = weight {
                    l = l.weight(w);
                }
                l.ignore_index = *ignore;
                let ($l, $t) = (l, &target[..]);
                $body
            }
            Case::Nll { target, weight, ignore } => {
                let mut l = NLLLoss::new().reduction(r);
                if let Some(w) = weight {
                    l = l.weight(w);
                }
                l.ignore_index = *ignore;
                let ($l, $t) = (l, &target[..]);
                $body
            }
        }
    }};
}

/// Results of one loss on one input: everything the API offers.
struct Eval {
    out: Vec<f32>,
    grad: Vec<f32>,
    value: f32,
    value_only: f32,
    grad_ones: Vec<f32>,
}

/// Per-element output length: `N * S` for class losses, the input length otherwise.
fn per_element(case: &Case, input_len: usize) -> usize {
    match case {
        Case::Ce { target, .. } | Case::Nll { target, .. } => target.len(),
        _ => input_len,
    }
}

fn forward(case: &Case, r: Reduction, x: &[f32], n: usize, s: Shape) -> Result<Vec<f32>, Error> {
    let len = if r == Reduction::None {
        per_element(case, x.len())
    } else {
        1
    };
    let mut out = vec![0.0; len];
    with_loss!(case, r, |l, t| l.forward(x, n, s, t, &mut out))?;
    Ok(out)
}

fn eval(case: &Case, r: Reduction, x: &[f32], n: usize, s: Shape, grad_out: &[f32]) -> Eval {
    let out = forward(case, r, x, n, s).expect("forward");
    let mut grad = vec![f32::NAN; x.len()];
    with_loss!(case, r, |l, t| l.backward(x, n, s, t, grad_out, &mut grad)).expect("backward");
    let mut grad_ones = vec![f32::NAN; x.len()];
    let value = with_loss!(case, r, |l, t| l.loss_and_grad(x, n, s, t, &mut grad_ones)).expect("loss_and_grad");
    let value_only = with_loss!(case, r, |l, t| l.loss(x, n, s, t)).expect("loss");
    Eval {
        out,
        grad,
        value,
        value_only,
        grad_ones,
    }
}

// ---------------------------------------------------------------------------------------------
// Naive references, in f64, written from the PyTorch documentation formulas.
// ---------------------------------------------------------------------------------------------

/// Per-element losses and the 'mean' denominator.
fn reference(case: &Case, x: &[f32], n: usize, dims: &[usize]) -> (Vec<f64>, f64) {
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    match case {
        Case::L1(t) => (
            xs.iter().zip(t).map(|(a, &b)| (a - b as f64).abs()).collect(),
            x.len() as f64,
        ),
        Case::Mse(t) => (
            xs.iter().zip(t).map(|(a, &b)| (a - b as f64).powi(2)).collect(),
            x.len() as f64,
        ),
        Case::Bce(t) => {
            let l = xs
                .iter()
                .zip(t)
                .map(|(&p, &y)| {
                    let y = y as f64;
                    -(y * p.ln().max(-100.0) + (1.0 - y) * (1.0 - p).ln().max(-100.0))
                })
                .collect();
            (l, x.len() as f64)
        }
        Case::BceLogits { target, pos_weight } => {
            let last = *dims.last().unwrap();
            let l = xs
                .iter()
                .zip(target)
                .enumerate()
                .map(|(i, (&v, &y))| {
                    let p = pos_weight.as_ref().map_or(1.0, |p| p[i % last] as f64);
                    let y = y as f64;
                    -(p * y * sigmoid(v).ln() + (1.0 - y) * (1.0 - sigmoid(v)).ln())
                })
                .collect();
            (l, x.len() as f64)
        }
        Case::Ce {
            target,
            weight,
            ignore,
            smoothing,
        } => class_reference(
            &xs,
            n,
            dims,
            target,
            weight.as_deref(),
            *ignore,
            *smoothing as f64,
            true,
        ),
        Case::Nll { target, weight, ignore } => {
            class_reference(&xs, n, dims, target, weight.as_deref(), *ignore, 0.0, false)
        }
    }
}

/// Cross-entropy as the smoothed target distribution `q = (1 - ε) onehot(y) + ε / C` against
/// the weighted log-probabilities; NLL as `-w[y] x[y]` (`softmax == false`).
#[allow(clippy::too_many_arguments)]
fn class_reference(
    x: &[f64],
    n: usize,
    dims: &[usize],
    target: &[u32],
    weight: Option<&[f32]>,
    ignore: Option<u32>,
    eps: f64,
    softmax: bool,
) -> (Vec<f64>, f64) {
    let c = dims[0];
    let s: usize = dims[1..].iter().product();
    let w = |k: usize| weight.map_or(1.0, |w| w[k] as f64);
    let mut losses = vec![0.0; n * s];
    let mut total = 0.0;
    for ni in 0..n {
        for si in 0..s {
            let y = target[ni * s + si];
            if Some(y) == ignore {
                continue;
            }
            let y = y as usize;
            total += w(y);
            let logit = |k: usize| x[(ni * c + k) * s + si];
            let l = if softmax {
                let z: f64 = (0..c).map(|k| logit(k).exp()).sum();
                (0..c)
                    .map(|k| {
                        let q = if k == y { 1.0 - eps } else { 0.0 } + eps / c as f64;
                        -q * w(k) * (logit(k).exp() / z).ln()
                    })
                    .sum()
            } else {
                -w(y) * logit(y)
            };
            losses[ni * s + si] = l;
        }
    }
    (losses, total)
}

fn reduce(r: Reduction, losses: &[f64], total: f64) -> Vec<f32> {
    let sum: f64 = losses.iter().sum();
    match r {
        Reduction::None => losses.iter().map(|&l| l as f32).collect(),
        Reduction::Mean => vec![(sum / total) as f32],
        Reduction::Sum => vec![sum as f32],
    }
}

/// The whole contract for one case and reduction: forward against the reference, backward
/// against finite differences, and `Loss` agreeing with both.
fn check_case(
    case: &Case,
    r: Reduction,
    x: &[f32],
    n: usize,
    dims: &[usize],
    seed: u64,
    h: f32,
) -> Result<(), TestCaseError> {
    let fail = TestCaseError::fail;
    let s = shape(dims);
    let (losses, total) = reference(case, x, n, dims);
    let expected = reduce(r, &losses, total);
    let mut rng = Rng::new(seed ^ 0x9e37);
    let grad_out = uniform(&mut rng, expected.len(), 0.5, 1.5);
    let e = eval(case, r, x, n, s, &grad_out);
    if r == Reduction::Mean && total == 0.0 {
        // Every target ignored: 0 / 0 as PyTorch, and no gradient.
        prop_assert!(e.out[0].is_nan() && e.value.is_nan(), "all ignored: {:?}", e.out);
        prop_assert!(e.grad.iter().chain(&e.grad_ones).all(|&g| g == 0.0));
        return Ok(());
    }
    check_close("forward", &e.out, &expected, 1e-5, 1e-5).map_err(fail)?;
    let sum: f64 = losses.iter().sum();
    let value = if r == Reduction::Mean { sum / total } else { sum } as f32;
    check_close("loss_and_grad value", &[e.value], &[value], 1e-5, 1e-5).map_err(fail)?;
    check_close("loss value", &[e.value_only], &[value], 1e-5, 1e-5).map_err(fail)?;

    // The finite differences reduce the per-element (`None`) losses in f64: an f32 scalar such
    // as a sum of 81 losses near 56 carries rounding of one ulp (4e-6), which over 2h = 4e-3 is
    // already 1e-3 of noise in the numeric gradient. The reduced forward is checked above.
    let reduced = |xp: &[f32]| -> f64 {
        let per = forward(case, Reduction::None, xp, n, s).expect("forward");
        let sum: f64 = per.iter().map(|&v| v as f64).sum();
        if r == Reduction::Mean {
            sum / total
        } else {
            sum
        }
    };
    let numeric = numeric_grad(x, h, |xp| {
        if r == Reduction::None {
            weighted_sum(&grad_out, &forward(case, r, xp, n, s).expect("forward"))
        } else {
            grad_out[0] as f64 * reduced(xp)
        }
    });
    check_close("backward vs finite differences", &e.grad, &numeric, 1e-2, 1e-3).map_err(fail)?;
    // `loss_and_grad` is the backward of the (summed) reduced loss.
    let numeric_ones = numeric_grad(x, h, reduced);
    check_close(
        "loss_and_grad vs finite differences",
        &e.grad_ones,
        &numeric_ones,
        1e-2,
        1e-3,
    )
    .map_err(fail)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Property tests.
// ---------------------------------------------------------------------------------------------

fn reduction() -> impl Strategy<Value = Reduction> {
    prop::sample::select(ALL.to_vec())
}

/// `(n, sample dims)`: rank 1 to 4, dims 1 to 3.
fn geometry() -> impl Strategy<Value = (usize, Vec<usize>)> {
    (1usize..=3, prop::collection::vec(1usize..=3, 1..=4))
}

/// Class-loss geometry: `C` in 1..=5 then 0 to 2 spatial dims.
fn class_geometry() -> impl Strategy<Value = (usize, Vec<usize>)> {
    (1usize..=3, 1usize..=5, prop::collection::vec(1usize..=3, 0..=2)).prop_map(|(n, c, sp)| {
        let mut dims = vec![c];
        dims.extend(sp);
        (n, dims)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn l1_and_mse((n, dims) in geometry(), r in reduction(), seed: u64) {
        let len = n * dims.iter().product::<usize>();
        let mut rng = Rng::new(seed);
        let x = uniform(&mut rng, len, -2.0, 2.0);
        // Keep |x - t| >= 0.1, away from L1's kink at x == t (h = 1e-2 below).
        let t: Vec<f32> = x
            .iter()
            .map(|&v| {
                let d = rng.uniform(0.1, 1.5);
                if rng.next_u32() & 1 == 0 { v + d } else { v - d }
            })
            .collect();
        check_case(&Case::L1(t.clone()), r, &x, n, &dims, seed, 1e-2)?;
        check_case(&Case::Mse(t), r, &x, n, &dims, seed, 1e-2)?;
    }

    #[test]
    fn bce((n, dims) in geometry(), r in reduction(), seed: u64, hard: bool) {
        let len = n * dims.iter().product::<usize>();
        let mut rng = Rng::new(seed);
        let x = uniform(&mut rng, len, 0.05, 0.95);
        let t: Vec<f32> = (0..len)
            .map(|_| if hard { (rng.next_u32() & 1) as f32 } else { rng.uniform(0.0, 1.0) })
            .collect();
        check_case(&Case::Bce(t), r, &x, n, &dims, seed, 2e-3)?;
    }

    #[test]
    fn bce_with_logits((n, dims) in geometry(), r in reduction(), seed: u64, with_pos: bool) {
        let len = n * dims.iter().product::<usize>();
        let mut rng = Rng::new(seed);
        let x = uniform(&mut rng, len, -6.0, 6.0);
        let t = uniform(&mut rng, len, 0.0, 1.0);
        let last = *dims.last().unwrap();
        let pos_weight = with_pos.then(|| uniform(&mut rng, last, 0.2, 3.0));
        check_case(&Case::BceLogits { target: t, pos_weight }, r, &x, n, &dims, seed, 1e-2)?;
    }

    #[test]
    fn cross_entropy_and_nll(
        (n, dims) in class_geometry(),
        r in reduction(),
        seed: u64,
        weighted: bool,
        ignore in prop::option::of(prop::sample::select(vec![0u32, 1, 255])),
        smooth: bool,
    ) {
        let c = dims[0];
        let positions = n * dims[1..].iter().product::<usize>();
        let mut rng = Rng::new(seed);
        let x = uniform(&mut rng, positions * c, -4.0, 4.0);
        let target: Vec<u32> = (0..positions)
            .map(|_| match ignore {
                // About one position in four carries the ignored value.
                Some(i) if rng.below(4) == 0 => i,
                _ => rng.below(c as u32),
            })
            .collect();
        let weight = weighted.then(|| uniform(&mut rng, c, 0.2, 2.0));
        let smoothing = if smooth { rng.uniform(0.0, 1.0) } else { 0.0 };
        let ce = Case::Ce { target: target.clone(), weight: weight.clone(), ignore, smoothing };
        check_case(&ce, r, &x, n, &dims, seed, 1e-2)?;
        check_case(&Case::Nll { target, weight, ignore }, r, &x, n, &dims, seed, 1e-2)?;
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures.
// ---------------------------------------------------------------------------------------------

fn parse_reduction(v: &Value) -> Reduction {
    match v.as_str().expect("reduction") {
        "none" => Reduction::None,
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        other => panic!("unknown reduction {other}"),
    }
}

fn labels(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_u64().expect("label") as u32)
        .collect()
}

fn fixture_case(c: &Value) -> Case {
    let opt = |key: &str| c.get(key).filter(|v| !v.is_null());
    match c["loss"].as_str().expect("loss") {
        "l1" => Case::L1(floats(&c["target"])),
        "mse" => Case::Mse(floats(&c["target"])),
        "bce" => Case::Bce(floats(&c["target"])),
        "bce_with_logits" => Case::BceLogits {
            target: floats(&c["target"]),
            pos_weight: opt("pos_weight").map(floats),
        },
        "cross_entropy" => Case::Ce {
            target: labels(&c["target"]),
            weight: opt("weight").map(floats),
            ignore: opt("ignore_index").map(|v| v.as_u64().expect("ignore_index") as u32),
            smoothing: c["label_smoothing"].as_f64().expect("label_smoothing") as f32,
        },
        "nll" => Case::Nll {
            target: labels(&c["target"]),
            weight: opt("weight").map(floats),
            ignore: opt("ignore_index").map(|v| v.as_u64().expect("ignore_index") as u32),
        },
        other => panic!("unknown loss {other}"),
    }
}

#[test]
fn pytorch_fixtures() {
    let fixture = load_fixture("loss.json");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() > 150, "fixture has {} cases", cases.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in cases.iter().enumerate() {
        let dims: Vec<usize> = c["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let (n, sample) = (dims[0], shape(&dims[1..]));
        let r = parse_reduction(&c["reduction"]);
        let case = fixture_case(c);
        let what = format!("case {i} ({} {:?} {:?})", c["loss"], r, case_summary(&case));
        seen.insert((c["loss"].as_str().unwrap().to_string(), format!("{r:?}")));
        let x = floats(&c["input"]);
        let e = eval(&case, r, &x, n, sample, &floats(&c["grad_out"]));
        let out = floats(&c["out"]);
        assert_close(&format!("{what}: forward"), &e.out, &out, 1e-5, 1e-6);
        assert_close(&format!("{what}: backward"), &e.grad, &floats(&c["grad"]), 1e-5, 1e-6);
        let sum: f32 = out.iter().sum();
        assert_close(&format!("{what}: loss_and_grad value"), &[e.value], &[sum], 1e-5, 1e-5);
        assert_close(&format!("{what}: loss value"), &[e.value_only], &[sum], 1e-5, 1e-5);
        assert_close(
            &format!("{what}: loss_and_grad grad"),
            &e.grad_ones,
            &floats(&c["grad_ones"]),
            1e-5,
            1e-6,
        );
    }
    // Every loss with every reduction.
    assert_eq!(seen.len(), 6 * 3, "{seen:?}");
}

fn case_summary(case: &Case) -> String {
    match case {
        Case::Ce {
            weight,
            ignore,
            smoothing,
            ..
        } => {
            format!("weight {} ignore {ignore:?} smoothing {smoothing}", weight.is_some())
        }
        Case::Nll { weight, ignore, .. } => {
            format!("weight {} ignore {ignore:?}", weight.is_some())
        }
        Case::BceLogits { pos_weight, .. } => format!("pos_weight {}", pos_weight.is_some()),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Named cases: values worked out by hand, and the errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn cross_entropy_by_hand() {
    // Two equal logits: p = 1/2, loss ln 2, gradient (p - onehot) / N.
    let ce = CrossEntropyLoss::new();
    let mut grad = [0.0; 4];
    let v = ce
        .loss_and_grad(&[0.0, 0.0, 3.0, 3.0], 2, Shape::features(2), &[1, 0], &mut grad)
        .unwrap();
    assert_close("value", &[v], &[core::f32::consts::LN_2], 1e-6, 0.0);
    assert_close("grad", &grad, &[0.25, -0.25, -0.25, 0.25], 1e-6, 0.0);
}

#[test]
fn huge_logits_stay_finite() {
    let ce = CrossEntropyLoss::new().reduction(Reduction::Sum);
    let x = [1e30, -1e30, 0.0, 1e4, -1e4, 0.0];
    let mut grad = [0.0; 6];
    // Sample 0: p = [1, 0, 0], target 1: loss 2e30. Sample 1: target 2: loss 1e4.
    let v = ce.loss_and_grad(&x, 2, Shape::features(3), &[1, 2], &mut grad).unwrap();
    assert_close("value", &[v], &[2e30 + 1e4], 1e-6, 0.0);
    assert_close("grad", &grad, &[1.0, -1.0, 0.0, 1.0, 0.0, -1.0], 0.0, 1e-6);

    let bce = BCEWithLogitsLoss::new().reduction(Reduction::None);
    let mut out = [0.0; 4];
    bce.forward(
        &[1e4, -1e4, 1e4, -1e4],
        1,
        Shape::features(4),
        &[1.0, 0.0, 0.0, 1.0],
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [0.0, 0.0, 1e4, 1e4]);
}

#[test]
fn bce_clamps_log_at_minus_100() {
    let bce = BCELoss::new().reduction(Reduction::None);
    let mut out = [0.0; 4];
    bce.forward(
        &[0.0, 1.0, 0.0, 1.0],
        1,
        Shape::features(4),
        &[1.0, 0.0, 0.0, 1.0],
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [100.0, 100.0, 0.0, 0.0]);
}

#[test]
fn label_out_of_range() {
    let x = [0.0f32; 2 * 3 * 2];
    let sample = Shape::cl(3, 2);
    let mut out = [0.0];
    let err = CrossEntropyLoss::new()
        .forward(&x, 2, sample, &[0, 2, 1, 3], &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        Error::LabelOutOfRange {
            index: 3,
            label: 3,
            classes: 3
        }
    );
    let mut grad = [0.0; 12];
    let err = NLLLoss::new()
        .loss_and_grad(&x, 2, sample, &[7, 0, 0, 0], &mut grad)
        .unwrap_err();
    assert_eq!(
        err,
        Error::LabelOutOfRange {
            index: 0,
            label: 7,
            classes: 3
        }
    );
    // An ignored label may be anything; the others must still be in range.
    let ce = CrossEntropyLoss::new().ignore_index(255);
    assert!(ce.loss(&x, 2, sample, &[0, 255, 1, 2]).is_ok());
    assert_eq!(
        ce.loss(&x, 2, sample, &[0, 255, 254, 2]),
        Err(Error::LabelOutOfRange {
            index: 2,
            label: 254,
            classes: 3
        })
    );
}

#[test]
fn bad_label_smoothing() {
    let x = [0.0f32; 4];
    for ls in [-0.1, 1.5, f32::NAN] {
        let err = CrossEntropyLoss::new()
            .label_smoothing(ls)
            .loss(&x, 2, Shape::features(2), &[0, 1]);
        assert_eq!(
            err,
            Err(Error::InvalidArgument {
                name: "label_smoothing",
                expected: "must be in [0, 1]"
            })
        );
    }
    for ls in [0.0, 1.0] {
        assert!(CrossEntropyLoss::new()
            .label_smoothing(ls)
            .loss(&x, 2, Shape::features(2), &[0, 1])
            .is_ok());
    }
}

#[test]
fn bce_rejects_non_probabilities() {
    for bad in [-0.01, 1.01, f32::NAN] {
        let err = BCELoss::new().loss(&[0.5, bad], 1, Shape::features(2), &[1.0, 0.0]);
        assert_eq!(
            err,
            Err(Error::InvalidArgument {
                name: "input",
                expected: "must be in [0, 1]"
            })
        );
    }
}

#[test]
fn wrong_lengths() {
    fn len<T>(buffer: Buffer, expected: usize, found: usize) -> Result<T, Error> {
        Err(Error::BufferLength {
            buffer,
            expected,
            found,
        })
    }
    let s = Shape::features(3);
    let x = [0.1f32; 6];
    let t = [0.5f32; 6];
    let l1 = L1Loss::new();
    assert_eq!(l1.loss(&x[..5], 2, s, &t), len(Buffer::Input, 6, 5));
    assert_eq!(l1.loss(&x, 2, s, &t[..4]), len(Buffer::Target, 6, 4));
    assert_eq!(l1.forward(&x, 2, s, &t, &mut [0.0; 2]), len(Buffer::Output, 1, 2));
    let none = MSELoss::new().reduction(Reduction::None);
    assert_eq!(none.forward(&x, 2, s, &t, &mut [0.0; 1]), len(Buffer::Output, 6, 1));
    assert_eq!(
        none.backward(&x, 2, s, &t, &[1.0], &mut [0.0; 6]),
        len(Buffer::Gradient, 6, 1)
    );
    assert_eq!(
        l1.backward(&x, 2, s, &t, &[1.0], &mut [0.0; 7]),
        len(Buffer::Gradient, 6, 7)
    );
    assert_eq!(
        BCELoss::new().loss_and_grad(&x, 2, s, &t, &mut [0.0; 3]).map(|_| ()),
        len(Buffer::Gradient, 6, 3)
    );
    let pw = [1.0f32; 2];
    assert_eq!(
        BCEWithLogitsLoss::new().pos_weight(&pw).loss(&x, 2, s, &t),
        len(Buffer::Weight, 3, 2)
    );

    let labels = [0u32, 1];
    let w = [1.0f32; 2];
    let ce = CrossEntropyLoss::new();
    assert_eq!(ce.loss(&x, 2, s, &labels[..1]), len(Buffer::Target, 2, 1));
    assert_eq!(ce.weight(&w).loss(&x, 2, s, &labels), len(Buffer::Weight, 3, 2));
    assert_eq!(ce.forward(&x, 2, s, &labels, &mut []), len(Buffer::Output, 1, 0));
    let none = ce.reduction(Reduction::None);
    assert_eq!(
        none.backward(&x, 2, s, &labels, &[1.0; 3], &mut [0.0; 6]),
        len(Buffer::Gradient, 2, 3)
    );
    assert_eq!(
        none.backward(&x, 2, s, &labels, &[1.0; 2], &mut [0.0; 5]),
        len(Buffer::Gradient, 6, 5)
    );
    assert_eq!(
        NLLLoss::new().weight(&w).loss(&x, 2, s, &labels),
        len(Buffer::Weight, 3, 2)
    );
    assert_eq!(NLLLoss::new().loss(&x, 3, s, &labels), len(Buffer::Input, 9, 6));
}

#[test]
fn empty_batch_does_not_panic() {
    let s = Shape::chw(3, 2, 2);
    let mut grad: [f32; 0] = [];
    for r in ALL {
        assert!(CrossEntropyLoss::new()
            .reduction(r)
            .loss_and_grad(&[], 0, s, &[], &mut grad)
            .is_ok());
        assert!(L1Loss::new()
            .reduction(r)
            .loss_and_grad(&[], 0, s, &[], &mut grad)
            .is_ok());
    }
    // Zero classes: no label can be valid.
    let z = Shape::cl(0, 2);
    assert_eq!(
        NLLLoss::new().loss(&[], 1, z, &[0, 0]),
        Err(Error::LabelOutOfRange {
            index: 0,
            label: 0,
            classes: 0
        })
    );
}

#[test]
fn usable_as_trait_objects() {
    // A training loop can hold any loss behind `dyn Loss`.
    let losses: [&dyn Loss<Target = [f32]>; 2] = [&L1Loss::new(), &MSELoss::new()];
    let mut grad = [0.0; 2];
    let values: Vec<f32> = losses
        .iter()
        .map(|l| {
            l.loss_and_grad(&[1.0, 2.0], 1, Shape::features(2), &[0.0, 0.0], &mut grad)
                .unwrap()
        })
        .collect();
    assert_eq!(values, [1.5, 2.5]);
    assert_eq!(grad, [1.0, 2.0]);
}
