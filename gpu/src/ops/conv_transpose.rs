//! Transposed convolutions on the GPU (`torchlet::ops::conv_transpose`): forward, input
//! gradient and weight gradient (`conv_transpose_*.wgsl`), each a gather over a [`ConvGeom`]
//! (zeros padding only, as PyTorch).

use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::Buffer;

use super::{bytes, check_len, concat, dims32, read_weight_bias, submit, w32, Dispatch, Pass};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct ConvT` of the `conv_transpose_*.wgsl` shaders.
    pub(crate) struct ConvT {
        n: u32, c_in: u32, c_out: u32, groups: u32,
        id: u32, ih: u32, iw: u32, od: u32, oh: u32, ow: u32,
        kd: u32, kh: u32, kw: u32, sd: u32, sh: u32, sw: u32,
        dd: u32, dh: u32, dw: u32, pd: u32, ph: u32, pw: u32,
        x_off: u32, w_off: u32, b_off: u32, has_bias: u32, y_off: u32, total: u32,
    }
}

/// A transposed-convolution pass; `g.n` is ignored; `w`, `b`: parameter offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ConvTSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: ConvGeom,
    pub(crate) w: usize,
    pub(crate) b: usize,
}

impl Dispatch for ConvTSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let g = &self.g;
        match self.kernel {
            Kernel::ConvTransposeForward => n * g.c_out * g.out_spatial(),
            Kernel::ConvTransposeBackwardInput => n * g.c_in * g.in_spatial(),
            _ => g.weight_len() + if g.bias { g.c_out } else { 0 },
        }
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let g = &self.g;
        let ([id, ih, iw], [od, oh, ow], [kd, kh, kw]) = (dims32(g.input), dims32(g.output), dims32(g.kernel));
        let ([sd, sh, sw], [dd, dh, dw], [pd, ph, pw]) = (dims32(g.stride), dims32(g.dilation), dims32(g.pad));
        bytes(ConvT {
            n: w32(n),
            c_in: w32(g.c_in),
            c_out: w32(g.c_out),
            groups: w32(g.groups),
            id,
            ih,
            iw,
            od,
            oh,
            ow,
            kd,
            kh,
            kw,
            sd,
            sh,
            sw,
            dd,
            dh,
            dw,
            pd,
            ph,
            pw,
            w_off: w32(self.w),
            b_off: w32(self.b),
            has_bias: u32::from(g.bias),
            total,
            ..ConvT::default()
        })
    }
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

fn conv_transpose_spec(kernel: Kernel, g: &ConvGeom, b: usize) -> ConvTSpec {
    ConvTSpec { kernel, g: *g, w: 0, b }
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
    let pass = Pass::new(dev, spec, &[&xb, &pb, &yb], g.n);
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
    let pass = Pass::new(dev, spec, &[&gxb, &pb, &gyb], g.n);
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
    let pass = Pass::new(dev, spec, &[&xb, &gbuf, &gyb], g.n);
    submit(dev, &[&pass], "running conv_transpose_backward_weight")?;
    read_weight_bias(dev, &gbuf, gw, gb)
}
