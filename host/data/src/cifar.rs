//! CIFAR-10 in its official binary format (`cifar-10-batches-bin`), as
//! `torchvision.datasets.CIFAR10`: 50,000 training and 10,000 test images, 32×32 RGB, 10 classes.
//!
//! Each batch file holds records of 3,073 bytes: one label byte, then the red, green and blue
//! planes of 32×32 pixels (row-major); an official batch has 10,000 records (30,730,000
//! bytes). The training split is `data_batch_1.bin` … `data_batch_5.bin`, the test split
//! `test_batch.bin`, and `batches.meta.txt` names the classes, one a line.
//!
//! The whole split is read into memory (150 MB for training, as torchvision does) and items
//! are [`Sample::Image`]s (RGB 32×32, what torchvision's PIL images are), so the transforms
//! apply to them unchanged.
//!
//! ```no_run
//! use torchlet_data::{cifar::Cifar10, Dataset};
//! let root = std::path::Path::new("data");
//! Cifar10::download(root)?;                 // once: fetch, verify the MD5, extract
//! let train = Cifar10::new(root, true)?;
//! assert_eq!(train.len(), 50_000);
//! # Ok::<(), torchlet_data::DataError>(())
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};

use super::download::{download, extract_tar_gz};
use super::{DataError, Dataset, Label, Sample};

/// Bytes in one record: a label byte and 3 × 32 × 32 pixel bytes.
pub const RECORD_BYTES: usize = 1 + PIXEL_BYTES;
/// Bytes of one image: 3 planes of 32 × 32.
pub const PIXEL_BYTES: usize = 3 * 32 * 32;
/// Records in an official batch file.
pub const RECORDS_PER_BATCH: usize = 10_000;
/// The folder the archive extracts to.
pub const FOLDER: &str = "cifar-10-batches-bin";
/// The official archive.
pub const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// MD5 of the official archive.
pub const MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// The training batch files.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const TEST_FILE: &str = "test_batch.bin";
/// The class names file.
pub const META_FILE: &str = "batches.meta.txt";

/// The CIFAR-10 training or test split, decoded into memory.
#[derive(Clone)]
pub struct Cifar10 {
    /// `[N, 32, 32, 3]` interleaved RGB bytes (converted from the file's planes once).
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
    train: bool,
}

impl Cifar10 {
    /// Reads the training (`train = true`) or test split from `root/cifar-10-batches-bin/`.
    ///
    /// Batch files may hold any number of records (tests use small ones), but each must be a
    /// whole number of 3,073-byte records.
    ///
    /// # Errors
    /// - [`DataError::Io`] naming a missing or unreadable batch or meta file;
    /// - [`DataError::Format`] naming a batch file whose size is not a multiple of 3,073
    ///   (a truncated download), or a meta file without class names;
    /// - [`DataError::Label`] naming the file and record of a label past the classes.
    pub fn new(root: impl AsRef<Path>, train: bool) -> Result<Self, DataError> {
        let dir = root.as_ref().join(FOLDER);
        let classes = read_classes(&dir.join(META_FILE))?;
        let files: &[&str] = if train { &TRAIN_FILES } else { &[TEST_FILE] };
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for name in files {
            let path = dir.join(name);
            let bytes = read_batch(&path)?;
            let records = bytes.len() / RECORD_BYTES;
            pixels.reserve(records * PIXEL_BYTES);
            labels.reserve(records);
            for (r, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
                let label = record[0];
                if label as usize >= classes.len() {
                    return Err(DataError::Label {
                        source_name: format!("{} record {r}", path.display()),
                        label: label.into(),
                        classes: classes.len(),
                    });
                }
                labels.push(label);
                let (r_plane, rest) = record[1..].split_at(1024);
                let (g_plane, b_plane) = rest.split_at(1024);
                for ((&r, &g), &b) in r_plane.iter().zip(g_plane).zip(b_plane) {
                    pixels.extend_from_slice(&[r, g, b]);
                }
            }
        }
        Ok(Cifar10 {
            pixels,
            labels,
            classes,
            train,
        })
    }

    /// Downloads the official archive into `root`, checks its MD5 and extracts it to
    /// `root/cifar-10-batches-bin`, which it returns. Does nothing when that folder is already
    /// complete (every batch file present with whole records, and the meta file).
    ///
    /// # Errors
    /// As [`Cifar10::download_from`].
    pub fn download(root: impl AsRef<Path>) -> Result<PathBuf, DataError> {
        Self::download_from(root, URL, MD5)
    }

