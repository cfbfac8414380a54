//! `torchlet predict DIR`: a folder stands for its image files (and those of its subfolders, one
//! level down), mixed with files; a corrupt image, an empty folder, a FIFO or a link out of the
//! folder is reported on its own and the other images are still classified.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use torchlet_host::model::Model;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `torchlet predict --device cpu --model MODEL inputs...`, failing after [`LIMIT`];
/// (exit code, stdout, stderr).
fn predict(model: &Path, inputs: &[&Path]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(["predict", "--device", "cpu", "--model"])
        .arg(model)
        .args(inputs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("torchlet predict {inputs:?} still running after {LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut e = String::new();
    std::io::Read::read_to_string(&mut err, &mut e).unwrap();
    (status.code().unwrap_or(-1), reader.join().unwrap(), e)
}

/// A temporary folder with a saved `digits-cnn` (gray 8×8 input) as `model.tlm`.
fn with_model() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.tlm");
    Model::from_zoo("digits-cnn", 0).unwrap().save(&model).unwrap();
    (dir, model)
}

/// Writes a small PNG (any size: predict resizes) at `path`, creating its folder.
fn png(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(12, 10, image::Luma([shade]))
        .save(path)
        .unwrap();
}

/// The file each output line is about (`PATH: class p%, ...`).
fn classified(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.rsplit_once(": ").expect("PATH: classes").0.to_string())
        .collect()
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn a_folder_and_a_file_give_one_line_per_image_sorted_by_path() {
    let (dir, model) = with_model();
    let imgs = dir.path().join("imgs");
    for (f, shade) in [("b.png", 10), ("a.PNG", 200), ("cat/c.png", 90), ("cat/deep/d.png", 30)] {
        png(&imgs.join(f), shade);
    }
    std::fs::write(imgs.join("notes.txt"), "not an image").unwrap();
    let extra = dir.path().join("extra.png");
    png(&extra, 120);
    let (code, out, err) = predict(&model, &[&imgs, &extra]);
    assert_eq!(code, 0, "{err}");
    // Deeper folders are not read; non-image names are not listed.
    let expected = [imgs.join("a.PNG"), imgs.join("b.png"), imgs.join("cat/c.png"), extra];
    assert_eq!(classified(&out), names(&expected), "{out}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn a_corrupt_image_in_a_folder_gets_an_error_line_and_the_others_are_classified() {
    let (dir, model) = with_model();
    let imgs = dir.path().join("imgs");
    png(&imgs.join("a.png"), 10);
    png(&imgs.join("c.png"), 200);
    let bad = imgs.join("b.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let (code, out, err) = predict(&model, &[&imgs]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        classified(&out),
        names(&[imgs.join("a.png"), imgs.join("c.png")]),
        "{out}"
    );
    assert!(
        err.contains(&format!("error: {}: cannot open the image", bad.display())),
        "{err}"
    );
    assert!(err.contains("1 of 3 images could not be read"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_folder_without_images_is_an_error_naming_it() {
    let (dir, model) = with_model();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    std::fs::write(empty.join("readme.txt"), "no images here").unwrap();
    let good = dir.path().join("good.png");
    png(&good, 50);
    let (code, out, err) = predict(&model, &[&empty, &good]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(classified(&out), names(&[good]), "{out}");
    assert!(
        err.contains(&format!("{}: is a directory without image files", empty.display())) && err.contains("png"),
        "{err}"
    );
    assert!(err.contains("1 folder gave no images"), "{err}");
}

#[cfg(unix)]
#[test]
fn fifos_are_reported_not_opened_and_links_never_leave_the_folder() {
    use std::os::unix::fs::symlink;
    let (dir, model) = with_model();
    let imgs = dir.path().join("imgs");
    png(&imgs.join("a.png"), 10);
    let outside = dir.path().join("outside.png");
    png(&outside, 99);
    symlink(&outside, imgs.join("out.png")).unwrap();
    symlink(&imgs, imgs.join("loop")).unwrap();
    let fifo = imgs.join("pipe.png");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (code, out, err) = predict(&model, &[&imgs]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(classified(&out), names(&[imgs.join("a.png")]), "{out}");
    assert!(
        err.contains(&fifo.display().to_string()) && err.contains("is a FIFO, not a regular file"),
        "{err}"
    );
    assert!(err.contains("not followed: 2 symbolic links"), "{err}");
    assert!(
        err.contains(&imgs.join("out.png").display().to_string())
            && err.contains(&imgs.join("loop").display().to_string()),
        "{err}"
    );
    assert!(err.contains("1 of 2 images could not be read"), "{err}");
}
