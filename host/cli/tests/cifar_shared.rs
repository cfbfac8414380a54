//! `torchlet train` on a slice of the real CIFAR-10 images in `../shared/datasets/cifar10`
//! (JPEGs in a `train/<class>/` tar.gz): the tutorial network learns above chance.
//!
//! The archive is read-only and shared: the slice is extracted into a temporary folder. In a
//! clone without `../shared` the test says so and passes without running.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Three classes that the tutorial network tells apart after a few epochs.
const CLASSES: [&str; 3] = ["airplane", "automobile", "frog"];
const PER_CLASS: usize = 300;

fn archive() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/cifar10/train.tar.gz")
}

/// Streams the archive and writes the first `PER_CLASS` images of each of [`CLASSES`] into
/// `root/train/<class>/`.
fn extract_slice(root: &Path) -> usize {
    let gz = flate2::read::GzDecoder::new(File::open(archive()).expect("open the archive"));
    let mut tar = tar::Archive::new(gz);
    let mut counts = [0usize; CLASSES.len()];
    for entry in tar.entries().expect("a tar archive") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("an entry path").into_owned();
        let parts: Vec<String> = path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        // train/<class>/<n>.jpg, possibly behind a leading "./".
        let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != ".").collect();
        if parts.len() != 3 || parts[0] != "train" {
            continue;
        }
        let Some(k) = CLASSES.iter().position(|c| *c == parts[1]) else {
            continue;
        };
        if counts[k] == PER_CLASS {
            if counts.iter().all(|&c| c == PER_CLASS) {
                break;
            }
            continue;
        }
        let dir = root.join("train").join(parts[1]);
        std::fs::create_dir_all(&dir).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        std::fs::write(dir.join(parts[2]), bytes).unwrap();
        counts[k] += 1;
    }
    assert!(
        counts.iter().all(|&c| c == PER_CLASS),
        "the archive holds fewer than {PER_CLASS} images of some class: {counts:?}"
    );
    counts.iter().sum()
}

#[test]
fn tutorial_cnn_learns_a_slice_of_the_shared_cifar10_images() {
    if !archive().is_file() {
        eprintln!(
            "skipped: the shared CIFAR-10 images are not here ({}); CI has them",
            archive().display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar10");
    let n = extract_slice(&data);
    assert_eq!(n, CLASSES.len() * PER_CLASS);
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(["train", "--dataset", "cifar10", "--data-dir"])
        .arg(&data)
        .args([
            "--model",
            "tutorial-cnn",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--lr",
            "0.01",
        ])
        .args(["--momentum", "0.9", "--val-split", "0.1", "--seed", "7", "--out"])
        .arg(&out)
        .args(["--logdir"])
        .arg(dir.path().join("logs"))
        .output()
        .expect("the torchlet binary runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let accuracies: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with("epoch "))
        .filter_map(|l| l.split("accuracy ").nth(1)?.split('%').next()?.trim().parse().ok())
        .collect();
    assert_eq!(accuracies.len(), 4, "one line per epoch:\n{stdout}");
    eprintln!("held-out accuracy by epoch (%): {accuracies:?}");
    let best = accuracies.iter().cloned().fold(0.0, f64::max);
    // Chance is 33.3 % on three classes.
    assert!(
        best > 50.0,
        "held-out accuracy stayed near chance: {accuracies:?}\n{stdout}"
    );
    assert!(out.join("best.tlm").is_file() && out.join("last.tlm").is_file());
    trained_model_gives_its_probabilities_in_onnxruntime(&out.join("best.tlm"), &data);
}

/// The course's last step on the trained network: `torchlet export --target onnx`, then
/// onnxruntime on 30 of the CIFAR-10 images (as PNGs) gives `torchlet predict`'s probabilities
/// (`tools/onnx_predict_check.py`, within 1e-5). Skipped, saying so, without onnxruntime
/// outside CI (CI installs it).
fn trained_model_gives_its_probabilities_in_onnxruntime(model: &Path, data: &Path) {
    let have = Command::new("python3")
        .args(["-c", "import onnx, onnxruntime, numpy, PIL"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs onnx, onnxruntime, numpy and pillow"
        );
        eprintln!("skipped the onnxruntime check: `python3 -m pip install onnx onnxruntime numpy pillow`");
        return;
    }
    let torchlet = env!("CARGO_BIN_EXE_torchlet");
    let onnx = model.with_extension("onnx");
    let o = Command::new(torchlet)
        .args(["export", "--target", "onnx", "--model"])
        .arg(model)
        .arg("--out")
        .arg(&onnx)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut images: Vec<PathBuf> = Vec::new();
    for class in CLASSES {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("train").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // As lossless PNGs: two JPEG decoders (the image crate's, PIL's) differ by a few
        // levels per pixel, which is not what this compares.
        for f in files.into_iter().take(10) {
            let png = data.join(format!("{class}-{}.png", f.file_stem().unwrap().to_string_lossy()));
            image::open(&f).unwrap().to_rgb8().save(&png).unwrap();
            images.push(png);
        }
    }
    let o = Command::new(torchlet)
        .args(["predict", "--json", "--top-k", "10", "--model"])
        .arg(model)
        .args(&images)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/onnx_predict_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&onnx)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(&o.stdout).unwrap();
    let r = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&r.stdout);
    eprintln!("onnxruntime vs torchlet predict: {report}");
    assert!(r.status.success(), "{report}{}", String::from_utf8_lossy(&r.stderr));
    assert!(report.contains("\"images\": 30"), "{report}");
}
