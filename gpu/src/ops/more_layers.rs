//! The GPU dispatches of softmax and log-softmax, padding (`Pad2d`, and the padded input of a
//! convolution whose `padding_mode` is reflect, replicate or circular), transposed convolution,
//! max unpooling and bilinear layers, and their host-slice wrappers, each with the signature of
//! the core function of the same name (plus the device).
//!
//! As in the parent module, the wrappers upload, run one submission and read back: they exist
//! to test each shader against the core one op at a time, not to train with.
//!
//! Every backward pass is a gather (each invocation owns one element of the gradient it
//! writes), so none needs atomics: padding gathers the padded positions that read an input
//! element, the transposed convolution's forward pass gathers the input positions that reach
//! an output element, max unpooling scans its plane's indices.

use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::Buffer;

use super::{check_len, concat, submit, w32, Pass, Spec};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Kernel;

/// One dispatch of the kernels of this module: geometry per sample, element offsets of the
/// tensors in their buffers. [`LayerSpec::words`] takes the batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LayerSpec {
    /// Softmax or log-softmax (forward or input gradient) over `axis` of each sample viewed as
    /// `[outer, axis, inner]`; `aux`: the forward output a backward pass reads.
    Softmax {
        kernel: Kernel,
        outer: usize,
        axis: usize,
        inner: usize,
        x: usize,
        y: usize,
        aux: usize,
    },
    /// Padding of `c` channels from `input` to `output` spatial dims, `front` positions before
    /// each dim, reading through `mode`.
    Pad {
        kernel: Kernel,
        c: usize,
        input: [usize; 3],
        output: [usize; 3],
        front: [usize; 3],
        mode: PaddingMode,
        x: usize,
        y: usize,
    },
    /// A transposed-convolution pass; `g.n` is ignored.
    ConvTranspose {
        kernel: Kernel,
        g: ConvGeom,
        x: usize,
        w: usize,
        b: usize,
        y: usize,
    },
    /// A max-unpooling pass of `c` planes per sample.
    MaxUnpool {
        kernel: Kernel,
        c: usize,
        in_spatial: usize,
        out_spatial: usize,
        x: usize,
        y: usize,
    },
    /// A bilinear pass over `rows` rows per sample; `which`: the input whose gradient
    /// `BilinearBackwardInput` computes (0 or 1).
    Bilinear {
        kernel: Kernel,
        rows: usize,
        in1: usize,
        in2: usize,
        out: usize,
        bias: bool,
        x1: usize,
        x2: usize,
        w: usize,
        b: usize,
        y: usize,
        which: u32,
    },
}

fn mode_code(mode: PaddingMode) -> u32 {
    match mode {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Circular => 3,
    }
}

impl LayerSpec {
    pub(crate) fn kernel(&self) -> Kernel {
        match *self {
            LayerSpec::Softmax { kernel, .. }
            | LayerSpec::Pad { kernel, .. }
            | LayerSpec::ConvTranspose { kernel, .. }
            | LayerSpec::MaxUnpool { kernel, .. }
            | LayerSpec::Bilinear { kernel, .. } => kernel,
        }
    }

    /// Invocations for a batch of `n`.
    pub(crate) fn invocations(&self, n: usize) -> usize {
        let prod = |d: [usize; 3]| d[0] * d[1] * d[2];
        match *self {
            LayerSpec::Softmax { outer, inner, .. } => n * outer * inner,
            LayerSpec::Pad {
                kernel,
                c,
                input,
                output,
                ..
            } => match kernel {
                Kernel::PadForward => n * c * prod(output),
                _ => n * c * prod(input),
            },
            LayerSpec::ConvTranspose { kernel, g, .. } => match kernel {
                Kernel::ConvTransposeForward => n * g.c_out * g.out_spatial(),
                Kernel::ConvTransposeBackwardInput => n * g.c_in * g.in_spatial(),
                _ => g.weight_len() + if g.bias { g.c_out } else { 0 },
            },
            LayerSpec::MaxUnpool {
                kernel,
                c,
                in_spatial,
                out_spatial,
                ..
            } => match kernel {
                Kernel::MaxUnpoolForward => n * c * out_spatial,
                _ => n * c * in_spatial,
            },
            LayerSpec::Bilinear {
                kernel,
                rows,
                in1,
                in2,
                out,
                bias,
                which,
                ..
            } => match kernel {
                Kernel::BilinearForward => n * rows * out,
                Kernel::BilinearBackwardInput if which == 0 => n * rows * in1,
                Kernel::BilinearBackwardInput => n * rows * in2,
                _ => out * in1 * in2 + if bias { out } else { 0 },
            },
        }
    }

