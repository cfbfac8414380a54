//! int8 models end to end: the core's int8 executor against the `f32` network on random small
//! models (conv, BatchNorm folding, ReLU/ReLU6 fusion, fused conv->pool, max/avg/adaptive
//! pooling, residual add, concat, dropout, linear), `torchlet quantize` on a trained
//! digits-cnn (accuracy within 2 points of f32), the int8 file round trip (bit for bit), a
//! corrupted int8 file refused, and the bad inputs (one-class calibration, a layer without an
//! int8 kernel, NaN activations).

use std::path::Path;
use std::process::Command;

use torchlet::layer::*;
use torchlet::{Rng, Shape};
use torchlet_host::model::Model;
use torchlet_host::quant::{calibrate, quantize, Observer, QuantizedModel};

static CONV_BN: [Layer; 10] = [
    conv2d(3, 8, 3).padding(1),
    batch_norm2d(8),
    relu(),
    max_pool2d(2),
    conv2d(8, 8, 3).padding(1),
    batch_norm2d(8),
    relu6(),
    avg_pool2d(2),
    flatten(),
    linear(8 * 2 * 2, 5),
];

static BODY: [Layer; 2] = [conv2d(4, 4, 3).padding(1), batch_norm2d(4)];
static BRANCH: [Layer; 2] = [conv2d(4, 3, 1), relu()];
static RESIDUAL: [Layer; 9] = [
    conv2d(2, 4, 3).padding(1),
    relu(),
    residual(&BODY, &[]),
    relu(),
    concat(&BRANCH, &[]),
    dropout(0.5),
    adaptive_avg_pool2d(1, 1),
    flatten(),
    linear(7, 4),
];

static MLP: [Layer; 4] = [linear(16, 12), relu(), linear(12, 12), linear(12, 3)];

static WITH_SIGMOID: [Layer; 3] = [linear(4, 4), sigmoid(), linear(4, 2)];

/// `n` samples of `shape` uniform in [-1, 1).
fn inputs(shape: Shape, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * shape.numel()).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// A model with random weights and, for BatchNorm, random running statistics.
fn model(name: &str, layers: &'static [Layer<'static>], input: Shape, seed: u64) -> Model {
    let mut m = Model::new(name, layers, input, &[], seed).unwrap();
    let mut rng = Rng::new(seed + 100);
    let plan = m.plan(1, torchlet::Mode::Inference).unwrap();
    let nodes: Vec<_> = plan.nodes().to_vec();
    drop(plan);
    for n in nodes {
        if let torchlet::plan::Exec::BatchNorm(g) = n.exec {
            let st = &mut m.state[n.state_offset..n.state_offset + n.state_len];
            for c in 0..g.c {
                st[c] = rng.uniform(-0.1, 0.1);
                st[g.c + c] = rng.uniform(0.5, 1.5);
            }
            let p = &mut m.params[n.param_offset..n.param_offset + n.param_len()];
            for v in p.iter_mut() {
                *v = rng.uniform(0.5, 1.5);
            }
        }
    }
    m
}

/// Quantises `m` on `x` and returns (the int8 model, max |int8 - f32| in output quanta, mean).
fn compare(m: &Model, x: &[f32]) -> (QuantizedModel, f32, f32) {
    let ranges = calibrate(m, x, 16, Observer::MinMax, |_| {}).unwrap();
    let q = quantize(m, &ranges).unwrap();
    let want = m.forward(x).unwrap();
    let got = q.forward(x).unwrap();
    let scale = q.nodes.last().unwrap().out.scale;
    let errs: Vec<f32> = want.iter().zip(&got).map(|(a, b)| (a - b).abs() / scale).collect();
    let max = errs.iter().copied().fold(0.0, f32::max);
    (q, max, errs.iter().sum::<f32>() / errs.len() as f32)
}

#[test]
fn executor_matches_f32_within_a_few_quanta() {
    let cases: [(&str, &'static [Layer<'static>], Shape); 3] = [
        ("conv-bn", &CONV_BN, Shape::chw(3, 8, 8)),
        ("residual", &RESIDUAL, Shape::chw(2, 6, 6)),
        ("mlp", &MLP, Shape::features(16)),
    ];
    for (name, layers, shape) in cases {
        for seed in 0..4 {
            let m = model(name, layers, shape, seed);
            let x = inputs(shape, 48, seed + 7);
            let (_, max, mean) = compare(&m, &x);
            eprintln!("{name} seed {seed}: max {max:.2} quanta, mean {mean:.2}");
            assert!(
                max <= 4.0 && mean <= 1.0,
                "{name} seed {seed}: max {max} mean {mean} quanta"
            );
        }
    }
}

