//! Cases of bad inputs: non-regular files, symbolic links, absurd sizes, corrupt model files,
//! damaged data sets.

use super::*;
use crate::cases::*;
use crate::Class::*;

/// Non-regular files wherever a file is read or written.
pub(crate) fn non_regular_files(v: &mut Vec<Case>) {
    // Non-regular files wherever a file is read.
    for bad in NON_REGULAR {
        v.push(reject("inspect", NonRegular, bad, &[bad]));
        v.push(reject(
            "eval",
            NonRegular,
            &format!("--model {bad} --device cpu"),
            &[bad],
        ));
        v.push(reject(
            "predict",
            NonRegular,
            &format!("--model {bad} {{F}}/ok.png"),
            &[bad],
        ));
        v.push(reject(
            "export",
            NonRegular,
            &format!("--model {bad} --out {{C}}/m.bin"),
            &[bad],
        ));
        v.push(reject(
            "bench",
            NonRegular,
            &format!("--model {bad} --device cpu --iters 1 --warmup 0"),
            &[bad],
        ));
        v.push(reject("train", NonRegular, &format!("--resume {bad} {TRAIN}"), &[bad]));
        v.push(reject(
            "train",
            NonRegular,
            &format!("--init-from {bad} {TRAIN}"),
            &[bad],
        ));
    }
    for bad in [
        "{F}/fifo.png",
        "{F}/socket.tlm",
        "/dev/null",
        "/dev/zero",
        "{F}/dir.png",
    ] {
        v.push(reject(
            "predict",
            NonRegular,
            &format!("--model {{F}}/good.tlm --device cpu {bad}"),
            &[bad],
        ));
    }
    for bad in ["{F}/fifo.tlm", "/dev/null", "{F}/file.txt", "{F}/socket.tlm"] {
        v.push(reject(
            "train",
            NonRegular,
            &format!("--dataset image-folder --data-dir {bad} {TRAIN}"),
            &[bad],
        ));
    }
    for bad in ["{F}/fifo.tlm", "{F}/file.txt"] {
        v.push(reject(
            "eval",
            NonRegular,
            &format!("--model {{F}}/imgrun/best.tlm --dataset image-folder --data-dir {bad} --device cpu"),
            &[bad],
        ));
    }
    // ... and wherever a file is written.
    for bad in [
        "{F}/fifo.tlm",
        "{F}/socket.tlm",
        "/dev/null",
        "{F}/dir.tlm",
        "{F}/link-to-fifo.tlm",
    ] {
        v.push(reject(
            "export",
            NonRegular,
            &format!("--model digits-cnn --out {bad}"),
            &[bad],
        ));
    }
    for bad in ["{F}/fifo.png", "{F}/dir.png", "/dev/null", "{F}/link-to-fifo.tlm"] {
        v.push(reject(
            "eval",
            NonRegular,
            &format!("--model {{F}}/good.tlm --device cpu --confusion-png {bad}"),
            &[bad],
        ));
    }
    for bad in ["{F}/file.txt", "{F}/fifo.tlm", "/dev/null"] {
        v.push(reject(
            "train",
            NonRegular,
            &format!("--epochs 1 --limit 64 --quiet --device cpu --out {bad}"),
            &[bad],
        ));
    }
    v.push(reject(
        "train",
        NonRegular,
        &format!("{TRAIN} --logdir {{F}}/file.txt"),
        &["{F}/file.txt"],
    ));
    // A folder named like a run file in --out: refused, and --overwrite must not delete it.
    let dir_as_last = |c: &Path, _: &Path| {
        std::fs::create_dir_all(c.join("out/last.tlm")).unwrap();
        std::fs::write(c.join("out/last.tlm/keep.txt"), b"mine").unwrap();
    };
    v.push(reject("train", NonRegular, TRAIN, &["--out", "{C}/out"]).setup(dir_as_last));
    v.push(
        reject(
            "train",
            NonRegular,
            &format!("{TRAIN} --overwrite"),
            &["{C}/out/last.tlm"],
        )
        .setup(dir_as_last)
        .writes(&["out/tensorboard"]),
    );
    v.push(
        reject(
            "train",
            NonRegular,
            &format!("{TRAIN} --overwrite"),
            &["{C}/out/best.tlm"],
        )
        .setup(|c, _| {
            std::fs::create_dir(c.join("out")).unwrap();
            std::fs::write(c.join("out/last.tlm"), b"an old run's file").unwrap();
            mkfifo(&c.join("out/best.tlm"));
        })
        .writes(&["out/tensorboard", "out/last.tlm"]),
    );
}

