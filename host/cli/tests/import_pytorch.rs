//! PyTorch state dicts imported by `Model::load_pytorch_state_dict` and `torchlet import`:
//! the fixtures of `tools/fixtures/pytorch_state_dicts.py` (written by PyTorch, run by hand;
//! no PyTorch is needed here) predict PyTorch's softmax probabilities within 1e-4; a wrong
//! architecture fails with the state-dict messages; `--non-strict` reports what it skipped;
//! a pickle calling `os.system`, truncated or garbage files and storages declared beyond the
//! file are refused with errors naming the file, and nothing runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use torchlet::layer::*;
use torchlet::Shape;
use torchlet_host::model::{Model, ModelError};
use torchlet_host::zoo::{self, ZooConfig};

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pytorch")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Basic block, 8 channels, identity shortcut (no final ReLU: the next layer is one).
const BLOCK1: [Layer; 5] = [
    conv2d(8, 8, 3).padding(1).bias(false),
    batch_norm2d(8),
    relu(),
    conv2d(8, 8, 3).padding(1).bias(false),
    batch_norm2d(8),
];
/// Basic block, 8 -> 16 channels with stride 2, and its 1x1 projection shortcut.
const BLOCK2: [Layer; 5] = [
    conv2d(8, 16, 3).stride(2).padding(1).bias(false),
    batch_norm2d(16),
    relu(),
    conv2d(16, 16, 3).padding(1).bias(false),
    batch_norm2d(16),
];
const SHORTCUT2: [Layer; 2] = [conv2d(8, 16, 1).stride(2).bias(false), batch_norm2d(16)];
/// The fixture's `resnet_bn()`.
const RESNET_BN: [Layer; 10] = [
    conv2d(3, 8, 3).padding(1).bias(false),
    batch_norm2d(8),
    relu(),
    residual(&BLOCK1, &[]),
    relu(),
    residual(&BLOCK2, &SHORTCUT2),
    relu(),
    adaptive_avg_pool2d(1, 1),
    flatten(),
    linear(16, 10),
];

/// A fresh model for fixture `name` (a zoo name, or `resnet-bn`).
fn model(name: &str) -> Model {
    match name {
        "resnet-bn" => Model::new("resnet-bn", &RESNET_BN, Shape::chw(3, 8, 8), &[], 99).unwrap(),
        zoo => Model::from_zoo(zoo, 99).unwrap(),
    }
}

/// The model's probabilities on the fixture's inputs match PyTorch's within [`TOL`].
fn assert_predicts_as_pytorch(m: &Model, name: &str, what: &str) {
    let fx = &expected()[name];
    let x = floats(&fx["x"]);
    let want = floats(&fx["probs"]);
    let logits = m.forward(&x).unwrap();
    let k = logits.len() / 3;
    let got: Vec<f32> = logits
        .chunks(k)
        .flat_map(torchlet_host::cli::predict::softmax)
        .collect();
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= TOL,
            "{what}: probability {i}: torchlet {g}, PyTorch {w}"
        );
    }
}

#[test]
fn every_fixture_predicts_as_pytorch() {
    for name in ["digits-cnn", "mcu-cnn", "resnet-bn"] {
        for ext in ["pth", "safetensors"] {
            let file = fixture(&format!("{name}.{ext}"));
            let mut m = model(name);
            let before = m.clone();
            let report = m
                .load_pytorch_state_dict(&file, true)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(report.missing.is_empty() && report.unexpected.is_empty(), "{report:?}");
            assert_ne!(m.params, before.params, "{name}.{ext}: the weights were loaded");
            assert_predicts_as_pytorch(&m, name, &format!("{name}.{ext}"));
        }
    }
}

