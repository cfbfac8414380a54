//! The model plan: every shape, parameter offset and arena slot, computed by a `const fn`.
//!
//! [`Plan::training`] and [`Plan::inference`] take a model ([`Layer`]s), the shape of one input
//! sample and the batch size, and compute everything a [`crate::Network`] needs before it
//! touches a number:
//!
//! - every layer's output shape (a mismatch is an [`Error::Shape`] naming the layer, what was
//!   expected and what was found);
//! - the parameter layout (each layer's weight then bias, in model order, as PyTorch's
//!   `state_dict`), and the non-trainable state (BatchNorm running statistics);
//! - one activation arena: every buffer (layer outputs, the ones kept for backward, gradients,
//!   pooling indices, dropout masks, kernel scratch) gets a lifetime in steps and an offset, with
//!   buffers whose lifetimes do not overlap sharing memory.
//!
//! ## Steps and lifetimes
//!
//! With `L` layers there are `2L + 2` steps: `0` copies the input (training only, and only when
//! the first layer needs it for its weight gradient), `1..=L` run the forward pass, `L + 1`
//! computes the loss gradient, and `2L + 1 - i` runs the backward of layer `i`. A layer's output
//! lives from its forward step to the last step that reads it: the forward of its consumers,
//! and in training the backward of consumers that need their input (Conv, Linear, BatchNorm,
//! Bilinear) or its own backward when it needs its output (ReLU, Sigmoid, Tanh, Softmax).
//! Max-pooling keeps only its argmax indices. A gradient lives from the backward of its first
//! consumer to its own backward. Inference keeps nothing, so its arena is ping-pong buffers.
//!
//! ## Placement
//!
//! Greedy first-fit, largest first, as TensorFlow Lite Micro's `GreedyMemoryPlanner`: buffers
//! are sorted by size (descending); each goes at the lowest offset where it overlaps no already
//! placed buffer that is live at the same time. Offsets are multiples of 16 floats (64 bytes).
//!
//! ## Compile time and run time
//!
//! The same `const fn` serves both. In a `const` item an invalid model stops the build:
//!
//! ```compile_fail
//! use torchlet::{layer::*, Plan, Shape};
//! const BAD: [Layer; 2] = [conv2d(3, 8, 3), conv2d(16, 8, 3)]; // 8 channels in, 16 expected
//! const PLAN: Plan<2> = Plan::inference(&BAD, Shape::chw(3, 8, 8), 1);
//! ```
//!
//! while [`Plan::try_new`] on a model chosen at run time returns the error instead.
//!
//! ## Borrowed layers
//!
//! A plan borrows its model: `Plan<'l, CAP>` holds `&'l [Layer<'l>]`. In a `const` or `static`
//! item the lifetime is `'static` and never needs spelling (`const PLAN: Plan<9> = ...`); a
//! model built at run time, for example rebuilt from a model file into a local array or an
//! arena by [`crate::model_file::ModelFile::layers`], gives a plan that lives as long as that
//! storage, and nothing has to be leaked.

use crate::error::{Error, Result};
use crate::layer::{Kind, Layer};
use crate::ops::activation::{Approximate, PreluGeom, Softplus};
use crate::ops::batchnorm::BnGeom;
use crate::ops::bilinear::BilinearGeom;
use crate::ops::geom::{ConvGeom, PoolGeom};
use crate::ops::linear::LinearGeom;
use crate::ops::merge::ConcatGeom;
use crate::ops::pad::PadGeom;
use crate::ops::pool::{AdaptiveGeom, UnpoolGeom};
use crate::ops::shuffle::ShuffleGeom;
use crate::ops::softmax::SoftmaxGeom;
use crate::ops::upsample::UpsampleGeom;
use crate::shape::Shape;

/// A node index meaning "the network's input".
pub const INPUT: u16 = u16::MAX;

/// Arena offsets are multiples of this many floats (64 bytes).
pub const ALIGN: usize = 16;

/// The longest buffer, and the largest arena, a plan holds, in floats: their bytes fit in
/// `isize` (2 GiB on a 32-bit target). Every length the planner computes from the batch is
/// checked against it and the arena is placed with saturating sums, so an absurd
/// batch or layer is [`Error::TooLarge`], never a wrapped size.
pub const MAX_BUFFER_LEN: usize = isize::MAX as usize / 4;

/// `batch · numel`, or `MAX_BUFFER_LEN + 1` when that overflows or exceeds
/// [`MAX_BUFFER_LEN`] (the plan is then refused with [`Error::TooLarge`] once built).
pub(crate) const fn batch_len(batch: usize, numel: usize) -> usize {
    match batch.checked_mul(numel) {
        Some(n) if n <= MAX_BUFFER_LEN => n,
        _ => MAX_BUFFER_LEN + 1,
    }
}

