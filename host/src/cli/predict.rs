//! `torchlet predict`: classify image files with a saved model (the tutorial's validation step).
//!
//! Each image is opened with the `image` crate (any format it reads), converted to RGB or to
//! gray as the model's input channels need, resized to the model's input (`Resize((H, W))`),
//! turned into a tensor (`ToTensor`) and run in eval mode; the top-k classes are printed by
//! name with their softmax probabilities. `--json` prints one JSON object a line: `file`,
//! `class`, `probability` and `top_k` (a list of `{class, probability}`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::data::Sample;
use crate::model::Model;
use crate::transforms::{Resize, ToTensor, Transform};

/// Arguments of `torchlet predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file (.tlm: a model or a checkpoint).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The images to classify.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, value_name = "K", default_value = "3")]
    pub top_k: usize,
    /// Print one JSON object a line.
    #[arg(long)]
    pub json: bool,
}

/// The softmax of `logits`, computed stably.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|&v| (v / sum) as f32).collect()
}

/// The image at `path` as the model's input tensor `[C, H, W]`.
fn load(model: &Model, path: &std::path::Path) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let dims = model.input.dims();
    let [c, h, w] = dims[..] else {
        return Err(format!("model {} does not take images (input {dims:?})", model.name).into());
    };
    let img = image::open(path).map_err(|e| format!("{}: cannot open the image: {e}", path.display()))?;
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
/// A message naming the model or image that cannot be read.
pub fn run(args: &PredictArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&args.model)?;
    for path in &args.images {
        let x = load(&model, path)?;
        let probs = softmax(&model.forward(&x)?);
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
