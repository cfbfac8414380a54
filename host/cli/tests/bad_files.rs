//! Non-regular files (FIFO, socket, character device, directory) given wherever a command reads
//! a model or an image, or writes a model: each run must end within a time limit with a non-zero
//! exit, a message naming the path, no panic or allocation abort, and every file that was in the
//! folder before byte-for-byte as it was.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use torchlet_host::model::Model;

const LIMIT: Duration = Duration::from_secs(20);

/// Runs `torchlet args` in `cwd`, killing it (and failing) after [`LIMIT`]; (exit code, stderr).
fn run(cwd: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("torchlet {args:?} still running after {LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

/// Every entry of `dir` (not recursive): regular files with their bytes, others with their kind.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let ft = std::fs::symlink_metadata(e.path()).unwrap().file_type();
            let what = if ft.is_file() {
                format!("file {:?}", std::fs::read(e.path()).unwrap())
            } else if ft.is_fifo() {
                "fifo".into()
            } else if ft.is_socket() {
                "socket".into()
            } else if ft.is_dir() {
                "dir".into()
            } else {
                format!("{ft:?}")
            };
            (e.path(), what)
        })
        .collect()
}

/// A folder with a FIFO, a socket, a directory and a real model; the listener keeps the socket.
struct Fixture {
    dir: tempfile::TempDir,
    _listener: std::os::unix::net::UnixListener,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.tlm");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("socket.tlm")).unwrap();
        std::fs::create_dir(dir.path().join("dir.tlm")).unwrap();
        Model::from_zoo("digits-cnn", 0)
            .unwrap()
            .save(&dir.path().join("model.tlm"))
            .unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([200]))
            .save(dir.path().join("ok.png"))
            .unwrap();
        Fixture {
            dir,
            _listener: listener,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// The bad paths, each with the words its message must hold.
    fn bad(&self) -> Vec<(String, &'static str)> {
        vec![
            (self.path("fifo.tlm"), "is a FIFO, not a regular file"),
            (self.path("socket.tlm"), "is a socket, not a regular file"),
            ("/dev/null".into(), "is a character device, not a regular file"),
            ("/dev/zero".into(), "is a character device, not a regular file"),
            (self.path("dir.tlm"), "is a directory"),
        ]
    }

    /// Runs `args` (with `{}` replaced by each bad path) and checks the outcome.
    fn check(&self, args: &[&str]) {
        for (bad, words) in self.bad() {
            let before = snapshot(self.dir.path());
            let args: Vec<String> = args.iter().map(|a| a.replace("{}", &bad)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, err) = run(self.dir.path(), &args);
            assert_ne!(code, 0, "torchlet {args:?} succeeded\n{err}");
            assert!(
                err.contains(&bad),
                "torchlet {args:?}: the message does not name {bad}:\n{err}"
            );
            assert!(err.contains(words), "torchlet {args:?}: expected {words:?} in:\n{err}");
            assert!(
                !err.contains("panicked") && !err.contains("memory allocation of"),
                "{err}"
            );
            assert_eq!(
                snapshot(self.dir.path()),
                before,
                "torchlet {args:?} changed the folder"
            );
        }
    }
}

#[test]
fn inspect_refuses_non_regular_model_files() {
    Fixture::new().check(&["inspect", "{}"]);
}

#[test]
fn predict_refuses_non_regular_models_and_images() {
    let f = Fixture::new();
    f.check(&["predict", "--model", "{}", &f.path("ok.png")]);
    f.check(&["predict", "--model", &f.path("model.tlm"), "{}"]);
}

#[test]
fn eval_refuses_non_regular_model_files() {
    Fixture::new().check(&["eval", "--model", "{}"]);
}

#[test]
fn train_resume_and_init_from_refuse_non_regular_files() {
    let f = Fixture::new();
    let out = f.path("run");
    f.check(&["train", "--resume", "{}", "--epochs", "1", "--out", &out, "--quiet"]);
    f.check(&["train", "--init-from", "{}", "--epochs", "1", "--out", &out, "--quiet"]);
}

#[test]
fn export_refuses_non_regular_models_and_outputs() {
    let f = Fixture::new();
    f.check(&["export", "--model", "{}", "--out", &f.path("region.bin")]);
    for bad in [
        f.path("fifo.tlm"),
        f.path("socket.tlm"),
        "/dev/null".into(),
        f.path("dir.tlm"),
    ] {
        let before = snapshot(f.dir.path());
        let args = ["export", "--model", "mcu-cnn", "--out", &bad];
        let (code, err) = run(f.dir.path(), &args);
        assert_ne!(code, 0, "torchlet {args:?} succeeded\n{err}");
        assert!(err.contains(&bad) && err.contains("not a regular file"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(snapshot(f.dir.path()), before, "torchlet {args:?} changed the folder");
    }
    assert!(std::fs::symlink_metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn export_writes_through_a_symbolic_link() {
    let f = Fixture::new();
    let real = f.dir.path().join("real.bin");
    std::fs::write(&real, b"old").unwrap();
    let link = f.dir.path().join("link.bin");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, err) = run(
        f.dir.path(),
        &["export", "--model", "mcu-cnn", "--out", &f.path("link.bin")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_ne!(std::fs::read(&real).unwrap(), b"old");
}
