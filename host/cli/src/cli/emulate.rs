//! `torchlet emulate`: run a model on the Cortex-M firmware under `qemu-system-arm`, without a
//! board, and check every prediction against the host's.
//!
//! `torchlet emulate --model FILE --dataset digits --count N [--json]`:
//! 1. exports the model's region image ([`super::export::region_image`]) and writes the first
//!    `N` held-out samples of the data set (the split `torchlet train --seed` holds out) as the
//!    test vectors the firmware's simulated I2C sensor serves (`firmware/src/source.rs`);
//! 2. builds the firmware's `classify` binary (`cargo build --release` in `firmware/`: a no-op
//!    when nothing changed) and the project's instruction-count plugin
//!    (`tools/qemu-plugin/build.sh`);
//! 3. runs it on `qemu-system-arm -machine mps2-an386` with the model and the vectors loaded
//!    into their flash regions (addresses read from the ELF's `_model_start` and
//!    `_inputs_start`), and counts the instructions of each inference exactly (the plugin
//!    marks `torchlet_inference_mark`, called before and after each one);
//! 4. compares every predicted class with the host's (`Model::forward`) and prints the
//!    agreement, the firmware's flash and RAM (`.text`, `.data`, `.bss` of the ELF), the arena
//!    and the instructions per inference. `--json` prints one object with `agreement` (0 to 1),
//!    `count`, `flash_bytes`, `ram_bytes`, `arena_bytes`, `instructions_per_inference` (and
//!    more). The command fails (status 1) unless every prediction agrees.
//!
//! `--board mps2-an386|stm32f405` ([`super::board::Board`]) picks the memory layout and the
//! QEMU machine (`mps2-an386`, or `netduinoplus2` for the 128 KiB STM32F405); the firmware's
//! static arena is digits-cnn's, or the CIFAR-10 network's for a model that needs more. When the
//! board's inputs region holds fewer vectors than `--count`, QEMU runs as many times as needed.
//! `--json` adds `board`, `macs_per_inference` and `instructions_per_mac`.
//!
//! `--region FILE` loads a region image as it is (one for another board, or a damaged one)
//! instead of exporting `--model`: a refusal by the firmware is reported with its message and
//! its exit status (`firmware/src/exit.rs`).
//!
//! The firmware is built with only the model's op families ([`op_features`]: cargo features of
//! the core, `torchlet::ops::family`); with `--region`, with all of them.
//!
//! `torchlet emulate --size-report [--json]`: see [`super::size_report`].
//!
//! Needs `qemu-system-arm` on the `PATH` and the Rust target `thumbv7em-none-eabihf`; without
//! them it fails saying what to install.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use torchlet::layer::Layer;
use torchlet::model_file::crc32;
use torchlet::ops::family;
use torchlet::Mode;

use super::board::Board;
use super::dataset::load_data;
use super::export::{load_model, region_image};
use super::train::DatasetKind;
use crate::model::Model;
use crate::train::argmax;

/// The firmware's Rust target.
pub const FIRMWARE_TARGET: &str = "thumbv7em-none-eabihf";

/// Magic of the test-vector blob (`firmware/src/source.rs`).
const BLOB_MAGIC: &[u8; 8] = b"TLINPUT1";

/// Arguments of `torchlet emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// The model: a .tlm file or a zoo name (untrained).
    #[arg(long, value_name = "FILE|ZOO-NAME", required_unless_present_any = ["size_report", "region"])]
    pub model: Option<String>,
    /// Load this model-region image as it is instead of exporting --model.
    #[arg(long, value_name = "FILE")]
    pub region: Option<PathBuf>,
    /// The data set the inputs come from.
    #[arg(long, value_enum, default_value = "digits")]
    pub dataset: DatasetKind,
    /// Where the data set is (not needed for digits).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The seed the model was trained with (it picks the digits' held-out images).
    #[arg(long, default_value = "0", allow_negative_numbers = true)]
    pub seed: u64,
    /// Number of held-out inputs to classify on the firmware.
    #[arg(long, value_name = "N", default_value = "100", allow_negative_numbers = true)]
    pub count: usize,
    /// The firmware folder (default: firmware/ of this repository).
    #[arg(long, value_name = "DIR")]
    pub firmware_dir: Option<PathBuf>,
    /// Seconds the QEMU run may take.
    #[arg(long, value_name = "S", default_value = "300", allow_negative_numbers = true)]
    pub timeout: u64,
    /// Print flash, RAM and arena of the firmware for digits-cnn and tutorial-cnn instead.
    #[arg(long, conflicts_with_all = ["model", "region"])]
    pub size_report: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The board: its memory layout and the QEMU machine that emulates it.
    #[arg(long, value_enum, default_value = "mps2-an386")]
    pub board: Board,
}

