//! Every loss of the core on the GPU (`torchlet::loss`): the dispatch specs
//! [`crate::GpuNetwork`] records, and host-slice wrappers that mirror the core's `forward`,
//! `backward` and `loss_and_grad` for the tests.
//!
//! - [`GpuLoss`] names a loss of `torchlet::loss` with its configuration (reduction, class
//!   weights, `ignore_index`, label smoothing, `pos_weight`); [`Target`] is what it is compared
//!   with: class indices for `CrossEntropyLoss` and `NLLLoss`, float values of the input's shape
//!   for `MSELoss`, `L1Loss`, `BCELoss` and `BCEWithLogitsLoss`.
//!
//! Inputs are validated on the host with the core's rules and errors (lengths, labels, weights,
//! hyper-parameters) before anything is uploaded. The loss kernels run one workgroup of 256
//! (`cross_entropy.wgsl`, `nll_loss.wgsl`, and `elementwise_loss.wgsl` followed by
//! `mse_loss.wgsl`, `l1_loss.wgsl`, `bce_loss.wgsl` or `bce_with_logits_loss.wgsl`): loss,
//! gradient and correct count in one dispatch, sums added in a fixed order.

use torchlet::loss::{BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, Reduction};
use torchlet::{Buffer, Shape};

use super::{bytes, check_len, submit, w32, Dispatch, Pass, Spec};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct CrossEntropy` of `cross_entropy.wgsl` and `struct Nll` of `nll_loss.wgsl`.
    pub(crate) struct ClassLoss {
        n: u32, c: u32, s: u32, x_off: u32, y_off: u32, smoothing: f32, reduction: u32, up_mode: u32,
        per_element: u32, ignore: u32, has_ignore: u32, _pad0: u32,
    }
}

uniform! {
    /// `struct ElementwiseLoss` of `elementwise_loss.wgsl`.
    pub(crate) struct ElementwiseLoss {
        len: u32, x_off: u32, g_off: u32, reduction: u32, up_mode: u32, per_element: u32, last: u32, _pad0: u32,
    }
}

/// A class loss ([`Kernel::CrossEntropy`] or [`Kernel::NllLoss`]) over `[n, c, s]` inputs at
/// `x`, gradient at `y`; `reduction`: 0 none, 1 mean, 2 sum; `up_mode`: 0 an upstream gradient
/// of ones, 1 a scalar one, 2 one per position; `per_element`: write each position's loss
/// instead of the reduced loss and the correct count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ClassLossSpec {
    pub(crate) kernel: Kernel,
    pub(crate) c: usize,
    pub(crate) s: usize,
    pub(crate) x: usize,
    pub(crate) y: usize,
    pub(crate) smoothing: f32,
    pub(crate) reduction: u32,
    pub(crate) up_mode: u32,
    pub(crate) per_element: bool,
    pub(crate) ignore: Option<u32>,
}

impl Dispatch for ClassLossSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, _n: usize) -> usize {
        LOSS_WORKGROUP
    }

    fn uniform(&self, n: usize, _total: u32) -> Vec<u8> {
        bytes(ClassLoss {
            n: w32(n),
            c: w32(self.c),
            s: w32(self.s),
            x_off: w32(self.x),
            y_off: w32(self.y),
            smoothing: self.smoothing,
            reduction: self.reduction,
            up_mode: self.up_mode,
            per_element: u32::from(self.per_element),
            ignore: self.ignore.unwrap_or(0),
            has_ignore: u32::from(self.ignore.is_some()),
            _pad0: 0,
        })
    }
}

/// An elementwise loss (MSE, L1, BCE, BCE with logits) over `per_sample` elements per sample
/// at `x`, gradient at `y`; `last`: the sample's last dim (`pos_weight`'s length); the other
/// fields as [`ClassLossSpec`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ElementwiseLossSpec {
    pub(crate) kernel: Kernel,
    pub(crate) per_sample: usize,
    pub(crate) x: usize,
    pub(crate) y: usize,
    pub(crate) last: usize,
    pub(crate) reduction: u32,
    pub(crate) up_mode: u32,
    pub(crate) per_element: bool,
}

impl Dispatch for ElementwiseLossSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, _n: usize) -> usize {
        LOSS_WORKGROUP
    }

    fn uniform(&self, n: usize, _total: u32) -> Vec<u8> {
        bytes(ElementwiseLoss {
            len: w32(n * self.per_sample),
            x_off: w32(self.x),
            g_off: w32(self.y),
            reduction: self.reduction,
            up_mode: self.up_mode,
            per_element: u32::from(self.per_element),
            last: w32(self.last.max(1)),
            _pad0: 0,
        })
    }
}

/// The loss kernels run one workgroup of this many invocations, whatever the batch.
const LOSS_WORKGROUP: usize = 256;

/// A loss of the core, configured, as the GPU runs it: the value, the gradient with respect
/// to the input and, for class losses, the correct count, in one dispatch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GpuLoss<'w> {
    /// `nn.CrossEntropyLoss` on logits `[N, C, *spatial]`: class weights, `ignore_index`, label
    /// smoothing, any reduction.
    CrossEntropy(CrossEntropyLoss<'w>),
    /// `nn.NLLLoss` on log-probabilities `[N, C, *spatial]`: class weights, `ignore_index`, any
    /// reduction.
    Nll(NLLLoss<'w>),
    /// `nn.MSELoss`.
    Mse(MSELoss),
    /// `nn.L1Loss`.
    L1(L1Loss),
    /// `nn.BCELoss` on probabilities in `[0, 1]`.
    Bce(BCELoss),
    /// `nn.BCEWithLogitsLoss`, with `pos_weight`.
    BceWithLogits(BCEWithLogitsLoss<'w>),
}

impl<'w> From<CrossEntropyLoss<'w>> for GpuLoss<'w> {
    fn from(l: CrossEntropyLoss<'w>) -> Self {
        GpuLoss::CrossEntropy(l)
    }
}

impl<'w> From<NLLLoss<'w>> for GpuLoss<'w> {
    fn from(l: NLLLoss<'w>) -> Self {
        GpuLoss::Nll(l)
    }
}

impl From<MSELoss> for GpuLoss<'_> {
    fn from(l: MSELoss) -> Self {
        GpuLoss::Mse(l)
    }
}

impl From<L1Loss> for GpuLoss<'_> {
    fn from(l: L1Loss) -> Self {
        GpuLoss::L1(l)
    }
}

impl From<BCELoss> for GpuLoss<'_> {
    fn from(l: BCELoss) -> Self {
        GpuLoss::Bce(l)
    }
}

impl<'w> From<BCEWithLogitsLoss<'w>> for GpuLoss<'w> {
    fn from(l: BCEWithLogitsLoss<'w>) -> Self {
        GpuLoss::BceWithLogits(l)
    }
}

/// What a loss compares the model's output with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target<'a> {
    /// Class indices `[N, *spatial]`, for `CrossEntropyLoss` and `NLLLoss`.
    Classes(&'a [u32]),
    /// Values of the input's shape `[N, *sample]`, for `MSELoss`, `L1Loss`, `BCELoss` and
    /// `BCEWithLogitsLoss`.
    Values(&'a [f32]),
}

/// The shader code of a reduction: 0 none, 1 mean, 2 sum.
fn reduction_code(r: Reduction) -> u32 {
    match r {
        Reduction::None => 0,
        Reduction::Mean => 1,
        Reduction::Sum => 2,
    }
}

/// `(C, S)` of a class loss's sample `[C, *spatial]`: the classes and the positions per sample.
pub(crate) fn class_geom(sample: Shape) -> (usize, usize) {
    let c = sample.channels();
    let s = sample.dims().get(1..).map_or(1, |d| d.iter().product());
    (c, s)
}

impl<'w> GpuLoss<'w> {
    /// PyTorch's class name (`"CrossEntropyLoss"`).
    pub fn name(&self) -> &'static str {
        match self {
            GpuLoss::CrossEntropy(_) => "CrossEntropyLoss",
            GpuLoss::Nll(_) => "NLLLoss",
            GpuLoss::Mse(_) => "MSELoss",
            GpuLoss::L1(_) => "L1Loss",
            GpuLoss::Bce(_) => "BCELoss",
            GpuLoss::BceWithLogits(_) => "BCEWithLogitsLoss",
        }
    }

    /// The reduction.
    pub fn reduction(&self) -> Reduction {
        match self {
            GpuLoss::CrossEntropy(l) => l.reduction,
            GpuLoss::Nll(l) => l.reduction,
            GpuLoss::Mse(l) => l.reduction,
            GpuLoss::L1(l) => l.reduction,
            GpuLoss::Bce(l) => l.reduction,
            GpuLoss::BceWithLogits(l) => l.reduction,
        }
    }

    /// Whether the target is class indices ([`Target::Classes`]) rather than values.
    pub fn takes_classes(&self) -> bool {
        matches!(self, GpuLoss::CrossEntropy(_) | GpuLoss::Nll(_))
    }

    /// The kernel that runs this loss.
    pub(crate) fn kernel(&self) -> Kernel {
        match self {
            GpuLoss::CrossEntropy(_) => Kernel::CrossEntropy,
            GpuLoss::Nll(_) => Kernel::NllLoss,
            GpuLoss::Mse(_) => Kernel::MseLoss,
            GpuLoss::L1(_) => Kernel::L1Loss,
            GpuLoss::Bce(_) => Kernel::BceLoss,
            GpuLoss::BceWithLogits(_) => Kernel::BceWithLogitsLoss,
        }
    }

    /// The core's hyper-parameter checks (CrossEntropyLoss's label smoothing).
    pub(crate) fn check_config(&self) -> Result<()> {
        if let GpuLoss::CrossEntropy(l) = self {
            if !(0.0..=1.0).contains(&l.label_smoothing) {
                return Err(Error::Core(torchlet::Error::InvalidArgument {
                    name: "label_smoothing",
                    expected: "must be in [0, 1]",
                }));
            }
        }
        Ok(())
    }

    /// The per-class weights (class losses) or `pos_weight` (BCE with logits) the kernel reads
    /// from its binding 6, ones where the loss has none; empty for the other losses.
    pub(crate) fn aux_values(&self, sample: Shape) -> Vec<f32> {
        let (weights, len) = match self {
            GpuLoss::CrossEntropy(l) => (l.weight, sample.channels()),
            GpuLoss::Nll(l) => (l.weight, sample.channels()),
            GpuLoss::BceWithLogits(l) => (l.pos_weight, sample.last()),
            _ => return Vec::new(),
        };
        weights.map_or_else(|| vec![1.0; len], <[f32]>::to_vec)
    }

    /// Checks `target` for a batch of `n` samples of shape `sample` with the core's rules
    /// (after the input, which the caller has checked): the target's kind and length, the
    /// class weights' or `pos_weight`'s length, labels in range unless ignored.
    pub(crate) fn check_target(&self, n: usize, sample: Shape, target: Target<'_>) -> Result<()> {
        let wrong_kind = |expected| {
            Err(Error::Core(torchlet::Error::InvalidArgument {
                name: "target",
                expected,
            }))
        };
        match (self, target) {
            (GpuLoss::CrossEntropy(_) | GpuLoss::Nll(_), Target::Classes(labels)) => {
                let (weight, ignore) = match self {
                    GpuLoss::CrossEntropy(l) => (l.weight, l.ignore_index),
                    GpuLoss::Nll(l) => (l.weight, l.ignore_index),
                    _ => (None, None),
                };
                let (c, s) = class_geom(sample);
                if let Some(w) = weight {
                    check_len(Buffer::Weight, c, w.len())?;
                }
                check_len(Buffer::Target, n * s, labels.len())?;
                for (index, &y) in labels.iter().enumerate() {
                    if Some(y) != ignore && y as usize >= c {
                        return Err(Error::Core(torchlet::Error::LabelOutOfRange {
                            index,
                            label: y as usize,
                            classes: c,
                        }));
                    }
                }
                Ok(())
            }
            (GpuLoss::CrossEntropy(_) | GpuLoss::Nll(_), Target::Values(_)) => {
                wrong_kind("class indices (Target::Classes) for CrossEntropyLoss and NLLLoss")
            }
            (_, Target::Values(values)) => {
                check_len(Buffer::Target, n * sample.numel(), values.len())?;
                if let GpuLoss::BceWithLogits(BCEWithLogitsLoss {
                    pos_weight: Some(p), ..
                }) = self
                {
                    check_len(Buffer::Weight, sample.last(), p.len())?;
                }
                Ok(())
            }
            (_, Target::Classes(_)) => {
                wrong_kind("values (Target::Values) for MSELoss, L1Loss, BCELoss and BCEWithLogitsLoss")
            }
        }
    }

    /// The dispatch of this loss over samples of shape `sample`: input at `x`, gradient at `y`;
    /// `up_mode` and `per_element` as [`ClassLossSpec`].
    pub(crate) fn spec(&self, sample: Shape, x: usize, y: usize, up_mode: u32, per_element: bool) -> Spec {
        let reduction = reduction_code(self.reduction());
        match self {
            GpuLoss::CrossEntropy(_) | GpuLoss::Nll(_) => {
                let (c, s) = class_geom(sample);
                let (smoothing, ignore) = match self {
                    GpuLoss::CrossEntropy(l) => (l.label_smoothing, l.ignore_index),
                    GpuLoss::Nll(l) => (0.0, l.ignore_index),
                    _ => (0.0, None),
                };
                ClassLossSpec {
                    kernel: self.kernel(),
                    c,
                    s,
                    x,
                    y,
                    smoothing,
                    reduction,
                    up_mode,
                    per_element,
                    ignore,
                }
                .into()
            }
            _ => ElementwiseLossSpec {
                kernel: self.kernel(),
                per_sample: sample.numel(),
                x,
                y,
                last: sample.last(),
                reduction,
                up_mode,
                per_element,
            }
            .into(),
        }
    }
}

fn check_input(loss: &GpuLoss<'_>, input: &[f32], n: usize, sample: Shape) -> Result<()> {
    loss.check_config()?;
    check_len(Buffer::Input, n * sample.numel(), input.len())?;
    Ok(())
}

/// BCELoss's check that every input is a probability (NaN fails too), after the target's.
fn check_probabilities(loss: &GpuLoss<'_>, input: &[f32]) -> Result<()> {
    if matches!(loss, GpuLoss::Bce(_)) && !input.iter().all(|&x| (0.0..=1.0).contains(&x)) {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "input",
            expected: "must be in [0, 1]",
        }));
    }
    Ok(())
}

/// Elements of a loss's per-element output: positions `[N, *spatial]` for the class losses,
/// elements `[N, *sample]` for the others.
fn per_element_len(loss: &GpuLoss<'_>, n: usize, sample: Shape) -> usize {
    if loss.takes_classes() {
        n * class_geom(sample).1
    } else {
        n * sample.numel()
    }
}

/// Runs `loss` once on uploaded copies of the slices (checked by the caller): returns the
/// gradient and the `out` buffer (`out_len` floats).
#[allow(clippy::too_many_arguments)]
fn run_loss(
    dev: &Device,
    loss: &GpuLoss<'_>,
    input: &[f32],
    n: usize,
    sample: Shape,
    target: Target<'_>,
    upstream: Option<&[f32]>,
    per_element: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let out_len = if per_element {
        per_element_len(loss, n, sample).max(2)
    } else {
        2
    };
    let xb = dev.storage_with("loss input", input)?;
    let tb = match target {
        Target::Classes(l) => dev.storage_with("labels", l)?,
        Target::Values(v) => dev.storage_with("targets", v)?,
    };
    let gb = dev.storage("loss gradient", input.len())?;
    let ob = dev.storage("loss output", out_len)?;
    let (up_mode, ub) = match upstream {
        None => (0, dev.storage("upstream gradient", 1)?),
        Some(g) if loss.reduction() == Reduction::None => (2, dev.storage_with("upstream gradient", g)?),
        Some(g) => (1, dev.storage_with("upstream gradient", g)?),
    };
    let ab = dev.storage_with("class weights", &loss.aux_values(sample))?;
    let spec = loss.spec(sample, 0, 0, up_mode, per_element);
    let pass = Pass::new(dev, spec, &[&xb, &tb, &gb, &ob, &ub, &ab], n);
    submit(dev, &[&pass], "running a loss")?;
    Ok((dev.read::<f32>(&gb, 0, input.len())?, dev.read::<f32>(&ob, 0, out_len)?))
}

/// GPU [`torchlet::loss::Loss::loss_and_grad`] of `loss`: the loss of `input: [n, *sample]`
/// against `target` (class indices `[n, *spatial]` or values `[n, *sample]`); overwrites
/// `grad: [n, *sample]` with d(loss)/d(input) and returns the reduced loss (the sum for
/// reduction `'none'`) and the number of non-ignored positions whose first maximal input is
/// the label (0 for the losses of values).
///
/// # Errors
/// [`Error::Core`] with the core's error for lengths, labels out of range, a wrong target kind,
/// an invalid label smoothing or BCELoss inputs outside `[0, 1]`; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grad(
    dev: &Device,
    loss: &GpuLoss<'_>,
    input: &[f32],
    n: usize,
    sample: Shape,
    target: Target<'_>,
    grad: &mut [f32],
) -> Result<(f32, u32)> {
    check_input(loss, input, n, sample)?;
    loss.check_target(n, sample, target)?;
    check_probabilities(loss, input)?;
    check_len(Buffer::Gradient, input.len(), grad.len())?;
    let (g, out) = run_loss(dev, loss, input, n, sample, target, None, false)?;
    grad.copy_from_slice(&g);
    Ok((out[0], out[1] as u32))
}

/// GPU `forward` of `loss` (as `CrossEntropyLoss::forward`, `MSELoss::forward`, ...): writes
/// `out`, `[n, *spatial]` (class losses) or `[n, *sample]` for reduction `'none'`, else `[1]`.
///
/// # Errors
/// As [`loss_and_grad`], and a wrong `out` length.
#[allow(clippy::too_many_arguments)]
pub fn loss_forward(
    dev: &Device,
    loss: &GpuLoss<'_>,
    input: &[f32],
    n: usize,
    sample: Shape,
    target: Target<'_>,
    out: &mut [f32],
) -> Result<()> {
    check_input(loss, input, n, sample)?;
    loss.check_target(n, sample, target)?;
    check_probabilities(loss, input)?;
    let none = loss.reduction() == Reduction::None;
    let len = if none { per_element_len(loss, n, sample) } else { 1 };
    check_len(Buffer::Output, len, out.len())?;
    let (_, o) = run_loss(dev, loss, input, n, sample, target, None, none)?;
    out.copy_from_slice(&o[..len]);
    Ok(())
}

/// GPU `backward` of `loss` (as `CrossEntropyLoss::backward`, ...): overwrites
/// `grad_in: [n, *sample]` with the gradient times the upstream gradient `grad_out` (the length
/// of [`loss_forward`]'s `out`).
///
/// # Errors
/// As [`loss_and_grad`], and wrong `grad_out` or `grad_in` lengths.
#[allow(clippy::too_many_arguments)]
pub fn loss_backward(
    dev: &Device,
    loss: &GpuLoss<'_>,
    input: &[f32],
    n: usize,
    sample: Shape,
    target: Target<'_>,
    grad_out: &[f32],
    grad_in: &mut [f32],
) -> Result<()> {
    check_input(loss, input, n, sample)?;
    loss.check_target(n, sample, target)?;
    check_probabilities(loss, input)?;
    let none = loss.reduction() == Reduction::None;
    let len = if none { per_element_len(loss, n, sample) } else { 1 };
    check_len(Buffer::Gradient, len, grad_out.len())?;
    check_len(Buffer::Gradient, input.len(), grad_in.len())?;
    let (g, _) = run_loss(dev, loss, input, n, sample, target, Some(grad_out), false)?;
    grad_in.copy_from_slice(&g);
    Ok(())
}

/// GPU cross-entropy of `logits: [n, classes]` against `labels: [n]`, as
/// [`torchlet::loss::Loss::loss_and_grad`] of `loss`: overwrites `grad: [n, classes]` and returns
/// the reduced loss and the number of non-ignored rows whose first maximal logit is the label.
///
/// # Errors
/// As [`loss_and_grad`].
pub fn cross_entropy(
    dev: &Device,
    loss: &CrossEntropyLoss<'_>,
    logits: &[f32],
    classes: usize,
    labels: &[u32],
    grad: &mut [f32],
) -> Result<(f32, u32)> {
    let n = labels.len();
    loss_and_grad(
        dev,
        &GpuLoss::CrossEntropy(*loss),
        logits,
        n,
        Shape::features(classes),
        Target::Classes(labels),
        grad,
    )
}
