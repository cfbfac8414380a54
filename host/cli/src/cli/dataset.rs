//! Opening the data set of `torchlet train`, `eval` and `emulate` (`load_data`: the
//! embedded digits, MNIST, Fashion-MNIST, CIFAR-10's binary files or a folder of class
//! folders, recognised by its layout, split by `--val-split`) and checking that it fits a model
//! (`check_fit`). Every failure is a [`DataSetupError`] whose message names the flag or the
//! folder to fix.
//!
//! # Images that do not decode
//! An image folder is opened lazily: an image that does not decode is an error naming the file
//! when its item is fetched (during training or evaluation), and `suggest_skip_bad` adds to
//! that message how to go on. With `--skip-bad` (`skip_bad`) every image is decoded up front
//! ([`ImageFolderBuilder::skip_bad`](crate::data::image_folder::ImageFolderBuilder::skip_bad))
//! and those that fail are left out; they, and the symbolic links the scan did not follow, are
//! in `Data::left_out` ([`super::left_out::LeftOut`]) for the command to print on stderr.
//! `--skip-bad` with a data set that is not a folder of image files (digits, MNIST's IDX files, CIFAR-10's binary batches) is refused
//! ([`DataSetupError::SkipBadWithoutImages`]): there is nothing it could skip.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use torchlet::Shape;

use super::left_out::LeftOut;
use super::train::DatasetKind;
use crate::data::cifar::Cifar10;
use crate::data::image_folder::ImageFolder;
use crate::data::mnist::{FashionMnist, Mnist};
use crate::data::{random_split, DataError, Dataset, Subset};
use crate::digits::Digits;
use crate::model::{Model, ModelError};
use crate::transforms::{with_transform, Compose, RandomCrop, RandomHorizontalFlip, Resize, ToTensor, Transform};

/// Why a data set cannot be opened for a model, or does not fit it.
#[derive(Debug, thiserror::Error)]
pub enum DataSetupError {
    /// `--data-dir` is not a folder.
    #[error("{}: no such directory", .0.display())]
    NoDirectory(PathBuf),
    /// The folder cannot be listed.
    #[error("{}: {error}", path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// What the file system said.
        error: std::io::Error,
    },
    /// The folder is in none of the layouts `load_data` knows.
    #[error(
        "{}: not a data set in a known layout: expected CIFAR-10's binary folder \
         (cifar-10-batches-bin/), train/ and test/ folders of class folders, or a folder per class",
        .0.display()
    )]
    UnknownLayout(PathBuf),
    /// `--val-split` outside (0, 1).
    #[error("--val-split must be between 0 and 1, found {0}")]
    ValSplit(f32),
    /// A split that gave fewer than two parts.
    #[error("empty split")]
    EmptySplit,
    /// An image data set for a model whose input is not `[C, H, W]`.
    #[error("the model's input {0:?} is not an image [C, H, W]")]
    NotAnImage(Vec<usize>),
    /// A data set read from files without `--data-dir`.
    #[error("--dataset {0} needs --data-dir DIR")]
    NoDataDir(&'static str),
    /// `train/` and `test/` with different class folders.
    #[error("{} and {} have different class folders", train.display(), test.display())]
    ClassMismatch {
        /// The training folder.
        train: PathBuf,
        /// The held-out folder.
        test: PathBuf,
    },
    /// More classes than the model has outputs.
    #[error("model {model} has {outputs} outputs but the data set has {classes} classes")]
    TooManyClasses {
        /// The model's name.
        model: String,
        /// Its outputs.
        outputs: usize,
        /// The data set's classes.
        classes: usize,
    },
    /// A data set without samples.
    #[error("the data set is empty")]
    Empty,
    /// Samples of another shape than the model's input.
    #[error("model {model} takes inputs of shape {expected:?} but the data set's samples have shape {found:?}")]
    ShapeMismatch {
        /// The model's name.
        model: String,
        /// The model's input shape.
        expected: Vec<usize>,
        /// The first sample's shape.
        found: Vec<usize>,
    },
    /// `--skip-bad` with a data set that has no image files.
    #[error(
        "--skip-bad leaves out image files that do not decode, but {0} has no image files \
         (drop --skip-bad)"
    )]
    SkipBadWithoutImages(String),
    /// Reading the data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Planning the model.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A training and a held-out set, with their class names.
pub(crate) struct Data {
    /// The training set (augmented if asked).
    pub train: Box<dyn Dataset>,
    /// The held-out set.
    pub test: Box<dyn Dataset>,
    /// Class names, by label.
    pub classes: Vec<String>,
    /// The files the folder scans left out (`--skip-bad`, symbolic links not followed).
    pub left_out: LeftOut,
}

/// How a data folder is laid out.
enum Layout {
    /// `root/cifar-10-batches-bin/*.bin`.
    CifarBinary(PathBuf),
    /// `root/train/CLASS/...` and `root/test/CLASS/...` (or `val/`).
    TrainTest(PathBuf, PathBuf),
    /// `root/CLASS/...`.
    Classes(PathBuf),
}

