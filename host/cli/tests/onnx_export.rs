//! `torchlet export --target onnx` and `Model::to_onnx`: every file passes the `onnx` package's
//! full checker and gives torchlet's outputs in onnxruntime (`tools/onnx_check.py`), at batch 1
//! and 64, for the zoo and for a model with every exported layer kind; layers without an ONNX
//! form and bad opsets are errors that name them, and nothing is written then.
//!
//! Needs `python3` with `onnx`, `onnxruntime` and `numpy` (CI installs them: `tools/test-all.sh`).
//! Without them the onnxruntime checks say so and are skipped, unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use torchlet::layer::*;
use torchlet::ops::geom::PaddingMode;
use torchlet::Shape;
use torchlet_host::model::Model;
use torchlet_host::onnx::OnnxError;

/// Whether `python3` can import onnx and onnxruntime; panics in CI when it cannot.
fn have_onnxruntime() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let ok = Command::new("python3")
            .args(["-c", "import onnx, onnxruntime, numpy"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs `python3 -m pip install onnx onnxruntime numpy` (tools/test-all.sh installs them)"
            );
            eprintln!("SKIPPED: onnxruntime checks need `python3 -m pip install onnx onnxruntime numpy`");
        }
        ok
    })
}

fn work() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Inputs in [0, 1) from a small LCG (what `predict` feeds: pixels as ToTensor gives them).
fn inputs(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect()
}

/// Exports `model` (opset `opset`) and checks it with onnxruntime at batch 1 and 64.
fn check(model: &Model, opset: i64) {
    let bytes = model.to_onnx(opset).unwrap_or_else(|e| panic!("{}: {e}", model.name));
    if !have_onnxruntime() {
        return;
    }
    let dir = work();
    let file = dir.join(format!("{}-{opset}.onnx", model.name));
    std::fs::write(&file, bytes).unwrap();
    for batch in [1usize, 64] {
        let x = inputs(batch * model.input.numel(), batch as u32);
        let y = model.forward(&x).unwrap();
        // Per model and batch: the tests run in parallel in one folder.
        let stem = format!("{}-{opset}-{batch}", model.name);
        let (xi, yi) = (dir.join(format!("{stem}.x.f32")), dir.join(format!("{stem}.y.f32")));
        write_f32(&xi, &x);
        write_f32(&yi, &y);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/onnx_check.py");
        let out = Command::new("python3")
            .arg(&script)
            .args([&file, &xi, &yi])
            .arg(batch.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} at batch {batch}: {text}{}",
            model.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("\"batch_dim\": \"batch\""), "{text}");
    }
}

/// Parameters and BatchNorm statistics moved off their initial values (BatchNorm's 1 and 0
/// would hide a swapped scale and bias).
fn perturbed(mut m: Model) -> Model {
    let p = inputs(m.params.len(), 3);
    for (w, r) in m.params.iter_mut().zip(p) {
        *w += 0.2 * (r - 0.5);
    }
    let s = inputs(m.state.len(), 4);
    for (v, r) in m.state.iter_mut().zip(s) {
        // Running means and variances in [0.5, 1.5).
        *v = 0.5 + r;
    }
    m
}

#[test]
fn zoo_models_run_in_onnxruntime_as_in_torchlet() {
    for name in ["digits-cnn", "tutorial-cnn", "lenet5", "mcu-cnn", "resnet18"] {
        let m = perturbed(Model::from_zoo(name, 1).unwrap());
        check(&m, 17);
    }
}

static BLOCK: [Layer; 3] = [conv2d(8, 8, 3).padding(1), batch_norm2d(8), leaky_relu(0.1)];
static NONE: [Layer; 0] = [];
static BRANCH_A: [Layer; 2] = [conv2d(8, 4, 1), elu()];
static BRANCH_B: [Layer; 2] = [
    conv2d(8, 4, 3).padding(1).padding_mode(PaddingMode::Replicate),
    hardswish(),
];
static EVERY_KIND: [Layer; 22] = [
    conv2d(3, 8, 3).padding(1).padding_mode(PaddingMode::Reflect),
    batch_norm2d(8),
    relu6(),
    residual(&BLOCK, &NONE),
    concat(&BRANCH_A, &BRANCH_B),
    max_pool2d(3).stride(2).ceil_mode(true),
    prelu().num_parameters(8),
    conv2d(8, 8, 3).groups(2).dilation(2).padding(2).bias(false),
    hardsigmoid(),
    avg_pool2d(2).count_include_pad(false).padding(1),
    replication_pad2d([1, 1, 0, 2]),
    silu(),
    adaptive_avg_pool2d(2, 2),
    dropout2d(0.3),
    flatten(),
    linear(32, 24),
    batch_norm1d(24),
    gelu(),
    dropout(0.5),
    linear(24, 10),
    softplus().beta(2.0),
    log_softmax(1),
];

#[test]
fn every_exported_layer_kind_matches_onnxruntime() {
    let classes: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    let m = perturbed(Model::new("every-kind", &EVERY_KIND[..], Shape::chw(3, 12, 12), &classes, 5).unwrap());
    for opset in [14, 17, 21] {
        check(&m, opset);
    }
    static MORE: [Layer; 6] = [
        conv1d(2, 4, 3).padding(1).padding_mode(PaddingMode::Circular),
        mish(),
        adaptive_avg_pool1d(1),
        flatten(),
        linear(4, 3),
        softmax(1),
    ];
    let m = perturbed(Model::new("circular", &MORE[..], Shape::cl(2, 16), &["a", "b", "c"], 6).unwrap());
    // Circular padding is ONNX's `wrap`, opset 19 and later.
    match m.to_onnx(17) {
        Err(OnnxError::Unsupported { layer, why, .. }) => {
            assert_eq!(layer, "0");
            assert!(why.contains("--opset 19"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    check(&m, 19);
}

fn torchlet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_writes_onnx_and_refuses_what_it_cannot_write() {
    let out: PathBuf = work().join("cli.onnx");
    let o = torchlet(&[
        "export",
        "--target",
        "onnx",
        "--model",
        "digits-cnn",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("as ONNX (IR version 8, opset 17)"), "{text}");
    assert!(std::fs::metadata(&out).unwrap().len() > 24_000);

    let bad = work().join("bad.onnx");
    let o = torchlet(&[
        "export",
        "--target",
        "onnx",
        "--model",
        "digits-cnn",
        "--opset",
        "9",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--opset 9: torchlet writes ONNX opsets 14 to 21"), "{err}");
    assert!(!bad.exists(), "nothing is written on an error");
}

#[test]
fn a_layer_without_an_onnx_form_is_named() {
    static UP: [Layer; 2] = [conv_transpose2d(1, 2, 2).stride(2), flatten()];
    let m = Model::new("up", &UP[..], Shape::chw(1, 4, 4), &["x"], 1).unwrap();
    let e = m.to_onnx(17).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("layer 0 (ConvTranspose2d) cannot be exported to ONNX"),
        "{text}"
    );
}