    /// [`Cifar10::download`] from another URL with its own MD5 (a mirror, or a local server
    /// in tests). The archive is kept as `root/cifar-10-binary.tar.gz` and not fetched again
    /// while its MD5 matches.
    ///
    /// # Errors
    /// [`DataError::Download`] naming the URL (HTTP error, connection failure),
    /// [`DataError::Checksum`] naming the archive, [`DataError::Io`] or [`DataError::Format`]
    /// naming the archive or folder when extraction fails or leaves an incomplete folder.
    pub fn download_from(root: impl AsRef<Path>, url: &str, md5: &str) -> Result<PathBuf, DataError> {
        let root = root.as_ref();
        let dir = root.join(FOLDER);
        if is_complete(&dir) {
            eprintln!("Files already downloaded and verified: {}", dir.display());
            return Ok(dir);
        }
        let archive = download(url, &root.join("cifar-10-binary.tar.gz"), Some(md5))?;
        let dir = extract_tar_gz(&archive, root, FOLDER)?;
        // Name the first problem, if the archive did not hold a complete data set.
        read_classes(&dir.join(META_FILE))?;
        for name in TRAIN_FILES.iter().chain([&TEST_FILE]) {
            batch_len(&dir.join(name))?;
        }
        Ok(dir)
    }

    /// Whether this is the training split.
    pub fn is_train(&self) -> bool {
        self.train
    }

    /// All labels, in order.
    pub fn targets(&self) -> &[u8] {
        &self.labels
    }

    /// Image `index` as RGB 32×32.
    ///
    /// # Errors
    /// [`DataError::Index`] past the end.
    pub fn image(&self, index: usize) -> Result<RgbImage, DataError> {
        if index >= self.labels.len() {
            return Err(DataError::Index {
                index,
                len: self.labels.len(),
            });
        }
        let px = &self.pixels[index * PIXEL_BYTES..(index + 1) * PIXEL_BYTES];
        Ok(RgbImage::from_raw(32, 32, px.to_vec()).expect("32 * 32 * 3 bytes"))
    }
}

impl std::fmt::Debug for Cifar10 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cifar10")
            .field("len", &self.labels.len())
            .field("train", &self.train)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

impl Dataset for Cifar10 {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<(Sample, Label), DataError> {
        let image = self.image(index)?;
        Ok((Sample::Image(DynamicImage::ImageRgb8(image)), self.labels[index].into()))
    }
    fn classes(&self) -> Option<Vec<String>> {
        Some(self.classes.clone())
    }
}

/// Class names, one a non-empty line.
fn read_classes(path: &Path) -> Result<Vec<String>, DataError> {
    let text = crate::files::read_to_string_regular(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let classes: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if classes.is_empty() {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            what: "class names".into(),
            expected: "one name a line".into(),
            found: "an empty file".into(),
        });
    }
    Ok(classes)
}

/// The size of a batch file, checked to be a positive multiple of the record size.
fn batch_len(path: &Path) -> Result<usize, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    if let Some(kind) = crate::files::kind_name(&meta.file_type()) {
        let msg = format!("is {kind}, not a regular file");
        return Err(io_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)));
    }
    let len = meta.len() as usize;
    check_batch_len(path, len)?;
    Ok(len)
}

fn check_batch_len(path: &Path, len: usize) -> Result<(), DataError> {
    if len == 0 || len % RECORD_BYTES != 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            what: "batch file size (truncated?)".into(),
            expected: format!(
                "a multiple of {RECORD_BYTES} bytes ({} for an official batch)",
                RECORD_BYTES * RECORDS_PER_BATCH
            ),
            found: format!("{len} bytes"),
        });
    }
    Ok(())
}

fn read_batch(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = crate::files::read_regular(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_batch_len(path, bytes.len())?;
    Ok(bytes)
}

/// Every file of the data set present, batch files of whole records.
fn is_complete(dir: &Path) -> bool {
    dir.join(META_FILE).is_file()
        && TRAIN_FILES
            .iter()
            .chain([&TEST_FILE])
            .all(|f| batch_len(&dir.join(f)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_become_interleaved_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let batches = dir.path().join(FOLDER);
        fs::create_dir_all(&batches).unwrap();
        fs::write(batches.join(META_FILE), "a\nb\n\n").unwrap();
        let mut record = vec![1u8];
        for c in 0..3u8 {
            record.extend((0..1024).map(|p| (p % 251) as u8 ^ (c * 85)));
        }
        fs::write(batches.join(TEST_FILE), &record).unwrap();
        let ds = Cifar10::new(dir.path(), false).unwrap();
        assert_eq!(
            (ds.len(), ds.targets(), ds.classes().unwrap()),
            (1, &[1u8][..], vec!["a".into(), "b".into()])
        );
        let img = ds.image(0).unwrap();
        // Pixel (x=5, y=2) is plane offset 2 * 32 + 5.
        let p = 2 * 32 + 5;
        assert_eq!(
            img.get_pixel(5, 2).0,
            [record[1 + p], record[1 + 1024 + p], record[1 + 2048 + p]]
        );
        assert!(matches!(ds.get(1), Err(DataError::Index { index: 1, len: 1 })));
    }
}