/// Sizes and symbols of a firmware ELF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    /// Flash-only bytes: vector table, code, read-only data (Berkeley `size`'s text).
    pub text: u64,
    /// Initialised RAM data (also stored in flash).
    pub data: u64,
    /// Zeroed RAM (the static arena lives here).
    pub bss: u64,
    /// Symbols: name, value (address), size.
    pub symbols: Vec<(String, u64, u64)>,
}

impl Elf {
    /// Flash used by the program: `text + data`.
    pub fn flash(&self) -> u64 {
        self.text + self.data
    }

    /// Static RAM: `data + bss` (the stack comes on top, from the end of RAM down).
    pub fn ram(&self) -> u64 {
        self.data + self.bss
    }

    /// Address of the symbol called exactly `name`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.iter().find(|s| s.0 == name).map(|s| s.1)
    }

    /// Size of the static arena: the object symbol whose (mangled) name holds `5ARENA`.
    pub fn arena_size(&self) -> Option<u64> {
        self.symbols
            .iter()
            .find(|s| s.0.contains("5ARENA") && s.2 > 0)
            .map(|s| s.2)
    }

    /// Reads the section sizes and symbols of a little-endian 32-bit ELF.
    ///
    /// # Errors
    /// A message naming `path` and what is not as expected.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Elf, String> {
        let bad = |what: &str| format!("{}: not a 32-bit little-endian ELF file ({what})", path.display());
        let u16_at = |at: usize| -> Result<u64, String> {
            bytes
                .get(at..at + 2)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
                .ok_or_else(|| bad("truncated"))
        };
        let u32_at = |at: usize| -> Result<u64, String> {
            bytes
                .get(at..at + 4)
                .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .ok_or_else(|| bad("truncated"))
        };
        if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 1, 1][..]) {
            return Err(bad("magic, class or byte order"));
        }
        let shoff = u32_at(0x20)? as usize;
        let shentsize = u16_at(0x2E)? as usize;
        let shnum = u16_at(0x30)? as usize;
        if shentsize < 40 {
            return Err(bad("section header size"));
        }
        let sh = |i: usize, field: usize| u32_at(shoff + i * shentsize + field);
        let (mut text, mut data, mut bss) = (0, 0, 0);
        let mut symbols = Vec::new();
        for i in 0..shnum {
            let (kind, flags, size) = (sh(i, 4)?, sh(i, 8)?, sh(i, 20)?);
            const ALLOC: u64 = 2;
            const WRITE: u64 = 1;
            match kind {
                8 if flags & ALLOC != 0 => bss += size,
                1 if flags & ALLOC != 0 && flags & WRITE != 0 => data += size,
                1 if flags & ALLOC != 0 => text += size,
                2 => {
                    let (off, link) = (sh(i, 16)? as usize, sh(i, 24)? as usize);
                    let stroff = sh(link, 16)? as usize;
                    for k in 0..size as usize / 16 {
                        let e = off + k * 16;
                        let name_at = stroff + u32_at(e)? as usize;
                        let end = bytes[name_at.min(bytes.len())..]
                            .iter()
                            .position(|&b| b == 0)
                            .ok_or_else(|| bad("symbol name"))?;
                        let name = String::from_utf8_lossy(&bytes[name_at..name_at + end]).into_owned();
                        symbols.push((name, u32_at(e + 4)?, u32_at(e + 8)?));
                    }
                }
                _ => {}
            }
        }
        Ok(Elf {
            text,
            data,
            bss,
            symbols,
        })
    }
}

