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
//!
//! # What a write may replace
//! Only a regular file. A FIFO, a device node, a socket or a directory at the target is an error
//! naming it, and nothing is written. A symbolic link is **written through**: the file it points
//! to (all links resolved) is replaced atomically, with the temporary file in *that* file's
//! directory, and the link itself stays; a link to a missing file or to something that is not a
//! regular file is an error.
//!
//! # Stale temporary files
//! A process killed during a write leaves its `.NAME.<pid>.<n>.tmp`. Each write removes, in the
//! folder it writes to, such files (exactly that name pattern, regular files only) that are
//! stale: older than [`STALE_DEAD_PID`] when no process `<pid>` is alive (checked in `/proc`,
//! Linux only), or older than [`STALE_ANY`] whatever the pid. A write in progress keeps its file
//! fresh, so another writer's live temporary file is never removed.
//!
//! # Reading
//! [`read`] and [`open_regular`] refuse FIFOs, devices, sockets and directories with an error
//! naming the path and what it is, instead of blocking or reading forever (see
//! [`torchlet_data::files`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

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
    torchlet_data::files::read_regular(path).map_err(|source| FsError {
        path: path.to_path_buf(),
        action: "read the file",
        source,
    })
}

/// Opens a file for reading once it is known to be a regular file (not a FIFO, device, socket
/// or directory), naming it in the error. See [`torchlet_data::files::open_regular`].
///
/// # Errors
/// [`FsError`] with the path and the reason ("is a FIFO, not a regular file").
pub fn open_regular(path: &Path) -> Result<File, FsError> {
    torchlet_data::files::open_regular(path).map_err(|source| FsError {
        path: path.to_path_buf(),
        action: "open the file",
        source,
    })
}

/// A temporary file whose writer's process is gone is stale after this long (a second: the
/// next run removes what a killed one left, and a writer in another PID namespace, which looks
/// dead from here, keeps a file this young while it writes).
pub const STALE_DEAD_PID: Duration = Duration::from_secs(1);
/// Any temporary file is stale after this long, whatever its process id says (the id may have
/// been reused, or belong to another PID namespace).
pub const STALE_ANY: Duration = Duration::from_secs(60 * 60);

/// The file `write_atomic(path)` should replace: `path` itself, or for a symbolic link the file
/// it resolves to. Errors if that is not a regular file or a missing one (a dangling link
/// is an error too).
fn write_target(path: &Path) -> Result<PathBuf, FsError> {
    let err = |action, source| FsError {
        path: path.to_path_buf(),
        action,
        source,
    };
    let not_regular = |kind: &str| {
        let msg = format!("is {kind}, not a regular file; nothing was written");
        err("write", io::Error::new(io::ErrorKind::InvalidInput, msg))
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(err("inspect", e)),
    };
    if !meta.file_type().is_symlink() {
        return match torchlet_data::files::kind_name(&meta.file_type()) {
            None => Ok(path.to_path_buf()),
            Some(kind) => Err(not_regular(kind)),
        };
    }
    let target = fs::canonicalize(path).map_err(|e| err("write through the symbolic link", e))?;
    let meta = fs::metadata(&target).map_err(|e| err("write through the symbolic link", e))?;
    match torchlet_data::files::kind_name(&meta.file_type()) {
        None => Ok(target),
        Some(kind) => Err(not_regular(&format!(
            "a symbolic link to {kind} ({})",
            target.display()
        ))),
    }
}

/// Checks, before long work whose result goes to `path`, that [`write_atomic`] may replace it:
/// it is missing, a regular file or a link to one (the write checks again).
///
/// # Errors
/// [`FsError`] naming `path` and what it is ("is a directory, not a regular file").
pub fn check_target(path: &Path) -> Result<(), FsError> {
    write_target(path).map(|_| ())
}

/// Whether `name` is a temporary file of [`create_temp`]: `.NAME.<pid>.<n>.tmp`; its pid.
fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let n = parts.next()?;
    let pid = parts.next()?;
    let stem = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(n) && digits(pid) && !stem.is_empty()).then(|| pid.parse().ok())?
}

