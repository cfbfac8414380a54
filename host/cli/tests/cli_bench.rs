//! `torchlet bench`, run as the built binary: the JSON it prints and its errors.

use std::process::{Command, Output};

use torchlet_host::model::Model;

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a small bench with `--json` and returns the one JSON object it printed.
fn bench_json(model: &str, threads: &str) -> serde_json::Value {
    let o = torchlet(&[
        "bench",
        "--model",
        model,
        "--batch-size",
        "9",
        "--threads",
        threads,
        "--warmup",
        "1",
        "--iters",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "stdout is one JSON line: {text}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn json_has_the_three_figures_positive() {
    for threads in ["1", "2"] {
        let v = bench_json("digits-cnn", threads);
        for key in ["train_images_per_sec", "infer_images_per_sec", "latency_ms_batch1"] {
            let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} missing: {v}"));
            assert!(x.is_finite() && x > 0.0, "{key} = {x}");
        }
        assert_eq!(v["model"], "digits-cnn");
        assert_eq!(v["parameters"], 6090);
        assert_eq!(v["batch_size"], 9);
        assert_eq!(v["threads"].to_string(), threads);
        assert!(v["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{v}");
        // images/s is the batch over the median step time.
        let (ips, ms) = (
            v["train_images_per_sec"].as_f64().unwrap(),
            v["train_step_ms"].as_f64().unwrap(),
        );
        assert!((ips * ms / 1e3 - 9.0).abs() < 1e-6, "{v}");
    }
}

#[test]
fn a_model_file_can_be_benched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tlm");
    Model::from_zoo("digits-cnn", 1).unwrap().save(&path).unwrap();
    let v = bench_json(path.to_str().unwrap(), "1");
    assert_eq!(v["parameters"], 6090);
    let text = torchlet(&[
        "bench",
        "--model",
        path.to_str().unwrap(),
        "--iters",
        "1",
        "--warmup",
        "0",
    ]);
    assert!(text.status.success(), "{}", stderr(&text));
    let out = String::from_utf8(text.stdout).unwrap();
    assert!(out.contains("images/s") && out.contains("latency"), "{out}");
}

#[test]
fn bad_values_are_clear_errors_with_a_non_zero_exit() {
    // A batch of 2e8 CIFAR images (2.5 TB) is refused before anything is allocated, on every
    // command that takes --batch-size, instead of an abort or the OOM killer.
    let huge = "try a smaller --batch-size";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&[
        "train",
        "--batch-size",
        "200000000",
        "--device",
        "cpu",
        "--limit",
        "64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(huge), "{}", stderr(&o));
    let cases: [(&[&str], &str); 8] = [
        (&["bench", "--batch-size", "200000000", "--device", "cpu"], huge),
        (
            &["eval", "--model", "runs/none.tlm", "--batch-size", "0"],
            "--batch-size",
        ),
        (&["bench", "--threads", "0"], "--threads"),
        (&["bench", "--threads", "100000"], "from 1 to 256"),
        (&["bench", "--iters", "0"], "--iters"),
        (&["bench", "--batch-size", "-3"], "--batch-size"),
        (&["bench", "--model", "no-such-net"], "tutorial-cnn"),
        (&["bench", "--model", "missing/model.tlm"], "no such model file"),
    ];
    for (args, needle) in cases {
        let o = torchlet(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    }
}
