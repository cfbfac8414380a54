//! [`GpuNetwork`]: a training plan run on a GPU, step for step what [`torchlet::Network`] does
//! on the CPU.
//!
//! It is built from the core's own [`Plan`] (`Plan::try_new(layers, input, batch,
//! Mode::Training)`): it walks the plan's nodes in order, takes each layer's geometry and its
//! parameter offsets from there, and records one dispatch per kernel. The flat parameter vector
//! therefore has exactly the core's layout (each layer's weight then bias, in model order, as
//! PyTorch's `state_dict`), so parameters move between the CPU and the GPU with one copy and a
//! model trained here is saved as the same `.tlm` file.
//!
//! What lives where:
//!
//! - on the GPU for the whole run: parameters, gradients, the optimiser state (SGD's momentum
//!   or Adam's moments, the core's layout), every layer's output and output gradient (one
//!   buffer each, sized for the plan's batch), the max-pooling indices, the batch and its
//!   labels or target values;
//! - created once in [`GpuNetwork::new`]: every buffer, bind group, uniform and the staging
//!   buffers the loss and outputs are read back through (the optimiser state grows once, on
//!   the first Adam step; a change of the kind of loss or optimiser makes one bind group);
//! - per training step ([`GpuNetwork::step`], or [`GpuNetwork::train_step`] for cross-entropy
//!   and SGD): the batch and its target go up, the optimiser's hyper-parameters (32 or 48
//!   bytes, so a learning-rate schedule works) go up, one command encoder records zero-grad,
//!   forward, loss, backward and the update, one submission runs it, and 8 bytes come down
//!   (the loss and the number of correct predictions).
//!
//! [`GpuNetwork::step`] takes any loss of the core ([`GpuLoss`]: cross-entropy and NLL with
//! class weights, `ignore_index`, label smoothing and spatial targets; MSE, L1, BCE, BCE with
//! logits) against a [`Target`] (class indices, or float values of the output's shape), and
//! either optimiser ([`GpuOptimizer`]: `&mut Sgd` or `&mut Adam`, AdamW and AMSGrad included).
//! [`GpuNetwork::optimizer_state`] and [`GpuNetwork::set_optimizer_state`] move the state in
//! and out for checkpoints, in the core's layout, so a run resumes on either device.
//!
//! A batch smaller than the plan's (the last one of an epoch) rewrites the uniforms of every
//! dispatch once, and again when the full size returns.
//!
//! Each node's passes are built by its op family's file (`network/conv.rs`, `pool.rs`, ...,
//! named as the core's `ops/*`), forward and backward side by side, from one exhaustive match
//! over [`Exec`] with one line per variant (`node_passes`): a layer a later core adds does
//! not compile here until it has an arm. Every layer the core plans has a kernel today; an arm
//! may instead return [`Error::Unsupported`] naming the layer index and PyTorch's name, when
//! the network is built (a transposed convolution with a padding mode other than zeros does).

use torchlet::loss::CrossEntropyLoss;
use torchlet::ops::merge::ConcatGeom;
use torchlet::optim::Sgd;
use torchlet::plan::{Exec, Mode, Node, Plan, INPUT};
use torchlet::{Buffer, Shape};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::activation::Activation;
use crate::ops::optim::SgdSpec;
use crate::ops::{GpuLoss, GpuOptimizer, Pass, Spec, Target};

mod activation;
mod batchnorm;
mod bilinear;
mod conv;
mod conv_transpose;
mod dropout;
mod linear;
mod merge;
mod pad;
mod pool;
mod reshape;
mod shuffle;
mod softmax;
mod train_eval;
mod upsample;

/// What one training or evaluation step brought back from the GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The loss of the batch (reduced as the loss asks: mean by default; the sum of the
    /// per-element losses for reduction `'none'`, as `Loss::loss_and_grad`).
    pub loss: f32,
    /// For the class losses, how many non-ignored positions (samples, for `[N, C]` outputs) had
    /// their label as the first maximal output; 0 for the losses of values.
    pub correct: u32,
    /// The batch size.
    pub n: usize,
}

