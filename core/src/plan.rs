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

use crate::error::{Error, Result};
use crate::layer::{Bilinear, Kind, Layer, Merge, Op, Padding};
use crate::ops::batchnorm::{batch_norm_state_len, BnGeom};
use crate::ops::conv::conv_workspace_len;
use crate::ops::conv_transpose::conv_transpose_workspace_len;
use crate::ops::geom::{window_out, ConvGeom, PaddingMode, PoolGeom};
use crate::shape::Shape;

/// A node index meaning "the network's input".
pub const INPUT: u16 = u16::MAX;

/// Arena offsets are multiples of this many floats (64 bytes).
pub const ALIGN: usize = 16;

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
    pub const NONE: Slot = Slot { offset: 0, len: 0, first: 0, last: 0 };
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
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
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
    AdaptiveAvgPool { c: usize, input: [usize; 3], output: [usize; 3] },
    /// Adaptive max pooling; indices in `extra`.
    AdaptiveMaxPool { c: usize, input: [usize; 3], output: [usize; 3] },
    /// Max unpooling with the indices of node `pool`.
    MaxUnpool { c: usize, in_spatial: usize, out_spatial: usize, pool: u16 },
    /// 2-d padding.
    Pad2d { c: usize, h: usize, w: usize, padding: [usize; 4], mode: PaddingMode },
    ReLU,
    LeakyReLU(f32),
    Sigmoid,
    Tanh,
    /// Softmax over `axis` of a sample viewed as `[outer, axis, inner]`.
    Softmax { outer: usize, axis: usize, inner: usize },
    /// Log-softmax, same view.
    LogSoftmax { outer: usize, axis: usize, inner: usize },
    /// Batch normalisation; saved statistics in `extra` (training).
    BatchNorm(BnGeom),
    /// Inverted dropout; the mask in `extra` (training).
    Dropout(f32),
    /// `Linear` applied to `rows` rows of each sample.
    Linear { rows: usize, in_f: usize, out_f: usize, bias: bool },
    /// `Bilinear` applied to `rows` rows of each sample.
    Bilinear { rows: usize, in1: usize, in2: usize, out: usize, bias: bool },
    /// Elementwise sum of the two inputs.
    Add,
    /// Channel concatenation; `a` and `b` are the per-sample lengths of the inputs.
    Concat { a: usize, b: usize },
    /// A copy (Identity, Flatten).
    Copy,
}

/// One computing layer of a plan.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Node {
    /// The layer's computation.
    pub exec: Exec,
    /// PyTorch's class name (`"Conv2d"`, `"Add"`, ...).
    pub op_name: &'static str,
    /// The layer's name in its container (empty: its index).
    pub name: &'static str,
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
}

impl Node {
    const EMPTY: Node = Node {
        exec: Exec::Copy,
        op_name: "",
        name: "",
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
                | Exec::Linear { .. }
                | Exec::Bilinear { .. }
                | Exec::BatchNorm(_)
                | Exec::LeakyReLU(_)
        )
    }

    /// Whether backward reads this node's own output.
    pub const fn keeps_output(&self) -> bool {
        matches!(
            self.exec,
            Exec::ReLU | Exec::Sigmoid | Exec::Tanh | Exec::Softmax { .. } | Exec::LogSoftmax { .. }
        )
    }

    /// Whether backward writes the gradient of both inputs in one kernel call, so it needs a
    /// destination even for the network input.
    const fn joint_input_grad(&self) -> bool {
        matches!(self.exec, Exec::BatchNorm(_) | Exec::Bilinear { .. })
    }
}

/// The complete plan of a model: see the [module docs](self).
///
/// `CAP` is the most computing layers the plan can hold; [`node_count`] gives the exact number
/// for a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan<const CAP: usize> {
    layers: &'static [Layer],
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
}

/// `?` for `const fn`.
macro_rules! ctry {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(e),
        }
    };
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

const fn shape_err(layer: usize, op: &'static str, what: &'static str, expected: usize, found: usize) -> Error {
    Error::Shape { layer, op, what, expected, found }
}

const fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

impl<const CAP: usize> Plan<CAP> {
    /// A training plan; panics (a compile error in a `const`) if the model is invalid.
    pub const fn training(layers: &'static [Layer], input: Shape, batch: usize) -> Self {
        match Self::try_new(layers, input, batch, Mode::Training) {
            Ok(p) => p,
            Err(e) => panic!("{}", e.const_message()),
        }
    }

