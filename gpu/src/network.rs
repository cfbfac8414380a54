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
//! - on the GPU for the whole run: parameters, gradients, the optimiser's momentum, every
//!   layer's output and output gradient (one buffer each, sized for the plan's batch), the
//!   max-pooling indices, the batch and its labels;
//! - created once in [`GpuNetwork::new`]: every buffer, bind group, uniform and the staging
//!   buffers the loss and outputs are read back through;
//! - per training step ([`GpuNetwork::train_step`]): the batch and its labels go up, the SGD
//!   hyper-parameters (32 bytes, so a learning-rate schedule works) go up, one command encoder
//!   records zero-grad, forward, loss, backward and the SGD update, one submission runs it, and
//!   8 bytes come down (the loss and the number of correct predictions).
//!
//! A batch smaller than the plan's (the last one of an epoch) rewrites the uniforms of every
//! dispatch once, and again when the full size returns.
//!
//! Layers this backend cannot run yet give [`Error::Unsupported`] naming the layer index and
//! PyTorch's name for it, when the network is built.

use torchlet::loss::CrossEntropyLoss;
use torchlet::ops::geom::ConvGeom;
use torchlet::optim::{Optimizer, Sgd};
use torchlet::plan::{Exec, Mode, Node, Plan, INPUT};
use torchlet::Buffer;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Kernel;
use crate::ops::{
    check_conv, check_cross_entropy, check_labels, conv_weight_chunk, conv_weight_elems, count_sgd_step, Pass, Spec,
};

/// What one training or evaluation step brought back from the GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The loss of the batch (reduced as the loss asks: mean by default).
    pub loss: f32,
    /// How many samples of the batch had their label as the first maximal logit.
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
    param_len: usize,
    input: wgpu::Buffer,
    labels: wgpu::Buffer,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    momentum: wgpu::Buffer,
    loss: wgpu::Buffer,
    outs: Vec<wgpu::Buffer>,
    node_grads: Vec<wgpu::Buffer>,
    forward: Vec<Pass>,
    backward: Vec<Pass>,
    loss_pass: Pass,
    sgd_pass: Pass,
    loss_staging: wgpu::Buffer,
    out_staging: wgpu::Buffer,
    /// The batch size the uniforms are written for.
    n: usize,
    /// The cross-entropy configuration the loss pass is written for.
    loss_cfg: (f32, bool),
}

