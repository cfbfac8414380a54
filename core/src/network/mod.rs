//! A planned model bound to caller-owned memory: forward, backward, parameters.
//!
//! [`Network::new`] takes a [`Plan`] and four buffers the caller owns (parameters, gradients,
//! non-trainable state, activation arena), checks their lengths once, and from then on runs the
//! model without allocating and without panicking. On a microcontroller the buffers are
//! `static`s sized by the plan's `const fn`s; on a desktop they can be `Vec`s.
//!
//! The training step is PyTorch's:
//!
//! | PyTorch | torchlet |
//! |---|---|
//! | `model.train()` / `model.eval()` | [`Network::train`] / [`Network::eval`] |
//! | `out = model(x)` | [`Network::forward`] |
//! | `loss = criterion(out, y); loss.backward()` | [`Network::backward`] |
//! | `optimizer.step()` | [`Network::step`] |
//! | `optimizer.zero_grad()` | [`Network::zero_grad`] |

use crate::error::{check_len, Buffer, Error, Result};
use crate::kernels::{Gemm, PORTABLE};
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::plan::{Exec, Mode, Plan};
use crate::rng::Rng;

/// A model ready to run: a plan plus the memory it runs in. See the [module docs](self).
pub struct Network<'a, const CAP: usize> {
    plan: &'a Plan<'a, CAP>,
    params: Weights<'a>,
    grads: &'a mut [f32],
    state: Weights<'a>,
    arena: &'a mut [f32],
    training: bool,
    rng: Rng,
    /// Batch size of the last completed forward pass (0: none, or consumed by a backward pass).
    last_n: usize,
    last_training: bool,
    /// Batch size of the last completed backward pass (0: none since the last forward).
    last_backward_n: usize,
    /// The matrix multiply of convolutions and linear layers.
    gemm: &'a dyn Gemm,
}

impl<'a, const CAP: usize> Network<'a, CAP> {
    /// Binds `plan` to caller-owned buffers.
    ///
    /// - `params`: `plan.param_len()` floats (weights, then biases, layer by layer);
    /// - `grads`: `plan.param_len()` floats for a training plan, empty for an inference plan;
    /// - `state`: `plan.state_len()` floats (BatchNorm running statistics);
    /// - `arena`: at least `plan.arena_len()` floats.
    ///
    /// Parameters are used as they are: call [`Network::init_params`] for PyTorch's default
    /// initialisation, or load trained weights into `params`. A training plan starts in
    /// training mode, an inference plan in eval mode.
    ///
    /// # Errors
    /// [`Error::BufferLength`] naming the buffer whose length is wrong.
    pub fn new(
        plan: &'a Plan<'a, CAP>,
        params: &'a mut [f32],
        grads: &'a mut [f32],
        state: &'a mut [f32],
        arena: &'a mut [f32],
    ) -> Result<Self> {
        check_len(Buffer::Params, plan.param_len(), params.len())?;
        let training = plan.mode() == Mode::Training;
        check_len(Buffer::Grads, if training { plan.param_len() } else { 0 }, grads.len())?;
        check_len(Buffer::State, plan.state_len(), state.len())?;
        if arena.len() < plan.arena_len() {
            return Err(Error::BufferLength {
                buffer: Buffer::Arena,
                expected: plan.arena_len(),
                found: arena.len(),
            });
        }
        Ok(Network {
            plan,
            params: Weights::Mut(params),
            grads,
            state: Weights::Mut(state),
            arena,
            training,
            rng: Rng::new(0),
            last_n: 0,
            last_backward_n: 0,
            last_training: training,
            gemm: &PORTABLE,
        })
    }

