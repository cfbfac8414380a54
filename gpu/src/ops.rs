//! The GPU operations, one dispatch each, and host-slice wrappers that mirror the core's kernels
//! signature for signature.
//!
//! `Spec` describes one dispatch of a [`Kernel`]: the geometry (from the plan, with the batch
//! size left open) and where each tensor sits in its buffer. `Pass` binds a spec to buffers
//! once (bind group and uniform buffer created at construction) and is re-encoded every step;
//! only a change of batch size rewrites its uniform. [`crate::GpuNetwork`] is built from passes.
//!
//! The free functions (`conv_forward`, `max_pool_backward_input`, `sgd_step`, ...) take and return
//! host slices shaped exactly as the core's functions of the same name, upload, run one
//! submission and read back. They exist to test each shader against the core, one op at a time,
//! and to debug; they allocate buffers per call, so do not train with them.
//!
//! Supported so far: convolution (1-, 2- and 3-d, any stride, dilation and groups, zeros
//! padding), max pooling (any geometry, with argmax indices), ReLU, LeakyReLU, Sigmoid, Tanh,
//! Linear, Flatten/Identity,
//! every loss of the core (cross-entropy and NLL with class weights, `ignore_index` and any
//! reduction; MSE, L1, BCE, BCE with logits) and both optimisers (SGD; Adam, AdamW, AMSGrad):
//! see `loss_optim`.
//! Softmax, log-softmax, padding (Pad2d, and the padded input of convolutions with padding
//! modes reflect, replicate and circular), transposed convolution, max unpooling and bilinear:
//! see `more_layers`.

use torchlet::ops::geom::{ConvGeom, PaddingMode, PoolGeom};
use torchlet::optim::{Adam, Optimizer, Sgd};
use torchlet::Buffer;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Kernel;

mod layers;
pub(crate) use layers::BlockSpec;
pub use layers::{
    adaptive_avg_pool_backward_input, adaptive_avg_pool_forward, adaptive_max_pool_backward_input,
    adaptive_max_pool_forward, add_backward_input, add_forward, avg_pool_backward_input, avg_pool_forward,
    batch_norm_backward_eval, batch_norm_backward_train, batch_norm_forward_eval, batch_norm_forward_train,
    concat_backward_input, concat_forward, dropout_backward_input, dropout_forward,
};

mod loss_optim;
pub use loss_optim::{
    adam_step, cross_entropy, loss_and_grad, loss_backward, loss_forward, GpuLoss, GpuOptimizer, Target,
};

mod more_layers;
pub use more_layers::{
    bilinear_backward_input, bilinear_backward_weight, bilinear_forward, conv_transpose_backward_input,
    conv_transpose_backward_weight, conv_transpose_forward, log_softmax_backward_input, log_softmax_forward,
    max_unpool_backward_input, max_unpool_forward, pad2d_backward_input, pad2d_forward, pad_backward_input,
    pad_forward, padded_conv_geom, softmax_backward_input, softmax_forward,
};
pub(crate) use more_layers::{check_conv_transpose, pad2d_dims, LayerSpec};

/// Most workgroups in one dimension of a dispatch (WebGPU's guaranteed minimum limit).
const MAX_GROUPS: u32 = 65_535;

/// Whether some max-pooling window holds no input position (possible with dilation and
/// padding): its index then aliases an element outside the window, which only a scatter
/// reproduces (see `max_pool_backward_input.wgsl`).
pub(crate) fn has_empty_window(g: &PoolGeom) -> bool {
    (0..3).any(|d| {
        (0..g.output[d]).any(|o| {
            let start = (o * g.stride[d]) as isize - g.pad[d] as isize;
            let end = (start + (g.dilation[d] * g.kernel[d].saturating_sub(1) + 1) as isize).min(g.input[d] as isize);
            let mut first = start;
            if first < 0 {
                let dl = g.dilation[d] as isize;
                first += (-first + dl - 1) / dl * dl;
            }
            first >= end
        })
    })
}

/// Elements of a convolution's weight gradient plus its bias gradient.
pub(crate) fn conv_weight_elems(g: &ConvGeom) -> usize {
    g.weight_len() + if g.bias { g.c_out } else { 0 }
}

/// Invocations per workgroup of the tiled convolution kernels (each computes a 64 x 64 tile).
const CONV_WORKGROUP: usize = 256;
/// Rows and columns of a convolution kernel's output tile.
const CONV_TILE: usize = 64;

