//! # torchlet-gpu: torchlet's layers as wgpu compute shaders
//!
//! Trains a torchlet model on any GPU wgpu reaches (Vulkan, Metal, DX12, OpenGL), driven by the
//! same [`torchlet::Plan`] the CPU runs, so the parameters keep the core's layout and a model
//! trained here is the same `.tlm` file, loads on the CPU and flashes to a board unchanged.
//!
//! ## The layers of the crate
//!
//! - [`device`]: choosing an adapter (`--device cpu|gpu|auto` as [`Selection`]), opening a
//!   [`Device`] with every shader compiled, and turning wgpu's validation, out-of-memory and
//!   device-lost callbacks into [`Error`]s instead of panics.
//! - [`kernels`]: one sibling `.wgsl` file per operation under `src/shaders/`, named after the
//!   core function it mirrors, loaded with `include_str!`.
//! - [`ops`]: one dispatch per kernel, and host-slice wrappers with the core kernels'
//!   signatures (`ops::conv_forward(&dev, &geom, x, w, b, y)`) that the tests compare with the
//!   CPU one op at a time.
//! - [`network`]: [`GpuNetwork`], a training plan on the GPU. Parameters, gradients and the
//!   optimiser state stay there; each step uploads the batch, runs zero-grad, forward, loss,
//!   backward and the update in one submission, and reads back 8 bytes (loss, correct). Any
//!   loss of the core ([`GpuLoss`], against a [`Target`]) and SGD or Adam ([`GpuOptimizer`]).
//!
//! ## Example
//!
//! ```no_run
//! use torchlet::{layer::*, loss::CrossEntropyLoss, optim::Sgd, Mode, Network, Plan, Shape};
//! use torchlet_gpu::{Device, GpuNetwork, Preference};
//!
//! static LAYERS: [Layer; 5] = [conv2d(1, 4, 3).padding(1), relu(), max_pool2d(2), flatten(), linear(64, 10)];
//! let plan: Plan<5> = Plan::try_new(&LAYERS, Shape::chw(1, 8, 8), 16, Mode::Training)?;
//!
//! // PyTorch's initialisation on the CPU, then everything on the GPU.
//! let mut params = vec![0.0; plan.param_len()];
//! let (mut grads, mut state, mut arena) = (vec![0.0; plan.param_len()], vec![], vec![0.0; plan.arena_len()]);
//! Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena)?.init_params(0)?;
//!
//! let dev = Device::new(Preference::Any)?;
//! println!("training on {}", dev.adapter());
//! let mut net = GpuNetwork::new(&dev, &plan, &params)?;
//! let mut sgd = Sgd::new(0.05).momentum(0.9);
//! let (images, labels) = (vec![0.5f32; 16 * 64], vec![3u32; 16]);
//! let stats = net.train_step(&images, &labels, &CrossEntropyLoss::new(), &mut sgd)?;
//! println!("loss {:.4}, {} of {} correct", stats.loss, stats.correct, stats.n);
//! let trained = net.params()?; // the core's layout: save it as a .tlm file
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What runs on the GPU
//!
//! Every layer, loss and optimiser of the core, forward and backward: Conv1d/2d/3d (any
//! stride, dilation, groups and `padding_mode`), ConvTranspose1d/2d/3d, max, average and
//! adaptive pools, MaxUnpool1d/2d/3d, the pad layers, ReLU, LeakyReLU, Sigmoid, Tanh, ELU, GELU,
//! SiLU, Hardswish, Hardsigmoid, Softplus, Mish, ReLU6, PReLU, Softmax, LogSoftmax,
//! BatchNorm1d/2d/3d (train and eval, running statistics), Dropout, Dropout1d/2d/3d, Linear,
//! Bilinear, ChannelShuffle, Upsample (nearest, bilinear), Flatten/Identity, residual sums and
//! channel concatenation; CrossEntropyLoss and NLLLoss
//! (class weights, `ignore_index`, label smoothing, any reduction), MSELoss, L1Loss, BCELoss,
//! BCEWithLogitsLoss (`pos_weight`); SGD (momentum, dampening, Nesterov, weight decay) and Adam
//! (AdamW, AMSGrad). [`Error::Unsupported`] stays for a layer a later core adds before this
//! crate has its kernel. [`profile`] times each shader of a training step.
//!
//! ## Guarantees and limits
//!
//! - Every shader is tested against the core's CPU kernel on random valid geometries, and three
//!   SGD steps of the tutorial network against [`torchlet::Network`] (tolerance 1e-4 relative),
//!   on Mesa's lavapipe (a Vulkan driver on the CPU) in CI.
//! - Sums run in a different order than on the CPU, so results agree to rounding, not bit for
//!   bit. WGSL does not promise NaN propagation: a NaN input is refused before upload instead.
//! - The convolutions are tiled implicit GEMMs (64×64 tiles in workgroup memory); the other
//!   kernels are direct loops, one invocation per output element. Nothing is fused yet.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod device;
pub mod error;
pub mod kernels;
pub mod network;
pub mod ops;
pub mod profile;

pub use device::{AdapterSummary, Device, Preference, Resolved, Selection};
pub use error::{Error, Result, WgpuErrorKind};
pub use network::{GpuNetwork, StepStats};
pub use ops::{GpuLoss, GpuOptimizer, Target};
