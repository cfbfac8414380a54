//! Reading event files back: every record's checksums checked, every event decoded.
//!
//! For tests and tools that want to look at what a [`super::SummaryWriter`] wrote (or at a
//! PyTorch or TensorFlow event file) without TensorBoard: [`read_events`] returns the
//! [`Event`]s of one file, [`event_files`] lists a log directory's files, and [`scalars`]
//! collects the `(step, value)` series of one tag.

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

use super::proto::{event::What, summary_value::Value, Event};
use super::record;
use super::SummaryError;

/// The events of the file at `path`, in order (the `file_version` event first).
///
/// # Errors
/// [`SummaryError::Io`] if the file cannot be read, [`SummaryError::Corrupt`] with the offset
/// of the first record that is truncated, fails a checksum or is not an `Event`.
pub fn read_events(path: &Path) -> Result<Vec<Event>, SummaryError> {
    let bytes = read_regular(path).map_err(|e| SummaryError::io("read event file", path, e))?;
    let corrupt = |offset, what: String| SummaryError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let records = record::unframe(&bytes).map_err(|e| corrupt(e.offset, e.what.to_string()))?;
    let mut offset = 0;
    let mut events = Vec::with_capacity(records.len());
    for data in records {
        let event = Event::decode(data).map_err(|e| corrupt(offset, format!("not an Event: {e}")))?;
        events.push(event);
        offset += data.len() + record::OVERHEAD;
    }
    Ok(events)
}

/// The bytes of `path`, which must be a regular file (links followed): a FIFO or a device
/// is an error, not a read that waits forever.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let not_regular = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device, socket or folder)",
        )
    };
    // Checked before opening too: opening a FIFO for reading waits for a writer.
    if !fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let mut file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The event files directly in `dir` (names containing `tfevents`), sorted by name.
///
/// # Errors
/// [`SummaryError::Io`] if the directory cannot be listed.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>, SummaryError> {
    let list = |e| SummaryError::io("list log directory", dir, e);
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        let is_events = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("tfevents"));
        if is_events && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The `(step, value)` of every scalar tagged `tag` in the event files directly in `dir`,
/// in file then write order.
///
/// # Errors
/// As [`event_files`] and [`read_events`].
pub fn scalars(dir: &Path, tag: &str) -> Result<Vec<(i64, f32)>, SummaryError> {
    let mut out = Vec::new();
    for file in event_files(dir)? {
        for event in read_events(&file)? {
            if let Some(What::Summary(s)) = &event.what {
                for v in &s.value {
                    if let (true, Some(Value::SimpleValue(x))) = (v.tag == tag, &v.value) {
                        out.push((event.step, *x));
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_folder_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("events.out.tfevents.1.fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for path in [fifo.as_path(), dir.path()] {
            let e = read_events(path).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }
}