/// Workgroups of a tiled convolution pass for a batch of `n` (see the shaders' headers): one
/// per 64 x 64 output tile of each group's implicit GEMM, and per chunk of `chunk` samples for
/// the weight gradient.
pub(crate) fn conv_workgroups(kernel: Kernel, g: &ConvGeom, n: usize, chunk: usize) -> usize {
    let (cin_g, cout_g) = (g.c_in / g.groups.max(1), g.c_out / g.groups.max(1));
    let kvol: usize = g.kernel.iter().product();
    let (rows, cols, chunks) = match kernel {
        Kernel::ConvForward => (cout_g, n * g.out_spatial(), 1),
        Kernel::ConvBackwardInput => (cin_g, n * g.in_spatial(), 1),
        _ => (cout_g, cin_g * kvol + usize::from(g.bias), n.div_ceil(chunk.max(1))),
    };
    rows.div_ceil(CONV_TILE) * cols.div_ceil(CONV_TILE) * chunks * g.groups
}

/// Most floats of partial sums one convolution's weight gradient keeps (16 MiB).
const PARTIAL_BUDGET: usize = 4 << 20;

/// Samples per partial sum of a convolution's weight gradient for batches of up to `batch`:
/// up to 64 chunks, fewer when `elems` partial sums per chunk would exceed [`PARTIAL_BUDGET`].
pub(crate) fn conv_weight_chunk(batch: usize, elems: usize) -> usize {
    let chunks = (PARTIAL_BUDGET / elems.max(1)).clamp(1, 64).min(batch.max(1));
    batch.max(1).div_ceil(chunks)
}

/// One dispatch: which kernel, its geometry, and the element offset of each tensor in its buffer.
/// Counts that scale with the batch are given per sample; [`Spec::words`] takes the batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Spec {
    /// A convolution pass ([`Kernel::ConvForward`], `ConvBackwardInput` or `ConvBackwardWeight`);
    /// `g.n` is ignored; `chunk`: samples per partial sum of `ConvBackwardWeight`.
    Conv {
        kernel: Kernel,
        g: ConvGeom,
        x: usize,
        w: usize,
        b: usize,
        y: usize,
        chunk: usize,
    },
    /// Adds the partial sums of `elems` elements (`chunk` samples each) into the gradients:
    /// elements below `split` at `w + e`, the rest at `b + e - split`.
    Reduce {
        elems: usize,
        split: usize,
        w: usize,
        b: usize,
        chunk: usize,
    },
    /// A linear pass; `rows` per sample.
    Linear {
        kernel: Kernel,
        rows: usize,
        in_f: usize,
        out_f: usize,
        bias: bool,
        x: usize,
        w: usize,
        b: usize,
        y: usize,
    },
    /// An elementwise pass over `per_sample` elements per sample; `aux` is the saved operand
    /// of a backward pass (the output of ReLU, Sigmoid and Tanh, the input of LeakyReLU);
    /// `slope` is LeakyReLU's.
    Elementwise {
        kernel: Kernel,
        per_sample: usize,
        x: usize,
        y: usize,
        aux: usize,
        slope: f32,
    },
    /// A max-pooling pass; `g.n` is ignored.
    Pool {
        kernel: Kernel,
        g: PoolGeom,
        x: usize,
        y: usize,
    },
    /// A BatchNorm, Dropout, average or adaptive pooling or merge pass (`ops/layers.rs`).
    Block(BlockSpec),
    /// A class loss ([`Kernel::CrossEntropy`] or [`Kernel::NllLoss`]) over `[n, c, s]` inputs
    /// at `x`, gradient at `y`; `reduction`: 0 none, 1 mean, 2 sum; `up_mode`: 0 an upstream
    /// gradient of ones, 1 a scalar one, 2 one per position; `per_element`: write each
    /// position's loss instead of the reduced loss and the correct count.
    ClassLoss {
        kernel: Kernel,
        c: usize,
        s: usize,
        x: usize,
        y: usize,
        smoothing: f32,
        reduction: u32,
        up_mode: u32,
        per_element: bool,
        ignore: Option<u32>,
    },
    /// An elementwise loss (MSE, L1, BCE, BCE with logits) over `per_sample` elements per
    /// sample at `x`, gradient at `y`; `last`: the sample's last dim (`pos_weight`'s length);
    /// the other fields as [`Spec::ClassLoss`].
    ElementwiseLoss {
        kernel: Kernel,
        per_sample: usize,
        x: usize,
        y: usize,
        last: usize,
        reduction: u32,
        up_mode: u32,
        per_element: bool,
    },
    /// One Adam step over `len` parameters; `t`: the step number, from 1 (for the bias
    /// corrections).
    Adam { len: usize, adam: Adam, t: u64 },
    /// One SGD step over `len` parameters; `first`: the optimiser's first step.
    Sgd { len: usize, sgd: Sgd, first: bool },
    /// Softmax, padding, transposed convolution, max unpooling or bilinear ([`more_layers`]).
    Layer(more_layers::LayerSpec),
}

