//! The Cortex-M firmware under `qemu-system-arm`: a model trained on the host, exported to the
//! firmware's model region, classifies held-out digits exactly as the host does; damaged, empty
//! and too large regions are refused with their messages and exit statuses; on-device training
//! lowers the loss.
//!
//! Each test prints why and passes when `qemu-system-arm` or the Rust target
//! `thumbv7em-none-eabihf` is missing (CI installs both: tools/test-all.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use torchlet_host::cli::emulate::{build_firmware, check_qemu, check_target, run_firmware, vector_blob, Elf};
use torchlet_host::digits::Digits;

/// Why the firmware tests cannot run here, if they cannot.
fn missing_tools() -> Option<String> {
    check_qemu().err().or_else(|| check_target().err())
}

macro_rules! require_tools {
    () => {
        if let Some(why) = missing_tools() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

/// Bytes of the zoo model's inference arena at batch 1.
fn inference_arena(zoo: &str) -> usize {
    let m = torchlet_host::model::Model::from_zoo(zoo, 0).unwrap();
    m.plan(1, torchlet::Mode::Inference).unwrap().arena_bytes()
}

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn work_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"))
        .path()
}

/// A digits-cnn trained on the host with `torchlet train` (3 epochs, seed 0), once per run.
fn trained_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let out = work_dir().join("run");
        let o = torchlet(&["train", "--epochs", "3", "--quiet", "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "torchlet train failed: {}", text(&o.stderr));
        out.join("best.tlm")
    })
}

