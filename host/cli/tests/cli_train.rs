//! `torchlet train`, `torchlet eval` and `torchlet predict`, run as the built binary.

use std::path::Path;
use std::process::{Command, Output};

use torchlet_host::model::{Checkpoint, Model};
use torchlet_host::summary::proto::event::What;
use torchlet_host::summary::reader::{event_files, read_events, scalars};

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

/// The held-out accuracy (0..1) of each `epoch` line.
fn accuracies(out: &str) -> Vec<f64> {
    out.lines()
        .filter(|l| l.starts_with("epoch "))
        .filter_map(|l| {
            let pct = l.split("accuracy ").nth(1)?.split('%').next()?;
            pct.trim().parse::<f64>().ok().map(|p| p / 100.0)
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// A 32×32 RGB image of class `class` (0: a bright left half, 1: a bright top half, 2: a bright
/// centre square), with seeded noise.
fn pattern(class: usize, seed: u64) -> image::RgbImage {
    let mut rng = torchlet::Rng::new(seed);
    image::RgbImage::from_fn(32, 32, |x, y| {
        let on = match class {
            0 => x < 16,
            1 => y < 16,
            _ => (8..24).contains(&x) && (8..24).contains(&y),
        };
        let base = if on { 200.0 } else { 40.0 };
        let mut v = |k: u32| (base + rng.uniform(-20.0, 20.0) + 10.0 * k as f32).clamp(0.0, 255.0) as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}

/// `root/{train,test}/{class}/i.png`: `per_class` training and 8 test images per class.
fn image_folder(root: &Path, classes: &[&str], per_class: usize) {
    for (part, n, seed) in [("train", per_class, 0u64), ("test", 8, 1000)] {
        for (k, c) in classes.iter().enumerate() {
            let dir = root.join(part).join(c);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                pattern(k, seed + (k * 100 + i) as u64)
                    .save(dir.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
}

#[test]
fn train_on_digits_learns_and_writes_loadable_models_eval_and_predict_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&["train", "--epochs", "3", "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let acc = accuracies(&text);
    assert_eq!(acc.len(), 3, "{text}");
    assert!(acc[2] > 0.8, "held-out accuracy after 3 epochs: {acc:?}\n{text}");
    for f in ["epoch-1.tlm", "epoch-2.tlm", "epoch-3.tlm", "best.tlm", "last.tlm"] {
        let m = Model::load(&out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(m.name, "digits-cnn");
        assert_eq!(m.classes.len(), 10);
    }
    let last = Checkpoint::load(&out.join("last.tlm")).unwrap();
    assert_eq!(last.train.epoch, 3);
    // TensorBoard: the training loss every 10 steps (45 steps an epoch), the held-out loss and
    // accuracy every epoch, a weight histogram per layer, the first batch's images.
    let logdir = out.join("tensorboard");
    let train_loss = scalars(&logdir, "Loss/train").unwrap();
    assert_eq!(
        train_loss.iter().map(|p| p.0).collect::<Vec<_>>(),
        (0..135).step_by(10).collect::<Vec<i64>>()
    );
    let logged = scalars(&logdir, "Accuracy/test").unwrap();
    assert_eq!(logged.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!((f64::from(logged[2].1) - acc[2]).abs() < 0.001);
    assert_eq!(scalars(&logdir, "Loss/test").unwrap().len(), 3);
    let mut tags = Vec::new();
    for file in event_files(&logdir).unwrap() {
        for event in read_events(&file).unwrap() {
            if let Some(What::Summary(sum)) = event.what {
                tags.extend(sum.value.into_iter().map(|v| v.tag));
            }
        }
    }
    for tag in ["inputs", "0.weight", "3.weight", "7.weight"] {
        assert!(tags.iter().any(|t| t == tag), "no {tag} in {tags:?}");
    }

    // eval --json: the same held-out accuracy as the last epoch line.
    let o = torchlet(&["eval", "--model", s(&out.join("last.tlm")), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!((accuracy - acc[2]).abs() < 0.001, "eval {accuracy} vs train {}", acc[2]);
    assert!(v["loss"].as_f64().unwrap() > 0.0);
    assert_eq!(v["per_class"].as_object().unwrap().len(), 10);
    let confusion = v["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 10);
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 360);
    let o = torchlet(&["eval", "--model", s(&out.join("last.tlm"))]);
    assert!(
        o.status.success() && stdout(&o).contains("confusion matrix"),
        "{}",
        stderr(&o)
    );

    // predict --json on a drawn "1" (a vertical bar), any size: resized to 8×8, gray.
    let one = dir.path().join("one.png");
    image::GrayImage::from_fn(40, 40, |x, _| {
        image::Luma([if (17..23).contains(&x) { 255 } else { 0 }])
    })
    .save(&one)
    .unwrap();
    let o = torchlet(&[
        "predict",
        "--model",
        s(&out.join("last.tlm")),
        s(&one),
        "--json",
        "--top-k",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(v["file"], s(&one));
    let top = v["top_k"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert_eq!(v["class"], top[0]["class"]);
    let p: Vec<f64> = top.iter().map(|t| t["probability"].as_f64().unwrap()).collect();
    assert!(p[0] >= p[1] && p[1] >= p[2] && p[0] <= 1.0 && p.iter().sum::<f64>() <= 1.0 + 1e-6);
    assert_eq!(v["class"], "1", "{v}");
}

#[test]
fn resumed_training_gives_the_weights_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let common = ["--quiet", "--limit", "400", "--batch-size", "16"];
    let run = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend_from_slice(&common);
        args.extend_from_slice(extra);
        let o = torchlet(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run(&["--epochs", "4", "--out", s(&a)]);
    run(&["--epochs", "2", "--out", s(&b)]);
    run(&["--epochs", "4", "--out", s(&b), "--resume", s(&b.join("last.tlm"))]);
    let (x, y) = (
        Checkpoint::load(&a.join("last.tlm")).unwrap(),
        Checkpoint::load(&b.join("last.tlm")).unwrap(),
    );
    assert_eq!(y.train.epoch, 4);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&x.model.params), bits(&y.model.params));
    assert_eq!(bits(&x.optimizer_state), bits(&y.optimizer_state));
    assert_eq!(x.train, y.train);
    // A different run (another seed) does differ: the comparison can fail.
    let c = dir.path().join("c");
    run(&["--epochs", "1", "--out", s(&c), "--seed", "3"]);
    let z = Checkpoint::load(&c.join("last.tlm")).unwrap();
    assert_ne!(bits(&z.model.params), bits(&x.model.params));
}

#[test]
fn image_folder_training_learns_and_eval_refuses_other_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    image_folder(&data, &["left", "top", "centre"], 24);
    let out = dir.path().join("run");
    let o = torchlet(&[
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&data),
        "--epochs",
        "4",
        "--batch-size",
        "8",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let acc = accuracies(&stdout(&o));
    assert!(
        acc.iter().copied().fold(0.0, f64::max) > 0.6,
        "chance is 1/3: {acc:?}\n{}",
        stdout(&o)
    );
    let m = Model::load(&out.join("best.tlm")).unwrap();
    assert_eq!(m.classes, ["centre", "left", "top"]);

    // The same classes in a folder: eval maps them by name.
    let o = torchlet(&[
        "eval",
        "--model",
        s(&out.join("best.tlm")),
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&data),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() > 0.6, "{v}");

    // Another class name: refused, naming it.
    let other = dir.path().join("other");
    image_folder(&other, &["left", "right"], 2);
    let o = torchlet(&[
        "eval",
        "--model",
        s(&out.join("best.tlm")),
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&other),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("'right'"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_are_clear_errors_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--dataset", "imagenet"], "imagenet"),
        (vec!["train", "--batch-size", "0"], "at least 1"),
        (
            vec!["train", "--model", "tutorial-cnn", "--epochs", "1", "--out", s(&out)],
            "shape",
        ),
        (
            vec!["train", "--model", "no-such-model", "--out", s(&out)],
            "no-such-model",
        ),
        (vec!["train", "--dataset", "cifar10"], "--data-dir"),
    ];
    for (args, needle) in cases {
        let o = torchlet(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // A folder in no known layout.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "hello").unwrap();
    let o = torchlet(&[
        "train",
        "--dataset",
        "cifar10",
        "--data-dir",
        s(&junk),
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("known layout"), "{}", stderr(&o));
    // predict on a file that is not an image.
    let o = torchlet(&[
        "predict",
        "--model",
        s(&junk.join("notes.txt")),
        s(&junk.join("notes.txt")),
    ]);
    assert!(!o.status.success());
}

#[test]
fn cifar10_binary_folder_and_mnist_idx_files_train() {
    let dir = tempfile::tempdir().unwrap();
    // CIFAR-10's binary layout, 12 records a batch file: label byte, then R, G, B planes.
    let bin = dir.path().join("cifar").join("cifar-10-batches-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let classes = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(bin.join("batches.meta.txt"), classes).unwrap();
    let names = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ];
    for (f, name) in names.iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..12usize {
            let label = r % 3;
            bytes.push(label as u8);
            let img = pattern(label, (f * 100 + r) as u64);
            for c in 0..3 {
                bytes.extend(img.pixels().map(|p| p.0[c]));
            }
        }
        std::fs::write(bin.join(format!("{name}.bin")), bytes).unwrap();
    }
    let out = dir.path().join("run-cifar");
    let cifar = dir.path().join("cifar");
    let o = torchlet(&[
        "train",
        "--dataset",
        "cifar10",
        "--data-dir",
        s(&cifar),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--augment",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("60 training images, 12 held out"), "{}", stdout(&o));
    let m = Model::load(&out.join("last.tlm")).unwrap();
    assert_eq!(m.name, "tutorial-cnn");
    assert_eq!(m.classes[9], "truck");

    // MNIST's raw IDX files, 28×28 gray: digits-cnn on images resized to 8×8.
    let mnist = dir.path().join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    for (prefix, n) in [("train", 40u32), ("t10k", 10)] {
        let mut images = vec![0, 0, 8, 3];
        for d in [n, 28, 28] {
            images.extend(d.to_be_bytes());
        }
        let mut labels = vec![0, 0, 8, 1];
        labels.extend(n.to_be_bytes());
        for i in 0..n {
            labels.push((i % 10) as u8);
            images.extend((0..784u32).map(|p| ((p * 7 + i * 13) % 256) as u8));
        }
        std::fs::write(mnist.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(mnist.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    let out = dir.path().join("run-mnist");
    let o = torchlet(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        s(&mnist),
        "--epochs",
        "1",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("40 training images, 10 held out"), "{}", stdout(&o));
    assert_eq!(Model::load(&out.join("last.tlm")).unwrap().classes[0], "0 - zero");
}

/// `--lr 1e6` never produces a NaN on the digits: the loss climbs to 1e5 and beyond. The run
/// stops as the NaN stop does (exit 1, the step named), keeping the last good checkpoint.
#[test]
fn a_loss_that_explodes_without_nan_stops_the_run_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&[
        "train",
        "--lr",
        "1e6",
        "--epochs",
        "3",
        "--limit",
        "320",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("the training loss diverged at epoch 1 step"), "{err}");
    assert!(err.contains("more than 1000 times the run's first loss"), "{err}");
    assert!(err.contains("no checkpoint was saved") && err.contains("--lr"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("last.tlm").exists());

    // A healthy first epoch, then an explosion: the epoch-1 checkpoint stays, loadable.
    let first = dir.path().join("first");
    let o = torchlet(&[
        "train",
        "--epochs",
        "1",
        "--limit",
        "320",
        "--out",
        s(&first),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(first.join("last.tlm")).unwrap();
    let o = torchlet(&[
        "train",
        "--resume",
        s(&first.join("last.tlm")),
        "--epochs",
        "3",
        "--lr",
        "1e6",
        "--limit",
        "320",
        "--out",
        s(&first),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("diverged at epoch 2"), "{}", stderr(&o));
    assert!(stderr(&o).contains("the last good checkpoint is"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(first.join("last.tlm")).unwrap(),
        before,
        "the last good checkpoint is kept"
    );
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_patience_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&["train", "--lr", "1e38", "--epochs", "2", "--out", s(&out), "--quiet"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("not finite") && err.contains("epoch 1 step"), "{err}");
    assert!(!out.join("last.tlm").exists());

    let out = dir.path().join("patient");
    let o = torchlet(&[
        "train",
        "--epochs",
        "40",
        "--patience",
        "1",
        "--limit",
        "200",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--scheduler",
        "cosine",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epochs = accuracies(&stdout(&o)).len();
    assert!(stdout(&o).contains("early stop") && epochs < 40, "{}", stdout(&o));
    assert!(out.join(format!("epoch-{epochs}.tlm")).exists());
    assert!(!out.join(format!("epoch-{}.tlm", epochs + 1)).exists());
}

/// Ctrl-C (SIGINT) saves `interrupted.tlm` at the next step and exits cleanly; resuming from it
/// ends with the weights of the run that was never interrupted.
#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_that_resumes_exactly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--epochs",
            "12",
            "--limit",
            "400",
            "--batch-size",
            "16",
            "--quiet",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args(&b))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text += &line;
        text += "\n";
        if line.starts_with("epoch ") {
            break;
        }
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    for line in lines {
        text += &line.unwrap();
        text += "\n";
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{text}");
    assert!(text.contains("interrupted: saved"), "{text}");
    let stopped = Checkpoint::load(&b.join("interrupted.tlm")).unwrap();
    assert!(stopped.train.epoch < 12, "{text}");

    let mut resume = args(&b);
    resume.extend(["--resume".to_string(), s(&b.join("interrupted.tlm")).to_string()]);
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(&resume)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args(&a))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (x, y) = (
        Checkpoint::load(&a.join("last.tlm")).unwrap(),
        Checkpoint::load(&b.join("last.tlm")).unwrap(),
    );
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&x.model.params), bits(&y.model.params));
    assert_eq!(x.train.step, y.train.step);
}

/// Negative numbers are values, not flags: `--lr -1` reaches the real check and its message,
/// not clap's "unexpected argument '-1'".
#[test]
fn negative_hyper_parameters_reach_the_real_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for (flag, value, says) in [
        ("--lr", "-1", "lr must be finite and >= 0"),
        ("--momentum", "-0.5", "momentum must be >= 0"),
        ("--weight-decay", "-1", "weight_decay must be >= 0"),
        ("--val-split", "-0.2", "--val-split must be between 0 and 1, found -0.2"),
    ] {
        let o = torchlet(&[
            "train",
            flag,
            value,
            "--epochs",
            "1",
            "--limit",
            "64",
            "--out",
            s(&out),
            "--quiet",
        ]);
        assert!(!o.status.success(), "{flag} {value}");
        let err = stderr(&o);
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(!err.contains("unexpected argument"), "{flag} {value}: {err}");
    }
}

/// "saved" is printed only after a save: `--epochs 0` and the resume of a finished run write
/// nothing and say so; after a resume, "best" covers the epochs before it too.
#[test]
fn messages_say_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero");
    let o = torchlet(&["train", "--epochs", "0", "--out", s(&zero)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("no epoch left to train (--epochs 0): nothing was saved"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("saved runs") && !zero.join("last.tlm").exists());

    let run = dir.path().join("run");
    let o = torchlet(&["train", "--epochs", "2", "--limit", "320", "--out", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let best_line = |o: &Output| {
        stdout(o)
            .lines()
            .find(|l| l.starts_with("best held-out accuracy"))
            .map(str::to_string)
    };
    let best = best_line(&o).unwrap();
    let last = run.join("last.tlm");
    let before = std::fs::read(&last).unwrap();
    let o = torchlet(&[
        "train",
        "--resume",
        s(&last),
        "--epochs",
        "2",
        "--limit",
        "320",
        "--out",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("nothing was saved") && !stdout(&o).contains("saved "),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read(&last).unwrap(), before);

    // A resumed epoch that ruins the model (lr 20): the best is still the first run's.
    let o = torchlet(&[
        "train",
        "--resume",
        s(&last),
        "--epochs",
        "3",
        "--lr",
        "20",
        "--limit",
        "320",
        "--out",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("*best"), "{}", stdout(&o));
    assert_eq!(best_line(&o).as_ref(), Some(&best), "{}", stdout(&o));
}

/// A second run into a run's folder is refused, leaving every file byte for byte; `--resume`
/// continues it; `--overwrite` removes the old run's files first (no stale `epoch-N.tlm`),
/// leaving other files alone.
#[test]
fn a_second_run_never_mixes_with_or_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = torchlet(&["train", "--epochs", "3", "--limit", "320", "--out", s(&run), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(run.join("notes.txt"), b"mine").unwrap();
    let snapshot = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&run);

    let o = torchlet(&["train", "--epochs", "1", "--limit", "320", "--out", s(&run), "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("already holds a run") && err.contains("epoch-3.tlm") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(snapshot(&run), before, "a refused run changes nothing");

    let last = run.join("last.tlm");
    let o = torchlet(&[
        "train",
        "--resume",
        s(&last),
        "--epochs",
        "4",
        "--limit",
        "320",
        "--out",
        s(&run),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("epoch-4.tlm").exists());

    let o = torchlet(&[
        "train",
        "--epochs",
        "1",
        "--limit",
        "320",
        "--out",
        s(&run),
        "--overwrite",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = snapshot(&run).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["best.tlm", "epoch-1.tlm", "last.tlm", "notes.txt"]);
    assert_eq!(std::fs::read(run.join("notes.txt")).unwrap(), b"mine");
}

/// A model too large for this machine (a billion classes: 516 GB of parameters) is an error
/// naming the flag to change, not an allocation abort.
#[test]
fn an_absurd_class_count_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let o = torchlet(&[
        "train",
        "--num-classes",
        "1000000000",
        "--epochs",
        "1",
        "--out",
        s(&dir.path().join("run")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("its parameter buffer needs 516.0 GB of memory") && err.contains("--num-classes"),
        "{err}"
    );
    assert!(
        !err.contains("memory allocation of") && !err.contains("panicked"),
        "{err}"
    );
}
