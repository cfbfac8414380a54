//! The GPU operations, one file per op family of the core (`conv.rs` is
//! `torchlet::ops::conv`, `pool.rs` is `torchlet::ops::pool`, ...), plus `loss.rs` and
//! `optim.rs`.
//!
//! Each family file holds, side by side:
//!
//! - its uniform structs (`#[repr(C)]`, field for field as the shaders' `struct`s);
//! - its dispatch spec: the core's geometry type for the layer (`ConvGeom`, `PoolGeom`,
//!   `LinearGeom`, ...), the kernel, and where each tensor sits in its buffer; the spec turns
//!   them into the launch size and the uniform for a batch of `n` (`Dispatch`);
//! - host-slice wrappers that mirror the core's kernels signature for signature
//!   (`conv_forward`, `max_pool_backward_input`, `sgd_step`, ...): they upload, run one
//!   submission and read back. They exist to test each shader against the core, one op at a
//!   time, and to debug; they allocate buffers per call, so do not train with them
//!   ([`crate::GpuNetwork`] does that).
//!
//! This file holds what every family shares: `Spec` (one variant per family spec, one line
//! per variant in each dispatch), `Pass` (a spec bound to its buffers once, re-encoded every
//! step; only a change of batch size rewrites its uniform) and `submit`.

use torchlet::Buffer;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{Kernel, Uniform};

pub(crate) mod activation;
pub(crate) mod batchnorm;
pub(crate) mod bilinear;
pub(crate) mod conv;
pub(crate) mod conv_transpose;
pub(crate) mod dropout;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod merge;
pub(crate) mod optim;
pub(crate) mod pad;
pub(crate) mod pool;
pub(crate) mod reshape;
pub(crate) mod shuffle;
pub(crate) mod softmax;
pub(crate) mod upsample;

pub use activation::prelu::{prelu_backward_input, prelu_backward_weight, prelu_forward};
pub use activation::smooth::{activation_backward_input, activation_forward, ActivationKind};
pub use activation::{
    leaky_relu_backward_input, leaky_relu_forward, relu_backward_input, relu_forward, sigmoid_backward_input,
    sigmoid_forward, tanh_backward_input, tanh_forward,
};
pub use batchnorm::{
    batch_norm_backward_eval, batch_norm_backward_train, batch_norm_forward_eval, batch_norm_forward_train,
};
pub use bilinear::{bilinear_backward_input, bilinear_backward_weight, bilinear_forward};
pub use conv::{conv_backward_input, conv_backward_weight, conv_forward, padded_conv_geom};
pub use conv_transpose::{conv_transpose_backward_input, conv_transpose_backward_weight, conv_transpose_forward};
pub use dropout::{channel_dropout_forward, dropout_backward_input, dropout_forward};
pub use linear::{linear_backward_input, linear_backward_weight, linear_forward};
pub use loss::{cross_entropy, loss_and_grad, loss_backward, loss_forward, GpuLoss, Target};
pub use merge::{add_backward_input, add_forward, concat_backward_input, concat_forward};
pub use optim::{adam_step, sgd_step, GpuOptimizer};
pub use pad::{pad2d_backward_input, pad2d_forward, pad_backward_input, pad_forward};
pub use pool::{
    adaptive_avg_pool_backward_input, adaptive_avg_pool_forward, adaptive_max_pool_backward_input,
    adaptive_max_pool_forward, avg_pool_backward_input, avg_pool_forward, max_pool_backward_input, max_pool_forward,
    max_unpool_backward_input, max_unpool_forward,
};
pub use shuffle::{channel_shuffle_backward_input, channel_shuffle_forward};
pub use softmax::{log_softmax_backward_input, log_softmax_forward, softmax_backward_input, softmax_forward};
pub use upsample::{upsample_backward_input, upsample_forward};

/// Most workgroups in one dimension of a dispatch (WebGPU's guaranteed minimum limit).
const MAX_GROUPS: u32 = 65_535;

/// What a family's dispatch spec tells [`Pass`]: the kernel, how many invocations a batch of
/// `n` needs, and the uniform for that batch.
pub(crate) trait Dispatch {
    /// The kernel this spec runs.
    fn kernel(&self) -> Kernel;
    /// Invocations for a batch of `n`.
    fn invocations(&self, n: usize) -> usize;
    /// The uniform's bytes for a batch of `n`; `total` is [`Dispatch::invocations`].
    fn uniform(&self, n: usize, total: u32) -> Vec<u8>;
}

