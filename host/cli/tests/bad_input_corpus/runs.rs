//! Cases of bad runs: second runs, contradicting resumes, divergence, bad flag values, and
//! `emulate` with bad model files.

use super::*;
use crate::cases::*;
use crate::Class::*;

/// Second runs into the same `--out`, and outputs over existing files.
pub(crate) fn second_runs(v: &mut Vec<Case>) {
    // Second runs into the same --out, and outputs over existing files.
    v.push(
        reject(
            "train",
            SecondRun,
            "--epochs 1 --limit 64 --quiet --device cpu --out {C}/run",
            &["--out", "{C}/run"],
        )
        .setup(copy_run),
    );
    v.push(
        accept(
            "train",
            SecondRun,
            "--epochs 1 --limit 64 --quiet --device cpu --out {C}/run --overwrite",
        )
        .setup(|c, f| {
            copy_run(c, f);
            std::fs::copy(c.join("run/epoch-1.tlm"), c.join("run/epoch-5.tlm")).unwrap();
            std::fs::write(c.join("run/notes.txt"), b"my notes").unwrap();
        })
        .writes(&[
            "run/last.tlm",
            "run/best.tlm",
            "run/epoch-1.tlm",
            "run/epoch-5.tlm",
            "run/tensorboard",
        ])
        .check(|c, _| {
            (!c.join("run/epoch-5.tlm").exists())
                .then_some(())
                .ok_or_else(|| "--overwrite left the old run's epoch-5.tlm".to_string())
        }),
    );
    // A run refused after --overwrite removed the old run's files would lose them: every
    // refusal comes first, the setup's (memory, plan) included.
    for (bad, name) in [
        ("--lr -1", "--lr"),
        ("--momentum nan", "--momentum"),
        ("--val-split 2", "--val-split"),
        ("--model nonsense", "'nonsense'"),
        ("--batch-size 1000000000000000", "--batch-size"),
        ("--batch-size 1000000000", "--batch-size"),
    ] {
        v.push(
            reject(
                "train",
                SecondRun,
                &format!("--epochs 1 --limit 64 --quiet --device cpu --out {{C}}/run --overwrite {bad}"),
                &[name],
            )
            .setup(copy_run),
        );
    }
    v.push(
        accept(
            "train",
            SecondRun,
            "--epochs 1 --limit 64 --quiet --device cpu --out {C}/run",
        )
        .setup(|c, f| copy_dir(&f.join("run/tensorboard"), &c.join("run/tensorboard")))
        .writes(&["run"]),
    );
    v.push(
        reject(
            "train",
            SecondRun,
            "--epochs 1 --limit 64 --quiet --device cpu --out {C}/run --logdir {C}/logs",
            &["--logdir"],
        )
        .setup(|c, f| copy_dir(&f.join("run/tensorboard"), &c.join("logs/run"))),
    );
    v.push(
        reject(
            "train",
            SecondRun,
            "--resume {C}/run/last.tlm --out {C}/other --epochs 2 --quiet --device cpu",
            &["--out", "{C}/other"],
        )
        .setup(|c, f| {
            copy_run(c, f);
            copy_dir(&f.join("run"), &c.join("other"));
        }),
    );
    v.push(
        accept("export", SecondRun, "--model digits-cnn --out {C}/m.bin")
            .setup(|c, _| std::fs::write(c.join("m.bin"), b"old").unwrap())
            .writes(&["m.bin"]),
    );
    v.push(reject(
        "export",
        SecondRun,
        "--model digits-cnn --out {C}/missing/m.bin",
        &["{C}/missing"],
    ));
    v.push(
        accept(
            "eval",
            SecondRun,
            "--model {F}/good.tlm --device cpu --confusion-png {C}/c.png",
        )
        .setup(|c, _| std::fs::write(c.join("c.png"), b"old").unwrap())
        .writes(&["c.png"]),
    );
    v.push(reject(
        "eval",
        SecondRun,
        "--model {F}/good.tlm --device cpu --confusion-png {C}/missing/c.png",
        &["{C}/missing"],
    ));
}