    /// An inference plan; panics (a compile error in a `const`) if the model is invalid.
    pub const fn inference(layers: &'static [Layer], input: Shape, batch: usize) -> Self {
        match Self::try_new(layers, input, batch, Mode::Inference) {
            Ok(p) => p,
            Err(e) => panic!("{}", e.const_message()),
        }
    }

    /// Plans `layers` for input samples of shape `input` and batches of up to `batch` samples.
    ///
    /// # Errors
    /// [`Error::Shape`] for a layer that does not fit its input (naming the layer index, what
    /// was expected and found), [`Error::Structure`] for a misused builder or an unmatched
    /// `MaxUnpool`, [`Error::Capacity`] if the model has more than `CAP` computing layers,
    /// [`Error::BatchSize`] for a zero batch.
    pub const fn try_new(layers: &'static [Layer], input: Shape, batch: usize, mode: Mode) -> Result<Self> {
        if batch == 0 {
            return Err(Error::BatchSize { max: usize::MAX, found: 0 });
        }
        let needed = node_count(layers);
        if needed > CAP {
            return Err(Error::Capacity { capacity: CAP, needed });
        }
        if needed == 0 {
            return Err(Error::Structure { what: "the model has no layers" });
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
        };
        let mut unpool_stack = [INPUT; 16];
        let mut depth = 0usize;
        ctry!(p.add_seq(layers, INPUT, input, &mut unpool_stack, &mut depth));
        p.lifetimes();
        p.place();
        Ok(p)
    }

    // ---- building ----

    const fn add_seq(
        &mut self,
        layers: &'static [Layer],
        mut src: u16,
        mut shape: Shape,
        stack: &mut [u16; 16],
        depth: &mut usize,
    ) -> Result<(u16, Shape)> {
        let mut i = 0;
        while i < layers.len() {
            let l = &layers[i];
            match l.kind {
                Kind::Op(op) => {
                    let (id, s) = ctry!(self.add_op(op, l.name, src, shape, stack, depth));
                    src = id;
                    shape = s;
                }
                Kind::Sequential(inner) => {
                    let (id, s) = ctry!(self.add_seq(inner, src, shape, stack, depth));
                    src = id;
                    shape = s;
                }
                Kind::Merge { merge, a, b } => {
                    let (ia, sa) = ctry!(self.add_seq(a, src, shape, stack, depth));
                    let (ib, sb) = ctry!(self.add_seq(b, src, shape, stack, depth));
                    let (id, s) = ctry!(self.add_merge(merge, l.name, ia, sa, ib, sb));
                    src = id;
                    shape = s;
                }
                Kind::Misuse(what) => return Err(Error::Structure { what }),
            }
            i += 1;
        }
        Ok((src, shape))
    }

    const fn push(&mut self, mut node: Node, name: &'static str, src: u16, src2: u16) -> Result<(u16, Shape)> {
        let id = self.len;
        node.name = name;
        node.inputs = [src, src2];
        node.param_offset = self.param_len;
        self.param_len += node.weight_len + node.bias_len;
        node.state_offset = self.state_len;
        self.state_len += node.state_len;
        let b = self.batch;
        node.out.len = b * node.out_shape.numel();
        self.nodes[id] = node;
        self.len += 1;
        Ok((id as u16, node.out_shape))
    }

