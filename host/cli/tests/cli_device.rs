//! `--device cpu|gpu|auto` on `torchlet train`, `eval` and `bench`, run as the built binary.
//!
//! The tests that need a GPU adapter (any: Mesa's lavapipe runs them on the CPU) print
//! `skipping ...: no GPU adapter` and pass when wgpu finds none, unless `TORCHLET_REQUIRE_GPU=1`
//! (CI, which installs lavapipe) turns that into a failure. Sizes are small: lavapipe runs at
//! a few GFLOP/s.

use std::path::Path;
use std::process::{Command, Output};

use torchlet::layer::{batch_norm2d, conv2d, flatten, linear, max_pool2d, relu, Layer};
use torchlet::Shape;
use torchlet_host::model::{Checkpoint, Model};
use torchlet_host::summary::proto::{event::What, summary_value::Value};
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

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
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

/// Whether wgpu finds any adapter (software ones included); prints why a test is skipped.
///
/// # Panics
/// With `TORCHLET_REQUIRE_GPU=1` and no adapter.
fn gpu_or_skip(test: &str) -> bool {
    match torchlet_gpu::Device::new(torchlet_gpu::Preference::Any) {
        Ok(_) => true,
        Err(e) => {
            assert!(
                std::env::var("TORCHLET_REQUIRE_GPU").as_deref() != Ok("1"),
                "TORCHLET_REQUIRE_GPU=1 but no GPU adapter for {test}: {e}"
            );
            eprintln!("skipping {test}: no GPU adapter ({e})");
            false
        }
    }
}

