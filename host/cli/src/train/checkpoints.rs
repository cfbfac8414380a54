//! `--keep-last K`: after an `epoch-<n>.tlm` is saved, the older numbered checkpoints beyond the
//! newest K are removed (`last.tlm`, `best.tlm` and `interrupted.tlm` are never touched). The
//! folder holds one run only (`crate::cli::run_dir`), so every `epoch-<n>.tlm` in it is this
//! run's.

use std::path::{Path, PathBuf};

/// The `epoch-<n>.tlm` files of `dir`, oldest first.
pub(crate) fn numbered(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let n = name
                .to_str()?
                .strip_prefix("epoch-")?
                .strip_suffix(".tlm")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Removes all but the newest `keep` `epoch-<n>.tlm` files of `dir`. A file that cannot be
/// removed is reported on stderr and left; the run goes on.
pub(crate) fn keep_newest(dir: &Path, keep: usize) {
    let files = numbered(dir);
    let extra = files.len().saturating_sub(keep);
    for (_, path) in &files[..extra] {
        if let Err(e) = std::fs::remove_file(path) {
            eprintln!("warning: --keep-last: cannot remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_numbered_checkpoints_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "epoch-1.tlm",
            "epoch-2.tlm",
            "epoch-10.tlm",
            "epoch-9.tlm",
            "last.tlm",
            "best.tlm",
            "epoch-x.tlm",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        keep_newest(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["best.tlm", "epoch-10.tlm", "epoch-9.tlm", "epoch-x.tlm", "last.tlm"]
        );
    }
}
