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

use core::ops::Range;

use crate::error::{check_len, Buffer, Error, Result};
use crate::kernels::{Gemm, PORTABLE};
use crate::loss::Loss;
use crate::ops::{
    activation::*, batchnorm::*, bilinear::*, conv::*, conv_transpose::*, dropout::*, linear::*, merge::*, pad::*,
    pool::*, softmax::*,
};
use crate::optim::Optimizer;
use crate::plan::{Exec, Mode, Node, Plan, Slot, INPUT};
use crate::rng::Rng;

/// A model ready to run: a plan plus the memory it runs in. See the [module docs](self).
pub struct Network<'a, const CAP: usize> {
    plan: &'a Plan<CAP>,
    params: Weights<'a>,
    grads: &'a mut [f32],
    state: Weights<'a>,
    arena: &'a mut [f32],
    training: bool,
    rng: Rng,
    /// Batch size of the last completed forward pass (0: none, or consumed by a backward pass).
    last_n: usize,
    last_training: bool,
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
        plan: &'a Plan<CAP>,
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
        plan: &'a Plan<CAP>,
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
        plan: &'a Plan<CAP>,
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
            last_training: true,
            gemm: &PORTABLE,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &'a Plan<CAP> {
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
                Exec::Linear { in_f, .. } => in_f,
                Exec::Bilinear { in1, .. } => in1,
                Exec::BatchNorm(_) => {
                    w.fill(1.0);
                    b.fill(0.0);
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
            if let Exec::BatchNorm(g) = node.exec {
                if node.state_len > 0 {
                    let s = &mut state[node.state_offset..node.state_offset + node.state_len];
                    s[..g.c].fill(0.0);
                    s[g.c..2 * g.c].fill(1.0);
                    s[2 * g.c..].fill(0.0);
                }
            }
        }
        self.last_n = 0;
        Ok(())
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
        // half-overwritten).
        self.last_n = 0;
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
        self.last_n = 0;
        Ok(())
    }
}

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

/// The first `len` floats of a slot, as an arena range.
fn prefix(s: Slot, len: usize) -> Range<usize> {
    s.offset..s.offset + len.min(s.len)
}

/// Splits the arena into `K` disjoint mutable slices; empty ranges are allowed anywhere.
fn split<const K: usize>(arena: &mut [f32], ranges: [Range<usize>; K]) -> Result<[&mut [f32]; K]> {
    let mut order = [0usize; K];
    for (k, o) in order.iter_mut().enumerate() {
        *o = k;
    }
    order.sort_unstable_by_key(|&k| ranges[k].start);
    let mut out: [&mut [f32]; K] = core::array::from_fn(|_| <&mut [f32]>::default());
    let mut rest: &mut [f32] = arena;
    let mut cursor = 0usize;
    for &k in &order {
        let r = &ranges[k];
        if r.is_empty() {
            continue;
        }
        if r.start < cursor || r.end - cursor > rest.len() {
            return Err(Error::Structure {
                what: "internal: arena slots overlap or exceed the arena",
            });
        }
        let tail = core::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(r.start - cursor);
        let (mid, tail) = tail.split_at_mut(r.len());
        out[k] = mid;
        rest = tail;
        cursor = r.end;
    }
    Ok(out)
}