/// One firmware prediction line (`pred <i> <class> <score> <label|-> <cycles>`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FirmwarePrediction {
    /// The predicted class.
    pub class: usize,
    /// Its output value.
    pub score: f32,
    /// The label the test vector carried.
    pub label: Option<u32>,
}

/// What a run of the `classify` firmware under QEMU gave.
#[derive(Clone, Debug, PartialEq)]
pub struct FirmwareRun {
    /// QEMU's exit status: the firmware's (`firmware/src/exit.rs`).
    pub status: i32,
    /// Everything the firmware printed.
    pub stdout: String,
    /// Its predictions, in input order.
    pub predictions: Vec<FirmwarePrediction>,
    /// Instructions of each inference, from the plugin (empty without the plugin).
    pub instructions: Vec<u64>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails with what to install when `qemu-system-arm` is missing.
///
/// # Errors
/// A message saying what to install.
pub fn check_qemu() -> Result<(), String> {
    match Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(_) => {
            return Err("qemu-system-arm was not found on the PATH: install it (Debian/Ubuntu: \
                        `apt-get install qemu-system-arm`, or tools/install-qemu.sh in this repository; \
                        macOS: `brew install qemu`)"
                .into())
        }
    }
    Ok(())
}

/// Fails with what to install when the firmware's Rust target is missing.
///
/// # Errors
/// A message saying what to install.
pub fn check_target() -> Result<(), String> {
    // Without rustup (a distribution's Rust), cargo itself says what is missing.
    if let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() {
        if out.status.success()
            && !String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == FIRMWARE_TARGET)
        {
            return Err(format!(
                "the Rust target {FIRMWARE_TARGET} is not installed: run `rustup target add {FIRMWARE_TARGET}`"
            ));
        }
    }
    Ok(())
}

/// Builds the firmware binary `bin` in `dir` (release) with `features` (none: the defaults) into
/// `target_dir` (none: `dir/target`) and returns the ELF's path.
///
/// # Errors
/// Cargo's error output.
pub fn build_firmware(
    dir: &Path,
    bin: &str,
    features: Option<&str>,
    target_dir: Option<&Path>,
) -> Result<PathBuf, String> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(dir)
        .args(["build", "--release", "--quiet", "--bin", bin]);
    if let Some(f) = features {
        cmd.args(["--no-default-features", "--features", f]);
    }
    let target = target_dir.map_or_else(|| dir.join("target"), Path::to_path_buf);
    cmd.arg("--target-dir").arg(&target);
    // A cargo running this command (cargo test, cargo run) must not configure the firmware's.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTDOCFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo in {} (is it on the PATH?): {e}", dir.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(30).collect();
        return Err(format!(
            "building the firmware ({} --bin {bin}) failed:\n{}",
            dir.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(target.join(FIRMWARE_TARGET).join("release").join(bin))
}

/// Builds the instruction-count plugin (`tools/qemu-plugin/build.sh`) into `out` if it is
/// missing or older than its source; `None` (no counts) if it cannot be built.
pub fn build_plugin(out: &Path) -> Option<PathBuf> {
    let root = repo_root().join("tools/qemu-plugin");
    let src = root.join("insncount.c");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(out), modified(&src)), (Some(o), Some(s)) if o >= s);
    if !fresh {
        let ok = Command::new("bash")
            .arg(root.join("build.sh"))
            .arg(out)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return None;
        }
    }
    out.exists().then(|| out.to_path_buf())
}