/// Whether process `pid` is alive; `true` where that cannot be known (no `/proc`).
fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Removes the stale temporary files of earlier, crashed writes in `dir` (see the
/// [module docs](self)); returns how many. Best effort: errors are ignored.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(temp_pid) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let stale = age > STALE_ANY || (age > STALE_DEAD_PID && !pid_alive(pid));
        if meta.file_type().is_file() && stale && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, write, `fsync`,
/// rename over `path`, `fsync` of the directory. See the [module docs](self).
///
/// An existing file at `path` is replaced only when everything succeeded; on error the
/// temporary file is removed. Only a regular file (or, through a symbolic link, the regular
/// file it points to) is ever replaced; stale temporary files of crashed writes in the folder
/// are removed first. See the [module docs](self).
///
/// # Errors
/// [`FsError`] naming the path (the target, or its directory) and the step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let err = |path: &Path, action, source| FsError {
        path: path.to_path_buf(),
        action,
        source,
    };
    let target = write_target(path)?;
    let path = target.as_path();
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
    remove_stale_temps(&dir);
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
    #[cfg(unix)]
    use std::os::unix::fs::FileTypeExt;

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

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("real");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("model.tlm");
        fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.tlm");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(entries(&real_dir), vec!["model.tlm".to_string()]);
        assert_eq!(entries(dir.path()), vec!["link.tlm".to_string(), "real".to_string()]);
        // A dangling link is refused and stays as it was.
        let dangling = dir.path().join("dangling.tlm");
        std::os::unix::fs::symlink(dir.path().join("missing"), &dangling).unwrap();
        let e = write_atomic(&dangling, b"x").unwrap_err().to_string();
        assert!(e.contains("dangling.tlm") && e.contains("symbolic link"), "{e}");
        assert!(!dir.path().join("missing").exists());
    }

    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_links_to_them_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = write_atomic(&fifo, b"x").unwrap_err().to_string();
        assert!(e.contains("fifo: cannot write: is a FIFO, not a regular file"), "{e}");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let e = write_atomic(&link, b"x").unwrap_err().to_string();
        assert!(e.contains("a symbolic link to a character device"), "{e}");
        assert_eq!(entries(dir.path()), vec!["fifo".to_string(), "link".to_string()]);
        let e = read(&fifo).unwrap_err().to_string();
        assert!(
            e.contains("fifo: cannot read the file: is a FIFO, not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn temp_names_are_recognised() {
        assert_eq!(temp_pid(".last.tlm.1234.0.tmp"), Some(1234));
        assert_eq!(temp_pid(".a.b.c.tlm.7.12.tmp"), Some(7));
        for name in [
            "last.tlm",
            ".last.tlm.tmp",
            "..1.2.tmp",
            ".x.1.a.tmp",
            ".x.1.2.tmpx",
            ".x..2.tmp",
        ] {
            assert_eq!(temp_pid(name), None, "{name}");
        }
    }

    #[test]
    fn stale_temporary_files_are_removed_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let age = |p: &Path, secs: u64| {
            let t = SystemTime::now() - Duration::from_secs(secs);
            File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
        };
        // No process has pid u32::MAX - 1 (Linux caps pids at 2^22).
        let dead = dir.path().join(format!(".last.tlm.{}.0.tmp", u32::MAX - 1));
        let dead_fresh = dir.path().join(format!(".best.tlm.{}.3.tmp", u32::MAX - 1));
        let ours_old = dir.path().join(format!(".a.tlm.{}.9.tmp", std::process::id()));
        let ours_fresh = dir.path().join(format!(".b.tlm.{}.9.tmp", std::process::id()));
        let other = dir.path().join("notes.tmp");
        for p in [&dead, &dead_fresh, &ours_old, &ours_fresh, &other] {
            fs::write(p, b"partial").unwrap();
            age(p, 7200);
        }
        age(&dead, 120);
        age(&dead_fresh, 0);
        age(&ours_fresh, 120);
        write_atomic(&dir.path().join("model.tlm"), b"m").unwrap();
        let mut expect = vec!["model.tlm".to_string(), "notes.tmp".to_string()];
        expect.push(ours_fresh.file_name().unwrap().to_string_lossy().into_owned());
        if Path::new("/proc/self").exists() {
            expect.push(dead_fresh.file_name().unwrap().to_string_lossy().into_owned());
        } else {
            // Without /proc the pid cannot be checked: only the age rule applies.
            for p in [&dead, &dead_fresh] {
                expect.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        expect.sort();
        assert_eq!(entries(dir.path()), expect);
    }
}