/// `a · b` for a layer's weight count (`in · out`), or `MAX_BUFFER_LEN + 1` when that overflows
/// or exceeds [`MAX_BUFFER_LEN`]: as [`batch_len`], so that a layer too large for any machine
/// (a model file claiming 2^58 outputs) is [`Error::TooLarge`], never a wrapped count.
pub(crate) const fn product_len(a: usize, b: usize) -> usize {
    batch_len(a, b)
}

/// Whether a plan can train or only infer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// Forward only, eval mode; buffers are freed as soon as the next layer has read them.
    Inference,
    /// Forward and backward; keeps what backward needs, plus gradient buffers.
    Training,
}

/// A buffer in the arena: offset and length in floats, and the steps it is live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Slot {
    /// Offset in the arena, in floats.
    pub offset: usize,
    /// Length in floats (0: no buffer).
    pub len: usize,
    /// First step the buffer is live in.
    pub first: u16,
    /// Last step the buffer is live in.
    pub last: u16,
}

impl Slot {
    /// No buffer.
    pub const NONE: Slot = Slot {
        offset: 0,
        len: 0,
        first: 0,
        last: 0,
    };
    /// The arena range of this slot.
    pub const fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
    /// Whether the two slots are live at a common step and share memory.
    pub const fn conflicts(&self, other: &Slot) -> bool {
        self.len > 0
            && other.len > 0
            && self.first <= other.last
            && other.first <= self.last
            && self.offset < other.offset + other.len
            && other.offset < self.offset + self.len
    }
}

/// What a node computes, with its geometry resolved for the plan's batch size.
///
/// Each variant carries the geometry type of its op family (in [`crate::ops`]); the family's
/// file plans it, runs it forward and backward. The GPU crate builds its kernels from the same
/// geometry types, and matches over this enum exhaustively, so a new variant is a compile error
/// wherever a backend lacks it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exec {
    /// Convolution (1-d, 2-d or 3-d).
    Conv(ConvGeom),
    /// Transposed convolution.
    ConvTranspose(ConvGeom),
    /// Max pooling; indices kept in the node's `extra` slot.
    MaxPool(PoolGeom),
    /// Average pooling.
    AvgPool(PoolGeom),
    /// Adaptive average pooling.
    AdaptiveAvgPool(AdaptiveGeom),
    /// Adaptive max pooling; indices in `extra`.
    AdaptiveMaxPool(AdaptiveGeom),
    /// Max unpooling with the indices of an earlier max-pool node.
    MaxUnpool(UnpoolGeom),
    /// 2-d padding.
    Pad2d(PadGeom),
    /// `nn.ReLU`.
    ReLU,
    /// `nn.LeakyReLU(negative_slope)`.
    LeakyReLU(f32),
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.Tanh`.
    Tanh,
    /// Softmax over `axis` of a sample viewed as `[outer, axis, inner]`.
    Softmax(SoftmaxGeom),
    /// Log-softmax, same view.
    LogSoftmax(SoftmaxGeom),
    /// Batch normalisation; saved statistics in `extra` (training).
    BatchNorm(BnGeom),
    /// Inverted dropout with probability `p`; the mask in `extra` (training).
    Dropout(f32),
    /// Channel dropout (`Dropout1d/2d/3d`) with probability `p` over channel planes of
    /// `plane` elements; the per-element mask in `extra` (training).
    ChannelDropout(f32, usize),
    /// `nn.ChannelShuffle`: a permutation of the channels.
    ChannelShuffle(ShuffleGeom),
    /// `nn.Upsample`, nearest or bilinear.
    Upsample(UpsampleGeom),
    /// `Linear` applied to `rows` rows of each sample.
    Linear(LinearGeom),
    /// `Bilinear` applied to `rows` rows of each sample.
    Bilinear(BilinearGeom),
    /// Elementwise sum of the two inputs.
    Add,
    /// Channel concatenation of the two inputs.
    Concat(ConcatGeom),
    /// A copy (Identity, Flatten).
    Copy,
    /// `nn.ELU(alpha)`.
    ELU(f32),
    /// `nn.GELU(approximate)`.
    GELU(Approximate),
    /// `nn.SiLU`.
    SiLU,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.Hardsigmoid`.
    Hardsigmoid,
    /// `nn.Softplus(beta, threshold)`.
    Softplus(Softplus),
    /// `nn.Mish`.
    Mish,
    /// `nn.ReLU6`.
    ReLU6,
    /// `nn.PReLU`: learned slopes, one per channel or one shared.
    PReLU(PreluGeom),
}

