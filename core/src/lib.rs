//! # torchlet: train and run PyTorch-style networks with no heap
//!
//! (crate documentation is completed together with the planner; see `docs/`.)
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod math;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod shape;

pub use error::{Buffer, Error, Result};
pub use rng::Rng;
pub use shape::Shape;