/// A training plan on a GPU: see the [module docs](self).
pub struct GpuNetwork {
    dev: Device,
    nodes: Vec<Node>,
    batch: usize,
    in_len: usize,
    out_len: usize,
    out_shape: Shape,
    param_len: usize,
    input: wgpu::Buffer,
    /// Labels (`u32`) or target values (`f32`) of a batch: `batch * out_len` words.
    labels: wgpu::Buffer,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    /// The optimiser state in the core's layout: `state_len` floats used of `state_cap`.
    opt_state: wgpu::Buffer,
    state_len: usize,
    state_cap: usize,
    /// No optimiser step has run and no state was set: the state may still be resized.
    state_fresh: bool,
    loss: wgpu::Buffer,
    /// The loss kernels' upstream gradient binding (unused by a training step: one float).
    upstream: wgpu::Buffer,
    /// Class weights or `pos_weight` (binding 6 of the loss kernels), `aux_values` uploaded.
    aux: wgpu::Buffer,
    aux_values: Vec<f32>,
    outs: Vec<wgpu::Buffer>,
    node_grads: Vec<wgpu::Buffer>,
    /// BatchNorm and Dropout: state and eval passes.
    modes: train_eval::Modes,
    forward: Vec<Pass>,
    backward: Vec<Pass>,
    loss_pass: Pass,
    opt_pass: Pass,
    loss_staging: wgpu::Buffer,
    out_staging: wgpu::Buffer,
    /// The batch size the uniforms are written for.
    n: usize,
}

/// The dispatches of one node: forward in order, backward in order (input gradients first,
/// then weight gradients).
#[derive(Default)]
struct NodePasses {
    forward: Vec<Pass>,
    backward: Vec<Pass>,
}

fn length(buffer: Buffer, expected: usize, found: usize) -> Error {
    Error::Core(torchlet::Error::BufferLength {
        buffer,
        expected,
        found,
    })
}

