//! Learning-rate schedules in closed form: `torch.optim.lr_scheduler.StepLR` and
//! `CosineAnnealingLR`.
//!
//! A schedule maps the optimiser's initial learning rate and an epoch number to that epoch's
//! learning rate, equal to what PyTorch's scheduler gives after `epoch` calls of
//! `scheduler.step()`. Being stateless, a schedule needs nothing in a checkpoint but the epoch.
//!
//! ```
//! use torchlet::optim::{LrScheduler, Optimizer, Sgd, StepLr};
//! let mut sgd = Sgd::new(0.1);
//! let schedule = StepLr::new(30);
//! for epoch in 0..90 {
//!     sgd.set_lr(schedule.lr_at(0.1, epoch));
//!     // ... one epoch of sgd.step(...)
//! }
//! assert!((sgd.lr() - 0.001).abs() < 1e-9);
//! ```
//!
//! Values are computed in `f64` (once per epoch) and rounded to `f32`.

/// A learning rate as a function of the epoch.
pub trait LrScheduler {
    /// The learning rate of epoch `epoch` (0 is the first, which gives `base_lr`).
    fn lr_at(&self, base_lr: f32, epoch: usize) -> f32;
}

/// `StepLR(optimizer, step_size, gamma=0.1)`: `lr = base_lr * gamma^(epoch / step_size)`
/// (<https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.StepLR.html>).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepLr {
    /// Epochs between decays. PyTorch rejects 0; here 0 never decays.
    pub step_size: usize,
    /// Multiplicative factor of each decay (default 0.1).
    pub gamma: f32,
}

impl StepLr {
    /// Decays by `gamma = 0.1` every `step_size` epochs.
    pub const fn new(step_size: usize) -> Self {
        StepLr { step_size, gamma: 0.1 }
    }

    /// Sets `gamma`.
    pub const fn gamma(mut self, gamma: f32) -> Self {
        self.gamma = gamma;
        self
    }
}

impl LrScheduler for StepLr {
    fn lr_at(&self, base_lr: f32, epoch: usize) -> f32 {
        let decays = epoch.checked_div(self.step_size).unwrap_or(0);
        (base_lr as f64 * libm::pow(self.gamma as f64, decays as f64)) as f32
    }
}

/// `CosineAnnealingLR(optimizer, T_max, eta_min=0)` in closed form:
/// `lr = eta_min + (base_lr - eta_min) (1 + cos(π epoch / T_max)) / 2`
/// (<https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.CosineAnnealingLR.html>).
///
/// Past `T_max` the learning rate rises again with period `2 T_max`, as PyTorch's does.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CosineAnnealingLr {
    /// Epochs from `base_lr` down to `eta_min`. PyTorch rejects 0; here 0 gives `base_lr`.
    pub t_max: usize,
    /// The minimum learning rate (default 0).
    pub eta_min: f32,
}

impl CosineAnnealingLr {
    /// Anneals to 0 over `t_max` epochs.
    pub const fn new(t_max: usize) -> Self {
        CosineAnnealingLr { t_max, eta_min: 0.0 }
    }

    /// Sets `eta_min`.
    pub const fn eta_min(mut self, eta_min: f32) -> Self {
        self.eta_min = eta_min;
        self
    }
}

impl LrScheduler for CosineAnnealingLr {
    fn lr_at(&self, base_lr: f32, epoch: usize) -> f32 {
        if self.t_max == 0 {
            return base_lr;
        }
        let eta_min = self.eta_min as f64;
        let phase = core::f64::consts::PI * epoch as f64 / self.t_max as f64;
        (eta_min + (base_lr as f64 - eta_min) * (1.0 + libm::cos(phase)) / 2.0) as f32
    }
}
