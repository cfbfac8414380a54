//! Layer kernels: forward and backward of every operation, side by side, one file per family.
//!
//! Conventions, for every kernel here:
//! - tensors are contiguous `f32` slices in NCHW (N first, then channels, then `D, H, W`);
//! - `*_forward` overwrites its output;
//! - `*_backward_*` functions **accumulate** (`+=`) into the gradients they are given, so that a
//!   tensor used twice (a residual branch point) sums its gradients, and parameter gradients
//!   accumulate across calls until `zero_grad` as in PyTorch;
//! - kernels trust their geometry and buffer lengths: the planner and [`crate::Network`]
//!   validate them once; kernels are not an input boundary.
pub mod activation;
pub mod batchnorm;
pub mod bilinear;
pub mod conv;
pub mod conv_transpose;
pub mod dropout;
pub mod family;
pub mod geom;
pub mod io;
pub mod linear;
pub mod merge;
pub mod pad;
pub mod pool;
pub mod reshape;
pub mod shuffle;
pub mod softmax;
pub mod upsample;
