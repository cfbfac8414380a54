//! # torchlet-data: datasets, transforms and data loading for torchlet
//!
//! The data pipeline of `torch.utils.data` and `torchvision`, with their names and semantics,
//! for anyone who feeds a `torchlet::Network`: it depends on the core only for its seeded
//! generator ([`torchlet::Rng`]), so using it compiles neither the GPU crate (wgpu) nor the
//! command line (clap). `torchlet-host` re-exports it as `torchlet_host::data`,
//! `torchlet_host::transforms` and `torchlet_host::digits`; depend on this crate directly when
//! you need only the data side (a training loop of your own, a data benchmark).
//!
//! - the crate root: [`Dataset`] (and [`Concat`], [`Subset`], [`random_split`]), the
//!   [`Sample`] and [`Tensor`] items datasets yield, and [`DataError`];
//! - [`cifar`], [`mnist`], [`image_folder`], [`label_files`], [`digits`]: datasets (CIFAR-10
//!   with its download, MNIST and Fashion-MNIST, ImageFolder, a CSV of labels, the embedded
//!   digits);
//! - [`image_files`]: the image files of a folder, listed to classify them one by one;
//! - [`loader`], [`sampler`]: `DataLoader` with worker threads, and samplers;
//! - [`transforms`]: torchvision's transforms, `make_grid`, and the `Transformed` wrapper.
//!
//! A [`Dataset`] returns `(sample, label)` by index and knows its length; datasets yield
//! [`Sample`]s, either an image (what torchvision calls a PIL image) or a [`Tensor`], and
//! [`transforms`] turn one into the other (`ToTensor`, `Normalize`, augmentations). The
//! [`loader::DataLoader`] batches tensors into NCHW `f32` buffers ready for `torchlet::Network`.
//!
//! Randomness is always seeded ([`torchlet::Rng`]): a transform gets a generator derived from
//! (seed, epoch, index), so a batch is the same whatever the number of workers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;

pub mod cifar;
pub mod dataset;
pub mod digits;
pub mod download;
pub mod files;
pub mod image_files;
pub mod image_folder;
pub mod label_files;
pub mod loader;
pub mod mnist;
pub mod sampler;
pub mod transforms;

pub use dataset::{random_split, Concat, Dataset, Subset};

/// A class index.
pub type Label = u32;

/// A dense `f32` tensor of one sample, row-major: `[C, H, W]` for images.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data.
    ///
    /// # Errors
    /// [`DataError::Shape`] if `data.len()` is not the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, DataError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(DataError::Shape {
                what: "tensor data length".into(),
                expected: format!("{n} (product of {shape:?})"),
                found: data.len().to_string(),
            });
        }
        Ok(Tensor { shape, data })
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// What datasets yield and transforms pass along.
#[derive(Clone, Debug)]
pub enum Sample {
    /// A decoded image (8-bit gray, RGB or RGBA), as torchvision's PIL images.
    Image(image::DynamicImage),
    /// A tensor, `[C, H, W]` for images.
    Tensor(Tensor),
}

impl Sample {
    /// The tensor, or an error naming `what` needed it (an image must go through `ToTensor`).
    ///
    /// # Errors
    /// [`DataError::Transform`] for an image.
    pub fn into_tensor(self, what: &str) -> Result<Tensor, DataError> {
        match self {
            Sample::Tensor(t) => Ok(t),
            Sample::Image(_) => Err(DataError::Transform {
                name: what.into(),
                reason: "expected a tensor, found an image (add ToTensor first)".into(),
            }),
        }
    }
}

/// Everything that can go wrong getting data in. Messages name the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not in the expected format (truncated batch, bad magic number...).
    #[error("{}: {what}: expected {expected}, found {found}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The field or part.
        what: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// An image file does not decode.
    #[error("{}: cannot decode image: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// A class folder holds no images.
    #[error("{}: class folder has no images (extensions read: {extensions})", path.display())]
    EmptyClass {
        /// The folder.
        path: PathBuf,
        /// The extensions looked for.
        extensions: String,
    },
    /// A label is not a valid class index.
    #[error("{source_name}: label {label} out of range for {classes} classes")]
    Label {
        /// The file or dataset it came from.
        source_name: String,
        /// The label.
        label: i64,
        /// Number of classes.
        classes: usize,
    },
    /// A downloaded or extracted file has the wrong checksum.
    #[error("{}: MD5 {found} does not match the expected {expected}", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Expected hex digest.
        expected: String,
        /// Computed hex digest.
        found: String,
    },
    /// A download failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A transform cannot apply to its input.
    #[error("{name}: {reason}")]
    Transform {
        /// The transform.
        name: String,
        /// Why.
        reason: String,
    },
    /// A shape or length does not match.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// What.
        what: String,
        /// Expected.
        expected: String,
        /// Found.
        found: String,
    },
    /// An index past the end of a dataset.
    #[error("index {index} out of range for a dataset of {len} items")]
    Index {
        /// The index.
        index: usize,
        /// The dataset's length.
        len: usize,
    },
    /// An argument is invalid (a split that does not add up, a zero batch size...).
    #[error("{name}: {reason}")]
    Argument {
        /// The argument, by its PyTorch name.
        name: String,
        /// What it must satisfy.
        reason: String,
    },
}

/// The generator for sample `index` of `epoch` under `seed`: the same whatever the worker.
pub fn sample_rng(seed: u64, epoch: u64, index: usize) -> torchlet::Rng {
    torchlet::Rng::with_stream(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15), index as u64)
}