/// Recognises the layout of `dir`.
fn layout(dir: &Path) -> Result<Layout, DataSetupError> {
    if !dir.is_dir() {
        return Err(DataSetupError::NoDirectory(dir.to_path_buf()));
    }
    if dir.join("cifar-10-batches-bin").is_dir() {
        return Ok(Layout::CifarBinary(dir.to_path_buf()));
    }
    if dir.file_name().is_some_and(|n| n == "cifar-10-batches-bin") && dir.join("data_batch_1.bin").is_file() {
        return Ok(Layout::CifarBinary(
            dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
        ));
    }
    let test = ["test", "val"].iter().map(|t| dir.join(t)).find(|t| t.is_dir());
    if let (true, Some(test)) = (dir.join("train").is_dir(), test) {
        return Ok(Layout::TrainTest(dir.join("train"), test));
    }
    let has_class_dirs = std::fs::read_dir(dir)
        .map_err(|error| DataSetupError::ReadDir {
            path: dir.to_path_buf(),
            error,
        })?
        .filter_map(Result::ok)
        .any(|e| e.path().is_dir());
    if has_class_dirs {
        return Ok(Layout::Classes(dir.to_path_buf()));
    }
    Err(DataSetupError::UnknownLayout(dir.to_path_buf()))
}

/// The transform of image samples for a model taking `input`: Resize to its size (and augment),
/// then ToTensor.
fn image_transform(input: Shape, augment: bool) -> Compose {
    let (h, w) = (input.dims()[1], input.dims()[2]);
    let mut t = Compose::new(vec![Resize::new((h, w)).boxed()]);
    if augment {
        t = t
            .then(RandomCrop::new((h, w)).padding(4))
            .then(RandomHorizontalFlip::new());
    }
    t.then(ToTensor)
}

/// A training and a held-out part of one data set.
type Parts<D> = (Subset<Arc<D>>, Subset<Arc<D>>);

/// Splits `dataset` into training and held-out parts, `fraction` held out.
fn split<D: Dataset + 'static>(dataset: D, fraction: f32, seed: u64) -> Result<Parts<D>, DataSetupError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(DataSetupError::ValSplit(fraction));
    }
    let n = dataset.len();
    let held = ((n as f64 * f64::from(fraction)).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let mut parts = random_split(dataset, &[n - held, held], seed)?;
    let test = parts.pop().ok_or(DataSetupError::EmptySplit)?;
    let train = parts.pop().ok_or(DataSetupError::EmptySplit)?;
    Ok((train, test))
}

/// Opens the image folder `dir`, with `skip_bad` decoding every image up front and leaving out
/// those that fail; what it left out is added to `left_out`.
fn open_folder(dir: &Path, skip_bad: bool, left_out: &mut LeftOut) -> Result<ImageFolder, DataError> {
    let folder = ImageFolder::builder(dir).skip_bad(skip_bad).build()?;
    left_out.bad.extend_from_slice(folder.skipped_files());
    left_out.links.extend_from_slice(folder.skipped_links());
    Ok(folder)
}

/// `--skip-bad` with a data set that has no image files: [`DataSetupError::SkipBadWithoutImages`]
/// naming it.
fn refuse_skip_bad(skip_bad: bool, what: impl FnOnce() -> String) -> Result<(), DataSetupError> {
    if skip_bad {
        return Err(DataSetupError::SkipBadWithoutImages(what()));
    }
    Ok(())
}

/// `e` with a hint at `--skip-bad` when it is an image that does not decode and `skip_bad` was
/// not given; any other error unchanged.
pub(crate) fn suggest_skip_bad(e: Box<dyn std::error::Error>, skip_bad: bool) -> Box<dyn std::error::Error> {
    let decode = |d: &DataError| matches!(d, DataError::Decode { .. });
    let is_decode = e.downcast_ref::<DataError>().is_some_and(decode)
        || matches!(e.downcast_ref::<DataSetupError>(), Some(DataSetupError::Data(d)) if decode(d))
        || matches!(e.downcast_ref::<crate::train::TrainError>(), Some(crate::train::TrainError::Data(d)) if decode(d));
    if skip_bad || !is_decode {
        return e;
    }
    format!("{e} (pass --skip-bad to leave out the images that do not decode)").into()
}

