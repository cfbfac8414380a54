//! Images in a folder per class, "the folder name is the label", as
//! `torchvision.datasets.ImageFolder`:
//!
//! ```text
//! root/ants/0013035.jpg
//! root/ants/subfolder/1030023514.png     (files in subfolders count too)
//! root/bees/16838648.jpg
//! ```
//!
//! Classes are the sorted names of the subfolders of `root`, a label is the class's index,
//! and files are sorted as torchvision sorts them (by folder path, then file name). Files
//! count when their name ends, in any case, with one of [`IMG_EXTENSIONS`]. Images are read
//! when an item is fetched, with any format the `image` crate reads, and converted to RGB as
//! PIL's `.convert('RGB')` does (gray replicated, alpha dropped).
//!
//! Symbolic links are followed as `os.walk(followlinks=True)` does, with two limits: a link
//! that leads outside `root` (after resolving every link) is left out, and a directory is read
//! once, so a link cycle or a second link to a folder adds nothing; both are listed by
//! [`ImageFolder::skipped_links`]. A name that is not UTF-8 is an error naming the path (shown
//! with U+FFFD), and an image name on a FIFO, device or socket is an error at the scan, never a
//! read that hangs.
//!
//! A file that does not decode is an error naming the file, never silently skipped; build with
//! [`ImageFolderBuilder::skip_bad`] to check every image up front and drop (and count) the bad
//! ones instead. A class folder without images is an error naming the folder, unless
//! [`ImageFolderBuilder::allow_empty`].

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use image::{DynamicImage, RgbImage};

use super::{DataError, Dataset, Label, Sample};

/// torchvision's `IMG_EXTENSIONS`, compared case-insensitively.
pub const IMG_EXTENSIONS: [&str; 9] = [
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
];

/// A folder-per-class image data set. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    class_to_idx: BTreeMap<String, Label>,
    samples: Vec<(PathBuf, Label)>,
    skipped: Vec<(PathBuf, String)>,
    skipped_links: Vec<(PathBuf, String)>,
}

/// Options for [`ImageFolder`]; [`ImageFolderBuilder::build`] scans the folder.
#[derive(Clone, Debug)]
pub struct ImageFolderBuilder {
    root: PathBuf,
    skip_bad: bool,
    allow_empty: bool,
    extensions: Vec<String>,
}

impl ImageFolderBuilder {
    /// Decode every image while building (on all cores) and leave out those that do not
    /// decode, counting them ([`ImageFolder::skipped`]) instead of failing on them later.
    /// Default `false`: a bad image is an error when its item is fetched.
    pub fn skip_bad(mut self, skip: bool) -> Self {
        self.skip_bad = skip;
        self
    }

    /// Accept class folders without images (torchvision's `allow_empty`). Default `false`.
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// The file name endings that count as images, instead of [`IMG_EXTENSIONS`]
    /// (case-insensitive, e.g. `[".png"]`).
    pub fn extensions(mut self, extensions: &[&str]) -> Self {
        self.extensions = extensions.iter().map(|e| e.to_ascii_lowercase()).collect();
        self
    }

    /// Scans the folder (and, with `skip_bad`, decodes every image).
    ///
    /// # Errors
    /// [`DataError::Io`] naming an unreadable folder; [`DataError::Format`] if `root` has no
    /// subfolders; [`DataError::EmptyClass`] naming a class folder without images.
    pub fn build(self) -> Result<ImageFolder, DataError> {
        let root = self.root;
        let mut walk = Walk::new(&root, &self.extensions)?;
        let mut classes: Vec<String> = walk
            .entries(&root)?
            .into_iter()
            .filter(|(_, is_dir)| *is_dir)
            .map(|(p, _)| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        classes.sort();
        if classes.is_empty() {
            return Err(DataError::Format {
                path: root,
                what: "class folders".into(),
                expected: "at least one subfolder (one per class)".into(),
                found: "none".into(),
            });
        }
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let folder = root.join(class);
            let before = samples.len();
            let mut files = Vec::new();
            walk.files(&folder, &mut files)?;
            // torchvision: `sorted(os.walk(...))` then `sorted(fnames)`: by folder path string,
            // then name.
            files.sort_by(|(da, na), (db, nb)| (da.as_str(), na.as_str()).cmp(&(db.as_str(), nb.as_str())));
            for (dir, name) in files {
                if has_extension(&name, &self.extensions) {
                    samples.push((PathBuf::from(dir).join(name), label as Label));
                }
            }
            if samples.len() == before && !self.allow_empty {
                return Err(DataError::EmptyClass {
                    path: folder,
                    extensions: self.extensions.join(" "),
                });
            }
        }
        let class_to_idx = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as Label))
            .collect();
        let mut folder = ImageFolder {
            root,
            classes,
            class_to_idx,
            samples,
            skipped: Vec::new(),
            skipped_links: walk.skipped,
        };
        if self.skip_bad {
            folder.drop_bad();
        }
        Ok(folder)
    }
}

