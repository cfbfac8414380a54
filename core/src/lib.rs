//! # torchlet: PyTorch's layers, losses and optimisers with no heap
//!
//! `torchlet` trains and runs the networks of PyTorch's beginner course (the CIFAR-10 CNN,
//! VGG- and ResNet-style blocks) with PyTorch's semantics, forward **and** backward, in
//! `#![no_std]` without `alloc`: every byte it uses is memory the caller owns, and how much is
//! known when the program compiles. The same code runs on a desktop and on a Cortex-M0+.
//!
//! ## The layers of the crate
//!
//! - [`layer`]: what a model is made of, as `const` values with PyTorch's names and defaults
//!   (`conv2d(3, 32, 5).padding(2)`), including nesting, residual adds and concatenation.
//! - [`plan`]: a `const fn` planner that computes every shape, the parameter layout and one
//!   activation arena with buffers shared when their lifetimes do not overlap. A wrong model
//!   in a `const` plan is a compile error; a model chosen at run time gets an [`Error`].
//! - [`Network`]: a plan bound to caller-owned buffers; forward, backward, `train()`/`eval()`.
//!   It checks buffer lengths once in [`Network::new`] and never panics afterwards.
//! - [`ops`]: the kernels, forward and backward side by side, one file per layer family;
//!   [`kernels`]: the cache-blocked matrix multiply they share.
//! - [`zoo`]: the model zoo's architectures as `const` layer lists (the course's CIFAR-10 CNN,
//!   LeNet-5, VGG, ResNet), shared by the host, the GPU tests and the firmware.
//! - [`quant`]: int8 inference after training, TFLite's integer scheme bit for bit as
//!   CMSIS-NN (requantisation, per-channel weights) and its kernels (conv, linear, pooling,
//!   residual add, concatenation), for microcontrollers without a floating-point unit.
//! - [`loss`] and [`optim`]: PyTorch's losses (with reductions) and optimisers (SGD with
//!   momentum and Nesterov, Adam, AdamW), with optimiser state in caller-owned buffers, and
//!   the StepLR and cosine schedules.
//!
//! ## Example: the course's CIFAR-10 network, one training step
//!
//! ```
//! use torchlet::{layer::*, loss::CrossEntropyLoss, optim::{Optimizer, Sgd}, Network, Plan, Shape};
//!
//! /// The course's CIFAR-10 network: 145,578 parameters.
//! const LAYERS: [Layer; 9] = [
//!     conv2d(3, 32, 5).padding(2), max_pool2d(2),
//!     conv2d(32, 32, 5).padding(2), max_pool2d(2),
//!     conv2d(32, 64, 5).padding(2), max_pool2d(2),
//!     flatten(), linear(1024, 64), linear(64, 10),
//! ];
//! const BATCH: usize = 8;
//! /// Shapes, parameter offsets and the arena, computed by the compiler.
//! const PLAN: Plan<9> = Plan::training(&LAYERS, Shape::chw(3, 32, 32), BATCH);
//! assert_eq!(PLAN.param_len(), 145_578);
//!
//! // On a microcontroller these are `static` arrays of `PLAN.param_len()` (etc.) floats.
//! let mut params = vec![0.0; PLAN.param_len()];
//! let mut grads = vec![0.0; PLAN.param_len()];
//! let mut state = vec![0.0; PLAN.state_len()];
//! let mut arena = vec![0.0; PLAN.arena_len()];
//! let mut net = Network::new(&PLAN, &mut params, &mut grads, &mut state, &mut arena)?;
//! net.init_params(0)?;
//!
//! let mut sgd = Sgd::new(0.01).momentum(0.9);
//! let mut momentum = vec![0.0; sgd.state_len(PLAN.param_len())];
//! let images = vec![0.5; BATCH * 3 * 32 * 32]; // [N, C, H, W]
//! let labels = [3u32, 1, 4, 1, 5, 9, 2, 6];
//!
//! net.zero_grad();
//! let logits = net.forward(&images)?; // [8, 10]
//! assert_eq!(logits.len(), BATCH * 10);
//! let loss = net.backward(&CrossEntropyLoss::new(), &labels)?;
//! net.step(&mut sgd, &mut momentum)?;
//! assert!(loss.is_finite());
//! # Ok::<(), torchlet::Error>(())
//! ```
//!
//! ## Guarantees
//!
//! - No heap, no `unsafe`, no panics after construction: bad lengths, shapes and labels are
//!   [`Error`]s that say what was expected and what was found.
//! - PyTorch's semantics and default initialisation (Kaiming-uniform), checked against PyTorch
//!   by the `torchlet-tests` crate; random numbers come from a seeded [`Rng`].
//! - Features: `micromath` (fast approximate `exp`/`ln`/`tanh`/`sqrt` for MCUs, see [`math`]),
//!   `defmt` (`defmt::Format` on public types).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// `?` for `const fn` (the planner's steps are `const fn`s, where `?` is not allowed yet).
macro_rules! ctry {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(e),
        }
    };
}

pub mod error;
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod math;
pub mod model_file;
pub mod network;
pub mod ops;
pub mod optim;
pub mod plan;
pub mod quant;
pub mod rng;
pub mod shape;
pub mod zoo;

pub use error::{Buffer, Error, Result};
pub use network::{NamedTensor, Network};
pub use plan::{Mode, Plan};
pub use rng::Rng;
pub use shape::Shape;