/// The dispatches of one node, forward and backward.
struct NodePasses {
    forward: Pass,
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
    /// Gradients and the momentum buffer start at zero.
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
        for (i, node) in nodes.iter().enumerate() {
            supported(i, node)?;
        }
        let batch = plan.batch();
        let in_len = plan.input_shape().numel();
        let out_len = plan.output_shape().numel();
        let input = dev.storage("input batch", batch * in_len)?;
        let labels = dev.storage("labels", batch)?;
        let params_buf = dev.storage_with("parameters", params)?;
        let grads = dev.storage("gradients", plan.param_len())?;
        let momentum = dev.storage("momentum", plan.param_len())?;
        let loss = dev.storage("loss", 2)?;
        let mut outs = Vec::with_capacity(nodes.len());
        let mut node_grads = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let len = batch * node.out_shape.numel();
            outs.push(dev.storage(&format!("layer {i} ({}) output", node.op_name), len)?);
            node_grads.push(dev.storage(&format!("layer {i} ({}) output gradient", node.op_name), len)?);
        }
        let mut forward = Vec::with_capacity(nodes.len());
        let mut backward = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let producer = node.inputs[0];
            let (x, gx) = if producer == INPUT {
                (&input, None)
            } else {
                let p = producer as usize;
                (&outs[p], Some(&node_grads[p]))
            };
            let np = node_passes(
                dev,
                i,
                node,
                batch,
                x,
                gx,
                &outs[i],
                &node_grads[i],
                &params_buf,
                &grads,
            )?;
            forward.push(np.forward);
            backward.push(np.backward);
        }
        // Backward runs the nodes in reverse order.
        let backward: Vec<Pass> = backward.into_iter().rev().flatten().collect();
        let last = nodes.len() - 1;
        let loss_cfg = (0.0, true);
        let loss_pass = Pass::new(
            dev,
            Spec::CrossEntropy {
                classes: out_len,
                x: 0,
                y: 0,
                smoothing: loss_cfg.0,
                mean: loss_cfg.1,
            },
            &[&outs[last], &labels, &node_grads[last], &loss],
            batch,
        );
        let sgd_pass = Pass::new(
            dev,
            Spec::Sgd {
                len: plan.param_len(),
                sgd: Sgd::new(0.0),
                first: true,
            },
            &[&params_buf, &grads, &momentum, &loss],
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
            param_len: plan.param_len(),
            input,
            labels,
            params: params_buf,
            grads,
            momentum,
            loss,
            outs,
            node_grads,
            forward,
            backward,
            loss_pass,
            sgd_pass,
            n: batch,
            loss_cfg,
        };
        net.dev.check("building the network on the GPU")?;
        Ok(net)
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

    /// Checks a batch and uploads it, rewriting the uniforms if its size changed. Returns `n`.
    fn upload(&mut self, images: &[f32], labels: Option<&[u32]>) -> Result<usize> {
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
        if let Some(labels) = labels {
            if labels.len() != n {
                return Err(length(Buffer::Target, n, labels.len()));
            }
            check_labels(labels, self.out_len)?;
            self.dev
                .queue()
                .write_buffer(&self.labels, 0, bytemuck::cast_slice(labels));
        }
        self.dev
            .queue()
            .write_buffer(&self.input, 0, bytemuck::cast_slice(images));
        if n != self.n {
            for p in self.forward.iter_mut().chain(self.backward.iter_mut()) {
                p.update(&self.dev, p.spec(), n);
            }
            self.loss_pass.update(&self.dev, self.loss_pass.spec(), n);
            self.n = n;
        }
        Ok(n)
    }

    /// Points the loss pass at `loss`'s configuration (a uniform rewrite only when it changed).
    fn set_loss(&mut self, loss: &CrossEntropyLoss<'_>) -> Result<()> {
        let cfg = check_cross_entropy(loss)?;
        if cfg != self.loss_cfg {
            let spec = Spec::CrossEntropy {
                classes: self.out_len,
                x: 0,
                y: 0,
                smoothing: cfg.0,
                mean: cfg.1,
            };
            self.loss_pass.update(&self.dev, spec, self.n);
            self.loss_cfg = cfg;
        }
        Ok(())
    }

    /// One training step on a batch, as `optimizer.zero_grad(); loss = criterion(model(x), y);
    /// loss.backward(); optimizer.step()` — and as the CPU's `zero_grad`, `forward`,
    /// `backward`, `step` — in one GPU submission.
    ///
    /// - `images`: `[n, *input_shape]`, `1 <= n <= batch`; `labels`: `[n]` class indices.
    ///
    /// A NaN or infinite loss skips the update on the GPU (parameters and momentum unchanged,
    /// the optimiser's step count restored) and returns [`torchlet::Error::NonFinite`], as
    /// [`torchlet::Network::backward`] does before any step.
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong batch or label length, labels out of range, a non-finite
    /// input or loss, or an invalid hyper-parameter; [`Error::Unsupported`] for a loss
    /// configuration the GPU does not run; [`Error::Wgpu`] / [`Error::DeviceLost`].
    pub fn train_step(
        &mut self,
        images: &[f32],
        labels: &[u32],
        loss: &CrossEntropyLoss<'_>,
        sgd: &mut Sgd,
    ) -> Result<StepStats> {
        self.set_loss(loss)?;
        let n = self.upload(images, Some(labels))?;
        let steps = sgd.steps();
        let first = count_sgd_step(sgd)?;
        let spec = Spec::Sgd {
            len: self.param_len,
            sgd: *sgd,
            first,
        };
        self.sgd_pass.update(&self.dev, spec, n);
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
            self.sgd_pass.encode(&self.dev, &mut cpass);
        }
        enc.copy_buffer_to_buffer(&self.loss, 0, &self.loss_staging, 0, 8);
        self.dev.queue().submit([enc.finish()]);
        let out = match self
            .dev
            .read_staging::<f32>(&self.loss_staging, 2, "running a training step")
        {
            Ok(v) => v,
            Err(e) => {
                sgd.set_steps(steps);
                return Err(e);
            }
        };
        if !out[0].is_finite() {
            sgd.set_steps(steps);
            return Err(Error::Core(torchlet::Error::NonFinite { what: "loss" }));
        }
        Ok(StepStats {
            loss: out[0],
            correct: out[1] as u32,
            n,
        })
    }

    /// Loss and correct count of a batch without training (`torch.no_grad()`); gradients and
    /// parameters are unchanged.
    ///
    /// # Errors
    /// As [`GpuNetwork::train_step`], less the optimiser's.
    pub fn evaluate(&mut self, images: &[f32], labels: &[u32], loss: &CrossEntropyLoss<'_>) -> Result<StepStats> {
        self.set_loss(loss)?;
        let n = self.upload(images, Some(labels))?;
        let mut enc = self.dev.wgpu_device().create_command_encoder(&Default::default());
        {
            let mut cpass = enc.begin_compute_pass(&Default::default());
            for p in &self.forward {
                p.encode(&self.dev, &mut cpass);
            }
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

    /// Runs the model on a batch and returns its output, `[n, *output_shape]` (`model(x)`).
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong batch length or a non-finite input; wgpu errors.
    pub fn forward(&mut self, images: &[f32]) -> Result<Vec<f32>> {
        let n = self.upload(images, None)?;
        let last = self.nodes.len() - 1;
        let len = n * self.out_len;
        let mut enc = self.dev.wgpu_device().create_command_encoder(&Default::default());
        {
            let mut cpass = enc.begin_compute_pass(&Default::default());
            for p in &self.forward {
                p.encode(&self.dev, &mut cpass);
            }
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

    /// SGD's momentum buffer (the optimiser state a checkpoint saves), in the core's layout.
    ///
    /// # Errors
    /// wgpu errors.
    pub fn momentum(&self) -> Result<Vec<f32>> {
        self.dev.read(&self.momentum, 0, self.param_len)
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

    /// Replaces SGD's momentum buffer (resuming from a checkpoint); `momentum` holds
    /// `sgd.state_len(param_len)` floats: `param_len`, or none without momentum.
    ///
    /// # Errors
    /// [`Error::Core`] for a wrong length.
    pub fn set_momentum(&mut self, momentum: &[f32]) -> Result<()> {
        if !momentum.is_empty() && momentum.len() != self.param_len {
            return Err(length(Buffer::OptimizerState, self.param_len, momentum.len()));
        }
        if !momentum.is_empty() {
            self.dev
                .queue()
                .write_buffer(&self.momentum, 0, bytemuck::cast_slice(momentum));
        }
        self.dev.check("uploading the optimiser state")
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

/// Whether the GPU runs node `i`; the error names the layer.
fn supported(i: usize, node: &Node) -> Result<()> {
    let unsupported = |what| Error::Unsupported {
        layer: i,
        op: node.op_name,
        what,
    };
    match node.exec {
        Exec::Conv(g) => check_conv(i, node.op_name, &g),
        Exec::MaxPool(_)
        | Exec::ReLU
        | Exec::LeakyReLU(_)
        | Exec::Sigmoid
        | Exec::Tanh
        | Exec::Linear { .. }
        | Exec::Copy => Ok(()),
        Exec::Add | Exec::Concat { .. } | Exec::Bilinear { .. } => {
            Err(unsupported("layers with two inputs (residual, concat, bilinear)"))
        }
        _ => Err(unsupported("no GPU kernel for this layer yet")),
    }
}

/// The forward dispatch of node `i` and its backward dispatches (input gradient first, when
/// the producer needs one, then weight gradients).
#[allow(clippy::too_many_arguments)]
fn node_passes(
    dev: &Device,
    i: usize,
    node: &Node,
    batch: usize,
    x: &wgpu::Buffer,
    gx: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    params: &wgpu::Buffer,
    grads: &wgpu::Buffer,
) -> Result<NodePasses> {
    let w = node.param_offset;
    let b = node.param_offset + node.weight_len;
    let per_sample = node.out_shape.numel();
    let mut backward = Vec::new();
    let forward = match node.exec {
        Exec::Conv(g) => {
            let elems = conv_weight_elems(&g);
            let chunk = conv_weight_chunk(batch, elems);
            let spec = |kernel| Spec::Conv {
                kernel,
                g: ConvGeom { n: 0, ..g },
                x: 0,
                w,
                b,
                y: 0,
                chunk,
            };
            if let Some(gx) = gx {
                backward.push(Pass::new(
                    dev,
                    spec(Kernel::ConvBackwardInput),
                    &[gx, params, gy],
                    batch,
                ));
            }
            let partial = dev.storage(
                &format!("layer {i} ({}) weight-gradient partial sums", node.op_name),
                batch.div_ceil(chunk) * elems,
            )?;
            backward.push(Pass::new(
                dev,
                spec(Kernel::ConvBackwardWeight),
                &[x, gy, &partial],
                batch,
            ));
            let reduce = Spec::Reduce {
                elems,
                split: node.weight_len,
                w,
                b,
                chunk,
            };
            backward.push(Pass::new(dev, reduce, &[&partial, grads], batch));
            Pass::new(dev, spec(Kernel::ConvForward), &[x, params, y], batch)
        }
        Exec::Linear {
            rows,
            in_f,
            out_f,
            bias,
        } => {
            let spec = |kernel| Spec::Linear {
                kernel,
                rows,
                in_f,
                out_f,
                bias,
                x: 0,
                w,
                b,
                y: 0,
            };
            if let Some(gx) = gx {
                backward.push(Pass::new(
                    dev,
                    spec(Kernel::LinearBackwardInput),
                    &[gx, params, gy],
                    batch,
                ));
            }
            backward.push(Pass::new(
                dev,
                spec(Kernel::LinearBackwardWeight),
                &[x, grads, gy],
                batch,
            ));
            Pass::new(dev, spec(Kernel::LinearForward), &[x, params, y], batch)
        }
        Exec::MaxPool(g) => {
            let indices = dev.storage(&format!("layer {i} (MaxPool) indices"), batch * per_sample)?;
            if let Some(gx) = gx {
                let spec = Spec::Pool {
                    kernel: Kernel::MaxPoolBackwardInput,
                    g,
                    x: 0,
                    y: 0,
                };
                backward.push(Pass::new(dev, spec, &[gx, &indices, gy], batch));
            }
            let spec = Spec::Pool {
                kernel: Kernel::MaxPoolForward,
                g,
                x: 0,
                y: 0,
            };
            Pass::new(dev, spec, &[x, &indices, y], batch)
        }
        Exec::ReLU | Exec::LeakyReLU(_) | Exec::Sigmoid | Exec::Tanh => {
            let (fwd, bwd, slope) = match node.exec {
                Exec::LeakyReLU(s) => (Kernel::LeakyReluForward, Kernel::LeakyReluBackwardInput, s),
                Exec::Sigmoid => (Kernel::SigmoidForward, Kernel::SigmoidBackwardInput, 0.0),
                Exec::Tanh => (Kernel::TanhForward, Kernel::TanhBackwardInput, 0.0),
                _ => (Kernel::ReluForward, Kernel::ReluBackwardInput, 0.0),
            };
            let spec = |kernel| Spec::Elementwise {
                kernel,
                per_sample,
                x: 0,
                y: 0,
                aux: 0,
                slope,
            };
            if let Some(gx) = gx {
                // LeakyReLU's backward reads its input, the others their output.
                let saved = if matches!(node.exec, Exec::LeakyReLU(_)) { x } else { y };
                backward.push(Pass::new(dev, spec(bwd), &[gx, saved, gy], batch));
            }
            Pass::new(dev, spec(fwd), &[x, y], batch)
        }
        Exec::Copy => {
            let spec = |kernel| Spec::Elementwise {
                kernel,
                per_sample,
                x: 0,
                y: 0,
                aux: 0,
                slope: 0.0,
            };
            if let Some(gx) = gx {
                backward.push(Pass::new(dev, spec(Kernel::CopyBackwardInput), &[gx, gy], batch));
            }
            Pass::new(dev, spec(Kernel::CopyForward), &[x, y], batch)
        }
        _ => {
            return Err(Error::Unsupported {
                layer: i,
                op: node.op_name,
                what: "no GPU kernel for this layer yet",
            })
        }
    };
    Ok(NodePasses { forward, backward })
}
