//! `torchlet import m.onnx --out m.tlm [--classes a,b,...]`: an ONNX file as a torchlet model
//! file ([`crate::onnx::import`]). The model is written atomically; on an error nothing is.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::model::Model;

/// Arguments of `torchlet import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The ONNX file (as `torch.onnx.export` or `torchlet export --target onnx` writes it).
    #[arg(value_name = "MODEL.onnx")]
    pub input: PathBuf,
    /// The torchlet model file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The class names, comma-separated, one per output (default: 0..N-1).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
}

/// Runs `torchlet import`.
///
/// # Errors
/// The import error (naming the file and the first unsupported node) or the write error.
pub fn run(args: &ImportArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::from_onnx(&args.input, args.classes.clone())?;
    model.save(&args.out)?;
    writeln!(
        out,
        "imported {} as {}: {} layers, {} parameters, input {:?}, {} classes; wrote {}",
        args.input.display(),
        model.name,
        model.node_paths()?.len(),
        model.param_count(),
        model.input.dims(),
        model.classes.len(),
        args.out.display()
    )?;
    Ok(())
}
