//! Telling the user which files a folder scan left out: [`print_list`] and [`LeftOut`].
//!
//! Two kinds of files are left out of an image folder: images that do not decode, when
//! `--skip-bad` asks for that (`train`, `eval`), and symbolic links that are not followed
//! because they lead out of the folder or into a folder already read, a cycle included
//! (`train`, `eval`, `predict`). Each kind is printed, on stderr, as a line with the count and
//! then the first [`LIST_MAX`] paths, each with why, and how many more there are:
//!
//! ```text
//! --skip-bad: skipped 1 image that does not decode:
//!   data/train/cat/7.png: Format error decoding Png: Invalid PNG signature.
//! not followed: 2 symbolic links (out of the folder, or into a folder already read):
//!   data/train/cat/outside.png: links to /elsewhere/outside.png, outside the data set's root
//!   data/train/dog/loop: a directory already read (a symbolic link cycle or a second link to it)
//! ```
//!
//! Nothing is printed for a kind with no files.

use std::io::{self, Write};
use std::path::PathBuf;

/// The most paths listed for one kind; the rest are counted.
pub const LIST_MAX: usize = 20;

/// The files a data set's scan left out, each with why.
#[derive(Clone, Debug, Default)]
pub struct LeftOut {
    /// Images that do not decode (`--skip-bad`).
    pub bad: Vec<(PathBuf, String)>,
    /// Symbolic links not followed.
    pub links: Vec<(PathBuf, String)>,
}

impl LeftOut {
    /// Prints both lists (see the [module docs](self)); nothing when both are empty.
    ///
    /// # Errors
    /// A failed write.
    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = self.bad.len();
        let images = if n == 1 {
            "image that does not"
        } else {
            "images that do not"
        };
        print_list(out, &format!("--skip-bad: skipped {n} {images} decode:"), &self.bad)?;
        print_links(out, &self.links)
    }
}

/// Prints the symbolic links not followed, headed by their count; nothing when there are none.
///
/// # Errors
/// A failed write.
pub fn print_links(out: &mut dyn Write, links: &[(PathBuf, String)]) -> io::Result<()> {
    let n = links.len();
    let what = if n == 1 { "link" } else { "links" };
    let head = format!("not followed: {n} symbolic {what} (out of the folder, or into a folder already read):");
    print_list(out, &head, links)
}

/// Prints `head`, then the first [`LIST_MAX`] of `items` as `  PATH: WHY`, then `  ... and N
/// more` if there are more; nothing when `items` is empty.
///
/// # Errors
/// A failed write.
pub fn print_list(out: &mut dyn Write, head: &str, items: &[(PathBuf, String)]) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "{head}")?;
    for (path, why) in items.iter().take(LIST_MAX) {
        writeln!(out, "  {}: {why}", path.display())?;
    }
    if items.len() > LIST_MAX {
        writeln!(out, "  ... and {} more", items.len() - LIST_MAX)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(PathBuf, String)> {
        (0..n)
            .map(|i| (PathBuf::from(format!("d/{i}.png")), "bad".to_string()))
            .collect()
    }

    fn printed(left: &LeftOut) -> String {
        let mut out = Vec::new();
        left.print(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nothing_left_out_prints_nothing() {
        assert_eq!(printed(&LeftOut::default()), "");
    }

    #[test]
    fn one_bad_image_and_one_link() {
        let left = LeftOut {
            bad: items(1),
            links: vec![("d/loop".into(), "a directory already read".into())],
        };
        assert_eq!(
            printed(&left),
            "--skip-bad: skipped 1 image that does not decode:\n  d/0.png: bad\n\
             not followed: 1 symbolic link (out of the folder, or into a folder already read):\n  \
             d/loop: a directory already read\n"
        );
    }

    #[test]
    fn long_lists_stop_at_the_limit_and_count_the_rest() {
        let text = printed(&LeftOut {
            bad: items(LIST_MAX + 3),
            links: Vec::new(),
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + LIST_MAX + 1, "{text}");
        assert_eq!(lines[0], "--skip-bad: skipped 23 images that do not decode:");
        assert_eq!(lines[LIST_MAX], "  d/19.png: bad");
        assert_eq!(lines[LIST_MAX + 1], "  ... and 3 more");
    }
}