    const fn add_merge(&mut self, merge: Merge, name: &'static str, ia: u16, sa: Shape, ib: u16, sb: Shape) -> Result<(u16, Shape)> {
        let layer = self.len;
        let mut n = Node::EMPTY;
        n.in_shape = sa;
        n.in_shape2 = sb;
        match merge {
            Merge::Add => {
                n.op_name = "Add";
                if !sa.const_eq(&sb) {
                    if sa.rank() != sb.rank() {
                        return Err(shape_err(layer, "Add", "both branches must have the same rank", sa.rank(), sb.rank()));
                    }
                    return Err(shape_err(layer, "Add", "both branches must have the same number of elements per sample", sa.numel(), sb.numel()));
                }
                n.exec = Exec::Add;
                n.out_shape = sa;
            }
            Merge::Concat => {
                n.op_name = "Concat";
                if sa.rank() != sb.rank() {
                    return Err(shape_err(layer, "Concat", "both branches must have the same rank", sa.rank(), sb.rank()));
                }
                if sa.numel() / sa.channels() != sb.numel() / sb.channels() {
                    return Err(shape_err(layer, "Concat", "both branches must have the same spatial size", sa.numel() / sa.channels(), sb.numel() / sb.channels()));
                }
                n.exec = Exec::Concat { a: sa.numel(), b: sb.numel() };
                n.out_shape = sa.with_channels(sa.channels() + sb.channels());
            }
            Merge::Bilinear(Bilinear { in1_features, in2_features, out_features, bias }) => {
                n.op_name = "Bilinear";
                if sa.last() != in1_features {
                    return Err(shape_err(layer, "Bilinear", "in1_features differs from the last dim of the first branch", in1_features, sa.last()));
                }
                if sb.last() != in2_features {
                    return Err(shape_err(layer, "Bilinear", "in2_features differs from the last dim of the second branch", in2_features, sb.last()));
                }
                let rows = sa.numel() / in1_features;
                if sb.numel() / in2_features != rows {
                    return Err(shape_err(layer, "Bilinear", "both branches must have the same number of rows", rows, sb.numel() / in2_features));
                }
                if out_features == 0 {
                    return Err(shape_err(layer, "Bilinear", "out_features must be positive", 1, 0));
                }
                n.exec = Exec::Bilinear { rows, in1: in1_features, in2: in2_features, out: out_features, bias };
                n.weight_len = out_features * in1_features * in2_features;
                n.bias_len = if bias { out_features } else { 0 };
                n.out_shape = sa.with_last(out_features);
                if ia == ib {
                    // Both branches are the same tensor: backward needs a scratch for the
                    // second gradient before adding it to the first.
                    n.work_bwd.len = self.batch * sb.numel();
                }
            }
        }
        self.push(n, name, ia, ib)
    }