impl GpuNetwork {
    /// Builds the network of a training `plan` on `dev`, with parameters `params`
    /// (`plan.param_len()` floats, the core's layout; for example after
    /// [`torchlet::Network::init_params`] on the CPU, or loaded from a `.tlm` file).
    /// Gradients and the optimiser state start at zero; the state is sized for SGD with
    /// momentum and grows on the first Adam step (or [`GpuNetwork::set_optimizer_state`]).
    ///
    /// # Errors
    /// [`Error::Core`] for an inference plan or a wrong `params` length;
    /// [`Error::Unsupported`] naming the first layer the GPU cannot run; [`Error::TooLarge`]
    /// and wgpu errors (out of memory) while creating buffers.
    pub fn new<const CAP: usize>(dev: &Device, plan: &Plan<CAP>, params: &[f32]) -> Result<GpuNetwork> {
        if plan.mode() != Mode::Training {
            return Err(Error::Core(torchlet::Error::NotReady {
                what: "a training plan (this plan was made for inference)",
            }));
        }
        if params.len() != plan.param_len() {
            return Err(length(Buffer::Params, plan.param_len(), params.len()));
        }
        let nodes: Vec<Node> = plan.nodes().to_vec();
        let batch = plan.batch();
        let in_len = plan.input_shape().numel();
        let out_len = plan.output_shape().numel();
        let input = dev.storage("input batch", batch * in_len)?;
        let out_shape = plan.output_shape();
        let labels = dev.storage("labels or targets", batch * out_len.max(1))?;
        let params_buf = dev.storage_with("parameters", params)?;
        let grads = dev.storage("gradients", plan.param_len())?;
        let opt_state = dev.storage("optimiser state", plan.param_len())?;
        let loss = dev.storage("loss", 2)?;
        let upstream = dev.storage("loss upstream gradient", 1)?;
        let default_loss = GpuLoss::CrossEntropy(CrossEntropyLoss::new());
        let aux_values = default_loss.aux_values(out_shape);
        let aux = dev.storage_with(
            "class weights or pos_weight",
            &vec![1.0f32; out_shape.channels().max(out_shape.last())],
        )?;
        let mut outs = Vec::with_capacity(nodes.len());
        let mut node_grads = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let len = batch * node.out_shape.numel();
            outs.push(dev.storage(&format!("layer {i} ({}) output", node.op_name), len)?);
            node_grads.push(dev.storage(&format!("layer {i} ({}) output gradient", node.op_name), len)?);
        }
        let mut modes = train_eval::Modes::new(dev, plan)?;
        let mut build = Build {
            dev,
            batch,
            input: &input,
            outs: &outs,
            node_grads: &node_grads,
            params: &params_buf,
            grads: &grads,
            modes: &mut modes,
            indices: vec![None; nodes.len()],
            scratch: Vec::new(),
            at: 0,
        };
        let mut forward = Vec::with_capacity(nodes.len());
        let mut backward = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            build.at = forward.len();
            let np = node_passes(&mut build, i, node)?;
            forward.extend(np.forward);
            backward.push(np.backward);
        }
        // Scratch gradients (padded convolution inputs) are cleared with the layers' own.
        let scratch = std::mem::take(&mut build.scratch);
        node_grads.extend(scratch);
        // Backward runs the nodes in reverse order.
        let backward: Vec<Pass> = backward.into_iter().rev().flatten().collect();
        let last = nodes.len() - 1;
        let loss_pass = Pass::new(
            dev,
            default_loss.spec(out_shape, 0, 0, 0, false),
            &[&outs[last], &labels, &node_grads[last], &loss, &upstream, &aux],
            batch,
        );
        let opt_pass = Pass::new(
            dev,
            SgdSpec {
                len: plan.param_len(),
                sgd: Sgd::new(0.0),
                first: true,
            },
            &[&params_buf, &grads, &opt_state, &loss],
            batch,
        );
        let net = GpuNetwork {
            loss_staging: dev.staging("loss readback", 2),
            out_staging: dev.staging("output readback", batch * out_len),
            dev: dev.clone(),
            nodes,
            batch,
            in_len,
            out_len,
            out_shape,
            param_len: plan.param_len(),
            input,
            labels,
            params: params_buf,
            grads,
            opt_state,
            state_len: plan.param_len(),
            state_cap: plan.param_len(),
            state_fresh: true,
            loss,
            upstream,
            aux,
            aux_values,
            outs,
            node_grads,
            modes,
            forward,
            backward,
            loss_pass,
            opt_pass,
            n: batch,
        };
        net.dev.check("building the network on the GPU")?;
        Ok(net)
    }

    /// Every dispatch of a training step in order: forward, loss, backward, optimiser
    /// (for [`crate::profile`]), with the gradient buffers a step clears first.
    pub(crate) fn step_passes(&self) -> (Vec<&Pass>, Vec<&wgpu::Buffer>) {
        let mut passes: Vec<&Pass> = self.forward.iter().collect();
        passes.push(&self.loss_pass);
        passes.extend(self.backward.iter());
        passes.push(&self.opt_pass);
        let mut clear = vec![&self.grads];
        clear.extend(self.node_grads.iter());
        (passes, clear)
    }

    /// The device the network runs on.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// The largest batch (the plan's).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Floats of parameters (the plan's `param_len`).
    pub fn param_len(&self) -> usize {
        self.param_len
    }

    /// Checks a batch and uploads it, with its target for `loss` when given, rewriting the
    /// uniforms if its size changed. Returns `n`.
    fn upload(&mut self, images: &[f32], target: Option<(&GpuLoss<'_>, Target<'_>)>) -> Result<usize> {
        let n = images.len() / self.in_len;
        if !images.len().is_multiple_of(self.in_len) {
            return Err(length(Buffer::Input, (n + 1) * self.in_len, images.len()));
        }
        if n == 0 || n > self.batch {
            return Err(Error::Core(torchlet::Error::BatchSize {
                max: self.batch,
                found: n,
            }));
        }
        if images.iter().any(|v| !v.is_finite()) {
            return Err(Error::Core(torchlet::Error::NonFinite { what: "input" }));
        }
        if let Some((loss, target)) = target {
            loss.check_target(n, self.out_shape, target)?;
            let bytes: &[u8] = match target {
                Target::Classes(labels) => bytemuck::cast_slice(labels),
                Target::Values(values) => bytemuck::cast_slice(values),
            };
            if !bytes.is_empty() {
                self.dev.queue().write_buffer(&self.labels, 0, bytes);
            }
        }
        self.dev
            .queue()
            .write_buffer(&self.input, 0, bytemuck::cast_slice(images));
        if n != self.n {
            for p in self.forward.iter_mut().chain(self.backward.iter_mut()) {
                p.update(&self.dev, p.spec(), n);
            }
            self.loss_pass.update(&self.dev, self.loss_pass.spec(), n);
            self.modes.update(&self.dev, n);
            self.n = n;
        }
        Ok(n)
    }

    /// Points the loss pass at `loss` (a uniform rewrite when only its configuration changed,
    /// a new bind group when the kind of loss did) and uploads its class weights or
    /// `pos_weight` when they changed. The caller has checked `loss` (`check_config`
    /// and the weights' lengths, in `upload`).
    fn set_loss(&mut self, loss: &GpuLoss<'_>) -> Result<()> {
        let spec = loss.spec(self.out_shape, 0, 0, 0, false);
        let aux = loss.aux_values(self.out_shape);
        if !aux.is_empty() && aux != self.aux_values {
            self.dev.queue().write_buffer(&self.aux, 0, bytemuck::cast_slice(&aux));
            self.aux_values = aux;
        }
        if spec.kernel() != self.loss_pass.spec().kernel() {
            let last = self.nodes.len() - 1;
            self.loss_pass = Pass::new(
                &self.dev,
                spec,
                &[
                    &self.outs[last],
                    &self.labels,
                    &self.node_grads[last],
                    &self.loss,
                    &self.upstream,
                    &self.aux,
                ],
                self.n,
            );
        } else if spec != self.loss_pass.spec() {
            self.loss_pass.update(&self.dev, spec, self.n);
        }
        Ok(())
    }

    /// Makes the optimiser state `need` floats long: a fresh network (no step taken, no state
    /// set) resizes it, zeroed; otherwise a different length is an error, as the core's
    /// `step` refuses a state slice of the wrong length.
    fn ensure_state(&mut self, need: usize) -> Result<()> {
        if need == self.state_len {
            return Ok(());
        }
        if !self.state_fresh {
            return Err(length(Buffer::OptimizerState, need, self.state_len));
        }
        if need > self.state_cap {
            self.grow_state(need)?;
        }
        self.state_len = need;
        Ok(())
    }

    /// Replaces the state buffer by a zeroed one of `cap` floats and rebinds the optimiser pass.
    fn grow_state(&mut self, cap: usize) -> Result<()> {
        self.opt_state = self.dev.storage("optimiser state", cap)?;
        self.state_cap = cap;
        self.opt_pass = Pass::new(
            &self.dev,
            self.opt_pass.spec(),
            &[&self.params, &self.grads, &self.opt_state, &self.loss],
            self.n,
        );
        Ok(())
    }

    /// One training step on a batch, as `optimizer.zero_grad(); loss = criterion(model(x), y);
    /// loss.backward(); optimizer.step()` — and as the CPU's `zero_grad`, `forward`,
    /// `backward`, `step` — in one GPU submission, with any loss of the core and either
    /// optimiser:
    ///
    /// ```no_run
    /// # use torchlet::{loss::{CrossEntropyLoss, MSELoss}, optim::{Adam, Sgd}};
    /// # use torchlet_gpu::{GpuLoss, GpuNetwork, Target};
    /// # fn f(net: &mut GpuNetwork, x: &[f32], labels: &[u32], y: &[f32]) -> torchlet_gpu::Result<()> {
    /// let mut adam = Adam::adamw(1e-3);
    /// net.step(x, Target::Classes(labels), &CrossEntropyLoss::new().label_smoothing(0.1).into(), (&mut adam).into())?;
    /// let mut sgd = Sgd::new(0.01).momentum(0.9);
    /// net.step(x, Target::Values(y), &GpuLoss::Mse(MSELoss::new()), (&mut sgd).into())?;
    /// # Ok(()) }
    /// ```
    ///
    /// - `images`: `[n, *input_shape]`, `1 <= n <= batch`; `target`: class indices
    ///   `[n, *spatial]` for CrossEntropyLoss and NLLLoss (the output being `[n, C, *spatial]`),
    ///   values of the output's shape `[n, *output_shape]` for the other losses.
    ///
    /// The optimiser's state lives on the GPU ([`GpuNetwork::optimizer_state`]); its step
    /// count is advanced in `optimizer`. A NaN or infinite loss (BCELoss: an output outside
    /// `[0, 1]` too) skips the update on the GPU (parameters and state unchanged, the step
    /// count restored) and returns [`torchlet::Error::NonFinite`], as
    /// [`torchlet::Network::backward`] does before any step.
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong batch or target length or kind, labels out of range, a
    /// non-finite input or loss, an invalid hyper-parameter, or an optimiser whose state
    /// length differs from the state set or used before; [`Error::Wgpu`] /
    /// [`Error::DeviceLost`].
    pub fn step(
        &mut self,
        images: &[f32],
        target: Target<'_>,
        loss: &GpuLoss<'_>,
        mut optimizer: GpuOptimizer<'_>,
    ) -> Result<StepStats> {
        loss.check_config()?;
        let n = self.upload(images, Some((loss, target)))?;
        self.set_loss(loss)?;
        self.modes.prepare_train(&self.dev, &mut self.forward, n)?;
        let steps = optimizer.steps();
        let spec = optimizer.count_step(self.param_len)?;
        if let Err(e) = self.ensure_state(optimizer.state_len(self.param_len)) {
            optimizer.set_steps(steps);
            return Err(e);
        }
        if spec.kernel() == self.opt_pass.spec().kernel() {
            self.opt_pass.update(&self.dev, spec, n);
        } else {
            self.opt_pass = Pass::new(
                &self.dev,
                spec,
                &[&self.params, &self.grads, &self.opt_state, &self.loss],
                n,
            );
        }
        let mut enc = self.dev.wgpu_device().create_command_encoder(&Default::default());
        enc.clear_buffer(&self.grads, 0, None);
        for g in &self.node_grads {
            enc.clear_buffer(g, 0, None);
        }
        {
            let mut cpass = enc.begin_compute_pass(&Default::default());
            for p in &self.forward {
                p.encode(&self.dev, &mut cpass);
            }
            self.loss_pass.encode(&self.dev, &mut cpass);
            for p in &self.backward {
                p.encode(&self.dev, &mut cpass);
            }
            self.opt_pass.encode(&self.dev, &mut cpass);
        }
        enc.copy_buffer_to_buffer(&self.loss, 0, &self.loss_staging, 0, 8);
        self.dev.queue().submit([enc.finish()]);
        let out = match self
            .dev
            .read_staging::<f32>(&self.loss_staging, 2, "running a training step")
        {
            Ok(v) => v,
            Err(e) => {
                optimizer.set_steps(steps);
                return Err(e);
            }
        };
        if !out[0].is_finite() {
            optimizer.set_steps(steps);
            return Err(Error::Core(torchlet::Error::NonFinite { what: "loss" }));
        }
        self.state_fresh = false;
        Ok(StepStats {
            loss: out[0],
            correct: out[1] as u32,
            n,
        })
    }

    /// [`GpuNetwork::step`] with cross-entropy and SGD, the course's training step.
    ///
    /// - `images`: `[n, *input_shape]`, `1 <= n <= batch`; `labels`: `[n]` class indices.
    ///
    /// # Errors
    /// As [`GpuNetwork::step`].
    pub fn train_step(
        &mut self,
        images: &[f32],
        labels: &[u32],
        loss: &CrossEntropyLoss<'_>,
        sgd: &mut Sgd,
    ) -> Result<StepStats> {
        self.step(
            images,
            Target::Classes(labels),
            &GpuLoss::CrossEntropy(*loss),
            GpuOptimizer::Sgd(sgd),
        )
    }

    /// Loss (and, for class losses, correct count) of a batch without training
    /// (`torch.no_grad()`); gradients, parameters and optimiser state are unchanged.
    ///
    /// - `images`: `[n, *input_shape]`; `target` as [`GpuNetwork::step`].
    ///
    /// # Errors
    /// As [`GpuNetwork::step`], less the optimiser's.
    pub fn eval_step(&mut self, images: &[f32], target: Target<'_>, loss: &GpuLoss<'_>) -> Result<StepStats> {
        loss.check_config()?;
        let n = self.upload(images, Some((loss, target)))?;
        self.set_loss(loss)?;
        self.modes.prepare_eval(n)?;
        let mut enc = self.dev.wgpu_device().create_command_encoder(&Default::default());
        {
            let mut cpass = enc.begin_compute_pass(&Default::default());
            self.modes.encode_eval(&self.dev, &self.forward, &mut cpass);
            // Writes the last layer's output gradient too, which nothing reads before the next
            // training step clears it.
            self.loss_pass.encode(&self.dev, &mut cpass);
        }
        enc.copy_buffer_to_buffer(&self.loss, 0, &self.loss_staging, 0, 8);
        self.dev.queue().submit([enc.finish()]);
        let out = self
            .dev
            .read_staging::<f32>(&self.loss_staging, 2, "evaluating a batch")?;
        Ok(StepStats {
            loss: out[0],
            correct: out[1] as u32,
            n,
        })
    }

    /// [`GpuNetwork::eval_step`] with cross-entropy: loss and correct count of a batch.
    ///
    /// - `images`: `[n, *input_shape]`; `labels`: `[n]` class indices.
    ///
    /// # Errors
    /// As [`GpuNetwork::step`], less the optimiser's.
    pub fn evaluate(&mut self, images: &[f32], labels: &[u32], loss: &CrossEntropyLoss<'_>) -> Result<StepStats> {
        self.eval_step(images, Target::Classes(labels), &GpuLoss::CrossEntropy(*loss))
    }

    /// Runs the model on a batch and returns its output, `[n, *output_shape]` (`model(x)`).
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong batch length or a non-finite input; wgpu errors.
    pub fn forward(&mut self, images: &[f32]) -> Result<Vec<f32>> {
        let n = self.upload(images, None)?;
        self.modes.prepare_eval(n)?;
        let last = self.nodes.len() - 1;
        let len = n * self.out_len;
        let mut enc = self.dev.wgpu_device().create_command_encoder(&Default::default());
        {
            let mut cpass = enc.begin_compute_pass(&Default::default());
            self.modes.encode_eval(&self.dev, &self.forward, &mut cpass);
        }
        enc.copy_buffer_to_buffer(&self.outs[last], 0, &self.out_staging, 0, len as u64 * 4);
        self.dev.queue().submit([enc.finish()]);
        self.dev.read_staging(&self.out_staging, len, "running forward")
    }

    /// The parameters, copied to the CPU in the core's layout (to save a `.tlm` file or
    /// continue on the CPU).
    ///
    /// # Errors
    /// wgpu errors.
    pub fn params(&self) -> Result<Vec<f32>> {
        self.dev.read(&self.params, 0, self.param_len)
    }

    /// The gradients of the last training step, in the core's layout.
    ///
    /// # Errors
    /// wgpu errors.
    pub fn grads(&self) -> Result<Vec<f32>> {
        self.dev.read(&self.grads, 0, self.param_len)
    }

    /// The optimiser state (the part a checkpoint saves), in the core's layout:
    /// `optimizer.state_len(param_len)` floats of the optimiser last stepped or set — SGD's
    /// momentum buffer, or Adam's `[exp_avg | exp_avg_sq]` (`| max_exp_avg_sq` with AMSGrad).
    ///
    /// # Errors
    /// wgpu errors.
    pub fn optimizer_state(&self) -> Result<Vec<f32>> {
        self.dev.read(&self.opt_state, 0, self.state_len)
    }

    /// SGD's momentum buffer: [`GpuNetwork::optimizer_state`] under its former name.
    ///
    /// # Errors
    /// wgpu errors.
    pub fn momentum(&self) -> Result<Vec<f32>> {
        self.optimizer_state()
    }

    /// Replaces the parameters (`load_state_dict`).
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong length.
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.param_len {
            return Err(length(Buffer::Params, self.param_len, params.len()));
        }
        self.dev
            .queue()
            .write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        self.dev.check("uploading parameters")
    }

    /// Replaces the optimiser state (resuming from a checkpoint, saved on the CPU or the GPU):
    /// `state` holds `optimizer.state_len(param_len)` floats in the core's layout, for the
    /// optimiser the next steps use (a different length then is an error).
    ///
    /// # Errors
    /// [`Error::Core`] for a length that is no optimiser's: not 0, 1, 2 or 3 times `param_len`;
    /// wgpu errors (out of memory growing the buffer).
    pub fn set_optimizer_state(&mut self, state: &[f32]) -> Result<()> {
        let p = self.param_len;
        if p == 0 || !state.len().is_multiple_of(p) || state.len() > 3 * p {
            return Err(length(Buffer::OptimizerState, p, state.len()));
        }
        if state.len() > self.state_cap {
            self.grow_state(state.len())?;
        }
        if !state.is_empty() {
            self.dev
                .queue()
                .write_buffer(&self.opt_state, 0, bytemuck::cast_slice(state));
        }
        self.state_len = state.len();
        self.state_fresh = false;
        self.dev.check("uploading the optimiser state")
    }

    /// Replaces SGD's momentum buffer (resuming from a checkpoint); `momentum` holds
    /// `sgd.state_len(param_len)` floats: `param_len`, or none without momentum.
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong length.
    pub fn set_momentum(&mut self, momentum: &[f32]) -> Result<()> {
        if !momentum.is_empty() && momentum.len() != self.param_len {
            return Err(length(Buffer::OptimizerState, self.param_len, momentum.len()));
        }
        self.set_optimizer_state(momentum)
    }

    /// The output of layer `i` of the last forward pass, `[n, *out_shape]` (for tests and debugging).
    ///
    /// # Errors
    /// [`Error::Core`] for a layer index out of range; wgpu errors.
    pub fn layer_output(&self, i: usize) -> Result<Vec<f32>> {
        let node = self.nodes.get(i).ok_or(Error::Core(torchlet::Error::Structure {
            what: "layer index out of range",
        }))?;
        self.dev.read(&self.outs[i], 0, self.n * node.out_shape.numel())
    }
}

