//! `torchlet train` and `torchlet eval` on an image folder with a corrupt image: without
//! `--skip-bad` the run fails naming the file and suggesting the flag; with it the image is left
//! out and listed ("skipped 1 image ..."); the flag is refused for data sets without image files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use torchlet_host::zoo::{build, ZooConfig};

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// `root/{train,test}/{a,b}/i.png` (tiny RGB images, 4 a class) and one corrupt PNG at
/// `root/bad`; returns the corrupt file's path.
fn folder(root: &Path, bad: &str) -> PathBuf {
    for part in ["train", "test"] {
        for (k, class) in ["a", "b"].iter().enumerate() {
            let dir = root.join(part).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..4u8 {
                let shade = if k == 0 { 30 + i } else { 220 - i };
                image::RgbImage::from_pixel(6, 6, image::Rgb([shade; 3]))
                    .save(dir.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
    let bad = root.join(bad);
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    bad
}

/// `torchlet train` on `data` with digits-cnn (8×8 RGB: fast), one epoch on the CPU.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        s(data),
        "--model",
        "digits-cnn",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        s(out),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    torchlet(&args)
}

#[test]
fn train_fails_on_a_corrupt_image_naming_it_and_skip_bad_leaves_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = folder(&data, "train/a/9.png");

    let o = train(&data, &dir.path().join("run1"), &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("--skip-bad"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let o = train(&data, &dir.path().join("run2"), &["--skip-bad"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("--skip-bad: skipped 1 image that does not decode:"),
        "{err}"
    );
    assert!(err.contains(&format!("  {}: ", bad.display())), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("8 training images, 8 held out"), "{out}");
}

#[test]
fn eval_fails_on_a_corrupt_image_naming_it_and_skip_bad_leaves_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = folder(&data, "test/b/9.png");
    let mut model = build(
        "digits-cnn",
        &ZooConfig {
            channels: Some(3),
            size: None,
            num_classes: Some(2),
        },
        0,
    )
    .unwrap();
    model.classes = vec!["a".into(), "b".into()];
    let path = dir.path().join("m.tlm");
    model.save(&path).unwrap();
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--model",
            s(&path),
            "--dataset",
            "image-folder",
            "--data-dir",
            s(&data),
            "--device",
            "cpu",
            "--json",
        ];
        args.extend_from_slice(extra);
        torchlet(&args)
    };

    let o = eval(&[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("--skip-bad"),
        "{err}"
    );

    let o = eval(&["--skip-bad"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("skipped 1 image"), "{err}");
    assert!(err.contains(&format!("  {}: ", bad.display())), "{err}");
    // stdout stays one JSON object, measured on the 8 good test images.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["samples"], 8, "{v}");
}

#[test]
fn skip_bad_is_refused_for_data_sets_without_image_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = torchlet(&[
        "train",
        "--skip-bad",
        "--epochs",
        "1",
        "--out",
        s(&dir.path().join("run")),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("--skip-bad") && err.contains("--dataset digits") && err.contains("no image files"),
        "{err}"
    );
}
