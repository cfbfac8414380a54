//! Scratch folders that do not outlive the command: [`Scratch::new`] makes one under the
//! system's temporary folder, named `torchlet-<what>-<pid>-<random>`, and it is removed on
//! every way out of the process that runs code: a return, an error (`?`), a panic (both by
//! `Drop`) and Ctrl-C (a handler removes the folders still open, then exits with status 130).
//! What `kill -9` or a power cut leaves behind is swept by the next [`Scratch::new`] of the same
//! kind: folders whose process no longer runs are removed.
//!
//! `torchlet emulate` keeps its region image and input vectors in one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folders open now, for the Ctrl-C handler.
static OPEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary folder removed when dropped, or on Ctrl-C. See the [module docs](self).
#[derive(Debug)]
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// A new, empty scratch folder for `what` (a short name: `emulate`), after removing the
    /// folders of earlier `what` processes that have ended.
    ///
    /// # Errors
    /// The folder cannot be created (the message names the temporary folder).
    pub fn new(what: &str) -> Result<Scratch, String> {
        let tmp = std::env::temp_dir();
        let prefix = format!("torchlet-{what}-");
        sweep(&tmp, &prefix);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-", std::process::id()))
            .tempdir_in(&tmp)
            .map_err(|e| format!("{}: cannot create a scratch folder: {e}", tmp.display()))?;
        on_ctrl_c();
        if let Ok(mut open) = OPEN.lock() {
            open.push(dir.path().to_path_buf());
        }
        Ok(Scratch { dir: Some(dir) })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if let Ok(mut open) = OPEN.lock() {
                open.retain(|p| p != dir.path());
            }
            let _ = dir.close();
        }
    }
}

/// Installs the Ctrl-C handler once (if another handler is installed, Ctrl-C ends the process
/// as before and the next [`Scratch::new`] sweeps the folder).
fn on_ctrl_c() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if let Ok(open) = OPEN.lock() {
                for dir in open.iter() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            std::process::exit(130);
        });
    });
}

/// Removes the `prefix<pid>-*` folders in `tmp` whose process has ended (Linux: no
/// `/proc/<pid>`; elsewhere nothing is swept).
fn sweep(tmp: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_folders_go_away_on_drop_and_stale_ones_are_swept() {
        let s = Scratch::new("unit-test").unwrap();
        let p = s.path().to_path_buf();
        std::fs::write(p.join("x"), b"1").unwrap();
        assert!(p.is_dir());
        drop(s);
        assert!(!p.exists());
        // A folder of a process that has ended (pid 0 is never a user process here).
        let stale = std::env::temp_dir().join("torchlet-unit-test-4294967295-abc");
        std::fs::create_dir_all(&stale).unwrap();
        let live = Scratch::new("unit-test").unwrap();
        assert!(!stale.exists(), "the stale folder was swept");
        assert!(live.path().is_dir());
    }

    #[test]
    fn an_error_return_removes_the_folder() {
        fn fails(keep: &mut PathBuf) -> Result<(), String> {
            let s = Scratch::new("unit-test-err")?;
            *keep = s.path().to_path_buf();
            Err("failed".into())
        }
        let mut p = PathBuf::new();
        assert!(fails(&mut p).is_err());
        assert!(!p.as_os_str().is_empty() && !p.exists());
    }
}
