//! Opening input files safely: [`open_regular`], [`read_regular`], [`read_to_string_regular`].
//!
//! Every file this crate (and the `torchlet` command line) reads goes through these helpers, so
//! a FIFO, a character or block device or a socket given where a file is expected is an error
//! naming what it is ("is a FIFO, not a regular file") instead of a read that waits forever or
//! never ends (`/dev/zero`). Two guards:
//!
//! 1. the path's type is checked with `metadata` (links followed) before opening;
//! 2. on Unix the file is opened with `O_NONBLOCK` (so even a FIFO swapped in after the check
//!    cannot block the open) and checked again on the open handle with `File::metadata`.
//!
//! Use them for every read of a user-supplied path; they are not for `/proc` files.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// What a non-regular file is, in words ("a FIFO", "a directory"); `None` for a regular file.
pub fn kind_name(ft: &FileType) -> Option<&'static str> {
    if ft.is_file() {
        return None;
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO");
        }
        if ft.is_char_device() {
            return Some("a character device");
        }
        if ft.is_block_device() {
            return Some("a block device");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
    }
    if ft.is_symlink() {
        return Some("a symbolic link");
    }
    Some("not a regular file")
}

/// The error for a file of the wrong kind: `"is a FIFO, not a regular file"`.
fn not_regular(kind: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("is {kind}, not a regular file"))
}

/// Opens `path` for reading after checking that it is a regular file (links followed). See the
/// [module docs](self). The error does not repeat the path: wrap it with the path.
///
/// # Errors
/// `InvalidInput` "is a FIFO, not a regular file" (or a directory, a character device, ...);
/// otherwise the operating system's error.
pub fn open_regular(path: &Path) -> io::Result<File> {
    if let Some(kind) = kind_name(&std::fs::metadata(path)?.file_type()) {
        return Err(not_regular(kind));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if let Some(kind) = kind_name(&file.metadata()?.file_type()) {
        return Err(not_regular(kind));
    }
    Ok(file)
}

/// [`std::fs::read`] through [`open_regular`].
///
/// # Errors
/// As [`open_regular`], or a read error.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    bytes.try_reserve_exact(usize::try_from(hint).unwrap_or(0))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`std::fs::read_to_string`] through [`open_regular`].
///
/// # Errors
/// As [`read_regular`]; `InvalidData` if the file is not UTF-8.
pub fn read_to_string_regular(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn regular_files_read_and_others_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(read_regular(&f).unwrap(), b"abc");
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = read_regular(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "is a FIFO, not a regular file");
        let e = read_regular(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = read_regular(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        let sock = dir.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(
            read_regular(&sock).unwrap_err().to_string(),
            "is a socket, not a regular file"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert_eq!(
            read_regular(&link).unwrap_err().to_string(),
            "is a FIFO, not a regular file"
        );
    }
}
