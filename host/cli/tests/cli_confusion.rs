//! The confusion matrix as a picture, run as the built binary: `torchlet eval --confusion-png`
//! and the `Confusion/test` image `torchlet train` logs to TensorBoard every epoch.

use std::path::Path;
use std::process::{Command, Output};

use torchlet_host::confusion_png::TAG;
use torchlet_host::summary::proto::event::What;
use torchlet_host::summary::proto::summary_value::Value;
use torchlet_host::summary::reader::{event_files, read_events};

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

/// The `(step, PNG)` of every image tagged `tag` in the event files of `logdir`.
fn images(logdir: &Path, tag: &str) -> Vec<(i64, Vec<u8>)> {
    let mut found = Vec::new();
    for file in event_files(logdir).unwrap() {
        for event in read_events(&file).unwrap() {
            let Some(What::Summary(sum)) = event.what else {
                continue;
            };
            for v in sum.value.into_iter().filter(|v| v.tag == tag) {
                if let Some(Value::Image(img)) = v.value {
                    found.push((event.step, img.encoded_image_string));
                }
            }
        }
    }
    found
}

/// A picture of a 10-class matrix: larger than its 10 × 40-pixel grid, smaller than a screen.
fn assert_ten_class_size(img: &image::RgbImage) {
    let (w, h) = img.dimensions();
    assert!((400..1000).contains(&w) && (400..1000).contains(&h), "{w}x{h}");
}

#[test]
fn training_logs_the_held_out_confusion_picture_and_eval_writes_the_same_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Two threads: the data-parallel held-out pass gathers the workers' predictions.
    let o = torchlet(&["train", "--epochs", "2", "--threads", "2", "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let logged = images(&out.join("tensorboard"), TAG);
    assert_eq!(
        logged.iter().map(|l| l.0).collect::<Vec<_>>(),
        [1, 2],
        "one picture an epoch"
    );
    let last = image::load_from_memory(&logged[1].1).expect("a PNG").to_rgb8();
    assert_ten_class_size(&last);

    let png = out.join("cm.png");
    let o = torchlet(&["eval", "--model", s(&out.join("last.tlm")), "--confusion-png", s(&png)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("confusion matrix picture written to {}", s(&png))),
        "{}",
        stdout(&o)
    );
    let written = image::open(&png).expect("a PNG").to_rgb8();
    assert_ten_class_size(&written);
    // The last epoch's held-out pass and `eval` of its model count the same matrix.
    assert!(written == last, "eval's picture differs from the last epoch's");

    // --json: stdout stays one JSON object, the message goes to stderr.
    let png2 = out.join("cm2.png");
    let o = torchlet(&[
        "eval",
        "--model",
        s(&out.join("last.tlm")),
        "--json",
        "--confusion-png",
        s(&png2),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(v["confusion"].as_array().unwrap().len(), 10);
    assert!(stderr(&o).contains(s(&png2)), "{}", stderr(&o));
    assert_eq!(std::fs::read(&png2).unwrap(), std::fs::read(&png).unwrap());
}

#[test]
fn a_confusion_png_path_that_cannot_be_written_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = torchlet(&["train", "--epochs", "1", "--limit", "200", "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = out.join("last.tlm");
    let missing = dir.path().join("no-such-folder").join("cm.png");
    for (target, what) in [
        (out.as_path(), "is a directory, not a regular file"),
        (missing.as_path(), "is not a folder"),
    ] {
        let o = torchlet(&["eval", "--model", s(&model), "--confusion-png", s(target)]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("--confusion-png") && err.contains(s(target)) && err.contains(what),
            "{err}"
        );
        // Refused before the data is read: no report.
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    }
    assert!(!missing.exists());
}