impl ImageFolder {
    /// Scans `root` with the defaults (torchvision's extensions, bad images are errors).
    ///
    /// # Errors
    /// As [`ImageFolderBuilder::build`].
    pub fn new(root: impl AsRef<Path>) -> Result<Self, DataError> {
        Self::builder(root).build()
    }

    /// Options: [`ImageFolderBuilder::skip_bad`], [`ImageFolderBuilder::allow_empty`],
    /// [`ImageFolderBuilder::extensions`].
    pub fn builder(root: impl AsRef<Path>) -> ImageFolderBuilder {
        ImageFolderBuilder {
            root: root.as_ref().to_path_buf(),
            skip_bad: false,
            allow_empty: false,
            extensions: IMG_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// The folder scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names (sorted subfolder names); a label indexes this list.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Class name to label.
    pub fn class_to_idx(&self) -> &BTreeMap<String, Label> {
        &self.class_to_idx
    }

    /// `(path, label)` of every item, in order.
    pub fn samples(&self) -> &[(PathBuf, Label)] {
        &self.samples
    }

    /// Every item's label, in order.
    pub fn targets(&self) -> Vec<Label> {
        self.samples.iter().map(|&(_, l)| l).collect()
    }

    /// Number of images left out by [`ImageFolderBuilder::skip_bad`].
    pub fn skipped(&self) -> usize {
        self.skipped.len()
    }

    /// The images left out by [`ImageFolderBuilder::skip_bad`], each with why it did not decode.
    pub fn skipped_files(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Symbolic links the scan left out, each with why: links that lead outside the root, and
    /// links to a directory already read (a cycle, or a second link to the same folder), so
    /// that no image is read twice or from outside the data set.
    pub fn skipped_links(&self) -> &[(PathBuf, String)] {
        &self.skipped_links
    }

    /// Decodes every image on all cores and moves the ones that fail to `skipped`.
    fn drop_bad(&mut self) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.samples.len().max(1));
        let next = AtomicUsize::new(0);
        let bad = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, _)) = self.samples.get(i) else { break };
                    if let Err(e) = load_rgb(path) {
                        let reason = match e {
                            DataError::Decode { reason, .. } => reason,
                            other => other.to_string(),
                        };
                        bad.lock().unwrap_or_else(|p| p.into_inner()).push((i, reason));
                    }
                });
            }
        });
        let mut bad = bad.into_inner().unwrap_or_else(|p| p.into_inner());
        bad.sort_unstable_by_key(|&(i, _)| i);
        let mut reasons = bad.into_iter().peekable();
        let mut kept = Vec::with_capacity(self.samples.len());
        for (i, sample) in std::mem::take(&mut self.samples).into_iter().enumerate() {
            match reasons.next_if(|&(j, _)| j == i) {
                Some((_, reason)) => self.skipped.push((sample.0, reason)),
                None => kept.push(sample),
            }
        }
        self.samples = kept;
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        let (path, label) = self.samples.get(index).ok_or(DataError::Index {
            index,
            len: self.samples.len(),
        })?;
        Ok((Sample::Image(DynamicImage::ImageRgb8(load_rgb(path)?)), *label))
    }
    fn classes(&self) -> Option<Vec<String>> {
        Some(self.classes.clone())
    }
}

/// torchvision's default loader: decodes the file (format from its content) and converts it to
/// 8-bit RGB, as PIL's `Image.open(f).convert('RGB')`.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Decode`] naming the file if it
/// is not an image the `image` crate decodes.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = crate::files::read_regular(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb(&bytes, path).map_err(|reason| DataError::Decode {
        path: path.to_path_buf(),
        reason,
    })
}

/// Decodes an encoded image from memory into 8-bit RGB: the format from the content (else
/// from `path`'s extension); the error is the decoder's message.
fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage, String> {
    let format =
        image::guess_format(bytes).or_else(|e| image::ImageFormat::from_path(path).map_err(|_| e.to_string()))?;
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| e.to_string())?;
    Ok(img.into_rgb8())
}

/// Whether `name` ends with one of `extensions` (lower case), ignoring case.
fn has_extension(name: &str, extensions: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    extensions.iter().any(|e| lower.ends_with(e.as_str()))
}