/// Opens the data set `kind` (for `--split`-free use: its training and held-out parts) for a
/// model taking `input`. `skip_bad` (`--skip-bad`) opens image folders decoding every image
/// and leaving out those that fail (see the [module docs](self)).
pub(crate) fn load_data(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    input: Shape,
    augment: bool,
    val_split: Option<f32>,
    seed: u64,
    skip_bad: bool,
) -> Result<Data, DataSetupError> {
    if input.dims().len() != 3 && kind != DatasetKind::Digits {
        return Err(DataSetupError::NotAnImage(input.dims().to_vec()));
    }
    let mut left_out = LeftOut::default();
    let boxed = |d: Box<dyn Dataset>, aug: bool| -> Box<dyn Dataset> {
        if input.dims().len() == 3 {
            Box::new(with_transform(d, image_transform(input, aug), None))
        } else {
            d
        }
    };
    match kind {
        DatasetKind::Digits => {
            refuse_skip_bad(skip_bad, || "--dataset digits (the embedded 8×8 digits)".into())?;
            let all = Digits::embedded();
            let classes = crate::digits::Digits::embedded().classes().unwrap_or_default();
            let (train, test): (Box<dyn Dataset>, Box<dyn Dataset>) = match val_split {
                Some(f) => {
                    let (a, b) = split(all, f, seed)?;
                    (Box::new(a), Box::new(b))
                }
                None => {
                    let (a, b) = all.split(360, seed);
                    (Box::new(a), Box::new(b))
                }
            };
            Ok(Data {
                train,
                test,
                classes,
                left_out,
            })
        }
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let dir = data_dir.ok_or(DataSetupError::NoDataDir(kind.name()))?;
            refuse_skip_bad(skip_bad, || format!("--dataset {} (IDX files)", kind.name()))?;
            let open = |train: bool| -> Result<Box<dyn Dataset>, crate::data::DataError> {
                Ok(if kind == DatasetKind::Mnist {
                    Box::new(Mnist::new(dir, train)?)
                } else {
                    Box::new(FashionMnist::new(dir, train)?)
                })
            };
            let train = open(true)?;
            let classes = train.classes().unwrap_or_default();
            let (train, test): (Box<dyn Dataset>, Box<dyn Dataset>) = match val_split {
                Some(f) => {
                    let (a, b) = split(train, f, seed)?;
                    (Box::new(a), Box::new(b))
                }
                None => (train, open(false)?),
            };
            Ok(Data {
                train: boxed(train, augment),
                test: boxed(test, false),
                classes,
                left_out,
            })
        }
        DatasetKind::Cifar10 | DatasetKind::ImageFolder => {
            let dir = data_dir.ok_or(DataSetupError::NoDataDir(kind.name()))?;
            match layout(dir)? {
                Layout::CifarBinary(root) => {
                    refuse_skip_bad(skip_bad, || format!("{} (CIFAR-10's binary batches)", root.display()))?;
                    let train = Cifar10::new(&root, true)?;
                    let classes = train.classes().unwrap_or_default();
                    let (train, test): (Box<dyn Dataset>, Box<dyn Dataset>) = match val_split {
                        Some(f) => {
                            let (a, b) = split(train, f, seed)?;
                            (Box::new(a), Box::new(b))
                        }
                        None => (Box::new(train), Box::new(Cifar10::new(&root, false)?)),
                    };
                    Ok(Data {
                        train: boxed(train, augment),
                        test: boxed(test, false),
                        classes,
                        left_out,
                    })
                }
                Layout::TrainTest(train_dir, test_dir) if val_split.is_none() => {
                    let train = open_folder(&train_dir, skip_bad, &mut left_out)?;
                    let test = open_folder(&test_dir, skip_bad, &mut left_out)?;
                    if train.classes() != test.classes() {
                        return Err(DataSetupError::ClassMismatch {
                            train: train_dir,
                            test: test_dir,
                        });
                    }
                    let classes = train.classes().to_vec();
                    Ok(Data {
                        train: boxed(Box::new(train), augment),
                        test: boxed(Box::new(test), false),
                        classes,
                        left_out,
                    })
                }
                Layout::TrainTest(root, _) | Layout::Classes(root) => {
                    let root = if root.join("train").is_dir() {
                        root.join("train")
                    } else {
                        root
                    };
                    let folder = open_folder(&root, skip_bad, &mut left_out)?;
                    let classes = folder.classes().to_vec();
                    let (a, b) = split(folder, val_split.unwrap_or(0.1), seed)?;
                    Ok(Data {
                        train: boxed(Box::new(a), augment),
                        test: boxed(Box::new(b), false),
                        classes,
                        left_out,
                    })
                }
            }
        }
    }
}

/// Checks that `data`'s samples fit `model` (shape and class count).
pub(crate) fn check_fit(model: &Model, data: &dyn Dataset, classes: usize) -> Result<(), DataSetupError> {
    let plan = model.plan(1, torchlet::Mode::Inference)?;
    let outputs = plan.output_shape().numel();
    if classes > outputs {
        return Err(DataSetupError::TooManyClasses {
            model: model.name.clone(),
            outputs,
            classes,
        });
    }
    if data.is_empty() {
        return Err(DataSetupError::Empty);
    }
    let (sample, _) = data.get(0)?;
    let t = sample.into_tensor("the data set")?;
    if t.shape != model.input.dims() {
        return Err(DataSetupError::ShapeMismatch {
            model: model.name.clone(),
            expected: model.input.dims().to_vec(),
            found: t.shape,
        });
    }
    Ok(())
}
