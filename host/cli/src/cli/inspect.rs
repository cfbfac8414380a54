//! `torchlet inspect MODEL`: what a model is, how big, and how much memory it needs.
//!
//! `MODEL` is a `.tlm` file (a model, a checkpoint or a state dict) or the name of a zoo model
//! (`tutorial-cnn`, for an untrained model of that architecture). Prints the model as
//! PyTorch's `print(model)` does, then each layer's output shape and parameter count, the
//! total, the file's size and checksum, the training state of a checkpoint, and the activation
//! arena for inference at batch 1 and for training at `--batch-size`, and the forward pass's
//! multiply-accumulates ([`torchlet::plan::Node::macs`]). `--json` prints the same as one
//! object: `parameters`, `state_floats`, `arena_inference_bytes` (batch 1),
//! `arena_training_bytes` and `training_batch_size`, `model_file_bytes` (the file given, or the
//! file a zoo model saves to), `macs_per_inference` (one sample), and `layers`, each with
//! `name`, `type`, `output_shape`, `parameters` and `macs`.
//!
//! A file that fails any check (truncated, corrupted, not a model file) is an error naming the
//! file and the part that is wrong, and the command exits with status 1.

use std::io::Write;
use std::path::Path;

use clap::Args;
use torchlet::model_file::{ModelFile, OptimizerRecord, TrainState};
use torchlet::Mode;

use crate::fsutil;
use crate::model::{Model, ModelError};
use crate::print::model_repr;

/// Arguments of `torchlet inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A model file (.tlm: model, checkpoint or state dict) or a zoo model name (tutorial-cnn,
    /// digits-cnn, lenet5, mcu-cnn, alexnet, vgg11, vgg16, resnet18).
    #[arg(value_name = "FILE|ZOO-NAME")]
    pub model: String,
    /// Batch size of the training arena estimate.
    #[arg(long, value_name = "N", default_value = "64", value_parser = batch_size, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// What `torchlet inspect --json` prints of a model (see the [module docs](self)).
fn summary(
    model: &Model,
    source: &str,
    file_bytes: usize,
    batch: usize,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let inference = model.plan(1, Mode::Inference)?;
    let training = model.plan(batch, Mode::Training)?;
    let paths = model.node_paths()?;
    let layers: Vec<serde_json::Value> = inference
        .nodes()
        .iter()
        .zip(&paths)
        .map(|(n, p)| {
            serde_json::json!({
                "name": p,
                "type": n.op_name,
                "output_shape": n.out_shape.dims(),
                "parameters": n.param_len(),
                "macs": n.macs(),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "model": model.name,
        "source": source,
        "input_shape": model.input.dims(),
        "output_shape": inference.output_shape().dims(),
        "classes": model.classes,
        "parameters": inference.param_len(),
        "state_floats": inference.state_len(),
        "model_file_bytes": file_bytes,
        "arena_inference_bytes": inference.arena_bytes(),
        "arena_training_bytes": training.arena_bytes(),
        "training_batch_size": batch,
        "macs_per_inference": inference.macs(),
        "layers": layers,
    }))
}

/// `--batch-size`: a whole number of at least 1.
fn batch_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1 (samples per training batch)".to_string()),
    }
}