/// Symbolic links: loops, links to non-regular files, links out of an image folder.
pub(crate) fn symbolic_links(v: &mut Vec<Case>) {
    // Symbolic links: loops, links to non-regular files, links out of an image folder.
    v.push(reject("inspect", Symlink, "{F}/loop.tlm", &["{F}/loop.tlm"]));
    v.push(reject(
        "eval",
        Symlink,
        "--model {F}/loop.tlm --device cpu",
        &["{F}/loop.tlm"],
    ));
    v.push(reject(
        "predict",
        Symlink,
        "--model {F}/good.tlm --device cpu {F}/link-to-fifo.tlm",
        &["{F}/link-to-fifo.tlm"],
    ));
    v.push(reject(
        "predict",
        Symlink,
        "--model {F}/good.tlm --device cpu {F}/loopdir",
        &["{F}/loopdir"],
    ));
    v.push(reject(
        "export",
        Symlink,
        "--model digits-cnn --out {F}/dangling.bin",
        &["{F}/dangling.bin"],
    ));
    v.push(reject(
        "train",
        Symlink,
        &format!("--dataset image-folder --data-dir {{F}}/loopdir {TRAIN}"),
        &["{F}/loopdir"],
    ));
    v.push(
        accept("export", Symlink, "--model digits-cnn --out {C}/link.bin")
            .setup(|c, _| {
                std::fs::write(c.join("real.bin"), b"old").unwrap();
                symlink("real.bin", c.join("link.bin")).unwrap();
            })
            .writes(&["real.bin"])
            .check(|c, _| {
                let link = std::fs::symlink_metadata(c.join("link.bin")).map_err(|e| e.to_string())?;
                let real = std::fs::read(c.join("real.bin")).map_err(|e| e.to_string())?;
                (link.file_type().is_symlink() && real != b"old")
                    .then_some(())
                    .ok_or_else(|| "the link was not written through".to_string())
            }),
    );
    for (folder, link) in [
        ("folder-cycle", "loop"),
        ("folder-escape", "outside.png"),
        ("folder-devnull", "null.png"),
    ] {
        v.push(
            accept(
                "train",
                Symlink,
                &format!(
                    "--dataset image-folder --data-dir {{F}}/{folder} --model digits-cnn --val-split 0.25 {TRAIN}"
                ),
            )
            .writes(&["out"])
            .check(stdout_has("6 training images, 2 held out"))
            .check(move |_, o| {
                o.stderr
                    .contains(link)
                    .then_some(())
                    .ok_or_else(|| format!("stderr does not list the link {link}"))
            }),
        );
        v.push(
            accept(
                "eval",
                Symlink,
                &format!("--model {{F}}/imgrun/best.tlm --dataset image-folder --data-dir {{F}}/{folder} --device cpu"),
            )
            .check(stdout_has("8 images")),
        );
        v.push(
            accept(
                "predict",
                Symlink,
                &format!("--model {{F}}/imgrun/best.tlm --device cpu --json {{F}}/{folder}"),
            )
            .check(stdout_lines(8)),
        );
    }
    for folder in ["folder-dangling", "folder-selfloop"] {
        v.push(reject(
            "train",
            Symlink,
            &format!("--dataset image-folder --data-dir {{F}}/{folder} --model digits-cnn {TRAIN}"),
            &["{F}/", folder],
        ));
    }
}

