//! The `torchlet` command line: one module per subcommand, parsed with clap's derive API.
//!
//! `main.rs` only parses [`Cli`] and calls [`run`]; each subcommand prints to the writer it is
//! given, so tests can run it in-process too.

pub mod inspect;

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
}

/// Runs a parsed command line, printing to `out`.
///
/// # Errors
/// The subcommand's error, as a message for the user.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args, out),
    }
}
