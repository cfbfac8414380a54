//! Transposed convolution (`nn.ConvTranspose1d/2d/3d`, on the shared 3-d geometry): forward, input
//! gradient and weight gradient.
//!
//! A transposed convolution is the input gradient of the convolution that maps its (large)
//! output back to its (small) input with the same weight, stride, padding, dilation and groups.
//! So every kernel here runs a [`super::conv`] kernel on that *dual* geometry:
//!
//! ```text
//! forward          y  = conv_backward_input(dual, w, gy = x) + b
//! input gradient   gx += conv_forward(dual, gy, w)
//! weight gradient  gw += conv_backward_weight(dual, x = gy, gy = x),   gb += Σ gy
//! ```
//!
//! Geometry: `g.input` is the small input, `g.output` the large output (already including
//! `output_padding`), `g.pad` PyTorch's `padding`; the padding mode is always zeros. Output
//! positions that no input reaches (from `output_padding`) get the bias only.
//!
//! Each kernel has a `_with` twin that takes the matrix multiply to use ([`Gemm`]); the plain
//! names use [`Portable`].
//!
//! See <https://pytorch.org/docs/stable/generated/torch.nn.ConvTranspose2d.html>.

use super::conv::{backward_input_into, backward_weight_into, bias_grad, conv_workspace_len, fill_bias, forward_into};
use super::geom::{ConvGeom, PaddingMode};
use super::io::{Bwd, Fwd};
use crate::error::Result;
use crate::kernels::{Gemm, Portable};
use crate::layer::ConvTranspose;
use crate::plan::{At, Exec, Node};
use crate::shape::Shape;

/// The convolution whose input gradient this transposed convolution is: from `g.output`
/// (`C_out` channels) to `g.input` (`C_in` channels), with weight `[C_in, C_out / groups, k]`.
const fn dual(g: &ConvGeom) -> ConvGeom {
    ConvGeom {
        n: g.n,
        c_in: g.c_out,
        c_out: g.c_in,
        groups: g.groups,
        input: g.output,
        output: g.input,
        kernel: g.kernel,
        stride: g.stride,
        dilation: g.dilation,
        pad: g.pad,
        mode: PaddingMode::Zeros,
        bias: false,
    }
}

/// Floats of scratch one call of any kernel below needs: a chunk of the dual convolution's
/// column matrix, `C_out / groups · kD·kH·kW` rows by up to `D·H·W` (small input) positions,
/// at most [`COL_BUDGET`](super::conv::COL_BUDGET) floats unless one position needs more; 0 for
/// kernel 1, stride 1, no padding and no output padding.
pub const fn conv_transpose_workspace_len(g: &ConvGeom) -> usize {
    conv_workspace_len(&dual(g))
}

/// Transposed convolution forward.
///
/// - `x`: `[N, C_in, D, H, W]` (small);
/// - `w`: `[C_in, C_out / groups, kD, kH, kW]`;
/// - `b`: `[C_out]`, empty when `!g.bias`;
/// - `y`: `[N, C_out, oD, oH, oW]` (large), overwritten;
/// - `work`: at least [`conv_transpose_workspace_len`] floats of scratch.
///
/// `y[n, o, i·stride + k·dilation - pad] += x[n, c, i] · w[c, o', k]` over every input position
/// `i`, kernel offset `k` and input channel `c` of the group of output channel `o`
/// (`o' = o mod C_out/groups`), then `+ b[o]`.
pub fn conv_transpose_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], work: &mut [f32]) {
    conv_transpose_forward_with(&Portable, g, x, w, b, y, work);
}

/// [`conv_transpose_forward`] with the matrix multiply `gemm`.
pub fn conv_transpose_forward_with(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    work: &mut [f32],
) {
    if g.bias {
        fill_bias(g.n, g.c_out, g.out_spatial(), b, y);
    } else {
        y[..g.n * g.c_out * g.out_spatial()].fill(0.0);
    }
    backward_input_into(gemm, &dual(g), w, x, y, work);
}

/// Transposed convolution input gradient: `gx += dL/dx` given `gy = dL/dy`.
///
/// - `w`: `[C_in, C_out / groups, kD, kH, kW]`;
/// - `gy`: `[N, C_out, oD, oH, oW]` (large);
/// - `gx`: `[N, C_in, D, H, W]` (small), accumulated;
/// - `work`: at least [`conv_transpose_workspace_len`] floats of scratch.
///
/// `gx[n, c, i] += Σ_{o', k} w[c, o', k] · gy[n, o, i·stride + k·dilation - pad]` (an ordinary
/// convolution of `gy`).
pub fn conv_transpose_backward_input(g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32], work: &mut [f32]) {
    conv_transpose_backward_input_with(&Portable, g, w, gy, gx, work);
}

/// [`conv_transpose_backward_input`] with the matrix multiply `gemm`.
pub fn conv_transpose_backward_input_with(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    work: &mut [f32],
) {
    forward_into(gemm, &dual(g), gy, w, None, gx, work, true);
}

/// Transposed convolution parameter gradients: `gw += dL/dw`, `gb += dL/db`.
///
/// - `x`: `[N, C_in, D, H, W]` (the forward input);
/// - `gy`: `[N, C_out, oD, oH, oW]`;
/// - `gw`: `[C_in, C_out / groups, kD, kH, kW]`, accumulated;
/// - `gb`: `[C_out]`, accumulated; empty when `!g.bias`;
/// - `work`: at least [`conv_transpose_workspace_len`] floats of scratch.
///
/// `gw[c, o', k] += Σ_{n, i} x[n, c, i] · gy[n, o, i·stride + k·dilation - pad]`,
/// `gb[o] += Σ_{n, p} gy[n, o, p]`.
pub fn conv_transpose_backward_weight(
    g: &ConvGeom,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
    work: &mut [f32],
) {
    conv_transpose_backward_weight_with(&Portable, g, x, gy, gw, gb, work);
}

