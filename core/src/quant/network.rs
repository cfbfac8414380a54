//! The int8 executor: a quantised model run over a [`Plan`] node by node, with caller-owned
//! buffers and no allocation.
//!
//! A model quantised after training (the host's `torchlet quantize`) is the `f32` model's
//! [`Plan`] (an inference plan: its shapes, its fusion, its arena placement) plus
//! [`QuantWeights`]: the input's [`QuantParams`], one [`NodeQuant`] record per plan node (the
//! node's output quantisation and the clamp of its fused activation), the int8 weights and the
//! per-channel `i32` biases, multipliers and shifts of every `Conv` and `Linear`, packed in plan
//! order ([`layout`] gives the lengths).
//!
//! What each node does in int8 ([`role`]):
//! - `Conv`, `Linear`: int8 kernel with per-channel requantisation; a `BatchNorm` right after
//!   (its only reader) was folded into the weights at quantisation time and a `ReLU`/`ReLU6`
//!   after those is the output stage's clamp ([`folds`]): those nodes are aliases;
//! - `MaxPool`, `AvgPool`, `AdaptiveAvgPool` (fixed window), `Copy` (Flatten, Identity),
//!   `Dropout`: same quantisation in and out; a `ReLU`/`ReLU6` that cannot fold is a clamp;
//! - `Add` (residual, rescaled), `Concat` (each input requantised): their own quantisation;
//! - a pool fused with its convolution in the plan ([`Fuse::ConvPool`](crate::plan::Fuse)) is
//!   computed a pooled row at a time ([`super::fused`]), bit for bit as the unfused pair;
//! - anything else is [`Error::Unsupported`], naming the layer and op.
//!
//! Memory ([`layout`]): an `i8` arena of `align(batch · input) + the plan's slot extent
//! (its offsets in elements, used as bytes) + the fused band`, and an `i16` scratch of one
//! im2col column of the widest unfused convolution. Both follow from the plan alone, so a
//! firmware can size static buffers from it.

use super::exec::{forward_node, producer_params, Arenas};
use super::scheme::{ActRange, QuantParams};
use super::tensor::{dequantize_slice, quantize_slice};
use crate::error::{check_len, Buffer, Error, Result};
use crate::plan::{Exec, Fuse, Plan, ALIGN, INPUT};

/// The quantisation of one plan node's output.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeQuant {
    /// The output's scale and zero point. Nodes that keep their input's quantisation (pools,
    /// copies, clamps, folded nodes) must hold their input's.
    pub out: QuantParams,
    /// The clamp of the output stage (a fused ReLU/ReLU6), used by `Conv`, `Linear`, `Add`;
    /// [`ActRange::FULL`] elsewhere.
    pub act: ActRange,
}

/// The quantised parameters of a model, borrowed (from a model file, or the host's vectors).
#[derive(Clone, Copy, Debug)]
pub struct QuantWeights<'a> {
    /// The quantisation of the network's input.
    pub input: QuantParams,
    /// One record per plan node, in plan order.
    pub nodes: &'a [NodeQuant],
    /// int8 weights of every `Conv` and `Linear`, in plan order: `[Layout::weights]`.
    pub weights: &'a [i8],
    /// `i32` biases, one per output channel of every `Conv` and `Linear`: `[Layout::channels]`.
    pub bias: &'a [i32],
    /// Q31 multipliers, per output channel: `[Layout::channels]`.
    pub multiplier: &'a [i32],
    /// Shifts, per output channel: `[Layout::channels]`.
    pub shift: &'a [i32],
}

/// What a node does in int8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Computes a new quantisation (`Conv`, `Linear`, `Add`, `Concat`).
    Compute,
    /// Computes with its input's quantisation (pools).
    Keep,
    /// Moves values unchanged (copies, dropout, folded BatchNorm/activation).
    Alias,
    /// A standalone ReLU/ReLU6: clamps in its input's quantisation.
    Clamp,
}

/// Buffer and parameter lengths of a plan's int8 form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// int8 weights (bytes).
    pub weights: usize,
    /// Output channels of every `Conv` and `Linear` (biases, multipliers, shifts each).
    pub channels: usize,
    /// Where the plan's slots start in the arena: the quantised input before them.
    pub slots_base: usize,
    /// Where the fused conv->pool band starts.
    pub band_base: usize,
    /// The `i8` arena (bytes).
    pub arena: usize,
    /// The `i16` scratch (elements).
    pub scratch: usize,
}