/// One computing layer of a plan.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Node {
    /// The layer's computation.
    pub exec: Exec,
    /// PyTorch's class name (`"Conv2d"`, `"Add"`, ...).
    pub op_name: &'static str,
    /// Producers of the inputs ([`INPUT`] = the network input); `inputs[1]` only for merges.
    pub inputs: [u16; 2],
    /// Shape of one sample of the first input.
    pub in_shape: Shape,
    /// Shape of one sample of the second input (merges), else equal to `in_shape`.
    pub in_shape2: Shape,
    /// Shape of one output sample.
    pub out_shape: Shape,
    /// Offset of the weight in the parameter buffer.
    pub param_offset: usize,
    /// Floats of weight.
    pub weight_len: usize,
    /// Floats of bias (after the weight).
    pub bias_len: usize,
    /// Offset in the state buffer (BatchNorm running statistics).
    pub state_offset: usize,
    /// Floats of state.
    pub state_len: usize,
    /// The output activation, `[batch, out_shape]`.
    pub out: Slot,
    /// The gradient with respect to the output (training).
    pub grad: Slot,
    /// Indices, saved statistics or a dropout mask.
    pub extra: Slot,
    /// Forward scratch.
    pub work_fwd: Slot,
    /// Backward scratch.
    pub work_bwd: Slot,
    /// Whether the node runs fused with others (inference plans only; see [`fuse`]).
    pub fuse: Fuse,
}

impl Node {
    pub(crate) const EMPTY: Node = Node {
        exec: Exec::Copy,
        op_name: "",
        inputs: [INPUT, INPUT],
        in_shape: Shape::features(1),
        in_shape2: Shape::features(1),
        out_shape: Shape::features(1),
        param_offset: 0,
        weight_len: 0,
        bias_len: 0,
        state_offset: 0,
        state_len: 0,
        out: Slot::NONE,
        grad: Slot::NONE,
        extra: Slot::NONE,
        work_fwd: Slot::NONE,
        work_bwd: Slot::NONE,
        fuse: Fuse::None,
    };

    /// Floats of parameters (weight and bias).
    pub const fn param_len(&self) -> usize {
        self.weight_len + self.bias_len
    }

    /// Whether backward reads this node's input values (to compute weight gradients).
    pub const fn keeps_input(&self) -> bool {
        matches!(
            self.exec,
            Exec::Conv(_)
                | Exec::ConvTranspose(_)
                | Exec::Linear(_)
                | Exec::Bilinear(_)
                | Exec::BatchNorm(_)
                | Exec::LeakyReLU(_)
                | Exec::ELU(_)
                | Exec::GELU(_)
                | Exec::SiLU
                | Exec::Hardswish
                | Exec::Hardsigmoid
                | Exec::Softplus(_)
                | Exec::Mish
                | Exec::ReLU6
                | Exec::PReLU(_)
        )
    }

    /// Whether backward reads this node's own output.
    pub const fn keeps_output(&self) -> bool {
        matches!(
            self.exec,
            Exec::ReLU | Exec::Sigmoid | Exec::Tanh | Exec::Softmax(_) | Exec::LogSoftmax(_)
        )
    }

    /// Whether backward writes the gradient of both inputs in one kernel call, so it needs a
    /// destination even for the network input.
    pub(crate) const fn joint_input_grad(&self) -> bool {
        matches!(self.exec, Exec::BatchNorm(_) | Exec::Bilinear(_))
    }
}

/// The complete plan of a model: see the [module docs](self).
///
/// `'l` is the lifetime of the borrowed layers ([`Plan::layers`]). `CAP` is the most computing layers the plan can hold; [`node_count`] gives the exact number
/// for a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan<'l, const CAP: usize> {
    layers: &'l [Layer<'l>],
    input: Shape,
    batch: usize,
    mode: Mode,
    nodes: [Node; CAP],
    len: usize,
    param_len: usize,
    state_len: usize,
    arena_len: usize,
    peak_live: usize,
    input_slot: Slot,
    input_grad: Slot,
    input_grad_wanted: bool,
}

/// Number of computing layers (plan nodes) in a model, containers expanded; use it as `CAP`.
pub const fn node_count(layers: &[Layer]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < layers.len() {
        n += match layers[i].kind {
            Kind::Op(_) | Kind::Misuse(_) => 1,
            Kind::Sequential(inner) => node_count(inner),
            Kind::Merge { a, b, .. } => node_count(a) + node_count(b) + 1,
        };
        i += 1;
    }
    n
}

