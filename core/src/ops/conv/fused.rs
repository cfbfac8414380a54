//! Convolution, activation and pooling in one pass, for fused inference plans
//! ([`crate::plan::fuse`]): the convolution's output is computed for the rows one pooled output
//! row covers, all output channels at once, and pooled at once, so it is never stored whole.
//!
//! The rows are computed as the unfused convolution computes its whole output: an im2col column
//! matrix (here of at most [`FUSED_COL_BUDGET`] floats, a few output positions at a time) times
//! the weights through the network's matrix multiply, on top of the bias. So the fused pass runs
//! at the speed of the matrix multiply (AVX2 on a desktop, the portable kernel on a Cortex-M)
//! with a scratch of a few KiB.

use super::epilogue::pool_rows;
use super::im2col::{im2col, im2col_panels, panels_fit};
use super::{col_rows, ConvGeom};
use crate::kernels::blocked::NR;
use crate::kernels::{Gemm, MatRef};
use crate::ops::batchnorm::{eval_affine, BnGeom};
use crate::ops::geom::PoolGeom;
use crate::plan::FusedAct;

/// Most floats of column matrix a fused pass builds at once (16 KiB).
pub const FUSED_COL_BUDGET: usize = 4096;

/// An eval-mode BatchNorm between the convolution and the activation of a fused pass.
#[derive(Clone, Copy, Debug)]
pub struct ChannelNorm<'a> {
    /// The BatchNorm's geometry (`c`: the convolution's output channels).
    pub geom: BnGeom,
    /// `[C]`, empty without affine parameters.
    pub weight: &'a [f32],
    /// `[C]`, empty without affine parameters.
    pub bias: &'a [f32],
    /// `[running_mean[C], running_var[C], num_batches_tracked]`.
    pub state: &'a [f32],
}

/// Which pooling a fused pass ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `MaxPool`: the largest value of each window (NaN wins, as in PyTorch).
    Max,
    /// `AvgPool`: the mean of each window (whole windows only: no padding).
    Avg,
}

/// Output positions per column-matrix chunk of a fused pass over convolution `c` whose pool
/// windows are `pool_rows` rows high: all of them if the budget allows, else as many as fit,
/// rounded down to a multiple of 4 (the column tile of the Cortex-M4F kernel,
/// [`crate::kernels::blocked::NR`], which then multiplies each chunk in place with no narrow
/// remainder).
const fn chunk(c: &ConvGeom, pool_rows: usize) -> usize {
    let positions = pool_rows * c.output[2];
    let fit = FUSED_COL_BUDGET / col_rows(c);
    let fit = if fit == 0 {
        1
    } else if fit > NR {
        fit - fit % NR
    } else {
        fit
    };
    if fit < positions {
        fit
    } else {
        positions
    }
}

/// Floats of scratch [`conv_pool_forward`] needs: one column-matrix chunk and the
/// convolution's rows under one pooled row, for the output channels of one group.
pub const fn fused_workspace_len(c: &ConvGeom, pool_rows: usize) -> usize {
    chunk(c, pool_rows) * col_rows(c) + c.c_out / c.groups * pool_rows * c.output[2]
}

/// Fused `pool(act(norm(conv(x))))` (`norm`: an optional eval-mode BatchNorm) for 1-d and 2-d convolutions with zero padding, pools without
/// padding or dilation whose windows lie inside the convolution's output.
///
/// - `c`: the convolution's geometry (`c.n` samples); `p`: the pool's (`p.input` is the
///   convolution's output size);
/// - `x`: `[N, C_in, H, W]`; `w`: `[C_out, C_in / groups, kH, kW]`; `bias`: `[C_out]` or empty;
/// - `y`: `[N, C_out, pH, pW]`, overwritten;
/// - `work`: at least [`fused_workspace_len`] floats of scratch.
#[allow(clippy::too_many_arguments)]
pub fn conv_pool_forward(
    gemm: &dyn Gemm,
    c: &ConvGeom,
    act: FusedAct,
    norm: Option<&ChannelNorm<'_>>,
    pool: PoolKind,
    p: &PoolGeom,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    work: &mut [f32],
) {
    let (cin_g, cout_g) = (c.c_in / c.groups, c.c_out / c.groups);
    let (in_sp, rows) = (c.in_spatial(), col_rows(c));
    let cw = c.output[2];
    let (ph, pw) = (p.output[1], p.output[2]);
    let pkh = p.kernel[1];
    let positions = pkh * cw;
    let lc = chunk(c, pkh);
    let (col, conv) = work.split_at_mut(lc * rows);
    let conv = &mut conv[..cout_g * positions];
    let panels = gemm.panel_width() == NR && panels_fit(c);
    for n in 0..c.n {
        for grp in 0..c.groups {
            let xg = &x[(n * c.c_in + grp * cin_g) * in_sp..][..cin_g * in_sp];
            let wg = MatRef::row_major(&w[grp * cout_g * rows..][..cout_g * rows], rows);
            for oy in 0..ph {
                // Conv rows oy·stride .. oy·stride + pkh: positions p0 .. p0 + positions.
                let p0 = oy * p.stride[1] * cw;
                for (k, plane) in conv.chunks_exact_mut(positions).enumerate() {
                    plane.fill(bias.get(grp * cout_g + k).copied().unwrap_or(0.0));
                }
                for l0 in (0..positions).step_by(lc) {
                    let len = lc.min(positions - l0);
                    let col = &mut col[..rows * len];
                    if panels {
                        // Columns gathered straight into the kernel's panels, each multiplied
                        // in place over the whole depth.
                        im2col_panels(c, xg, col, p0 + l0);
                        for (s, panel) in col.chunks_mut(rows * NR).enumerate() {
                            let w = panel.len() / rows;
                            gemm.gemm(
                                cout_g,
                                w,
                                rows,
                                wg,
                                MatRef::row_major(panel, w),
                                &mut conv[l0 + s * NR..],
                                positions,
                                true,
                            );
                        }
                        continue;
                    }
                    im2col(c, xg, col, p0 + l0);
                    gemm.gemm(
                        cout_g,
                        len,
                        rows,
                        wg,
                        MatRef::row_major(col, len),
                        &mut conv[l0..],
                        positions,
                        true,
                    );
                }
                for (k, plane) in conv.chunks_exact_mut(positions).enumerate() {
                    let ch = grp * cout_g + k;
                    if let Some(b) = norm {
                        let (mean, scale, shift) = eval_affine(&b.geom, b.weight, b.bias, b.state, ch);
                        for v in plane.iter_mut() {
                            *v = (*v - mean) * scale + shift;
                        }
                    }
                    let out = &mut y[((n * c.c_out + ch) * ph + oy) * pw..][..pw];
                    pool_rows(act, pool, p, plane, cw, out);
                }
            }
        }
    }
}
