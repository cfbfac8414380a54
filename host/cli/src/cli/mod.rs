//! The `torchlet` command line: one module per subcommand, parsed with clap's derive API.
//!
//! `main.rs` only parses [`Cli`] and calls [`run`]; each subcommand prints to the writer it is
//! given, so tests can run it in-process too.

pub mod bench;
pub mod board;
pub mod dataset;
pub mod emulate;
pub mod eval;
pub mod export;
pub mod import;
pub mod import_onnx;
pub mod inspect;
pub mod left_out;
pub mod predict;
pub mod quantize;
pub mod run_dir;
pub mod run_record;
pub mod size_report;
pub mod train;

use std::io::Write;

use clap::{Parser, Subcommand};

/// `torchlet`: train, inspect and run torchlet models.
#[derive(Debug, Parser)]
#[command(name = "torchlet", version, about = "Train, inspect and run torchlet models", long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a model as PyTorch's print(model) does, with shapes, parameters, file and memory.
    Inspect(inspect::InspectArgs),
    /// Train a zoo model on a data set (default: digits-cnn on the embedded digits).
    Train(Box<train::TrainArgs>),
    /// Measure a saved model on a data set: loss, accuracy, per-class accuracy, confusion matrix.
    Eval(eval::EvalArgs),
    /// Classify image files, or the images in folders, with a saved model (top-k classes with
    /// probabilities).
    Predict(predict::PredictArgs),
    /// Write a model-region image for the Cortex-M firmware (flash it at the region's address).
    Export(export::ExportArgs),
    /// Import a model trained elsewhere as a .tlm model: an ONNX file (as torch.onnx.export
    /// writes it), or PyTorch weights (a torch.save state dict or .safetensors) into a zoo
    /// architecture.
    Import(import::ImportArgs),
    /// Quantise a trained model to int8 (post-training, calibrated on training images).
    Quantize(quantize::QuantizeArgs),
    /// Run a model on the Cortex-M firmware under qemu-system-arm and compare with the host.
    Emulate(emulate::EmulateArgs),
    /// Measure training and inference speed (images/s) and batch-1 latency on this CPU.
    Bench(bench::BenchArgs),
}

/// Runs a parsed command line, printing to `out`.
///
/// # Errors
/// The subcommand's error, as a message for the user.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Train(args) => train::run(&args, out).map_err(|e| dataset::suggest_skip_bad(e, args.skip_bad)),
        Command::Eval(args) => eval::run(&args, out).map_err(|e| dataset::suggest_skip_bad(e, args.skip_bad)),
        Command::Predict(args) => predict::run(&args, out),
        Command::Export(args) => export::run(&args, out),
        Command::Import(args) => import::run(&args, out),
        Command::Quantize(args) => quantize::run(&args, out),
        Command::Emulate(args) => emulate::run(&args, out),
        Command::Bench(args) => bench::run(&args, out),
    }
}