fn w32(v: usize) -> u32 {
    // Buffers are capped at the adapter's binding size (< 4 GiB), so element counts and
    // offsets fit in u32; saturate rather than wrap if a caller ever passes more.
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl Spec {
    pub(crate) fn kernel(&self) -> Kernel {
        match *self {
            Spec::Conv { kernel, .. }
            | Spec::Linear { kernel, .. }
            | Spec::Elementwise { kernel, .. }
            | Spec::Pool { kernel, .. } => kernel,
            Spec::Reduce { .. } => Kernel::ReducePartials,
            Spec::Block(l) => l.kernel(),
            Spec::ClassLoss { kernel, .. } | Spec::ElementwiseLoss { kernel, .. } => kernel,
            Spec::Sgd { .. } => Kernel::SgdStep,
            Spec::Adam { .. } => Kernel::AdamStep,
            Spec::Layer(l) => l.kernel(),
        }
    }

    /// Invocations for a batch of `n` (workgroups for the cross-entropy kernel's single group).
    pub(crate) fn invocations(&self, n: usize) -> usize {
        match *self {
            Spec::Conv { kernel, g, chunk, .. } => conv_workgroups(kernel, &g, n, chunk) * CONV_WORKGROUP,
            Spec::Reduce { elems, .. } => elems,
            Spec::Block(l) => l.invocations(n),
            Spec::Linear {
                kernel,
                rows,
                in_f,
                out_f,
                bias,
                ..
            } => match kernel {
                Kernel::LinearForward => n * rows * out_f,
                Kernel::LinearBackwardInput => n * rows * in_f,
                _ => out_f * in_f + if bias { out_f } else { 0 },
            },
            Spec::Elementwise { per_sample, .. } => n * per_sample,
            Spec::Pool { kernel, g, .. } => match kernel {
                Kernel::MaxPoolForward => n * g.c * g.out_spatial(),
                _ if has_empty_window(&g) => n * g.c,
                _ => n * g.c * g.in_spatial(),
            },
            Spec::ClassLoss { .. } | Spec::ElementwiseLoss { .. } => 256,
            Spec::Sgd { len, .. } | Spec::Adam { len, .. } => len,
            Spec::Layer(l) => l.invocations(n),
        }
    }

    /// The uniform words for a batch of `n`, padded to a multiple of 4 words (16 bytes).
    pub(crate) fn words(&self, n: usize) -> Vec<u32> {
        let total = w32(self.invocations(n));
        let mut v: Vec<u32> = match *self {
            Spec::Conv {
                g, x, w, b, y, chunk, ..
            } => {
                let mut v = vec![w32(n), w32(g.c_in), w32(g.c_out), w32(g.groups)];
                v.extend(g.input.map(w32));
                v.extend(g.output.map(w32));
                v.extend(g.kernel.map(w32));
                v.extend(g.stride.map(w32));
                v.extend(g.dilation.map(w32));
                v.extend(g.pad.map(w32));
                v.extend([w32(x), w32(w), w32(b), u32::from(g.bias), w32(y), total, w32(chunk)]);
                v
            }
            Spec::Reduce {
                elems,
                split,
                w,
                b,
                chunk,
            } => vec![
                w32(elems),
                w32(n.div_ceil(chunk.max(1))),
                w32(split),
                w32(w),
                w32(b),
                total,
            ],
            Spec::Linear {
                rows,
                in_f,
                out_f,
                bias,
                x,
                w,
                b,
                y,
                ..
            } => vec![
                w32(n * rows),
                w32(in_f),
                w32(out_f),
                u32::from(bias),
                w32(x),
                w32(w),
                w32(b),
                w32(y),
                total,
            ],
            Spec::Elementwise { x, y, aux, slope, .. } => vec![w32(x), w32(y), w32(aux), total, slope.to_bits()],
            Spec::Block(l) => l.words(n),
            Spec::Pool { g, x, y, .. } => {
                let mut v = vec![w32(n), w32(g.c)];
                v.extend(g.input.map(w32));
                v.extend(g.output.map(w32));
                v.extend(g.kernel.map(w32));
                v.extend(g.stride.map(w32));
                v.extend(g.dilation.map(w32));
                v.extend(g.pad.map(w32));
                v.extend([w32(x), w32(y), total, u32::from(has_empty_window(&g))]);
                v
            }
            Spec::ClassLoss {
                c,
                s,
                x,
                y,
                smoothing,
                reduction,
                up_mode,
                per_element,
                ignore,
                ..
            } => vec![
                w32(n),
                w32(c),
                w32(s),
                w32(x),
                w32(y),
                smoothing.to_bits(),
                reduction,
                up_mode,
                u32::from(per_element),
                ignore.unwrap_or(0),
                u32::from(ignore.is_some()),
            ],
            Spec::ElementwiseLoss {
                per_sample,
                x,
                y,
                last,
                reduction,
                up_mode,
                per_element,
                ..
            } => vec![
                w32(n * per_sample),
                w32(x),
                w32(y),
                reduction,
                up_mode,
                u32::from(per_element),
                w32(last.max(1)),
            ],
            Spec::Adam { len, adam, t } => loss_optim::adam_words(len, &adam, t),
            Spec::Layer(l) => l.words(n),
            Spec::Sgd { len, sgd, first } => vec![
                w32(len),
                u32::from(first),
                u32::from(sgd.nesterov),
                0,
                sgd.lr.to_bits(),
                sgd.momentum.to_bits(),
                sgd.dampening.to_bits(),
                sgd.weight_decay.to_bits(),
            ],
        };
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }
}

/// A dispatch bound to its buffers: pipeline, bind group and uniform made once.
pub(crate) struct Pass {
    spec: Spec,
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    groups: [u32; 2],
}

/// Workgroups `[x, y]` for `invocations` of a `size`-wide kernel.
fn grid(invocations: usize, size: u32) -> [u32; 2] {
    let groups = w32(invocations.div_ceil(size as usize));
    if groups == 0 {
        return [0, 0];
    }
    let x = groups.min(MAX_GROUPS);
    [x, groups.div_ceil(x)]
}

impl Pass {
    /// Binds `spec` to `buffers` (one per [`Kernel::bindings`] entry, in order) for batches of `n`.
    pub(crate) fn new(dev: &Device, spec: Spec, buffers: &[&wgpu::Buffer], n: usize) -> Pass {
        let kernel = spec.kernel();
        let words = spec.words(n);
        let uniform = dev.wgpu_device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(kernel.source().0),
            size: (words.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        dev.queue().write_buffer(&uniform, 0, bytemuck::cast_slice(&words));
        let pipeline = dev.kernels().pipeline(kernel);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (&binding, buf) in kernel.bindings().iter().zip(buffers) {
            entries.push(wgpu::BindGroupEntry {
                binding,
                resource: buf.as_entire_binding(),
            });
        }
        let bind_group = dev.wgpu_device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.source().0),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Pass {
            spec,
            uniform,
            bind_group,
            groups: Self::groups_for(&spec, n),
        }
    }

    fn groups_for(spec: &Spec, n: usize) -> [u32; 2] {
        match spec {
            Spec::ClassLoss { .. } | Spec::ElementwiseLoss { .. } => [1, 1],
            _ => grid(spec.invocations(n), spec.kernel().workgroup_size()),
        }
    }

    /// Rewrites the uniform for a new spec (same kernel and buffers) or batch size.
    pub(crate) fn update(&mut self, dev: &Device, spec: Spec, n: usize) {
        self.spec = spec;
        dev.queue()
            .write_buffer(&self.uniform, 0, bytemuck::cast_slice(&spec.words(n)));
        self.groups = Self::groups_for(&spec, n);
    }

    /// The spec this pass runs.
    pub(crate) fn spec(&self) -> Spec {
        self.spec
    }

    /// Records the dispatch.
    pub(crate) fn encode(&self, dev: &Device, cpass: &mut wgpu::ComputePass<'_>) {
        if self.groups[0] == 0 {
            return;
        }
        cpass.set_pipeline(dev.kernels().pipeline(self.spec.kernel()));
        cpass.set_bind_group(0, &self.bind_group, &[]);
        cpass.dispatch_workgroups(self.groups[0], self.groups[1], 1);
    }
}

/// Runs `passes` in one compute pass and one submission, then checks for wgpu errors.
pub(crate) fn submit(dev: &Device, passes: &[&Pass], context: &'static str) -> Result<()> {
    let mut enc = dev.wgpu_device().create_command_encoder(&Default::default());
    {
        let mut cpass = enc.begin_compute_pass(&Default::default());
        for p in passes {
            p.encode(dev, &mut cpass);
        }
    }
    dev.queue().submit([enc.finish()]);
    dev.check(context)
}

fn check_len(buffer: Buffer, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Core(torchlet::Error::BufferLength {
            buffer,
            expected,
            found,
        }))
    }
}

