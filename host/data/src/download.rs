//! Downloading a data set archive: streamed over HTTPS to a temporary file, with a progress bar,
//! verified by MD5, then renamed into place, as `torchvision.datasets.utils.download_url`.
//!
//! Use [`download`] for any file, [`extract_tar_gz`] to unpack an archive into a folder
//! without leaving a half-extracted folder behind. [`crate::cifar::Cifar10::download`]
//! puts both together for CIFAR-10.
//!
//! A file already at the destination with the expected MD5 is not fetched again. A download
//! that fails or does not match its checksum leaves nothing at the destination.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::DataError;

/// Lower-case hex MD5 of a file, read in 1 MiB chunks.
///
/// # Errors
/// [`DataError::Io`] naming the file.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = crate::files::open_regular(path).map_err(io_err)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Whether `path` exists and, when `md5` is given, has that checksum (torchvision's
/// `check_integrity`).
pub fn check_integrity(path: &Path, md5: Option<&str>) -> bool {
    match md5 {
        None => path.is_file(),
        Some(expected) => md5_file(path).is_ok_and(|found| found.eq_ignore_ascii_case(expected)),
    }
}

/// Fetches `url` into the file `dest` and returns `dest`.
///
/// The body is streamed into a temporary file beside `dest` (so nothing is held in memory),
/// hashed on the way, and renamed to `dest` only once complete and, when `md5` is given,
/// matching it. A progress bar (bytes, rate, ETA) is drawn on stderr when it is a terminal.
/// If `dest` already exists with the expected MD5, nothing is fetched. Parent folders are
/// created.
///
/// # Errors
/// - [`DataError::Download`] naming the URL: HTTP status >= 400 (e.g. 404), a connection
///   failure, a body shorter than its `Content-Length`;
/// - [`DataError::Checksum`] naming `dest` when the MD5 does not match (the file is removed);
/// - [`DataError::Io`] naming the file that could not be written.
pub fn download(url: &str, dest: &Path, md5: Option<&str>) -> Result<PathBuf, DataError> {
    if md5.is_some() && check_integrity(dest, md5) {
        return Ok(dest.to_path_buf());
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| DataError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let fail = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    // Ask for the bytes as stored: a transparently decompressed `.tar.gz` would fail its MD5.
    let response = agent
        .get(url)
        .set("Accept-Encoding", "identity")
        .call()
        .map_err(|e| match e {
            ureq::Error::Status(code, r) => fail(format!("HTTP {code} {}", r.status_text())),
            ureq::Error::Transport(t) => fail(t.to_string()),
        })?;
    let total: Option<u64> = response.header("Content-Length").and_then(|v| v.trim().parse().ok());

    let part = temp_path(dest);
    let result = fetch_into(response.into_reader(), &part, total, dest, url).and_then(|found| match md5 {
        Some(expected) if !found.eq_ignore_ascii_case(expected) => Err(DataError::Checksum {
            path: dest.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            found,
        }),
        _ => fs::rename(&part, dest).map_err(|source| DataError::Io {
            path: dest.to_path_buf(),
            source,
        }),
    });
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result.map(|()| dest.to_path_buf())
}

/// Streams `body` into `part`, with a progress bar; returns the MD5 of what was written.
fn fetch_into(body: impl Read, part: &Path, total: Option<u64>, dest: &Path, url: &str) -> Result<String, DataError> {
    let io_err = |source| DataError::Io {
        path: part.to_path_buf(),
        source,
    };
    let bar = progress_bar(total, dest);
    let mut body = bar.wrap_read(body);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(part).map_err(io_err)?);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(DataError::Download {
                    url: url.to_string(),
                    reason: format!("connection failed after {received} bytes: {e}"),
                });
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err)?;
        received += n as u64;
    }
    bar.finish_and_clear();
    if let Some(total) = total.filter(|&t| t != received) {
        return Err(DataError::Download {
            url: url.to_string(),
            reason: format!("connection closed after {received} of {total} bytes"),
        });
    }
    let file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    Ok(hex(&hasher.finalize()))
}

/// The progress bar on stderr: bytes, rate and ETA when the length is known.
fn progress_bar(total: Option<u64>, dest: &Path) -> indicatif::ProgressBar {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (bar, template) = match total {
        Some(len) => (
            indicatif::ProgressBar::new(len),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{msg} {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("Downloading {name}"));
    bar
}

/// Unpacks the gzipped tar `archive` into `dest_dir` and returns `dest_dir/top`, where `top`
/// is the archive's top-level folder (e.g. `cifar-10-batches-bin`).
///
/// The archive is extracted into a temporary folder inside `dest_dir`, and `top` is renamed
/// into place only once complete, replacing an older `dest_dir/top`; a failed extraction
/// leaves no half-written `top`. Entries that would escape the folder (`..`, absolute paths)
/// are not written (the `tar` crate's `unpack` guarantees it).
///
/// # Errors
/// [`DataError::Io`] naming the archive (not gzip, not tar, truncated) or the folder that
/// could not be written; [`DataError::Format`] if the archive has no `top` folder.
pub fn extract_tar_gz(archive: &Path, dest_dir: &Path, top: &str) -> Result<PathBuf, DataError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    fs::create_dir_all(dest_dir).map_err(io_at(dest_dir))?;
    let tmp = dest_dir.join(format!(".{top}.extract-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
    let result = (|| {
        let file = crate::files::open_regular(archive).map_err(io_at(archive))?;
        let gz = flate2::read::GzDecoder::new(io::BufReader::with_capacity(1 << 20, file));
        tar::Archive::new(gz).unpack(&tmp).map_err(io_at(archive))?;
        let extracted = tmp.join(top);
        if !extracted.is_dir() {
            return Err(DataError::Format {
                path: archive.to_path_buf(),
                what: "archive content".into(),
                expected: format!("a top-level folder {top}/"),
                found: "none".into(),
            });
        }
        let target = dest_dir.join(top);
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_at(&target))?;
        }
        fs::rename(&extracted, &target).map_err(io_at(&target))?;
        Ok(target)
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}

/// `dest` with a `.part` suffix and the process id, in the same folder (so rename is atomic).
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    dest.with_file_name(format!(".{name}.{}.part", std::process::id()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_known_strings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        fs::write(&p, b"abc").unwrap();
        // RFC 1321, appendix A.5.
        assert_eq!(md5_file(&p).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
        assert!(check_integrity(&p, Some("900150983CD24FB0D6963F7D28E17F72")));
        assert!(!check_integrity(&p, Some("00000000000000000000000000000000")));
        assert!(!check_integrity(&dir.path().join("missing"), None));
        let e = md5_file(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn extraction_needs_the_top_folder_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&archive).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "top/x.txt", &b"hi"[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();

        let out = dir.path().join("out");
        let top = extract_tar_gz(&archive, &out, "top").unwrap();
        assert_eq!(fs::read(top.join("x.txt")).unwrap(), b"hi");
        let e = extract_tar_gz(&archive, &out, "other").unwrap_err().to_string();
        assert!(e.contains("a.tar.gz") && e.contains("other/"), "{e}");
        let names: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("top")]);

        fs::write(&archive, b"not gzip").unwrap();
        let e = extract_tar_gz(&archive, &out, "top").unwrap_err().to_string();
        assert!(e.contains("a.tar.gz"), "{e}");
    }
}