#[test]
fn int8_file_round_trip_is_bit_exact_and_corruption_is_refused() {
    let m = model("conv-bn", &CONV_BN, Shape::chw(3, 8, 8), 3);
    let x = inputs(Shape::chw(3, 8, 8), 20, 5);
    let (q, _, _) = compare(&m, &x);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.tlm");
    q.save(&path).unwrap();
    let back = QuantizedModel::load(&path).unwrap();
    assert_eq!(back, q);
    let (a, b) = (q.forward(&x).unwrap(), back.forward(&x).unwrap());
    assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    // An f32 loader refuses it with a clear message, and every flipped byte is refused.
    let e = Model::load(&path).unwrap_err().to_string();
    assert!(e.contains("int8"), "{e}");
    let bytes = std::fs::read(&path).unwrap();
    for i in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x21;
        assert!(
            QuantizedModel::from_bytes(&bad, &path).is_err(),
            "byte {i} flipped was accepted"
        );
    }
    // The int8 flag is unknown to version 1.
    let mut v1 = bytes.clone();
    v1[8] = 1;
    let e = QuantizedModel::from_bytes(&v1, &path).unwrap_err().to_string();
    assert!(e.contains("flag"), "{e}");
    let e = QuantizedModel::from_bytes(&bytes[..bytes.len() - 9], &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("q.tlm"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    // A layer without an int8 kernel: named, with the suggestion.
    let m = model("sig", &WITH_SIGMOID, Shape::features(4), 1);
    let x = inputs(Shape::features(4), 8, 2);
    let r = calibrate(&m, &x, 8, Observer::MinMax, |_| {}).unwrap();
    let e = quantize(&m, &r).unwrap_err().to_string();
    assert!(
        e.contains("layer 1") && e.contains("Sigmoid") && e.contains("keep the model in f32"),
        "{e}"
    );
    // NaN activations.
    let mut m = model("mlp", &MLP, Shape::features(16), 1);
    m.params[0] = f32::NAN;
    let x = inputs(Shape::features(16), 8, 2);
    let e = calibrate(&m, &x, 8, Observer::Percentile, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("NaN") && e.contains("layer 0"), "{e}");
    // No images.
    let m = model("mlp", &MLP, Shape::features(16), 1);
    assert!(calibrate(&m, &[], 8, Observer::MinMax, |_| {}).is_err());
}

fn torchlet(args: &[&str], dir: &Path) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The accuracy (percent) on the line `accuracy: f32 A%  int8 B% ...`.
fn accuracies(report: &str) -> (f64, f64) {
    let line = report.lines().find(|l| l.starts_with("accuracy:")).unwrap();
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.strip_suffix('%').and_then(|v| v.parse().ok()))
        .collect();
    (nums[0], nums[1])
}

#[test]
fn quantize_trained_digits_cnn_keeps_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = torchlet(&["train", "--quiet", "--epochs", "3", "--out", "run"], d);
    assert!(ok, "{err}");
    for observer in ["minmax", "percentile"] {
        let (ok, out, err) = torchlet(
            &[
                "quantize",
                "--model",
                "run/best.tlm",
                "--calibration",
                "300",
                "--out",
                "q.tlm",
                "--quiet",
                "--observer",
                observer,
            ],
            d,
        );
        assert!(ok, "{err}");
        let (f, q) = accuracies(&out);
        eprintln!("{observer}: f32 {f}% int8 {q}%");
        assert!(f > 80.0 && (f - q).abs() <= 2.0, "{out}");
    }
    // eval and predict on the int8 file, inspect shows int8 sizes.
    let (ok, out, err) = torchlet(&["eval", "--model", "q.tlm"], d);
    assert!(ok && out.contains("int8") && out.contains("accuracy"), "{out}{err}");
    let (ok, out, _) = torchlet(&["inspect", "q.tlm"], d);
    assert!(
        ok && out.contains("int8 parameters") && out.contains("int8 arena"),
        "{out}"
    );
    let img = d.join("seven.png");
    image::GrayImage::from_fn(8, 8, |x, y| {
        image::Luma([if y == 1 || x == 6 - y / 2 { 255 } else { 0 }])
    })
    .save(&img)
    .unwrap();
    let (ok, out, err) = torchlet(&["predict", "--model", "q.tlm", "--json", img.to_str().unwrap()], d);
    assert!(ok && out.contains("\"dtype\":\"int8\""), "{out}{err}");
}

#[test]
fn quantize_refuses_one_class_calibration_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = torchlet(&["train", "--quiet", "--epochs", "1", "--out", "run"], d);
    assert!(ok, "{err}");
    let (ok, _, err) = torchlet(
        &[
            "quantize",
            "--model",
            "run/best.tlm",
            "--calibration",
            "1",
            "--out",
            "q.tlm",
            "--quiet",
        ],
        d,
    );
    assert!(!ok && err.contains("--calibration") && err.contains("class"), "{err}");
    assert!(!d.join("q.tlm").exists());
    let (ok, _, err) = torchlet(
        &[
            "quantize",
            "--model",
            "run/best.tlm",
            "--calibration",
            "0",
            "--out",
            "q.tlm",
        ],
        d,
    );
    assert!(!ok && err.contains("--calibration"), "{err}");
    // An int8 file is not a model to quantise.
    let (ok, _, _) = torchlet(
        &[
            "quantize",
            "--model",
            "run/best.tlm",
            "--calibration",
            "50",
            "--out",
            "q.tlm",
            "--quiet",
        ],
        d,
    );
    assert!(ok);
    let (ok, _, err) = torchlet(
        &[
            "quantize",
            "--model",
            "q.tlm",
            "--calibration",
            "50",
            "--out",
            "q2.tlm",
            "--quiet",
        ],
        d,
    );
    assert!(!ok && err.contains("int8"), "{err}");
}
