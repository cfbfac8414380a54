//! `torchlet predict`: classify image files with a saved model (the tutorial's validation step).
//!
//! The arguments are image files and folders, mixed as you like. A folder stands for the image
//! files in it and in its subfolders one level down (`DIR/*.png`, `DIR/CLASS/*.png`: a flat
//! folder or a folder per class as `train` reads it; deeper folders are not read), sorted by
//! path, listed by [`crate::data::image_files`]: a file counts when its extension names a format
//! the `image` crate reads here; symbolic links never lead out of the folder and never round a
//! cycle (those left out are listed on stderr); an image name on a FIFO, device or socket is
//! reported on its own line, never opened. A folder without image files is an error naming it.
//!
//! One input that cannot be read (a missing or corrupt image, an empty folder) gets its own
//! `error:` line on stderr and the others are still classified; the run then exits with status 1
//! and a count ("1 of 3 images could not be read").
//!
//! Each image is opened with the `image` crate (any format it reads), converted to RGB or to
//! gray as the model's input channels need, resized to the model's input (`Resize((H, W))`),
//! turned into a tensor (`ToTensor`) and run in eval mode; the top-k classes are printed by
//! name with their softmax probabilities. `--json` prints one JSON object a line: `file`,
//! `class`, `probability`, `top_k` (a list of `{class, probability}`) and `device`.
//!
//! `--device cpu|gpu|auto` (default `auto`, see [`crate::train::gpu`]) picks where the forward
//! passes run; on a GPU the images go up in batches of [`GPU_BATCH`]. The chosen device is
//! printed to stderr, so that stdout keeps one line per image.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use torchlet::Mode;

use crate::data::image_files::{image_extensions, ImageFiles};
use crate::data::Sample;
use crate::model::Model;
use crate::train::gpu::{choose, Compute};
use crate::transforms::{Resize, ToTensor, Transform};

/// Images per forward pass on a GPU.
pub const GPU_BATCH: usize = 64;

/// Arguments of `torchlet predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file (.tlm: a model or a checkpoint).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The images to classify: image files, or folders standing for the image files in them
    /// and in their subfolders one level down (sorted by path).
    #[arg(value_name = "IMAGE|DIR", required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, value_name = "K", default_value = "3", value_parser = super::train::positive, allow_negative_numbers = true)]
    pub top_k: usize,
    /// Print one JSON object a line.
    #[arg(long)]
    pub json: bool,
    /// Where to run the model: cpu, gpu (any adapter, software ones included) or auto (a
    /// hardware GPU if there is one, else the CPU).
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = crate::train::gpu::parse_device)]
    pub device: torchlet_gpu::Selection,
}

/// The softmax of `logits`, computed stably.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|&v| (v / sum) as f32).collect()
}

/// The image files the arguments name: files as given, each folder replaced by its image files
/// ([`ImageFiles::scan`]), and how many folders failed. A folder that cannot be read or holds no
/// image files gets an `error:` line on stderr; links a scan did not follow are listed there.
fn expand(args: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let (mut files, mut failed) = (Vec::new(), 0usize);
    for arg in args {
        if !arg.is_dir() {
            files.push(arg.clone());
            continue;
        }
        let found = match ImageFiles::scan(arg) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let _ = super::left_out::print_links(&mut std::io::stderr(), &found.skipped_links);
        if found.files.is_empty() {
            eprintln!(
                "error: {}: is a directory without image files in it or in its subfolders \
                 (extensions read: {})",
                arg.display(),
                image_extensions()
            );
            failed += 1;
        }
        files.extend(found.files);
    }
    (files, failed)
}

/// `image::open` through [`crate::fsutil::open_regular`], so a FIFO or device is an error, not
/// a hang: the format from the extension, else from the content.
fn open_image(path: &Path) -> Result<image::DynamicImage, Box<dyn std::error::Error>> {
    let file = crate::fsutil::open_regular(path).map_err(|e| e.source)?;
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file));
    match image::ImageFormat::from_path(path) {
        Ok(format) => reader.set_format(format),
        Err(_) => reader = reader.with_guessed_format()?,
    }
    Ok(reader.decode()?)
}

/// The image at `path` as the model's input tensor `[C, H, W]`.
fn load(model: &Model, path: &Path) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let dims = model.input.dims();
    let [c, h, w] = dims[..] else {
        return Err(format!("model {} does not take images (input {dims:?})", model.name).into());
    };
    let img = open_image(path).map_err(|e| format!("{}: cannot open the image: {e}", path.display()))?;
    let img = match c {
        1 => image::DynamicImage::ImageLuma8(img.to_luma8()),
        3 => image::DynamicImage::ImageRgb8(img.to_rgb8()),
        _ => return Err(format!("model {} takes {c}-channel inputs, not images", model.name).into()),
    };
    let mut rng = torchlet::Rng::new(0);
    let x = Resize::new((h, w)).apply(Sample::Image(img), &mut rng)?;
    let t = ToTensor.apply(x, &mut rng)?.into_tensor("ToTensor")?;
    Ok(t.data)
}