/// `--resume` with flags that contradict the run, and consistent resumes.
pub(crate) fn contradicting_resumes(v: &mut Vec<Case>) {
    // --resume with flags that contradict the run (the fixtures' run: digits-cnn, seed 0,
    // no --val-split, --limit 64, sgd momentum 0.9, batch 32, one epoch).
    for (flags, name) in [
        ("--seed 7", "--seed 7"),
        ("--val-split 0.3", "--val-split 0.3"),
        ("--model lenet5", "--model lenet5"),
        ("--momentum 0.5", "--momentum 0.5"),
        ("--optimizer adam", "--optimizer adam"),
        ("--weight-decay 0.01", "--weight-decay 0.01"),
        ("--scheduler cosine", "--scheduler cosine"),
        ("--batch-size 16", "--batch-size 16"),
        ("--limit 32", "--limit 32"),
        ("--nesterov", "--nesterov"),
        ("--augment", "--augment"),
        (
            "--dataset image-folder --data-dir {F}/folder-ok",
            "--dataset image-folder",
        ),
        ("--num-classes 5", "--num-classes"),
        ("--init-from {F}/good.tlm", "--init-from"),
    ] {
        v.push(reject("train", Resume, &format!("{RESUME} {flags}"), &[name]).setup(copy_run));
    }
    v.push(
        reject(
            "train",
            Resume,
            &format!("{RESUME} --seed 7 --momentum 0.5"),
            &["--seed 7", "--momentum 0.5"],
        )
        .setup(copy_run),
    );
    // Consistent resumes.
    v.push(
        accept("train", Resume, RESUME)
            .setup(copy_run)
            .writes(&["run"])
            .check(models_load(&["run/last.tlm", "run/best.tlm", "run/epoch-2.tlm"], true)),
    );
    v.push(
        accept(
            "train",
            Resume,
            &format!("{RESUME} --seed 0 --limit 64 --momentum 0.9 --lr 0.01"),
        )
        .setup(copy_run)
        .writes(&["run"])
        .check(stdout_has("--lr 0.01")),
    );
    for epochs in ["1", "0"] {
        v.push(
            accept(
                "train",
                Resume,
                &format!("--resume {{C}}/run/last.tlm --out {{C}}/run --epochs {epochs} --quiet --device cpu"),
            )
            .setup(copy_run)
            .check(stdout_has("nothing was saved")),
        );
    }
    v.push(
        accept(
            "train",
            Resume,
            "--resume {C}/run/last.tlm --out {C}/other --epochs 2 --quiet --device cpu",
        )
        .setup(copy_run)
        .writes(&["other"]),
    );
    v.push(
        accept(
            "train",
            Resume,
            "--resume {C}/run/epoch-1.tlm --out {C}/run --epochs 2 --quiet --device cpu",
        )
        .setup(copy_run)
        .writes(&["run"]),
    );
}

/// Divergence and non-finite weights.
pub(crate) fn divergence(v: &mut Vec<Case>) {
    // Divergence and non-finite weights.
    for lr in ["1e6", "1e30"] {
        v.push(
            reject(
                "train",
                Divergence,
                &format!(
                    "{} --lr {lr}",
                    train_with("--limit", "320").replace("--epochs 1", "--epochs 3")
                ),
                &["--lr"],
            )
            .writes(&["out"])
            .check(models_load(&["out/last.tlm", "out/best.tlm"], false)),
        );
    }
    for lr in ["inf", "-inf", "nan", "-1", "-1e-9"] {
        v.push(reject("train", Divergence, &format!("{TRAIN} --lr {lr}"), &["--lr"]).writes(&["out"]));
    }
    for bad in ["{F}/nan.tlm", "{F}/inf.tlm"] {
        v.push(reject("inspect", Divergence, bad, &[bad]));
        v.push(reject(
            "eval",
            Divergence,
            &format!("--model {bad} --device cpu"),
            &[bad],
        ));
        v.push(reject(
            "predict",
            Divergence,
            &format!("--model {bad} --device cpu {{F}}/ok.png"),
            &[bad],
        ));
        v.push(reject(
            "export",
            Divergence,
            &format!("--model {bad} --out {{C}}/m.bin"),
            &[bad],
        ));
        v.push(reject(
            "bench",
            Divergence,
            &format!("--model {bad} --device cpu --iters 1 --warmup 0"),
            &[bad],
        ));
        v.push(reject(
            "train",
            Divergence,
            &format!("--init-from {bad} {TRAIN}"),
            &[bad],
        ));
    }
    v.push(reject(
        "train",
        Divergence,
        &format!("--resume {{F}}/nan-checkpoint.tlm {TRAIN}"),
        &["{F}/nan-checkpoint.tlm"],
    ));
}

