//! The merges on the GPU (`torchlet::ops::merge`): residual `Add` and channel `Concat`,
//! forward in one dispatch, backward one dispatch per input (so a producer feeding both inputs
//! receives both contributions one after the other, without atomics).

use torchlet::ops::merge::ConcatGeom;
use torchlet::Buffer;

use super::{bytes, check_len, submit, w32, Dispatch, Pass, Spec};
use crate::device::Device;
use crate::error::Result;
use crate::kernels::{uniform, Kernel};

uniform! {
    /// `struct Merge` of the `add_*.wgsl` and `concat_*.wgsl` shaders.
    pub(crate) struct Merge {
        a: u32, b: u32, second: u32, x_off: u32, x2_off: u32, y_off: u32, total: u32, _pad0: u32,
    }
}

/// A merge pass: `g.a`, `g.b` the per-sample lengths of the inputs (for `Add` both are the
/// sample length); `second`: the backward dispatch for the second input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MergeSpec {
    pub(crate) kernel: Kernel,
    pub(crate) g: ConcatGeom,
    pub(crate) second: bool,
}

impl Dispatch for MergeSpec {
    fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn invocations(&self, n: usize) -> usize {
        let ConcatGeom { a, b } = self.g;
        match self.kernel {
            Kernel::ConcatForward => n * (a + b),
            Kernel::ConcatBackwardInput if self.second => n * b,
            _ => n * a,
        }
    }

    fn uniform(&self, _n: usize, total: u32) -> Vec<u8> {
        bytes(Merge {
            a: w32(self.g.a),
            b: w32(self.g.b),
            second: u32::from(self.second),
            total,
            ..Merge::default()
        })
    }
}

fn merge_spec(kernel: Kernel, a: usize, b: usize, second: bool) -> Spec {
    MergeSpec {
        kernel,
        g: ConcatGeom { a, b },
        second,
    }
    .into()
}

/// GPU [`torchlet::ops::merge::add_forward`]: `y = a + b`; `a`, `b`, `y`: `[*]`, same length.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for a buffer length mismatch; wgpu errors.
pub fn add_forward(dev: &Device, a: &[f32], b: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(Buffer::Input, a.len(), b.len())?;
    check_len(Buffer::Output, a.len(), y.len())?;
    let ab = dev.storage_with("a", a)?;
    let bb = dev.storage_with("b", b)?;
    let yb = dev.storage("y", y.len())?;
    let pass = Pass::new(
        dev,
        merge_spec(Kernel::AddForward, a.len(), a.len(), false),
        &[&ab, &bb, &yb],
        1,
    );
    submit(dev, &[&pass], "running add_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::merge::add_backward_input`]: `ga += gy`, `gb += gy`, as two
/// dispatches (one per input, as [`crate::GpuNetwork`] runs them).
///
/// - `gy`, `ga`, `gb`: `[*]`, same length; `ga` and `gb` accumulated.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for a buffer length mismatch; wgpu errors.
pub fn add_backward_input(dev: &Device, gy: &[f32], ga: &mut [f32], gb: &mut [f32]) -> Result<()> {
    check_len(Buffer::Gradient, gy.len(), ga.len())?;
    check_len(Buffer::Gradient, gy.len(), gb.len())?;
    let gab = dev.storage_with("ga", ga)?;
    let gbb = dev.storage_with("gb", gb)?;
    let gyb = dev.storage_with("gy", gy)?;
    let spec = merge_spec(Kernel::AddBackwardInput, gy.len(), gy.len(), false);
    let first = Pass::new(dev, spec, &[&gab, &gyb], 1);
    let spec = merge_spec(Kernel::AddBackwardInput, gy.len(), gy.len(), true);
    let second = Pass::new(dev, spec, &[&gbb, &gyb], 1);
    submit(dev, &[&first, &second], "running add_backward_input")?;
    ga.copy_from_slice(&dev.read::<f32>(&gab, 0, ga.len())?);
    gb.copy_from_slice(&dev.read::<f32>(&gbb, 0, gb.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::merge::concat_forward`]: `y[s] = [a[s], b[s]]` for each of the `n`
/// samples (`torch.cat([a, b], dim=1)`).
///
/// - `a`: `[n, a_len]`; `b`: `[n, b_len]`; `y`: `[n, a_len + b_len]`, overwritten.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for a buffer length mismatch; wgpu errors.
pub fn concat_forward(
    dev: &Device,
    n: usize,
    a_len: usize,
    b_len: usize,
    a: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Input, n * a_len, a.len())?;
    check_len(Buffer::Input, n * b_len, b.len())?;
    check_len(Buffer::Output, n * (a_len + b_len), y.len())?;
    let ab = dev.storage_with("a", a)?;
    let bb = dev.storage_with("b", b)?;
    let yb = dev.storage("y", y.len())?;
    let pass = Pass::new(
        dev,
        merge_spec(Kernel::ConcatForward, a_len, b_len, false),
        &[&ab, &bb, &yb],
        n,
    );
    submit(dev, &[&pass], "running concat_forward")?;
    y.copy_from_slice(&dev.read::<f32>(&yb, 0, y.len())?);
    Ok(())
}

/// GPU [`torchlet::ops::merge::concat_backward_input`]: `ga[s] += gy[s][..a_len]`,
/// `gb[s] += gy[s][a_len..]`, as two dispatches (one per input).
///
/// - `gy`: `[n, a_len + b_len]`; `ga`: `[n, a_len]`, `gb`: `[n, b_len]`, accumulated.
///
/// # Errors
/// [`Error::Core`](crate::Error::Core) for a buffer length mismatch; wgpu errors.
#[allow(clippy::too_many_arguments)]
pub fn concat_backward_input(
    dev: &Device,
    n: usize,
    a_len: usize,
    b_len: usize,
    gy: &[f32],
    ga: &mut [f32],
    gb: &mut [f32],
) -> Result<()> {
    check_len(Buffer::Gradient, n * (a_len + b_len), gy.len())?;
    check_len(Buffer::Gradient, n * a_len, ga.len())?;
    check_len(Buffer::Gradient, n * b_len, gb.len())?;
    let gab = dev.storage_with("ga", ga)?;
    let gbb = dev.storage_with("gb", gb)?;
    let gyb = dev.storage_with("gy", gy)?;
    let first = Pass::new(
        dev,
        merge_spec(Kernel::ConcatBackwardInput, a_len, b_len, false),
        &[&gab, &gyb],
        n,
    );
    let second = Pass::new(
        dev,
        merge_spec(Kernel::ConcatBackwardInput, a_len, b_len, true),
        &[&gbb, &gyb],
        n,
    );
    submit(dev, &[&first, &second], "running concat_backward_input")?;
    ga.copy_from_slice(&dev.read::<f32>(&gab, 0, ga.len())?);
    gb.copy_from_slice(&dev.read::<f32>(&gbb, 0, gb.len())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_backward_covers_each_input() {
        let spec = |second| MergeSpec {
            kernel: Kernel::ConcatBackwardInput,
            g: ConcatGeom { a: 3, b: 5 },
            second,
        };
        assert_eq!(spec(false).invocations(2), 6);
        assert_eq!(spec(true).invocations(2), 10);
    }
}
