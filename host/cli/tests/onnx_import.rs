//! `torchlet import m.onnx` and `Model::from_onnx` / `import_onnx`: ONNX files written by
//! PyTorch (`tools/fixtures/onnx_models.py`, run by hand: the classic exporter and the default
//! dynamo one) import and predict PyTorch's probabilities within 1e-4, without PyTorch here;
//! torchlet's own exports round-trip to identical outputs; bad files are refused with errors
//! that name what is wrong, before anything large is allocated.

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use torchlet_host::model::Model;
use torchlet_host::onnx::proto::{ModelProto, NodeProto};
use torchlet_host::onnx::{import_onnx, ImportOptions, OnnxImportError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx")
}

fn softmax(logits: &[f32], n: usize) -> Vec<f32> {
    logits
        .chunks(n)
        .flat_map(|row| {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn pytorch_exports_import_and_predict_as_pytorch() {
    let mut checked = 0;
    for net in ["digits", "resnet", "branches"] {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("{net}.json"))).unwrap()).unwrap();
        let (x, want) = (floats(&json["inputs"]), floats(&json["probabilities"]));
        for exporter in ["classic", "dynamo"] {
            let path = fixtures().join(format!("{net}_{exporter}.onnx"));
            let m = Model::from_onnx(&path, None).unwrap_or_else(|e| panic!("{e}"));
            let dims: Vec<usize> = json["input_shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(m.input.dims(), &dims[..], "{}", path.display());
            let n = m.classes.len();
            assert_eq!(m.classes, (0..n).map(|i| i.to_string()).collect::<Vec<_>>());
            let got = softmax(&m.forward(&x).unwrap(), n);
            assert_eq!(got.len(), want.len());
            let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(diff <= 1e-4, "{}: max |p - p_torch| = {diff}", path.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

/// The layer kinds the PyTorch fixtures must bring in (a mapping that dropped one would
/// still have to predict PyTorch's outputs, but this keeps the fixtures honest).
#[test]
fn fixtures_have_the_layers_they_are_meant_to_test() {
    let print = |f: &str| format!("{:?}", Model::from_onnx(&fixtures().join(f), None).unwrap().layers());
    let resnet = print("resnet_classic.onnx");
    for kind in [
        "Merge { merge: Add",
        "LeakyReLU",
        "AdaptiveAvgPool",
        "Flatten",
        "Linear",
    ] {
        assert!(resnet.contains(kind), "{kind} in {resnet}");
        assert!(print("resnet_dynamo.onnx").contains(kind), "{kind}");
    }
    let branches = print("branches_dynamo.onnx");
    assert!(branches.contains("Merge { merge: Concat") && branches.contains("AvgPool"));
    assert!(print("branches_classic.onnx").contains("Pad2d"));
    assert!(print("digits_classic.onnx").contains("MaxPool"));
}

/// Parameters and BatchNorm statistics moved off their initial values.
fn perturbed(mut m: Model) -> Model {
    let mut s = 12_345u32;
    let mut next = move || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (s >> 8) as f32 / (1u32 << 24) as f32
    };
    m.params.iter_mut().for_each(|w| *w += 0.2 * (next() - 0.5));
    m.state.iter_mut().for_each(|v| *v = 0.5 + next());
    m
}

#[test]
fn torchlet_exports_round_trip_to_identical_outputs() {
    for name in ["digits-cnn", "tutorial-cnn", "lenet5", "mcu-cnn", "resnet18"] {
        let m = perturbed(Model::from_zoo(name, 1).unwrap());
        let bytes = m.to_onnx(17).unwrap();
        let back = import_onnx(&bytes, Path::new("m.onnx"), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.classes, m.classes, "{name}: the exporter's class names are kept");
        assert_eq!(back.input, m.input);
        let n = 3 * m.input.numel();
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        assert_eq!(back.forward(&x).unwrap(), m.forward(&x).unwrap(), "{name}");
        assert_eq!(back.param_count(), m.param_count(), "{name}");
    }
}

fn torchlet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_imports_a_trained_and_exported_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let run = dir.path().join("run");
    let o = torchlet(&["train", "--epochs", "1", "--quiet", "--out", &s(&run)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trained = run.join("last.tlm");
    let onnx = dir.path().join("m.onnx");
    let o = torchlet(&[
        "export",
        "--target",
        "onnx",
        "--model",
        &s(&trained),
        "--out",
        &s(&onnx),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let back = dir.path().join("back.tlm");
    let names = "a,b,c,d,e,f,g,h,i,j";
    let o = torchlet(&["import", &s(&onnx), "--out", &s(&back), "--classes", names]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("10 classes"));
    let (a, b) = (Model::load(&trained).unwrap(), Model::load(&back).unwrap());
    assert_eq!(b.classes, names.split(',').collect::<Vec<_>>());
    let x: Vec<f32> = (0..5 * 64).map(|i| (i % 17) as f32 / 17.0).collect();
    assert_eq!(a.forward(&x).unwrap(), b.forward(&x).unwrap());

    // Wrong class count: an error, nothing written.
    let none = dir.path().join("none.tlm");
    let o = torchlet(&["import", &s(&onnx), "--out", &s(&none), "--classes", "a,b"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--classes names 2 classes, the model has 10 outputs"));
    assert!(!none.exists());
}

/// A small valid file (digits-cnn exported by torchlet) as a protobuf to break.
fn proto() -> ModelProto {
    let bytes = Model::from_zoo("digits-cnn", 1).unwrap().to_onnx(17).unwrap();
    ModelProto::decode(&bytes[..]).unwrap()
}

fn import(bytes: &[u8]) -> Result<Model, OnnxImportError> {
    import_onnx(bytes, Path::new("bad.onnx"), &ImportOptions::default())
}

fn err(bytes: &[u8]) -> String {
    let e = import(bytes).expect_err("must be refused").to_string();
    assert!(e.starts_with("bad.onnx: "), "{e}");
    e
}

fn nodes(p: &mut ModelProto) -> &mut Vec<NodeProto> {
    &mut p.graph.as_mut().unwrap().node
}

#[test]
fn garbage_and_truncated_files_are_refused() {
    let e = err(b"\x08\x07this is not an onnx file at all \xff\xff\xff\xff");
    assert!(e.contains("not an ONNX protobuf"), "{e}");
    let e = err(b"");
    assert!(e.contains("no graph"), "{e}");
    let whole = proto().encode_to_vec();
    for cut in [10, whole.len() / 3, whole.len() / 2, whole.len() - 1] {
        let e = err(&whole[..cut]);
        assert!(e.contains("not a valid ONNX model"), "{cut}: {e}");
    }
    // Random bytes never panic.
    let mut s = 7u32;
    for len in [1usize, 7, 64, 1000, 5000] {
        let v: Vec<u8> = (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect();
        assert!(import(&v).is_err());
    }
}

#[test]
fn a_cycle_and_a_dangling_input_are_refused() {
    let mut p = proto();
    let last = nodes(&mut p).last().unwrap().output[0].clone();
    let second = nodes(&mut p)[1].output[0].clone();
    nodes(&mut p)[1].input[0] = last.clone();
    let e = err(&p.encode_to_vec());
    assert!(e.contains("on a cycle"), "{e}");
    let _ = second;

    let mut p = proto();
    nodes(&mut p)[2].input[0] = "nowhere".into();
    let e = err(&p.encode_to_vec());
    assert!(e.contains("reads 'nowhere'") && e.contains("dangling"), "{e}");
    assert!(
        e.contains(&format!(
            "{} node '{}'",
            proto().graph.unwrap().node[2].op_type,
            proto().graph.unwrap().node[2].name
        )),
        "{e}"
    );
}

#[test]
fn an_unsupported_node_is_named_with_its_op_and_why() {
    let mut p = proto();
    let n = &mut nodes(&mut p)[1];
    n.op_type = "Resize".into();
    n.name = "up".into();
    match import(&p.encode_to_vec()) {
        Err(OnnxImportError::Unsupported { op, name, why, .. }) => {
            assert_eq!((op.as_str(), name.as_str()), ("Resize", "up"));
            assert!(why.contains("no torchlet layer"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let e = err(&p.encode_to_vec());
    assert!(e.contains("Resize node 'up' cannot be imported"), "{e}");
}

#[test]
fn declared_sizes_beyond_the_file_are_refused_before_allocating() {
    let mut p = proto();
    let g = p.graph.as_mut().unwrap();
    // A terabyte declared in a file of a few kilobytes: refused before anything is decoded.
    g.initializer[0].dims = vec![1 << 20, 1 << 20];
    let e = err(&p.encode_to_vec());
    assert!(e.contains("more than the whole file"), "{e}");
    let mut p = proto();
    p.graph.as_mut().unwrap().initializer[0].dims = vec![i64::MAX, 4];
    let e = err(&p.encode_to_vec());
    assert!(e.contains("overflow") || e.contains("more than the whole file"), "{e}");
    // Declared dims that disagree with the data present.
    let mut p = proto();
    let t = &mut p.graph.as_mut().unwrap().initializer[0];
    t.dims[0] -= 1;
    let e = err(&p.encode_to_vec());
    assert!(e.contains("declare"), "{e}");
}

#[test]
fn external_data_is_refused() {
    let mut p = proto();
    let t = &mut p.graph.as_mut().unwrap().initializer[0];
    t.raw_data.clear();
    t.data_location = 1;
    let e = err(&p.encode_to_vec());
    assert!(e.contains("external file"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// A few bytes of PyTorch's exports changed, or the file cut short: the import gives a model
    /// or an error naming the file, and never panics (in-suite companion of the cargo-fuzz
    /// target `fuzz-host/fuzz_targets/onnx_import.rs`).
    #[test]
    fn mutated_pytorch_exports_never_panic(
        which in 0usize..6,
        edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6),
        cut in proptest::prelude::any::<Option<usize>>(),
    ) {
        let names = [
            "digits_classic.onnx", "digits_dynamo.onnx", "resnet_classic.onnx",
            "resnet_dynamo.onnx", "branches_classic.onnx", "branches_dynamo.onnx",
        ];
        let mut bytes = std::fs::read(fixtures().join(names[which])).unwrap();
        for (at, b) in edits {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        if let Err(e) = import(&bytes) {
            proptest::prop_assert!(e.to_string().starts_with("bad.onnx: "), "{}", e);
        }
    }
}
