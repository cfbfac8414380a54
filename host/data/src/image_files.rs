//! The image files of a folder, to classify them one by one (`torchlet predict DIR`):
//! [`ImageFiles::scan`].
//!
//! ```text
//! dir/a.png              listed
//! dir/cat/1.jpg          listed (subfolders one level down: a folder per class)
//! dir/cat/more/2.jpg     not listed (deeper folders are not read)
//! dir/notes.txt          not listed (not an image name)
//! ```
//!
//! The files directly in the folder and in its subfolders, one level down, sorted by path (a
//! subfolder's files come where its name sorts). A file counts when its extension names a
//! format the `image` crate reads here ([`is_image_name`]: `.png`, `.jpg`, `.gif`, ..., any
//! case); its content is not looked at, so a corrupt image is listed and fails when it is
//! opened.
//!
//! Symbolic links are followed as [`ImageFolder`](crate::image_folder::ImageFolder) follows
//! them, with the same walk: never out of the folder (after resolving every link) and into a
//! directory at most once, so a link cycle ends; both kinds of links left out are listed in
//! [`ImageFiles::skipped_links`]. An image name on a FIFO, device or socket is listed like a
//! file (unlike ImageFolder's scan, which fails on it), so that the caller, opening each file
//! with [`crate::files::open_regular`], reports it on its own line and goes on with the others.
//! A name that is not UTF-8 is an error naming the path.

use std::path::{Path, PathBuf};

use crate::image_folder::Walk;
use crate::DataError;

/// How deep [`ImageFiles::scan`] reads: the folder itself and its subfolders.
pub const DEPTH: usize = 1;

/// The image files found in a folder. See the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFiles {
    /// The image files, sorted by path.
    pub files: Vec<PathBuf>,
    /// Symbolic links not followed, each with why (out of the folder, or a directory already
    /// read).
    pub skipped_links: Vec<(PathBuf, String)>,
}

impl ImageFiles {
    /// Lists the image files of `dir` and of its subfolders ([`DEPTH`] levels down).
    ///
    /// # Errors
    /// [`DataError::Io`] naming a folder that cannot be read; [`DataError::Format`] naming a
    /// file name that is not UTF-8.
    pub fn scan(dir: &Path) -> Result<Self, DataError> {
        let mut walk = Walk::new(dir, &[])?.list_special();
        let mut files = Vec::new();
        collect(&mut walk, dir, DEPTH, &mut files)?;
        Ok(ImageFiles {
            files,
            skipped_links: walk.skipped,
        })
    }
}

/// Appends the image files of `dir` to `out`, in sorted order, going `depth` levels into its
/// subfolders.
fn collect(walk: &mut Walk<'_>, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    for (path, is_dir) in walk.entries(dir)? {
        if is_dir {
            if depth > 0 {
                collect(walk, &path, depth - 1, out)?;
            }
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(is_image_name) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `name`'s extension names a format the `image` crate reads in this build (any case).
pub fn is_image_name(name: &str) -> bool {
    image::ImageFormat::from_path(name).is_ok_and(|f| f.reading_enabled())
}

/// The extensions [`is_image_name`] accepts, for messages: `"png jpg jpeg ..."`.
pub fn image_extensions() -> String {
    image::ImageFormat::all()
        .filter(image::ImageFormat::reading_enabled)
        .flat_map(|f| f.extensions_str().iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn image_names_follow_the_readable_formats() {
        assert!(is_image_name("a.png") && is_image_name("b.JPG") && is_image_name("c.gif"));
        assert!(!is_image_name("a.txt") && !is_image_name("png") && !is_image_name("a.tlm"));
        let ext = image_extensions();
        assert!(ext.contains("png") && ext.contains("jpeg"), "{ext}");
    }

    #[test]
    fn lists_the_folder_and_one_level_of_subfolders_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "z.png",
            "a.PNG",
            "cat/2.jpg",
            "cat/1.bmp",
            "cat/deep/3.png",
            "b/x.webp",
            "notes.txt",
        ] {
            touch(&d.join(f));
        }
        let found = ImageFiles::scan(d).unwrap();
        let expected: Vec<PathBuf> = ["a.PNG", "b/x.webp", "cat/1.bmp", "cat/2.jpg", "z.png"]
            .iter()
            .map(|f| d.join(f))
            .collect();
        assert_eq!(found.files, expected);
        assert!(found.skipped_links.is_empty());
        assert!(ImageFiles::scan(&d.join("b/x.webp")).is_err());
        assert_eq!(
            ImageFiles::scan(&d.join("cat/deep")).unwrap().files,
            [d.join("cat/deep/3.png")]
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_never_leave_the_folder_or_loop_and_fifos_are_listed() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        touch(&outside.path().join("far.png"));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("cat/1.png"));
        symlink(d, d.join("loop")).unwrap();
        symlink(d.join("cat"), d.join("zz")).unwrap();
        symlink(outside.path().join("far.png"), d.join("far.png")).unwrap();
        symlink(d.join("cat/1.png"), d.join("near.png")).unwrap();
        let fifo = d.join("pipe.png");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let found = ImageFiles::scan(d).unwrap();
        // `zz` is `cat` again: read once, under the name that sorts first.
        assert_eq!(found.files, [d.join("cat/1.png"), d.join("near.png"), fifo]);
        let mut skipped: Vec<&Path> = found.skipped_links.iter().map(|(p, _)| p.as_path()).collect();
        skipped.sort();
        assert_eq!(skipped, [d.join("far.png"), d.join("loop"), d.join("zz")]);
    }
}
