//! Fallible allocation of the buffers whose size the user picks through the batch size
//! (activation arenas): a batch too large for this machine's memory is an error that names
//! `--batch-size`, not an abort ("memory allocation of 27136000000 bytes failed").

/// A buffer that does not fit in this machine's memory.
#[derive(Clone, Debug, PartialEq)]
pub struct OutOfMemory {
    /// What the buffer was for ("the training arena for batch 64").
    pub what: String,
    /// Its size in bytes.
    pub bytes: f64,
    /// The memory the kernel said was available, when the buffer was larger than that;
    /// `None` when the allocation itself failed.
    pub available: Option<f64>,
    /// What the user can do ("try a smaller --batch-size").
    pub hint: &'static str,
}

impl std::fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} needs {:.1} GB of memory, ", self.what, self.bytes / 1e9)?;
        match self.available {
            Some(avail) => write!(f, "and {:.1} GB are available", avail / 1e9)?,
            None => f.write_str("which could not be allocated")?,
        }
        write!(f, ": {}", self.hint)
    }
}

impl std::error::Error for OutOfMemory {}

/// `len` zeroed floats for `what` ("the training arena for batch 64"), or an error saying how
/// much memory that was.
///
/// # Errors
/// The allocation failed, or would exceed the memory available.
pub fn zeros(len: usize, what: &str) -> Result<Vec<f32>, OutOfMemory> {
    zeros_for(len, what, "try a smaller --batch-size")
}

/// [`zeros`] for a buffer whose size comes from elsewhere than the batch size (a model's
/// parameters, a file's plan); `hint` says what the user can change.
///
/// # Errors
/// As [`zeros`].
pub fn zeros_for(len: usize, what: &str, hint: &'static str) -> Result<Vec<f32>, OutOfMemory> {
    let bytes = len as f64 * 4.0;
    let fail = |available: Option<f64>| OutOfMemory {
        what: what.to_string(),
        bytes,
        available,
        hint,
    };
    // Linux overcommits: a reservation larger than the memory left succeeds and the process is
    // killed later, when the zeros are written. Compare with what the kernel says is available.
    if let Some(avail) = available_bytes() {
        if bytes > avail as f64 {
            return Err(fail(Some(avail as f64)));
        }
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| fail(None))?;
    v.resize(len, 0.0);
    Ok(v)
}

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux), `None` elsewhere or when unreadable.
fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::zeros;

    #[test]
    fn small_buffers_are_zeroed_and_impossible_ones_are_errors() {
        assert_eq!(zeros(3, "x").unwrap(), [0.0; 3]);
        let e = zeros(usize::MAX / 8, "the training arena for batch 9")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("the training arena for batch 9 needs "), "{e}");
        if cfg!(target_os = "linux") {
            // More than this machine has, though the address space would allow it.
            let e = zeros(1 << 44, "the training arena for batch 10")
                .unwrap_err()
                .to_string();
            assert!(e.contains("GB are available"), "{e}");
        }
        assert!(e.ends_with("try a smaller --batch-size"), "{e}");
    }
}