/// Exports `model` (a file or zoo name) to a region image in the work folder.
fn export(model: &str, name: &str) -> PathBuf {
    let out = work_dir().join(name);
    let o = torchlet(&[
        "export",
        "--target",
        "firmware",
        "--model",
        model,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "torchlet export failed: {}", text(&o.stderr));
    out
}

#[test]
fn firmware_predictions_equal_the_hosts_on_100_held_out_digits() {
    require_tools!();
    let model = trained_model().to_str().unwrap().to_string();
    let o = torchlet(&[
        "emulate",
        "--model",
        &model,
        "--dataset",
        "digits",
        "--count",
        "120",
        "--json",
    ]);
    assert!(
        o.status.success(),
        "torchlet emulate failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    println!("{v}");
    assert_eq!(v["agreement"], 1.0, "every firmware prediction equals the host's");
    assert_eq!(v["count"], 120);
    // The zoo's digits-cnn at batch 1 (its fused inference plan, as torchlet inspect reports
    // it), the linked arena too.
    let arena = inference_arena("digits-cnn");
    assert_eq!(v["arena_bytes"], arena);
    assert_eq!(v["linked_arena_bytes"], arena);
    assert!(v["flash_bytes"].as_u64().unwrap() > 10_000);
    assert!(v["ram_bytes"].as_u64().unwrap() >= arena as u64);
    assert!(v["instructions_per_inference"].as_u64().unwrap() > 10_000);
    assert!(
        v["firmware_accuracy"].as_f64().unwrap() > 0.8,
        "a trained model classifies most digits"
    );
    assert!(v["max_score_difference"].as_f64().unwrap() < 1e-3);
}

#[test]
fn instruction_counts_are_repeatable() {
    require_tools!();
    let count = |o: &Output| -> u64 {
        assert!(o.status.success(), "torchlet emulate failed: {}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["instructions_per_inference"].as_u64().unwrap()
    };
    let a = torchlet(&["emulate", "--model", "digits-cnn", "--count", "3", "--json"]);
    let b = torchlet(&["emulate", "--model", "digits-cnn", "--count", "3", "--json"]);
    assert_eq!(count(&a), count(&b));
}

#[test]
fn a_corrupted_region_is_refused_with_status_11() {
    require_tools!();
    let good = export(trained_model().to_str().unwrap(), "good.bin");
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[4000] ^= 0x10; // a bit of a weight
    let bad = work_dir().join("corrupt.bin");
    std::fs::write(&bad, bytes).unwrap();
    let o = torchlet(&["emulate", "--region", bad.to_str().unwrap(), "--count", "5"]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("model region: invalid model file") && err.contains("crc") && err.contains("exit status 11"),
        "{err}"
    );
    assert!(!text(&o.stdout).contains("agreement"), "no inference ran");
}

#[test]
fn a_model_too_large_for_the_arena_is_refused_with_status_12() {
    require_tools!();
    // The tutorial's CIFAR-10 network needs more arena than the default firmware's static
    // arena, which is sized for digits-cnn.
    let (need, have) = (inference_arena("tutorial-cnn"), inference_arena("digits-cnn"));
    assert!(need > have);
    let big = export("tutorial-cnn", "tutorial.bin");
    let o = torchlet(&["emulate", "--region", big.to_str().unwrap(), "--count", "5"]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            "model too large: its plan needs an arena of {need} bytes, the firmware's static arena has {have} bytes"
        )) && err.contains("exit status 12"),
        "{err}"
    );
}

#[test]
fn an_empty_region_is_refused_with_status_10() {
    require_tools!();
    let erased = work_dir().join("erased.bin");
    std::fs::write(&erased, vec![0xFFu8; 1024]).unwrap();
    // Its scratch folder (region image, inputs) is removed on this error path, and on one
    // that fails before the firmware runs.
    let tmp = tempfile::tempdir().unwrap();
    let emulate = |region: &str| {
        Command::new(env!("CARGO_BIN_EXE_torchlet"))
            .args(["emulate", "--region", region, "--count", "5"])
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap()
    };
    let o = emulate(erased.to_str().unwrap());
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no model file") && err.contains("exit status 10"), "{err}");
    let missing = work_dir().join("missing.bin");
    let o = emulate(missing.to_str().unwrap());
    assert!(
        !o.status.success() && text(&o.stderr).contains("missing.bin"),
        "{}",
        text(&o.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "scratch folders left behind: {left:?}");
}

#[test]
fn export_refuses_a_damaged_model_file_naming_it() {
    let bad = work_dir().join("damaged.tlm");
    std::fs::write(&bad, b"TORCHLET but not really a model file").unwrap();
    let out = work_dir().join("never.bin");
    let o = torchlet(&[
        "export",
        "--model",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("damaged.tlm"), "{err}");
    assert!(!out.exists(), "nothing is written for a bad model");
}

#[test]
fn export_pads_the_model_file_to_whole_kibibytes_of_erased_flash() {
    let out = export("digits-cnn", "zoo-digits.bin");
    let image = std::fs::read(&out).unwrap();
    assert_eq!(image.len() % 1024, 0);
    assert_eq!(&image[..8], b"TORCHLET");
    let d = u32::from_le_bytes(image[16..20].try_into().unwrap()) as usize;
    let l = u32::from_le_bytes(image[20..24].try_into().unwrap()) as usize;
    let len = d + l + 4;
    assert!(image[len..].iter().all(|&b| b == 0xFF));
    torchlet::model_file::ModelFile::parse(&image[..len]).expect("the image starts with a valid model file");
}

/// The value after `key` on the line starting with `prefix` (`before: loss 2.3 accuracy 20/200`).
fn field(stdout: &str, prefix: &str, key: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"));
    let mut words = line.split_whitespace();
    words.find(|w| *w == key);
    words.next().unwrap_or_default().to_string()
}

#[test]
fn on_device_training_lowers_the_held_out_loss() {
    require_tools!();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware");
    let elf_path = build_firmware(&dir, "finetune", None, None).expect("the finetune firmware builds");
    let elf = Elf::parse(&std::fs::read(&elf_path).unwrap(), &elf_path).unwrap();
    // 600 training digits, then 200 held out (the firmware holds out the last quarter).
    let (train, test) = Digits::embedded().split(360, 0);
    let mut frames = train.images[..600 * 64].to_vec();
    frames.extend_from_slice(&test.images[..200 * 64]);
    let mut labels = train.labels[..600].to_vec();
    labels.extend_from_slice(&test.labels[..200]);
    let inputs = work_dir().join("train-vectors.bin");
    std::fs::write(&inputs, vector_blob(&frames, &labels, 64)).unwrap();
    let run = run_firmware(
        &elf_path,
        &elf,
        None,
        Some(&inputs),
        None,
        work_dir(),
        Duration::from_secs(300),
    )
    .expect("qemu runs");
    println!("{}", run.stdout);
    assert_eq!(run.status, 0, "exit status 0: the loss fell\n{}", run.stdout);
    let before: f32 = field(&run.stdout, "before:", "loss").parse().unwrap();
    let after: f32 = field(&run.stdout, "after:", "loss").parse().unwrap();
    assert!(after < before, "{after} < {before}");
    let correct = |p: &str| -> usize {
        field(&run.stdout, p, "accuracy")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(correct("after:") > correct("before:"));
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("epoch ")).count(), 4);
}

/// The course's `map_location`, down to the board: a model trained on the GPU
/// (`--device gpu`, lavapipe in CI) is the same `.tlm` file, and the firmware under QEMU gives
/// the host's predictions for it.
#[test]
fn a_gpu_trained_model_runs_on_the_firmware_unchanged() {
    require_tools!();
    if let Err(e) = torchlet_gpu::Device::new(torchlet_gpu::Preference::Any) {
        assert!(
            std::env::var("TORCHLET_REQUIRE_GPU").as_deref() != Ok("1"),
            "TORCHLET_REQUIRE_GPU=1 but no GPU adapter: {e}"
        );
        eprintln!("skipping: no GPU adapter ({e})");
        return;
    }
    let out = work_dir().join("gpu-run");
    let o = torchlet(&[
        "train",
        "--device",
        "gpu",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "torchlet train --device gpu failed: {}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("device gpu: "), "{}", text(&o.stdout));
    let model = out.join("best.tlm");
    let o = torchlet(&[
        "emulate",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        "digits",
        "--count",
        "40",
        "--json",
    ]);
    assert!(o.status.success(), "torchlet emulate failed: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    println!("{v}");
    assert_eq!(v["agreement"], 1.0, "every firmware prediction equals the host's");
    assert!(v["firmware_accuracy"].as_f64().unwrap() > 0.8, "{v}");
}

#[test]
fn the_cifar10_network_runs_on_the_128_kib_stm32f405_layout() {
    require_tools!();
    // A folder of 32×32 colour images (the CIFAR-10 layout): 12 held out are more than the
    // board's 128 KiB inputs region holds (10), so QEMU runs twice.
    let data = work_dir().join("cifar-like");
    for (c, class) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..60u32 {
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let v = ((x * 7 + y * 3 + i * 11) % 256) as u8;
                image::Rgb([v, v.wrapping_mul(c as u8 + 1), 255 - v])
            });
            img.save(data.join(class).join(format!("{i:03}.png"))).unwrap();
        }
    }
    let o = torchlet(&[
        "emulate",
        "--board",
        "stm32f405",
        "--model",
        "tutorial-cnn",
        "--dataset",
        "image-folder",
        "--data-dir",
        data.to_str().unwrap(),
        "--count",
        "12",
        "--json",
    ]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    println!("{v}");
    assert_eq!(v["board"], "stm32f405");
    assert_eq!(v["agreement"], 1.0);
    assert_eq!(v["count"], 12);
    let arena = inference_arena("tutorial-cnn");
    assert!(arena <= 65_536, "{arena}");
    assert_eq!(v["linked_arena_bytes"], arena);
    assert!(v["ram_bytes"].as_u64().unwrap() < 128 * 1024, "{v}");
    assert_eq!(v["macs_per_inference"], 12_354_176);
    assert!(v["instructions_per_mac"].as_f64().is_some_and(|x| x > 0.5), "{v}");
    // An unknown board: the known ones are listed.
    let o = torchlet(&["emulate", "--board", "esp32", "--model", "digits-cnn"]);
    let err = text(&o.stderr);
    assert!(
        !o.status.success() && err.contains("mps2-an386") && err.contains("stm32f405"),
        "{err}"
    );
}

#[test]
fn the_size_report_splits_text_and_holds_digits_to_its_budget() {
    require_tools!();
    let o = torchlet(&["emulate", "--size-report", "--json"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON array");
    let rows = v.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{v}");
    for r in rows {
        let (text, kernels, runtime) = (
            r["text_bytes"].as_u64().unwrap(),
            r["kernel_text_bytes"].as_u64().unwrap(),
            r["runtime_text_bytes"].as_u64().unwrap(),
        );
        assert_eq!(kernels + runtime, text, "{r}");
        assert!(kernels > 5_000, "the GEMM at least: {r}");
        assert_eq!(r["arena_bytes"], r["linked_arena_bytes"], "{r}");
    }
    // digits-cnn with its op families only, then with all: fewer bytes, within the budget.
    let (model, all) = (&rows[0], &rows[2]);
    assert_eq!(model["model"], "digits-cnn");
    assert_eq!(
        model["features"],
        serde_json::json!(["op-activation", "op-conv", "op-linear", "op-pool"])
    );
    assert!(model["text_bytes"].as_u64() < all["text_bytes"].as_u64(), "{v}");
    assert!(model["text_bytes"].as_u64().unwrap() <= torchlet_host::cli::size_report::DIGITS_TEXT_LIMIT);
}