/// Where a layer is being planned: its index, PyTorch's class name and the plan's batch size.
/// The op families' planning steps take it to size their buffers and to name the layer in
/// their errors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    /// Index of the node being planned.
    pub layer: usize,
    /// PyTorch's class name of the layer.
    pub op: &'static str,
    /// The plan's batch size.
    pub batch: usize,
}

impl At {
    /// An [`Error::Shape`] for this layer.
    pub(crate) const fn err(&self, what: &'static str, expected: usize, found: usize) -> Error {
        shape_err(self.layer, self.op, what, expected, found)
    }

    /// [`Self::err`] when the input's rank is not `expected` (channels + spatial dims).
    pub(crate) const fn rank(&self, s: &Shape, expected: usize) -> Result<()> {
        if s.rank() != expected {
            return Err(self.err("input rank (channels + spatial dims) differs", expected, s.rank()));
        }
        Ok(())
    }
}

const fn shape_err(layer: usize, op: &'static str, what: &'static str, expected: usize, found: usize) -> Error {
    Error::Shape {
        layer,
        op,
        what,
        expected,
        found,
    }
}

const fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

impl<'l, const CAP: usize> Plan<'l, CAP> {
    /// A training plan; panics (a compile error in a `const`) if the model is invalid.
    pub const fn training(layers: &'l [Layer<'l>], input: Shape, batch: usize) -> Self {
        match Self::try_new(layers, input, batch, Mode::Training) {
            Ok(p) => p,
            Err(e) => panic!("{}", e.const_message()),
        }
    }

    /// An inference plan; panics (a compile error in a `const`) if the model is invalid.
    pub const fn inference(layers: &'l [Layer<'l>], input: Shape, batch: usize) -> Self {
        match Self::try_new(layers, input, batch, Mode::Inference) {
            Ok(p) => p,
            Err(e) => panic!("{}", e.const_message()),
        }
    }

    /// A training plan that also computes the gradient with respect to the network's input
    /// (`x.requires_grad_()` in PyTorch): after [`crate::Network::backward`],
    /// [`crate::Network::input_grad`] holds `d loss / d x`, for saliency maps, adversarial
    /// examples or checking a layer from outside. The arena grows by one input batch at most.
    /// Panics (a compile error in a `const`) if the model is invalid.
    pub const fn training_with_input_grad(layers: &'l [Layer<'l>], input: Shape, batch: usize) -> Self {
        match Self::try_new_with_input_grad(layers, input, batch) {
            Ok(p) => p,
            Err(e) => panic!("{}", e.const_message()),
        }
    }

    /// [`Plan::training_with_input_grad`] for a model chosen at run time.
    ///
    /// # Errors
    /// Those of [`Plan::try_new`].
    pub const fn try_new_with_input_grad(layers: &'l [Layer<'l>], input: Shape, batch: usize) -> Result<Self> {
        Self::build(layers, input, batch, Mode::Training, true)
    }

    /// Plans `layers` for input samples of shape `input` and batches of up to `batch` samples.
    ///
    /// # Errors
    /// [`Error::Shape`] for a layer that does not fit its input (naming the layer index, what
    /// was expected and found), [`Error::Structure`] for a misused builder or an unmatched
    /// `MaxUnpool`, [`Error::Capacity`] if the model has more than `CAP` computing layers,
    /// [`Error::BatchSize`] for a zero batch.
    pub const fn try_new(layers: &'l [Layer<'l>], input: Shape, batch: usize, mode: Mode) -> Result<Self> {
        Self::build(layers, input, batch, mode, false)
    }

    const fn build(layers: &'l [Layer<'l>], input: Shape, batch: usize, mode: Mode, input_grad: bool) -> Result<Self> {
        if batch == 0 {
            return Err(Error::BatchSize {
                max: usize::MAX,
                found: 0,
            });
        }
        if input.numel() == 0 {
            return Err(Error::Shape {
                layer: 0,
                op: "input",
                what: "every dim of the input shape must be positive",
                expected: 1,
                found: 0,
            });
        }
        let needed = node_count(layers);
        if needed > CAP {
            return Err(Error::Capacity { capacity: CAP, needed });
        }
        if needed == 0 {
            return Err(Error::Structure {
                what: "the model has no layers",
            });
        }
        let mut p = Plan {
            layers,
            input,
            batch,
            mode,
            nodes: [Node::EMPTY; CAP],
            len: 0,
            param_len: 0,
            state_len: 0,
            arena_len: 0,
            peak_live: 0,
            input_slot: Slot::NONE,
            input_grad: Slot::NONE,
            input_grad_wanted: input_grad,
        };
        let mut unpool = build::Unpool::NEW;
        ctry!(p.add_seq(layers, INPUT, input, &mut unpool));
        p.fuse();
        p.lifetimes();
        let mut k = 0;
        while k < p.slot_count() {
            if p.slot(k).len > MAX_BUFFER_LEN {
                return Err(Error::TooLarge {
                    batch,
                    max: MAX_BUFFER_LEN,
                });
            }
            k += 1;
        }
        if p.param_len > MAX_BUFFER_LEN || p.state_len > MAX_BUFFER_LEN {
            return Err(Error::TooLarge {
                batch,
                max: MAX_BUFFER_LEN,
            });
        }
        p.place();
        p.alias_in_place();
        if p.arena_len > MAX_BUFFER_LEN || p.peak_live > MAX_BUFFER_LEN {
            return Err(Error::TooLarge {
                batch,
                max: MAX_BUFFER_LEN,
            });
        }
        Ok(p)
    }

    // ---- accessors ----

    /// The model the plan was made from.
    pub const fn layers(&self) -> &'l [Layer<'l>] {
        self.layers
    }
    /// Shape of one input sample.
    pub const fn input_shape(&self) -> Shape {
        self.input
    }
    /// Shape of one output sample.
    pub const fn output_shape(&self) -> Shape {
        self.nodes[self.len - 1].out_shape
    }
    /// The largest batch the plan runs.
    pub const fn batch(&self) -> usize {
        self.batch
    }
    /// Training or inference.
    pub const fn mode(&self) -> Mode {
        self.mode
    }
    /// Number of computing layers.
    pub const fn len(&self) -> usize {
        self.len
    }
    /// Always false: a plan has at least one layer.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The computing layers, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes[..self.len]
    }
    /// Floats of parameters (weights and biases): the length of the parameter and gradient buffers.
    pub const fn param_len(&self) -> usize {
        self.param_len
    }
    /// Floats of non-trainable state (BatchNorm running statistics).
    pub const fn state_len(&self) -> usize {
        self.state_len
    }
    /// Floats of activation arena.
    pub const fn arena_len(&self) -> usize {
        self.arena_len
    }
    /// Bytes of activation arena.
    pub const fn arena_bytes(&self) -> usize {
        self.arena_len * 4
    }
    /// The largest total size of buffers live at one step: a lower bound of any arena.
    pub const fn peak_live_len(&self) -> usize {
        self.peak_live
    }
    /// The input copy kept for the first layer's backward (training only; may be empty).
    pub const fn input_slot(&self) -> Slot {
        self.input_slot
    }
    /// The gradient with respect to the network input: planned for
    /// [`Plan::training_with_input_grad`], else scratch for a first layer that always computes
    /// one (BatchNorm, Bilinear), else empty.
    pub const fn input_grad_slot(&self) -> Slot {
        self.input_grad
    }
    /// Whether backward computes the gradient with respect to the network input
    /// ([`Plan::training_with_input_grad`]).
    pub const fn has_input_grad(&self) -> bool {
        self.input_grad_wanted
    }
    /// Fills a state buffer with the initial values of every layer's non-trainable state, as
    /// PyTorch's modules start: BatchNorm running mean 0, running variance 1,
    /// `num_batches_tracked` 0. Parameters are not touched.
    ///
    /// # Errors
    /// [`Error::BufferLength`] if `state` does not have [`Plan::state_len`] floats.
    pub fn init_state(&self, state: &mut [f32]) -> Result<()> {
        crate::error::check_len(crate::Buffer::State, self.state_len, state.len())?;
        for node in self.nodes() {
            if let Exec::BatchNorm(g) = node.exec {
                let s = &mut state[node.state_offset..node.state_offset + node.state_len];
                if s.len() == crate::ops::batchnorm::batch_norm_state_len(g.c) {
                    s[..g.c].fill(0.0);
                    s[g.c..2 * g.c].fill(1.0);
                    s[2 * g.c..].fill(0.0);
                }
            }
        }
        Ok(())
    }
    /// Every arena slot of the plan (for tests and tools): outputs, gradients, extras,
    /// scratch, and the input slots; empty slots included. The output of an in-place node
    /// ([`Fuse::InPlace`]) is its producer's slot, listed once, for that producer.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.slot_count()).map(move |k| {
            let in_place = k < 5 * self.len && k % 5 == 0 && matches!(self.nodes[k / 5].fuse, Fuse::InPlace);
            if in_place {
                Slot::NONE
            } else {
                self.slot(k)
            }
        })
    }
}

mod arena;
mod build;
pub mod fuse;
mod macs;

pub use fuse::{Fuse, FusedAct};