/// The padding modes the GPU convolution supports.
pub(crate) fn check_conv(layer: usize, op: &'static str, g: &ConvGeom) -> Result<()> {
    if g.mode != PaddingMode::Zeros {
        return Err(Error::Unsupported {
            layer,
            op,
            what: "padding_mode other than 'zeros'",
        });
    }
    Ok(())
}

/// Validates `sgd`'s hyper-parameters with the core's own rules and counts the step, returning
/// whether it is the first; the update itself runs on the GPU.
///
/// The core's [`Sgd::step`] checks its hyper-parameters before touching any buffer and then
/// increments its step count; stepping zero parameters does exactly that and nothing else.
pub(crate) fn count_sgd_step(sgd: &mut Sgd) -> Result<bool> {
    let first = sgd.steps() == 0;
    sgd.step(&mut [], &[], &mut [])?;
    Ok(first)
}

fn concat(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

/// GPU [`torchlet::ops::conv::conv_forward`] (zeros padding): `y = conv(x, w) + b`.
///
/// - `x`: `[N, C_in, D, H, W]`; `w`: `[C_out, C_in / groups, kD, kH, kW]`; `b`: `[C_out]`,
///   empty when `!g.bias`; `y`: `[N, C_out, oD, oH, oW]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; [`Error::Unsupported`] for a padding mode
/// other than zeros; wgpu errors.
pub fn conv_forward(dev: &Device, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Result<()> {
    check_conv(usize::MAX, "conv_forward", g)?;
    check_len(Buffer::Input, g.n * g.c_in * g.in_spatial(), x.len())?;
    check_len(Buffer::Params, g.weight_len(), w.len())?;
    check_len(Buffer::Params, if g.bias { g.c_out } else { 0 }, b.len())?;
    check_len(Buffer::Output, g.n * g.c_out * g.out_spatial(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let pb = dev.storage_with("params", &concat(w, b))?;
    let yb = dev.storage("y", y.len())?;
    let spec = Spec::Conv {
        kernel: Kernel::ConvForward,
        g: *g,
        x: 0,
        w: 0,
        b: w.len(),
        y: 0,
        chunk: 0,
    };
    let pass = Pass::new(dev, spec, &[&xb, &pb, &yb], g.n);
    submit(dev, &[&pass], "running conv_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::conv::conv_backward_input`] (zeros padding): `gx += dL/dx`.
///
/// - `w`: `[C_out, C_in / groups, kD, kH, kW]`; `gy`: `[N, C_out, oD, oH, oW]`;
///   `gx`: `[N, C_in, D, H, W]`, accumulated.
///
/// # Errors
/// As [`conv_forward`].
pub fn conv_backward_input(dev: &Device, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    check_conv(usize::MAX, "conv_backward_input", g)?;
    check_len(Buffer::Params, g.weight_len(), w.len())?;
    check_len(Buffer::Gradient, g.n * g.c_out * g.out_spatial(), gy.len())?;
    check_len(Buffer::Gradient, g.n * g.c_in * g.in_spatial(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let pb = dev.storage_with("params", w)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = Spec::Conv {
        kernel: Kernel::ConvBackwardInput,
        g: *g,
        x: 0,
        w: 0,
        b: 0,
        y: 0,
        chunk: 0,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &pb, &gyb], g.n);
    submit(dev, &[&pass], "running conv_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::conv::conv_backward_weight`] (zeros padding): `gw += dL/dw`,
/// `gb += dL/db`.
///
/// - `x`: `[N, C_in, D, H, W]`; `gy`: `[N, C_out, oD, oH, oW]`;
///   `gw`: `[C_out, C_in / groups, kD, kH, kW]` and `gb`: `[C_out]` (empty without bias), accumulated.
///
/// # Errors
/// As [`conv_forward`].
pub fn conv_backward_weight(
    dev: &Device,
    g: &ConvGeom,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    check_conv(usize::MAX, "conv_backward_weight", g)?;
    check_len(Buffer::Input, g.n * g.c_in * g.in_spatial(), x.len())?;
    check_len(Buffer::Gradient, g.n * g.c_out * g.out_spatial(), gy.len())?;
    check_len(Buffer::Grads, g.weight_len(), gw.len())?;
    check_len(Buffer::Grads, if g.bias { g.c_out } else { 0 }, gb.len())?;
    let xb = dev.storage_with("x", x)?;
    let gb_buf = dev.storage_with("grads", &concat(gw, gb))?;
    let gyb = dev.storage_with("gy", gy)?;
    let elems = conv_weight_elems(g);
    let chunk = conv_weight_chunk(g.n, elems);
    let partial = dev.storage("partial sums", g.n.div_ceil(chunk) * elems)?;
    let spec = Spec::Conv {
        kernel: Kernel::ConvBackwardWeight,
        g: *g,
        x: 0,
        w: 0,
        b: 0,
        y: 0,
        chunk,
    };
    let pass = Pass::new(dev, spec, &[&xb, &gyb, &partial], g.n);
    let reduce = Spec::Reduce {
        elems,
        split: gw.len(),
        w: 0,
        b: gw.len(),
        chunk,
    };
    let reduce = Pass::new(dev, reduce, &[&partial, &gb_buf], g.n);
    submit(dev, &[&pass, &reduce], "running conv_backward_weight")?;
    let out = dev.read::<f32>(&gb_buf, 0, gw.len() + gb.len())?;
    let (w_part, b_part) = out.split_at(gw.len());
    gw.copy_from_slice(w_part);
    gb.copy_from_slice(b_part);
    Ok(())
}

/// GPU [`torchlet::ops::linear::linear_forward`]: `y = x · wᵀ + b`.
///
/// - `x`: `[rows, in_f]`; `w`: `[out_f, in_f]`; `b`: `[out_f]` or empty; `y`: `[rows, out_f]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn linear_forward(
    dev: &Device,
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, rows * in_f, x.len())?;
    check_len(Buffer::Params, out_f * in_f, w.len())?;
    if !b.is_empty() {
        check_len(Buffer::Params, out_f, b.len())?;
    }
    check_len(Buffer::Output, rows * out_f, y.len())?;
    let xb = dev.storage_with("x", x)?;
    let pb = dev.storage_with("params", &concat(w, b))?;
    let yb = dev.storage("y", y.len())?;
    let spec = Spec::Linear {
        kernel: Kernel::LinearForward,
        rows: 1,
        in_f,
        out_f,
        bias: !b.is_empty(),
        x: 0,
        w: 0,
        b: w.len(),
        y: 0,
    };
    let pass = Pass::new(dev, spec, &[&xb, &pb, &yb], rows);
    submit(dev, &[&pass], "running linear_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::linear::linear_backward_input`]: `gx += gy · w`.
///
/// - `w`: `[out_f, in_f]`; `gy`: `[rows, out_f]`; `gx`: `[rows, in_f]`, accumulated.
///
/// # Errors
/// As [`linear_forward`].
pub fn linear_backward_input(
    dev: &Device,
    rows: usize,
    in_f: usize,
    out_f: usize,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Params, out_f * in_f, w.len())?;
    check_len(Buffer::Gradient, rows * out_f, gy.len())?;
    check_len(Buffer::Gradient, rows * in_f, gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let pb = dev.storage_with("params", w)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = Spec::Linear {
        kernel: Kernel::LinearBackwardInput,
        rows: 1,
        in_f,
        out_f,
        bias: false,
        x: 0,
        w: 0,
        b: 0,
        y: 0,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &pb, &gyb], rows);
    submit(dev, &[&pass], "running linear_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::linear::linear_backward_weight`]: `gw += gyᵀ · x`, `gb += Σ_rows gy`.
///
/// - `x`: `[rows, in_f]`; `gy`: `[rows, out_f]`; `gw`: `[out_f, in_f]` and `gb`: `[out_f]`
///   (or empty), accumulated.
///
/// # Errors
/// As [`linear_forward`].
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_weight(
    dev: &Device,
    rows: usize,
    in_f: usize,
    out_f: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, rows * in_f, x.len())?;
    check_len(Buffer::Gradient, rows * out_f, gy.len())?;
    check_len(Buffer::Grads, out_f * in_f, gw.len())?;
    if !gb.is_empty() {
        check_len(Buffer::Grads, out_f, gb.len())?;
    }
    let xb = dev.storage_with("x", x)?;
    let gbuf = dev.storage_with("grads", &concat(gw, gb))?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = Spec::Linear {
        kernel: Kernel::LinearBackwardWeight,
        rows: 1,
        in_f,
        out_f,
        bias: !gb.is_empty(),
        x: 0,
        w: 0,
        b: gw.len(),
        y: 0,
    };
    let pass = Pass::new(dev, spec, &[&xb, &gbuf, &gyb], rows);
    submit(dev, &[&pass], "running linear_backward_weight")?;
    let out = dev.read::<f32>(&gbuf, 0, gw.len() + gb.len())?;
    let (w_part, b_part) = out.split_at(gw.len());
    gw.copy_from_slice(w_part);
    gb.copy_from_slice(b_part);
    Ok(())
}

/// Runs an elementwise forward kernel: `y = f(x)`.
fn elementwise_forward(dev: &Device, kernel: Kernel, slope: f32, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Output, x.len(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = Spec::Elementwise {
        kernel,
        per_sample: x.len(),
        x: 0,
        y: 0,
        aux: 0,
        slope,
    };
    let pass = Pass::new(dev, spec, &[&xb, &yb], 1);
    submit(dev, &[&pass], "running an activation's forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// Runs an elementwise backward kernel: `gx += f'(saved) * gy`.
fn elementwise_backward(
    dev: &Device,
    kernel: Kernel,
    slope: f32,
    saved: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Gradient, saved.len(), gy.len())?;
    check_len(Buffer::Gradient, saved.len(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let sb = dev.storage_with("saved", saved)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = Spec::Elementwise {
        kernel,
        per_sample: saved.len(),
        x: 0,
        y: 0,
        aux: 0,
        slope,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &sb, &gyb], 1);
    submit(dev, &[&pass], "running an activation's backward")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::activation::relu_forward`]: `y = max(x, 0)`; `x`, `y`: `[*]`, same length.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; wgpu errors.
pub fn relu_forward(dev: &Device, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::ReluForward, 0.0, x, y)
}

/// GPU [`torchlet::ops::activation::relu_backward_input`]: `gx += gy` where `y > 0`.
///
/// - `y`: the forward output `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn relu_backward_input(dev: &Device, y: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    elementwise_backward(dev, Kernel::ReluBackwardInput, 0.0, y, gy, gx)
}

/// GPU [`torchlet::ops::activation::leaky_relu_forward`]: `y = x` if `x > 0`, else
/// `negative_slope * x`; `x`, `y`: `[*]`.
///
/// # Errors
/// As [`relu_forward`].
pub fn leaky_relu_forward(dev: &Device, negative_slope: f32, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::LeakyReluForward, negative_slope, x, y)
}

/// GPU [`torchlet::ops::activation::leaky_relu_backward_input`]: `gx += gy` if `x > 0`, else
/// `negative_slope * gy`.
///
/// - `x`: the forward input `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn leaky_relu_backward_input(
    dev: &Device,
    negative_slope: f32,
    x: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    elementwise_backward(dev, Kernel::LeakyReluBackwardInput, negative_slope, x, gy, gx)
}

/// GPU [`torchlet::ops::activation::sigmoid_forward`]: `y = 1 / (1 + e^-x)`; `x`, `y`: `[*]`.
///
/// # Errors
/// As [`relu_forward`].
pub fn sigmoid_forward(dev: &Device, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::SigmoidForward, 0.0, x, y)
}

/// GPU [`torchlet::ops::activation::sigmoid_backward_input`]: `gx += gy * y * (1 - y)`.
///
/// - `y`: the forward output `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn sigmoid_backward_input(dev: &Device, y: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    elementwise_backward(dev, Kernel::SigmoidBackwardInput, 0.0, y, gy, gx)
}

/// GPU [`torchlet::ops::activation::tanh_forward`]: `y = tanh(x)`; `x`, `y`: `[*]`.
///
/// # Errors
/// As [`relu_forward`].
pub fn tanh_forward(dev: &Device, x: &[f32], y: &mut [f32]) -> Result<()> {
    elementwise_forward(dev, Kernel::TanhForward, 0.0, x, y)
}

/// GPU [`torchlet::ops::activation::tanh_backward_input`]: `gx += gy * (1 - y^2)`.
///
/// - `y`: the forward output `[*]`; `gy`: `[*]`; `gx`: `[*]`, accumulated.
///
/// # Errors
/// As [`relu_forward`].
pub fn tanh_backward_input(dev: &Device, y: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    elementwise_backward(dev, Kernel::TanhBackwardInput, 0.0, y, gy, gx)
}

/// GPU [`torchlet::ops::pool::max_pool_forward`], with the argmax indices as plain `u32`
/// (the core stores them as `f32` bit patterns: compare with
/// [`torchlet::ops::pool::decode_index`]).
///
/// - `x`: `[N, C, D, H, W]`; `y`, `indices`: `[N, C, oD, oH, oW]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; wgpu errors.
pub fn max_pool_forward(dev: &Device, g: &PoolGeom, x: &[f32], y: &mut [f32], indices: &mut [u32]) -> Result<()> {
    check_len(Buffer::Input, g.n * g.c * g.in_spatial(), x.len())?;
    check_len(Buffer::Output, g.n * g.c * g.out_spatial(), y.len())?;
    check_len(Buffer::Output, y.len(), indices.len())?;
    let xb = dev.storage_with("x", x)?;
    let ib = dev.storage("indices", y.len())?;
    let yb = dev.storage("y", y.len())?;
    let spec = Spec::Pool {
        kernel: Kernel::MaxPoolForward,
        g: *g,
        x: 0,
        y: 0,
    };
    let pass = Pass::new(dev, spec, &[&xb, &ib, &yb], g.n);
    submit(dev, &[&pass], "running max_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    indices.copy_from_slice(&dev.read::<u32>(&ib, 0, indices.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::max_pool_backward_input`]: `gx[n, c, indices[n, c, o]] += gy[n, c, o]`.
///
/// - `indices`, `gy`: `[N, C, oD, oH, oW]`; `gx`: `[N, C, D, H, W]`, accumulated.
///
/// # Errors
/// As [`max_pool_forward`].
pub fn max_pool_backward_input(dev: &Device, g: &PoolGeom, indices: &[u32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    check_len(Buffer::Gradient, g.n * g.c * g.out_spatial(), gy.len())?;
    check_len(Buffer::Gradient, gy.len(), indices.len())?;
    check_len(Buffer::Gradient, g.n * g.c * g.in_spatial(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let ib = dev.storage_with("indices", indices)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = Spec::Pool {
        kernel: Kernel::MaxPoolBackwardInput,
        g: *g,
        x: 0,
        y: 0,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &ib, &gyb], g.n);
    submit(dev, &[&pass], "running max_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`Sgd`] step, as [`Optimizer::step`]: updates `params` from `grads` and the momentum
/// buffer `state` (`sgd.state_len(params.len())` floats), and counts the step in `sgd`.
///
/// # Errors
/// [`Error::Core`] for an invalid hyper-parameter (the core's checks, nothing modified) or
/// wrong lengths; wgpu errors.
pub fn sgd_step(dev: &Device, sgd: &mut Sgd, params: &mut [f32], grads: &[f32], state: &mut [f32]) -> Result<()> {
    check_len(Buffer::Grads, params.len(), grads.len())?;
    check_len(Buffer::OptimizerState, sgd.state_len(params.len()), state.len())?;
    let first = count_sgd_step(sgd)?;
    let pb = dev.storage_with("params", params)?;
    let gb = dev.storage_with("grads", grads)?;
    let sb = dev.storage_with("momentum", state)?;
    let lb = dev.storage_with("loss", &[0.0f32])?;
    let spec = Spec::Sgd {
        len: params.len(),
        sgd: *sgd,
        first,
    };
    let pass = Pass::new(dev, spec, &[&pb, &gb, &sb, &lb], 1);
    submit(dev, &[&pass], "running sgd_step")?;
    params.copy_from_slice(&dev.read::<f32>(&pb, 0, params.len())?);
    state.copy_from_slice(&dev.read::<f32>(&sb, 0, state.len())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_gradient_chunks_cover_the_batch_within_budget() {
        // The tutorial network's conv1 (2,432 elements) at batch 64: one sample per chunk.
        assert_eq!(conv_weight_chunk(64, 2432), 1);
        // At batch 256 at most 64 chunks: 4 samples each.
        assert_eq!(conv_weight_chunk(256, 2432), 4);
        // A huge layer gets fewer chunks so the partial sums stay within the budget.
        let elems = 1 << 20;
        let chunk = conv_weight_chunk(64, elems);
        assert!(64usize.div_ceil(chunk) * elems <= PARTIAL_BUDGET, "chunk {chunk}");
        // Degenerate inputs do not divide by zero.
        assert_eq!(conv_weight_chunk(1, 0), 1);
        for batch in 1..100 {
            let c = conv_weight_chunk(batch, 3000);
            assert!(c >= 1 && batch.div_ceil(c) <= 64);
        }
    }

    #[test]
    fn grids_stay_within_the_dispatch_limit() {
        assert_eq!(grid(0, 64), [0, 0]);
        assert_eq!(grid(1, 64), [1, 1]);
        assert_eq!(grid(64 * 65_535, 64), [65_535, 1]);
        let [x, y] = grid(64 * 65_536, 64);
        assert!(x <= MAX_GROUPS && (x as usize) * (y as usize) >= 65_536);
    }

    #[test]
    fn empty_max_pool_windows_are_detected() {
        let g = |input, kernel, dilation, pad| PoolGeom {
            n: 1,
            c: 1,
            input: [1, 1, input],
            output: [
                1,
                1,
                torchlet::ops::geom::window_out(input, kernel, 1, pad, pad, dilation, false).unwrap(),
            ],
            kernel: [1, 1, kernel],
            stride: [1; 3],
            dilation: [1, 1, dilation],
            pad: [0, 0, pad],
            count_include_pad: false,
        };
        // W = 1, kernel 2, dilation 2, padding 1 reads positions -1 and 1 only.
        assert!(has_empty_window(&g(1, 2, 2, 1)));
        // The tutorial's MaxPool2d(2) never has one.
        assert!(!has_empty_window(&g(32, 2, 1, 0)));
        assert!(!has_empty_window(&g(5, 3, 1, 1)));
    }

    #[test]
    fn uniforms_are_whole_16_byte_rows() {
        let spec = Spec::Sgd {
            len: 10,
            sgd: Sgd::new(0.1),
            first: true,
        };
        assert_eq!(spec.words(1).len(), 8);
        let spec = Spec::Elementwise {
            kernel: Kernel::ReluForward,
            per_sample: 5,
            x: 0,
            y: 0,
            aux: 0,
            slope: 0.0,
        };
        let w = spec.words(3);
        assert_eq!(w.len(), 8);
        assert_eq!(w[3], 15, "total = batch x per-sample elements");
    }
}
