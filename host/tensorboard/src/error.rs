//! [`SummaryError`]: why a summary could not be written (or an event file read).

use std::io;
use std::path::PathBuf;

/// Why writing (or reading) TensorBoard summaries failed. `Display` names the file or folder
/// and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Creating, writing or flushing a file or folder failed: an unwritable log directory, a
    /// path through a regular file, a full disk.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`"create log directory"`, `"write event file"`, ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The values given cannot make this summary (wrong image shape, non-finite histogram
    /// values, ...).
    #[error("{what}: {detail}")]
    Invalid {
        /// The summary (`"add_image"`, `"add_histogram"`, ...).
        what: &'static str,
        /// What is wrong, with the values expected and found.
        detail: String,
    },
    /// The model given to `add_graph` does not plan for its input shape.
    #[error("add_graph: {0}")]
    Model(torchlet::Error),
    /// An event file is not a valid sequence of records or events.
    #[error("{}: offset {offset}: {what}", path.display())]
    Corrupt {
        /// The event file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: usize,
        /// What is wrong.
        what: String,
    },
}

impl SummaryError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SummaryError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        SummaryError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}
