//! Flatten and Identity on the GPU (`torchlet::ops::reshape`): a copy forward
//! (`copy_forward.wgsl`) and an accumulating copy backward (`copy_backward_input.wgsl`), both
//! [`ElementwiseSpec`]s. Dropout's eval pass is this copy too.

use super::activation::ElementwiseSpec;
use crate::kernels::Kernel;

/// The copy forward pass of `per_sample` floats per sample.
pub(crate) fn copy_forward(per_sample: usize) -> ElementwiseSpec {
    ElementwiseSpec::new(Kernel::CopyForward, per_sample, 0.0)
}

/// The copy backward pass (`gx += gy`) of `per_sample` floats per sample.
pub(crate) fn copy_backward_input(per_sample: usize) -> ElementwiseSpec {
    ElementwiseSpec::new(Kernel::CopyBackwardInput, per_sample, 0.0)
}