    /// Binds an inference plan to read-only weights, for example the zero-copy parameter and
    /// state slices of a model file in flash ([`crate::model_file`]): nothing is copied to RAM
    /// but the activation arena.
    ///
    /// The network stays in eval mode; [`Network::train`], [`Network::init_params`] and
    /// [`Network::params_mut`] return [`Error::NotReady`].
    ///
    /// # Errors
    /// [`Error::NotReady`] for a training plan; [`Error::BufferLength`] as [`Network::new`].
    pub fn with_weights(
        plan: &'a Plan<'a, CAP>,
        params: &'a [f32],
        state: &'a [f32],
        arena: &'a mut [f32],
    ) -> Result<Self> {
        if plan.mode() != Mode::Inference {
            return Err(Error::NotReady {
                what: "an inference plan (read-only weights cannot train)",
            });
        }
        check_len(Buffer::Params, plan.param_len(), params.len())?;
        check_len(Buffer::State, plan.state_len(), state.len())?;
        if arena.len() < plan.arena_len() {
            return Err(Error::BufferLength {
                buffer: Buffer::Arena,
                expected: plan.arena_len(),
                found: arena.len(),
            });
        }
        Ok(Network {
            plan,
            params: Weights::Ref(params),
            grads: &mut [],
            state: Weights::Ref(state),
            arena,
            training: false,
            rng: Rng::new(0),
            last_n: 0,
            last_backward_n: 0,
            last_training: false,
            gemm: &PORTABLE,
        })
    }

