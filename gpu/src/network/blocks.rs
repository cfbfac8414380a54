//! [`GpuNetwork`]'s nodes for BatchNorm, Dropout, average and adaptive pooling and the two
//! merges (residual `Add`, channel `Concat`): the kernels of `crate::ops::layers`, and what
//! makes them behave as `model.train()` inside a training step and as `model.eval()` in
//! [`GpuNetwork::eval_step`] and [`GpuNetwork::forward`].
//!
//! - **Train and eval passes.** A training step runs the network's forward list as built:
//!   BatchNorm with batch statistics (a counting dispatch, then the statistics), Dropout
//!   drawing a mask. Evaluation runs the same list with these nodes' passes swapped for their
//!   eval passes: BatchNorm with the running statistics, Dropout as a copy. A BatchNorm layer
//!   without `track_running_stats` uses batch statistics in both modes, as PyTorch.
//! - **State.** The running statistics live on the GPU in one buffer with the core's state
//!   layout (`plan.state_len()` floats: per layer `running_mean[C]`, `running_var[C]`,
//!   `num_batches_tracked`), followed by each BatchNorm's saved `[mean[C], invstd[C]]` for its
//!   backward pass. [`GpuNetwork::state`] and [`GpuNetwork::set_state`] move the first part,
//!   so checkpoints and `.tlm` files carry it.
//! - **Dropout masks.** Drawn on the GPU from a counter-based hash of a per-step seed and the
//!   element index: before each training step the seed of every Dropout pass is advanced (one
//!   32-byte uniform write per Dropout layer). Same distribution as the CPU's masks, not the
//!   same elements.
//! - **Merges.** A node's backward adds into the output gradient of each producer with one
//!   dispatch per input, so a producer feeding both inputs, or several consumers, receives
//!   every contribution, one dispatch after the other (no atomics).

use torchlet::ops::batchnorm::{batch_norm_state_len, BnGeom};
use torchlet::ops::merge::ConcatGeom;
use torchlet::ops::pool::AdaptiveGeom;
use torchlet::plan::{Exec, Node, Plan, INPUT};
use torchlet::Buffer;

use super::{producer, GpuNetwork};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Kernel;
use crate::ops::{BlockSpec, Pass, Spec};

/// The dispatches of one node of this module: training forward in order, backward in order.
pub(super) struct BlockPasses {
    pub(super) forward: Vec<Pass>,
    pub(super) backward: Vec<Pass>,
}

/// Eval-mode passes replacing `len` training passes from `start` in the forward list.
struct Swap {
    start: usize,
    len: usize,
    passes: Vec<Pass>,
}

/// A BatchNorm node, for the batch-statistics check: layer, PyTorch name, spatial size,
/// whether it has running statistics.
struct BnNode {
    layer: usize,
    op: &'static str,
    spatial: usize,
    track: bool,
}

/// What these nodes keep in a [`GpuNetwork`].
pub(super) struct Blocks {
    /// Running statistics (core layout, `state_len` floats), then the saved statistics.
    state: wgpu::Buffer,
    state_len: usize,
    /// Floats of saved statistics handed out so far (after `state_len`).
    saved_next: usize,
    /// The input gradient a BatchNorm reading the network's input binds (never read).
    dummy: wgpu::Buffer,
    swaps: Vec<Swap>,
    /// Each Dropout's training pass: its index in the forward list, its node, its spec.
    dropout: Vec<(usize, usize, BlockSpec)>,
    batch_norms: Vec<BnNode>,
    /// Dropout seed ([`GpuNetwork::seed_dropout`]) and training steps drawn with it.
    seed: u64,
    steps: u64,
}

