//! # torchlet-host: the desktop side of torchlet
//!
//! Datasets, model files and the command line around the `no_std` core:
//!
//! - [`data`]: datasets (CIFAR-10, MNIST, ImageFolder, digits, custom), `DataLoader`, samplers;
//! - [`transforms`]: torchvision's transforms, with its names and semantics;
//! - [`digits`]: the embedded digits set, the default data of the README's first command;
//! - [`model`]: saving and loading whole models (`.tlm`), state dicts and checkpoints that
//!   resume training exactly, all written atomically ([`fsutil`]);
//! - [`summary`]: `SummaryWriter`, TensorBoard event files (scalars, images, histograms, graphs);
//! - [`zoo`]: architectures known by name (`tutorial-cnn`, `digits-cnn`);
//! - [`mod@print`]: a model as PyTorch's `print(model)` shows it;
//! - [`kernels`]: matrix multiplies for this CPU's vector units (AVX2 + FMA), chosen at run time;
//! - [`train`]: the training loop of `torchlet train` ([`train::fit`]);
//! - [`cli`]: the `torchlet` command line (`train`, `eval`, `predict`, `inspect`).
// `deny`, not `forbid`: `kernels` (its x86 micro-kernel only) is the one module allowed `unsafe`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod data;
pub mod digits;
pub mod fsutil;
pub mod kernels;
pub mod mem;
pub mod model;
pub mod print;
pub mod summary;
pub mod train;
pub mod transforms;
pub mod zoo;
