//! One event file: naming, buffering, flushing.
//!
//! [`EventFileWriter`] creates `events.out.tfevents.<unix time>.<hostname>.<pid>.<n><suffix>`
//! in its directory (PyTorch's and TensorFlow's naming; `<n>` counts the files this process
//! opened, so two writers never share a file), writes the `file_version` event first, then
//! appends framed [`Event`]s through a buffer. The buffer goes to the operating system on
//! [`EventFileWriter::flush`], when it fills, and at the latest `flush_every` after the previous
//! flush (checked at each write, as PyTorch's `flush_secs`), so TensorBoard sees a running
//! training.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;

use super::proto::{event, Event};
use super::record;
use super::SummaryError;

/// The version string of the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// PyTorch's default `flush_secs`.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(120);

static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's host name (as Python's `socket.gethostname()`), or `"localhost"`.
pub fn hostname() -> String {
    let h = gethostname::gethostname().to_string_lossy().into_owned();
    if h.is_empty() {
        "localhost".to_string()
    } else {
        h
    }
}

/// Writes the events of one file. See the [module docs](self).
#[derive(Debug)]
pub struct EventFileWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    flush_every: Duration,
    last_flush: Instant,
}

impl EventFileWriter {
    /// Creates `dir` (and its parents) and a new event file in it, and writes the
    /// `file_version` event.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming `dir` or the file if either cannot be created or written.
    pub fn create(dir: &Path, suffix: &str) -> Result<Self, SummaryError> {
        fs::create_dir_all(dir).map_err(|e| SummaryError::io("create log directory", dir, e))?;
        let wall_time = now_secs();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}{}",
            wall_time as u64,
            hostname(),
            std::process::id(),
            FILE_COUNTER.fetch_add(1, Ordering::Relaxed),
            suffix
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SummaryError::io("create event file", &path, e))?;
        let mut w = EventFileWriter::from_file(path, file);
        w.write(&Event {
            wall_time,
            step: 0,
            what: Some(event::What::FileVersion(FILE_VERSION.to_string())),
        })?;
        // The version record goes out at once: TensorBoard then lists the run immediately.
        w.flush()?;
        Ok(w)
    }

    /// A writer appending to an already open `file` (for tests: `/dev/full`).
    pub(crate) fn from_file(path: PathBuf, file: File) -> Self {
        EventFileWriter {
            path,
            out: Some(BufWriter::with_capacity(64 * 1024, file)),
            flush_every: DEFAULT_FLUSH_EVERY,
            last_flush: Instant::now(),
        }
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes at least this often while events are written.
    pub fn set_flush_every(&mut self, every: Duration) {
        self.flush_every = every;
    }

    /// Appends one event (buffered).
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the file if writing failed (full disk), or if the writer
    /// was closed.
    pub fn write(&mut self, event: &Event) -> Result<(), SummaryError> {
        let mut bytes = Vec::with_capacity(event.encoded_len() + record::OVERHEAD);
        record::frame(&event.encode_to_vec(), &mut bytes);
        let out = self.out.as_mut().ok_or_else(|| closed(&self.path))?;
        out.write_all(&bytes)
            .map_err(|e| SummaryError::io("write event file", &self.path, e))?;
        if self.last_flush.elapsed() >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the buffered events to the operating system.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the file if writing failed (full disk).
    pub fn flush(&mut self) -> Result<(), SummaryError> {
        self.last_flush = Instant::now();
        match self.out.as_mut() {
            Some(out) => out
                .flush()
                .map_err(|e| SummaryError::io("write event file", &self.path, e)),
            None => Ok(()),
        }
    }

    /// Flushes and closes the file; later writes fail, later closes do nothing.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the file if the last events could not be written.
    pub fn close(&mut self) -> Result<(), SummaryError> {
        let result = self.flush();
        self.out = None;
        result
    }
}

fn closed(path: &Path) -> SummaryError {
    SummaryError::io("write event file", path, std::io::Error::other("the writer was closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_event(step: i64) -> Event {
        use super::super::proto::{summary_value, Summary, SummaryValue};
        Event {
            wall_time: 1.5,
            step,
            what: Some(event::What::Summary(Summary {
                value: vec![SummaryValue {
                    tag: "loss".into(),
                    metadata: None,
                    value: Some(summary_value::Value::SimpleValue(0.25)),
                }],
            })),
        }
    }

    #[test]
    fn a_full_disk_is_an_error_naming_the_file() {
        let Ok(file) = OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("skipped: no /dev/full on this system");
            return;
        };
        let mut w = EventFileWriter::from_file(PathBuf::from("/dev/full"), file);
        // Writes may be buffered; the error must come at the latest from flush.
        let mut result = Ok(());
        for step in 0..10 {
            result = result.and_then(|_| w.write(&scalar_event(step)));
        }
        let result = result.and_then(|_| w.flush());
        let e = result.expect_err("writing to a full disk must fail");
        let msg = e.to_string();
        assert!(msg.contains("/dev/full"), "{msg}");
        assert!(
            matches!(e, SummaryError::Io { ref source, .. } if source.raw_os_error() == Some(28)),
            "{e:?}"
        );
    }

    #[test]
    fn writes_after_close_fail_and_close_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventFileWriter::create(dir.path(), ".x").unwrap();
        assert!(w.path().file_name().unwrap().to_str().unwrap().ends_with(".x"));
        w.close().unwrap();
        w.close().unwrap();
        assert!(w.write(&scalar_event(1)).is_err());
    }

    #[test]
    fn two_writers_in_one_directory_get_different_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = EventFileWriter::create(dir.path(), "").unwrap();
        let b = EventFileWriter::create(dir.path(), "").unwrap();
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap().to_string();
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(&parts[..3], &["events", "out", "tfevents"]);
        assert_eq!(parts[3].len(), 10, "{name}");
        assert!(name.contains(&format!(".{}.", std::process::id())), "{name}");
    }

    #[test]
    fn flush_every_zero_flushes_each_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventFileWriter::create(dir.path(), "").unwrap();
        w.set_flush_every(Duration::ZERO);
        let before = fs::metadata(w.path()).unwrap().len();
        w.write(&scalar_event(3)).unwrap();
        let after = fs::metadata(w.path()).unwrap().len();
        assert_eq!(
            after - before,
            (scalar_event(3).encoded_len() + record::OVERHEAD) as u64
        );
    }
}