/// Runs `torchlet predict`, printing each image's top-k classes to `out`.
///
/// # Errors
/// A message naming the model that cannot be read; or, after the other images are classified,
/// one counting the images and folders that could not be read (each named on stderr already).
pub fn run(args: &PredictArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let (model, int8) = match crate::quant::AnyModel::load(&args.model)? {
        crate::quant::AnyModel::F32(m) => (*m, None),
        crate::quant::AnyModel::Int8(q) => (q.meta_model()?, Some(q)),
    };
    let choice = match &int8 {
        Some(_) => None,
        None => Some(choose(args.device, &model, None)?),
    };
    if let Some(warning) = choice.as_ref().and_then(|c| c.warning()) {
        eprintln!("{warning}");
    }
    match &choice {
        Some(c) => eprintln!("predict: device {c}"),
        None => eprintln!("predict: device cpu (int8 executor)"),
    }
    let device = match choice.as_ref().map(|c| &c.compute) {
        Some(Compute::Gpu(_)) => "gpu",
        _ => "cpu",
    };
    // One unreadable image gets its own error line; the others are still classified, and the
    // exit status says something failed.
    let (files, bad_folders) = expand(&args.images);
    let (mut paths, mut inputs, mut failed) = (Vec::new(), Vec::new(), 0usize);
    for path in &files {
        match load(&model, path) {
            Ok(x) => {
                paths.push(path);
                inputs.push(x);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    let logits = match (&int8, choice.as_ref().map(|c| &c.compute)) {
        (Some(q), _) => inputs.iter().map(|x| q.forward(x)).collect::<Result<Vec<_>, _>>()?,
        (None, Some(Compute::Gpu(dev))) => forward_gpu(&model, dev, &inputs)?,
        (None, _) => inputs.iter().map(|x| model.forward(x)).collect::<Result<Vec<_>, _>>()?,
    };
    let dtype = if int8.is_some() { "int8" } else { "f32" };
    print_predictions(args, &model, (device, dtype), &paths, &logits, out)?;
    let mut problems = Vec::new();
    if failed > 0 {
        problems.push(format!("{failed} of {} images could not be read", files.len()));
    }
    if bad_folders > 0 {
        let folders = if bad_folders == 1 { "folder" } else { "folders" };
        problems.push(format!("{bad_folders} {folders} gave no images"));
    }
    if !problems.is_empty() {
        return Err(format!("{} (see above)", problems.join("; ")).into());
    }
    Ok(())
}

/// One line (or JSON object) per classified image: the top classes and their probabilities.
fn print_predictions(
    args: &PredictArgs,
    model: &Model,
    (device, dtype): (&str, &str),
    paths: &[&PathBuf],
    logits: &[Vec<f32>],
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    for (path, logits) in paths.iter().zip(logits) {
        let probs = softmax(logits);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        order.truncate(args.top_k.max(1));
        let name = |k: usize| model.classes.get(k).cloned().unwrap_or_else(|| k.to_string());
        if args.json {
            let top: Vec<serde_json::Value> = order
                .iter()
                .map(|&k| serde_json::json!({"class": name(k), "probability": probs[k]}))
                .collect();
            let v = serde_json::json!({
                "file": path.display().to_string(),
                "class": name(order[0]),
                "probability": probs[order[0]],
                "top_k": top,
                "device": device,
                "dtype": dtype,
            });
            writeln!(out, "{v}")?;
        } else {
            let top: Vec<String> = order
                .iter()
                .map(|&k| format!("{} {:.1}%", name(k), 100.0 * probs[k]))
                .collect();
            writeln!(out, "{}: {}", path.display(), top.join(", "))?;
        }
    }
    Ok(())
}

/// The logits of each input (`[C, H, W]` each) from a forward pass on `dev`, in eval mode,
/// [`GPU_BATCH`] images at a time.
fn forward_gpu(
    model: &Model,
    dev: &torchlet_gpu::Device,
    inputs: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let batch = inputs.len().clamp(1, GPU_BATCH);
    // torchlet-gpu runs training plans; its forward pass is the eval-mode one (BatchNorm with
    // the running statistics, Dropout off), as `eval --device gpu` uses it.
    let plan = model.plan(batch, Mode::Training)?;
    let classes = plan.output_shape().numel().max(1);
    let mut net = torchlet_gpu::GpuNetwork::new(dev, &*plan, &model.params)?;
    net.set_state(&model.state)?;
    let mut logits = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(batch) {
        let x: Vec<f32> = chunk.concat();
        let y = net.forward(&x)?;
        logits.extend(y.chunks(classes).map(<[f32]>::to_vec));
    }
    Ok(logits)
}
