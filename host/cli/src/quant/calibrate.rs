//! Calibration: the range of every node's output (and of the input) over calibration images,
//! from the `f32` model in eval mode.
//!
//! The model runs on an unfused training plan in eval mode (BatchNorm with running
//! statistics, Dropout off: the inference numbers), so every node's output is observed
//! ([`torchlet::Network::forward_observed`]), the convolutions of fused conv->pool chains
//! included.

use torchlet::{Mode, Network};

use super::{core_error, QuantError};
use crate::model::Model;

/// How a range is chosen from the observed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Observer {
    /// The smallest and largest value seen (PyTorch's `MinMaxObserver`).
    #[value(name = "minmax")]
    MinMax,
    /// Per calibration batch the 0.01th and 99.99th percentiles, averaged over the batches:
    /// a few outliers do not stretch the range.
    Percentile,
}

/// Observed ranges: `[min, max]` of the input and of each plan node's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranges {
    /// The input's range.
    pub input: (f32, f32),
    /// One range per plan node.
    pub nodes: Vec<(f32, f32)>,
    /// Images observed.
    pub samples: usize,
}

/// Running statistics of one tensor.
#[derive(Clone, Copy)]
struct Acc {
    min: f32,
    max: f32,
    sum_lo: f64,
    sum_hi: f64,
    batches: usize,
}

impl Acc {
    const NEW: Acc = Acc {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        sum_lo: 0.0,
        sum_hi: 0.0,
        batches: 0,
    };

    fn observe(&mut self, y: &[f32], observer: Observer, tmp: &mut Vec<f32>) {
        for &v in y {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            if v.is_nan() {
                self.min = f32::NAN;
            }
        }
        if observer == Observer::Percentile && !y.is_empty() {
            tmp.clear();
            tmp.extend_from_slice(y);
            let k = ((y.len() - 1) as f64 * 0.0001).round() as usize;
            let lo = *tmp.select_nth_unstable_by(k, f32::total_cmp).1;
            let hi = *tmp.select_nth_unstable_by(y.len() - 1 - k, f32::total_cmp).1;
            self.sum_lo += lo as f64;
            self.sum_hi += hi as f64;
        }
        self.batches += 1;
    }

    fn range(&self, observer: Observer) -> (f32, f32) {
        match observer {
            Observer::MinMax => (self.min, self.max),
            Observer::Percentile if self.min.is_nan() => (f32::NAN, f32::NAN),
            Observer::Percentile => {
                let b = self.batches.max(1) as f64;
                ((self.sum_lo / b) as f32, (self.sum_hi / b) as f32)
            }
        }
    }
}

/// Observes `model` on `images` (`[n, *input]`, `n ≥ 1`) in batches of `batch`, calling
/// `progress(done)` after each batch with the images done so far.
///
/// # Errors
/// No images, a model that does not run, or a non-finite range (NaN or infinite activations:
/// the model is broken), naming the layer.
pub fn calibrate(
    model: &Model,
    images: &[f32],
    batch: usize,
    observer: Observer,
    mut progress: impl FnMut(usize),
) -> Result<Ranges, QuantError> {
    let sample = model.input.numel().max(1);
    let n = images.len() / sample;
    if n == 0 || images.len() % sample != 0 {
        return Err(QuantError(format!(
            "calibration needs at least one whole image of {sample} values, found {} values",
            images.len()
        )));
    }
    let batch = batch.clamp(1, n);
    let plan = model
        .plan(batch, Mode::Training)
        .map_err(|e| QuantError(e.to_string()))?;
    let (mut params, mut state) = (model.params.clone(), model.state.clone());
    let mut grads = vec![0.0; plan.param_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net =
        Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).map_err(|e| core_error(model, e))?;
    net.set_gemm(crate::kernels::best());
    net.eval();
    let mut accs = vec![Acc::NEW; plan.len()];
    let mut input = Acc::NEW;
    let mut tmp = Vec::new();
    for (k, x) in images.chunks(batch * sample).enumerate() {
        input.observe(x, observer, &mut tmp);
        net.forward_observed(x, |i, y| {
            accs[i].observe(y, observer, &mut tmp);
            Ok(())
        })
        .map_err(|e| core_error(model, e))?;
        progress((k * batch + x.len() / sample).min(n));
    }
    let nodes: Vec<(f32, f32)> = accs.iter().map(|a| a.range(observer)).collect();
    let finite = |r: (f32, f32)| r.0.is_finite() && r.1.is_finite();
    if !finite(input.range(observer)) {
        return Err(QuantError("the calibration images hold NaN or infinite values".into()));
    }
    if let Some(i) = nodes.iter().position(|&r| !finite(r)) {
        return Err(QuantError(format!(
            "model '{}': {} produced NaN or infinite values on the calibration images: its range \
             cannot be quantised",
            model.name,
            super::node_name(model, i)
        )));
    }
    Ok(Ranges {
        input: input.range(observer),
        nodes,
        samples: n,
    })
}
