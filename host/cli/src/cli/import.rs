//! `torchlet import FILE --arch ZOO-NAME --out m.tlm [--num-classes N] [--non-strict]`: a
//! model from weights trained elsewhere, written as a whole `.tlm` model.
//!
//! The file's extension picks the reader:
//! - `.pth`, `.pt`, `.bin` (or any other): a PyTorch `state_dict` saved with `torch.save`,
//!   read by a restricted unpickler that accepts only what `torch.load(weights_only=True)`
//!   accepts ([`crate::pytorch`]);
//! - `.safetensors`: a state dict saved with `safetensors.torch.save_file`;
//! - `.onnx`: an ONNX file, architecture and weights ([`super::import_onnx`]); only `--out` and
//!   `--classes` apply.
//!
//! A state dict holds weights without the architecture: `--arch` names the zoo model to load
//! them into, adapted as `torchlet train` adapts it (`--num-classes` resizes the head,
//! `--input CxHxW` sets the input channels and size). Loading is strict by default (every
//! name and shape must match, with [`crate::model::Model::load_state_dict`]'s messages);
//! `--non-strict` loads what matches and reports the rest. The model is written atomically.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::model::Model;
use crate::pytorch::Format;
use crate::zoo::ZooConfig;

/// `torchlet import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The weights: a PyTorch state dict (`.pth`, `.pt`, `.bin`: torch.save; `.safetensors`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The zoo architecture the state dict was trained for (`torchlet inspect NAME` shows it).
    #[arg(long, value_name = "ZOO-NAME")]
    pub arch: Option<String>,
    /// Where to write the model (`.tlm`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Outputs of the classifier head, if not the zoo's (as torchvision's `num_classes`).
    #[arg(long, value_name = "N", value_parser = super::train::num_classes, allow_negative_numbers = true)]
    pub num_classes: Option<usize>,
    /// The input shape of one sample, `CxHxW` (e.g. `1x28x28`), if not the zoo model's.
    #[arg(long, value_name = "CxHxW", value_parser = chw)]
    pub input: Option<(usize, usize, usize)>,
    /// The class names, comma-separated, one per output.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Load the tensors whose names match and report the missing and unexpected ones instead
    /// of refusing the file (`load_state_dict(..., strict=False)`); shapes must still match.
    #[arg(long)]
    pub non_strict: bool,
}

/// `CxHxW`, each at least 1.
fn chw(s: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<&str> = s.split(['x', 'X']).collect();
    match parts.as_slice() {
        [c, h, w] => match (c.parse::<usize>(), h.parse::<usize>(), w.parse::<usize>()) {
            (Ok(c), Ok(h), Ok(w)) if c >= 1 && h >= 1 && w >= 1 => Ok((c, h, w)),
            _ => Err(format!(
                "expected CxHxW with whole numbers of at least 1 (e.g. 3x32x32), found '{s}'"
            )),
        },
        _ => Err(format!("expected CxHxW (e.g. 3x32x32), found '{s}'")),
    }
}

/// Runs `torchlet import`.
///
/// # Errors
/// An unknown extension, a missing `--arch`, the zoo's errors, the import's errors (naming the
/// file and tensor), class names that do not match the outputs, or the save's error.
pub fn run(args: &ImportArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let is_onnx = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if is_onnx {
        // An ONNX file carries its architecture, input shape and head.
        let flags = [
            (args.arch.is_some(), "--arch"),
            (args.num_classes.is_some(), "--num-classes"),
            (args.input.is_some(), "--input"),
            (args.non_strict, "--non-strict"),
        ];
        if let Some((_, flag)) = flags.iter().find(|(set, _)| *set) {
            return Err(format!(
                "{flag} applies to state dicts (.pth, .safetensors); {} is an ONNX file, which carries its \
                 architecture: use only --out and --classes",
                args.file.display()
            )
            .into());
        }
        return super::import_onnx::run(&args.file, &args.out, args.classes.clone(), out);
    }
    let arch = args.arch.as_deref().ok_or_else(|| {
        format!(
            "{}: a state dict holds weights without the architecture: name it with --arch ZOO-NAME (one of: {})",
            args.file.display(),
            crate::zoo::names()
        )
    })?;
    let config = ZooConfig {
        channels: args.input.map(|(c, _, _)| c),
        size: args.input.map(|(_, h, w)| (h, w)),
        num_classes: args.num_classes,
    };
    let mut model = crate::zoo::build(arch, &config, 0)?;
    let report = model.load_pytorch_state_dict(&args.file, !args.non_strict)?;
    if let Some(classes) = &args.classes {
        set_classes(&mut model, classes)?;
    }
    model.save(&args.out)?;
    let format = match Format::of(&args.file) {
        Format::Pth => "PyTorch state dict",
        Format::Safetensors => "safetensors state dict",
    };
    let tensors = model.state_dict_bytes().map(|b| count_tensors(&b)).unwrap_or(0);
    let loaded = tensors.saturating_sub(report.missing.len());
    writeln!(
        out,
        "imported {} ({format}) into {} ({} parameters, input {}): {loaded} of {tensors} tensors loaded",
        args.file.display(),
        model.name,
        model.param_count(),
        model.input,
    )?;
    if !report.missing.is_empty() {
        writeln!(
            out,
            "missing in the file (kept their initial values): {}",
            report.missing.join(", ")
        )?;
    }
    if !report.unexpected.is_empty() {
        writeln!(
            out,
            "unexpected in the file (ignored): {}",
            report.unexpected.join(", ")
        )?;
    }
    writeln!(out, "wrote {}", args.out.display())?;
    Ok(())
}

/// The model's tensor count (parameters and state) from its state dict's bytes.
fn count_tensors(bytes: &[u8]) -> usize {
    torchlet::model_file::ModelFile::parse(bytes).map_or(0, |f| f.tensors().count())
}

/// Sets `--classes`, one per output.
fn set_classes(model: &mut Model, classes: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let outputs = model.plan(1, torchlet::Mode::Inference)?.output_shape().numel();
    if classes.len() != outputs {
        return Err(format!(
            "--classes names {} classes, the model '{}' has {outputs} outputs (--num-classes changes them)",
            classes.len(),
            model.name,
        )
        .into());
    }
    model.classes = classes.to_vec();
    Ok(())
}