/// Absurd sizes: flags, and model files whose plan needs terabytes.
pub(crate) fn absurd_sizes(v: &mut Vec<Case>) {
    // Absurd sizes: flags, and model files whose plan needs terabytes.
    for (flag, value) in [
        ("--num-classes", "1000000000"),
        ("--num-classes", "18446744073709551615"),
        ("--batch-size", "1000000000000000"),
        ("--batch-size", "1000000000"),
        ("--batch-size", "18446744073709551615"),
    ] {
        v.push(reject("train", AbsurdSize, &train_with(flag, value), &[flag]).writes(&["out"]));
    }
    v.push(reject(
        "train",
        AbsurdSize,
        &format!("{TRAIN} --batch-size 1000000000000000 --threads 1"),
        &["--batch-size|batch size 1000000000000000"],
    ));
    for value in ["1000000000000000", "1000000000"] {
        v.push(reject(
            "eval",
            AbsurdSize,
            &format!("--model {{F}}/good.tlm --device cpu --batch-size {value}"),
            &[&format!("--batch-size|batch size {value}")],
        ));
        v.push(reject(
            "bench",
            AbsurdSize,
            &format!("--model digits-cnn --device cpu --iters 1 --warmup 0 --batch-size {value}"),
            &["--batch-size"],
        ));
    }
    v.push(reject(
        "inspect",
        AbsurdSize,
        "digits-cnn --batch-size 1000000000000000",
        &["--batch-size|batch size 1000000000000000"],
    ));
    v.push(reject(
        "inspect",
        AbsurdSize,
        "{F}/good.tlm --batch-size 18446744073709551615",
        &["--batch-size|batch size 18446744073709551615"],
    ));
    for bad in ABSURD_MODELS {
        v.push(reject("inspect", AbsurdSize, bad, &[bad]));
        v.push(reject(
            "eval",
            AbsurdSize,
            &format!("--model {bad} --device cpu"),
            &[bad],
        ));
        v.push(reject(
            "predict",
            AbsurdSize,
            &format!("--model {bad} {{F}}/ok.png"),
            &[bad],
        ));
        v.push(reject(
            "export",
            AbsurdSize,
            &format!("--model {bad} --out {{C}}/m.bin"),
            &[bad],
        ));
        v.push(reject(
            "bench",
            AbsurdSize,
            &format!("--model {bad} --device cpu --iters 1 --warmup 0"),
            &[bad],
        ));
        v.push(reject(
            "train",
            AbsurdSize,
            &format!("--init-from {bad} {TRAIN}"),
            &[bad],
        ));
    }
    v.push(reject(
        "predict",
        AbsurdSize,
        "--model {F}/good.tlm --device cpu {F}/huge.png",
        &["{F}/huge.png"],
    ));
    // Large but harmless: accepted.
    for (flag, value) in [
        ("--limit", "1000000000000"),
        ("--save-every", "1000000000000"),
        ("--keep-last", "1000000000000"),
        ("--patience", "1000000000000"),
        ("--workers", "1000000000000"),
        ("--threads", "256"),
    ] {
        v.push(accept("train", AbsurdSize, &train_with(flag, value)).writes(&["out"]));
    }
    v.push(
        accept(
            "predict",
            AbsurdSize,
            "--model {F}/good.tlm --device cpu --top-k 18446744073709551615 {F}/ok.png",
        )
        .check(stdout_has("ok.png")),
    );
    v.push(
        accept(
            "export",
            AbsurdSize,
            "--model digits-cnn --out {C}/m.bin --region-size 18446744073709551615",
        )
        .writes(&["m.bin"]),
    );
    v.push(
        accept(
            "eval",
            AbsurdSize,
            "--model {F}/good.tlm --device cpu --seed 18446744073709551615",
        )
        .check(stdout_has("is not the run's seed")),
    );
}