/// One directory walk over a data set: the root it must stay inside, the directories already
/// read (so a symbolic link cycle is read once), and the links it left out. Also used by
/// [`crate::image_files`].
pub(crate) struct Walk<'a> {
    /// `root`, canonical (links resolved), to compare link targets with.
    root: PathBuf,
    /// Canonical paths of the directories read so far.
    visited: HashSet<PathBuf>,
    /// Links left out, each with why.
    pub(crate) skipped: Vec<(PathBuf, String)>,
    /// File name endings that count as images (lower case).
    extensions: &'a [String],
    /// Whether an image name on a FIFO, device or socket fails the scan (`true`, the default)
    /// or is listed like a file, for its reader to report.
    refuse_special: bool,
}

impl<'a> Walk<'a> {
    /// A walk inside `root` (its canonical path), refusing image names on special files.
    pub(crate) fn new(root: &Path, extensions: &'a [String]) -> Result<Self, DataError> {
        let canonical = fs::canonicalize(root).map_err(|source| DataError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let mut visited = HashSet::new();
        visited.insert(canonical.clone());
        Ok(Walk {
            root: canonical,
            visited,
            skipped: Vec::new(),
            extensions,
            refuse_special: true,
        })
    }

    /// List image names on FIFOs, devices and sockets like files instead of failing the scan:
    /// the caller opens each with [`crate::files::open_regular`], which names what it is.
    pub(crate) fn list_special(mut self) -> Self {
        self.refuse_special = false;
        self
    }

    /// Entries of `dir` to read, sorted, as (path, is a directory after following links).
    /// Links out of the root and directories already read are left out (into `skipped`);
    /// a non-UTF-8 name is an error; so is an image name on a FIFO, device or socket (unless
    /// [`Walk::list_special`]).
    pub(crate) fn entries(&mut self, dir: &Path) -> Result<Vec<(PathBuf, bool)>, DataError> {
        let io_err = |path: &Path, source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(DataError::Format {
                    path,
                    what: "file name".into(),
                    expected: "valid UTF-8".into(),
                    found: "other bytes (shown here as U+FFFD)".into(),
                });
            };
            let mut ft = entry.file_type().map_err(|e| io_err(&path, e))?;
            if ft.is_symlink() {
                // Follow links, as `os.walk(followlinks=True)`, but only inside the root.
                match fs::canonicalize(&path) {
                    Ok(target) if !target.starts_with(&self.root) => {
                        let why = format!("links to {}, outside the data set's root", target.display());
                        self.skipped.push((path, why));
                        continue;
                    }
                    Ok(_) => ft = fs::metadata(&path).map_err(|e| io_err(&path, e))?.file_type(),
                    // A dangling link: kept as a file, so reading it names it.
                    Err(_) => {}
                }
            }
            if ft.is_dir() {
                let canonical = fs::canonicalize(&path).map_err(|e| io_err(&path, e))?;
                if !self.visited.insert(canonical) {
                    let why = "a directory already read (a symbolic link cycle or a second link to it)";
                    self.skipped.push((path, why.into()));
                    continue;
                }
            } else if self.refuse_special && !ft.is_symlink() && has_extension(&name, self.extensions) {
                if let Some(kind) = crate::files::kind_name(&ft) {
                    let msg = format!("is {kind}, not a regular file");
                    return Err(io_err(
                        &path,
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, msg),
                    ));
                }
            }
            out.push((path, ft.is_dir()));
        }
        out.sort();
        Ok(out)
    }

    /// Every file under `dir`, recursively, as (folder path string, file name).
    fn files(&mut self, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), DataError> {
        let dir_str = dir.to_string_lossy().into_owned();
        for (path, is_dir) in self.entries(dir)? {
            if is_dir {
                self.files(&path, out)?;
            } else if let Some(name) = path.file_name() {
                out.push((dir_str.clone(), name.to_string_lossy().into_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_ignore_case() {
        let ext: Vec<String> = IMG_EXTENSIONS.iter().map(|e| e.to_string()).collect();
        assert!(has_extension("a.JPG", &ext) && has_extension("b.tiff", &ext) && has_extension("c.WebP", &ext));
        assert!(!has_extension("a.txt", &ext) && !has_extension("jpg", &ext) && !has_extension("a.gif", &ext));
    }

    #[test]
    fn gray_and_rgba_convert_as_pil() {
        let mut png = Vec::new();
        let gray = image::GrayImage::from_raw(2, 1, vec![7, 200]).unwrap();
        gray.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(
            decode_rgb(&png, Path::new("x.png")).unwrap().into_raw(),
            vec![7, 7, 7, 200, 200, 200]
        );
        let mut png = Vec::new();
        let rgba = image::RgbaImage::from_raw(1, 1, vec![1, 2, 3, 0]).unwrap();
        rgba.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decode_rgb(&png, Path::new("x.png")).unwrap().into_raw(), vec![1, 2, 3]);
        assert!(decode_rgb(b"\x89PNG\r\n\x1a\nbroken", Path::new("x.png")).is_err());
    }
}
