//! # torchlet-host: the desktop side of torchlet
//!
//! Datasets and the command line around the `no_std` core. For now it holds the embedded
//! digits set, the default data of the README's first command; data loaders, transforms,
//! TensorBoard logs and the full `torchlet` CLI arrive with their issues.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digits;
