//! Fallible allocation of the buffers whose size the user picks through the batch size
//! (activation arenas): a batch too large for this machine's memory is an error that names
//! `--batch-size`, not an abort ("memory allocation of 27136000000 bytes failed").

/// `len` zeroed floats for `what` ("the training arena for batch 64"), or an error saying how
/// much memory that was.
///
/// # Errors
/// The allocation failed.
pub fn zeros(len: usize, what: &str) -> Result<Vec<f32>, String> {
    let bytes = len as f64 * 4.0;
    let fail = |why: String| {
        format!(
            "{what} needs {:.1} GB of memory, {why}: try a smaller --batch-size",
            bytes / 1e9
        )
    };
    // Linux overcommits: a reservation larger than the memory left succeeds and the process is
    // killed later, when the zeros are written. Compare with what the kernel says is available.
    if let Some(avail) = available_bytes() {
        if bytes > avail as f64 {
            return Err(fail(format!("and {:.1} GB are available", avail as f64 / 1e9)));
        }
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| fail("which could not be allocated".to_string()))?;
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
        let e = zeros(usize::MAX / 8, "the training arena for batch 9").unwrap_err();
        assert!(e.starts_with("the training arena for batch 9 needs "), "{e}");
        if cfg!(target_os = "linux") {
            // More than this machine has, though the address space would allow it.
            let e = zeros(1 << 44, "the training arena for batch 10").unwrap_err();
            assert!(e.contains("GB are available"), "{e}");
        }
        assert!(e.ends_with("try a smaller --batch-size"), "{e}");
    }
}
