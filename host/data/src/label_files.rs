//! Images with a parallel folder of label files, the layout of many custom data sets:
//!
//! ```text
//! root/images/0001.jpg     root/labels/0001.txt   ("3": a class index)
//! root/images/0002.png     root/labels/0002.txt
//! root/classes.txt         (optional: class names, one a line, line i is label i)
//! ```
//!
//! An image's label file has the same name stem with `.txt`; it holds one integer class
//! index (surrounding whitespace ignored). Images are the files of `root/images` whose names
//! end with one of [`IMG_EXTENSIONS`], sorted by name.
//! Labels are all read and checked when the data set is opened, so a missing label file, a
//! label that is not an integer, or one out of range is reported at once, naming the file.
//! Images are decoded when fetched, into RGB as [`ImageFolder`](super::image_folder) does.
//!
//! Use [`ImageFolder`](super::image_folder::ImageFolder) instead when the folder name is the
//! label.

use std::fs;
use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::image_folder::{load_rgb, IMG_EXTENSIONS};
use super::{DataError, Dataset, Label, Sample};

/// Images in `root/images`, labels in `root/labels`. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct LabelFiles {
    samples: Vec<(PathBuf, Label)>,
    classes: Vec<String>,
}

impl LabelFiles {
    /// Opens `root`, reading every label file; the classes come from `root/classes.txt` if
    /// present, else they are `"0"`, `"1"`, … up to the largest label.
    ///
    /// # Errors
    /// - [`DataError::Io`] naming an unreadable folder or file;
    /// - [`DataError::Format`] naming the missing label file of an image, or a label file
    ///   that does not hold an integer;
    /// - [`DataError::Label`] naming the label file of a negative label or one not below the
    ///   number of names in `classes.txt`.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, DataError> {
        Self::open(root.as_ref(), None)
    }

    /// As [`LabelFiles::new`], with the number of classes given: labels must be below it, and
    /// the classes are `"0"` … `num_classes - 1` unless `classes.txt` names them (then its
    /// length must be `num_classes`).
    ///
    /// # Errors
    /// As [`LabelFiles::new`]; [`DataError::Format`] naming `classes.txt` if its length
    /// differs from `num_classes`.
    pub fn with_num_classes(root: impl AsRef<Path>, num_classes: usize) -> Result<Self, DataError> {
        Self::open(root.as_ref(), Some(num_classes))
    }

    fn open(root: &Path, num_classes: Option<usize>) -> Result<Self, DataError> {
        let names_path = root.join("classes.txt");
        let names = match crate::files::read_to_string_regular(&names_path) {
            Ok(text) => Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(DataError::Io {
                    path: names_path,
                    source,
                })
            }
        };
        if let (Some(names), Some(n)) = (&names, num_classes) {
            if names.len() != n {
                return Err(DataError::Format {
                    path: names_path,
                    what: "class names".into(),
                    expected: format!("{n} (num_classes)"),
                    found: names.len().to_string(),
                });
            }
        }
        let limit = names.as_ref().map(Vec::len).or(num_classes);

        let images_dir = root.join("images");
        let labels_dir = root.join("labels");
        let io_err = |source| DataError::Io {
            path: images_dir.clone(),
            source,
        };
        let mut images: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&images_dir).map_err(io_err)? {
            let path = entry.map_err(io_err)?.path();
            let lower = path
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if !IMG_EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
                continue;
            }
            // An image name on a FIFO, device, socket or folder is an error naming it, never
            // skipped in silence (links are followed).
            let kind = fs::metadata(&path)
                .map(|m| m.file_type())
                .map_err(|source| DataError::Io {
                    path: path.clone(),
                    source,
                })?;
            if let Some(kind) = crate::files::kind_name(&kind) {
                return Err(DataError::Io {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("is {kind}, not a regular file"),
                    ),
                });
            }
            images.push(path);
        }
        images.sort();

        let mut samples = Vec::with_capacity(images.len());
        for image in images {
            let mut name = image.file_stem().unwrap_or_default().to_os_string();
            name.push(".txt");
            let label_path = labels_dir.join(name);
            let text = match crate::files::read_to_string_regular(&label_path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(DataError::Format {
                        path: label_path,
                        what: "label file".into(),
                        expected: format!("one for {}", image.display()),
                        found: "no such file".into(),
                    })
                }
                Err(source) => {
                    return Err(DataError::Io {
                        path: label_path,
                        source,
                    })
                }
            };
            let label: i64 = text.trim().parse().map_err(|_| DataError::Format {
                path: label_path.clone(),
                what: "label".into(),
                expected: "an integer class index".into(),
                found: format!("{:?}", text.trim()),
            })?;
            let out_of_range = label < 0 || limit.is_some_and(|n| label >= n as i64) || label > Label::MAX as i64;
            if out_of_range {
                return Err(DataError::Label {
                    source_name: label_path.display().to_string(),
                    label,
                    classes: limit.unwrap_or(0),
                });
            }
            samples.push((image, label as Label));
        }
        let classes = names.unwrap_or_else(|| {
            let n = num_classes.unwrap_or_else(|| samples.iter().map(|&(_, l)| l as usize + 1).max().unwrap_or(0));
            (0..n).map(|i| i.to_string()).collect()
        });
        Ok(LabelFiles { samples, classes })
    }

    /// Class names; a label indexes this list.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// `(image path, label)` of every item, in order.
    pub fn samples(&self) -> &[(PathBuf, Label)] {
        &self.samples
    }
}

impl Dataset for LabelFiles {
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