/// The output and output gradient of producer `p` (the batch and no gradient for [`INPUT`]).
fn producer<'a>(
    p: u16,
    input: &'a wgpu::Buffer,
    outs: &'a [wgpu::Buffer],
    node_grads: &'a [wgpu::Buffer],
) -> (&'a wgpu::Buffer, Option<&'a wgpu::Buffer>) {
    if p == INPUT {
        (input, None)
    } else {
        (&outs[p as usize], Some(&node_grads[p as usize]))
    }
}

/// What the family builders share while the network is built: the device, the buffers every
/// node binds, and what one node leaves for later ones.
struct Build<'a> {
    dev: &'a Device,
    batch: usize,
    input: &'a wgpu::Buffer,
    outs: &'a [wgpu::Buffer],
    node_grads: &'a [wgpu::Buffer],
    params: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    /// BatchNorm and Dropout register their train/eval passes and state here.
    modes: &'a mut train_eval::Modes,
    /// Each max-pooling node's indices, for a later MaxUnpool.
    indices: Vec<Option<wgpu::Buffer>>,
    /// Gradients of padded convolution inputs: cleared before every step.
    scratch: Vec<wgpu::Buffer>,
    /// Where the node being built starts in the forward list.
    at: usize,
}

impl<'a> Build<'a> {
    /// A pass for the plan's batch.
    fn pass(&self, spec: impl Into<Spec>, buffers: &[&wgpu::Buffer]) -> Pass {
        Pass::new(self.dev, spec, buffers, self.batch)
    }

