//! The run record: what defines a training run, stored in every model file and checkpoint that
//! `torchlet train` writes (the model format's run record, flags bit 2, as one JSON object;
//! `docs/model-format.md` section 3.8).
//!
//! - `train` writes it: the model, data set and folder, seed, validation split, optimiser and
//!   its hyper-parameters, schedule, epochs, batch size and augmentation of the run.
//! - `train --resume` continues the run it records ([`RunRecord::resume`]): a flag left out
//!   takes the record's value, a flag that contradicts the record is refused, except those that
//!   are safe to change: `--epochs` (train longer or shorter), `--lr` (with a printed note),
//!   `--data-dir` (the data may have moved; noted), `--save-every` and `--keep-last`.
//! - `eval` scores a model on the run's held-out images when it is given the run's data set
//!   ([`RunRecord::same_data`]), and on all of any other data set.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::train::{DatasetKind, TrainArgs};
use crate::train::{OptimizerKind, SchedulerKind};

/// How a training run was configured. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The zoo model's name (`--model`).
    pub model: String,
    /// The data set (`--dataset`).
    pub dataset: DatasetKind,
    /// Its folder, made absolute (`--data-dir`; none for the embedded digits).
    pub data_dir: Option<PathBuf>,
    /// The seed of the initialisation, the shuffles and the split (`--seed`).
    pub seed: u64,
    /// The fraction of the training images held out (`--val-split`; none: the data set's own
    /// test split).
    pub val_split: Option<f32>,
    /// Training images used (`--limit`; none: all).
    pub limit: Option<usize>,
    /// The optimiser (`--optimizer`).
    pub optimizer: OptimizerKind,
    /// The learning rate (`--lr`).
    pub lr: f32,
    /// SGD momentum (`--momentum`).
    pub momentum: f32,
    /// Weight decay (`--weight-decay`).
    pub weight_decay: f32,
    /// Nesterov momentum (`--nesterov`).
    pub nesterov: bool,
    /// The learning-rate schedule (`--scheduler`).
    pub scheduler: SchedulerKind,
    /// Epochs in all (`--epochs`).
    pub epochs: usize,
    /// Samples per batch (`--batch-size`).
    pub batch_size: usize,
    /// Training images augmented (`--augment`).
    pub augment: bool,
    /// Unreadable images of an image folder skipped (`--skip-bad`).
    #[serde(default)]
    pub skip_bad: bool,
    /// `epoch-N.tlm` every this many epochs (`--save-every`).
    #[serde(default = "one")]
    pub save_every: usize,
    /// Only the newest this many `epoch-N.tlm` kept (`--keep-last`; none: all).
    #[serde(default)]
    pub keep_last: Option<usize>,
}

fn one() -> usize {
    1
}

/// Why a run record cannot be read or continued.
#[derive(Debug, thiserror::Error)]
pub enum RunRecordError {
    /// The record is not the JSON object this version writes.
    #[error("{}: its run record is not readable: {error}", path.display())]
    Parse {
        /// The model file.
        path: PathBuf,
        /// What the JSON parser said.
        error: serde_json::Error,
    },
    /// `--resume` with flags that contradict the run it continues.
    #[error(
        "--resume {}: {} the run it continues:\n{}\nLeave {} out (the checkpoint's values are used), \
         or start a new run in another --out folder",
        path.display(),
        if .conflicts.len() == 1 { "this flag contradicts" } else { "these flags contradict" },
        .conflicts.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"),
        if .conflicts.len() == 1 { "it" } else { "them" },
    )]
    Contradicts {
        /// The checkpoint.
        path: PathBuf,
        /// One entry per flag: `--seed 3 (the run used 7)`.
        conflicts: Vec<String>,
    },
}