    /// The uniform words for a batch of `n` (the parent pads them to 16 bytes).
    pub(crate) fn words(&self, n: usize) -> Vec<u32> {
        let total = w32(self.invocations(n));
        match *self {
            LayerSpec::Softmax {
                outer,
                axis,
                inner,
                x,
                y,
                aux,
                ..
            } => vec![w32(n * outer), w32(axis), w32(inner), w32(x), w32(y), w32(aux), total],
            LayerSpec::Pad {
                c,
                input,
                output,
                front,
                mode,
                x,
                y,
                ..
            } => {
                let mut v = vec![w32(n), w32(c)];
                v.extend(input.map(w32));
                v.extend(output.map(w32));
                v.extend(front.map(w32));
                v.extend([mode_code(mode), w32(x), w32(y), total]);
                v
            }
            LayerSpec::ConvTranspose { g, x, w, b, y, .. } => {
                let mut v = vec![w32(n), w32(g.c_in), w32(g.c_out), w32(g.groups)];
                v.extend(g.input.map(w32));
                v.extend(g.output.map(w32));
                v.extend(g.kernel.map(w32));
                v.extend(g.stride.map(w32));
                v.extend(g.dilation.map(w32));
                v.extend(g.pad.map(w32));
                v.extend([w32(x), w32(w), w32(b), u32::from(g.bias), w32(y), total]);
                v
            }
            LayerSpec::MaxUnpool {
                c,
                in_spatial,
                out_spatial,
                x,
                y,
                ..
            } => vec![w32(n), w32(c), w32(in_spatial), w32(out_spatial), w32(x), w32(y), total],
            LayerSpec::Bilinear {
                rows,
                in1,
                in2,
                out,
                bias,
                x1,
                x2,
                w,
                b,
                y,
                which,
                ..
            } => vec![
                w32(n * rows),
                w32(in1),
                w32(in2),
                w32(out),
                u32::from(bias),
                w32(x1),
                w32(x2),
                w32(w),
                w32(b),
                w32(y),
                which,
                total,
            ],
        }
    }
}

/// The zeros-padded convolution a convolution with padding mode reflect, replicate or circular
/// becomes once its input is padded: the same layer over the padded input, whose spatial dims
/// are exactly what its windows read, `(output - 1) * stride + dilation * (kernel - 1) + 1`,
/// with no padding. Padded position `q` of dim `d` holds input position
/// `g.mode.map(q - g.pad[d])`, as the core's convolution reads it ([`PaddingMode::map`]).
pub fn padded_conv_geom(g: &ConvGeom) -> ConvGeom {
    let mut p = ConvGeom {
        pad: [0; 3],
        mode: PaddingMode::Zeros,
        ..*g
    };
    for d in 0..3 {
        p.input[d] = g.output[d].saturating_sub(1) * g.stride[d] + g.dilation[d] * g.kernel[d].saturating_sub(1) + 1;
    }
    p
}

/// `[N, C, *]` planes as `(n, c)` length checks share.
fn planes_len(n: usize, c: usize, dims: [usize; 3]) -> usize {
    n * c * dims[0] * dims[1] * dims[2]
}

fn unary(dev: &Device, spec: LayerSpec, n: usize, a: &[f32], out: &mut [f32], accumulate: bool) -> Result<()> {
    let ab = dev.storage_with("input", a)?;
    let ob = if accumulate {
        dev.storage_with("gx", out)?
    } else {
        dev.storage("output", out.len())?
    };
    // Forward passes bind (x, y); the padding's backward binds (gx, gy).
    let pass = if accumulate {
        Pass::new(dev, Spec::Layer(spec), &[&ob, &ab], n)
    } else {
        Pass::new(dev, Spec::Layer(spec), &[&ab, &ob], n)
    };
    submit(dev, &[&pass], spec.kernel().source().0)?;
    out.copy_from_slice(&dev.read::<f32>(&ob, 0, out.len())?);
    Ok(())
}

