//! `torchlet train --out DIR`: one run per folder.
//!
//! A second run into a folder that already holds a run's files would replace its `best.tlm`
//! with a worse one and leave its `epoch-N.tlm` files beside the new ones. So a folder with any
//! of a run's model files (`last.tlm`, `best.tlm`, `interrupted.tlm`, `epoch-N.tlm`) is
//! refused, unless
//! - `--resume` continues a checkpoint of that folder (the run goes on), or
//! - `--overwrite` is given: those files and the default `tensorboard/` log folder are removed
//!   ([`remove`]) once the run is set up and before it writes (a run refused at its setup
//!   leaves them), so nothing of the old run is mixed with the new one; other files in the folder are
//!   left alone. Something a run never writes under such a name (a folder named `last.tlm`, a
//!   FIFO named `best.tlm`, a file named `tensorboard`) is refused and nothing is removed
//!   ([`RunDirError::NotRunFile`]).
//!
//! `--logdir DIR` gives each run its own TensorBoard folder, `DIR/<name of --out>`: it is held
//! to the same rule ([`check_logdir`]): logs of another run there are refused unless `--resume`
//! continues that run or `--overwrite` removes them ([`clear_logdir`]).

use std::fs;
use std::path::{Path, PathBuf};

/// Why `--out` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The folder holds another run.
    #[error(
        "--out {dir} already holds a run ({files}): continue it with --resume {last}, train into another \
         folder, or add --overwrite to remove its files first"
    )]
    Taken {
        /// The folder.
        dir: String,
        /// The run files found.
        files: String,
        /// Its `last.tlm`.
        last: String,
    },
    /// The `--logdir` folder of this run already holds another run's logs.
    #[error(
        "--logdir: {dir} already holds TensorBoard logs of a run named like this one: continue that run \
         with --resume, name this one with another --out, or add --overwrite to remove them first"
    )]
    LogsTaken {
        /// The run's log folder.
        dir: String,
    },
    /// `--overwrite` found something a run never writes under a run file's name (a folder
    /// named `last.tlm`, a FIFO named `best.tlm`): it is not removed.
    #[error(
        "--overwrite: {path} is {kind}, not a file a run wrote; nothing was removed (move it away, or train \
         into another --out folder)"
    )]
    NotRunFile {
        /// The file.
        path: String,
        /// What it is ("a directory").
        kind: &'static str,
    },
    /// Removing the old run's files failed.
    #[error("--overwrite: cannot remove {path}: {source}")]
    Remove {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The run files in `dir` (sorted names).
fn run_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_run_file))
        .collect();
    found.sort();
    found
}

