//! Classification of one frame over read-only weights (the model region, in flash).

use torchlet::Network;

use crate::BootError;

/// A classification: the class index and its score (the model's output for that class, a
/// logit for the zoo's classifiers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// Index of the highest output (the first one on ties, as `torch.argmax`).
    pub class: usize,
    /// The highest output.
    pub score: f32,
}

/// Runs `net` on one frame (`x`: `[1, *input_shape]` flattened) and returns the highest output.
///
/// # Errors
/// [`BootError::Inference`] with the core's error (a frame of the wrong length, a non-finite
/// input); [`BootError::Unsupported`] for a model without outputs.
pub fn classify<const CAP: usize>(net: &mut Network<'_, CAP>, x: &[f32]) -> Result<Prediction, BootError> {
    let y = net.forward(x).map_err(BootError::Inference)?;
    let (class, &score) = y
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, &f32)>, (k, v)| match best {
            Some((_, b)) if *v <= *b => best,
            _ => Some((k, v)),
        })
        .ok_or(BootError::Unsupported(torchlet::Error::Structure {
            what: "the model has no outputs",
        }))?;
    Ok(Prediction { class, score })
}