/// Runs a `(gx, saved, gy)` backward pass, accumulating into `gx`.
fn saved_backward(dev: &Device, spec: LayerSpec, n: usize, saved: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    let gxb = dev.storage_with("gx", gx)?;
    let sb = dev.storage_with("saved", saved)?;
    let gyb = dev.storage_with("gy", gy)?;
    let pass = Pass::new(dev, Spec::Layer(spec), &[&gxb, &sb, &gyb], n);
    submit(dev, &[&pass], spec.kernel().source().0)?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

fn softmax_spec(kernel: Kernel, outer: usize, axis: usize, inner: usize) -> LayerSpec {
    LayerSpec::Softmax {
        kernel,
        outer,
        axis,
        inner,
        x: 0,
        y: 0,
        aux: 0,
    }
}

/// GPU [`torchlet::ops::softmax::softmax_forward`]: `y = exp(x - max) / Σ exp(x - max)` along
/// `axis`.
///
/// - `x`, `y`: `[outer, axis, inner]` (the batch folded into `outer`); `y` overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; wgpu errors.
pub fn softmax_forward(dev: &Device, outer: usize, axis: usize, inner: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Input, outer * axis * inner, x.len())?;
    check_len(Buffer::Output, x.len(), y.len())?;
    unary(
        dev,
        softmax_spec(Kernel::SoftmaxForward, outer, axis, inner),
        1,
        x,
        y,
        false,
    )
}

/// GPU [`torchlet::ops::softmax::softmax_backward_input`]: `gx += y · (gy - Σ_axis gy · y)`.
///
/// - `y` (the forward output), `gy`, `gx`: `[outer, axis, inner]`; `gx` accumulated.
///
/// # Errors
/// As [`softmax_forward`].
pub fn softmax_backward_input(
    dev: &Device,
    outer: usize,
    axis: usize,
    inner: usize,
    y: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Output, outer * axis * inner, y.len())?;
    check_len(Buffer::Gradient, y.len(), gy.len())?;
    check_len(Buffer::Gradient, y.len(), gx.len())?;
    let spec = softmax_spec(Kernel::SoftmaxBackwardInput, outer, axis, inner);
    saved_backward(dev, spec, 1, y, gy, gx)
}

/// GPU [`torchlet::ops::softmax::log_softmax_forward`]: `y = x - max - log Σ exp(x - max)`
/// along `axis`.
///
/// - `x`, `y`: `[outer, axis, inner]`; `y` overwritten.
///
/// # Errors
/// As [`softmax_forward`].
pub fn log_softmax_forward(
    dev: &Device,
    outer: usize,
    axis: usize,
    inner: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, outer * axis * inner, x.len())?;
    check_len(Buffer::Output, x.len(), y.len())?;
    unary(
        dev,
        softmax_spec(Kernel::LogSoftmaxForward, outer, axis, inner),
        1,
        x,
        y,
        false,
    )
}

/// GPU [`torchlet::ops::softmax::log_softmax_backward_input`]: `gx += gy - exp(y) · Σ_axis gy`.
///
/// - `y` (the forward output), `gy`, `gx`: `[outer, axis, inner]`; `gx` accumulated.
///
/// # Errors
/// As [`softmax_forward`].
pub fn log_softmax_backward_input(
    dev: &Device,
    outer: usize,
    axis: usize,
    inner: usize,
    y: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Output, outer * axis * inner, y.len())?;
    check_len(Buffer::Gradient, y.len(), gy.len())?;
    check_len(Buffer::Gradient, y.len(), gx.len())?;
    let spec = softmax_spec(Kernel::LogSoftmaxBackwardInput, outer, axis, inner);
    saved_backward(dev, spec, 1, y, gy, gx)
}