/// The test-vector blob the firmware's simulated sensor serves: `frames` (`n × frame_len`
/// floats) with their labels.
pub fn vector_blob(frames: &[f32], labels: &[u32], frame_len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + frames.len() * 4 + labels.len() * 4 + 4);
    b.extend_from_slice(BLOB_MAGIC);
    b.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    b.extend_from_slice(&(frame_len as u32).to_le_bytes());
    for (frame, label) in frames.chunks(frame_len.max(1)).zip(labels) {
        b.extend_from_slice(&label.to_le_bytes());
        for v in frame {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Runs the firmware `elf` (a `firmware/` scenario) under QEMU (mps2-an386) with the `model`
/// and `inputs` files, when given, loaded into their regions, counting instructions with
/// `plugin` when given (`work`: a folder for the plugin's log).
///
/// # Errors
/// QEMU that cannot start or that runs past `timeout`; a region address missing in the ELF.
pub fn run_firmware(
    elf_path: &Path,
    elf: &Elf,
    model: Option<&Path>,
    inputs: Option<&Path>,
    plugin: Option<&Path>,
    work: &Path,
    timeout: Duration,
) -> Result<FirmwareRun, String> {
    run_firmware_on(Board::Mps2An386, elf_path, elf, model, inputs, plugin, work, timeout)
}

/// [`run_firmware`] on `board`'s QEMU machine.
///
/// # Errors
/// As [`run_firmware`].
#[allow(clippy::too_many_arguments)]
pub fn run_firmware_on(
    board: Board,
    elf_path: &Path,
    elf: &Elf,
    model: Option<&Path>,
    inputs: Option<&Path>,
    plugin: Option<&Path>,
    work: &Path,
    timeout: Duration,
) -> Result<FirmwareRun, String> {
    let addr = |name: &str| {
        elf.symbol(name)
            .ok_or_else(|| format!("{}: no symbol {name} (memory.x defines it)", elf_path.display()))
    };
    let log = work.join("insncount.log");
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args([
        "-machine",
        board.qemu_machine(),
        "-cpu",
        "cortex-m4",
        "-display",
        "none",
        "-serial",
        "null",
    ])
    .args(["-monitor", "none", "-semihosting-config", "enable=on,target=native"]);
    for (file, region) in [(model, "_model_start"), (inputs, "_inputs_start")] {
        if let Some(f) = file {
            cmd.arg("-device")
                .arg(format!("loader,file={},addr={:#x}", f.display(), addr(region)?));
        }
    }
    if let Some(p) = plugin {
        let mark = addr("torchlet_inference_mark")?;
        cmd.args(["-icount", "shift=0", "-plugin"])
            .arg(format!("{},mark={mark:#x}", p.display()))
            .args(["-d", "plugin", "-D"])
            .arg(&log);
    }
    cmd.arg("-kernel").arg(elf_path);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start qemu-system-arm: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("qemu-system-arm: no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| format!("qemu-system-arm: {e}"))? {
            Some(s) => break s,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the firmware ran past --timeout {} s under qemu-system-arm",
                    timeout.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let code = status.code().unwrap_or(-1);
    if code != 0 && !stderr.trim().is_empty() && !stdout.contains("error:") {
        return Err(format!(
            "qemu-system-arm failed (exit status {code}): {}",
            stderr.trim()
        ));
    }
    let predictions = stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["pred", _, class, score, label, _] => Some(FirmwarePrediction {
                    class: class.parse().ok()?,
                    score: parse_score(score)?,
                    label: label.parse().ok(),
                }),
                _ => None,
            }
        })
        .collect();
    let marks: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("insncount: mark ")?
                .split_once(" insns=")?
                .1
                .trim()
                .parse()
                .ok()
        })
        .collect();
    let instructions = marks.chunks_exact(2).map(|p| p[1] - p[0]).collect();
    Ok(FirmwareRun {
        status: code,
        stdout,
        predictions,
        instructions,
    })
}

/// A score as `classify` prints it: `0x` and the 8 hex digits of the `f32`'s bits (exact), or a
/// decimal number (the defmt build's text).
pub fn parse_score(s: &str) -> Option<f32> {
    match s.strip_prefix("0x") {
        Some(hex) if hex.len() == 8 => u32::from_str_radix(hex, 16).ok().map(f32::from_bits),
        Some(_) => None,
        None => s.parse().ok(),
    }
}

pub(super) fn firmware_dir(args: &EmulateArgs) -> PathBuf {
    args.firmware_dir
        .clone()
        .unwrap_or_else(|| repo_root().join("firmware"))
}

