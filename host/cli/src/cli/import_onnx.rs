//! `torchlet import m.onnx --out m.tlm [--classes a,b,...]` (dispatched by [`super::import`]):
//! an ONNX file as a torchlet model file ([`crate::onnx::import`]). The model is written
//! atomically; on an error nothing is.

use std::io::Write;
use std::path::Path;

use crate::model::Model;

/// Imports the ONNX file `input` as a model with `classes` (default `0..N-1`) and writes it to
/// `out_path`, atomically.
///
/// # Errors
/// The import error (naming the file and the first unsupported node) or the write error.
pub fn run(
    input: &Path,
    out_path: &Path,
    classes: Option<Vec<String>>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::from_onnx(input, classes)?;
    model.save(out_path)?;
    writeln!(
        out,
        "imported {} as {}: {} layers, {} parameters, input {:?}, {} classes; wrote {}",
        input.display(),
        model.name,
        model.node_paths()?.len(),
        model.param_count(),
        model.input.dims(),
        model.classes.len(),
        out_path.display()
    )?;
    Ok(())
}