/// `Some(answer)` when node `i` is one of this module's layers, `None` otherwise.
pub(super) fn supported(node: &Node) -> Option<Result<()>> {
    match node.exec {
        Exec::BatchNorm(_)
        | Exec::Dropout(_)
        | Exec::AvgPool(_)
        | Exec::AdaptiveAvgPool(_)
        | Exec::AdaptiveMaxPool(_)
        | Exec::Add
        | Exec::Concat(_) => Some(Ok(())),
        _ => None,
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit seed from the user's seed, the step and the layer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Blocks {
    /// The state buffer of `plan`, initialised as the core's `init_params` does (running mean
    /// 0, running variance 1, no batch tracked), with room for every BatchNorm's saved
    /// statistics.
    pub(super) fn new<const CAP: usize>(dev: &Device, plan: &Plan<CAP>) -> Result<Blocks> {
        let state_len = plan.state_len();
        let mut init = vec![0.0f32; state_len];
        let mut saved = 0;
        for node in plan.nodes() {
            if let Exec::BatchNorm(g) = node.exec {
                saved += 2 * g.c;
                if node.state_len == batch_norm_state_len(g.c) {
                    init[node.state_offset + g.c..node.state_offset + 2 * g.c].fill(1.0);
                }
            }
        }
        init.resize(state_len + saved, 0.0);
        Ok(Blocks {
            state: dev.storage_with("BatchNorm running and saved statistics", &init)?,
            state_len,
            saved_next: 0,
            dummy: dev.storage("unused input gradient", 1)?,
            swaps: Vec::new(),
            dropout: Vec::new(),
            batch_norms: Vec::new(),
            seed: 0,
            steps: 0,
        })
    }

    /// The passes of node `i` when it is one of this module's layers, `None` otherwise; `at`
    /// is where its training passes will start in the forward list.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn node_passes(
        &mut self,
        dev: &Device,
        i: usize,
        node: &Node,
        batch: usize,
        input: &wgpu::Buffer,
        outs: &[wgpu::Buffer],
        node_grads: &[wgpu::Buffer],
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
        at: usize,
    ) -> Result<Option<BlockPasses>> {
        let (x, gx) = producer(node.inputs[0], input, outs, node_grads);
        let (y, gy) = (&outs[i], &node_grads[i]);
        let per_sample = node.out_shape.numel();
        let pass = |spec: BlockSpec, buffers: &[&wgpu::Buffer]| Pass::new(dev, Spec::Block(spec), buffers, batch);
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        match node.exec {
            Exec::BatchNorm(g) => {
                let track = g.track_running_stats && node.state_len == batch_norm_state_len(g.c);
                let g = BnGeom {
                    n: 0,
                    track_running_stats: track,
                    ..g
                };
                let saved = self.state_len + self.saved_next;
                self.saved_next += 2 * g.c;
                let spec = |kernel, count, has_gx| BlockSpec::BatchNorm {
                    kernel,
                    g,
                    x: 0,
                    w: node.param_offset,
                    b: node.param_offset + node.weight_len,
                    y: 0,
                    state: node.state_offset,
                    saved,
                    count,
                    has_gx,
                };
                let state = &self.state;
                let fwd = [x, params, y, state];
                if track {
                    forward.push(pass(spec(Kernel::BatchNormForwardTrain, true, false), &fwd));
                }
                forward.push(pass(spec(Kernel::BatchNormForwardTrain, false, false), &fwd));
                if track {
                    let eval = pass(spec(Kernel::BatchNormForwardEval, false, false), &fwd);
                    self.swaps.push(Swap {
                        start: at,
                        len: forward.len(),
                        passes: vec![eval],
                    });
                }
                if gx.is_some() || g.affine {
                    let gx = gx.unwrap_or(&self.dummy);
                    let spec = spec(Kernel::BatchNormBackwardTrain, false, node.inputs[0] != INPUT);
                    backward.push(pass(spec, &[gx, params, gy, &self.state, x, grads]));
                }
                self.batch_norms.push(BnNode {
                    layer: i,
                    op: node.op_name,
                    spatial: g.spatial,
                    track,
                });
            }
            Exec::Dropout(p) => {
                let mask = dev.storage(&format!("layer {i} ({}) mask", node.op_name), batch * per_sample)?;
                let spec = |kernel| BlockSpec::Dropout {
                    kernel,
                    per_sample,
                    x: 0,
                    y: 0,
                    aux: 0,
                    p,
                    seed: 0,
                };
                self.dropout.push((at, i, spec(Kernel::DropoutForward)));
                forward.push(pass(spec(Kernel::DropoutForward), &[x, &mask, y]));
                let copy = Spec::Elementwise {
                    kernel: Kernel::CopyForward,
                    per_sample,
                    x: 0,
                    y: 0,
                    aux: 0,
                    slope: 0.0,
                };
                self.swaps.push(Swap {
                    start: at,
                    len: 1,
                    passes: vec![Pass::new(dev, copy, &[x, y], batch)],
                });
                if let Some(gx) = gx {
                    backward.push(pass(spec(Kernel::DropoutBackwardInput), &[gx, &mask, gy]));
                }
            }
            Exec::AvgPool(g) => {
                let spec = |kernel| BlockSpec::AvgPool { kernel, g, x: 0, y: 0 };
                forward.push(pass(spec(Kernel::AvgPoolForward), &[x, y]));
                if let Some(gx) = gx {
                    backward.push(pass(spec(Kernel::AvgPoolBackwardInput), &[gx, gy]));
                }
            }
            Exec::AdaptiveAvgPool(AdaptiveGeom { c, input, output })
            | Exec::AdaptiveMaxPool(AdaptiveGeom { c, input, output }) => {
                let spec = |kernel| BlockSpec::Adaptive {
                    kernel,
                    c,
                    input,
                    output,
                    x: 0,
                    y: 0,
                };
                if matches!(node.exec, Exec::AdaptiveAvgPool(_)) {
                    forward.push(pass(spec(Kernel::AdaptiveAvgPoolForward), &[x, y]));
                    if let Some(gx) = gx {
                        backward.push(pass(spec(Kernel::AdaptiveAvgPoolBackwardInput), &[gx, gy]));
                    }
                } else {
                    let indices = dev.storage(&format!("layer {i} ({}) indices", node.op_name), batch * per_sample)?;
                    forward.push(pass(spec(Kernel::AdaptiveMaxPoolForward), &[x, &indices, y]));
                    if let Some(gx) = gx {
                        backward.push(pass(spec(Kernel::AdaptiveMaxPoolBackwardInput), &[gx, &indices, gy]));
                    }
                }
            }
            Exec::Add | Exec::Concat(_) => {
                let (x2, gx2) = producer(node.inputs[1], input, outs, node_grads);
                let (a, b, fwd, bwd) = match node.exec {
                    Exec::Concat(ConcatGeom { a, b }) => (a, b, Kernel::ConcatForward, Kernel::ConcatBackwardInput),
                    _ => (per_sample, per_sample, Kernel::AddForward, Kernel::AddBackwardInput),
                };
                let spec = |kernel, second| BlockSpec::Merge {
                    kernel,
                    a,
                    b,
                    second,
                    x: 0,
                    x2: 0,
                    y: 0,
                };
                forward.push(pass(spec(fwd, false), &[x, x2, y]));
                // One dispatch per input: when both inputs come from one producer its gradient
                // receives both contributions, one after the other.
                if let Some(gx) = gx {
                    backward.push(pass(spec(bwd, false), &[gx, gy]));
                }
                if let Some(gx2) = gx2 {
                    backward.push(pass(spec(bwd, true), &[gx2, gy]));
                }
            }
            _ => return Ok(None),
        }
        Ok(Some(BlockPasses { forward, backward }))
    }

    /// Rewrites the eval passes' uniforms for a batch of `n` (the forward list's own passes
    /// are rewritten by the network).
    pub(super) fn update(&mut self, dev: &Device, n: usize) {
        for p in self.swaps.iter_mut().flat_map(|s| s.passes.iter_mut()) {
            p.update(dev, p.spec(), n);
        }
    }

    /// Checks that BatchNorm layers using batch statistics get more than one value per channel
    /// from a batch of `n` (as the core and PyTorch: "Expected more than 1 value per channel
    /// when training"); `training`: every layer does, else only those without running
    /// statistics.
    fn check_batch(&self, n: usize, training: bool) -> Result<()> {
        match self
            .batch_norms
            .iter()
            .find(|b| (training || !b.track) && n * b.spatial < 2)
        {
            None => Ok(()),
            Some(b) => Err(Error::Core(torchlet::Error::Shape {
                layer: b.layer,
                op: b.op,
                what: "batch statistics need more than 1 value per channel (batch x spatial size)",
                expected: 2,
                found: n * b.spatial,
            })),
        }
    }

    /// Before a training step on a batch of `n`: the BatchNorm check, then a new seed for
    /// every Dropout pass of `forward`.
    pub(super) fn prepare_train(&mut self, dev: &Device, forward: &mut [Pass], n: usize) -> Result<()> {
        self.check_batch(n, true)?;
        if self.dropout.is_empty() {
            return Ok(());
        }
        self.steps += 1;
        for &(k, node, spec) in &self.dropout {
            if let BlockSpec::Dropout {
                kernel,
                per_sample,
                x,
                y,
                aux,
                p,
                ..
            } = spec
            {
                let seed = mix(mix(self.seed ^ mix(self.steps)) ^ node as u64);
                let spec = BlockSpec::Dropout {
                    kernel,
                    per_sample,
                    x,
                    y,
                    aux,
                    p,
                    seed,
                };
                forward[k].update(dev, Spec::Block(spec), n);
            }
        }
        Ok(())
    }

    /// Records `forward` in eval mode: this module's nodes run their eval passes.
    pub(super) fn encode_eval(&self, dev: &Device, forward: &[Pass], cpass: &mut wgpu::ComputePass<'_>) {
        let mut swaps = self.swaps.iter().peekable();
        let mut k = 0;
        while k < forward.len() {
            match swaps.peek() {
                Some(s) if s.start == k => {
                    for p in &s.passes {
                        p.encode(dev, cpass);
                    }
                    k += s.len;
                    swaps.next();
                }
                _ => {
                    forward[k].encode(dev, cpass);
                    k += 1;
                }
            }
        }
    }

    /// Before an eval-mode pass on a batch of `n`: BatchNorm layers without running
    /// statistics still need batch statistics.
    pub(super) fn prepare_eval(&self, n: usize) -> Result<()> {
        self.check_batch(n, false)
    }
}