/// Runs `torchlet emulate`, printing the report (or one JSON object) to `out`.
///
/// # Errors
/// A message for the user: tools to install, a model or data set that cannot be read, a
/// firmware that refused the model (with its message and exit status), or predictions that
/// differ from the host's.
pub fn run(args: &EmulateArgs, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    check_target()?;
    if args.size_report {
        return super::size_report::run(args, out);
    }
    check_qemu()?;
    if args.count == 0 {
        return Err("--count must be at least 1".into());
    }
    let model = match &args.model {
        Some(m) => Some(load_model(m)?),
        None => None,
    };
    let dir = firmware_dir(args);
    // The static arena is sized at compile time: digits-cnn's, or the CIFAR-10 network's for a
    // model that needs more (a model larger still is refused by the firmware, exit status 12).
    let arena = match &model {
        Some(m)
            if m.plan(1, Mode::Inference)?.arena_bytes()
                > Model::from_zoo("digits-cnn", 0)?
                    .plan(1, Mode::Inference)?
                    .arena_bytes() =>
        {
            "arena-cifar10"
        }
        _ => "arena-digits",
    };
    // A model's firmware links only the op families it uses; a region image as it is gets them
    // all.
    let ops = model.as_ref().map(|m| op_features(m.layers(), arena));
    let elf_path = classify_firmware(&dir, args.board, arena, ops.as_deref())?;
    let bytes = std::fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let elf = Elf::parse(&bytes, &elf_path)?;
    let scratch = crate::scratch::Scratch::new("emulate")?;
    let work = scratch.path();

    // The region image: exported from --model, or --region as it is.
    let region = work.join("model.bin");
    let region_bytes = match (&args.region, &model) {
        (Some(r), _) => crate::fsutil::read(r).map_err(|e| format!("--region {e}"))?,
        (None, Some(m)) => region_image(m, args.board.model_region())?.0,
        (None, None) => return Err("give --model FILE or --region FILE".into()),
    };
    std::fs::write(&region, &region_bytes).map_err(|e| format!("{}: {e}", region.display()))?;

    // N held-out samples, as `torchlet train --seed` holds them out.
    let input = model.as_ref().map_or(torchlet::Shape::chw(1, 8, 8), |m| m.input);
    let data = load_data(
        args.dataset,
        args.data_dir.as_deref(),
        input,
        false,
        None,
        args.seed,
        false,
    )?;
    let n = args.count.min(data.test.len());
    let (mut frames, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (sample, label) = data.test.get(i)?;
        frames.extend(sample.into_tensor("torchlet emulate")?.data);
        labels.push(label);
    }
    let frame_len = frames.len() / n.max(1);
    if let Some(m) = &model {
        if frame_len != m.input.numel() {
            return Err(format!(
                "the {} samples have {frame_len} values, the model's input {:?} has {}",
                args.dataset.name(),
                m.input.dims(),
                m.input.numel()
            )
            .into());
        }
    }
    let plugin = build_plugin(&dir.join("target").join("libinsncount.so"));
    let batches = Batches {
        frames: &frames,
        labels: &labels,
        frame_len,
    };
    let run = batches.run(args, &elf_path, &elf, &region, plugin.as_deref(), work)?;
    drop(scratch);
    if run.predictions.len() != n {
        return Err(format!(
            "the firmware printed {} predictions for {n} inputs:\n{}",
            run.predictions.len(),
            run.stdout
        )
        .into());
    }
    let model = match model {
        Some(m) => m,
        None => {
            let len = region_file_len(&region_bytes);
            Model::from_bytes(
                region_bytes[..len].to_vec(),
                args.region.as_deref().unwrap_or(Path::new("region")),
            )?
        }
    };
    report(args, out, &model, &elf, &run, &frames, n)
}

/// The `classify` firmware for `board` with the static arena `arena` (a cargo feature) and the
/// core's op families `ops` (`op-*` features, see [`op_features`]; `None`: `all-ops`), built
/// into its own target folder (the default board and arena with all ops: `firmware/target`;
/// one folder per board and arena for a model's ops, which cargo rebuilds when they change).
///
/// # Errors
/// As [`build_firmware`].
pub fn classify_firmware(dir: &Path, board: Board, arena: &str, ops: Option<&[&str]>) -> Result<PathBuf, String> {
    if board == Board::Mps2An386 && arena == "arena-digits" && ops.is_none() {
        return build_firmware(dir, "classify", None, None);
    }
    let mut folder = match board {
        Board::Mps2An386 => arena.to_string(),
        _ => format!("{}-{arena}", board.name()),
    };
    if ops.is_some() {
        folder.push_str("-model-ops");
    }
    let ops = ops.map_or_else(|| "all-ops".to_string(), |o| o.join(","));
    build_firmware(
        dir,
        "classify",
        Some(&format!("{},{arena},{ops}", board.feature())),
        Some(&dir.join("target").join(folder)),
    )
}