#[test]
fn residual_bodies_load_under_pytorch_block_names() {
    // The resnet-bn file renamed as torchvision's BasicBlock holds its body's layers:
    // "3.body.0.weight" -> "3.0.weight" (the shortcut keeps its name).
    let bytes = std::fs::read(fixture("resnet-bn.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let renamed: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name.replace(".body.", "."), view))
        .collect();
    assert!(renamed.iter().any(|(n, _)| n == "3.0.weight"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pytorch-names.safetensors");
    safetensors::serialize_to_file(renamed, None, &file).unwrap();
    let mut m = model("resnet-bn");
    let report = m.load_pytorch_state_dict(&file, true).unwrap();
    assert_eq!(report, Default::default());
    assert_predicts_as_pytorch(&m, "resnet-bn", "resnet-bn under BasicBlock names");
}

#[test]
fn batch_norm_state_is_loaded_with_num_batches_tracked() {
    let mut m = model("resnet-bn");
    m.load_pytorch_state_dict(&fixture("resnet-bn.pth"), true).unwrap();
    // Five BatchNorms: [running_mean[C], running_var[C], num_batches_tracked] each; the
    // first has 8 channels and saw three training batches.
    assert_eq!(m.state[16], 3.0, "num_batches_tracked (int64 in the file)");
    assert!(
        m.state[8..16].iter().all(|&v| v > 0.0 && v != 1.0),
        "running_var: {:?}",
        &m.state[8..16]
    );
}

#[test]
fn a_wrong_architecture_fails_with_the_state_dict_messages() {
    // digits-cnn weights into mcu-cnn: the first conv's shape differs.
    let mut m = Model::from_zoo("mcu-cnn", 0).unwrap();
    let file = fixture("digits-cnn.pth");
    let e = m.load_pytorch_state_dict(&file, true).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ModelError::ShapeMismatch { .. }), "{text}");
    assert!(
        text.contains("digits-cnn.pth: tensor '0.weight': shape [16, 1, 3, 3] in the file, [8, 1, 3, 3] in the model"),
        "{text}"
    );
    // Into a model of other names and shapes: the first mismatch, named.
    let mut m = model("resnet-bn");
    let e = m
        .load_pytorch_state_dict(&fixture("digits-cnn.safetensors"), true)
        .unwrap_err();
    assert!(
        matches!(e, ModelError::ShapeMismatch { .. } | ModelError::Keys { .. }),
        "{e}"
    );
    // A head of another size: the classifier's shape, named.
    let config = ZooConfig {
        num_classes: Some(3),
        ..ZooConfig::default()
    };
    let mut m = zoo::build("digits-cnn", &config, 0).unwrap();
    let text = m.load_pytorch_state_dict(&file, true).unwrap_err().to_string();
    assert!(
        text.contains("tensor '7.weight': shape [10, 128] in the file, [3, 128] in the model"),
        "{text}"
    );
}

#[test]
fn strict_keys_and_the_non_strict_report() {
    let file = fixture("resnet-bn.safetensors");
    // A model lacking the file's last layer: the file's 9.weight/9.bias are unexpected.
    const NO_HEAD: [Layer; 7] = [
        conv2d(3, 8, 3).padding(1).bias(false),
        batch_norm2d(8),
        relu(),
        residual(&BLOCK1, &[]),
        relu(),
        residual(&BLOCK2, &SHORTCUT2),
        relu(),
    ];
    let mut m = Model::new("no-head", &NO_HEAD, Shape::chw(3, 8, 8), &[], 0).unwrap();
    let e = m.load_pytorch_state_dict(&file, true).unwrap_err();
    assert!(matches!(e, ModelError::Keys { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(
            "error(s) in loading state_dict (strict): unexpected key(s) in the file: \"9.bias\", \"9.weight\"."
        ),
        "{text}"
    );
    let before = m.clone();
    let report = m.load_pytorch_state_dict(&file, false).unwrap();
    assert_eq!(report.unexpected, ["9.bias", "9.weight"]);
    assert!(report.missing.is_empty());
    assert_ne!(m.params, before.params);
    // The other way round: the file lacks the model's head.
    let mut m = model("resnet-bn");
    let mut src = Model::new("no-head", &NO_HEAD, Shape::chw(3, 8, 8), &[], 0).unwrap();
    src.load_pytorch_state_dict(&file, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tlm = dir.path().join("no-head.tlm");
    src.save_state_dict(&tlm).unwrap();
    let report = m.load_state_dict(&tlm, false).unwrap();
    assert_eq!(report.missing, ["9.weight", "9.bias"]);
}

#[test]
fn bad_files_are_refused_naming_the_file() {
    let cases = [
        ("garbage.pth", "not a PyTorch file"),
        ("truncated.pth", "not a PyTorch file"),
        (
            "oversized_storage.pth",
            "tensor '7.bias': its storage declares 1099511627776 elements",
        ),
        ("view_beyond_storage.pth", "tensor '7.bias': its view"),
        ("evil_os_system.pth", "global 'posix.system' is not allowed"),
    ];
    for (name, want) in cases {
        let file = fixture(name);
        let mut m = Model::from_zoo("digits-cnn", 0).unwrap();
        let before = m.clone();
        let e = m.load_pytorch_state_dict(&file, true).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ModelError::PyTorch { .. }), "{name}: {text}");
        assert!(text.starts_with(&file.display().to_string()), "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
        assert_eq!(m, before, "{name}: the model is unchanged");
    }
    // The legacy format: a pickle, not a zip.
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.pth");
    std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").unwrap();
    let text = Model::from_zoo("digits-cnn", 0)
        .unwrap()
        .load_pytorch_state_dict(&legacy, true)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("legacy.pth: not a PyTorch file") && text.contains("the legacy torch.save format"),
        "{text}"
    );
    // A .safetensors that is not one.
    let bad = dir.path().join("bad.safetensors");
    let mut bytes = std::fs::read(fixture("digits-cnn.safetensors")).unwrap();
    bytes.truncate(bytes.len() - 7);
    std::fs::write(&bad, &bytes).unwrap();
    let text = Model::from_zoo("digits-cnn", 0)
        .unwrap()
        .load_pytorch_state_dict(&bad, true)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("bad.safetensors: not a valid .safetensors file"),
        "{text}"
    );
}

fn torchlet(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn cli_imports_and_the_model_predicts_as_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ext) in [("digits-cnn", "pth"), ("mcu-cnn", "safetensors")] {
        let out = dir.path().join(format!("{name}.tlm"));
        let file = fixture(&format!("{name}.{ext}"));
        let o = torchlet(
            dir.path(),
            &[
                "import",
                file.to_str().unwrap(),
                "--arch",
                name,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            stdout.contains("tensors loaded") && stdout.contains("wrote"),
            "{stdout}"
        );
        let m = Model::load(&out).unwrap();
        assert_eq!(m.name, name);
        assert_predicts_as_pytorch(&m, name, &format!("torchlet import {name}.{ext}"));
    }
    // --num-classes changes the head: its shape no longer matches (nothing is written);
    // --classes must name every output.
    let out = dir.path().join("three.tlm");
    let file = fixture("digits-cnn.pth");
    let args = [
        "import",
        file.to_str().unwrap(),
        "--arch",
        "digits-cnn",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = torchlet(dir.path(), &[&args[..], &["--num-classes", "3"]].concat());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tensor '7.weight': shape [10, 128] in the file, [3, 128] in the model"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written on failure");
    let o = torchlet(dir.path(), &[&args[..], &["--classes", "a,b"]].concat());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--classes names 2 classes"),
        "{o:?}"
    );
}

#[test]
fn cli_refuses_the_malicious_pickle_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.tlm");
    let file = fixture("evil_os_system.pth");
    let o = torchlet(
        dir.path(),
        &[
            "import",
            file.to_str().unwrap(),
            "--arch",
            "digits-cnn",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("evil_os_system.pth") && err.contains("'posix.system' is not allowed"),
        "{err}"
    );
    assert!(!dir.path().join("TORCHLET_PWNED").exists(), "the payload ran");
    assert!(!out.exists());
}

#[test]
fn cli_needs_arch_for_state_dicts_and_refuses_it_for_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("digits-cnn.pth");
    let o = torchlet(dir.path(), &["import", file.to_str().unwrap(), "--out", "m.tlm"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--arch ZOO-NAME"), "{o:?}");
    // An ONNX file carries its architecture: --arch is refused, naming the flag and the file.
    let o = torchlet(
        dir.path(),
        &["import", "m.onnx", "--arch", "digits-cnn", "--out", "m.tlm"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--arch applies to state dicts") && err.contains("m.onnx is an ONNX file"),
        "{err}"
    );
    assert!(!dir.path().join("m.tlm").exists());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any few bytes of a real `.pth` or `.safetensors` changed: the import loads or fails
    /// with an error naming the file, and never panics.
    #[test]
    fn mutated_files_never_panic(
        safetensors in proptest::bool::ANY,
        edits in proptest::collection::vec((0.0f64..1.0, proptest::num::u8::ANY), 1..6),
    ) {
        let name = if safetensors { "digits-cnn.safetensors" } else { "digits-cnn.pth" };
        let mut bytes = std::fs::read(fixture(name)).unwrap();
        for (at, b) in edits {
            let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
            bytes[i] = b;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        let mut m = Model::from_zoo("digits-cnn", 0).unwrap();
        if let Err(e) = m.load_pytorch_state_dict(&file, true) {
            let text = e.to_string();
            proptest::prop_assert!(text.contains(name), "{}", text);
        }
    }
}
