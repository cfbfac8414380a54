//! `kill -9` during checkpoint writes: `torchlet train` (the embedded digits, a few images, one
//! quick epoch after another, each saving `epoch-N.tlm`, `last.tlm` and often `best.tlm`) is
//! killed with SIGKILL at deterministic pseudo-random times, many of them in the middle of a
//! save, and then resumed from its `last.tlm` (or started afresh with `--overwrite` when no
//! `last.tlm` exists yet), `TORCHLET_KILL_LOOPS` times (default 12; run 30 or more locally).
//!
//! After every kill, every `*.tlm` left in the folder loads as a checkpoint: saves are atomic
//! (`fsutil::write_atomic`), so a kill leaves the old file or the new one, never a part.
//!
//! Temporary files: a kill in the middle of a save leaves that save's `.NAME.<pid>.<n>.tmp`.
//! The next write to the folder removes such files once they are stale, by the documented rule
//! (`fsutil`): the writer's process is gone and the file is older than
//! [`STALE_DEAD_PID`](torchlet_host::fsutil::STALE_DEAD_PID), or it is older than
//! [`STALE_ANY`](torchlet_host::fsutil::STALE_ANY). So once the next run has saved, each
//! temporary file in the folder is that run's own save in progress or a fresh one of a killed
//! process; and at the end, with the leftovers aged past `STALE_DEAD_PID`, one more run that
//! saves leaves no temporary file at all.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use torchlet_host::fsutil::STALE_DEAD_PID;
use torchlet_host::model::Checkpoint;

/// Kill-and-resume rounds without `TORCHLET_KILL_LOOPS`.
const DEFAULT_LOOPS: usize = 12;

fn start(out: &Path) -> Child {
    let last = out.join("last.tlm");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_torchlet"));
    cmd.arg("train");
    if last.exists() {
        cmd.arg("--resume").arg(&last);
    } else {
        // Epochs enough never to finish, each one step on 16 images and a test on 18, so that
        // much of a run's time goes to its saves (three an epoch, each flushed to disk).
        cmd.args([
            "--epochs",
            "100000",
            "--limit",
            "16",
            "--batch-size",
            "16",
            "--val-split",
            "0.01",
        ])
        .arg("--overwrite");
    }
    // A resumed run does not remember these (they are not in the run record): given each time.
    cmd.args(["--save-every", "1", "--keep-last", "3"]);
    cmd.arg("--out")
        .arg(out)
        .args(["--quiet", "--device", "cpu", "--threads", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the torchlet binary starts")
}

/// The temporary files of `dir` (`.NAME.<pid>.<n>.tmp`), with their writer's pid.
fn temps(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '.');
        let (_, pid) = (parts.next(), parts.next());
        if let Some(pid) = pid.and_then(|p| p.parse().ok()) {
            found.push((e.path(), pid));
        }
    }
    found
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Every `*.tlm` of `dir` loads as a checkpoint; their names.
fn check_models(dir: &Path, when: &str) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "tlm") {
            if let Err(err) = Checkpoint::load(&p) {
                panic!("{when}: {} does not load: {err}", p.display());
            }
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

/// A temporary file of a process that is gone may stay until it is stale: it must be younger
/// than [`STALE_DEAD_PID`] (else the save that just happened should have removed it).
fn check_leftovers(dir: &Path, live: u32, when: &str) {
    for (path, pid) in temps(dir) {
        if pid == live {
            continue; // a save in progress
        }
        let age = modified(&path)
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        assert!(
            age < STALE_DEAD_PID,
            "{when}: {} (age {age:?}) outlived a save, though its writer is gone",
            path.display()
        );
    }
}

/// A small deterministic generator for the kill times (no dependencies).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn every_checkpoint_loads_after_any_kill_and_no_temporary_file_outlives_its_staleness() {
    let loops: usize = std::env::var("TORCHLET_KILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_LOOPS);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut rng = Lcg(0x5eed_2026);
    let (mut kills_leaving_temps, mut saves_seen, mut fresh_starts) = (0, 0, 0);
    let began = Instant::now();
    for round in 0..loops {
        let fresh = !out.join("last.tlm").exists();
        fresh_starts += usize::from(fresh);
        let before = modified(&out.join("last.tlm"));
        let mut child = start(&out);
        let pid = child.id();
        // Most kills land in the first second of a run, where it starts, trains and saves; every
        // other round, past that time, the kill waits for this run's next temporary file, to
        // land in the middle of a save.
        let delay = Duration::from_millis(20 + rng.below(if round % 4 == 3 { 1500 } else { 500 }));
        let mid_save = round % 2 == 1;
        let started = Instant::now();
        let mut saved = false;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("round {round}: torchlet train ended by itself ({status}) before the kill:\n{err}");
            }
            if !saved && out.join("last.tlm").exists() && modified(&out.join("last.tlm")) != before {
                // This run has saved: stale leftovers of earlier kills must be gone.
                saved = true;
                saves_seen += 1;
                check_leftovers(&out, pid, &format!("round {round}, after the run's first save"));
            }
            let due = started.elapsed() >= delay;
            if due && (!mid_save || started.elapsed() > delay * 4 || temps(&out).iter().any(|(_, p)| *p == pid)) {
                break;
            }
            if !due {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let delay = started.elapsed();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let models = check_models(&out, &format!("round {round}, after kill -9 at {delay:?}"));
        let left = temps(&out);
        kills_leaving_temps += usize::from(left.iter().any(|(_, p)| *p == pid));
        println!(
            "round {round:2}: {} run, killed after {delay:.0?}{}; {} model files load; temporary files: {}",
            if fresh { "fresh" } else { "resumed" },
            if saved { " (it had saved)" } else { "" },
            models.len(),
            left.len()
        );
    }

    // The leftovers, aged past STALE_DEAD_PID as if a second had gone by, are removed by the
    // next save; that run finishes one more epoch and exits by itself.
    for (path, _) in temps(&out) {
        let old = SystemTime::now() - STALE_DEAD_PID - Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let last = out.join("last.tlm");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_torchlet"));
    cmd.arg("train");
    if last.exists() {
        let done = Checkpoint::load(&last).unwrap().train.epoch;
        cmd.arg("--resume")
            .arg(&last)
            .args(["--epochs", &(done + 1).to_string()]);
    } else {
        cmd.args(["--epochs", "1", "--limit", "64", "--overwrite"]);
    }
    let o = cmd
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the last run failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let models = check_models(&out, "after the last run");
    let left = temps(&out);
    assert!(left.is_empty(), "temporary files left after the last run: {left:?}");
    println!(
        "{loops} kills ({fresh_starts} fresh starts, {saves_seen} runs that saved before their kill, \
         {kills_leaving_temps} kills mid-save that left a temporary file) in {:.1} s; after the last run: {}, \
         no temporary file",
        began.elapsed().as_secs_f64(),
        models.join(" ")
    );
}