/// `dir` made absolute and free of `..` and symlinks, when it exists (else as given).
pub fn absolute(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

impl RunRecord {
    /// The record of a new run from `train`'s flags, with the defaults of flags left out.
    pub fn new(args: &TrainArgs) -> RunRecord {
        let dataset = args.dataset.unwrap_or(DatasetKind::Digits);
        let digits = dataset == DatasetKind::Digits;
        let gray = matches!(dataset, DatasetKind::Mnist | DatasetKind::FashionMnist);
        RunRecord {
            model: args
                .model
                .clone()
                .unwrap_or_else(|| if digits || gray { "digits-cnn" } else { "tutorial-cnn" }.to_string()),
            dataset,
            data_dir: args.data_dir.as_deref().map(absolute),
            seed: args.seed.unwrap_or(0),
            val_split: args.val_split,
            limit: args.limit,
            optimizer: args.optimizer.unwrap_or(OptimizerKind::Sgd),
            lr: args.lr.unwrap_or(if digits { 0.05 } else { 0.01 }),
            momentum: args.momentum.unwrap_or(0.9),
            weight_decay: args.weight_decay.unwrap_or(0.0),
            nesterov: args.nesterov,
            scheduler: args.scheduler.unwrap_or(SchedulerKind::None),
            epochs: args.epochs.unwrap_or(if digits { 15 } else { 10 }),
            batch_size: args.batch_size.unwrap_or(if digits { 32 } else { 64 }),
            augment: args.augment,
            skip_bad: args.skip_bad,
            save_every: args.save_every.unwrap_or(1),
            keep_last: args.keep_last,
        }
    }

    /// The record as stored in a model file.
    pub fn to_text(&self) -> String {
        // A record of plain fields always serialises (non-UTF-8 folder names excepted, which
        // serde_json writes lossily rather than failing).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record stored in the model file `path`.
    ///
    /// # Errors
    /// [`RunRecordError::Parse`] for text that is not a run record.
    pub fn parse(text: &str, path: &Path) -> Result<RunRecord, RunRecordError> {
        serde_json::from_str(text).map_err(|error| RunRecordError::Parse {
            path: path.to_path_buf(),
            error,
        })
    }

    /// The run `args` continue from this record (saved in `checkpoint`): flags left out keep
    /// the record's values; `--epochs` and `--lr` replace them (a changed learning rate adds a
    /// line to `notes`), and so does `--data-dir` (noted when it is another folder).
    ///
    /// # Errors
    /// [`RunRecordError::Contradicts`] listing every other flag whose value differs from the
    /// record's.
    pub fn resume(
        &self,
        args: &TrainArgs,
        checkpoint: &Path,
        notes: &mut Vec<String>,
    ) -> Result<RunRecord, RunRecordError> {
        let mut conflicts = Vec::new();
        let mut check = |flag: &str, given: Option<String>, saved: String| {
            if let Some(given) = given {
                if given != saved {
                    conflicts.push(format!("{flag} {given} (the run used {saved})"));
                }
            }
        };
        let opt = |v: Option<f32>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        let optn = |v: Option<usize>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        check("--model", args.model.clone(), self.model.clone());
        check(
            "--dataset",
            args.dataset.map(|d| d.name().into()),
            self.dataset.name().into(),
        );
        check("--seed", args.seed.map(|s| s.to_string()), self.seed.to_string());
        check(
            "--val-split",
            args.val_split.map(|v| v.to_string()),
            opt(self.val_split),
        );
        check("--limit", args.limit.map(|v| v.to_string()), optn(self.limit));
        check(
            "--optimizer",
            args.optimizer.map(|o| o.name().into()),
            self.optimizer.name().into(),
        );
        check(
            "--momentum",
            args.momentum.map(|v| v.to_string()),
            self.momentum.to_string(),
        );
        check(
            "--weight-decay",
            args.weight_decay.map(|v| v.to_string()),
            self.weight_decay.to_string(),
        );
        check(
            "--scheduler",
            args.scheduler.map(|s| s.name().into()),
            self.scheduler.name().into(),
        );
        check(
            "--batch-size",
            args.batch_size.map(|v| v.to_string()),
            self.batch_size.to_string(),
        );
        let flag = |on: bool| on.then(|| "given".to_string());
        let was = |on: bool| if on { "given" } else { "not given" }.to_string();
        check("--nesterov", flag(args.nesterov), was(self.nesterov));
        check("--augment", flag(args.augment), was(self.augment));
        check("--skip-bad", flag(args.skip_bad), was(self.skip_bad));
        if !conflicts.is_empty() {
            return Err(RunRecordError::Contradicts {
                path: checkpoint.to_path_buf(),
                conflicts,
            });
        }
        let mut run = self.clone();
        if let Some(epochs) = args.epochs {
            run.epochs = epochs;
        }
        if let Some(n) = args.save_every {
            run.save_every = n;
        }
        if args.keep_last.is_some() {
            run.keep_last = args.keep_last;
        }
        if let Some(lr) = args.lr.filter(|&lr| lr != self.lr) {
            notes.push(format!(
                "--lr {lr}: the run continues at this learning rate (it was trained at {}{})",
                self.lr,
                if self.scheduler == SchedulerKind::None {
                    String::new()
                } else {
                    format!(", the {} schedule now starts from {lr}", self.scheduler.name())
                }
            ));
            run.lr = lr;
        }
        if let Some(dir) = &args.data_dir {
            let dir = absolute(dir);
            if self.data_dir.as_ref() != Some(&dir) {
                notes.push(format!(
                    "--data-dir {}: the run was trained on {}; continuing with the new folder",
                    dir.display(),
                    self.data_dir
                        .as_ref()
                        .map_or_else(|| "the embedded digits".to_string(), |d| d.display().to_string())
                ));
            }
            run.data_dir = Some(dir);
        }
        Ok(run)
    }

    /// Whether `dataset` in `data_dir` is the data this run was trained on (the same kind,
    /// and the same folder once made absolute).
    pub fn same_data(&self, dataset: DatasetKind, data_dir: Option<&Path>) -> bool {
        dataset == self.dataset && data_dir.map(absolute) == self.data_dir
    }

    /// How the run held images out, for messages: `seed 7, --val-split 0.3` or `the data
    /// set's test split`.
    pub fn held_out(&self) -> String {
        match self.val_split {
            Some(f) => format!("--val-split {f} with --seed {}", self.seed),
            None if self.dataset == DatasetKind::Digits => format!("360 images held out with --seed {}", self.seed),
            None => "the data set's test split".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &str) -> TrainArgs {
        let cli = crate::cli::Cli::try_parse_from(format!("torchlet train {line}").split_whitespace()).unwrap();
        match cli.command {
            crate::cli::Command::Train(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn records_round_trip_and_fill_defaults() {
        let r = RunRecord::new(&args("--seed 7 --val-split 0.3 --optimizer adamw"));
        assert_eq!((r.seed, r.val_split, r.optimizer), (7, Some(0.3), OptimizerKind::AdamW));
        assert_eq!(
            (r.model.as_str(), r.epochs, r.batch_size, r.lr),
            ("digits-cnn", 15, 32, 0.05)
        );
        assert_eq!(RunRecord::parse(&r.to_text(), Path::new("m.tlm")).unwrap(), r);
        assert!(r.to_text().contains("\"optimizer\":\"adamw\""), "{}", r.to_text());
    }

    #[test]
    fn resume_keeps_the_record_and_refuses_contradictions() {
        let saved = RunRecord::new(&args("--seed 7 --momentum 0.5"));
        let mut notes = Vec::new();
        let run = saved
            .resume(&args("--epochs 30"), Path::new("c.tlm"), &mut notes)
            .unwrap();
        assert_eq!((run.seed, run.momentum, run.epochs), (7, 0.5, 30));
        assert!(notes.is_empty());
        // The same values given again are no contradiction.
        saved
            .resume(&args("--seed 7 --momentum 0.5"), Path::new("c.tlm"), &mut notes)
            .unwrap();
        let e = saved
            .resume(
                &args("--seed 3 --model lenet5 --nesterov"),
                Path::new("c.tlm"),
                &mut notes,
            )
            .unwrap_err();
        let details = e.to_string();
        assert!(details.contains("these flags contradict"), "{e}");
        for want in [
            "--seed 3 (the run used 7)",
            "--model lenet5 (the run used digits-cnn)",
            "--nesterov given",
        ] {
            assert!(details.contains(want), "{details}");
        }
        let run = saved
            .resume(&args("--lr 0.01"), Path::new("c.tlm"), &mut notes)
            .unwrap();
        assert_eq!(run.lr, 0.01);
        assert!(notes[0].contains("--lr 0.01"), "{notes:?}");
    }
}