    /// Binds a training plan to shared read-only parameters with its own gradients, state and
    /// arena: one worker of data-parallel training. Several workers run forward and backward on
    /// slices of one batch over the same `params`; the caller sums their `grads` into the network
    /// that owns the parameters and steps that one ([`Network::step`] here returns
    /// [`Error::NotReady`], as the parameters are read-only).
    ///
    /// Buffers as [`Network::new`]; the network starts in training mode.
    ///
    /// # Errors
    /// [`Error::NotReady`] for an inference plan; [`Error::BufferLength`] as [`Network::new`].
    pub fn worker(
        plan: &'a Plan<'a, CAP>,
        params: &'a [f32],
        grads: &'a mut [f32],
        state: &'a mut [f32],
        arena: &'a mut [f32],
    ) -> Result<Self> {
        if plan.mode() != Mode::Training {
            return Err(Error::NotReady {
                what: "a training plan (a worker computes gradients)",
            });
        }
        check_len(Buffer::Params, plan.param_len(), params.len())?;
        check_len(Buffer::Grads, plan.param_len(), grads.len())?;
        check_len(Buffer::State, plan.state_len(), state.len())?;
        if arena.len() < plan.arena_len() {
            return Err(Error::BufferLength {
                buffer: Buffer::Arena,
                expected: plan.arena_len(),
                found: arena.len(),
            });
        }
        Ok(Network {
            plan,
            params: Weights::Ref(params),
            grads,
            state: Weights::Mut(state),
            arena,
            training: true,
            rng: Rng::new(0),
            last_n: 0,
            last_backward_n: 0,
            last_training: true,
            gemm: &PORTABLE,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &'a Plan<'a, CAP> {
        self.plan
    }

    /// Sets the matrix multiply that convolutions and linear layers run on (by default
    /// [`Portable`](crate::kernels::Portable)), for example a kernel for the CPU's vector units
    /// chosen at run time (`torchlet_host::kernels::best()`). Results agree to rounding.
    pub fn set_gemm(&mut self, gemm: &'a dyn Gemm) {
        self.gemm = gemm;
    }

    /// The matrix multiply in use ([`Network::set_gemm`]).
    pub fn gemm(&self) -> &'a dyn Gemm {
        self.gemm
    }

    /// Training mode (`model.train()`): BatchNorm uses batch statistics and updates its running
    /// statistics, Dropout drops.
    ///
    /// # Errors
    /// [`Error::NotReady`] for an inference plan, which has no room for what training keeps.
    pub fn train(&mut self) -> Result<()> {
        if self.plan.mode() != Mode::Training {
            return Err(Error::NotReady {
                what: "a training plan (this network was planned for inference)",
            });
        }
        self.training = true;
        Ok(())
    }

    /// Eval mode (`model.eval()`): BatchNorm uses running statistics, Dropout is the identity.
    pub fn eval(&mut self) {
        self.training = false;
    }

    /// Whether the network is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Seeds the generator Dropout draws its masks from.
    pub fn set_seed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// The dropout generator (saved in checkpoints to resume exactly).
    pub fn rng(&self) -> Rng {
        self.rng
    }

    /// Restores the dropout generator.
    pub fn set_rng(&mut self, rng: Rng) {
        self.rng = rng;
    }

    /// PyTorch's default initialisation, from `seed`: Conv, ConvTranspose and Linear weights
    /// Kaiming-uniform with `a = sqrt(5)` (bound `1/sqrt(fan_in)`), biases uniform in
    /// `±1/sqrt(fan_in)`; Bilinear weight and bias uniform in `±1/sqrt(in1_features)`;
    /// BatchNorm weight 1, bias 0, running mean 0, running variance 1.
    ///
    /// Layer `i` draws from stream `i` of `seed`, so appending layers does not change the
    /// initial weights of the layers before them (inserting one shifts those after it). The numbers differ from `torch.manual_seed`'s.
    ///
    /// # Errors
    /// [`Error::NotReady`] for read-only weights ([`Network::with_weights`]).
    pub fn init_params(&mut self, seed: u64) -> Result<()> {
        let params = self.params.get_mut()?;
        let state = self.state.get_mut()?;
        for (i, node) in self.plan.nodes().iter().enumerate() {
            let mut rng = Rng::with_stream(seed, i as u64);
            let p = &mut params[node.param_offset..node.param_offset + node.param_len()];
            let (w, b) = p.split_at_mut(node.weight_len);
            let fan_in = match node.exec {
                Exec::Conv(g) => (g.c_in / g.groups) * g.kernel_volume(),
                Exec::ConvTranspose(g) => (g.c_out / g.groups) * g.kernel_volume(),
                Exec::Linear(g) => g.in_f,
                Exec::Bilinear(g) => g.in1,
                Exec::BatchNorm(_) => {
                    w.fill(1.0);
                    b.fill(0.0);
                    0
                }
                Exec::PReLU(g) => {
                    w.fill(g.init);
                    0
                }
                _ => 0,
            };
            if fan_in > 0 {
                let bound = 1.0 / crate::math::sqrt(fan_in as f32);
                for v in w.iter_mut().chain(b.iter_mut()) {
                    *v = rng.uniform(-bound, bound);
                }
            }
        }
        self.plan.init_state(state)?;
        self.last_n = 0;
        Ok(())
    }

    /// PyTorch's `reset_running_stats()` on every BatchNorm: running mean 0, running variance 1,
    /// `num_batches_tracked` 0. A zeroed state buffer has running variance 0, which in eval mode
    /// divides by `sqrt(eps)`: call this (or [`Plan::init_state`] on the buffer) after loading
    /// parameters without statistics. [`Network::init_params`] does it too.
    ///
    /// # Errors
    /// [`Error::NotReady`] for read-only weights ([`Network::with_weights`]).
    pub fn reset_running_stats(&mut self) -> Result<()> {
        self.plan.init_state(self.state.get_mut()?)
    }

    /// All parameters, layer by layer (weight then bias), as PyTorch's `parameters()`.
    pub fn params(&self) -> &[f32] {
        self.params.get()
    }
    /// All parameters, mutable (to load weights).
    ///
    /// # Errors
    /// [`Error::NotReady`] for read-only weights ([`Network::with_weights`]).
    pub fn params_mut(&mut self) -> Result<&mut [f32]> {
        self.params.get_mut()
    }
    /// The accumulated gradients, laid out as [`Network::params`].
    pub fn grads(&self) -> &[f32] {
        self.grads
    }
    /// BatchNorm running statistics (`running_mean`, `running_var`, `num_batches_tracked` per layer).
    pub fn state(&self) -> &[f32] {
        self.state.get()
    }
    /// Non-trainable state, mutable (to load it).
    ///
    /// # Errors
    /// [`Error::NotReady`] for read-only weights ([`Network::with_weights`]).
    pub fn state_mut(&mut self) -> Result<&mut [f32]> {
        self.state.get_mut()
    }
    /// Parameters (mutable) and gradients together, for an optimiser.
    ///
    /// # Errors
    /// [`Error::NotReady`] for read-only weights ([`Network::with_weights`]).
    pub fn params_and_grads(&mut self) -> Result<(&mut [f32], &[f32])> {
        Ok((self.params.get_mut()?, self.grads))
    }

    /// Writable gradients, for example to sum the gradients of data-parallel
    /// [workers](Network::worker) into the network that steps.
    pub fn grads_mut(&mut self) -> &mut [f32] {
        self.grads
    }

    /// Sets every gradient to zero (`optimizer.zero_grad()`).
    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    /// One optimiser step on all parameters (`optimizer.step()`); `opt_state` holds
    /// `opt.state_len(plan.param_len())` floats.
    ///
    /// # Errors
    /// Those of [`Optimizer::step`].
    pub fn step<O: Optimizer>(&mut self, opt: &mut O, opt_state: &mut [f32]) -> Result<()> {
        opt.step(self.params.get_mut()?, self.grads, opt_state)
    }

    /// Runs the model on a batch and returns the output.
    ///
    /// `x`: `[n, *input_shape]` with `1 <= n <= plan.batch()`. Returns `[n, *output_shape]`.
    ///
    /// # Errors
    /// [`Error::BufferLength`] (buffer [`Buffer::Input`]) if `x` is not a whole number of
    /// samples; [`Error::BatchSize`] if it holds none or more than the plan's batch;
    /// [`Error::NonFinite`] if `x` contains NaN or infinity.
    pub fn forward(&mut self, x: &[f32]) -> Result<&[f32]> {
        self.forward_observed(x, |_, _| Ok(()))
    }

    /// [`Network::forward`], calling `observe(i, y)` with each node's output `y: [n, *out_shape]`
    /// right after node `i` ran (before a later node may reuse its memory); nodes fused into a
    /// later node's pass ([`crate::plan::Fuse::Into`]) are not observed. Calibration of a
    /// quantised model records activation ranges this way (on an unfused training plan in eval
    /// mode, every node is observed). An error from `observe` stops the pass and is returned.
    ///
    /// # Errors
    /// As [`Network::forward`], and `observe`'s.
    pub fn forward_observed(
        &mut self,
        x: &[f32],
        mut observe: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<&[f32]> {
        let sample = self.plan.input_shape().numel();
        let n = x.len() / sample;
        if x.len() % sample != 0 {
            return Err(Error::BufferLength {
                buffer: Buffer::Input,
                expected: (n + 1) * sample,
                found: x.len(),
            });
        }
        if n == 0 || n > self.plan.batch() {
            return Err(Error::BatchSize {
                max: self.plan.batch(),
                found: n,
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "input" });
        }
        // Until this pass completes, there is no valid output (a failing layer leaves the arena
        // half-overwritten), and the last input gradient is overwritten.
        self.last_n = 0;
        self.last_backward_n = 0;
        let input_slot = self.plan.input_slot();
        if input_slot.len > 0 {
            self.arena[input_slot.offset..input_slot.offset + x.len()].copy_from_slice(x);
        }
        for i in 0..self.plan.len() {
            forward_node(
                self.gemm,
                self.plan,
                i,
                n,
                x,
                self.training,
                &mut self.rng,
                self.params.get(),
                &mut self.state,
                self.arena,
            )?;
            let node = &self.plan.nodes()[i];
            if node.fuse != crate::plan::Fuse::Into {
                let r = node::prefix(node.out, n * node.out_shape.numel());
                let y = self.arena.get(r).ok_or(Error::Structure {
                    what: "a node's buffer lies outside the arena",
                })?;
                observe(i, y)?;
            }
        }
        self.last_n = n;
        self.last_training = self.training;
        self.output()
    }

    /// The output of the last forward pass, `[n, *output_shape]`.
    ///
    /// # Errors
    /// [`Error::NotReady`] before the first forward pass.
    pub fn output(&self) -> Result<&[f32]> {
        if self.last_n == 0 {
            return Err(Error::NotReady { what: "a forward pass" });
        }
        let last = &self.plan.nodes()[self.plan.len() - 1];
        let len = self.last_n * last.out_shape.numel();
        Ok(&self.arena[last.out.offset..last.out.offset + len])
    }

    /// The gradient of the last backward pass with respect to the network input, `[n, *input_shape]`
    /// (PyTorch's `x.grad` after `x.requires_grad_()` and `loss.backward()`), for a plan made
    /// with [`Plan::training_with_input_grad`]. Valid until the next forward pass.
    ///
    /// # Errors
    /// [`Error::NotReady`] for a plan without input gradients, or when no backward pass ran
    /// since the last forward pass.
    pub fn input_grad(&self) -> Result<&[f32]> {
        if !self.plan.has_input_grad() {
            return Err(Error::NotReady {
                what: "a plan with input gradients (Plan::training_with_input_grad)",
            });
        }
        if self.last_backward_n == 0 {
            return Err(Error::NotReady {
                what: "a backward pass after the last forward pass",
            });
        }
        let slot = self.plan.input_grad_slot();
        Ok(&self.arena[slot.offset..slot.offset + self.last_backward_n * self.plan.input_shape().numel()])
    }

    /// The value of `loss` on the last output, without gradients (`torch.no_grad()`).
    ///
    /// # Errors
    /// [`Error::NotReady`] before a forward pass; the loss's own errors (target length, label
    /// range).
    pub fn loss<L: Loss>(&self, loss: &L, target: &L::Target) -> Result<f32> {
        let out = self.output()?;
        loss.loss(out, self.last_n, self.plan.output_shape(), target)
    }

    /// `loss.backward()`: computes `loss` on the last output and accumulates the gradients of
    /// all parameters into [`Network::grads`]. Returns the loss.
    ///
    /// # Errors
    /// [`Error::NotReady`] for an inference plan or before a forward pass;
    /// [`Error::NonFinite`] if the loss is NaN or infinite (no gradient is accumulated then);
    /// the loss's own errors.
    pub fn backward<L: Loss>(&mut self, loss: &L, target: &L::Target) -> Result<f32> {
        self.check_backward()?;
        let last = &self.plan.nodes()[self.plan.len() - 1];
        let n = self.last_n;
        let len = n * last.out_shape.numel();
        let [out, grad] = split(self.arena, [prefix(last.out, len), prefix(last.grad, len)])?;
        let value = loss.loss_and_grad(out, n, last.out_shape, target, grad)?;
        if !value.is_finite() {
            return Err(Error::NonFinite { what: "loss" });
        }
        self.backward_pass()?;
        Ok(value)
    }

    /// Backward from a given gradient of the output (`out.backward(grad_output)`).
    ///
    /// `grad_output`: `[n, *output_shape]` for the `n` of the last forward pass.
    ///
    /// # Errors
    /// As [`Network::backward`], and [`Error::BufferLength`] for a wrong `grad_output` length.
    pub fn backward_from(&mut self, grad_output: &[f32]) -> Result<()> {
        self.check_backward()?;
        let last = &self.plan.nodes()[self.plan.len() - 1];
        let len = self.last_n * last.out_shape.numel();
        check_len(Buffer::Gradient, len, grad_output.len())?;
        if grad_output.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "grad_output" });
        }
        self.arena[last.grad.offset..last.grad.offset + len].copy_from_slice(grad_output);
        self.backward_pass()
    }