#[test]
fn an_unknown_device_is_a_flag_error_on_every_command() {
    for cmd in [
        vec!["train", "--device", "nonsense", "--epochs", "1"],
        vec!["eval", "--device", "nonsense", "--model", "x.tlm"],
        vec!["bench", "--device", "nonsense"],
    ] {
        let o = torchlet(&cmd);
        assert!(!o.status.success(), "{cmd:?} succeeded");
        assert_eq!(o.status.code(), Some(2), "clap's usage error: {cmd:?}");
        let err = stderr(&o);
        assert!(
            err.contains("--device") && err.contains("nonsense") && err.contains("expected cpu, gpu or auto"),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn device_cpu_and_auto_name_the_device_in_the_start_line() {
    let dir = tempfile::tempdir().unwrap();
    for device in ["cpu", "auto"] {
        let out = dir.path().join(device);
        let o = torchlet(&[
            "train",
            "--device",
            device,
            "--epochs",
            "1",
            "--limit",
            "64",
            "--optimizer",
            "adam",
            "--out",
            s(&out),
            "--quiet",
        ]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        let first = stdout(&o).lines().next().unwrap_or_default().to_string();
        // Adam has no GPU kernel: auto falls back to the CPU, whatever the machine has, and says why.
        if device == "cpu" {
            assert!(first.contains("device cpu (--device cpu)"), "{first}");
        } else {
            assert!(first.contains("device cpu (--device auto"), "{first}");
        }
        assert!(first.contains("thread"), "{first}");
        assert!(out.join("last.tlm").is_file());
    }
}

/// The steps at which `logdir` holds the held-out confusion picture, each checked to be a PNG.
fn confusion_pictures(logdir: &Path) -> Vec<i64> {
    let mut steps = Vec::new();
    for file in event_files(logdir).unwrap() {
        for event in read_events(&file).unwrap() {
            let Some(What::Summary(sum)) = event.what else {
                continue;
            };
            for v in sum
                .value
                .into_iter()
                .filter(|v| v.tag == torchlet_host::confusion_png::TAG)
            {
                if let Some(Value::Image(img)) = v.value {
                    image::load_from_memory(&img.encoded_image_string).expect("a PNG");
                    steps.push(event.step);
                }
            }
        }
    }
    steps
}

/// The acceptance test of issue 8: a short digits run on the GPU learns, logs and writes
/// checkpoints, and its model loads on the CPU with the accuracy the GPU run reported.
#[test]
fn gpu_training_learns_and_its_model_gives_the_same_accuracy_on_the_cpu() {
    if !gpu_or_skip("gpu_training_learns_and_its_model_gives_the_same_accuracy_on_the_cpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&["train", "--device", "gpu", "--epochs", "2", "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("device gpu: ") && !first.contains("thread"), "{first}");
    let acc = accuracies(&text);
    assert_eq!(acc.len(), 2, "{text}");
    assert!(
        acc[1] > 0.7,
        "held-out accuracy after 2 epochs on the GPU: {acc:?}\n{text}"
    );
    for f in ["epoch-1.tlm", "epoch-2.tlm", "best.tlm", "last.tlm"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let logdir = out.join("tensorboard");
    assert!(!scalars(&logdir, "Loss/train").unwrap().is_empty());
    assert_eq!(scalars(&logdir, "Accuracy/test").unwrap().len(), 2);
    // The held-out pass reads the logits back: its confusion matrix is logged too.
    assert_eq!(confusion_pictures(&logdir), [1, 2]);
    // The checkpoint holds SGD's momentum from the GPU (nonzero after training) and its steps.
    let ckpt = Checkpoint::load(&out.join("last.tlm")).unwrap();
    assert_eq!(ckpt.train.epoch, 2);
    assert!(ckpt.optimizer_state.iter().any(|&m| m != 0.0));
    assert_eq!(ckpt.train.optimizer_steps, ckpt.train.step);

    let o = torchlet(&["eval", "--device", "cpu", "--model", s(&out.join("last.tlm")), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["device"], "cpu");
    let cpu = v["accuracy"].as_f64().unwrap();
    assert!(
        (cpu - acc[1]).abs() <= 0.005,
        "CPU accuracy {cpu} vs the GPU run's last reported {}",
        acc[1]
    );

    let o = torchlet(&["eval", "--device", "gpu", "--model", s(&out.join("last.tlm")), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(g["device"], "gpu");
    assert!(g["adapter"].as_str().is_some_and(|a| !a.is_empty()), "{g}");
    // Mesa's lavapipe (named llvmpipe) is Vulkan on the CPU: every command says so.
    if g["adapter"].as_str().is_some_and(|a| a.contains("llvmpipe")) {
        assert!(stderr(&o).contains("is a software adapter"), "{}", stderr(&o));
    }
    assert!((g["accuracy"].as_f64().unwrap() - cpu).abs() <= 0.005, "{g} vs {v}");
    assert!(
        (g["loss"].as_f64().unwrap() - v["loss"].as_f64().unwrap()).abs() <= 1e-3,
        "{g} vs {v}"
    );
}

#[test]
fn a_gpu_run_resumes_from_a_cpu_checkpoint_and_the_cpu_from_a_gpu_one() {
    if !gpu_or_skip("a_gpu_run_resumes_from_a_cpu_checkpoint_and_the_cpu_from_a_gpu_one") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let common = ["--limit", "320", "--quiet", "--seed", "3"];
    let run = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&common);
        let o = torchlet(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        stdout(&o)
    };
    run(&["--device", "cpu", "--epochs", "1", "--out", s(&a)]);
    let resumed = run(&[
        "--device",
        "gpu",
        "--epochs",
        "2",
        "--out",
        s(&b),
        "--resume",
        s(&a.join("last.tlm")),
    ]);
    let acc = accuracies(&resumed);
    assert_eq!(acc.len(), 1, "only epoch 2 runs: {resumed}");
    assert!(resumed.contains("epoch  2/2"), "{resumed}");
    let back = run(&[
        "--device",
        "cpu",
        "--epochs",
        "3",
        "--out",
        s(&c),
        "--resume",
        s(&b.join("last.tlm")),
    ]);
    assert!(back.contains("epoch  3/3"), "{back}");
    let ckpt = Checkpoint::load(&c.join("last.tlm")).unwrap();
    assert_eq!(ckpt.train.epoch, 3);
    assert!(accuracies(&back)[0] > 0.5, "{back}");
}

static BN_LAYERS: [Layer; 6] = [
    conv2d(1, 4, 3).padding(1),
    batch_norm2d(4),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(64, 10),
];

#[test]
fn a_batch_norm_model_evaluates_on_the_gpu_as_on_the_cpu() {
    if !gpu_or_skip("a_batch_norm_model_evaluates_on_the_gpu_as_on_the_cpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let classes: Vec<String> = (0..10).map(|k| k.to_string()).collect();
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    let mut model = Model::new("bn-net", &BN_LAYERS, Shape::chw(1, 8, 8), &names, 0).unwrap();
    // Running statistics as after training, so eval mode on the GPU must load them.
    model.state[..8].copy_from_slice(&[0.1, -0.2, 0.3, 0.0, 0.5, 2.0, 0.8, 1.5]);
    let path = dir.path().join("bn.tlm");
    model.save(&path).unwrap();
    let eval = |device: &str| -> serde_json::Value {
        let o = torchlet(&["eval", "--device", device, "--model", s(&path), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap()
    };
    let (gpu, cpu) = (eval("gpu"), eval("cpu"));
    assert_ne!(gpu["device"], "cpu", "{gpu}");
    assert_eq!(gpu["accuracy"], cpu["accuracy"], "{gpu} vs {cpu}");
    let (lg, lc) = (gpu["loss"].as_f64().unwrap(), cpu["loss"].as_f64().unwrap());
    assert!(
        (lg - lc).abs() <= 1e-4 * lc.abs(),
        "loss {lg} on the GPU, {lc} on the CPU"
    );
}

#[test]
fn bench_on_the_gpu_reports_positive_figures_and_the_adapter() {
    if !gpu_or_skip("bench_on_the_gpu_reports_positive_figures_and_the_adapter") {
        return;
    }
    let o = torchlet(&[
        "bench",
        "--device",
        "gpu",
        "--model",
        "digits-cnn",
        "--batch-size",
        "16",
        "--warmup",
        "1",
        "--iters",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["device"], "gpu", "{v}");
    assert!(v["adapter"].as_str().is_some_and(|a| !a.is_empty()), "{v}");
    for key in ["train_images_per_sec", "infer_images_per_sec", "latency_ms_batch1"] {
        let x = v[key].as_f64().unwrap_or(f64::NAN);
        assert!(x.is_finite() && x > 0.0, "{key}: {v}");
    }
    let o = torchlet(&[
        "bench",
        "--device",
        "cpu",
        "--model",
        "digits-cnn",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["device"], "cpu");
    assert!(v["adapter"].is_null(), "{v}");
}

#[test]
fn a_diverging_gpu_run_stops_naming_the_step_and_patience_stops_early() {
    if !gpu_or_skip("a_diverging_gpu_run_stops_naming_the_step_and_patience_stops_early") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nan");
    let o = torchlet(&[
        "train",
        "--device",
        "gpu",
        "--lr",
        "1e38",
        "--epochs",
        "2",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("not finite") && err.contains("epoch 1 step"), "{err}");
    assert!(!out.join("last.tlm").exists());

    // lr 0: the accuracy cannot improve after epoch 1, so patience 1 stops after epoch 2.
    let out = dir.path().join("patient");
    let o = torchlet(&[
        "train",
        "--device",
        "gpu",
        "--lr",
        "0",
        "--epochs",
        "5",
        "--patience",
        "1",
        "--limit",
        "100",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(accuracies(&text).len(), 2, "{text}");
    assert!(text.contains("early stop"), "{text}");
    assert!(out.join("epoch-2.tlm").exists() && !out.join("epoch-3.tlm").exists());
}

/// Ctrl-C during a GPU run copies the weights and momentum back and saves `interrupted.tlm`,
/// which the CPU resumes.
#[cfg(unix)]
#[test]
fn ctrl_c_on_the_gpu_saves_a_checkpoint_the_cpu_resumes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    if !gpu_or_skip("ctrl_c_on_the_gpu_saves_a_checkpoint_the_cpu_resumes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "train",
        "--limit",
        "320",
        "--batch-size",
        "16",
        "--quiet",
        "--out",
        s(&out),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .args(["--device", "gpu", "--epochs", "12"])
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
    let stopped = Checkpoint::load(&out.join("interrupted.tlm")).unwrap();
    assert!(stopped.train.epoch < 12, "{text}");
    assert!(
        stopped.optimizer_state.iter().any(|&m| m != 0.0),
        "momentum copied back"
    );
    let after_epoch_1 = Checkpoint::load(&out.join("epoch-1.tlm")).unwrap();
    assert!(stopped.train.step >= after_epoch_1.train.step);

    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .args([
            "--device",
            "cpu",
            "--epochs",
            "3",
            "--resume",
            s(&out.join("interrupted.tlm")),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("epoch  3/3"), "{}", stdout(&o));
}

/// A device lost mid-run (`TORCHLET_GPU_FAULT=lose-at-step:N`, what a driver reset does) stops
/// the run with an error that says so and names the last good checkpoint, which is the last
/// finished epoch's and resumes on the CPU; nothing half-written is left.
#[test]
fn a_device_lost_mid_run_keeps_the_last_checkpoint() {
    if !gpu_or_skip("a_device_lost_mid_run_keeps_the_last_checkpoint") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "train",
        "--limit",
        "320",
        "--batch-size",
        "16",
        "--quiet",
        "--out",
        s(&out),
    ];
    // Epoch 1 takes the first steps; step 30 is in epoch 2 (at most 20 steps an epoch).
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .args(["--device", "gpu", "--epochs", "4"])
        .env("TORCHLET_GPU_FAULT", "lose-at-step:30")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        err.contains("the GPU device was lost: simulated: TORCHLET_GPU_FAULT=lose-at-step:30"),
        "{err}"
    );
    let last = out.join("last.tlm");
    assert!(
        err.contains(&format!("the last good checkpoint is {}", last.display())),
        "{err}"
    );
    let kept = Checkpoint::load(&last).unwrap();
    assert!(
        kept.train.step < 30,
        "a checkpoint after the loss: step {}",
        kept.train.step
    );
    let failed_epoch: u32 = err
        .split("failed at epoch ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(kept.train.epoch, failed_epoch - 1, "{err}");
    assert!(!out.join(format!("epoch-{failed_epoch}.tlm")).exists());
    let stray: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(stray.is_empty(), "half-written files: {stray:?}");

    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .args(["--device", "cpu", "--epochs", "3", "--resume", s(&last)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("epoch  3/3"), "{}", stdout(&o));

    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .args(["--device", "gpu", "--epochs", "1"])
        .env("TORCHLET_GPU_FAULT", "lose-at-step:soon")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("TORCHLET_GPU_FAULT: expected lose-at-step:N"),
        "{}",
        stderr(&o)
    );
}

/// With no adapter at all (Vulkan pointed at a missing driver), `--device gpu` is an error
/// that says so, and `auto` (the default) trains on the CPU and says why.
#[cfg(target_os = "linux")]
#[test]
fn no_adapter_is_an_error_under_gpu_and_the_cpu_under_auto() {
    let dir = tempfile::tempdir().unwrap();
    let run = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_torchlet"))
            .args([
                "train", "--epochs", "1", "--limit", "64", "--quiet", "--device", device, "--out",
            ])
            .arg(dir.path().join(device))
            .env("WGPU_BACKEND", "vulkan")
            .env("VK_ICD_FILENAMES", dir.path().join("no-such-driver.json"))
            .env("VK_DRIVER_FILES", dir.path().join("no-such-driver.json"))
            .output()
            .unwrap()
    };
    let o = run("gpu");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("--device gpu: no GPU adapter"), "{err}");
    assert!(!dir.path().join("gpu").join("last.tlm").exists());
    let o = run("auto");
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert!(
        first.contains("device cpu (--device auto found no hardware GPU"),
        "{first}"
    );
}

/// The relative L2 distance `|a - b| / |b|`.
fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let n: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

#[test]
fn gpu_training_with_adam_learns_as_on_the_cpu() {
    if !gpu_or_skip("gpu_training_with_adam_learns_as_on_the_cpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |device: &str, optimizer: &str, out: &Path| {
        let o = torchlet(&[
            "train",
            "--dataset",
            "digits",
            "--device",
            device,
            "--threads",
            "1",
            "--optimizer",
            optimizer,
            "--lr",
            "0.003",
            "--epochs",
            "1",
            "--out",
            s(out),
            "--quiet",
        ]);
        assert!(o.status.success(), "{device} {optimizer}: {}", stderr(&o));
        stdout(&o)
    };
    let (g, c) = (dir.path().join("gpu"), dir.path().join("cpu"));
    let gpu = run("gpu", "adam", &g);
    assert!(gpu.lines().next().unwrap_or_default().contains("device gpu: "), "{gpu}");
    let cpu = run("cpu", "adam", &c);
    let (acc_gpu, acc_cpu) = (accuracies(&gpu), accuracies(&cpu));
    assert!(acc_gpu[0] > 0.6, "Adam on the GPU learns in one epoch: {gpu}");
    assert!((acc_gpu[0] - acc_cpu[0]).abs() <= 0.02, "GPU {gpu}\nCPU {cpu}");
    // The checkpoint holds Adam's moments from the GPU ([exp_avg | exp_avg_sq]), close to the
    // CPU's after the same 45 steps.
    let (cg, cc) = (
        Checkpoint::load(&g.join("last.tlm")).unwrap(),
        Checkpoint::load(&c.join("last.tlm")).unwrap(),
    );
    let p = cg.model.params.len();
    assert_eq!(cg.optimizer_state.len(), 2 * p);
    assert!(cg.train.optimizer.adam().is_some());
    assert_eq!(cg.train.optimizer_steps, cc.train.optimizer_steps);
    assert!(cg.optimizer_state[p..].iter().all(|&v| v >= 0.0) && cg.optimizer_state.iter().any(|&v| v != 0.0));
    let (dp, ds) = (
        rel_l2(&cg.model.params, &cc.model.params),
        rel_l2(&cg.optimizer_state, &cc.optimizer_state),
    );
    assert!(
        dp < 1e-3 && ds < 1e-2,
        "GPU vs CPU after one epoch: parameters {dp:e}, Adam state {ds:e}"
    );
    // AdamW too, and its checkpoint does not resume as Adam.
    let w = dir.path().join("adamw");
    run("gpu", "adamw", &w);
    let cw = Checkpoint::load(&w.join("last.tlm")).unwrap();
    assert!(cw.train.optimizer.adam().is_some_and(|a| a.decoupled_weight_decay));
    let o = torchlet(&[
        "train",
        "--device",
        "gpu",
        "--optimizer",
        "adam",
        "--epochs",
        "2",
        "--resume",
        s(&w.join("last.tlm")),
        "--out",
        s(&dir.path().join("wrong")),
        "--quiet",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--optimizer adam (the run used adamw)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn adam_state_resumes_across_devices_in_both_directions() {
    if !gpu_or_skip("adam_state_resumes_across_devices_in_both_directions") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--limit",
        "320",
        "--quiet",
        "--seed",
        "3",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--threads",
        "1",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&common);
        let o = torchlet(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        stdout(&o)
    };
    let (a, b, c, d) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
        dir.path().join("d"),
    );
    // CPU epoch 1 -> GPU epoch 2 -> CPU epoch 3, against three epochs on the CPU.
    run(&["--device", "cpu", "--epochs", "1", "--out", s(&a)]);
    let on_gpu = run(&[
        "--device",
        "gpu",
        "--epochs",
        "2",
        "--out",
        s(&b),
        "--resume",
        s(&a.join("last.tlm")),
    ]);
    assert!(
        on_gpu.contains("device gpu: ") && on_gpu.contains("epoch  2/2"),
        "{on_gpu}"
    );
    let back = run(&[
        "--device",
        "cpu",
        "--epochs",
        "3",
        "--out",
        s(&c),
        "--resume",
        s(&b.join("last.tlm")),
    ]);
    assert!(back.contains("epoch  3/3"), "{back}");
    run(&["--device", "cpu", "--epochs", "3", "--out", s(&d)]);
    let (mixed, cpu) = (
        Checkpoint::load(&c.join("last.tlm")).unwrap(),
        Checkpoint::load(&d.join("last.tlm")).unwrap(),
    );
    let gpu_ckpt = Checkpoint::load(&b.join("last.tlm")).unwrap();
    let cpu_epoch2 = Checkpoint::load(&d.join("epoch-2.tlm")).unwrap();
    assert_eq!(mixed.train.optimizer_steps, cpu.train.optimizer_steps);
    assert_eq!(gpu_ckpt.train.optimizer_steps, cpu_epoch2.train.optimizer_steps);
    // The GPU continued the CPU's moments (a reset would leave exp_avg_sq about half as large
    // after epoch 2), and the CPU continued the GPU's.
    let p = cpu.model.params.len();
    for (what, x, y) in [
        ("epoch 2 on the GPU", &gpu_ckpt, &cpu_epoch2),
        ("epoch 3 back on the CPU", &mixed, &cpu),
    ] {
        let (dp, dm, dv) = (
            rel_l2(&x.model.params, &y.model.params),
            rel_l2(&x.optimizer_state[..p], &y.optimizer_state[..p]),
            rel_l2(&x.optimizer_state[p..], &y.optimizer_state[p..]),
        );
        assert!(
            dp < 1e-3 && dm < 1e-2 && dv < 1e-2,
            "{what}: parameters {dp:e}, exp_avg {dm:e}, exp_avg_sq {dv:e} from the all-CPU run"
        );
    }
}

/// `predict --device gpu` gives the CPU's classes and probabilities (66 images: a full GPU
/// batch of 64 and a short one), names the device, and `--json` carries it.
#[test]
fn predict_on_the_gpu_gives_the_cpus_probabilities() {
    if !gpu_or_skip("predict_on_the_gpu_gives_the_cpus_probabilities") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args([
            "train",
            "--epochs",
            "1",
            "--limit",
            "128",
            "--quiet",
            "--device",
            "cpu",
            "--out",
            s(&out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut images = Vec::new();
    for k in 0..66u32 {
        let path = dir.path().join(format!("img{k}.png"));
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([((x * 13 + y * 7 + k * 29) % 256) as u8]))
            .save(&path)
            .unwrap();
        images.push(path);
    }
    let model = out.join("last.tlm");
    let predict = |device: &str| {
        let mut args = vec![
            "predict",
            "--model",
            s(&model),
            "--json",
            "--top-k",
            "10",
            "--device",
            device,
        ];
        args.extend(images.iter().map(|p| s(p)));
        let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("predict: device {device}")),
            "{}",
            stderr(&o)
        );
        stdout(&o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (cpu, gpu) = (predict("cpu"), predict("gpu"));
    assert_eq!(cpu.len(), 66);
    assert_eq!(gpu.len(), 66);
    for (c, g) in cpu.iter().zip(&gpu) {
        assert_eq!(c["file"], g["file"]);
        assert_eq!((c["device"].as_str(), g["device"].as_str()), (Some("cpu"), Some("gpu")));
        let probs = |v: &serde_json::Value| {
            let mut p: Vec<(String, f64)> = v["top_k"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["class"].as_str().unwrap().to_string(),
                        t["probability"].as_f64().unwrap(),
                    )
                })
                .collect();
            p.sort_by(|a, b| a.0.cmp(&b.0));
            p
        };
        for ((kc, pc), (kg, pg)) in probs(c).iter().zip(probs(g)) {
            assert_eq!(kc, &kg);
            assert!((pc - pg).abs() <= 1e-4 * pc.abs().max(1e-3), "{c} vs {g}");
        }
    }
}

/// Listing the adapters on a headless machine (no `XDG_RUNTIME_DIR`, Mesa installed as in CI)
/// prints no "error: XDG_RUNTIME_DIR is invalid" lines from libwayland.
#[test]
fn probing_for_a_gpu_prints_no_wayland_noise() {
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args([
            "bench",
            "--device",
            "auto",
            "--batch-size",
            "2",
            "--warmup",
            "1",
            "--iters",
            "1",
        ])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("XDG_RUNTIME_DIR"), "{}", stderr(&o));
}