/// Bad flag values: negative, zero, NaN, not a number, unknown names.
pub(crate) fn bad_flag_values(v: &mut Vec<Case>) {
    // Bad flag values: negative, zero, NaN, not a number, unknown names; each must be named.
    let bad_values: &[(&'static str, &str, &[&str])] = &[
        ("train", "--epochs", &["-1", "x", "1.5"]),
        ("train", "--batch-size", &["0", "-1", "x", "nan"]),
        ("train", "--lr", &["x"]),
        ("train", "--momentum", &["-1", "nan", "x"]),
        ("train", "--weight-decay", &["-1", "nan", "x"]),
        ("train", "--val-split", &["1.5", "0", "1", "-0.1", "nan", "x"]),
        ("train", "--seed", &["-1", "x", "1.5"]),
        ("train", "--workers", &["-1", "x"]),
        ("train", "--threads", &["0", "-1", "x", "100000"]),
        ("train", "--patience", &["-1", "x"]),
        ("train", "--limit", &["0", "-1", "x"]),
        ("train", "--save-every", &["0", "-1", "x"]),
        ("train", "--keep-last", &["0", "-1", "x"]),
        ("train", "--num-classes", &["0", "-1", "x"]),
        ("train", "--dataset", &["nonsense"]),
        ("train", "--optimizer", &["nonsense"]),
        ("train", "--scheduler", &["nonsense"]),
        ("train", "--device", &["nonsense", "gpu0"]),
        ("eval", "--batch-size", &["0", "-1", "x"]),
        ("eval", "--seed", &["-1", "x"]),
        ("eval", "--split", &["nonsense"]),
        ("eval", "--dataset", &["nonsense"]),
        ("eval", "--device", &["nonsense"]),
        ("predict", "--top-k", &["0", "-1", "x"]),
        ("predict", "--device", &["nonsense"]),
        ("inspect", "--batch-size", &["0", "-1", "x", "nan"]),
        ("export", "--region-size", &["0", "-1", "x", "1"]),
        ("export", "--target", &["nonsense"]),
        ("bench", "--batch-size", &["0", "-1", "x"]),
        ("bench", "--iters", &["0", "-1", "x"]),
        ("bench", "--warmup", &["-1", "x"]),
        ("bench", "--threads", &["0", "-1", "x", "100000"]),
        ("bench", "--seed", &["-1", "x"]),
        ("bench", "--device", &["nonsense"]),
        ("emulate", "--count", &["-1", "x"]),
        ("emulate", "--timeout", &["-1", "x"]),
        ("emulate", "--seed", &["-1", "x"]),
        ("emulate", "--dataset", &["nonsense"]),
    ];
    for &(cmd, flag, values) in bad_values {
        for value in values {
            let args = match cmd {
                "train" => train_with(flag, value),
                "inspect" => format!("digits-cnn {flag} {value}"),
                "export" => format!("--model digits-cnn --out {{C}}/m.bin {flag} {value}"),
                "emulate" => format!("--model digits-cnn {flag} {value}"),
                _ => {
                    let base = match cmd {
                        "eval" => "--model {F}/good.tlm",
                        "predict" => "--model {F}/good.tlm {F}/ok.png",
                        _ => "--model digits-cnn --iters 1 --warmup 0",
                    };
                    let device = if flag == "--device" { "" } else { " --device cpu" };
                    format!("{base}{device} {flag} {value}")
                }
            };
            v.push(reject(cmd, BadFlag, &args, &[flag]).writes(&["out"]));
        }
    }
    v.push(reject(
        "train",
        BadFlag,
        &format!("{TRAIN} --dataset cifar10"),
        &["--data-dir"],
    ));
    v.push(reject(
        "eval",
        BadFlag,
        "--model {F}/good.tlm --device cpu --dataset cifar10",
        &["--data-dir"],
    ));
    v.push(reject(
        "train",
        BadFlag,
        &format!("{TRAIN} --skip-bad"),
        &["--skip-bad"],
    ));
    v.push(reject(
        "train",
        BadFlag,
        &format!("{TRAIN} --frobnicate"),
        &["--frobnicate"],
    ));
    v.push(reject(
        "train",
        BadFlag,
        &format!("{TRAIN} --dataset mnist --data-dir {{F}}/folder-ok"),
        &["{F}/folder-ok"],
    ));
    v.push(reject(
        "export",
        BadFlag,
        "--model nonsense --out {C}/m.bin",
        &["--model", "nonsense"],
    ));
    v.push(reject("export", BadFlag, "--model digits-cnn", &["--out"]));
    v.push(reject("inspect", BadFlag, "nonsense", &["nonsense"]));
    v.push(reject("bench", BadFlag, "--model nonsense --device cpu", &["nonsense"]));
    v.push(reject(
        "predict",
        BadFlag,
        "--model {F}/good.tlm --device cpu",
        &["IMAGE"],
    ));
    v.push(reject("emulate", BadFlag, "--dataset digits", &["--model"]));
    v.push(
        accept("train", BadFlag, &train_with("--epochs", "0"))
            .writes(&["out"])
            .check(stdout_has("nothing was saved")),
    );
    v.push(accept("train", BadFlag, &format!("{TRAIN} --lr 0")).writes(&["out"]));
    v.push(accept("eval", BadFlag, "--model {F}/good.tlm --device cpu --split all").check(stdout_has("1797 images")));
}

/// `emulate` with bad model files, where QEMU and the firmware target are installed.
pub(crate) fn emulate_models(v: &mut Vec<Case>) {
    // emulate reads its model before building the firmware and starting QEMU, but checks
    // for both first: those cases only where both are there.
    if emulate_reads_models() {
        for bad in [
            "{F}/fifo.tlm",
            "/dev/zero",
            "{F}/dir.tlm",
            "{F}/empty.tlm",
            "{F}/nan.tlm",
            "{F}/huge-arena.tlm",
        ] {
            v.push(reject("emulate", NonRegular, &format!("--model {bad}"), &[bad]));
        }
        v.push(reject("emulate", BadFlag, "--model digits-cnn --count 0", &["--count"]));
    } else {
        println!("emulate: qemu-system-arm or the firmware's target is missing; its model-file cases are left out");
    }
}
