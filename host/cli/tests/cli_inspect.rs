//! `torchlet inspect`, run as the built binary.

use std::fs;
use std::process::{Command, Output};

use torchlet::model_file::ModelFile;
use torchlet::optim::Adam;
use torchlet::{Mode, Rng};
use torchlet_host::cli::inspect::group;
use torchlet_host::model::{Checkpoint, Model};

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn inspect_tutorial_cnn_prints_pytorch_repr_parameters_and_arenas() {
    let o = torchlet(&["inspect", "tutorial-cnn"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // print(model) of the same network in PyTorch.
    let pytorch = "Sequential(
  (0): Conv2d(3, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (2): Conv2d(32, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (4): Conv2d(32, 64, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (5): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (6): Flatten(start_dim=1, end_dim=-1)
  (7): Linear(in_features=1024, out_features=64, bias=True)
  (8): Linear(in_features=64, out_features=10, bias=True)
)";
    assert!(out.contains(pytorch), "{out}");
    assert!(out.contains("total parameters: 145,578"), "{out}");
    assert!(
        out.contains("classes: 10 (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)"),
        "{out}"
    );
    let table_row = out.lines().find(|l| l.starts_with("7 ")).expect("a row for layer 7");
    assert!(
        table_row.contains("Linear")
            && table_row.contains("[64]")
            && table_row.contains("65,600")
            && table_row.ends_with("65,536"),
        "{table_row}"
    );
    let m = Model::from_zoo("tutorial-cnn", 0).unwrap();
    let inference = m.plan(1, Mode::Inference).unwrap().arena_bytes();
    let training = m.plan(64, Mode::Training).unwrap().arena_bytes();
    assert!(
        out.contains(&format!("arena (inference, batch 1): {} bytes", group(inference))),
        "{out}"
    );
    assert!(
        out.contains(&format!("arena (training, batch 64): {} bytes", group(training))),
        "{out}"
    );

    let o = torchlet(&["inspect", "tutorial-cnn", "--batch-size", "8"]);
    let training8 = m.plan(8, Mode::Training).unwrap().arena_bytes();
    assert!(stdout(&o).contains(&format!("arena (training, batch 8): {} bytes", group(training8))));
}

#[test]
fn inspect_a_file_shows_size_and_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits.tlm");
    Model::from_zoo("digits-cnn", 4).unwrap().save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    let crc = ModelFile::parse(&bytes).unwrap().crc();
    let o = torchlet(&["inspect", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("checksum: ok (crc32 {crc:#010x})")), "{out}");
    assert!(
        out.contains(&format!(
            "({} bytes, format version 1, whole model)",
            group(bytes.len())
        )),
        "{out}"
    );
    assert!(out.contains("total parameters: 6,090"), "{out}");
    assert!(out.contains("classes: 10 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"), "{out}");
}

#[test]
fn inspect_checkpoints_and_state_dicts() {
    let dir = tempfile::tempdir().unwrap();
    let m = Model::from_zoo("digits-cnn", 4).unwrap();
    let ckpt = dir.path().join("ckpt.tlm");
    let adam = Adam::new(1e-3);
    Checkpoint::new(m.clone(), &adam, &vec![0.0; 2 * m.param_count()], 3, 120, Rng::new(1))
        .save(&ckpt)
        .unwrap();
    let out = stdout(&torchlet(&["inspect", ckpt.to_str().unwrap()]));
    assert!(out.contains("training state: epoch 3, step 120"), "{out}");
    assert!(out.contains("optimizer: Adam(lr=0.001"), "{out}");

    let sd = dir.path().join("weights.tlm");
    m.save_state_dict(&sd).unwrap();
    let o = torchlet(&["inspect", sd.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("state dict:") && out.contains("3.weight") && out.contains("[32, 16, 3, 3]"),
        "{out}"
    );
}

#[test]
fn a_corrupted_or_truncated_file_fails_naming_the_file_and_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.tlm");
    Model::from_zoo("digits-cnn", 0).unwrap().save(&path).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    let bad = dir.path().join("corrupt.tlm");
    fs::write(&bad, &bytes).unwrap();
    let o = torchlet(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("corrupt.tlm: model file: crc"), "{err}");

    fs::write(&bad, &bytes[..10]).unwrap();
    let err = stderr(&torchlet(&["inspect", bad.to_str().unwrap()]));
    assert!(err.contains("corrupt.tlm: model file: "), "{err}");

    let err = stderr(&torchlet(&["inspect", dir.path().join("absent.tlm").to_str().unwrap()]));
    assert!(err.contains("absent.tlm: cannot read the file"), "{err}");

    let o = torchlet(&["inspect", "resnet-9000"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'resnet-9000' is neither a file nor a zoo model (zoo: tutorial-cnn, digits-cnn, lenet5, mcu-cnn, alexnet, vgg11, vgg13, vgg16, vgg19, resnet18, resnet34, resnet50)"));
}

#[test]
fn bad_flags_get_clear_usage_errors() {
    for bad in ["0", "abc", "-1"] {
        let o = torchlet(&["inspect", "tutorial-cnn", "--batch-size", bad]);
        assert_eq!(o.status.code(), Some(2), "--batch-size {bad}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("invalid value '{bad}' for '--batch-size <N>'")),
            "{err}"
        );
        assert!(err.contains("at least 1"), "{err}");
    }
    let o = torchlet(&["inspect", "tutorial-cnn", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--bogus"));
    let o = torchlet(&["inspect"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("FILE|ZOO-NAME"));
}

#[test]
fn inspect_json_reports_sizes_and_multiply_accumulates() {
    let o = torchlet(&["inspect", "digits-cnn", "--json", "--batch-size", "32"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let m = Model::from_zoo("digits-cnn", 0).unwrap();
    let inference = m.plan(1, Mode::Inference).unwrap();
    assert_eq!(v["parameters"], 6_090);
    assert_eq!(v["arena_inference_bytes"], inference.arena_bytes());
    assert_eq!(
        v["arena_training_bytes"],
        m.plan(32, Mode::Training).unwrap().arena_bytes()
    );
    assert_eq!(v["training_batch_size"], 32);
    assert_eq!(v["model_file_bytes"], m.to_bytes().unwrap().len());
    // digits-cnn: conv 1->16 3x3 on 8x8, conv 16->32 3x3 on 4x4, fc 128->10 (the figure the
    // firmware's instructions-per-MAC report divides by).
    assert_eq!(v["macs_per_inference"], 84_224);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), inference.len());
    let sum: u64 = layers.iter().map(|l| l["macs"].as_u64().unwrap()).sum();
    assert_eq!(sum, 84_224);
    assert_eq!(layers[0]["type"], "Conv2d");
    assert_eq!(layers[0]["output_shape"], serde_json::json!([16, 8, 8]));
    // A saved file: its own size; the text report shows the same figure.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tlm");
    m.save(&path).unwrap();
    let o = torchlet(&["inspect", path.to_str().unwrap(), "--json"]);
    let f: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(f["model_file_bytes"], fs::metadata(&path).unwrap().len());
    assert_eq!(f["kind"], "whole model");
    let o = torchlet(&["inspect", path.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("multiply-accumulates per inference: 84,224"),
        "{}",
        stdout(&o)
    );
}