impl GpuNetwork {
    /// The BatchNorm running statistics in the core's state layout (`plan.state_len()`
    /// floats: per layer `running_mean[C]`, `running_var[C]`, `num_batches_tracked`), as
    /// [`torchlet::Network::state`]: what a checkpoint or `.tlm` file saves besides the
    /// parameters. Empty for a model without BatchNorm.
    ///
    /// # Errors
    /// wgpu errors.
    pub fn state(&self) -> Result<Vec<f32>> {
        self.blocks.state_vec(&self.dev)
    }

    /// Replaces the BatchNorm running statistics (`load_state_dict`, resuming a checkpoint);
    /// `state`: `plan.state_len()` floats in the core's layout.
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong length.
    pub fn set_state(&mut self, state: &[f32]) -> Result<()> {
        if state.len() != self.blocks.state_len {
            return Err(Error::Core(torchlet::Error::BufferLength {
                buffer: Buffer::State,
                expected: self.blocks.state_len,
                found: state.len(),
            }));
        }
        if !state.is_empty() {
            self.dev
                .queue()
                .write_buffer(&self.blocks.state, 0, bytemuck::cast_slice(state));
        }
        self.dev.check("uploading the BatchNorm statistics")
    }

    /// Seeds the masks Dropout draws on the GPU (as [`torchlet::Network::set_rng`] does for the CPU's
    /// generator; the masks differ from the CPU's). Each training step after this draws new
    /// masks from `seed` and the number of steps since.
    pub fn seed_dropout(&mut self, seed: u64) {
        self.blocks.seed = seed;
        self.blocks.steps = 0;
    }
}

impl Blocks {
    fn state_vec(&self, dev: &Device) -> Result<Vec<f32>> {
        if self.state_len == 0 {
            return Ok(Vec::new());
        }
        dev.read(&self.state, 0, self.state_len)
    }
}