/// `dst += src`.
fn acc(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

fn producer_out<const CAP: usize>(plan: &Plan<CAP>, p: u16, n: usize) -> Range<usize> {
    if p == INPUT {
        prefix(plan.input_slot(), n * plan.input_shape().numel())
    } else {
        let node = &plan.nodes()[p as usize];
        prefix(node.out, n * node.out_shape.numel())
    }
}

fn is_merge(node: &Node) -> bool {
    matches!(node.exec, Exec::Add | Exec::Concat { .. } | Exec::Bilinear { .. })
}

#[allow(clippy::too_many_arguments)]
fn forward_node<const CAP: usize>(
    gemm: &dyn Gemm,
    plan: &Plan<CAP>,
    i: usize,
    n: usize,
    x: &[f32],
    training: bool,
    rng: &mut Rng,
    params: &[f32],
    state: &mut Weights<'_>,
    arena: &mut [f32],
) -> Result<()> {
    let node = &plan.nodes()[i];
    let out_len = n * node.out_shape.numel();
    let ext = |p: u16| p == INPUT;
    let ra = if ext(node.inputs[0]) {
        0..0
    } else {
        producer_out(plan, node.inputs[0], n)
    };
    let two = is_merge(node);
    let same = two && node.inputs[1] == node.inputs[0];
    let rb = if !two || same || ext(node.inputs[1]) {
        0..0
    } else {
        producer_out(plan, node.inputs[1], n)
    };
    let rpool = match node.exec {
        Exec::MaxUnpool { pool, .. } => plan.nodes()[pool as usize].extra.range(),
        _ => 0..0,
    };
    let [y, extra, work, a_m, b_m, pool_idx] = split(
        arena,
        [
            prefix(node.out, out_len),
            node.extra.range(),
            node.work_fwd.range(),
            ra,
            rb,
            rpool,
        ],
    )?;
    let a: &[f32] = if ext(node.inputs[0]) { x } else { a_m };
    let b: &[f32] = if !two {
        &[]
    } else if same {
        a
    } else if ext(node.inputs[1]) {
        x
    } else {
        b_m
    };
    let p = &params[node.param_offset..node.param_offset + node.param_len()];
    let (w, bias) = p.split_at(node.weight_len);
    match node.exec {
        Exec::Conv(mut g) => {
            g.n = n;
            conv_forward_with(gemm, &g, a, w, bias, y, work);
        }
        Exec::ConvTranspose(mut g) => {
            g.n = n;
            conv_transpose_forward_with(gemm, &g, a, w, bias, y, work);
        }
        Exec::MaxPool(mut g) => {
            g.n = n;
            let idx_len = n * node.out_shape.numel();
            max_pool_forward(&g, a, y, &mut extra[..idx_len]);
        }
        Exec::AvgPool(mut g) => {
            g.n = n;
            avg_pool_forward(&g, a, y);
        }
        Exec::AdaptiveAvgPool { c, input, output } => adaptive_avg_pool_forward(n, c, input, output, a, y),
        Exec::AdaptiveMaxPool { c, input, output } => {
            let idx_len = n * node.out_shape.numel();
            adaptive_max_pool_forward(n, c, input, output, a, y, &mut extra[..idx_len]);
        }
        Exec::MaxUnpool {
            c,
            in_spatial,
            out_spatial,
            ..
        } => max_unpool_forward(n, c, in_spatial, out_spatial, a, &pool_idx[..n * c * in_spatial], y),
        Exec::Pad2d { c, h, w, padding, mode } => pad2d_forward(n, c, h, w, padding, mode, a, y),
        Exec::ReLU => relu_forward(a, y),
        Exec::LeakyReLU(s) => leaky_relu_forward(s, a, y),
        Exec::Sigmoid => sigmoid_forward(a, y),
        Exec::Tanh => tanh_forward(a, y),
        Exec::Softmax { outer, axis, inner } => softmax_forward(n * outer, axis, inner, a, y),
        Exec::LogSoftmax { outer, axis, inner } => log_softmax_forward(n * outer, axis, inner, a, y),
        Exec::BatchNorm(mut g) => {
            g.n = n;
            let range = node.state_offset..node.state_offset + node.state_len;
            if (training || !g.track_running_stats) && n * g.spatial < 2 {
                // As PyTorch: "Expected more than 1 value per channel when training".
                return Err(Error::Shape {
                    layer: i,
                    op: node.op_name,
                    what: "batch statistics need more than 1 value per channel (batch x spatial size)",
                    expected: 2,
                    found: n * g.spatial,
                });
            }
            if training && g.track_running_stats {
                batch_norm_forward_train(&g, a, w, bias, &mut state.get_mut()?[range], extra, y);
            } else if !g.track_running_stats {
                batch_norm_forward_train(&g, a, w, bias, &mut [], extra, y);
            } else {
                batch_norm_forward_eval(&g, a, w, bias, &state.get()[range], y);
            }
        }
        Exec::Dropout(p) => {
            if training {
                dropout_forward(p, rng, a, y, &mut extra[..out_len]);
            } else {
                y.copy_from_slice(a);
            }
        }
        Exec::Linear { rows, in_f, out_f, .. } => linear_forward_with(gemm, n * rows, in_f, out_f, a, w, bias, y),
        Exec::Bilinear {
            rows, in1, in2, out, ..
        } => bilinear_forward(n * rows, in1, in2, out, a, b, w, bias, y),
        Exec::Add => add_forward(a, b, y),
        Exec::Concat { a: la, b: lb } => concat_forward(n, la, lb, a, b, y),
        Exec::Copy => y.copy_from_slice(a),
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn backward_node<const CAP: usize>(
    gemm: &dyn Gemm,
    plan: &Plan<CAP>,
    i: usize,
    n: usize,
    training: bool,
    params: &[f32],
    grads: &mut [f32],
    state: &[f32],
    arena: &mut [f32],
) -> Result<()> {
    let node = &plan.nodes()[i];
    let t = (2 * plan.len() + 1 - i) as u16;
    let out_len = n * node.out_shape.numel();
    let two = is_merge(node);
    let (pa, pb) = (node.inputs[0], if two { node.inputs[1] } else { INPUT });
    let same = two && pa == pb;
    let joint = matches!(node.exec, Exec::BatchNorm(_) | Exec::Bilinear { .. });
    let in_len = |p: u16| {
        if p == INPUT {
            n * plan.input_shape().numel()
        } else {
            n * plan.nodes()[p as usize].out_shape.numel()
        }
    };
    // Gradient destinations: the producers' gradient buffers; the input-gradient scratch for
    // kernels that always write one; the backward scratch for a second use of the same tensor.
    let grad_range = |p: u16| -> Range<usize> {
        if p == INPUT {
            if joint {
                prefix(plan.input_grad_slot(), in_len(p))
            } else {
                0..0
            }
        } else {
            prefix(plan.nodes()[p as usize].grad, in_len(p))
        }
    };
    let rga = grad_range(pa);
    let rgb = if !two {
        0..0
    } else if same {
        prefix(node.work_bwd, in_len(pb))
    } else {
        grad_range(pb)
    };
    let keeps_in = node.keeps_input();
    let rxa = if keeps_in { producer_out(plan, pa, n) } else { 0..0 };
    let rxb = if keeps_in && two && !same {
        producer_out(plan, pb, n)
    } else {
        0..0
    };
    let ry = if node.keeps_output() {
        prefix(node.out, out_len)
    } else {
        0..0
    };
    let rwork = if same { 0..0 } else { node.work_bwd.range() };
    let rpool = match node.exec {
        Exec::MaxUnpool { pool, .. } => plan.nodes()[pool as usize].extra.range(),
        _ => 0..0,
    };
    let [gy, ga, gb, xa, xb, y, extra, work, pool_idx] = split(
        arena,
        [
            prefix(node.grad, out_len),
            rga,
            rgb,
            rxa,
            rxb,
            ry,
            node.extra.range(),
            rwork,
            rpool,
        ],
    )?;
    // A gradient buffer starts accumulating at its first writer's step; scratch always does.
    let fresh = |p: u16| p == INPUT || plan.nodes()[p as usize].grad.first == t;
    if !ga.is_empty() && fresh(pa) {
        ga.fill(0.0);
    }
    if !gb.is_empty() && (same || fresh(pb)) {
        gb.fill(0.0);
    }
    let xb: &[f32] = if same { xa } else { xb };
    let has_ga = !ga.is_empty();
    let p = &params[node.param_offset..node.param_offset + node.param_len()];
    let (w, _) = p.split_at(node.weight_len);
    let gp = &mut grads[node.param_offset..node.param_offset + node.param_len()];
    let (gw, gbias) = gp.split_at_mut(node.weight_len);
    let gy: &[f32] = gy;
    match node.exec {
        Exec::Conv(mut g) => {
            g.n = n;
            if has_ga {
                conv_backward_input_with(gemm, &g, w, gy, ga, work);
            }
            conv_backward_weight_with(gemm, &g, xa, gy, gw, gbias, work);
        }
        Exec::ConvTranspose(mut g) => {
            g.n = n;
            if has_ga {
                conv_transpose_backward_input_with(gemm, &g, w, gy, ga, work);
            }
            conv_transpose_backward_weight_with(gemm, &g, xa, gy, gw, gbias, work);
        }
        Exec::MaxPool(mut g) => {
            g.n = n;
            if has_ga {
                max_pool_backward_input(&g, &extra[..out_len], gy, ga);
            }
        }
        Exec::AvgPool(mut g) => {
            g.n = n;
            if has_ga {
                avg_pool_backward_input(&g, gy, ga);
            }
        }
        Exec::AdaptiveAvgPool { c, input, output } => {
            if has_ga {
                adaptive_avg_pool_backward_input(n, c, input, output, gy, ga);
            }
        }
        Exec::AdaptiveMaxPool { c, input, output } => {
            if has_ga {
                adaptive_max_pool_backward_input(n, c, input, output, &extra[..out_len], gy, ga);
            }
        }
        Exec::MaxUnpool {
            c,
            in_spatial,
            out_spatial,
            ..
        } => {
            if has_ga {
                max_unpool_backward_input(n, c, in_spatial, out_spatial, &pool_idx[..n * c * in_spatial], gy, ga);
            }
        }
        Exec::Pad2d { c, h, w, padding, mode } => {
            if has_ga {
                pad2d_backward_input(n, c, h, w, padding, mode, gy, ga);
            }
        }
        Exec::ReLU => {
            if has_ga {
                relu_backward_input(y, gy, ga);
            }
        }
        Exec::LeakyReLU(s) => {
            if has_ga {
                leaky_relu_backward_input(s, xa, gy, ga);
            }
        }
        Exec::Sigmoid => {
            if has_ga {
                sigmoid_backward_input(y, gy, ga);
            }
        }
        Exec::Tanh => {
            if has_ga {
                tanh_backward_input(y, gy, ga);
            }
        }
        Exec::Softmax { outer, axis, inner } => {
            if has_ga {
                softmax_backward_input(n * outer, axis, inner, y, gy, ga);
            }
        }
        Exec::LogSoftmax { outer, axis, inner } => {
            if has_ga {
                log_softmax_backward_input(n * outer, axis, inner, y, gy, ga);
            }
        }
        Exec::BatchNorm(mut g) => {
            g.n = n;
            if training || !g.track_running_stats {
                batch_norm_backward_train(&g, xa, w, extra, gy, ga, gw, gbias);
            } else {
                let st = &state[node.state_offset..node.state_offset + node.state_len];
                batch_norm_backward_eval(&g, xa, w, st, gy, ga, gw, gbias);
            }
        }
        Exec::Dropout(_) => {
            if has_ga {
                if training {
                    dropout_backward_input(&extra[..out_len], gy, ga);
                } else {
                    acc(ga, gy);
                }
            }
        }
        Exec::Linear { rows, in_f, out_f, .. } => {
            if has_ga {
                linear_backward_input_with(gemm, n * rows, in_f, out_f, w, gy, ga);
            }
            linear_backward_weight_with(gemm, n * rows, in_f, out_f, xa, gy, gw, gbias);
        }
        Exec::Bilinear {
            rows, in1, in2, out, ..
        } => {
            bilinear_backward_input(n * rows, in1, in2, out, xa, xb, w, gy, ga, gb);
            bilinear_backward_weight(n * rows, in1, in2, out, xa, xb, gy, gw, gbias);
            if same {
                acc(ga, gb);
            }
        }
        Exec::Add => {
            if has_ga {
                acc(ga, gy);
            }
            if same {
                acc(ga, gy);
            } else if !gb.is_empty() {
                acc(gb, gy);
            }
        }
        Exec::Concat { a: la, b: lb } => {
            let step = la + lb;
            for s in 0..n {
                let g = &gy[s * step..(s + 1) * step];
                if has_ga {
                    acc(&mut ga[s * la..(s + 1) * la], &g[..la]);
                }
                if same {
                    acc(&mut ga[s * la..(s + 1) * la], &g[la..]);
                } else if !gb.is_empty() {
                    acc(&mut gb[s * lb..(s + 1) * lb], &g[la..]);
                }
            }
        }
        Exec::Copy => {
            if has_ga {
                acc(ga, gy);
            }
        }
    }
    Ok(())
}