fn is_run_file(name: &str) -> bool {
    matches!(name, "last.tlm" | "best.tlm" | "interrupted.tlm" | "tensorboard")
        || name
            .strip_prefix("epoch-")
            .and_then(|r| r.strip_suffix(".tlm"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks `dir` before a run; returns the files `--overwrite` is to remove (with [`remove`],
/// once the run is set up and about to write): none unless `overwrite`.
///
/// # Errors
/// [`RunDirError::Taken`] when `dir` holds a run that `resume` does not continue and
/// `overwrite` is off; [`RunDirError::NotRunFile`] when `overwrite` would remove something a
/// run never writes.
pub fn prepare(dir: &Path, resume: Option<&Path>, overwrite: bool) -> Result<Vec<PathBuf>, RunDirError> {
    let files = run_files(dir);
    // A folder with only a TensorBoard log (a run refused at its start) holds no run.
    if !files.iter().any(|f| f.extension().is_some_and(|e| e == "tlm")) {
        return Ok(Vec::new());
    }
    let continues = resume.is_some_and(|r| same_dir(r.parent().unwrap_or(Path::new(".")), dir));
    if continues {
        return Ok(Vec::new());
    }
    if !overwrite {
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        return Err(RunDirError::Taken {
            dir: dir.display().to_string(),
            files: names.join(", "),
            last: dir.join("last.tlm").display().to_string(),
        });
    }
    // Only what a run writes is removed: model files (or links to them) and the log folder.
    for f in &files {
        let Ok(meta) = fs::symlink_metadata(f) else { continue };
        let ft = meta.file_type();
        let log_dir = f.file_name().is_some_and(|n| n == "tensorboard");
        let ok = ft.is_symlink() || if log_dir { ft.is_dir() } else { ft.is_file() };
        if !ok {
            return Err(RunDirError::NotRunFile {
                path: f.display().to_string(),
                kind: torchlet_data::files::kind_name(&ft).unwrap_or("a regular file"),
            });
        }
    }
    Ok(files)
}

/// Removes the old run's `files` that [`prepare`] returned; returns them.
///
/// # Errors
/// [`RunDirError::Remove`] naming the first that cannot be removed.
pub fn remove(files: &[PathBuf]) -> Result<&[PathBuf], RunDirError> {
    for f in files {
        let removed = if f.is_dir() && !f.is_symlink() {
            fs::remove_dir_all(f)
        } else {
            fs::remove_file(f)
        };
        removed.map_err(|source| RunDirError::Remove {
            path: f.display().to_string(),
            source,
        })?;
    }
    Ok(files)
}

/// The TensorBoard event files in `dir`.
fn event_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("events.out.tfevents."))
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Checks a run's own `--logdir` folder `dir` before the run: it may hold logs only when
/// `resume` continues the run or `overwrite` will clear them.
///
/// # Errors
/// [`RunDirError::LogsTaken`].
pub fn check_logdir(dir: &Path, resume: Option<&Path>, overwrite: bool) -> Result<(), RunDirError> {
    if resume.is_some() || overwrite || event_files(dir).is_empty() {
        return Ok(());
    }
    Err(RunDirError::LogsTaken {
        dir: dir.display().to_string(),
    })
}

/// Removes the TensorBoard event files of `dir` (`--overwrite`); returns them.
///
/// # Errors
/// [`RunDirError::Remove`].
pub fn clear_logdir(dir: &Path) -> Result<Vec<PathBuf>, RunDirError> {
    let files = event_files(dir);
    for f in &files {
        fs::remove_file(f).map_err(|source| RunDirError::Remove {
            path: f.display().to_string(),
            source,
        })?;
    }
    Ok(files)
}

/// Whether two folder paths name the same folder (`runs/a` and `./runs/a/`).
fn same_dir(a: &Path, b: &Path) -> bool {
    let a = if a.as_os_str().is_empty() { Path::new(".") } else { a };
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_removes_only_what_a_run_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("best.tlm"), b"old run").unwrap();
        fs::create_dir_all(d.join("last.tlm")).unwrap();
        fs::write(d.join("last.tlm/keep.txt"), b"mine").unwrap();
        let e = prepare(d, None, true).unwrap_err().to_string();
        assert!(
            e.contains("last.tlm is a directory, not a file a run wrote; nothing was removed"),
            "{e}"
        );
        assert!(d.join("best.tlm").is_file() && d.join("last.tlm/keep.txt").is_file());
        fs::remove_dir_all(d.join("last.tlm")).unwrap();
        fs::write(d.join("tensorboard"), b"not a folder").unwrap();
        let e = prepare(d, None, true).unwrap_err().to_string();
        assert!(
            e.contains("tensorboard is a regular file, not a file a run wrote"),
            "{e}"
        );
        fs::remove_file(d.join("tensorboard")).unwrap();
        fs::create_dir(d.join("tensorboard")).unwrap();
        fs::write(d.join("epoch-3.tlm"), b"old run").unwrap();
        let old = prepare(d, None, true).unwrap();
        assert_eq!(old.len(), 3, "{old:?}");
        assert_eq!(fs::read_dir(d).unwrap().count(), 3, "prepare removes nothing");
        assert_eq!(remove(&old).unwrap(), old);
        assert_eq!(fs::read_dir(d).unwrap().count(), 0);
    }

    #[test]
    fn run_files_are_recognised_by_name() {
        for yes in ["last.tlm", "best.tlm", "interrupted.tlm", "epoch-12.tlm", "tensorboard"] {
            assert!(is_run_file(yes), "{yes}");
        }
        for no in ["epoch-.tlm", "epoch-x.tlm", "notes.txt", "model.tlm", "last.tlm.bak"] {
            assert!(!is_run_file(no), "{no}");
        }
    }
}
