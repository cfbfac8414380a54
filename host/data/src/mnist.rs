//! MNIST and Fashion-MNIST from their IDX files, as `torchvision.datasets.MNIST` and
//! `FashionMNIST`: 60,000 training and 10,000 test images, 28×28 gray, 10 classes.
//!
//! Files are looked for in `root/` and then in torchvision's layout `root/MNIST/raw/`
//! (`root/FashionMNIST/raw/`), each either raw or gzipped (`.gz`, as distributed):
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` for training, `t10k-…` for test.
//!
//! IDX (LeCun et al.): a 4-byte magic number `0x00 0x00 0x08 ndim` (`0x00000803` for the
//! images, `0x00000801` for the labels; type `0x08` is unsigned bytes), `ndim` big-endian
//! `u32` dimensions, then the bytes row-major. Items are [`Sample::Image`]s, 8-bit gray
//! (PIL mode `"L"`, as torchvision).

use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage};

use super::{DataError, Dataset, Label, Sample};

/// MNIST's class names, as torchvision's `MNIST.classes`.
pub const MNIST_CLASSES: [&str; 10] = [
    "0 - zero",
    "1 - one",
    "2 - two",
    "3 - three",
    "4 - four",
    "5 - five",
    "6 - six",
    "7 - seven",
    "8 - eight",
    "9 - nine",
];

/// Fashion-MNIST's class names, as torchvision's `FashionMNIST.classes`.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// An IDX image classification set (MNIST's format), decoded into memory.
#[derive(Clone)]
pub struct Mnist {
    /// `[N, rows, cols]` bytes.
    pixels: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    classes: Vec<String>,
    train: bool,
}

/// Fashion-MNIST: the same format as [`Mnist`], clothes instead of digits. Derefs to [`Mnist`].
#[derive(Clone, Debug)]
pub struct FashionMnist(Mnist);

impl Mnist {
    /// The training (`train = true`, `train-*`) or test (`t10k-*`) split of MNIST under `root`.
    ///
    /// # Errors
    /// [`DataError::Io`] naming a file not found (or unreadable); [`DataError::Format`] naming
    /// the file for a bad magic number, a truncated file (size differs from what the header
    /// says) or a number of labels different from the number of images;
    /// [`DataError::Label`] naming the labels file for a label past the classes.
    pub fn new(root: impl AsRef<Path>, train: bool) -> Result<Self, DataError> {
        Self::open(root.as_ref(), "MNIST", train, &MNIST_CLASSES)
    }

    /// A data set from an IDX images file and an IDX labels file (raw, or gzipped if the
    /// name ends with `.gz` or the content starts with gzip's magic number), with its classes.
    ///
    /// # Errors
    /// As [`Mnist::new`].
    pub fn from_files(images: &Path, labels: &Path, classes: &[&str], train: bool) -> Result<Self, DataError> {
        let (dims, pixels) = read_idx(images, 3)?;
        let (ldims, labels_bytes) = read_idx(labels, 1)?;
        if ldims[0] != dims[0] {
            return Err(DataError::Format {
                path: labels.to_path_buf(),
                what: "number of labels".into(),
                expected: format!("{} (the number of images in {})", dims[0], images.display()),
                found: ldims[0].to_string(),
            });
        }
        if let Some((i, &l)) = labels_bytes
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= classes.len())
        {
            return Err(DataError::Label {
                source_name: format!("{} item {i}", labels.display()),
                label: l.into(),
                classes: classes.len(),
            });
        }
        Ok(Mnist {
            pixels,
            labels: labels_bytes,
            rows: dims[1],
            cols: dims[2],
            classes: classes.iter().map(|c| c.to_string()).collect(),
            train,
        })
    }

    fn open(root: &Path, folder: &str, train: bool, classes: &[&str]) -> Result<Self, DataError> {
        let prefix = if train { "train" } else { "t10k" };
        let images = find(root, folder, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find(root, folder, &format!("{prefix}-labels-idx1-ubyte"))?;
        Self::from_files(&images, &labels, classes, train)
    }

    /// Whether this is the training split.
    pub fn is_train(&self) -> bool {
        self.train
    }

    /// `(rows, cols)` of every image (28 × 28 for MNIST).
    pub fn image_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// All labels, in order.
    pub fn targets(&self) -> &[u8] {
        &self.labels
    }

    /// Image `index`, 8-bit gray.
    ///
    /// # Errors
    /// [`DataError::Index`] past the end.
    pub fn image(&self, index: usize) -> Result<GrayImage, DataError> {
        if index >= self.labels.len() {
            return Err(DataError::Index {
                index,
                len: self.labels.len(),
            });
        }
        let n = self.rows * self.cols;
        let px = &self.pixels[index * n..(index + 1) * n];
        GrayImage::from_raw(self.cols as u32, self.rows as u32, px.to_vec()).ok_or(DataError::Shape {
            what: "IDX image".into(),
            expected: "dimensions that fit in u32".into(),
            found: format!("{} x {}", self.rows, self.cols),
        })
    }
}

impl FashionMnist {
    /// The training or test split of Fashion-MNIST under `root` (or `root/FashionMNIST/raw`).
    ///
    /// # Errors
    /// As [`Mnist::new`].
    pub fn new(root: impl AsRef<Path>, train: bool) -> Result<Self, DataError> {
        Mnist::open(root.as_ref(), "FashionMNIST", train, &FASHION_CLASSES).map(FashionMnist)
    }
}

impl Deref for FashionMnist {
    type Target = Mnist;
    fn deref(&self) -> &Mnist {
        &self.0
    }
}

impl std::fmt::Debug for Mnist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mnist")
            .field("len", &self.labels.len())
            .field("size", &(self.rows, self.cols))
            .field("train", &self.train)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

impl Dataset for Mnist {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        let image = self.image(index)?;
        Ok((
            Sample::Image(DynamicImage::ImageLuma8(image)),
            self.labels[index].into(),
        ))
    }
    fn classes(&self) -> Option<Vec<String>> {
        Some(self.classes.clone())
    }
}

impl Dataset for FashionMnist {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        self.0.get(index)
    }
    fn classes(&self) -> Option<Vec<String>> {
        self.0.classes()
    }
}

/// `name` or `name.gz` in `root`, then in `root/<folder>/raw`.
fn find(root: &Path, folder: &str, name: &str) -> Result<PathBuf, DataError> {
    let dirs = [root.to_path_buf(), root.join(folder).join("raw")];
    for dir in &dirs {
        for file in [name.to_string(), format!("{name}.gz")] {
            let path = dir.join(file);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(DataError::Io {
        path: root.join(name),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("not found (nor {name}.gz, nor in {})", dirs[1].display()),
        ),
    })
}

/// Reads an IDX file of unsigned bytes with `ndim` dimensions: (dims, data).
fn read_idx(path: &Path, ndim: usize) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = crate::files::read_regular(path).map_err(io_err)?;
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) || raw.starts_with(&[0x1f, 0x8b]);
    let bytes = if gz {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io_err)?;
        out
    } else {
        raw
    };
    let format_err = |what: &str, expected: String, found: String| DataError::Format {
        path: path.to_path_buf(),
        what: what.into(),
        expected,
        found,
    };
    let header = 4 + 4 * ndim;
    let magic = 0x0800 | ndim as u32;
    let found_magic = bytes.get(..4).map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
    if found_magic != Some(magic) {
        return Err(format_err(
            "magic number",
            format!("0x{magic:08X} (unsigned bytes, {ndim} dimensions)"),
            found_magic.map_or_else(|| format!("a {}-byte file", bytes.len()), |m| format!("0x{m:08X}")),
        ));
    }
    if bytes.len() < header {
        return Err(format_err(
            "header (truncated?)",
            format!("{header} bytes"),
            format!("{} bytes", bytes.len()),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let n = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = n.and_then(|n| n.checked_add(header));
    if expected != Some(bytes.len()) {
        return Err(format_err(
            "file size (truncated?)",
            format!(
                "{} bytes ({header}-byte header + {dims:?})",
                expected.map_or("too many".into(), |e| e.to_string())
            ),
            format!("{} bytes", bytes.len()),
        ));
    }
    let mut data = bytes;
    data.drain(..header);
    Ok((dims, data))
}