/// The bytes of a uniform struct.
pub(crate) fn bytes<U: Uniform>(u: U) -> Vec<u8> {
    bytemuck::bytes_of(&u).to_vec()
}

/// Declares [`Spec`] with one variant per family spec and its one-line-per-variant dispatch.
macro_rules! specs {
    ($($(#[$m:meta])* $variant:ident($ty:ty),)*) => {
        /// One dispatch: which kernel, its geometry (the core's type for the layer), and the
        /// element offset of each tensor in its buffer. Counts that scale with the batch are
        /// per sample; [`Spec::uniform`] takes the batch.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub(crate) enum Spec {
            $($(#[$m])* $variant($ty),)*
        }

        impl Spec {
            fn dispatch(&self) -> &dyn Dispatch {
                match self {
                    $(Spec::$variant(s) => s,)*
                }
            }
        }

        $(impl From<$ty> for Spec {
            fn from(s: $ty) -> Spec {
                Spec::$variant(s)
            }
        })*
    };
}

specs! {
    /// A convolution pass (`conv.rs`).
    Conv(conv::ConvSpec),
    /// The reduction of a convolution's partial weight gradients (`conv.rs`).
    Reduce(conv::ReduceSpec),
    /// A transposed-convolution pass (`conv_transpose.rs`).
    ConvTranspose(conv_transpose::ConvTSpec),
    /// A max or average pooling pass (`pool.rs`).
    Pool(pool::PoolSpec),
    /// An adaptive pooling pass (`pool.rs`).
    Adaptive(pool::AdaptiveSpec),
    /// A max-unpooling pass (`pool.rs`).
    Unpool(pool::UnpoolSpec),
    /// A padding pass (`pad.rs`).
    Pad(pad::PadSpec),
    /// An elementwise pass: activations (`activation.rs`) and copies (`reshape.rs`).
    Elementwise(activation::ElementwiseSpec),
    /// A softmax or log-softmax pass (`softmax.rs`).
    Softmax(softmax::SoftmaxSpec),
    /// A BatchNorm pass (`batchnorm.rs`).
    BatchNorm(batchnorm::BnSpec),
    /// A Dropout pass (`dropout.rs`).
    Dropout(dropout::DropoutSpec),
    /// A channel-shuffle pass (`shuffle.rs`).
    Shuffle(shuffle::ShuffleSpec),
    /// An upsampling pass (`upsample.rs`).
    Upsample(upsample::UpsampleSpec),
    /// A linear pass (`linear.rs`).
    Linear(linear::LinearSpec),
    /// A bilinear pass (`bilinear.rs`).
    Bilinear(bilinear::BilinearSpec),
    /// A residual sum or channel concatenation pass (`merge.rs`).
    Merge(merge::MergeSpec),
    /// Cross-entropy or NLL (`loss.rs`).
    ClassLoss(loss::ClassLossSpec),
    /// MSE, L1, BCE or BCE with logits (`loss.rs`).
    ElementwiseLoss(loss::ElementwiseLossSpec),
    /// An SGD step (`optim.rs`).
    Sgd(optim::SgdSpec),
    /// An Adam step (`optim.rs`).
    Adam(optim::AdamSpec),
    /// ELU, GELU, SiLU, Hardswish, Hardsigmoid, Softplus, Mish or ReLU6 (`activation/smooth.rs`).
    Act(activation::smooth::ActSpec),
    /// A PReLU pass (`activation/prelu.rs`).
    Prelu(activation::prelu::PreluSpec),
}

impl Spec {
    /// The kernel this spec runs.
    pub(crate) fn kernel(&self) -> Kernel {
        self.dispatch().kernel()
    }

    /// Invocations for a batch of `n`.
    pub(crate) fn invocations(&self, n: usize) -> usize {
        self.dispatch().invocations(n)
    }

    /// The uniform's bytes for a batch of `n`: the kernel's uniform struct (whole 16-byte rows).
    pub(crate) fn uniform(&self, n: usize) -> Vec<u8> {
        let d = self.dispatch();
        let bytes = d.uniform(n, w32(d.invocations(n)));
        debug_assert_eq!(bytes.len(), d.kernel().uniform_layout().0, "{:?}", d.kernel());
        bytes
    }
}

pub(crate) fn w32(v: usize) -> u32 {
    // Buffers are capped at the adapter's binding size (< 4 GiB), so element counts and
    // offsets fit in u32; saturate rather than wrap if a caller ever passes more.
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `[usize; 3]` dims as the shaders' `u32`s.
pub(crate) fn dims32(d: [usize; 3]) -> [u32; 3] {
    d.map(w32)
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
    pub(crate) fn new(dev: &Device, spec: impl Into<Spec>, buffers: &[&wgpu::Buffer], n: usize) -> Pass {
        let spec = spec.into();
        let kernel = spec.kernel();
        let bytes = spec.uniform(n);
        let uniform = dev.wgpu_device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(kernel.source().0),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        dev.queue().write_buffer(&uniform, 0, &bytes);
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
            groups: grid(spec.invocations(n), kernel.workgroup_size()),
        }
    }

    /// Rewrites the uniform for a new spec (same kernel and buffers) or batch size.
    pub(crate) fn update(&mut self, dev: &Device, spec: impl Into<Spec>, n: usize) {
        let spec = spec.into();
        self.spec = spec;
        dev.queue().write_buffer(&self.uniform, 0, &spec.uniform(n));
        self.groups = grid(spec.invocations(n), spec.kernel().workgroup_size());
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

pub(crate) fn check_len(buffer: Buffer, expected: usize, found: usize) -> Result<()> {
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

pub(crate) fn concat(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

/// Reads `gw.len() + gb.len()` floats of `buf` back into a weight and a bias gradient.
pub(crate) fn read_weight_bias(dev: &Device, buf: &wgpu::Buffer, gw: &mut [f32], gb: &mut [f32]) -> Result<()> {
    let out = dev.read::<f32>(buf, 0, gw.len() + gb.len())?;
    let (w_part, b_part) = out.split_at(gw.len());
    gw.copy_from_slice(w_part);
    gb.copy_from_slice(b_part);
    Ok(())
}

/// Runs a one-input pass: a forward pass binding `(x, y)` writes `out`; with `accumulate`, a
/// backward pass binding `(gx, gy)` adds into `out`.
pub(crate) fn unary(dev: &Device, spec: Spec, n: usize, a: &[f32], out: &mut [f32], accumulate: bool) -> Result<()> {
    let ab = dev.storage_with("input", a)?;
    let ob = if accumulate {
        dev.storage_with("gx", out)?
    } else {
        dev.storage("output", out.len())?
    };
    let pass = if accumulate {
        Pass::new(dev, spec, &[&ob, &ab], n)
    } else {
        Pass::new(dev, spec, &[&ab, &ob], n)
    };
    submit(dev, &[&pass], spec.kernel().source().0)?;
    out.copy_from_slice(&dev.read::<f32>(&ob, 0, out.len())?);
    Ok(())
}

/// Runs a `(gx, saved, gy)` backward pass, accumulating into `gx`.
pub(crate) fn saved_backward(
    dev: &Device,
    spec: Spec,
    n: usize,
    saved: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    let gxb = dev.storage_with("gx", gx)?;
    let sb = dev.storage_with("saved", saved)?;
    let gyb = dev.storage_with("gy", gy)?;
    let pass = Pass::new(dev, spec, &[&gxb, &sb, &gyb], n);
    submit(dev, &[&pass], spec.kernel().source().0)?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use torchlet::optim::Sgd;

    #[test]
    fn grids_stay_within_the_dispatch_limit() {
        assert_eq!(grid(0, 64), [0, 0]);
        assert_eq!(grid(1, 64), [1, 1]);
        assert_eq!(grid(64 * 65_535, 64), [65_535, 1]);
        let [x, y] = grid(64 * 65_536, 64);
        assert!(x <= MAX_GROUPS && (x as usize) * (y as usize) >= 65_536);
    }

    #[test]
    fn uniforms_are_whole_16_byte_rows() {
        let spec = Spec::from(optim::SgdSpec {
            len: 10,
            sgd: Sgd::new(0.1),
            first: true,
        });
        assert_eq!(spec.uniform(1).len(), 32);
        let spec = Spec::from(activation::ElementwiseSpec::new(Kernel::ReluForward, 5, 0.0));
        let w: Vec<u32> = bytemuck::pod_collect_to_vec(&spec.uniform(3));
        assert_eq!(w.len(), 8);
        assert_eq!(w[3], 15, "total = batch x per-sample elements");
    }
}