/// Corrupt model files.
pub(crate) fn corrupt_models(v: &mut Vec<Case>) {
    // Corrupt model files.
    for bad in CORRUPT {
        v.push(reject("inspect", CorruptModel, bad, &[bad]));
        v.push(reject(
            "eval",
            CorruptModel,
            &format!("--model {bad} --device cpu"),
            &[bad],
        ));
    }
    for bad in SOME_CORRUPT.iter().chain(&["{F}/state-dict.tlm"]) {
        v.push(reject(
            "predict",
            CorruptModel,
            &format!("--model {bad} {{F}}/ok.png"),
            &[bad],
        ));
        v.push(reject(
            "export",
            CorruptModel,
            &format!("--model {bad} --out {{C}}/m.bin"),
            &[bad],
        ));
        v.push(reject(
            "bench",
            CorruptModel,
            &format!("--model {bad} --device cpu --iters 1 --warmup 0"),
            &[bad],
        ));
        v.push(reject(
            "train",
            CorruptModel,
            &format!("--resume {bad} {TRAIN}"),
            &[bad],
        ));
    }
    v.push(reject(
        "eval",
        CorruptModel,
        "--model {F}/state-dict.tlm --device cpu",
        &["{F}/state-dict.tlm"],
    ));
    v.push(accept("inspect", CorruptModel, "{F}/state-dict.tlm").check(stdout_has("state dict")));
    for bad in [
        "{F}/empty.tlm",
        "{F}/garbage.tlm",
        "{F}/png.tlm",
        "{F}/flipped-data.tlm",
    ] {
        v.push(reject(
            "train",
            CorruptModel,
            &format!("--init-from {bad} {TRAIN}"),
            &[bad],
        ));
    }
    v.push(
        accept(
            "train",
            CorruptModel,
            &format!("--init-from {{F}}/state-dict.tlm {TRAIN}"),
        )
        .writes(&["out"])
        .check(stdout_has("--init-from")),
    );
    // best.tlm is a checkpoint too; its run had its one epoch.
    v.push(
        accept("train", CorruptModel, &format!("--resume {{F}}/good.tlm {TRAIN}"))
            .check(stdout_has("nothing was saved")),
    );
    for bad in ["{F}/plain.tlm", "{F}/bad-record-checkpoint.tlm"] {
        v.push(reject(
            "train",
            CorruptModel,
            &format!("--resume {bad} {TRAIN}"),
            &[bad],
        ));
    }
    v.push(reject(
        "eval",
        CorruptModel,
        "--model {F}/bad-run-record.tlm --device cpu",
        &["{F}/bad-run-record.tlm"],
    ));
    v.push(reject(
        "eval",
        CorruptModel,
        "--model {F}/missing.tlm --device cpu",
        &["{F}/missing.tlm"],
    ));
    v.push(reject("inspect", CorruptModel, "{F}/missing.tlm", &["{F}/missing.tlm"]));
    v.push(reject(
        "predict",
        CorruptModel,
        "--model {F}/missing.tlm {F}/ok.png",
        &["{F}/missing.tlm"],
    ));
}