    fn check_backward(&self) -> Result<()> {
        if self.plan.mode() != Mode::Training {
            return Err(Error::NotReady {
                what: "a training plan (this network was planned for inference)",
            });
        }
        if self.last_n == 0 {
            return Err(Error::NotReady { what: "a forward pass" });
        }
        Ok(())
    }

    fn backward_pass(&mut self) -> Result<()> {
        let n = self.last_n;
        if self.plan.has_input_grad() {
            let slot = self.plan.input_grad_slot();
            self.arena[slot.offset..slot.offset + n * self.plan.input_shape().numel()].fill(0.0);
        }
        for i in (0..self.plan.len()).rev() {
            backward_node(
                self.gemm,
                self.plan,
                i,
                n,
                self.last_training,
                self.params.get(),
                self.grads,
                self.state.get(),
                self.arena,
            )?;
        }
        // The activations were consumed: a second backward needs a new forward.
        self.last_backward_n = n;
        self.last_n = 0;
        Ok(())
    }
}

mod named;
mod node;

pub use self::named::NamedTensor;
use self::node::{backward_node, forward_node, prefix, split};

/// Parameters or state: writable, or read-only (weights in flash).
enum Weights<'a> {
    Mut(&'a mut [f32]),
    Ref(&'a [f32]),
}

impl Weights<'_> {
    fn get(&self) -> &[f32] {
        match self {
            Weights::Mut(w) => w,
            Weights::Ref(w) => w,
        }
    }
    fn get_mut(&mut self) -> Result<&mut [f32]> {
        match self {
            Weights::Mut(w) => Ok(w),
            Weights::Ref(_) => Err(Error::NotReady {
                what: "writable weights (these are read-only)",
            }),
        }
    }
}