/// The 3-d padding of `Pad2d`'s `[left, right, top, bottom]` over `h × w`: `(input, output, front)`.
pub(crate) fn pad2d_dims(h: usize, w: usize, [left, right, top, bottom]: [usize; 4]) -> [[usize; 3]; 3] {
    [[1, h, w], [1, h + top + bottom, w + left + right], [0, top, left]]
}

fn check_pad(mode: PaddingMode, input: [usize; 3]) -> Result<()> {
    // Every mode but zeros reads some input position for each padded one.
    if mode != PaddingMode::Zeros && input.contains(&0) {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "padding",
            expected: "a non-empty input to read the padding from",
        }));
    }
    Ok(())
}

/// GPU padding over 1 to 3 spatial dims, as [`torchlet::ops::pad::pad2d_forward`] and as a
/// convolution's `padding_mode` reads: `y[n, c, q] = x[n, c, mode.map(q - front)]`, zero where
/// zeros padding falls outside.
///
/// - `x`: `[N, C, D, H, W]` (`input`); `y`: `[N, C, oD, oH, oW]` (`output`), overwritten;
///   `front`: positions before each dim (the back padding is implied by `output`).
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch, or an empty input with a mode other than
/// zeros; wgpu errors. Reflect padding as large as the input is clamped as the core's
/// [`PaddingMode::map`] does (the planner refuses it).
#[allow(clippy::too_many_arguments)]
pub fn pad_forward(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    front: [usize; 3],
    output: [usize; 3],
    mode: PaddingMode,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_pad(mode, input)?;
    check_len(Buffer::Input, planes_len(n, c, input), x.len())?;
    check_len(Buffer::Output, planes_len(n, c, output), y.len())?;
    let spec = LayerSpec::Pad {
        kernel: Kernel::PadForward,
        c,
        input,
        output,
        front,
        mode,
        x: 0,
        y: 0,
    };
    unary(dev, spec, n, x, y, false)
}

/// GPU gradient of [`pad_forward`], as [`torchlet::ops::pad::pad2d_backward_input`]: `gx[n, c, z]
/// += Σ gy[n, c, q]` over the padded positions `q` that read `z`.
///
/// - `gy`: `[N, C, oD, oH, oW]`; `gx`: `[N, C, D, H, W]`, accumulated.
///
/// # Errors
/// As [`pad_forward`].
#[allow(clippy::too_many_arguments)]
pub fn pad_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    front: [usize; 3],
    output: [usize; 3],
    mode: PaddingMode,
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_pad(mode, input)?;
    check_len(Buffer::Gradient, planes_len(n, c, output), gy.len())?;
    check_len(Buffer::Gradient, planes_len(n, c, input), gx.len())?;
    let spec = LayerSpec::Pad {
        kernel: Kernel::PadBackwardInput,
        c,
        input,
        output,
        front,
        mode,
        x: 0,
        y: 0,
    };
    unary(dev, spec, n, gy, gx, true)
}

/// GPU [`torchlet::ops::pad::pad2d_forward`] (`nn.ZeroPad2d`, `ReflectionPad2d`,
/// `ReplicationPad2d`, `CircularPad2d`).
///
/// - `x`: `[N, C, H, W]`; `padding`: `[left, right, top, bottom]`;
///   `y`: `[N, C, H + top + bottom, W + left + right]`, overwritten.
///
/// # Errors
/// As [`pad_forward`].
#[allow(clippy::too_many_arguments)]
pub fn pad2d_forward(
    dev: &Device,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    padding: [usize; 4],
    mode: PaddingMode,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let [input, output, front] = pad2d_dims(h, w, padding);
    pad_forward(dev, n, c, input, front, output, mode, x, y)
}

/// GPU [`torchlet::ops::pad::pad2d_backward_input`].
///
/// - `gy`: `[N, C, H + top + bottom, W + left + right]`; `gx`: `[N, C, H, W]`, accumulated.
///
/// # Errors
/// As [`pad_forward`].
#[allow(clippy::too_many_arguments)]
pub fn pad2d_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    padding: [usize; 4],
    mode: PaddingMode,
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    let [input, output, front] = pad2d_dims(h, w, padding);
    pad_backward_input(dev, n, c, input, front, output, mode, gy, gx)
}