    #[allow(clippy::too_many_lines)]
    const fn add_op(
        &mut self,
        op: Op,
        name: &'static str,
        src: u16,
        s: Shape,
        stack: &mut [u16; 16],
        depth: &mut usize,
    ) -> Result<(u16, Shape)> {
        let layer = self.len;
        let b = self.batch;
        let opn = op.torch_name();
        let mut n = Node::EMPTY;
        n.op_name = opn;
        n.in_shape = s;
        n.in_shape2 = s;
        n.out_shape = s;
        match op {
            Op::Conv(c) => {
                let dims = c.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(layer, opn, "input rank (channels + spatial dims) differs", dims + 1, s.rank()));
                }
                if c.in_channels != s.channels() {
                    return Err(shape_err(layer, opn, "in_channels differs from the channels of its input", c.in_channels, s.channels()));
                }
                if c.groups == 0 || c.in_channels % c.groups != 0 {
                    return Err(shape_err(layer, opn, "in_channels must be divisible by groups", c.groups, c.in_channels));
                }
                if c.out_channels == 0 || c.out_channels % c.groups != 0 {
                    return Err(shape_err(layer, opn, "out_channels must be a positive multiple of groups", c.groups, c.out_channels));
                }
                let inp = s.spatial3();
                let mut pad = [0usize; 3];
                let mut pad_back = [0usize; 3];
                let mut out = [1usize; 3];
                let mut d = 0;
                while d < 3 {
                    let k = c.kernel_size[d];
                    let dil = c.dilation[d];
                    if k == 0 || c.stride[d] == 0 || dil == 0 {
                        return Err(shape_err(layer, opn, "kernel_size, stride and dilation must be positive", 1, 0));
                    }
                    match c.padding {
                        Padding::Explicit(p) => {
                            pad[d] = p[d];
                            pad_back[d] = p[d];
                        }
                        Padding::Valid => {}
                        Padding::Same => {
                            if c.stride[d] != 1 {
                                return Err(shape_err(layer, opn, "padding='same' needs stride 1", 1, c.stride[d]));
                            }
                            let total = dil * (k - 1);
                            pad[d] = total / 2;
                            pad_back[d] = total - total / 2;
                        }
                    }
                    let limit = match c.padding_mode {
                        PaddingMode::Zeros => usize::MAX,
                        PaddingMode::Reflect => inp[d] - 1,
                        PaddingMode::Replicate => usize::MAX,
                        PaddingMode::Circular => inp[d],
                    };
                    if pad[d] > limit || pad_back[d] > limit {
                        return Err(shape_err(layer, opn, "padding too large for reflect/circular padding_mode on this input", limit, pad[d]));
                    }
                    out[d] = match window_out(inp[d], k, c.stride[d], pad[d], pad_back[d], dil, false) {
                        Some(o) => o,
                        None => {
                            return Err(shape_err(layer, opn, "input (with padding) is smaller than the dilated kernel", dil * (k - 1) + 1, inp[d] + pad[d] + pad_back[d]))
                        }
                    };
                    d += 1;
                }
                let g = ConvGeom {
                    n: b,
                    c_in: c.in_channels,
                    c_out: c.out_channels,
                    groups: c.groups,
                    input: inp,
                    output: out,
                    kernel: c.kernel_size,
                    stride: c.stride,
                    dilation: c.dilation,
                    pad,
                    mode: c.padding_mode,
                    bias: c.bias,
                };
                n.exec = Exec::Conv(g);
                n.weight_len = g.weight_len();
                n.bias_len = if c.bias { c.out_channels } else { 0 };
                n.out_shape = Shape::with_spatial3(s.rank(), c.out_channels, out);
                n.work_fwd.len = conv_workspace_len(&g);
                n.work_bwd.len = conv_workspace_len(&g);
            }
            Op::ConvTranspose(c) => {
                if s.rank() != 3 {
                    return Err(shape_err(layer, opn, "input rank (channels + spatial dims) differs", 3, s.rank()));
                }
                if c.in_channels != s.channels() {
                    return Err(shape_err(layer, opn, "in_channels differs from the channels of its input", c.in_channels, s.channels()));
                }
                if c.groups == 0 || c.in_channels % c.groups != 0 || c.out_channels == 0 || c.out_channels % c.groups != 0 {
                    return Err(shape_err(layer, opn, "in_channels and out_channels must be positive multiples of groups", c.groups, c.in_channels));
                }
                let inp = s.spatial3();
                let mut out = [1usize; 3];
                let mut d = 0;
                while d < 3 {
                    let (k, st, dil, p, op) = (c.kernel_size[d], c.stride[d], c.dilation[d], c.padding[d], c.output_padding[d]);
                    if k == 0 || st == 0 || dil == 0 {
                        return Err(shape_err(layer, opn, "kernel_size, stride and dilation must be positive", 1, 0));
                    }
                    if op >= st && op >= dil {
                        return Err(shape_err(layer, opn, "output_padding must be smaller than stride or dilation", st, op));
                    }
                    let full = (inp[d] - 1) * st + dil * (k - 1) + op + 1;
                    if full <= 2 * p {
                        return Err(shape_err(layer, opn, "padding removes the whole output", full, 2 * p));
                    }
                    out[d] = full - 2 * p;
                    d += 1;
                }
                let g = ConvGeom {
                    n: b,
                    c_in: c.in_channels,
                    c_out: c.out_channels,
                    groups: c.groups,
                    input: inp,
                    output: out,
                    kernel: c.kernel_size,
                    stride: c.stride,
                    dilation: c.dilation,
                    pad: c.padding,
                    mode: PaddingMode::Zeros,
                    bias: c.bias,
                };
                n.exec = Exec::ConvTranspose(g);
                n.weight_len = c.in_channels * (c.out_channels / c.groups) * g.kernel_volume();
                n.bias_len = if c.bias { c.out_channels } else { 0 };
                n.out_shape = Shape::with_spatial3(3, c.out_channels, out);
                n.work_fwd.len = conv_transpose_workspace_len(&g);
                n.work_bwd.len = conv_transpose_workspace_len(&g);
            }
            Op::MaxPool(p) => {
                let dims = p.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(layer, opn, "input rank (channels + spatial dims) differs", dims + 1, s.rank()));
                }
                let g = ctry!(pool_geom(layer, opn, b, s, p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode, true));
                n.exec = Exec::MaxPool(g);
                n.out_shape = Shape::with_spatial3(s.rank(), s.channels(), g.output);
                n.extra.len = b * n.out_shape.numel();
                if p.return_indices {
                    if *depth >= stack.len() {
                        return Err(Error::Structure { what: "more than 16 nested MaxPool layers with return_indices" });
                    }
                    stack[*depth] = layer as u16;
                    *depth += 1;
                }
            }
            Op::AvgPool(p) => {
                let dims = p.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(layer, opn, "input rank (channels + spatial dims) differs", dims + 1, s.rank()));
                }
                let mut g = ctry!(pool_geom(layer, opn, b, s, p.kernel_size, p.stride, p.padding, [1; 3], p.ceil_mode, false));
                g.count_include_pad = p.count_include_pad;
                n.exec = Exec::AvgPool(g);
                n.out_shape = Shape::with_spatial3(s.rank(), s.channels(), g.output);
            }
            Op::AdaptiveAvgPool(a) | Op::AdaptiveMaxPool(a) => {
                let dims = a.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(layer, opn, "input rank (channels + spatial dims) differs", dims + 1, s.rank()));
                }
                if a.output_size[0] == 0 || a.output_size[1] == 0 || a.output_size[2] == 0 {
                    return Err(shape_err(layer, opn, "output_size must be positive", 1, 0));
                }
                let input = s.spatial3();
                n.out_shape = Shape::with_spatial3(s.rank(), s.channels(), a.output_size);
                if let Op::AdaptiveMaxPool(_) = op {
                    n.exec = Exec::AdaptiveMaxPool { c: s.channels(), input, output: a.output_size };
                    n.extra.len = b * n.out_shape.numel();
                } else {
                    n.exec = Exec::AdaptiveAvgPool { c: s.channels(), input, output: a.output_size };
                }
            }
            Op::MaxUnpool(u) => {
                if s.rank() != 3 {
                    return Err(shape_err(layer, opn, "input rank (channels + spatial dims) differs", 3, s.rank()));
                }
                if *depth == 0 {
                    return Err(Error::Structure { what: "MaxUnpool2d needs an earlier MaxPool2d with return_indices(true)" });
                }
                *depth -= 1;
                let pool = stack[*depth];
                let pn = self.nodes[pool as usize];
                if !pn.out_shape.const_eq(&s) {
                    return Err(shape_err(layer, opn, "input must have the shape of its MaxPool's output (elements)", pn.out_shape.numel(), s.numel()));
                }
                // Output: the pool's input size (PyTorch's `output_size=`), which must be a
                // size MaxUnpool2d accepts: default (in - 1) * stride - 2 * pad + kernel, plus < stride.
                let ps = pn.in_shape.spatial3();
                let inp = s.spatial3();
                let mut d = 1;
                while d < 3 {
                    let base = (inp[d] - 1) * u.stride[d] + u.kernel_size[d];
                    if base < 2 * u.padding[d] {
                        return Err(shape_err(layer, opn, "padding larger than the unpooled size", base, 2 * u.padding[d]));
                    }
                    let def = base - 2 * u.padding[d];
                    if ps[d] < def || ps[d] >= def + u.stride[d] {
                        return Err(shape_err(layer, opn, "the MaxPool's input size is not a valid output size for this MaxUnpool2d", def, ps[d]));
                    }
                    d += 1;
                }
                n.out_shape = pn.in_shape;
                n.exec = Exec::MaxUnpool { c: s.channels(), in_spatial: inp[0] * inp[1] * inp[2], out_spatial: ps[0] * ps[1] * ps[2], pool };
            }
            Op::Pad2d(p) => {
                if s.rank() != 3 {
                    return Err(shape_err(layer, opn, "input must be [C, H, W] (rank 3)", 3, s.rank()));
                }
                let (h, w) = (s.dim(1), s.dim(2));
                let limit_w = match p.mode {
                    PaddingMode::Reflect => w - 1,
                    PaddingMode::Circular => w,
                    _ => usize::MAX,
                };
                let limit_h = match p.mode {
                    PaddingMode::Reflect => h - 1,
                    PaddingMode::Circular => h,
                    _ => usize::MAX,
                };
                if p.padding[0] > limit_w || p.padding[1] > limit_w {
                    return Err(shape_err(layer, opn, "left/right padding too large for the input width", limit_w, p.padding[0]));
                }
                if p.padding[2] > limit_h || p.padding[3] > limit_h {
                    return Err(shape_err(layer, opn, "top/bottom padding too large for the input height", limit_h, p.padding[2]));
                }
                n.exec = Exec::Pad2d { c: s.channels(), h, w, padding: p.padding, mode: p.mode };
                n.out_shape = Shape::chw(s.channels(), h + p.padding[2] + p.padding[3], w + p.padding[0] + p.padding[1]);
            }
            Op::ReLU => n.exec = Exec::ReLU,
            Op::LeakyReLU(a) => n.exec = Exec::LeakyReLU(a),
            Op::Sigmoid => n.exec = Exec::Sigmoid,
            Op::Tanh => n.exec = Exec::Tanh,
            Op::Softmax(dim) | Op::LogSoftmax(dim) => {
                let full = s.rank() as i32 + 1;
                let d = if (dim as i32) < 0 { dim as i32 + full } else { dim as i32 };
                if d < 1 || d >= full {
                    return Err(shape_err(layer, opn, "dim must be a non-batch dim (1..rank)", 1, if d < 0 { 0 } else { d as usize }));
                }
                let d = d as usize - 1;
                let mut outer = 1;
                let mut inner = 1;
                let mut k = 0;
                while k < s.rank() {
                    if k < d {
                        outer *= s.dim(k);
                    } else if k > d {
                        inner *= s.dim(k);
                    }
                    k += 1;
                }
                let axis = s.dim(d);
                n.exec = if let Op::Softmax(_) = op {
                    Exec::Softmax { outer, axis, inner }
                } else {
                    Exec::LogSoftmax { outer, axis, inner }
                };
            }
            Op::BatchNorm(bn) => {
                let ok = if bn.dims == 1 { s.rank() == 1 || s.rank() == 2 } else { s.rank() == 3 };
                if !ok {
                    return Err(shape_err(layer, opn, "input rank differs (BatchNorm1d: [C] or [C, L]; BatchNorm2d: [C, H, W])", if bn.dims == 1 { 2 } else { 3 }, s.rank()));
                }
                if bn.num_features != s.channels() {
                    return Err(shape_err(layer, opn, "num_features differs from the channels of its input", bn.num_features, s.channels()));
                }
                if bn.eps.is_nan() || bn.eps <= 0.0 {
                    return Err(Error::InvalidArgument { name: "eps", expected: "must be positive" });
                }
                let c = bn.num_features;
                n.exec = Exec::BatchNorm(BnGeom {
                    n: b,
                    c,
                    spatial: s.numel() / c,
                    eps: bn.eps,
                    momentum: bn.momentum,
                    affine: bn.affine,
                    track_running_stats: bn.track_running_stats,
                });
                if bn.affine {
                    n.weight_len = c;
                    n.bias_len = c;
                }
                if bn.track_running_stats {
                    n.state_len = batch_norm_state_len(c);
                }
                n.extra.len = 2 * c;
            }
            Op::Dropout(p) => {
                if p.is_nan() || p < 0.0 || p > 1.0 {
                    return Err(Error::InvalidArgument { name: "p", expected: "dropout probability must be in [0, 1]" });
                }
                n.exec = Exec::Dropout(p);
                n.extra.len = b * s.numel();
            }
            Op::Linear(l) => {
                let last = s.last();
                let in_f = if l.in_features == 0 { last } else { l.in_features };
                if in_f != last {
                    return Err(shape_err(layer, opn, "in_features differs from the last dim of its input", in_f, last));
                }
                if l.out_features == 0 {
                    return Err(shape_err(layer, opn, "out_features must be positive", 1, 0));
                }
                n.exec = Exec::Linear { rows: s.numel() / last, in_f, out_f: l.out_features, bias: l.bias };
                n.weight_len = in_f * l.out_features;
                n.bias_len = if l.bias { l.out_features } else { 0 };
                n.out_shape = s.with_last(l.out_features);
            }
            Op::Identity => n.exec = Exec::Copy,
            Op::Flatten => {
                n.exec = Exec::Copy;
                n.out_shape = Shape::features(s.numel());
            }
        }
        if n.out_shape.numel() == 0 {
            return Err(shape_err(layer, opn, "output would be empty", 1, 0));
        }
        self.push(n, name, src, INPUT)
    }

    // ---- lifetimes ----

    /// Step of the forward pass of node `i`.
    const fn t_fwd(i: usize) -> u16 {
        (i + 1) as u16
    }
    /// Step of the backward pass of node `i`.
    const fn t_bwd(&self, i: usize) -> u16 {
        (2 * self.len + 1 - i) as u16
    }

    const fn lifetimes(&mut self) {
        let l = self.len;
        let training = matches!(self.mode, Mode::Training);
        let loss_t = (l + 1) as u16;
        let mut input_last = 0u16;
        let mut input_needed = false;
        let mut input_grad_len = 0usize;
        let mut i = 0;
        while i < l {
            let mut n = self.nodes[i];
            let tf = Self::t_fwd(i);
            let tb = self.t_bwd(i);
            n.out.first = tf;
            n.out.last = if i + 1 == l { loss_t } else { tf };
            if training {
                if n.keeps_output() {
                    n.out.last = tb;
                }
                n.grad = Slot { offset: 0, len: n.out.len, first: tb, last: tb };
                if i + 1 == l {
                    n.grad.first = loss_t;
                }
            }
            if n.extra.len > 0 {
                n.extra.first = tf;
                n.extra.last = tf;
                if training {
                    n.extra.last = tb;
                }
            }
            if n.work_fwd.len > 0 {
                n.work_fwd.first = tf;
                n.work_fwd.last = tf;
            }
            if training && n.work_bwd.len > 0 {
                n.work_bwd.first = tb;
                n.work_bwd.last = tb;
            } else {
                n.work_bwd = Slot::NONE;
            }
            self.nodes[i] = n;
            i += 1;
        }
        // Extend producers' lifetimes to their consumers.
        let mut j = 0;
        while j < l {
            let n = self.nodes[j];
            let tf = Self::t_fwd(j);
            let tb = self.t_bwd(j);
            let keeps = training && n.keeps_input();
            let mut k = 0;
            while k < 2 {
                let p = n.inputs[k];
                let is_merge = matches!(n.exec, Exec::Add | Exec::Concat { .. } | Exec::Bilinear { .. });
                if k == 1 && !is_merge {
                    break;
                }
                let last = if keeps { tb } else { tf };
                if p == INPUT {
                    input_needed |= keeps;
                    if input_last < last {
                        input_last = last;
                    }
                    if training && n.joint_input_grad() {
                        input_grad_len = self.batch * self.input.numel();
                    }
                } else {
                    let pi = p as usize;
                    if self.nodes[pi].out.last < last {
                        self.nodes[pi].out.last = last;
                    }
                    if training && self.nodes[pi].grad.first > tb {
                        self.nodes[pi].grad.first = tb;
                    }
                }
                k += 1;
            }
            if let Exec::MaxUnpool { pool, .. } = n.exec {
                let pi = pool as usize;
                if self.nodes[pi].extra.last < tf {
                    self.nodes[pi].extra.last = tf;
                }
            }
            j += 1;
        }
        if training && input_needed {
            self.input_slot = Slot { offset: 0, len: self.batch * self.input.numel(), first: 0, last: input_last };
        }
        if input_grad_len > 0 {
            // Scratch destination for kernels that always write an input gradient.
            self.input_grad = Slot { offset: 0, len: input_grad_len, first: (l + 2) as u16, last: (2 * l + 1) as u16 };
        }
    }

    // ---- placement ----

    /// Visits slot `k` (5 per node, then the two input slots) mutably.
    const fn slot_mut(&mut self, k: usize) -> &mut Slot {
        let node = k / 5;
        if node >= self.len {
            if k == 5 * self.len {
                return &mut self.input_slot;
            }
            return &mut self.input_grad;
        }
        match k % 5 {
            0 => &mut self.nodes[node].out,
            1 => &mut self.nodes[node].grad,
            2 => &mut self.nodes[node].extra,
            3 => &mut self.nodes[node].work_fwd,
            _ => &mut self.nodes[node].work_bwd,
        }
    }

    const fn slot(&self, k: usize) -> Slot {
        let node = k / 5;
        if node >= self.len {
            if k == 5 * self.len {
                return self.input_slot;
            }
            return self.input_grad;
        }
        match k % 5 {
            0 => self.nodes[node].out,
            1 => self.nodes[node].grad,
            2 => self.nodes[node].extra,
            3 => self.nodes[node].work_fwd,
            _ => self.nodes[node].work_bwd,
        }
    }

    const fn slot_count(&self) -> usize {
        5 * self.len + 2
    }

    const fn place(&mut self) {
        let count = self.slot_count();
        // Placement order: largest first, ties by slot index (insertion sort into `order`).
        let mut order = Flat::<CAP>::new();
        let mut k = 0;
        while k < count {
            let s = self.slot(k);
            let mut pos = k;
            while pos > 0 {
                let prev = order.get(pos - 1);
                let p = self.slot(prev);
                if p.len > s.len || (p.len == s.len && prev < k) {
                    break;
                }
                order.set(pos, order.get(pos - 1));
                pos -= 1;
            }
            order.set(pos, k);
            k += 1;
        }
        let mut placed = Flat::<CAP>::new(); // 1 once placed
        let mut arena = 0usize;
        let mut r = 0;
        while r < count {
            let idx = order.get(r);
            let s = self.slot(idx);
            r += 1;
            if s.len == 0 {
                continue;
            }
            let size = align(s.len);
            // First fit: the lowest offset that conflicts with no placed, simultaneously live slot.
            let mut offset = 0usize;
            let mut moved = true;
            while moved {
                moved = false;
                let mut q = 0;
                while q < count {
                    if placed.get(q) == 1 {
                        let o = self.slot(q);
                        if o.first <= s.last
                            && s.first <= o.last
                            && offset < o.offset + align(o.len)
                            && o.offset < offset + size
                        {
                            offset = o.offset + align(o.len);
                            moved = true;
                        }
                    }
                    q += 1;
                }
            }
            self.slot_mut(idx).offset = offset;
            placed.set(idx, 1);
            if offset + size > arena {
                arena = offset + size;
            }
        }
        self.arena_len = arena;
        // Peak live size: the largest sum of aligned sizes live at one step.
        let steps = 2 * self.len + 2;
        let mut t = 0;
        let mut peak = 0;
        while t < steps {
            let mut sum = 0;
            let mut k = 0;
            while k < count {
                let s = self.slot(k);
                if s.len > 0 && s.first as usize <= t && t <= s.last as usize {
                    sum += align(s.len);
                }
                k += 1;
            }
            if sum > peak {
                peak = sum;
            }
            t += 1;
        }
        self.peak_live = peak;
    }

    // ---- accessors ----

    /// The model the plan was made from.
    pub const fn layers(&self) -> &'static [Layer] {
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
    /// Scratch for the input gradient of a first layer that always computes one (may be empty).
    pub const fn input_grad_slot(&self) -> Slot {
        self.input_grad
    }
    /// Every arena slot of the plan (for tests and tools): outputs, gradients, extras,
    /// scratch, and the input slots; empty slots included.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.slot_count()).map(move |k| self.slot(k))
    }
}