/// [`conv_transpose_backward_weight`] with the matrix multiply `gemm`.
pub fn conv_transpose_backward_weight_with(
    gemm: &dyn Gemm,
    g: &ConvGeom,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
    work: &mut [f32],
) {
    if g.bias {
        bias_grad(g.n, g.c_out, g.out_spatial(), gy, gb);
    }
    backward_weight_into(gemm, &dual(g), gy, x, gw, work);
}

// ---- the layer: planning and the network's forward and backward ----

/// Plans `nn.ConvTranspose1d/2d/3d` (`dims` spatial dims) on the node's input shape: PyTorch's
/// checks and output size
/// `(in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1`.
pub(crate) const fn plan(c: &ConvTranspose, dims: u8, at: At, node: &mut Node) -> Result<()> {
    let s = node.in_shape;
    ctry!(at.rank(&s, dims as usize + 1));
    if c.in_channels != s.channels() {
        return Err(at.err(
            "in_channels differs from the channels of its input",
            c.in_channels,
            s.channels(),
        ));
    }
    if c.groups == 0 || c.in_channels % c.groups != 0 || c.out_channels == 0 || c.out_channels % c.groups != 0 {
        return Err(at.err(
            "in_channels and out_channels must be positive multiples of groups",
            c.groups,
            c.in_channels,
        ));
    }
    let inp = s.spatial3();
    let mut out = [1usize; 3];
    let mut d = 0;
    while d < 3 {
        let (k, st, dil, p, op) = (
            c.kernel_size[d],
            c.stride[d],
            c.dilation[d],
            c.padding[d],
            c.output_padding[d],
        );
        if k == 0 || st == 0 || dil == 0 {
            return Err(at.err("kernel_size, stride and dilation must be positive", 1, 0));
        }
        if op >= st && op >= dil {
            return Err(at.err("output_padding must be smaller than stride or dilation", st, op));
        }
        let full = (inp[d] - 1) * st + dil * (k - 1) + op + 1;
        if full <= 2 * p {
            return Err(at.err("padding removes the whole output", full, 2 * p));
        }
        out[d] = full - 2 * p;
        d += 1;
    }
    let g = ConvGeom {
        n: at.batch,
        c_in: c.in_channels,
        c_out: c.out_channels,
        groups: c.groups,
        input: inp,
        output: out,
        kernel: c.kernel_size,
        stride: c.stride,
        dilation: c.dilation,
        pad: c.padding,
        mode: PaddingMode::Zeros,
        bias: c.bias,
    };
    node.exec = Exec::ConvTranspose(g);
    let per_group = crate::plan::product_len(c.in_channels, c.out_channels / c.groups);
    let k = g.kernel;
    let volume = crate::plan::product_len(crate::plan::product_len(k[0], k[1]), k[2]);
    node.weight_len = crate::plan::product_len(per_group, volume);
    node.bias_len = if c.bias { c.out_channels } else { 0 };
    node.out_shape = Shape::with_spatial3(dims as usize + 1, c.out_channels, out);
    node.work_fwd.len = conv_transpose_workspace_len(&g);
    node.work_bwd.len = conv_transpose_workspace_len(&g);
    Ok(())
}

/// The network's forward pass of a transposed-convolution node.
pub(crate) fn forward(mut g: ConvGeom, io: &mut Fwd<'_>) {
    g.n = io.n;
    conv_transpose_forward_with(io.gemm, &g, io.x, io.w, io.bias, io.y, io.work);
}

/// The network's backward pass of a transposed-convolution node.
pub(crate) fn backward(mut g: ConvGeom, io: &mut Bwd<'_>) {
    g.n = io.n;
    if io.has_gx() {
        conv_transpose_backward_input_with(io.gemm, &g, io.w, io.gy, io.gx, io.work);
    }
    conv_transpose_backward_weight_with(io.gemm, &g, io.x, io.gy, io.gw, io.gbias, io.work);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_two_scatters_kernel_copies() {
        // 1 channel, input [a, b] (1-d), kernel [1, 10], stride 2, no padding: output length
        // (2 - 1) * 2 + 2 = 4 = [a, 10a, b, 10b] (+ bias); output_padding 1 adds an untouched 5th.
        let g = ConvGeom {
            n: 1,
            c_in: 1,
            c_out: 1,
            groups: 1,
            input: [1, 1, 2],
            output: [1, 1, 5],
            kernel: [1, 1, 2],
            stride: [1, 1, 2],
            dilation: [1; 3],
            pad: [0; 3],
            mode: PaddingMode::Zeros,
            bias: true,
        };
        let mut work = [0.0; 4];
        assert!(conv_transpose_workspace_len(&g) <= work.len());
        let mut y = [9.0; 5];
        conv_transpose_forward(&g, &[1.0, 2.0], &[1.0, 10.0], &[0.5], &mut y, &mut work);
        assert_eq!(y, [1.5, 10.5, 2.5, 20.5, 0.5]);
        let mut gx = [0.0; 2];
        conv_transpose_backward_input(&g, &[1.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0], &mut gx, &mut work);
        assert_eq!(gx, [21.0, 43.0]);
        let (mut gw, mut gb) = ([0.0; 2], [0.0; 1]);
        conv_transpose_backward_weight(&g, &[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0, 5.0], &mut gw, &mut gb, &mut work);
        assert_eq!(gw, [1.0 + 6.0, 2.0 + 8.0]);
        assert_eq!(gb, [15.0]);
    }
}