/// Transposed convolutions read zeros outside their output.
pub(crate) fn check_conv_transpose(layer: usize, op: &'static str, g: &ConvGeom) -> Result<()> {
    if g.mode != PaddingMode::Zeros {
        return Err(Error::Unsupported {
            layer,
            op,
            what: "padding_mode other than 'zeros' for a transposed convolution",
        });
    }
    Ok(())
}

fn conv_transpose_spec(kernel: Kernel, g: &ConvGeom, b: usize) -> LayerSpec {
    LayerSpec::ConvTranspose {
        kernel,
        g: *g,
        x: 0,
        w: 0,
        b,
        y: 0,
    }
}

/// GPU [`torchlet::ops::conv_transpose::conv_transpose_forward`]:
/// `y[n, o, i·stride + k·dilation - pad] += x[n, c, i] · w[c, o', k]`, plus `b[o]`.
///
/// - `x`: `[N, C_in, D, H, W]`; `w`: `[C_in, C_out / groups, kD, kH, kW]`; `b`: `[C_out]`,
///   empty when `!g.bias`; `y`: `[N, C_out, oD, oH, oW]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; [`Error::Unsupported`] for a padding mode
/// other than zeros; wgpu errors.
pub fn conv_transpose_forward(
    dev: &Device,
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_conv_transpose(usize::MAX, "conv_transpose_forward", g)?;
    check_len(Buffer::Input, g.n * g.c_in * g.in_spatial(), x.len())?;
    check_len(Buffer::Params, g.weight_len(), w.len())?;
    check_len(Buffer::Params, if g.bias { g.c_out } else { 0 }, b.len())?;
    check_len(Buffer::Output, g.n * g.c_out * g.out_spatial(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let pb = dev.storage_with("params", &concat(w, b))?;
    let yb = dev.storage("y", y.len())?;
    let spec = conv_transpose_spec(Kernel::ConvTransposeForward, g, w.len());
    let pass = Pass::new(dev, Spec::Layer(spec), &[&xb, &pb, &yb], g.n);
    submit(dev, &[&pass], "running conv_transpose_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::conv_transpose::conv_transpose_backward_input`]:
/// `gx[n, c, i] += Σ_{o', k} w[c, o', k] · gy[n, o, i·stride + k·dilation - pad]`.
///
/// - `w`: `[C_in, C_out / groups, kD, kH, kW]`; `gy`: `[N, C_out, oD, oH, oW]`;
///   `gx`: `[N, C_in, D, H, W]`, accumulated.
///
/// # Errors
/// As [`conv_transpose_forward`].
pub fn conv_transpose_backward_input(dev: &Device, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Result<()> {
    check_conv_transpose(usize::MAX, "conv_transpose_backward_input", g)?;
    check_len(Buffer::Params, g.weight_len(), w.len())?;
    check_len(Buffer::Gradient, g.n * g.c_out * g.out_spatial(), gy.len())?;
    check_len(Buffer::Gradient, g.n * g.c_in * g.in_spatial(), gx.len())?;
    let spec = conv_transpose_spec(Kernel::ConvTransposeBackwardInput, g, 0);
    let gxb = dev.storage_with("gx", gx)?;
    let pb = dev.storage_with("params", w)?;
    let gyb = dev.storage_with("gy", gy)?;
    let pass = Pass::new(dev, Spec::Layer(spec), &[&gxb, &pb, &gyb], g.n);
    submit(dev, &[&pass], "running conv_transpose_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::conv_transpose::conv_transpose_backward_weight`]:
/// `gw[c, o', k] += Σ_{n, i} x[n, c, i] · gy[n, o, i·stride + k·dilation - pad]`,
/// `gb[o] += Σ_{n, q} gy[n, o, q]`.
///
/// - `x`: `[N, C_in, D, H, W]`; `gy`: `[N, C_out, oD, oH, oW]`;
///   `gw`: `[C_in, C_out / groups, kD, kH, kW]` and `gb`: `[C_out]` (empty without bias), accumulated.
///
/// # Errors
/// As [`conv_transpose_forward`].
pub fn conv_transpose_backward_weight(
    dev: &Device,
    g: &ConvGeom,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    check_conv_transpose(usize::MAX, "conv_transpose_backward_weight", g)?;
    check_len(Buffer::Input, g.n * g.c_in * g.in_spatial(), x.len())?;
    check_len(Buffer::Gradient, g.n * g.c_out * g.out_spatial(), gy.len())?;
    check_len(Buffer::Grads, g.weight_len(), gw.len())?;
    check_len(Buffer::Grads, if g.bias { g.c_out } else { 0 }, gb.len())?;
    let spec = conv_transpose_spec(Kernel::ConvTransposeBackwardWeight, g, gw.len());
    let xb = dev.storage_with("x", x)?;
    let gbuf = dev.storage_with("grads", &concat(gw, gb))?;
    let gyb = dev.storage_with("gy", gy)?;
    let pass = Pass::new(dev, Spec::Layer(spec), &[&xb, &gbuf, &gyb], g.n);
    submit(dev, &[&pass], "running conv_transpose_backward_weight")?;
    let out = dev.read::<f32>(&gbuf, 0, gw.len() + gb.len())?;
    let (w_part, b_part) = out.split_at(gw.len());
    gw.copy_from_slice(w_part);
    gb.copy_from_slice(b_part);
    Ok(())
}

/// GPU [`torchlet::ops::pool::max_unpool_forward`], with the indices as plain `u32` (as
/// [`super::max_pool_forward`] returns them): `y[n, c, indices[n, c, i]] = x[n, c, i]`, zero
/// elsewhere; the later of two equal indices wins and indices `>= out_spatial` are skipped.
///
/// - `x`, `indices`: `[N, C, in_spatial]`; `y`: `[N, C, out_spatial]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn max_unpool_forward(
    dev: &Device,
    n: usize,
    c: usize,
    in_spatial: usize,
    out_spatial: usize,
    x: &[f32],
    indices: &[u32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, n * c * in_spatial, x.len())?;
    check_len(Buffer::Input, x.len(), indices.len())?;
    check_len(Buffer::Output, n * c * out_spatial, y.len())?;
    let xb = dev.storage_with("x", x)?;
    let ib = dev.storage_with("indices", indices)?;
    let yb = dev.storage("y", y.len())?;
    let spec = LayerSpec::MaxUnpool {
        kernel: Kernel::MaxUnpoolForward,
        c,
        in_spatial,
        out_spatial,
        x: 0,
        y: 0,
    };
    let pass = Pass::new(dev, Spec::Layer(spec), &[&xb, &ib, &yb], n);
    submit(dev, &[&pass], "running max_unpool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::max_unpool_backward_input`]: `gx[n, c, i] += gy[n, c,
/// indices[n, c, i]]` (nothing for an index `>= out_spatial`).
///
/// - `indices`: `[N, C, in_spatial]`; `gy`: `[N, C, out_spatial]`; `gx`: `[N, C, in_spatial]`,
///   accumulated.
///
/// # Errors
/// As [`max_unpool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn max_unpool_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    in_spatial: usize,
    out_spatial: usize,
    indices: &[u32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, n * c * in_spatial, indices.len())?;
    check_len(Buffer::Gradient, n * c * out_spatial, gy.len())?;
    check_len(Buffer::Gradient, indices.len(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let ib = dev.storage_with("indices", indices)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = LayerSpec::MaxUnpool {
        kernel: Kernel::MaxUnpoolBackwardInput,
        c,
        in_spatial,
        out_spatial,
        x: 0,
        y: 0,
    };
    let pass = Pass::new(dev, Spec::Layer(spec), &[&gxb, &ib, &gyb], n);
    submit(dev, &[&pass], "running max_unpool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// The bilinear geometry `(rows, in1, in2, out)` of the wrappers below.
type BilinearDims = (usize, usize, usize, usize);

fn bilinear_spec(kernel: Kernel, (rows, in1, in2, out): BilinearDims, bias: bool, b: usize, which: u32) -> LayerSpec {
    LayerSpec::Bilinear {
        kernel,
        rows,
        in1,
        in2,
        out,
        bias,
        x1: 0,
        x2: 0,
        w: 0,
        b,
        y: 0,
        which,
    }
}

fn check_bilinear((rows, in1, in2, out): BilinearDims, x1: &[f32], x2: &[f32]) -> Result<()> {
    check_len(Buffer::Input, rows * in1, x1.len())?;
    check_len(Buffer::Input, rows * in2, x2.len())?;
    if out == 0 {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "out_features",
            expected: "must be positive",
        }));
    }
    Ok(())
}

/// GPU [`torchlet::ops::bilinear::bilinear_forward`]: `y[r, o] = Σ_ij x1[r, i] w[o, i, j]
/// x2[r, j] + b[o]`.
///
/// - `x1`: `[rows, in1]`; `x2`: `[rows, in2]`; `w`: `[out, in1, in2]`; `b`: `[out]` or empty;
///   `y`: `[rows, out]`, overwritten.
///
/// # Errors
/// [`Error::Core`] with a buffer length mismatch or `out == 0`; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn bilinear_forward(
    dev: &Device,
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let dims = (rows, in1, in2, out);
    check_bilinear(dims, x1, x2)?;
    check_len(Buffer::Params, out * in1 * in2, w.len())?;
    if !b.is_empty() {
        check_len(Buffer::Params, out, b.len())?;
    }
    check_len(Buffer::Output, rows * out, y.len())?;
    let x1b = dev.storage_with("x1", x1)?;
    let x2b = dev.storage_with("x2", x2)?;
    let pb = dev.storage_with("params", &concat(w, b))?;
    let yb = dev.storage("y", y.len())?;
    let spec = bilinear_spec(Kernel::BilinearForward, (1, in1, in2, out), !b.is_empty(), w.len(), 0);
    let pass = Pass::new(dev, Spec::Layer(spec), &[&x1b, &pb, &yb, &x2b], rows);
    submit(dev, &[&pass], "running bilinear_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::bilinear::bilinear_backward_input`]: `gx1[r, i] += Σ_o gy[r, o] Σ_j
/// w[o, i, j] x2[r, j]` and `gx2[r, j] += Σ_o gy[r, o] Σ_i x1[r, i] w[o, i, j]` (two
/// dispatches of `bilinear_backward_input.wgsl`).
///
/// - `x1`: `[rows, in1]`; `x2`: `[rows, in2]`; `w`: `[out, in1, in2]`; `gy`: `[rows, out]`;
///   `gx1`: `[rows, in1]` and `gx2`: `[rows, in2]`, accumulated.
///
/// # Errors
/// As [`bilinear_forward`].
#[allow(clippy::too_many_arguments)]
pub fn bilinear_backward_input(
    dev: &Device,
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    w: &[f32],
    gy: &[f32],
    gx1: &mut [f32],
    gx2: &mut [f32],
) -> Result<()> {
    let dims = (rows, in1, in2, out);
    check_bilinear(dims, x1, x2)?;
    check_len(Buffer::Params, out * in1 * in2, w.len())?;
    check_len(Buffer::Gradient, rows * out, gy.len())?;
    check_len(Buffer::Gradient, x1.len(), gx1.len())?;
    check_len(Buffer::Gradient, x2.len(), gx2.len())?;
    let x1b = dev.storage_with("x1", x1)?;
    let x2b = dev.storage_with("x2", x2)?;
    let pb = dev.storage_with("params", w)?;
    let gyb = dev.storage_with("gy", gy)?;
    let g1 = dev.storage_with("gx1", gx1)?;
    let g2 = dev.storage_with("gx2", gx2)?;
    let dims1 = (1, in1, in2, out);
    let p1 = Pass::new(
        dev,
        Spec::Layer(bilinear_spec(Kernel::BilinearBackwardInput, dims1, false, 0, 0)),
        &[&g1, &pb, &gyb, &x2b],
        rows,
    );
    let p2 = Pass::new(
        dev,
        Spec::Layer(bilinear_spec(Kernel::BilinearBackwardInput, dims1, false, 0, 1)),
        &[&g2, &pb, &gyb, &x1b],
        rows,
    );
    submit(dev, &[&p1, &p2], "running bilinear_backward_input")?;
    gx1.copy_from_slice(&dev.read::<f32>(&g1, 0, gx1.len())?);
    gx2.copy_from_slice(&dev.read::<f32>(&g2, 0, gx2.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::bilinear::bilinear_backward_weight`]: `gw[o, i, j] += Σ_r gy[r, o]
/// x1[r, i] x2[r, j]`, `gb[o] += Σ_r gy[r, o]`.
///
/// - `x1`: `[rows, in1]`; `x2`: `[rows, in2]`; `gy`: `[rows, out]`; `gw`: `[out, in1, in2]` and
///   `gb`: `[out]` (or empty), accumulated.
///
/// # Errors
/// As [`bilinear_forward`].
#[allow(clippy::too_many_arguments)]
pub fn bilinear_backward_weight(
    dev: &Device,
    rows: usize,
    in1: usize,
    in2: usize,
    out: usize,
    x1: &[f32],
    x2: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    let dims = (rows, in1, in2, out);
    check_bilinear(dims, x1, x2)?;
    check_len(Buffer::Gradient, rows * out, gy.len())?;
    check_len(Buffer::Grads, out * in1 * in2, gw.len())?;
    if !gb.is_empty() {
        check_len(Buffer::Grads, out, gb.len())?;
    }
    let x1b = dev.storage_with("x1", x1)?;
    let x2b = dev.storage_with("x2", x2)?;
    let gyb = dev.storage_with("gy", gy)?;
    let gbuf = dev.storage_with("grads", &concat(gw, gb))?;
    let spec = bilinear_spec(
        Kernel::BilinearBackwardWeight,
        (1, in1, in2, out),
        !gb.is_empty(),
        gw.len(),
        0,
    );
    let pass = Pass::new(dev, Spec::Layer(spec), &[&x1b, &gbuf, &gyb, &x2b], rows);
    submit(dev, &[&pass], "running bilinear_backward_weight")?;
    let out_v = dev.read::<f32>(&gbuf, 0, gw.len() + gb.len())?;
    let (w_part, b_part) = out_v.split_at(gw.len());
    gw.copy_from_slice(w_part);
    gb.copy_from_slice(b_part);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_input_is_exactly_what_the_windows_read() {
        let g = ConvGeom {
            n: 1,
            c_in: 2,
            c_out: 3,
            groups: 1,
            input: [1, 6, 5],
            output: [1, 3, 5],
            kernel: [1, 3, 3],
            stride: [1, 2, 1],
            dilation: [1, 1, 2],
            pad: [0, 1, 2],
            mode: PaddingMode::Circular,
            bias: true,
        };
        let p = padded_conv_geom(&g);
        // H: (3 - 1) * 2 + 3 = 7 (6 + 1 front, the back row is never read); W: 4 + 2 * 2 + 1 = 9.
        assert_eq!(p.input, [1, 7, 9]);
        assert_eq!((p.pad, p.mode, p.output), ([0; 3], PaddingMode::Zeros, g.output));
        assert_eq!(p.weight_len(), g.weight_len());
    }

    #[test]
    fn uniforms_match_the_shader_structs() {
        let spec = LayerSpec::Pad {
            kernel: Kernel::PadForward,
            c: 2,
            input: [1, 3, 4],
            output: [1, 5, 6],
            front: [0, 1, 1],
            mode: PaddingMode::Reflect,
            x: 0,
            y: 0,
        };
        // struct Pad: 15 words used, `total` last.
        let w = spec.words(3);
        assert_eq!(w.len(), 15);
        assert_eq!((w[11], w[14]), (1, 3 * 2 * 30));
        let g = padded_conv_geom(&ConvGeom {
            n: 1,
            c_in: 1,
            c_out: 1,
            groups: 1,
            input: [1, 1, 4],
            output: [1, 1, 4],
            kernel: [1, 1, 3],
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0, 0, 1],
            mode: PaddingMode::Reflect,
            bias: false,
        });
        let spec = LayerSpec::ConvTranspose {
            kernel: Kernel::ConvTransposeBackwardWeight,
            g,
            x: 0,
            w: 0,
            b: 0,
            y: 0,
        };
        // struct ConvT: 28 words, `total` (weight elements, no bias) last.
        let w = spec.words(2);
        assert_eq!((w.len(), w[27]), (28, 3));
    }
}