    /// The output and output gradient of producer `p` (the batch and no gradient for [`INPUT`]).
    fn producer(&self, p: u16) -> (&'a wgpu::Buffer, Option<&'a wgpu::Buffer>) {
        producer(p, self.input, self.outs, self.node_grads)
    }

    /// Node `i`'s output and output gradient.
    fn output(&self, i: usize) -> (&'a wgpu::Buffer, &'a wgpu::Buffer) {
        (&self.outs[i], &self.node_grads[i])
    }

    /// A buffer of `len` floats named after node `i`.
    fn storage(&self, i: usize, node: &Node, what: &str, len: usize) -> Result<wgpu::Buffer> {
        self.dev.storage(&format!("layer {i} ({}) {what}", node.op_name), len)
    }
}

/// The passes of node `i`: one line per layer of the core, each in its op family's file.
fn node_passes(b: &mut Build<'_>, i: usize, node: &Node) -> Result<NodePasses> {
    let per_sample = node.out_shape.numel();
    match node.exec {
        Exec::Conv(g) => conv::passes(b, i, node, g),
        Exec::ConvTranspose(g) => conv_transpose::passes(b, i, node, g),
        Exec::MaxPool(g) => pool::max_pool(b, i, node, g),
        Exec::AvgPool(g) => pool::avg_pool(b, i, node, g),
        Exec::AdaptiveAvgPool(g) => pool::adaptive_avg_pool(b, i, node, g),
        Exec::AdaptiveMaxPool(g) => pool::adaptive_max_pool(b, i, node, g),
        Exec::MaxUnpool(g) => pool::max_unpool(b, i, node, g),
        Exec::Pad2d(g) => pad::passes(b, i, node, g),
        Exec::ReLU => activation::passes(b, i, node, Activation::RELU),
        Exec::LeakyReLU(slope) => activation::passes(b, i, node, Activation::leaky_relu(slope)),
        Exec::Sigmoid => activation::passes(b, i, node, Activation::SIGMOID),
        Exec::Tanh => activation::passes(b, i, node, Activation::TANH),
        Exec::Softmax(g) => softmax::passes(b, i, node, g, softmax::SOFTMAX),
        Exec::LogSoftmax(g) => softmax::passes(b, i, node, g, softmax::LOG_SOFTMAX),
        Exec::BatchNorm(g) => batchnorm::passes(b, i, node, g),
        Exec::Dropout(p) => dropout::passes(b, i, node, p, None),
        Exec::ChannelDropout(p, plane) => dropout::passes(b, i, node, p, Some(plane)),
        Exec::ChannelShuffle(g) => shuffle::passes(b, i, node, g),
        Exec::Upsample(g) => upsample::passes(b, i, node, g),
        Exec::Linear(g) => linear::passes(b, i, node, g),
        Exec::Bilinear(g) => bilinear::passes(b, i, node, g),
        Exec::Add => merge::passes(
            b,
            i,
            node,
            ConcatGeom {
                a: per_sample,
                b: per_sample,
            },
            merge::ADD,
        ),
        Exec::Concat(g) => merge::passes(b, i, node, g, merge::CONCAT),
        Exec::Copy => reshape::passes(b, i, node),
        Exec::ELU(_)
        | Exec::GELU(_)
        | Exec::SiLU
        | Exec::Hardswish
        | Exec::Hardsigmoid
        | Exec::Softplus(_)
        | Exec::Mish
        | Exec::ReLU6 => activation::act_passes(b, i, node),
        Exec::PReLU(g) => activation::prelu_passes(b, i, node, g),
    }
}
