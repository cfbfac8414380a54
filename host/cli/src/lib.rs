//! # torchlet-host: the desktop side of torchlet
//!
//! Model files, the zoo, the training loop and the command line around the `no_std` core. The
//! data pipeline and the TensorBoard writer are crates of their own, which this one re-exports
//! under their old paths; depend on them directly to use one without compiling wgpu and clap:
//!
//! - [`data`]: datasets (CIFAR-10, MNIST, ImageFolder, digits, custom), `DataLoader`, samplers
//!   (the `torchlet-data` crate);
//! - [`transforms`]: torchvision's transforms, with its names and semantics (`torchlet-data`);
//! - [`digits`]: the embedded digits set, the default data of the README's first command
//!   (`torchlet-data`);
//! - [`pytorch`]: importing PyTorch state dicts (`torch.save` zips, `.safetensors`);
//! - [`model`]: saving and loading whole models (`.tlm`), state dicts and checkpoints that
//!   resume training exactly, all written atomically ([`fsutil`]);
//! - [`summary`]: `SummaryWriter`, TensorBoard event files (scalars, images, histograms, graphs)
//!   (the `torchlet-tensorboard` crate);
//! - [`zoo`]: architectures known by name (`tutorial-cnn`, `digits-cnn`);
//! - [`mod@print`]: a model as PyTorch's `print(model)` shows it;
//! - [`confusion_png`]: the confusion matrix as a picture (`eval --confusion-png`, TensorBoard);
//! - [`kernels`]: matrix multiplies for this CPU's vector units (AVX2 + FMA), chosen at run time;
//! - [`train`]: the training loop of `torchlet train` ([`train::fit`]);
//! - [`scratch`]: temporary folders removed on every exit path;
//! - [`cli`]: the `torchlet` command line (`train`, `eval`, `predict`, `inspect`).
// `deny`, not `forbid`: `kernels` (its x86 micro-kernel only) is the one module allowed `unsafe`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod confusion_png;
pub mod fsutil;
pub mod kernels;
pub mod mem;
pub mod model;
pub mod onnx;
pub mod print;
pub mod pytorch;
pub mod quant;
pub mod scratch;
pub mod train;
pub mod zoo;

pub use torchlet_data as data;
pub use torchlet_data::{digits, transforms};
pub use torchlet_tensorboard as summary;
