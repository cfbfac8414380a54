//! Padding on the GPU (`torchlet::ops::pad`): the 1-d, 2-d and 3-d pad layers ([`PadGeom`]) and the padded
//! input of a convolution whose `padding_mode` is reflect, replicate or circular
//! ([`ConvGeom`], see `conv.rs`'s `padded_conv_geom`), one 3-d shader pair for both
//! (`pad_forward.wgsl`, `pad_backward_input.wgsl`). The backward pass is a gather: each
//! invocation owns one input-gradient element and sums the padded positions that read it.

use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::ops::pad::PadGeom;
use torchlet::Buffer;

use super::conv::padded_conv_geom;
use super::{bytes, check_len, dims32, unary, w32, Dispatch};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Pad` of `pad_forward.wgsl` and `pad_backward_input.wgsl`.
    pub(crate) struct Pad {
        n: u32, c: u32, id: u32, ih: u32, iw: u32, od: u32, oh: u32, ow: u32,
        fd: u32, fh: u32, fw: u32, mode: u32, x_off: u32, y_off: u32, total: u32, _pad0: u32,
    }
}

/// A padding pass of `c` channels from `input` to `output` spatial dims, `front` positions
/// before each dim, reading through `mode`: the 3-d form both [`PadGeom`] and a padded
/// [`ConvGeom`] take ([`PadSpec::pad2d`], [`PadSpec::conv_input`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PadSpec {
    pub(crate) kernel: Kernel,
    pub(crate) c: usize,
    pub(crate) input: [usize; 3],
    pub(crate) output: [usize; 3],
    pub(crate) front: [usize; 3],
    pub(crate) mode: PaddingMode,
}

impl PadSpec {
    /// The pass of a `Pad2d` layer.
    pub(crate) fn pad2d(kernel: Kernel, g: &PadGeom) -> PadSpec {
        PadSpec {
            kernel,
            c: g.c,
            input: g.input,
            output: g.output(),
            front: g.front(),
            mode: g.mode,
        }
    }

    /// The pass padding a convolution's input into [`padded_conv_geom`]'s input.
    pub(crate) fn conv_input(kernel: Kernel, g: &ConvGeom) -> PadSpec {
        PadSpec {
            kernel,
            c: g.c_in,
            input: g.input,
            output: padded_conv_geom(g).input,
            front: g.pad,
            mode: g.mode,
        }
    }
}

fn mode_code(mode: PaddingMode) -> u32 {
    match mode {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Circular => 3,
    }
}

impl Dispatch for PadSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let dims = if self.kernel == Kernel::PadForward {
            self.output
        } else {
            self.input
        };
        planes_len(n, self.c, dims)
    }

    fn uniform(&self, n: usize, total: u32) -> Vec<u8> {
        let ([id, ih, iw], [od, oh, ow], [fd, fh, fw]) = (dims32(self.input), dims32(self.output), dims32(self.front));
        bytes(Pad {
            n: w32(n),
            c: w32(self.c),
            id,
            ih,
            iw,
            od,
            oh,
            ow,
            fd,
            fh,
            fw,
            mode: mode_code(self.mode),
            total,
            ..Pad::default()
        })
    }
}

/// `[N, C, *]` planes as `(n, c)` length checks share.
fn planes_len(n: usize, c: usize, dims: [usize; 3]) -> usize {
    n * c * dims[0] * dims[1] * dims[2]
}

/// The 3-d padding of `Pad2d`'s `[left, right, top, bottom]` over `h × w`: `(input, output, front)`.
fn pad2d_dims(h: usize, w: usize, [left, right, top, bottom]: [usize; 4]) -> [[usize; 3]; 3] {
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
    let spec = PadSpec {
        kernel: Kernel::PadForward,
        c,
        input,
        output,
        front,
        mode,
    };
    unary(dev, spec.into(), n, x, y, false)
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
    let spec = PadSpec {
        kernel: Kernel::PadBackwardInput,
        c,
        input,
        output,
        front,
        mode,
    };
    unary(dev, spec.into(), n, gy, gx, true)
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