/// Runs `torchlet inspect`, printing to `out`.
///
/// # Errors
/// A message naming the file (or zoo name) and what is wrong with it.
pub fn run(args: &InspectArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(&args.model);
    if !path.exists() {
        if let Some(z) = crate::zoo::find(&args.model) {
            let model = Model::from_zoo(z.name, 0)?;
            if args.json {
                let bytes = model.to_bytes()?.len();
                let v = summary(&model, "zoo", bytes, args.batch_size)?;
                writeln!(out, "{v}")?;
                return Ok(());
            }
            writeln!(
                out,
                "model: {} (zoo: {}; untrained, PyTorch's default initialisation)",
                z.name, z.description
            )?;
            describe(&model, out)?;
            writeln!(out, "file: none (zoo model)")?;
            writeln!(out, "checksum: n/a (zoo model)")?;
            return arenas(&model, args.batch_size, out);
        }
        if !args.model.contains(['/', '\\', '.']) {
            return Err(format!(
                "'{}' is neither a file nor a zoo model (zoo: {})",
                args.model,
                crate::zoo::names()
            )
            .into());
        }
    }
    let bytes = fsutil::read(path)?;
    let size = bytes.len();
    let file = ModelFile::parse(&bytes).map_err(|e| ModelError::file(path, e))?;
    let (crc, version) = (file.crc(), file.version());
    if file.is_state_dict() {
        if args.json {
            let tensors: Vec<serde_json::Value> = file
                .tensors()
                .map(|t| serde_json::json!({"name": t.name, "shape": t.shape.to_string(), "numel": t.numel}))
                .collect();
            let v = serde_json::json!({
                "source": path.display().to_string(),
                "kind": "state dict",
                "model_file_bytes": size,
                "crc32": crc,
                "tensors": tensors,
            });
            writeln!(out, "{v}")?;
            return Ok(());
        }
        return state_dict(path, size, &file, out);
    }
    if file.is_int8() {
        let q = crate::quant::QuantizedModel::from_bytes(&bytes, path)?;
        return int8(&q, path, (size, crc, version), args, out);
    }
    let kind = if file.train_state().is_some() {
        "checkpoint"
    } else {
        "whole model"
    };
    let train = file.train_state().map(|t| (t, file.optimizer_state_len()));
    let model = Model::from_bytes(bytes, path)?;
    if args.json {
        let mut v = summary(&model, &path.display().to_string(), size, args.batch_size)?;
        v["kind"] = serde_json::json!(kind);
        v["crc32"] = serde_json::json!(crc);
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(out, "model: {} ({kind}, {})", model.name, path.display())?;
    describe(&model, out)?;
    writeln!(
        out,
        "file: {} ({} bytes, format version {version}, {kind})",
        path.display(),
        group(size)
    )?;
    writeln!(out, "checksum: ok (crc32 {crc:#010x})")?;
    if let Some((t, opt_len)) = train {
        training_state(&t, opt_len, out)?;
    }
    arenas(&model, args.batch_size, out)
}

/// `inspect` of an int8 model file (`file`: its size, CRC and format version): the layers as
/// for an `f32` model, then the int8 sizes (weights, per-channel parameters, arena at batch 1).
fn int8(
    q: &crate::quant::QuantizedModel,
    path: &Path,
    (size, crc, version): (usize, u32, u16),
    args: &InspectArgs,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let model = q.meta_model()?;
    let lay = q.layout(1)?;
    if args.json {
        let mut v = summary(&model, &path.display().to_string(), size, args.batch_size)?;
        v["kind"] = serde_json::json!("int8 model");
        v["dtype"] = serde_json::json!("int8");
        v["crc32"] = serde_json::json!(crc);
        v["int8_weight_bytes"] = serde_json::json!(lay.weights);
        v["int8_param_bytes"] = serde_json::json!(lay.param_bytes());
        v["int8_arena_bytes"] = serde_json::json!(lay.ram_bytes());
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(out, "model: {} (int8 model, {})", model.name, path.display())?;
    describe(&model, out)?;
    writeln!(
        out,
        "file: {} ({} bytes, format version {version}, int8 model)",
        path.display(),
        group(size)
    )?;
    writeln!(out, "checksum: ok (crc32 {crc:#010x})")?;
    writeln!(
        out,
        "int8 parameters: {} bytes ({} bytes of weights + {} channels × 12 bytes of bias, multiplier, shift; f32: {})",
        group(lay.param_bytes()),
        group(lay.weights),
        group(lay.channels),
        bytes_human(4 * model.param_count())
    )?;
    writeln!(
        out,
        "int8 arena (inference, batch 1): {} bytes ({} bytes i8 + {} bytes i16 scratch; f32: {})",
        group(lay.ram_bytes()),
        group(lay.arena),
        group(2 * lay.scratch),
        bytes_human(model.plan(1, Mode::Inference)?.arena_bytes())
    )?;
    Ok(())
}

/// Input, classes, `print(model)`, the layer table and the totals.
fn describe(model: &Model, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    writeln!(out, "input: {}", model.input)?;
    if model.classes.is_empty() {
        writeln!(out, "classes: none named")?;
    } else {
        writeln!(out, "classes: {} ({})", model.classes.len(), model.classes.join(", "))?;
    }
    writeln!(out)?;
    writeln!(out, "{}", model_repr(model.layers()))?;
    writeln!(out)?;
    let plan = model.plan(1, Mode::Inference)?;
    let paths = model.node_paths()?;
    let rows: Vec<[String; 5]> = plan
        .nodes()
        .iter()
        .zip(&paths)
        .map(|(n, p)| {
            [
                p.clone(),
                n.op_name.to_string(),
                n.out_shape.to_string(),
                group(n.param_len()),
                group(n.macs() as usize),
            ]
        })
        .collect();
    let header = ["layer", "type", "output shape (per sample)", "parameters", "MACs"].map(String::from);
    let mut w = [0usize; 5];
    for r in rows.iter().chain(std::iter::once(&header)) {
        for (k, c) in r.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "total parameters: {} ({} as f32)",
        group(plan.param_len()),
        bytes_human(4 * plan.param_len())
    )?;
    if plan.state_len() > 0 {
        writeln!(
            out,
            "buffers (BatchNorm running statistics): {} floats",
            group(plan.state_len())
        )?;
    }
    writeln!(out, "output: {} per sample", plan.output_shape())?;
    writeln!(
        out,
        "multiply-accumulates per inference: {}",
        group(plan.macs() as usize)
    )?;
    Ok(())
}

/// Activation arena for inference at batch 1 and training at `batch`.
fn arenas(model: &Model, batch: usize, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let inference = model.plan(1, Mode::Inference)?;
    let training = model.plan(batch, Mode::Training)?;
    for (what, b, plan) in [("inference", 1, &inference), ("training", batch, &training)] {
        writeln!(
            out,
            "arena ({what}, batch {b}): {} bytes ({})",
            group(plan.arena_bytes()),
            bytes_human(plan.arena_bytes())
        )?;
    }
    Ok(())
}

fn training_state(t: &TrainState, opt_len: usize, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let best = if t.best_metric.is_nan() {
        "none".to_string()
    } else {
        t.best_metric.to_string()
    };
    writeln!(
        out,
        "training state: epoch {}, step {}, best metric {best}",
        t.epoch, t.step
    )?;
    let opt = match t.optimizer {
        OptimizerRecord::None => "none".to_string(),
        OptimizerRecord::Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        } => format!(
            "SGD(lr={lr}, momentum={momentum}, dampening={dampening}, weight_decay={weight_decay}, nesterov={nesterov})"
        ),
        OptimizerRecord::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled_weight_decay,
        } => format!(
            "{}(lr={lr}, betas=({beta1}, {beta2}), eps={eps}, weight_decay={weight_decay}, amsgrad={amsgrad})",
            if decoupled_weight_decay { "AdamW" } else { "Adam" }
        ),
    };
    writeln!(
        out,
        "optimizer: {opt}, {} steps, {} floats of state",
        t.optimizer_steps,
        group(opt_len)
    )?;
    Ok(())
}

/// A state dict: its tensor table.
fn state_dict(
    path: &Path,
    size: usize,
    file: &ModelFile<'_>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    writeln!(
        out,
        "state dict: {} ({} tensors, no architecture)",
        path.display(),
        file.tensor_count()
    )?;
    let mut total = 0;
    for t in file.tensors() {
        writeln!(out, "  {:<32} {:<16} {}", t.name, t.shape.to_string(), group(t.numel))?;
        total += t.numel;
    }
    writeln!(out, "total: {} floats", group(total))?;
    writeln!(
        out,
        "file: {} ({} bytes, format version {})",
        path.display(),
        group(size),
        file.version()
    )?;
    writeln!(out, "checksum: ok (crc32 {:#010x})", file.crc())?;
    Ok(())
}

/// `145578` as `145,578`.
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in KiB or MiB with one decimal.
fn bytes_human(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(145_578), "145,578");
        assert_eq!(group(12_345_678), "12,345,678");
    }

    #[test]
    fn batch_size_must_be_a_positive_number() {
        assert_eq!(batch_size("64"), Ok(64));
        assert!(batch_size("0").is_err());
        assert!(batch_size("abc").is_err());
        assert!(batch_size("-3").is_err());
    }
}
