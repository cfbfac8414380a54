//! [`Backend`]: what [`fit`](super::fit) asks of the hardware that trains, one batch at a time,
//! and its three implementations:
//!
//! - [`SingleThread`]: the CPU network itself, on the calling thread (`--threads 1`);
//! - [`DataParallel`]: each batch split across CPU threads (`--threads N`, see
//!   [`parallel`](super::parallel));
//! - [`GpuTrainer`]: a [`GpuNetwork`] that keeps the parameters and the optimiser state on the
//!   GPU (`--device gpu|auto`, see [`gpu`](super::gpu)).
//!
//! Every backend works on a [`HostState`]: the CPU network whose buffers checkpoints save, the
//! optimiser and its state. The CPU backends train that network in place; the GPU backend
//! leaves it alone until [`Backend::sync_to_host`] copies its weights over. The epoch loop,
//! checkpoints, logging and every message live in [`run`](super::run), once for all three.

use torchlet::loss::CrossEntropyLoss;
use torchlet_gpu::{Device, GpuLoss, GpuNetwork, Target};

use super::gpu::{copy_to_host, cross_entropy_sum, CopyBackError};
use super::optimizer::RunOptimizer;
use super::parallel::{backward_serial, evaluate_serial, predict, DataParallel, HostNetwork};
use super::GPU_FAULT;
use crate::data::loader::Batch;
use crate::model::HostPlan;

/// The loss every backend trains with: `nn.CrossEntropyLoss()`, mean over the batch.
const LOSS: CrossEntropyLoss<'static> = CrossEntropyLoss::new();

/// The CPU side of a run: the network checkpoints and histograms read, the optimiser and its
/// state buffer (`optimizer.state_len(params)` floats).
pub(crate) struct HostState<'n> {
    pub(crate) net: HostNetwork<'n>,
    pub(crate) optimizer: RunOptimizer,
    pub(crate) optimizer_state: Vec<f32>,
}

/// Why a batch failed; [`run`](super::run) turns it into the message for the user.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// The loss is NaN or infinite (no optimiser step was taken on the CPU).
    NonFiniteLoss,
    /// The CPU network's error.
    Cpu(torchlet::Error),
    /// The GPU's error (a lost device, out of memory).
    Gpu(torchlet_gpu::Error),
}

/// A CPU loss as a [`BatchError`]: [`torchlet::Error::NonFinite`] and a NaN or infinite
/// value are both [`BatchError::NonFiniteLoss`].
fn finite(loss: torchlet::Result<f32>) -> Result<f32, BatchError> {
    match loss {
        Ok(l) if l.is_finite() => Ok(l),
        Ok(_) | Err(torchlet::Error::NonFinite { .. }) => Err(BatchError::NonFiniteLoss),
        Err(e) => Err(BatchError::Cpu(e)),
    }
}

/// The end of a CPU training step: checks the `loss` of the backward pass, then takes the
/// optimiser's step on `host` (none for a non-finite loss).
fn optimise(host: &mut HostState<'_>, loss: torchlet::Result<f32>) -> Result<f32, BatchError> {
    let loss = finite(loss)?;
    let HostState {
        net,
        optimizer,
        optimizer_state,
    } = host;
    optimizer
        .optimizer_step(net, optimizer_state)
        .map_err(BatchError::Cpu)?;
    Ok(loss)
}

