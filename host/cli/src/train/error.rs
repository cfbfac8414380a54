//! [`TrainError`], everything [`fit`](super::fit) can fail with, and [`KeptCheckpoint`], the
//! clause every mid-run failure ends with. Each variant's message is the sentence `torchlet
//! train` prints after `error: `; wrapped errors (a model file, the data, TensorBoard, the
//! network) print as they are.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::data::DataError;
use crate::model::ModelError;
use crate::summary::SummaryError;

use super::gpu::CopyBackError;
use super::parallel::ParallelError;
use super::GPU_FAULT;

/// Which checkpoint a run that failed mid-way leaves on disk, for the end of its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptCheckpoint {
    /// `out/last.tlm`, or `None` when no epoch of this run (or of the one it resumed) finished.
    pub last: Option<PathBuf>,
}

impl KeptCheckpoint {
    /// What a run writing to `out` leaves when it fails during `epoch` (from 0).
    pub fn after(out: &std::path::Path, epoch: usize) -> KeptCheckpoint {
        KeptCheckpoint {
            last: (epoch > 0).then(|| out.join("last.tlm")),
        }
    }
}

impl fmt::Display for KeptCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last {
            None => f.write_str("no epoch finished, so no checkpoint was saved"),
            Some(p) => write!(f, "the last good checkpoint is {}", p.display()),
        }
    }
}