/// The core's op features (`torchlet::ops::family`) a `classify` firmware for `layers` with the
/// static arena `arena` needs, sorted: those of the model's layers, and those of the firmware's
/// own compile-time plans (the arena's zoo model, and digits-cnn for the training scenarios).
pub fn op_features(layers: &[Layer], arena: &str) -> Vec<&'static str> {
    let mut ops = Vec::new();
    let arena_model: &[Layer] = if arena == "arena-cifar10" {
        &torchlet::zoo::TUTORIAL_CNN
    } else {
        &torchlet::zoo::DIGITS_CNN
    };
    for l in [layers, arena_model, &torchlet::zoo::DIGITS_CNN] {
        family::for_each_feature(l, &mut |f| ops.push(f));
    }
    ops.sort_unstable();
    ops.dedup();
    ops
}

/// Test vectors to classify: `frames` (`labels.len() × frame_len` floats).
struct Batches<'a> {
    frames: &'a [f32],
    labels: &'a [u32],
    frame_len: usize,
}

impl Batches<'_> {
    /// Runs the firmware on every vector, as many QEMU runs as the board's inputs region needs
    /// (each holds as many vectors as fit), and gathers the predictions and instruction counts.
    ///
    /// # Errors
    /// A vector larger than the inputs region, a firmware that refuses to run (its message and
    /// exit status) or prints another number of predictions than it was given.
    fn run(
        &self,
        args: &EmulateArgs,
        elf_path: &Path,
        elf: &Elf,
        region: &Path,
        plugin: Option<&Path>,
        work: &Path,
    ) -> Result<FirmwareRun, Box<dyn std::error::Error>> {
        let capacity = match (elf.symbol("_inputs_start"), elf.symbol("_inputs_end")) {
            (Some(a), Some(b)) if b > a => (b - a) as usize,
            _ => return Err(format!("{}: no inputs region (_inputs_start, _inputs_end)", elf_path.display()).into()),
        };
        // The blob: a 16-byte header, then a label and the frame per vector, then a CRC.
        let per = 4 + 4 * self.frame_len;
        let fit = capacity.saturating_sub(20) / per.max(1);
        if fit == 0 {
            return Err(format!(
                "one input of {} values ({per} bytes) does not fit the {} board's inputs region ({capacity} bytes)",
                self.frame_len,
                args.board.name()
            )
            .into());
        }
        let inputs = work.join("inputs.bin");
        let mut all = FirmwareRun {
            status: 0,
            stdout: String::new(),
            predictions: Vec::new(),
            instructions: Vec::new(),
        };
        for (k, labels) in self.labels.chunks(fit).enumerate() {
            let start = k * fit * self.frame_len;
            let frames = &self.frames[start..start + labels.len() * self.frame_len];
            std::fs::write(&inputs, vector_blob(frames, labels, self.frame_len))
                .map_err(|e| format!("{}: {e}", inputs.display()))?;
            let run = run_firmware_on(
                args.board,
                elf_path,
                elf,
                Some(region),
                Some(&inputs),
                plugin,
                work,
                Duration::from_secs(args.timeout),
            )?;
            if run.status != 0 {
                let msg = run
                    .stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("error: "))
                    .map(|l| l.rsplit_once(" (exit ").map_or(l, |(m, _)| m))
                    .unwrap_or("no message");
                return Err(format!("the firmware refused to run: {msg} (exit status {})", run.status).into());
            }
            if run.predictions.len() != labels.len() {
                return Err(format!(
                    "the firmware printed {} predictions for {} inputs:\n{}",
                    run.predictions.len(),
                    labels.len(),
                    run.stdout
                )
                .into());
            }
            all.stdout.push_str(&run.stdout);
            all.predictions.extend(run.predictions);
            all.instructions.extend(run.instructions);
        }
        Ok(all)
    }
}