#[allow(clippy::too_many_arguments)]
const fn pool_geom(
    layer: usize,
    opn: &'static str,
    n: usize,
    s: Shape,
    kernel: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
    dilation: [usize; 3],
    ceil: bool,
    is_max: bool,
) -> Result<PoolGeom> {
    let input = s.spatial3();
    let mut output = [1usize; 3];
    let mut d = 0;
    while d < 3 {
        if kernel[d] == 0 || stride[d] == 0 || dilation[d] == 0 {
            return Err(shape_err(layer, opn, "kernel_size, stride and dilation must be positive", 1, 0));
        }
        if pad[d] > kernel[d] / 2 {
            return Err(shape_err(layer, opn, "padding must be at most half the kernel size", kernel[d] / 2, pad[d]));
        }
        output[d] = match window_out(input[d], kernel[d], stride[d], pad[d], pad[d], dilation[d], ceil) {
            Some(o) => o,
            None => return Err(shape_err(layer, opn, "input (with padding) is smaller than the window", dilation[d] * (kernel[d] - 1) + 1, input[d] + 2 * pad[d])),
        };
        d += 1;
    }
    let _ = is_max;
    Ok(PoolGeom { n, c: s.channels(), input, output, kernel, stride, dilation, pad, count_include_pad: true })
}

/// A scratch array of one `usize` per arena slot (`5 * CAP + 2`), usable in `const fn`.
struct Flat<const CAP: usize> {
    main: [[usize; 5]; CAP],
    extra: [usize; 2],
}

impl<const CAP: usize> Flat<CAP> {
    const fn new() -> Self {
        Flat { main: [[0; 5]; CAP], extra: [0; 2] }
    }
    const fn get(&self, k: usize) -> usize {
        if k / 5 < CAP {
            self.main[k / 5][k % 5]
        } else {
            self.extra[k - 5 * CAP]
        }
    }
    const fn set(&mut self, k: usize, v: usize) {
        if k / 5 < CAP {
            self.main[k / 5][k % 5] = v;
        } else {
            self.extra[k - 5 * CAP] = v;
        }
    }
}