impl Layout {
    /// Arena plus scratch, in bytes.
    pub const fn ram_bytes(&self) -> usize {
        self.arena + 2 * self.scratch
    }
    /// Weights, biases, multipliers and shifts, in bytes.
    pub const fn param_bytes(&self) -> usize {
        self.weights + 12 * self.channels
    }
}

/// How many nodes read node `p`'s output (an input used twice counts once per use).
pub fn readers<const CAP: usize>(plan: &Plan<CAP>, p: usize) -> usize {
    let nodes = plan.nodes();
    let is_merge = |e: &Exec| matches!(e, Exec::Add | Exec::Concat(_));
    nodes
        .iter()
        .map(|n| {
            let second = is_merge(&n.exec) && n.inputs[1] as usize == p;
            (n.inputs[0] as usize == p) as usize + second as usize
        })
        .sum()
}

/// Whether node `i` (a `BatchNorm`, `ReLU` or `ReLU6`) is computed by its producer's output
/// stage: a `BatchNorm` right after a `Conv`/`Linear`, an activation after one of those or after
/// such a `BatchNorm`, each producer having no other reader.
pub fn folds<const CAP: usize>(plan: &Plan<CAP>, i: usize) -> bool {
    let nodes = plan.nodes();
    let Some(node) = nodes.get(i) else { return false };
    let p = node.inputs[0];
    if p == INPUT || readers(plan, p as usize) != 1 {
        return false;
    }
    let producer = &nodes[p as usize].exec;
    match node.exec {
        Exec::BatchNorm(g) => g.track_running_stats && matches!(producer, Exec::Conv(_) | Exec::Linear(_)),
        Exec::ReLU | Exec::ReLU6 => match producer {
            Exec::Conv(_) | Exec::Linear(_) => true,
            Exec::BatchNorm(_) => folds(plan, p as usize),
            _ => false,
        },
        _ => false,
    }
}

/// The first node of a folded chain ending at `i` (a `Conv` or `Linear`), or `i` itself.
pub fn chain_root<const CAP: usize>(plan: &Plan<CAP>, mut i: usize) -> usize {
    while folds(plan, i) {
        i = plan.nodes()[i].inputs[0] as usize;
    }
    i
}

/// What node `i` does in int8, or [`Error::Unsupported`] naming it.
pub fn role<const CAP: usize>(plan: &Plan<CAP>, i: usize) -> Result<Role> {
    let node = plan.nodes().get(i).ok_or(Error::Structure {
        what: "an int8 node index past the plan",
    })?;
    let unsupported = |what| Error::Unsupported {
        layer: i,
        op: node.op_name,
        what,
    };
    Ok(match node.exec {
        Exec::Conv(_) | Exec::Linear(_) | Exec::Add | Exec::Concat(_) => Role::Compute,
        Exec::MaxPool(_) | Exec::AvgPool(_) => Role::Keep,
        Exec::AdaptiveAvgPool(g) => {
            let fixed = (0..3).all(|d| g.output[d] > 0 && g.input[d] % g.output[d] == 0);
            if !fixed {
                return Err(unsupported(
                    "int8 adaptive average pooling needs each output size to divide its input size",
                ));
            }
            Role::Keep
        }
        Exec::Copy | Exec::Dropout(_) | Exec::ChannelDropout(..) => Role::Alias,
        Exec::BatchNorm(_) if folds(plan, i) => Role::Alias,
        Exec::BatchNorm(_) => {
            return Err(unsupported(
                "a BatchNorm is only folded right after a Conv or Linear that nothing else reads",
            ))
        }
        Exec::ReLU | Exec::ReLU6 if folds(plan, i) => Role::Alias,
        Exec::ReLU | Exec::ReLU6 => Role::Clamp,
        _ => return Err(unsupported("there is no int8 kernel for this op")),
    })
}

/// Output channels of a `Conv`/`Linear` node and its weight count; `(0, 0)` for others.
pub(crate) fn channels_of(exec: &Exec) -> (usize, usize) {
    match exec {
        Exec::Conv(g) => (g.c_out, g.weight_len()),
        Exec::Linear(g) => (g.out_f, g.out_f.saturating_mul(g.in_f)),
        _ => (0, 0),
    }
}

const fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// The int8 lengths of `plan` (an inference plan), or the first node without an int8 form.
pub fn layout<const CAP: usize>(plan: &Plan<CAP>) -> Result<Layout> {
    let (mut weights, mut channels, mut slots_end, mut band, mut scratch) = (0usize, 0usize, 0, 0, 0);
    for (i, node) in plan.nodes().iter().enumerate() {
        role(plan, i)?;
        let (c, w) = channels_of(&node.exec);
        weights = weights.saturating_add(w);
        channels = channels.saturating_add(c);
        if node.fuse != Fuse::Into {
            slots_end = slots_end.max(node.out.offset.saturating_add(node.out.len));
        }
        match (node.exec, node.fuse) {
            (Exec::Conv(g), Fuse::None) => scratch = scratch.max(super::conv_s8_scratch_len(&g)),
            (_, Fuse::ConvPool { conv, .. }) => {
                if let Exec::Conv(g) = plan.nodes()[conv as usize].exec {
                    band = band.max(super::fused::band_len(&g, &node.exec));
                }
            }
            _ => {}
        }
    }
    let slots_base = align(plan.batch().saturating_mul(plan.input_shape().numel()));
    let band_base = slots_base.saturating_add(align(slots_end));
    Ok(Layout {
        weights,
        channels,
        slots_base,
        band_base,
        arena: band_base.saturating_add(band),
        scratch,
    })
}

/// A quantised model ready to run: the plan, its int8 parameters and the caller's buffers.
pub struct QuantNetwork<'a, const CAP: usize> {
    plan: &'a Plan<'a, CAP>,
    w: QuantWeights<'a>,
    layout: Layout,
    arena: &'a mut [i8],
    scratch: &'a mut [i16],
}

impl<'a, const CAP: usize> QuantNetwork<'a, CAP> {
    /// Checks the plan (an inference plan whose every node has an int8 form), the parameter
    /// lengths against [`layout`], the records (one per node; nodes that keep their input's
    /// quantisation hold their input's) and the buffers: `arena: [≥ layout.arena]`,
    /// `scratch: [≥ layout.scratch]`.
    pub fn new(
        plan: &'a Plan<'a, CAP>,
        w: QuantWeights<'a>,
        arena: &'a mut [i8],
        scratch: &'a mut [i16],
    ) -> Result<Self> {
        if plan.mode() != crate::plan::Mode::Inference {
            return Err(Error::NotReady {
                what: "an inference plan",
            });
        }
        let layout = layout(plan)?;
        check_len(Buffer::Params, layout.weights, w.weights.len())?;
        check_len(Buffer::Params, layout.channels, w.bias.len())?;
        check_len(Buffer::Params, layout.channels, w.multiplier.len())?;
        check_len(Buffer::Params, layout.channels, w.shift.len())?;
        check_len(Buffer::State, plan.len(), w.nodes.len())?;
        if arena.len() < layout.arena {
            return Err(Error::BufferLength {
                buffer: Buffer::Arena,
                expected: layout.arena,
                found: arena.len(),
            });
        }
        if scratch.len() < layout.scratch {
            return Err(Error::BufferLength {
                buffer: Buffer::Scratch,
                expected: layout.scratch,
                found: scratch.len(),
            });
        }
        QuantParams::new(w.input.scale, w.input.zero_point)?;
        for (i, rec) in w.nodes.iter().enumerate() {
            QuantParams::new(rec.out.scale, rec.out.zero_point)?;
            rec.act.check()?;
            if matches!(role(plan, i)?, Role::Keep | Role::Alias | Role::Clamp) {
                let from = producer_params(plan, &w, plan.nodes()[i].inputs[0]);
                if from != rec.out {
                    return Err(Error::Unsupported {
                        layer: i,
                        op: plan.nodes()[i].op_name,
                        what: "its record's quantisation differs from its input's (pools, copies, \
                               clamps and folded layers keep their input's)",
                    });
                }
            }
        }
        Ok(QuantNetwork {
            plan,
            w,
            layout,
            arena,
            scratch,
        })
    }

    /// The lengths this network was checked against.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The plan.
    pub fn plan(&self) -> &'a Plan<'a, CAP> {
        self.plan
    }

    /// The quantisation of the output.
    pub fn output_params(&self) -> QuantParams {
        self.w.nodes[self.plan.len() - 1].out
    }

    /// Runs `n` samples already quantised with the input's parameters, written into
    /// [`Self::input_mut`]`(n)`; returns the output `[n, *output_shape]` in int8.
    pub fn run(&mut self, n: usize) -> Result<&[i8]> {
        if n == 0 || n > self.plan.batch() {
            return Err(Error::BatchSize {
                max: self.plan.batch(),
                found: n,
            });
        }
        for i in 0..self.plan.len() {
            let mut io = Arenas {
                arena: self.arena,
                scratch: self.scratch,
                layout: self.layout,
            };
            forward_node(self.plan, &self.w, i, n, &mut io)?;
        }
        let last = &self.plan.nodes()[self.plan.len() - 1];
        let start = self.layout.slots_base + last.out.offset;
        Ok(&self.arena[start..start + n * last.out_shape.numel()])
    }