/// What trains the network, one batch at a time.
pub(crate) trait Backend {
    /// One training step on `batch`: forward, backward and the optimiser's step; returns the
    /// batch's mean loss. `step` counts the run's training steps from 0 (it seeds dropout on
    /// the data-parallel workers). A non-finite loss is [`BatchError::NonFiniteLoss`].
    fn train_batch(&mut self, host: &mut HostState<'_>, batch: &Batch, step: u64) -> Result<f32, BatchError>;

    /// The summed loss on a held-out `batch`, without gradients, in `host.net`'s mode (eval);
    /// appends the class each sample is predicted as (its largest output) to `predicted`.
    fn evaluate_batch(
        &mut self,
        host: &mut HostState<'_>,
        batch: &Batch,
        predicted: &mut Vec<u32>,
    ) -> Result<f64, BatchError>;

    /// Brings the weights, BatchNorm statistics and optimiser state into `host`, before it is
    /// saved or logged. A no-op on the CPU; on failure `host` is unchanged.
    fn sync_to_host(&mut self, host: &mut HostState<'_>) -> Result<(), CopyBackError>;
}

/// The CPU network on the calling thread.
pub(crate) struct SingleThread;

impl Backend for SingleThread {
    fn train_batch(&mut self, host: &mut HostState<'_>, batch: &Batch, _step: u64) -> Result<f32, BatchError> {
        host.net.zero_grad();
        let loss = backward_serial(&mut host.net, &LOSS, &batch.images, &batch.labels);
        optimise(host, loss)
    }

    fn evaluate_batch(
        &mut self,
        host: &mut HostState<'_>,
        batch: &Batch,
        predicted: &mut Vec<u32>,
    ) -> Result<f64, BatchError> {
        evaluate_serial(&mut host.net, &LOSS, &batch.images, &batch.labels, predicted).map_err(BatchError::Cpu)
    }

    fn sync_to_host(&mut self, _host: &mut HostState<'_>) -> Result<(), CopyBackError> {
        Ok(())
    }
}

impl Backend for DataParallel {
    fn train_batch(&mut self, host: &mut HostState<'_>, batch: &Batch, step: u64) -> Result<f32, BatchError> {
        host.net.zero_grad();
        let loss = self.backward(&mut host.net, &LOSS, &batch.images, &batch.labels, step);
        optimise(host, loss)
    }

    fn evaluate_batch(
        &mut self,
        host: &mut HostState<'_>,
        batch: &Batch,
        predicted: &mut Vec<u32>,
    ) -> Result<f64, BatchError> {
        self.evaluate_predicting(&mut host.net, &LOSS, &batch.images, &batch.labels, predicted)
            .map_err(BatchError::Cpu)
    }

    fn sync_to_host(&mut self, _host: &mut HostState<'_>) -> Result<(), CopyBackError> {
        Ok(())
    }
}

/// A [`GpuNetwork`] holding the parameters, BatchNorm statistics and optimiser state.
pub(crate) struct GpuTrainer {
    net: GpuNetwork,
    /// Outputs (classes) per sample.
    outputs: usize,
    /// The step at which [`GPU_FAULT`] loses the device, if set.
    lose_at: Option<u64>,
}

impl GpuTrainer {
    /// Uploads `host`'s weights, BatchNorm statistics and optimiser state to `dev`, for
    /// `plan`; `seed` seeds the GPU's dropout.
    ///
    /// # Errors
    /// A model the GPU cannot run, or a GPU failure.
    pub(crate) fn new(
        dev: &Device,
        plan: &HostPlan,
        host: &HostState<'_>,
        seed: u64,
        lose_at: Option<u64>,
    ) -> Result<GpuTrainer, torchlet_gpu::Error> {
        let mut net = GpuNetwork::new(dev, plan, host.net.params())?;
        net.set_optimizer_state(&host.optimizer_state)?;
        net.set_state(host.net.state())?;
        net.seed_dropout(seed);
        let outputs = plan.output_shape().numel().max(1);
        Ok(GpuTrainer { net, outputs, lose_at })
    }
}

impl Backend for GpuTrainer {
    fn train_batch(&mut self, host: &mut HostState<'_>, batch: &Batch, step: u64) -> Result<f32, BatchError> {
        if self.lose_at == Some(step) {
            let reason = format!("{GPU_FAULT}=lose-at-step:{step}");
            self.net.device().simulate_loss(&reason);
        }
        let target = Target::Classes(&batch.labels);
        match self.net.step(
            &batch.images,
            target,
            &GpuLoss::CrossEntropy(LOSS),
            host.optimizer.as_gpu(),
        ) {
            Ok(stats) => finite(Ok(stats.loss)),
            Err(torchlet_gpu::Error::Core(torchlet::Error::NonFinite { .. })) => Err(BatchError::NonFiniteLoss),
            Err(e) => Err(BatchError::Gpu(e)),
        }
    }

    /// The logits are read back (`[n, classes]` floats, as `torchlet eval` does) for the
    /// predicted classes; the loss is computed from them on the CPU.
    fn evaluate_batch(
        &mut self,
        _host: &mut HostState<'_>,
        batch: &Batch,
        predicted: &mut Vec<u32>,
    ) -> Result<f64, BatchError> {
        let classes = self.outputs;
        if let Some((index, &l)) = batch.labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
            let label = l as usize;
            return Err(BatchError::Cpu(torchlet::Error::LabelOutOfRange {
                index,
                label,
                classes,
            }));
        }
        let logits = self.net.forward(&batch.images).map_err(BatchError::Gpu)?;
        let sum = cross_entropy_sum(&logits, classes, &batch.labels).map_err(|_| {
            BatchError::Gpu(torchlet_gpu::Error::Core(torchlet::Error::BufferLength {
                buffer: torchlet::Buffer::Output,
                expected: classes * batch.labels.len(),
                found: logits.len(),
            }))
        })?;
        predict(&logits, classes, predicted);
        Ok(sum)
    }

    fn sync_to_host(&mut self, host: &mut HostState<'_>) -> Result<(), CopyBackError> {
        copy_to_host(&self.net, &mut host.net, &mut host.optimizer_state)
    }
}