/// Why a training run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// `--batch-size 0`.
    #[error("--batch-size must be at least 1")]
    ZeroBatch,
    /// A hyper-parameter the optimizer refuses (`--lr -1`).
    #[error("{flag}: {error}")]
    HyperParameter {
        /// The flag and its value (`--lr -1`).
        flag: String,
        /// The optimizer's check (`lr must be finite and >= 0`).
        error: torchlet::Error,
    },
    /// The training set has no samples.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// The output folder cannot be created.
    #[error("{}: {error}", path.display())]
    OutputDir {
        /// The folder (`--out`).
        path: PathBuf,
        /// What the file system said.
        error: io::Error,
    },
    /// `--resume` names a checkpoint of another architecture.
    #[error("the checkpoint's architecture differs from the model being trained")]
    ArchitectureMismatch,
    /// `--resume` names a checkpoint trained with another optimizer.
    #[error("the checkpoint was trained with another optimizer than --optimizer")]
    OptimizerMismatch,
    /// [`GPU_FAULT`] is set to something other than `lose-at-step:N`.
    #[error("{GPU_FAULT}: expected lose-at-step:N (N a step number), found {0:?}")]
    GpuFaultSyntax(String),
    /// The training loss became NaN or infinite.
    #[error(
        "the training loss is not finite (NaN or infinite) at epoch {epoch} step {step}: \
         stopping; {kept} (try a smaller --lr)"
    )]
    NonFiniteLoss {
        /// The epoch, from 1.
        epoch: usize,
        /// The training step, from 0 over the whole run.
        step: u64,
        /// The checkpoint left on disk.
        kept: KeptCheckpoint,
    },
    /// The training loss stayed far above its first value ([`super::divergence`]).
    #[error(
        "the training loss diverged at epoch {epoch} step {step}: {loss:e}, more than {factor} times the run's \
         first loss ({first}) for {steps} steps in a row; stopping; {kept} (try a smaller --lr)",
        factor = super::divergence::FACTOR,
        steps = super::divergence::STEPS
    )]
    Diverged {
        /// The epoch, from 1.
        epoch: usize,
        /// The training step, from 0 over the whole run.
        step: u64,
        /// The step's loss.
        loss: f32,
        /// The run's first loss.
        first: f32,
        /// The checkpoint left on disk.
        kept: KeptCheckpoint,
    },
    /// A training step on the GPU failed (a lost device, out of memory).
    #[error("training on the GPU failed at epoch {epoch} step {step}: {error}; stopping; {kept}")]
    GpuTrainStep {
        /// The epoch, from 1.
        epoch: usize,
        /// The training step, from 0 over the whole run.
        step: u64,
        /// The GPU's error.
        error: torchlet_gpu::Error,
        /// The checkpoint left on disk.
        kept: KeptCheckpoint,
    },
    /// Testing on the GPU after an epoch failed.
    #[error("testing on the GPU after epoch {epoch} failed: {error}; {kept}")]
    GpuTest {
        /// The epoch, from 1.
        epoch: usize,
        /// The GPU's error.
        error: torchlet_gpu::Error,
        /// The checkpoint left on disk.
        kept: KeptCheckpoint,
    },
    /// Copying the GPU's weights to the CPU after an epoch failed; nothing was saved.
    #[error("after epoch {epoch}: {error}; {kept}")]
    CopyAfterEpoch {
        /// The epoch, from 1.
        epoch: usize,
        /// What failed.
        error: CopyBackError,
        /// The checkpoint left on disk.
        kept: KeptCheckpoint,
    },
    /// Copying the GPU's weights to the CPU on Ctrl-C failed; nothing was saved.
    #[error("Ctrl-C: {error}; {kept}")]
    CopyOnInterrupt {
        /// What failed.
        error: CopyBackError,
        /// The checkpoint left on disk.
        kept: KeptCheckpoint,
    },
    /// Preparing the CPU threads failed (`--threads`, memory, the thread pool).
    #[error(transparent)]
    Parallel(#[from] ParallelError),
    /// The training arena does not fit in memory.
    #[error(transparent)]
    Memory(#[from] crate::mem::OutOfMemory),
    /// Planning the model, or saving a checkpoint.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Loading a batch.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Writing the TensorBoard log.
    #[error(transparent)]
    Summary(#[from] SummaryError),
    /// The network on the CPU (forward, backward, the optimiser step).
    #[error(transparent)]
    Network(#[from] torchlet::Error),
    /// Setting up the network on the GPU.
    #[error(transparent)]
    Gpu(#[from] torchlet_gpu::Error),
    /// Removing an old run's files (`torchlet train --overwrite`), just before the run writes.
    #[error(transparent)]
    Overwrite(Box<dyn std::error::Error + Send + Sync>),
    /// Writing an epoch's line to the output.
    #[error(transparent)]
    Write(#[from] io::Error),
}

impl TrainError {
    /// `self` as the command line reports it: a failed write to the output stays a bare
    /// [`io::Error`], so that `main` can tell a closed pipe (`torchlet train | head`) from a
    /// failure.
    pub fn into_report(self) -> Box<dyn std::error::Error> {
        match self {
            TrainError::Write(e) => Box::new(e),
            e => Box::new(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences users read, as `fit_on` wrote them with `format!` before the errors had
    /// types.
    #[test]
    fn messages_are_the_sentences_users_read() {
        let out = std::path::Path::new("runs/a");
        let last = out.join("last.tlm");
        assert_eq!(
            KeptCheckpoint::after(out, 0).to_string(),
            "no epoch finished, so no checkpoint was saved"
        );
        let kept = KeptCheckpoint::after(out, 2);
        assert_eq!(
            kept.to_string(),
            format!("the last good checkpoint is {}", last.display())
        );
        let nan = TrainError::NonFiniteLoss {
            epoch: 3,
            step: 41,
            kept: kept.clone(),
        };
        assert_eq!(
            nan.to_string(),
            format!(
                "the training loss is not finite (NaN or infinite) at epoch 3 step 41: stopping; \
                 the last good checkpoint is {} (try a smaller --lr)",
                last.display()
            )
        );
        let copy = TrainError::CopyAfterEpoch {
            epoch: 3,
            error: CopyBackError::StateLength { found: 1, expected: 2 },
            kept,
        };
        assert_eq!(
            copy.to_string(),
            format!(
                "after epoch 3: copying the model back from the GPU: 1 BatchNorm statistics, expected 2; \
                 the last good checkpoint is {}",
                last.display()
            )
        );
        let lengths = CopyBackError::Lengths {
            params: 1,
            optimizer_state: 2,
            expected_params: 3,
            expected_optimizer_state: 4,
        };
        assert_eq!(
            lengths.to_string(),
            "copying the model back from the GPU: 1 parameters and 2 optimizer state values, expected 3 and 4"
        );
        assert_eq!(
            TrainError::GpuFaultSyntax("soon".into()).to_string(),
            "TORCHLET_GPU_FAULT: expected lose-at-step:N (N a step number), found \"soon\""
        );
        let dir = TrainError::OutputDir {
            path: out.to_path_buf(),
            error: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(dir.to_string(), format!("{}: denied", out.display()));
    }

    #[test]
    fn a_failed_write_is_reported_as_the_bare_io_error() {
        let e = TrainError::Write(io::Error::new(io::ErrorKind::BrokenPipe, "pipe")).into_report();
        assert_eq!(
            e.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::BrokenPipe)
        );
    }
}
