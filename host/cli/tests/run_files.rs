//! What a run leaves in its folders: `--save-every` and `--keep-last` for the numbered
//! checkpoints, and one TensorBoard folder per run under `--logdir`.

use std::path::Path;
use std::process::{Command, Output};

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn save_every_and_keep_last_bound_the_numbered_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&[
        "train",
        "--epochs",
        "5",
        "--save-every",
        "2",
        "--keep-last",
        "2",
        "--limit",
        "200",
        "--out",
        s(&out),
        "--quiet",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // epoch-2 and epoch-4 by --save-every, epoch-5 as the last; --keep-last 2 removed epoch-2.
    assert_eq!(
        names(&out),
        ["best.tlm", "epoch-4.tlm", "epoch-5.tlm", "last.tlm", "tensorboard"]
    );
    for bad in [["--save-every", "0"], ["--keep-last", "-1"]] {
        let o = torchlet(&["train", bad[0], bad[1]]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(bad[0]), "{err}");
    }
}

#[test]
fn logdir_gives_each_run_its_own_tensorboard_folder() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--epochs", "1", "--limit", "100", "--quiet", "--device", "cpu"];
        args.extend_from_slice(&["--out", s(out), "--logdir", s(&logs)]);
        args.extend_from_slice(extra);
        torchlet(&args)
    };
    assert!(train(&dir.path().join("a"), &[]).status.success());
    assert!(train(&dir.path().join("b"), &[]).status.success());
    assert_eq!(names(&logs), ["a", "b"]);
    for run in ["a", "b"] {
        assert!(names(&logs.join(run))[0].starts_with("events.out.tfevents."), "{run}");
    }
    // A run named like one already logged there: refused, then --overwrite replaces its logs.
    let other = dir.path().join("elsewhere").join("a");
    let o = train(&other, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("already holds TensorBoard logs"),
        "{err}"
    );
    let before = names(&logs.join("a"));
    let o = train(&other, &["--overwrite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = names(&logs.join("a"));
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "the old run's event file was removed");
}
