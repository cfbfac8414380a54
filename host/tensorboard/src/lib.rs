//! # torchlet-tensorboard: TensorBoard logs for torchlet
//!
//! [`SummaryWriter`], as PyTorch's `torch.utils.tensorboard.SummaryWriter`, and a [`reader`]
//! for the files it writes. It depends on the core only (`add_graph` plans the model's layers
//! to draw them), so a training loop of your own can log to TensorBoard without compiling the
//! GPU crate (wgpu) or the command line (clap). `torchlet-host` re-exports it as
//! `torchlet_host::summary`.
//!
//! Use it to watch a training run in TensorBoard, the viewer PyTorch users already know: loss
//! curves, sample images, histograms of weights, the model's graph, hyperparameters. The files
//! are real TensorBoard event files, read by TensorBoard itself (the tests start it and read
//! everything back through its HTTP API and its `EventAccumulator`):
//!
//! ```
//! use torchlet_tensorboard::{graph, DataFormat, HParam, SummaryWriter};
//! use torchlet::{layer::*, Shape};
//!
//! static NET: [Layer; 3] = [flatten(), linear(4, 8), linear(8, 2)];
//! let dir = tempfile::tempdir()?;
//! let mut writer = SummaryWriter::new(dir.path().join("runs/exp1"))?; // or SummaryWriter::with_comment("")
//! writer.add_graph(&NET, Shape::chw(1, 2, 2), &graph::class_name)?; // or torchlet_host::print::op_repr
//! for step in 0..100 {
//!     let loss = 1.0 / (1.0 + step as f32);
//!     writer.add_scalar("Loss/train", loss, step)?;
//! }
//! writer.add_image("digit", &[0.0f32, 0.5, 1.0, 0.25], &[1, 2, 2], DataFormat::Chw, 99)?;
//! writer.add_histogram("linear.weight", &[0.1, -0.2, 0.3], 99)?;
//! writer.add_text("notes", "**lr** = 0.1", 0)?;
//! let hparams = [("lr", HParam::from(0.1)), ("batch_size", 64.into()), ("optimizer", "sgd".into())];
//! writer.add_hparams(&hparams, &[("hparam/accuracy", 0.9)], None)?;
//! writer.close()?; // also on drop, but then errors can only be printed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! then `tensorboard --logdir runs` (README: "Watching training in TensorBoard").
//!
//! | PyTorch | torchlet |
//! |---|---|
//! | `SummaryWriter()` / `SummaryWriter("runs/exp1")` | [`SummaryWriter::with_comment("")`](SummaryWriter::with_comment) / [`SummaryWriter::new`] |
//! | `add_scalar(tag, v, step)` (`walltime=`) | [`add_scalar`](SummaryWriter::add_scalar) ([`add_scalar_with_walltime`](SummaryWriter::add_scalar_with_walltime)) |
//! | `add_scalars(main_tag, {"a": v, ...}, step)` | [`add_scalars`](SummaryWriter::add_scalars) |
//! | `add_image(tag, img, step, dataformats="CHW")` | [`add_image`](SummaryWriter::add_image) |
//! | `add_images(tag, batch, step)` | [`add_images`](SummaryWriter::add_images) |
//! | `add_histogram(tag, values, step)` | [`add_histogram`](SummaryWriter::add_histogram) |
//! | `add_text(tag, text, step)` | [`add_text`](SummaryWriter::add_text) |
//! | `add_hparams(hparams, metrics)` | [`add_hparams`](SummaryWriter::add_hparams) |
//! | `add_graph(model, input)` | [`add_graph`](SummaryWriter::add_graph) (with how to describe a layer) |
//! | `flush()`, `close()` | [`flush`](SummaryWriter::flush), [`close`](SummaryWriter::close) (and drop) |
//!
//! ## The files
//!
//! A log directory holds `events.out.tfevents.<unix time>.<hostname>.<pid>.<n>` files
//! ([`event_file`]): TFRecord framing with masked CRC-32C checksums ([`record`]) around
//! `Event` protocol buffers ([`proto`], declared by hand with `prost`, no `protoc`). The first
//! event of each file carries `file_version = "brain.Event:2"`. [`reader`] reads them back.
//!
//! ## Durability
//!
//! Events are buffered; nothing is lost when the program ends normally (drop closes the files),
//! but `std::process::exit`, an abort or a writer kept in a leaked `static` skip drop: call
//! [`SummaryWriter::close`] (or `flush`) before those. Errors are returned to the caller:
//! an unwritable log directory from [`SummaryWriter::new`], a full disk from the `add_*`,
//! `flush` or `close` call that met it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod event_file;
pub mod graph;
pub mod histogram;
pub mod hparams;
pub mod image;
pub mod proto;
pub mod reader;
pub mod record;
mod writer;

use std::path::PathBuf;

pub use error::SummaryError;
pub use hparams::HParam;
pub use image::{DataFormat, Pixels};
pub use writer::SummaryWriter;

/// PyTorch's default log directory: `runs/<Mon><DD>_<HH>-<MM>-<SS>_<hostname><comment>` in
/// local time, e.g. `runs/Nov26_21-30-00_host` (`datetime.now().strftime("%b%d_%H-%M-%S")`).
pub fn default_log_dir(comment: &str) -> PathBuf {
    let time = chrono::Local::now().format("%b%d_%H-%M-%S");
    PathBuf::from("runs").join(format!("{time}_{}{comment}", event_file::hostname()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_log_dir_looks_like_pytorchs() {
        let dir = default_log_dir("_lr0.1");
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(dir.parent().unwrap(), std::path::Path::new("runs"));
        // "Nov26_21-30-00_<host>_lr0.1"
        let b = name.as_bytes();
        assert!(b[..3].iter().all(u8::is_ascii_alphabetic), "{name}");
        assert!(b[3..5].iter().all(u8::is_ascii_digit), "{name}");
        assert_eq!((b[5], b[8], b[11], b[14]), (b'_', b'-', b'-', b'_'), "{name}");
        assert!(name.ends_with(&format!("_{}_lr0.1", event_file::hostname())), "{name}");
    }
}
