//! Convolutions on the GPU (`torchlet::ops::conv`): the tiled implicit-GEMM forward, input
//! gradient and weight gradient (`conv_*.wgsl` after `tile_gemm.wgsl`), the reduction of the
//! weight gradient's partial sums (`reduce_partials.wgsl`), and the zeros-padded geometry a
//! convolution with another `padding_mode` runs as once `pad.rs` has padded its input.
//!
//! Use [`ConvSpec`] (a [`ConvGeom`] and the parameter offsets) to record a pass; the host
//! wrappers `conv_forward`, `conv_backward_input`, `conv_backward_weight` mirror the core's
//! functions for tests (zeros padding only: the network pads other modes first).

use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::Buffer;

use super::{bytes, check_len, concat, dims32, read_weight_bias, submit, w32, Dispatch, Pass};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Conv` of `conv_forward.wgsl`, `conv_backward_input.wgsl` and `conv_backward_weight.wgsl`.
    pub(crate) struct Conv {
        n: u32, c_in: u32, c_out: u32, groups: u32,
        id: u32, ih: u32, iw: u32, od: u32, oh: u32, ow: u32,
        kd: u32, kh: u32, kw: u32, sd: u32, sh: u32, sw: u32,
        dd: u32, dh: u32, dw: u32, pd: u32, ph: u32, pw: u32,
        x_off: u32, w_off: u32, b_off: u32, has_bias: u32, y_off: u32, total: u32, chunk: u32,
        _pad0: u32, _pad1: u32, _pad2: u32,
    }
}

uniform! {
    /// `struct Reduce` of `reduce_partials.wgsl`.
    pub(crate) struct Reduce {
        elems: u32, chunks: u32, split: u32, w_off: u32, b_off: u32, total: u32, _pad0: u32, _pad1: u32,
    }
}

/// Invocations per workgroup of the tiled convolution kernels (each computes a 64 x 64 tile).
const CONV_WORKGROUP: usize = 256;
/// Rows and columns of a convolution kernel's output tile.
const CONV_TILE: usize = 64;
/// Most floats of partial sums one convolution's weight gradient keeps (16 MiB).
const PARTIAL_BUDGET: usize = 4 << 20;

/// A convolution pass ([`Kernel::ConvForward`], `ConvBackwardInput` or `ConvBackwardWeight`):
/// `g.n` is ignored (the batch comes with the uniform); `w`, `b`: the weight's and bias's
/// offsets in the parameter (or gradient) buffer; `chunk`: samples per partial sum of
/// `ConvBackwardWeight`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ConvSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: ConvGeom,
    pub(crate) w: usize,
    pub(crate) b: usize,
    pub(crate) chunk: usize,
}

impl Dispatch for ConvSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        conv_workgroups(self.kernel, &self.g, n, self.chunk) * CONV_WORKGROUP
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let g = &self.g;
        let ([id, ih, iw], [od, oh, ow], [kd, kh, kw]) = (dims32(g.input), dims32(g.output), dims32(g.kernel));
        let ([sd, sh, sw], [dd, dh, dw], [pd, ph, pw]) = (dims32(g.stride), dims32(g.dilation), dims32(g.pad));
        bytes(Conv {
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
            chunk: w32(self.chunk),
            ..Conv::default()
        })
    }
}

/// Adds the partial sums of `elems` elements (`chunk` samples each) into the gradients:
/// elements below `split` at `w + e`, the rest at `b + e - split`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ReduceSpec {
    pub(crate) elems: usize,
    pub(crate) split: usize,
    pub(crate) w: usize,
    pub(crate) b: usize,
    pub(crate) chunk: usize,
}

impl Dispatch for ReduceSpec {
    fn kernel(&self) -> Kernel {
        Kernel::ReducePartials
    }

    fn invocations(&self, _n: usize) -> usize {
        self.elems
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        bytes(Reduce {
            elems: w32(self.elems),
            chunks: w32(n.div_ceil(self.chunk.max(1))),
            split: w32(self.split),
            w_off: w32(self.w),
            b_off: w32(self.b),
            total,
            ..Reduce::default()
        })
    }
}

/// Elements of a convolution's weight gradient plus its bias gradient.
pub(crate) fn conv_weight_elems(g: &ConvGeom) -> usize {
    g.weight_len() + if g.bias { g.c_out } else { 0 }
}

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

/// Samples per partial sum of a convolution's weight gradient for batches of up to `batch`:
/// up to 64 chunks, fewer when `elems` partial sums per chunk would exceed [`PARTIAL_BUDGET`].
pub(crate) fn conv_weight_chunk(batch: usize, elems: usize) -> usize {
    let chunks = (PARTIAL_BUDGET / elems.max(1)).clamp(1, 64).min(batch.max(1));
    batch.max(1).div_ceil(chunks)
}

/// The padding modes the convolution shaders read (the network pads the others first).
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
    let spec = ConvSpec {
        kernel: Kernel::ConvForward,
        g: *g,
        w: 0,
        b: w.len(),
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
    let spec = ConvSpec {
        kernel: Kernel::ConvBackwardInput,
        g: *g,
        w: 0,
        b: 0,
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
    let spec = ConvSpec {
        kernel: Kernel::ConvBackwardWeight,
        g: *g,
        w: 0,
        b: 0,
        chunk,
    };
    let pass = Pass::new(dev, spec, &[&xb, &gyb, &partial], g.n);
    let reduce = ReduceSpec {
        elems,
        split: gw.len(),
        w: 0,
        b: gw.len(),
        chunk,
    };
    let reduce = Pass::new(dev, reduce, &[&partial, &gb_buf], g.n);
    submit(dev, &[&pass, &reduce], "running conv_backward_weight")?;
    read_weight_bias(dev, &gb_buf, gw, gb)
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
}