    /// The input region of the arena for `n` samples, `[n, *input_shape]` int8.
    pub fn input_mut(&mut self, n: usize) -> Result<&mut [i8]> {
        let len = n.saturating_mul(self.plan.input_shape().numel());
        if n == 0 || n > self.plan.batch() {
            return Err(Error::BatchSize {
                max: self.plan.batch(),
                found: n,
            });
        }
        Ok(&mut self.arena[..len])
    }

    /// Quantises `x: [n, *input_shape]` (`f32`), runs it and writes the dequantised output to
    /// `y: [n, *output_shape]`.
    ///
    /// Errors: lengths that are not a whole batch of `1..=batch` samples or disagree, a
    /// non-finite input, or a node's error.
    pub fn forward(&mut self, x: &[f32], y: &mut [f32]) -> Result<()> {
        let sample = self.plan.input_shape().numel();
        let n = x.len() / sample;
        if x.len() % sample != 0 {
            return Err(Error::BufferLength {
                buffer: Buffer::Input,
                expected: (n + 1) * sample,
                found: x.len(),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "input" });
        }
        check_len(Buffer::Output, n * self.plan.output_shape().numel(), y.len())?;
        let input = self.w.input;
        quantize_slice(input, x, self.input_mut(n)?)?;
        let out = self.output_params();
        dequantize_slice(out, self.run(n)?, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{linear, relu, sigmoid, Layer};
    use crate::plan::Mode;
    use crate::quant::{quantize_multiplier, FusedActivation};
    use crate::shape::Shape;

    const LIN_RELU: [Layer; 2] = [linear(2, 2), relu()];
    const LIN_SIG: [Layer; 2] = [linear(2, 2), sigmoid()];

    /// `Linear -> ReLU` by hand: the ReLU folds into the linear's clamp; known answers.
    #[test]
    fn linear_relu_known_answer_and_errors() {
        let plan = Plan::<4>::try_new(&LIN_RELU, Shape::features(2), 1, Mode::Inference).unwrap();
        assert!(folds(&plan, 1));
        assert_eq!(role(&plan, 1).unwrap(), Role::Alias);
        let p = QuantParams::new(0.05, -128).unwrap();
        let input = QuantParams::new(0.05, 0).unwrap();
        let relu = ActRange::fused(FusedActivation::Relu, p);
        let nodes = [
            NodeQuant { out: p, act: relu },
            NodeQuant {
                out: p,
                act: ActRange::FULL,
            },
        ];
        let (m, s) = quantize_multiplier(1.0 / 127.0).unwrap();
        let w = QuantWeights {
            input,
            nodes: &nodes,
            weights: &[127, 0, 0, -127],
            bias: &[0, 0],
            multiplier: &[m, m],
            shift: &[s, s],
        };
        let lay = layout(&plan).unwrap();
        assert_eq!((lay.weights, lay.channels, lay.scratch), (4, 2, 0));
        let mut arena = [0i8; 256];
        let mut y = [0.0f32; 2];
        {
            let mut net = QuantNetwork::new(&plan, w, &mut arena[..lay.arena], &mut []).unwrap();
            net.forward(&[1.0, 2.0], &mut y).unwrap();
            assert_eq!(y, [1.0, 0.0]);
            assert!(net.forward(&[f32::NAN, 0.0], &mut y).is_err());
            assert!(net.forward(&[1.0, 2.0, 3.0, 4.0], &mut [0.0; 4]).is_err());
        }
        // A short arena, a record that differs from its input's, a training plan.
        assert!(QuantNetwork::new(&plan, w, &mut arena[..lay.arena - 1], &mut []).is_err());
        let bad = [
            nodes[0],
            NodeQuant {
                out: input,
                act: ActRange::FULL,
            },
        ];
        assert!(QuantNetwork::new(&plan, QuantWeights { nodes: &bad, ..w }, &mut arena, &mut []).is_err());
        let train = Plan::<4>::try_new(&LIN_RELU, Shape::features(2), 1, Mode::Training).unwrap();
        assert!(QuantNetwork::new(&train, w, &mut arena, &mut []).is_err());
        // A Sigmoid has no int8 kernel: named.
        let plan = Plan::<4>::try_new(&LIN_SIG, Shape::features(2), 1, Mode::Inference).unwrap();
        assert!(matches!(
            layout(&plan),
            Err(Error::Unsupported {
                layer: 1,
                op: "Sigmoid",
                ..
            })
        ));
    }
}
