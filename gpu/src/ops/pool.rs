//! Pooling on the GPU (`torchlet::ops::pool`): max pooling with argmax indices, average
//! pooling, adaptive average and max pooling, and max unpooling, each over three spatial dims
//! as the core's [`PoolGeom`], [`AdaptiveGeom`] and [`UnpoolGeom`].
//!
//! Max pooling's backward is a gather (each invocation owns one input-gradient element and
//! scans the windows that can hold it) unless some window is empty
//! ([`torchlet::ops::pool::has_empty_window`], the core's rule): then it scatters, one
//! invocation per plane. The host wrappers mirror the core's functions for tests, indices as
//! plain `u32` (the core stores them as `f32` bit patterns: compare with
//! [`torchlet::ops::pool::decode_index`]).

use torchlet::ops::geom::PoolGeom;
use torchlet::ops::pool::{has_empty_window, AdaptiveGeom, UnpoolGeom};
use torchlet::Buffer;

use super::{bytes, check_len, dims32, submit, w32, Dispatch, Pass, Spec};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Pool` of `max_pool_forward.wgsl` and `max_pool_backward_input.wgsl`.
    pub(crate) struct Pool {
        n: u32, c: u32, id: u32, ih: u32, iw: u32, od: u32, oh: u32, ow: u32,
        kd: u32, kh: u32, kw: u32, sd: u32, sh: u32, sw: u32, dd: u32, dh: u32, dw: u32,
        pd: u32, ph: u32, pw: u32, x_off: u32, y_off: u32, total: u32, scatter: u32,
    }
}

uniform! {
    /// `struct AvgPool` of `avg_pool_forward.wgsl` and `avg_pool_backward_input.wgsl`.
    pub(crate) struct AvgPool {
        n: u32, c: u32, id: u32, ih: u32, iw: u32, od: u32, oh: u32, ow: u32,
        kd: u32, kh: u32, kw: u32, sd: u32, sh: u32, sw: u32, pd: u32, ph: u32, pw: u32,
        include_pad: u32, x_off: u32, y_off: u32, total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    }
}

uniform! {
    /// `struct Adaptive` of the `adaptive_*_pool_*.wgsl` shaders.
    pub(crate) struct Adaptive {
        n: u32, c: u32, id: u32, ih: u32, iw: u32, od: u32, oh: u32, ow: u32,
        x_off: u32, y_off: u32, total: u32, _pad0: u32,
    }
}

uniform! {
    /// `struct Unpool` of `max_unpool_forward.wgsl` and `max_unpool_backward_input.wgsl`.
    pub(crate) struct Unpool {
        n: u32, c: u32, in_sp: u32, out_sp: u32, x_off: u32, y_off: u32, total: u32, _pad0: u32,
    }
}

/// A max or average pooling pass; `g.n` is ignored (and `g.dilation` for average pooling).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PoolSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: PoolGeom,
}

impl Dispatch for PoolSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let g = &self.g;
        match self.kernel {
            Kernel::MaxPoolForward | Kernel::AvgPoolForward => n * g.c * g.out_spatial(),
            Kernel::MaxPoolBackwardInput if has_empty_window(g) => n * g.c,
            _ => n * g.c * g.in_spatial(),
        }
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let g = &self.g;
        let ([id, ih, iw], [od, oh, ow], [kd, kh, kw]) = (dims32(g.input), dims32(g.output), dims32(g.kernel));
        let ([sd, sh, sw], [dd, dh, dw], [pd, ph, pw]) = (dims32(g.stride), dims32(g.dilation), dims32(g.pad));
        let (n, c) = (w32(n), w32(g.c));
        match self.kernel {
            Kernel::AvgPoolForward | Kernel::AvgPoolBackwardInput => bytes(AvgPool {
                n,
                c,
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
                pd,
                ph,
                pw,
                include_pad: u32::from(g.count_include_pad),
                total,
                ..AvgPool::default()
            }),
            _ => bytes(Pool {
                n,
                c,
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
                total,
                scatter: u32::from(has_empty_window(g)),
                ..Pool::default()
            }),
        }
    }
}

/// An adaptive pooling pass (average or max).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdaptiveSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: AdaptiveGeom,
}

impl Dispatch for AdaptiveSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let dims = match self.kernel {
            Kernel::AdaptiveAvgPoolForward | Kernel::AdaptiveMaxPoolForward => self.g.output,
            _ => self.g.input,
        };
        n * self.g.c * dims.iter().product::<usize>()
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let ([id, ih, iw], [od, oh, ow]) = (dims32(self.g.input), dims32(self.g.output));
        bytes(Adaptive {
            n: w32(n),
            c: w32(self.g.c),
            id,
            ih,
            iw,
            od,
            oh,
            ow,
            total,
            ..Adaptive::default()
        })
    }
}

/// A max-unpooling pass (`g.pool` is the network's business: which indices to bind).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct UnpoolSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: UnpoolGeom,
}

impl Dispatch for UnpoolSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let per_plane = if self.kernel == Kernel::MaxUnpoolForward {
            self.g.out_spatial
        } else {
            self.g.in_spatial
        };
        n * self.g.c * per_plane
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        bytes(Unpool {
            n: w32(n),
            c: w32(self.g.c),
            in_sp: w32(self.g.in_spatial),
            out_sp: w32(self.g.out_spatial),
            total,
            ..Unpool::default()
        })
    }
}

fn unpool_geom(c: usize, in_spatial: usize, out_spatial: usize) -> UnpoolGeom {
    UnpoolGeom {
        c,
        in_spatial,
        out_spatial,
        pool: 0,
    }
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
    let spec = PoolSpec {
        kernel: Kernel::MaxPoolForward,
        g: *g,
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
    let spec = PoolSpec {
        kernel: Kernel::MaxPoolBackwardInput,
        g: *g,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &ib, &gyb], g.n);
    submit(dev, &[&pass], "running max_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::avg_pool_forward`], with the core's (PyTorch's) divisor rules
