//! What makes [`GpuNetwork`]'s BatchNorm and Dropout nodes behave as `model.train()` inside a
//! training step and as `model.eval()` in [`GpuNetwork::eval_step`] and
//! [`GpuNetwork::forward`]: the eval passes swapped in, the BatchNorm state buffer, the
//! Dropout seeds. `batchnorm.rs` and `dropout.rs` register their nodes here while the network
//! is built.
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

use torchlet::ops::batchnorm::{batch_norm_state_len, BnGeom};
use torchlet::plan::{Exec, Plan};
use torchlet::Buffer;

use super::GpuNetwork;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::dropout::DropoutSpec;
use crate::ops::Pass;

/// Eval-mode passes replacing `len` training passes from `start` in the forward list.
pub(super) struct Swap {
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) passes: Vec<Pass>,
}

/// A BatchNorm node, for the core's batch-statistics check: layer, PyTorch name, geometry
/// (`track_running_stats` as the network runs it).
pub(super) struct BnNode {
    pub(super) layer: usize,
    pub(super) op: &'static str,
    pub(super) g: BnGeom,
}

/// What the train/eval nodes keep in a [`GpuNetwork`].
pub(super) struct Modes {
    /// Running statistics (core layout, `state_len` floats), then the saved statistics.
    pub(super) state: wgpu::Buffer,
    pub(super) state_len: usize,
    /// Floats of saved statistics handed out so far (after `state_len`).
    pub(super) saved_next: usize,
    /// The input gradient a BatchNorm reading the network's input binds (never read).
    pub(super) dummy: wgpu::Buffer,
    pub(super) swaps: Vec<Swap>,
    /// Each Dropout's training pass: its index in the forward list, its node, its spec.
    pub(super) dropout: Vec<(usize, usize, DropoutSpec)>,
    pub(super) batch_norms: Vec<BnNode>,
    /// Dropout seed ([`GpuNetwork::seed_dropout`]) and training steps drawn with it.
    pub(super) seed: u64,
    pub(super) steps: u64,
}

/// SplitMix64's finaliser: a well-mixed 64-bit seed from the user's seed, the step and the layer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Modes {
    /// The state buffer of `plan`, initialised as the core's `init_params` does (running mean
    /// 0, running variance 1, no batch tracked), with room for every BatchNorm's saved
    /// statistics.
    pub(super) fn new<const CAP: usize>(dev: &Device, plan: &Plan<CAP>) -> Result<Modes> {
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
        Ok(Modes {
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

    /// Rewrites the eval passes' uniforms for a batch of `n` (the forward list's own passes
    /// are rewritten by the network).
    pub(super) fn update(&mut self, dev: &Device, n: usize) {
        for p in self.swaps.iter_mut().flat_map(|s| s.passes.iter_mut()) {
            p.update(dev, p.spec(), n);
        }
    }

    /// Checks that BatchNorm layers using batch statistics get more than one value per channel
    /// from a batch of `n`: the core's rule, [`BnGeom::check_batch`]; `training`: every layer
    /// uses batch statistics, else only those without running statistics.
    fn check_batch(&self, n: usize, training: bool) -> Result<()> {
        for b in &self.batch_norms {
            b.g.check_batch(n, training, b.layer, b.op)?;
        }
        Ok(())
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
            let seed = mix(mix(self.seed ^ mix(self.steps)) ^ node as u64);
            forward[k].update(dev, DropoutSpec { seed, ..spec }, n);
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
        self.modes.state_vec(&self.dev)
    }

    /// Replaces the BatchNorm running statistics (`load_state_dict`, resuming a checkpoint);
    /// `state`: `plan.state_len()` floats in the core's layout.
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong length.
    pub fn set_state(&mut self, state: &[f32]) -> Result<()> {
        if state.len() != self.modes.state_len {
            return Err(Error::Core(torchlet::Error::BufferLength {
                buffer: Buffer::State,
                expected: self.modes.state_len,
                found: state.len(),
            }));
        }
        if !state.is_empty() {
            self.dev
                .queue()
                .write_buffer(&self.modes.state, 0, bytemuck::cast_slice(state));
        }
        self.dev.check("uploading the BatchNorm statistics")
    }

    /// Seeds the masks Dropout draws on the GPU (as [`torchlet::Network::set_rng`] does for the CPU's
    /// generator; the masks differ from the CPU's). Each training step after this draws new
    /// masks from `seed` and the number of steps since.
    pub fn seed_dropout(&mut self, seed: u64) {
        self.modes.seed = seed;
        self.modes.steps = 0;
    }
}

impl Modes {
    fn state_vec(&self, dev: &Device) -> Result<Vec<f32>> {
        if self.state_len == 0 {
            return Ok(Vec::new());
        }
        dev.read(&self.state, 0, self.state_len)
    }
}