/// Damaged image folders and images, and one bad input among good ones.
pub(crate) fn damaged_data_sets(v: &mut Vec<Case>) {
    // Damaged image folders and images.
    let folder = |name: &str| format!("--dataset image-folder --data-dir {{F}}/{name} --model digits-cnn {TRAIN}");
    for (name, bad) in [
        ("folder-zero", "{F}/folder-zero/a/zero.png"),
        ("folder-text", "{F}/folder-text/b/notes.png"),
        ("folder-noimages", "{F}/folder-noimages"),
        ("folder-empty", "{F}/folder-empty"),
        ("folder-fifo", "{F}/folder-fifo/a/pipe.png"),
        ("folder-socket", "{F}/folder-socket/b/sock.png"),
        ("folder-nonutf8", "{F}/folder-nonutf8/a/bad-"),
    ] {
        v.push(reject("train", DamagedData, &folder(name), &[bad]).writes(&["out"]));
        v.push(reject(
            "eval",
            DamagedData,
            &format!("--model {{F}}/imgrun/best.tlm --dataset image-folder --data-dir {{F}}/{name} --device cpu"),
            &[bad],
        ));
    }
    for (name, bad, images) in [
        ("folder-zero", "zero.png", "7 training images"),
        ("folder-text", "notes.png", "7 training images"),
    ] {
        v.push(
            accept(
                "train",
                DamagedData,
                &format!("{} --skip-bad --val-split 0.125", folder(name)),
            )
            .writes(&["out"])
            .check(move |_, o| {
                (o.stderr.contains(bad) && o.stdout.contains(images))
                    .then_some(())
                    .ok_or_else(|| format!("--skip-bad did not list {bad} or count {images:?}"))
            }),
        );
    }
    v.push(accept("train", DamagedData, &folder("folder-1x1")).writes(&["out"]));
    // A FIFO beside the class folders is not a class (as torchvision, which takes folders
    // only), and is never opened.
    v.push(
        accept(
            "train",
            DamagedData,
            &format!("{} --val-split 0.25", folder("folder-fifoclass")),
        )
        .writes(&["out"])
        .check(stdout_has("6 training images, 2 held out")),
    );
    v.push(
        accept(
            "eval",
            DamagedData,
            "--model {F}/imgrun/best.tlm --dataset image-folder --data-dir {F}/folder-fifoclass --device cpu",
        )
        .check(stdout_has("8 images")),
    );
    v.push(reject(
        "train",
        BadFlag,
        &format!("{TRAIN} --model nonsense"),
        &["'nonsense'"],
    ));
    v.push(reject(
        "train",
        BadFlag,
        &format!("{TRAIN} --patience 0"),
        &["--patience"],
    ));
    v.push(
        accept(
            "eval",
            DamagedData,
            "--model {F}/imgrun/best.tlm --dataset image-folder --data-dir {F}/folder-1x1 --device cpu",
        )
        .check(stdout_has("8 images")),
    );
    v.push(reject(
        "eval",
        DamagedData,
        "--model {F}/good.tlm --dataset image-folder --data-dir {F}/folder-ok --device cpu",
        &["{F}/good.tlm"],
    ));
    // A name that is not UTF-8 stops the scan of its folder (documented), naming the file.
    v.push(reject(
        "predict",
        DamagedData,
        "--model {F}/imgrun/best.tlm --device cpu --json {F}/folder-nonutf8",
        &["{F}/folder-nonutf8/a/bad-"],
    ));
    for bad in ["zero.png", "text.png", "truncated.png", "missing.png", "noimages"] {
        v.push(reject(
            "predict",
            DamagedData,
            &format!("--model {{F}}/good.tlm --device cpu {{F}}/{bad}"),
            &[&format!("{{F}}/{bad}")],
        ));
    }
    v.push(
        accept("predict", DamagedData, "--model {F}/good.tlm --device cpu {F}/tiny.png").check(stdout_has("tiny.png")),
    );
    // One bad input among good ones: its own error line, the others still classified.
    for bad in ["{F}/fifo.png", "{F}/zero.png", "{F}/missing.png"] {
        v.push(
            reject(
                "predict",
                DamagedData,
                &format!("--model {{F}}/good.tlm --device cpu --json {{F}}/ok.png {bad} {{F}}/tiny.png"),
                &[bad, "1 of 3"],
            )
            .check(stdout_lines(2)),
        );
    }
    for (name, bad, good) in [("folder-zero", "zero.png", 8), ("folder-fifo", "pipe.png", 8)] {
        v.push(
            reject(
                "predict",
                DamagedData,
                &format!("--model {{F}}/imgrun/best.tlm --device cpu --json {{F}}/{name}"),
                &[bad],
            )
            .check(stdout_lines(good)),
        );
    }
}