/// for `count_include_pad` and `ceil_mode` windows.
///
/// - `x`: `[N, C, D, H, W]`; `y`: `[N, C, oD, oH, oW]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch; wgpu errors.
pub fn avg_pool_forward(dev: &Device, g: &PoolGeom, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Input, g.n * g.c * g.in_spatial(), x.len())?;
    check_len(Buffer::Output, g.n * g.c * g.out_spatial(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = PoolSpec {
        kernel: Kernel::AvgPoolForward,
        g: *g,
    };
    let pass = Pass::new(dev, spec, &[&xb, &yb], g.n);
    submit(dev, &[&pass], "running avg_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::avg_pool_backward_input`]: every input position of a window
/// receives `gy / divisor`.
///
/// - `gy`: `[N, C, oD, oH, oW]`; `gx`: `[N, C, D, H, W]`, accumulated.
///
/// # Errors
/// As [`avg_pool_forward`].
pub fn avg_pool_backward_input(dev: &Device, g: &PoolGeom, gy: &[f32], gx: &mut [f32]) -> Result<()> {
    check_len(Buffer::Gradient, g.n * g.c * g.out_spatial(), gy.len())?;
    check_len(Buffer::Gradient, g.n * g.c * g.in_spatial(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = PoolSpec {
        kernel: Kernel::AvgPoolBackwardInput,
        g: *g,
    };
    let pass = Pass::new(dev, spec, &[&gxb, &gyb], g.n);
    submit(dev, &[&pass], "running avg_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// Checks an adaptive pooling geometry: every output dim at least 1 and every input dim at
/// least 1 (the planner's rule), so every window holds at least one position.
fn check_adaptive(input: [usize; 3], output: [usize; 3]) -> Result<()> {
    if input.contains(&0) || output.contains(&0) {
        return Err(Error::Core(torchlet::Error::InvalidArgument {
            name: "output_size",
            expected: "input and output sizes of at least 1",
        }));
    }
    Ok(())
}

fn adaptive_spec(kernel: Kernel, c: usize, input: [usize; 3], output: [usize; 3]) -> Spec {
    AdaptiveSpec {
        kernel,
        g: AdaptiveGeom { c, input, output },
    }
    .into()
}

/// GPU [`torchlet::ops::pool::adaptive_avg_pool_forward`]: the mean over the window
/// `[floor(i * in / out), ceil((i + 1) * in / out))` in each dim.
///
/// - `x`: `[n, c, *input]`; `y`: `[n, c, *output]`, overwritten.
///
/// # Errors
/// [`Error::Core`] for a buffer length mismatch or an empty dim; wgpu errors.
pub fn adaptive_avg_pool_forward(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Input, n * c * input.iter().product::<usize>(), x.len())?;
    check_len(Buffer::Output, n * c * output.iter().product::<usize>(), y.len())?;
    let xb = dev.storage_with("x", x)?;
    let yb = dev.storage("y", y.len())?;
    let spec = adaptive_spec(Kernel::AdaptiveAvgPoolForward, c, input, output);
    let pass = Pass::new(dev, spec, &[&xb, &yb], n);
    submit(dev, &[&pass], "running adaptive_avg_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::adaptive_avg_pool_backward_input`]: every position of a
/// window receives `gy / window size`.
///
/// - `gy`: `[n, c, *output]`; `gx`: `[n, c, *input]`, accumulated.
///
/// # Errors
/// As [`adaptive_avg_pool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn adaptive_avg_pool_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Gradient, n * c * output.iter().product::<usize>(), gy.len())?;
    check_len(Buffer::Gradient, n * c * input.iter().product::<usize>(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = adaptive_spec(Kernel::AdaptiveAvgPoolBackwardInput, c, input, output);
    let pass = Pass::new(dev, spec, &[&gxb, &gyb], n);
    submit(dev, &[&pass], "running adaptive_avg_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::adaptive_max_pool_forward`], with the argmax indices as plain
/// `u32` (the core stores them as `f32` bit patterns: compare with
/// [`torchlet::ops::pool::decode_index`]).
///
/// - `x`: `[n, c, *input]`; `y`, `indices`: `[n, c, *output]`, overwritten.
///
/// # Errors
/// As [`adaptive_avg_pool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn adaptive_max_pool_forward(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    x: &[f32],
    y: &mut [f32],
    indices: &mut [u32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Input, n * c * input.iter().product::<usize>(), x.len())?;
    check_len(Buffer::Output, n * c * output.iter().product::<usize>(), y.len())?;
    check_len(Buffer::Output, y.len(), indices.len())?;
    let xb = dev.storage_with("x", x)?;
    let ib = dev.storage("indices", y.len())?;
    let yb = dev.storage("y", y.len())?;
    let spec = adaptive_spec(Kernel::AdaptiveMaxPoolForward, c, input, output);
    let pass = Pass::new(dev, spec, &[&xb, &ib, &yb], n);
    submit(dev, &[&pass], "running adaptive_max_pool_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    indices.copy_from_slice(&dev.read::<u32>(&ib, 0, indices.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::pool::adaptive_max_pool_backward_input`]:
/// `gx[n, c, indices[n, c, o]] += gy[n, c, o]`.
///
/// - `indices`, `gy`: `[n, c, *output]`; `gx`: `[n, c, *input]`, accumulated.
///
/// # Errors
/// As [`adaptive_avg_pool_forward`].
#[allow(clippy::too_many_arguments)]
pub fn adaptive_max_pool_backward_input(
    dev: &Device,
    n: usize,
    c: usize,
    input: [usize; 3],
    output: [usize; 3],
    indices: &[u32],
    gy: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    check_adaptive(input, output)?;
    check_len(Buffer::Gradient, n * c * output.iter().product::<usize>(), gy.len())?;
    check_len(Buffer::Gradient, gy.len(), indices.len())?;
    check_len(Buffer::Gradient, n * c * input.iter().product::<usize>(), gx.len())?;
    let gxb = dev.storage_with("gx", gx)?;
    let ib = dev.storage_with("indices", indices)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = adaptive_spec(Kernel::AdaptiveMaxPoolBackwardInput, c, input, output);
    let pass = Pass::new(dev, spec, &[&gxb, &ib, &gyb], n);
    submit(dev, &[&pass], "running adaptive_max_pool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
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
    let spec = UnpoolSpec {
        kernel: Kernel::MaxUnpoolForward,
        g: unpool_geom(c, in_spatial, out_spatial),
    };
    let pass = Pass::new(dev, spec, &[&xb, &ib, &yb], n);
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
    let spec = UnpoolSpec {
        kernel: Kernel::MaxUnpoolBackwardInput,
        g: unpool_geom(c, in_spatial, out_spatial),
    };
    let pass = Pass::new(dev, spec, &[&gxb, &ib, &gyb], n);
    submit(dev, &[&pass], "running max_unpool_backward_input")?;
    gx.copy_from_slice(&dev.read::<f32>(&gxb, 0, gx.len())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_max_pool_windows_switch_the_backward_to_a_scatter() {
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
        let scatter = |g: PoolGeom| {
            let spec = PoolSpec {
                kernel: Kernel::MaxPoolBackwardInput,
                g,
            };
            let words: Vec<u32> = bytemuck::pod_collect_to_vec(&spec.uniform(2, 0));
            (words[23], spec.invocations(2))
        };
        // W = 1, kernel 2, dilation 2, padding 1 reads positions -1 and 1 only: one invocation
        // per plane scatters.
        assert_eq!(scatter(g(1, 2, 2, 1)), (1, 2));
        // The tutorial's MaxPool2d(2) never has an empty window: one invocation per input.
        assert_eq!(scatter(g(32, 2, 1, 0)), (0, 2 * 32));
        assert_eq!(scatter(g(5, 3, 1, 1)).0, 0);
    }
}