/// The model file's length at the start of a region image (from its fixed header).
fn region_file_len(image: &[u8]) -> usize {
    let word = |at: usize| {
        image
            .get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    (word(16) + word(20) + 4).min(image.len())
}

fn report(
    args: &EmulateArgs,
    out: &mut dyn Write,
    model: &Model,
    elf: &Elf,
    run: &FirmwareRun,
    frames: &[f32],
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let host = model.forward(frames)?;
    let classes = host.len() / n.max(1);
    let (mut agree, mut max_diff, mut correct) = (0usize, 0f32, 0usize);
    for (row, p) in host.chunks(classes.max(1)).zip(&run.predictions) {
        let c = argmax(row);
        agree += usize::from(c == p.class);
        max_diff = max_diff.max((row[p.class.min(row.len() - 1)] - p.score).abs());
        correct += usize::from(p.label == Some(p.class as u32));
    }
    let agreement = agree as f64 / n as f64;
    let plan = model.plan(1, Mode::Inference)?;
    let (arena, macs) = (plan.arena_bytes(), plan.macs());
    let insns = (!run.instructions.is_empty())
        .then(|| run.instructions.iter().sum::<u64>() as f64 / run.instructions.len() as f64);
    let per_mac = insns.filter(|_| macs > 0).map(|x| x / macs as f64);
    if args.json {
        let v = serde_json::json!({
            "board": args.board.name(),
            "macs_per_inference": macs,
            "instructions_per_mac": per_mac,
            "agreement": agreement,
            "count": n,
            "flash_bytes": elf.flash(),
            "ram_bytes": elf.ram(),
            "arena_bytes": arena,
            "instructions_per_inference": insns.map(|x| x.round() as u64),
            "text_bytes": elf.text,
            "data_bytes": elf.data,
            "bss_bytes": elf.bss,
            "linked_arena_bytes": elf.arena_size(),
            "firmware_accuracy": correct as f64 / n as f64,
            "max_score_difference": max_diff,
        });
        writeln!(out, "{v}")?;
    } else {
        let mut s = String::new();
        writeln!(
            s,
            "model: {} on the firmware (board {}: {})",
            model.name,
            args.board.name(),
            args.board.describe()
        )?;
        writeln!(
            s,
            "agreement with the host: {agree}/{n} ({:.1}%), largest score difference {max_diff:e}",
            agreement * 100.0
        )?;
        writeln!(
            s,
            "accuracy on the firmware: {correct}/{n} held-out {}",
            args.dataset.name()
        )?;
        writeln!(
            s,
            "firmware: flash {} bytes (.text {} + .data {}), RAM {} bytes (.data {} + .bss {}) + stack",
            elf.flash(),
            elf.text,
            elf.data,
            elf.ram(),
            elf.data,
            elf.bss
        )?;
        writeln!(
            s,
            "arena: {arena} bytes for this model (the firmware's static arena: {} bytes)",
            elf.arena_size().unwrap_or(0)
        )?;
        match insns {
            Some(x) => writeln!(
                s,
                "instructions per inference: {:.0} (min {}, max {}; QEMU TCG plugin, exact); {macs} multiply-accumulates, {:.2} instructions per MAC",
                x,
                run.instructions.iter().min().unwrap_or(&0),
                run.instructions.iter().max().unwrap_or(&0),
                per_mac.unwrap_or(f64::NAN)
            )?,
            None => writeln!(
                s,
                "instructions per inference: n/a (the plugin could not be built: gcc missing?)"
            )?,
        }
        out.write_all(s.as_bytes())?;
    }
    if agree != n {
        return Err(format!("{} of {n} firmware predictions differ from the host's", n - agree).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_score;

    #[test]
    fn scores_are_read_exactly_from_their_bits() {
        for v in [1.5f32, -3.25e-7, 12.345_679, f32::MAX] {
            assert_eq!(parse_score(&format!("0x{:08x}", v.to_bits())), Some(v));
        }
        assert_eq!(parse_score("2.5"), Some(2.5));
        assert_eq!(parse_score("0x3f80"), None);
        assert_eq!(parse_score("0xzzzzzzzz"), None);
    }
}
