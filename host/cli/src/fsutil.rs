//! Writing files so that nothing is ever lost: [`write_atomic`].
//!
//! A model file or checkpoint is written to a temporary file in the same directory, flushed to
//! the disk (`fsync`), and then renamed over the target, which POSIX and Windows do atomically
//! within one file system; the directory is flushed too, so the rename itself survives a power
//! cut. A reader therefore sees either the old file or the complete new one, never a partial
//! write, and an error (full disk, read-only directory) leaves the old file untouched and no
//! temporary file behind.
//!
//! Use it for every file a user would hate to lose half of; plain `std::fs::write` is fine for
//! logs.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file-system operation that failed, with the path it was about.
#[derive(Debug)]
pub struct FsError {
    /// The file or directory the operation was about.
    pub path: PathBuf,
    /// What was being done (`"create a temporary file in"`, `"write"`, `"rename onto"`, ...).
    pub action: &'static str,
    /// The operating system's error.
    pub source: io::Error,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot {}: {}", self.path.display(), self.action, self.source)
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Reads a whole file, naming it in the error.
///
/// # Errors
/// [`FsError`] with the path and the operating system's reason.
pub fn read(path: &Path) -> Result<Vec<u8>, FsError> {
    fs::read(path).map_err(|source| FsError {
        path: path.to_path_buf(),
        action: "read the file",
        source,
    })
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, write, `fsync`,
/// rename over `path`, `fsync` of the directory. See the [module docs](self).
///
/// An existing file at `path` is replaced only when everything succeeded; on error the
/// temporary file is removed.
///
/// # Errors
/// [`FsError`] naming the path (the target, or its directory) and the step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let err = |path: &Path, action, source| FsError {
        path: path.to_path_buf(),
        action,
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        err(
            path,
            "write to a path without a file name",
            io::ErrorKind::InvalidInput.into(),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tmp_path, mut file) = create_temp(&dir, &file_name.to_string_lossy())
        .map_err(|e| err(&dir, "create a temporary file in the directory", e))?;
    let result = (|| {
        file.write_all(bytes)
            .map_err(|e| err(&tmp_path, "write the temporary file", e))?;
        file.sync_all()
            .map_err(|e| err(&tmp_path, "flush the temporary file to disk", e))?;
        drop(file);
        fs::rename(&tmp_path, path).map_err(|e| err(path, "rename the temporary file onto", e))?;
        sync_dir(&dir).map_err(|e| err(&dir, "flush the directory to disk", e))
    })();
    if result.is_err() {
        // Best effort: the temporary file may already be gone (renamed), which is fine.
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Creates a new, unique temporary file `.{name}.{pid}.{n}.tmp` in `dir`.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Flushes a directory entry to disk (so a rename in it is durable). A no-op where directories
/// cannot be opened as files (Windows).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.tlm");
        write_atomic(&p, b"first").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first");
        write_atomic(&p, b"second, longer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second, longer");
        assert_eq!(entries(dir.path()), vec!["model.tlm".to_string()]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no-such-dir").join("model.tlm");
        let e = write_atomic(&p, b"x").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("no-such-dir"), "{msg}");
        assert!(msg.contains("temporary file"), "{msg}");
        assert_eq!(entries(dir.path()), Vec::<String>::new());
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory_keeps_the_old_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.tlm");
        write_atomic(&p, b"old").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        let result = write_atomic(&p, b"new");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        // Root ignores permissions; the test only means something for other users.
        if let Err(e) = result {
            assert!(e.to_string().contains(&dir.path().display().to_string()), "{e}");
            assert_eq!(fs::read(&p).unwrap(), b"old");
        }
        assert_eq!(entries(dir.path()), vec!["model.tlm".to_string()]);
    }

    #[test]
    fn a_directory_in_the_way_fails_without_a_partial_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.tlm");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("keep"), b"k").unwrap();
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.to_string().contains("model.tlm"), "{e}");
        assert_eq!(entries(dir.path()), vec!["model.tlm".to_string()]);
        assert!(p.is_dir());
    }
}
