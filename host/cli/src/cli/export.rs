//! `torchlet export --target firmware --model FILE --out model.bin`: the image of a board's
//! model region; `torchlet export --target onnx --model FILE --out model.onnx [--opset N]`: the
//! model as ONNX ([`crate::onnx`]).
//!
//! The firmware (`firmware/`) keeps the model in its own flash region (`MODEL` in
//! `firmware/memory/<board>.x`), written independently of the firmware: replacing the model
//! never rebuilds or reflashes the program. This command writes exactly what goes there: the
//! model as a whole-model `.tlm` file (a checkpoint loses its optimizer state; the bytes are
//! validated again with the core reader the firmware uses), padded with `0xFF` (erased flash)
//! to a whole number of [`REGION_ALIGN`] bytes. The file is written atomically.
//!
//! Then flash it at the region's address (`probe-rs download --binary-format bin
//! --base-address 0x08040000 model.bin` on an STM32F405 board) or load it in QEMU
//! (`-device loader,file=model.bin,addr=0x00200000` on mps2-an386); `docs/firmware.md` has
//! the addresses. `--model` also takes a zoo name (`digits-cnn`, `tutorial-cnn`: untrained).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use torchlet::model_file::ModelFile;
use torchlet::Mode;

use crate::fsutil;
use crate::model::Model;

/// The region image's length is a multiple of this (bytes); `REGION_ALIGN` in
/// `firmware/src/region.rs`.
pub const REGION_ALIGN: usize = 1024;

/// Bytes of the model region of the default board (mps2-an386, `firmware/memory/mps2-an386.x`).
pub const MPS2_MODEL_REGION: usize = 1536 * 1024;

/// Where `torchlet export` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportTarget {
    /// The model region of the Cortex-M firmware in `firmware/`.
    Firmware,
    /// An ONNX file (IR version 8, `--opset`, 17 by default), as `torch.onnx.export` writes.
    Onnx,
}

/// Arguments of `torchlet export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What the image is for.
    #[arg(long, value_enum, default_value = "firmware")]
    pub target: ExportTarget,
    /// The model: a .tlm file (a model or a checkpoint) or a zoo name (untrained).
    #[arg(long, value_name = "FILE|ZOO-NAME")]
    pub model: String,
    /// The region image to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Bytes of the board's model region (mps2-an386: 1572864; STM32F405: 655360).
    #[arg(long, value_name = "BYTES", default_value_t = MPS2_MODEL_REGION, allow_negative_numbers = true)]
    pub region_size: usize,
    /// The ONNX operator set (`--target onnx`): 14 to 21.
    #[arg(long, value_name = "N", default_value_t = crate::onnx::DEFAULT_OPSET, allow_negative_numbers = true)]
    pub opset: i64,
}

/// Loads `model` as `torchlet export --model` and `torchlet emulate --model` take it: a `.tlm`
/// file, or a zoo name when no such file exists.
///
/// # Errors
/// The file's error (naming it and the part that is wrong), or an unknown name.
pub fn load_model(model: &str) -> Result<Model, Box<dyn std::error::Error>> {
    let path = Path::new(model);
    if !path.exists() {
        if let Some(z) = crate::zoo::find(model) {
            return Ok(Model::from_zoo(z.name, 0)?);
        }
        return Err(format!(
            "--model {model}: no such file, and not a zoo model ({})",
            crate::zoo::names()
        )
        .into());
    }
    Ok(Model::load(path)?)
}

/// The model-region image of `model`: its whole-model file, validated, padded with `0xFF` to
/// a multiple of [`REGION_ALIGN`]. Returns the image and the model file's length.
///
/// # Errors
/// A model that does not encode or plan, or an image larger than `region_size` bytes.
pub fn region_image(model: &Model, region_size: usize) -> Result<(Vec<u8>, usize), Box<dyn std::error::Error>> {
    let mut bytes = model.to_bytes()?;
    // What the firmware will check at boot, checked here first.
    let file = ModelFile::parse(&bytes).map_err(|e| format!("the exported model file does not validate: {e}"))?;
    let plan = model.plan(1, Mode::Inference)?;
    file.check_plan(&*plan)
        .map_err(|e| format!("the exported model file does not match its plan: {e}"))?;
    let len = bytes.len();
    let padded = len.div_ceil(REGION_ALIGN) * REGION_ALIGN;
    if padded > region_size {
        return Err(format!(
            "model {} needs {padded} bytes of flash ({len} bytes of model file), more than the {region_size} bytes \
             of the model region (--region-size)",
            model.name
        )
        .into());
    }
    bytes.resize(padded, 0xFF);
    Ok((bytes, len))
}

/// Runs `torchlet export`, printing a summary to `out`.
///
/// # Errors
/// A message naming the model file or the output file and what is wrong.
pub fn run(args: &ExportArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    match args.target {
        ExportTarget::Onnx => {
            let model = load_model(&args.model)?;
            let bytes = model.to_onnx(args.opset)?;
            fsutil::write_atomic(&args.out, &bytes)?;
            writeln!(
                out,
                "wrote {}: model {} ({} parameters) as ONNX (IR version {}, opset {}), {} bytes; \
                 input `input` [batch, {}], output `logits`",
                args.out.display(),
                model.name,
                model.param_count(),
                crate::onnx::IR_VERSION,
                args.opset,
                bytes.len(),
                model
                    .input
                    .dims()
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
            Ok(())
        }
        ExportTarget::Firmware => {
            let model = load_model(&args.model)?;
            let plan = model.plan(1, Mode::Inference)?;
            let (image, len) = region_image(&model, args.region_size)?;
            fsutil::write_atomic(&args.out, &image)?;
            writeln!(
                out,
                "wrote {}: model {} ({} parameters), {len} bytes of model file padded to {} bytes",
                args.out.display(),
                model.name,
                model.param_count(),
                image.len()
            )?;
            writeln!(
                out,
                "arena (inference, batch 1): {} bytes; input {:?}, {} classes",
                plan.arena_bytes(),
                model.input.dims(),
                model.classes.len()
            )?;
            writeln!(
                out,
                "load it at the model region: QEMU mps2-an386 `-device loader,file={},addr=0x00200000`; \
                 STM32F405 `probe-rs download --chip STM32F405RGTx --binary-format bin --base-address 0x08040000 {}`",
                args.out.display(),
                args.out.display()
            )?;
            Ok(())
        }
    }
}
