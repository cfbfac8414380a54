//! Compute kernels shared by the layers: the matrix multiply that convolution and `Linear` use.
pub mod gemm;
