//! A run remembers what it is: `train` stores its settings in every checkpoint, `--resume`
//! refuses flags that contradict them (leaving the run's files as they were), and `eval` scores
//! the run's own held-out images.

use std::path::Path;
use std::process::{Command, Output};

use torchlet_host::cli::run_record::RunRecord;
use torchlet_host::model::Model;

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn record(path: &Path) -> RunRecord {
    let m = Model::load(path).unwrap();
    RunRecord::parse(m.run.as_deref().expect("a run record"), path).unwrap()
}

#[test]
fn checkpoints_record_the_run_and_resume_refuses_contradicting_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&[
        "train",
        "--epochs",
        "1",
        "--seed",
        "7",
        "--val-split",
        "0.3",
        "--momentum",
        "0.5",
        "--optimizer",
        "sgd",
        "--out",
        s(&out),
        "--quiet",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    for file in ["last.tlm", "best.tlm", "epoch-1.tlm"] {
        let r = record(&out.join(file));
        assert_eq!(
            (r.seed, r.val_split, r.momentum, r.epochs),
            (7, Some(0.3), 0.5, 1),
            "{file}"
        );
        assert_eq!((r.model.as_str(), r.batch_size, r.lr), ("digits-cnn", 32, 0.05));
    }

    // Contradicting flags: refused, each named with the run's value, nothing touched.
    let before = snapshot(&out);
    let last = out.join("last.tlm");
    let o = torchlet(&[
        "train",
        "--resume",
        s(&last),
        "--out",
        s(&out),
        "--epochs",
        "2",
        "--seed",
        "3",
        "--momentum",
        "0.9",
        "--model",
        "lenet5",
        "--quiet",
        "--device",
        "cpu",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for want in [
        "--seed 3 (the run used 7)",
        "--momentum 0.9 (the run used 0.5)",
        "--model lenet5 (the run used digits-cnn)",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(snapshot(&out), before, "a refused resume changed the run's files");

    // Left out, the flags keep the run's values; --epochs and --lr may change (with a note).
    let o = torchlet(&[
        "train",
        "--resume",
        s(&last),
        "--out",
        s(&out),
        "--epochs",
        "2",
        "--lr",
        "0.02",
        "--quiet",
        "--device",
        "cpu",
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        stdout.contains("--lr 0.02: the run continues at this learning rate"),
        "{stdout}"
    );
    assert!(stdout.contains("1258 training images, 539 held out"), "{stdout}");
    let r = record(&last);
    assert_eq!(
        (r.seed, r.val_split, r.momentum, r.epochs, r.lr),
        (7, Some(0.3), 0.5, 2, 0.02)
    );
}

#[test]
fn eval_scores_the_held_out_images_of_the_run_that_trained_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&[
        "train",
        "--epochs",
        "1",
        "--seed",
        "7",
        "--val-split",
        "0.3",
        "--out",
        s(&out),
        "--quiet",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let best = out.join("best.tlm");
    let o = torchlet(&["eval", "--model", s(&best), "--device", "cpu"]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(stdout.contains("digits, 539 images"), "{stdout}");
    assert!(
        stdout
            .contains("images: the held-out images of the run that trained the model (--val-split 0.3 with --seed 7)"),
        "{stdout}"
    );
    let o = torchlet(&["eval", "--model", s(&best), "--device", "cpu", "--json"]);
    let v: serde_json::Value = serde_json::from_str(text(&o).0.trim()).unwrap();
    assert_eq!(v["samples"], 539);
    assert!(
        v["images"].as_str().unwrap().contains("held-out images of the run"),
        "{v}"
    );
    // Its training part, and every image.
    let o = torchlet(&[
        "eval",
        "--model",
        s(&best),
        "--device",
        "cpu",
        "--split",
        "train",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(text(&o).0.trim()).unwrap();
    assert_eq!(v["samples"], 1797 - 539);
    let o = torchlet(&[
        "eval",
        "--model",
        s(&best),
        "--device",
        "cpu",
        "--split",
        "all",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(text(&o).0.trim()).unwrap();
    assert_eq!(v["samples"], 1797);
    // Another seed picks other images: said plainly.
    let o = torchlet(&["eval", "--model", s(&best), "--device", "cpu", "--seed", "0"]);
    let (stdout, _) = text(&o);
    assert!(stdout.contains("warning: --seed 0 is not the run's seed"), "{stdout}");
}
