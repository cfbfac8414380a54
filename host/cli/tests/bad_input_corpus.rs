//! The bad-input corpus: one table of bad or odd inputs given to every command (`train`, `eval`,
//! `predict`, `inspect`, `export`, `bench`, and `emulate` where it fails before QEMU would run),
//! each run as a user would run it and classified.
//!
//! The classes of input: non-regular files (FIFO, socket, `/dev/null`, `/dev/zero`, a directory)
//! wherever a file is read or written; symbolic-link cycles and links leaving an image folder;
//! absurd sizes (`--num-classes 1000000000`, `--batch-size 1000000000000000`, model files whose
//! plan needs terabytes); corrupt model files (empty, truncated, wrong magic, flipped bits,
//! another version, a state dict, a patched header claiming a huge layer); second runs into the
//! same `--out`; `--resume` with flags that contradict the checkpoint; divergence (`--lr 1e6`,
//! NaN or infinite weights); bad flag values (negative, zero, NaN, not a number, unknown names)
//! for every numeric or named flag; damaged image folders (zero-byte, text and 1×1 images, no
//! images, a FIFO or socket where an image or a class is, a name that is not UTF-8).
//!
//! Each case expects either a clean rejection (exit status 1 or 2 within [`LIMIT`], stderr
//! naming the path or the flag) or, for odd but valid input, success (optionally with a check
//! of what was printed or written). Whatever the expectation, a run must not die of a signal,
//! panic or abort on an allocation, must not hang, and must leave every file that was there
//! before byte-for-byte as it was (in the case's own folder and in the shared fixtures), except
//! the files a case names as written on purpose; it must not leave a temporary file behind.
//!
//! Each outcome is one of: rejected clearly, accepted correctly, abort (a signal, a panic, an
//! allocation failure), hang (killed at the limit), silent wrong (exit 0 where a rejection was
//! expected, a rejection that names neither path nor flag, an unexpected exit status, a changed
//! file, a temporary file left, a failed check) and wrongly refused (a valid input rejected).
//! The test prints a table of the counts per class and per command (`cargo test --test
//! bad_input_corpus -- --nocapture` shows it on success too) and fails, listing every failing
//! case with its command line, exit status and stderr, unless the last four are 0.
//! `TORCHLET_CORPUS_VERBOSE=1` also lists every case with the last line of its stderr.
//!
//! A message names a flag when it holds it (`--batch-size`); a few core errors name it in words
//! with the value (`batch size 1000000000000000`), which counts too (`a|b` in a case).
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use torchlet::layer::{adaptive_avg_pool2d, conv2d, flatten, linear};
use torchlet::Shape;
use torchlet_host::model::{Checkpoint, Model};

/// How long one command may run before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(30);

/// What kind of bad input a case is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    NonRegular,
    Symlink,
    AbsurdSize,
    CorruptModel,
    SecondRun,
    Resume,
    Divergence,
    BadFlag,
    DamagedData,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::NonRegular => "non-regular files",
            Class::Symlink => "symlinks",
            Class::AbsurdSize => "absurd sizes",
            Class::CorruptModel => "corrupt models",
            Class::SecondRun => "second runs",
            Class::Resume => "contradictory resumes",
            Class::Divergence => "divergence",
            Class::BadFlag => "bad flags",
            Class::DamagedData => "damaged data",
        }
    }
}

/// How a run ended, once classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Rejected,
    Accepted,
    Abort,
    Hang,
    SilentWrong,
    WronglyRefused,
}

const VERDICTS: [Verdict; 6] = [
    Verdict::Rejected,
    Verdict::Accepted,
    Verdict::Abort,
    Verdict::Hang,
    Verdict::SilentWrong,
    Verdict::WronglyRefused,
];

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Rejected => "rejected",
            Verdict::Accepted => "accepted",
            Verdict::Abort => "abort",
            Verdict::Hang => "hang",
            Verdict::SilentWrong => "silent-wrong",
            Verdict::WronglyRefused => "wrongly-refused",
        }
    }
}

/// What a finished run printed.
struct Outcome {
    /// Exit status; `None` when a signal ended it or it was killed at the limit.
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    secs: f64,
}

/// A check after a run: the case folder and the outcome; `Err` says what is wrong.
type Check = Box<dyn Fn(&Path, &Outcome) -> Result<(), String>>;

/// Prepares a case's folder (given it and the fixtures folder).
type Setup = Box<dyn Fn(&Path, &Path)>;

enum Expect {
    /// Exit status 1 or 2, and stderr holds every one of these (the path or the flag).
    Reject(Vec<String>),
    /// Exit status 0.
    Accept,
}

/// One input of the corpus.
struct Case {
    cmd: &'static str,
    class: Class,
    /// The arguments after `torchlet`, split at spaces; `{F}` is the fixtures folder and `{C}`
    /// the case's own folder (the run's working directory).
    args: String,
    expect: Expect,
    /// Paths (relative to the case folder, prefixes) the run may change or create.
    may_write: Vec<String>,
    /// Prepares the case folder (given the case and the fixtures folders) before the snapshot.
    setup: Option<Setup>,
    /// Checks what the run printed or wrote, once it ended as expected.
    check: Option<Check>,
}

fn case(cmd: &'static str, class: Class, args: &str, expect: Expect) -> Case {
    Case {
        cmd,
        class,
        args: format!("{cmd} {args}"),
        expect,
        may_write: Vec::new(),
        setup: None,
        check: None,
    }
}

/// A case that must be refused with a message holding each of `names`.
fn reject(cmd: &'static str, class: Class, args: &str, names: &[&str]) -> Case {
    case(
        cmd,
        class,
        args,
        Expect::Reject(names.iter().map(|s| s.to_string()).collect()),
    )
}

/// A case that must succeed.
fn accept(cmd: &'static str, class: Class, args: &str) -> Case {
    case(cmd, class, args, Expect::Accept)
}

impl Case {
    fn writes(mut self, paths: &[&str]) -> Case {
        self.may_write.extend(paths.iter().map(|s| s.to_string()));
        self
    }

    fn setup(mut self, f: impl Fn(&Path, &Path) + 'static) -> Case {
        self.setup = Some(Box::new(f));
        self
    }

    /// Adds a check (after those already given).
    fn check(mut self, f: impl Fn(&Path, &Outcome) -> Result<(), String> + 'static) -> Case {
        self.check = Some(match self.check.take() {
            None => Box::new(f),
            Some(first) => Box::new(move |c, o| first(c, o).and_then(|()| f(c, o))),
        });
        self
    }
}

/// A check: stdout holds `want`.
fn stdout_has(want: &'static str) -> impl Fn(&Path, &Outcome) -> Result<(), String> {
    move |_, o| {
        o.stdout
            .contains(want)
            .then_some(())
            .ok_or_else(|| format!("stdout lacks {want:?}"))
    }
}

/// A check: stdout has `n` lines (one per image with `predict --json`).
fn stdout_lines(n: usize) -> impl Fn(&Path, &Outcome) -> Result<(), String> {
    move |_, o| {
        let found = o.stdout.lines().count();
        (found == n)
            .then_some(())
            .ok_or_else(|| format!("{found} lines on stdout, expected {n}"))
    }
}

/// A check: each of `paths` (in the case folder) is a model file that loads, with finite
/// weights, if it exists; `required` ones must exist.
fn models_load(paths: &'static [&'static str], required: bool) -> impl Fn(&Path, &Outcome) -> Result<(), String> {
    move |dir, _| {
        for p in paths {
            let path = dir.join(p);
            if !required && !path.exists() {
                continue;
            }
            let m = Model::load(&path).map_err(|e| format!("{p}: {e}"))?;
            if m.params.iter().any(|v| !v.is_finite()) {
                return Err(format!("{p} has non-finite weights"));
            }
        }
        Ok(())
    }
}

/// Copies the fixtures' digits run into `CASE/run`.
fn copy_run(c: &Path, f: &Path) {
    copy_dir(&f.join("run"), &c.join("run"));
}

// ---------------------------------------------------------------------------------------------
// Running and snapshots.

fn run(cwd: &Path, args: &[String]) -> Outcome {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the torchlet binary starts");
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            timed_out = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: if timed_out { None } else { status.code() },
        timed_out,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Every entry under `dir` (not following links): regular files with their bytes, links with
/// their target, others with their kind; keyed by the path relative to `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = meta.file_type();
            let what = if ft.is_file() {
                std::fs::read(&p).unwrap_or_else(|e| format!("unreadable: {e}").into_bytes())
            } else if ft.is_symlink() {
                let mut v = b"link -> ".to_vec();
                v.extend_from_slice(std::fs::read_link(&p).unwrap().as_os_str().as_bytes());
                v
            } else if ft.is_dir() {
                stack.push(p.clone());
                b"dir".to_vec()
            } else if ft.is_fifo() {
                b"fifo".to_vec()
            } else if ft.is_socket() {
                b"socket".to_vec()
            } else {
                format!("{ft:?}").into_bytes()
            };
            all.insert(p.strip_prefix(dir).unwrap().to_path_buf(), what);
        }
    }
    all
}

/// What changed between two snapshots, ignoring the paths under `allowed` prefixes (new files
/// are fine unless they are temporary files).
fn changes(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>, allowed: &[String]) -> Vec<String> {
    let allowed_path = |p: &Path| allowed.iter().any(|a| p.starts_with(a));
    let mut found = Vec::new();
    for (p, old) in before {
        if allowed_path(p) {
            continue;
        }
        match after.get(p) {
            None => found.push(format!("removed {}", p.display())),
            Some(new) if new != old => found.push(format!("changed {}", p.display())),
            Some(_) => {}
        }
    }
    for p in after.keys() {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !before.contains_key(p) && name.starts_with('.') && name.ends_with(".tmp") {
            found.push(format!("left a temporary file {}", p.display()));
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Fixtures, built once.

/// A PNG of `w`×`h` RGB pixels, coloured by `seed`.
fn png(path: &Path, w: u32, h: u32, seed: u8) {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([seed.wrapping_mul(40), (x * 30) as u8, (y * 30) as u8 ^ seed])
    })
    .save(path)
    .unwrap();
}

/// `root/a/` and `root/b/` with `n` images of `size`×`size` each.
fn image_folder(root: &Path, n: u8, size: u32) {
    for (c, class) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..n {
            png(&root.join(class).join(format!("{i}.png")), size, size, i + 10 * c as u8);
        }
    }
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn cli(dir: &Path, line: &str) {
    let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let o = run(dir, &args);
    assert_eq!(o.code, Some(0), "fixture: torchlet {line}\n{}", o.stderr);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `bytes` with the CRC (the last four bytes) recomputed.
fn recrc(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len() - 4;
    let crc = torchlet::model_file::crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A model file with header bytes `from` replaced by `to` (each found once in the header), the
/// header length, data offset and CRC fixed so that only the contents are wrong.
fn patch_header(bytes: &[u8], edits: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (h, d, l) = (u32_at(12), u32_at(16), u32_at(20));
    let mut header = bytes[24..24 + h].to_vec();
    for (from, to) in edits {
        let at = header
            .windows(from.len())
            .position(|w| w == &from[..])
            .unwrap_or_else(|| panic!("{from:02x?} not in the header"));
        header.splice(at..at + from.len(), to.iter().copied());
    }
    let h2 = header.len();
    let d2 = (24 + h2).div_ceil(64) * 64;
    let mut out = bytes[..24].to_vec();
    out[12..16].copy_from_slice(&(h2 as u32).to_le_bytes());
    out[16..20].copy_from_slice(&(d2 as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.resize(d2, 0);
    out.extend_from_slice(&bytes[d..d + l]);
    out.extend_from_slice(&[0; 4]);
    recrc(out)
}

/// A whole model whose weights are tiny but whose activations at batch 1 are `side`² floats a
/// layer (a 1×1 convolution on a `side`×`side` picture): a valid file whose plan needs absurd
/// memory.
fn huge_activations(side: usize) -> Vec<u8> {
    static LAYERS: [torchlet::layer::Layer; 4] = [conv2d(1, 1, 1), adaptive_avg_pool2d(1, 1), flatten(), linear(1, 10)];
    let classes: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    // Made at a small size (its weights do not depend on it), then given the huge input.
    let mut m = Model::new("huge-activations", &LAYERS[..], Shape::chw(1, 4, 4), &classes, 0).unwrap();
    m.input = Shape::chw(1, side, side);
    m.params.fill(0.01);
    m.to_bytes().unwrap()
}

/// The shared fixtures; the socket lives as long as the listener.
struct Fixtures {
    dir: tempfile::TempDir,
    _listeners: Vec<std::os::unix::net::UnixListener>,
}

fn fixtures() -> Fixtures {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path();
    let mut listeners = Vec::new();
    let w = |name: &str, bytes: &[u8]| std::fs::write(f.join(name), bytes).unwrap();

    // Non-regular files.
    mkfifo(&f.join("fifo.tlm"));
    mkfifo(&f.join("fifo.png"));
    listeners.push(std::os::unix::net::UnixListener::bind(f.join("socket.tlm")).unwrap());
    std::fs::create_dir(f.join("dir.tlm")).unwrap();
    std::fs::create_dir(f.join("dir.png")).unwrap();
    symlink("loop.tlm", f.join("loop.tlm")).unwrap();
    symlink("fifo.tlm", f.join("link-to-fifo.tlm")).unwrap();
    symlink("missing.bin", f.join("dangling.bin")).unwrap();
    symlink("loopdir", f.join("loopdir")).unwrap();
    w("file.txt", b"a regular file, not a folder\n");

    // Images.
    png(&f.join("ok.png"), 8, 8, 1);
    png(&f.join("tiny.png"), 1, 1, 2);
    w("zero.png", b"");
    w("text.png", b"this is text, not a PNG\n");
    let ok = std::fs::read(f.join("ok.png")).unwrap();
    w("truncated.png", &ok[..ok.len() / 2]);
    // A PNG header claiming 100000×100000 pixels (40 GB of RGBA) and no data.
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    big.extend_from_slice(&13u32.to_be_bytes());
    big.extend_from_slice(&ihdr);
    big.extend_from_slice(&torchlet::model_file::crc32(&ihdr).to_be_bytes());
    big.extend_from_slice(&[0, 0, 0, 0]);
    big.extend_from_slice(b"IEND");
    big.extend_from_slice(&torchlet::model_file::crc32(b"IEND").to_be_bytes());
    w("huge.png", &big);
    std::fs::create_dir(f.join("noimages")).unwrap();
    w("noimages/readme.txt", b"no images here\n");

    // Image folders (classes a and b).
    image_folder(&f.join("folder-ok"), 4, 8);
    image_folder(&f.join("folder-1x1"), 4, 1);
    image_folder(&f.join("folder-zero"), 4, 8);
    w("folder-zero/a/zero.png", b"");
    image_folder(&f.join("folder-text"), 4, 8);
    w("folder-text/b/notes.png", b"this is text, not a PNG\n");
    std::fs::create_dir_all(f.join("folder-noimages/a")).unwrap();
    std::fs::create_dir_all(f.join("folder-noimages/b")).unwrap();
    w("folder-noimages/a/readme.txt", b"x");
    std::fs::create_dir(f.join("folder-empty")).unwrap();
    image_folder(&f.join("folder-fifo"), 4, 8);
    mkfifo(&f.join("folder-fifo/a/pipe.png"));
    image_folder(&f.join("folder-socket"), 4, 8);
    listeners.push(std::os::unix::net::UnixListener::bind(f.join("folder-socket/b/sock.png")).unwrap());
    image_folder(&f.join("folder-fifoclass"), 4, 8);
    mkfifo(&f.join("folder-fifoclass/c"));
    image_folder(&f.join("folder-nonutf8"), 4, 8);
    std::fs::copy(
        f.join("ok.png"),
        f.join("folder-nonutf8/a")
            .join(std::ffi::OsStr::from_bytes(b"bad-\xff.png")),
    )
    .unwrap();
    image_folder(&f.join("folder-devnull"), 4, 8);
    symlink("/dev/null", f.join("folder-devnull/a/null.png")).unwrap();
    // Cycles: a/loop -> the root, b/self -> b; both left out, 8 images in all.
    image_folder(&f.join("folder-cycle"), 4, 8);
    symlink("..", f.join("folder-cycle/a/loop")).unwrap();
    symlink("../b", f.join("folder-cycle/b/self")).unwrap();
    // Links out of the root (to a file and to a folder of images): left out, 8 images in all.
    image_folder(&f.join("folder-escape"), 4, 8);
    symlink(f.join("ok.png"), f.join("folder-escape/a/outside.png")).unwrap();
    symlink(f.join("folder-ok/a"), f.join("folder-escape/b/elsewhere")).unwrap();
    image_folder(&f.join("folder-dangling"), 4, 8);
    symlink("missing.png", f.join("folder-dangling/a/gone.png")).unwrap();
    image_folder(&f.join("folder-selfloop"), 4, 8);
    symlink("me.png", f.join("folder-selfloop/a/me.png")).unwrap();

    // Runs trained by the CLI: digits (a checkpoint with its run record) and an image folder.
    cli(f, "train --epochs 1 --limit 64 --out run --quiet --device cpu");
    cli(
        f,
        "train --dataset image-folder --data-dir folder-ok --model digits-cnn --epochs 1 --val-split 0.25 \
         --out imgrun --quiet --device cpu",
    );

    // Model files, good and bad.
    let good = std::fs::read(f.join("run/best.tlm")).unwrap();
    w("good.tlm", &good);
    w("empty.tlm", b"");
    w("truncated.tlm", &good[..good.len() / 2]);
    w("short-by-one.tlm", &good[..good.len() - 1]);
    let mut magic = good.clone();
    magic[..8].copy_from_slice(b"PYTORCH!");
    w("wrong-magic.tlm", &magic);
    let mut flipped = good.clone();
    let mid = good.len() - 200;
    flipped[mid] ^= 0x10;
    w("flipped-data.tlm", &flipped);
    let mut flipped = good.clone();
    flipped[30] ^= 0x01;
    w("flipped-header.tlm", &flipped);
    // The header one byte shorter than its records, with a valid CRC.
    let mut short = good.clone();
    short[12] -= 1;
    w("header-length-crc-ok.tlm", &recrc(short));
    let mut version = good.clone();
    version[8..10].copy_from_slice(&2u16.to_le_bytes());
    w("version-2.tlm", &recrc(version));
    let mut length = good.clone();
    length[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    w("huge-data-length.tlm", &recrc(length));
    w(
        "garbage.tlm",
        &(0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    );
    w("text.tlm", b"{\"model\": \"digits-cnn\"}\n");
    w("png.tlm", &ok);
    let model = Model::load(&f.join("good.tlm")).unwrap();
    model.save_state_dict(&f.join("state-dict.tlm")).unwrap();
    model.save(&f.join("plain.tlm")).unwrap();
    let mut nan = model.clone();
    nan.params[5] = f32::NAN;
    w("nan.tlm", &nan.to_bytes().unwrap());
    let mut inf = model.clone();
    inf.params[0] = f32::INFINITY;
    w("inf.tlm", &inf.to_bytes().unwrap());
    let mut bad_record = model.clone();
    bad_record.run = Some("this is not a run record".into());
    w("bad-run-record.tlm", &bad_record.to_bytes().unwrap());
    let mut ckpt = Checkpoint::load(&f.join("run/last.tlm")).unwrap();
    ckpt.model.params[7] = f32::NAN;
    w("nan-checkpoint.tlm", &ckpt.to_bytes().unwrap());
    let mut ckpt = Checkpoint::load(&f.join("run/last.tlm")).unwrap();
    ckpt.model.run = Some("{\"model\": 3}".into());
    w("bad-record-checkpoint.tlm", &ckpt.to_bytes().unwrap());
    // Activations of 4e10 floats (160 GB) at batch 1, and of 4e12 (16 TB).
    w("huge-arena.tlm", &huge_activations(200_000));
    w("absurd-arena.tlm", &huge_activations(2_000_000));
    // A Linear whose header claims 4e9 inputs (and its weight 4e10 floats): the data does not
    // hold them, and nothing may be allocated for them before that is found.
    let layers: &'static [torchlet::layer::Layer] = Box::leak(Box::new([flatten(), linear(64, 10).named("fc")]));
    let small = Model::new("lin", layers, Shape::chw(1, 8, 8), &[], 0).unwrap();
    let huge_in = varint(4_000_000_000);
    let mut weight_shape = b"\x09fc.weight\x00\x00\x02\x0a".to_vec();
    weight_shape.extend_from_slice(&huge_in);
    let mut lin = b"\x02fc\x00\x10".to_vec();
    lin.extend_from_slice(&huge_in);
    let mut input = b"\x03lin\x01".to_vec();
    input.extend_from_slice(&huge_in);
    w(
        "huge-linear.tlm",
        &patch_header(
            &small.to_bytes().unwrap(),
            &[
                (b"\x03lin\x03\x01\x08\x08".to_vec(), input),
                (b"\x02fc\x00\x10\x40".to_vec(), lin),
                (b"\x09fc.weight\x00\x00\x02\x0a\x40".to_vec(), weight_shape),
            ],
        ),
    );
    // A Linear whose header claims 2^58 outputs: 64 · 2^58 weights overflow a 64-bit count.
    let mut out = b"\x02fc\x00\x10\x40".to_vec();
    out.extend_from_slice(&varint(1 << 58));
    w(
        "overflow-linear.tlm",
        &patch_header(&small.to_bytes().unwrap(), &[(b"\x02fc\x00\x10\x40\x0a".to_vec(), out)]),
    );
    // A picture of 2^33 × 2^33 pixels: the input's element count overflows a 64-bit count.
    let huge = huge_activations(200_000);
    let side = varint(200_000);
    let mut dims = vec![0x03, 0x01];
    dims.extend_from_slice(&side);
    dims.extend_from_slice(&side);
    let mut bigger = vec![0x03, 0x01];
    bigger.extend_from_slice(&varint(1 << 33));
    bigger.extend_from_slice(&varint(1 << 33));
    w("overflow-input.tlm", &patch_header(&huge, &[(dims, bigger)]));
    Fixtures {
        dir,
        _listeners: listeners,
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

/// Files that are not regular files, as given to a command that reads a model.
const NON_REGULAR: [&str; 5] = [
    "{F}/fifo.tlm",
    "{F}/socket.tlm",
    "/dev/null",
    "/dev/zero",
    "{F}/dir.tlm",
];

/// Model files that are not valid model files.
const CORRUPT: [&str; 12] = [
    "{F}/empty.tlm",
    "{F}/truncated.tlm",
    "{F}/short-by-one.tlm",
    "{F}/wrong-magic.tlm",
    "{F}/flipped-data.tlm",
    "{F}/flipped-header.tlm",
    "{F}/header-length-crc-ok.tlm",
    "{F}/version-2.tlm",
    "{F}/huge-data-length.tlm",
    "{F}/garbage.tlm",
    "{F}/text.tlm",
    "{F}/png.tlm",
];

/// A few of [`CORRUPT`], for the commands that read models through the same loader.
const SOME_CORRUPT: [&str; 5] = [
    "{F}/empty.tlm",
    "{F}/truncated.tlm",
    "{F}/wrong-magic.tlm",
    "{F}/flipped-data.tlm",
    "{F}/version-2.tlm",
];

/// Model files that are valid but need absurd memory or claim absurd sizes.
const ABSURD_MODELS: [&str; 5] = [
    "{F}/huge-arena.tlm",
    "{F}/absurd-arena.tlm",
    "{F}/huge-linear.tlm",
    "{F}/overflow-linear.tlm",
    "{F}/overflow-input.tlm",
];

/// A digits run of one quick epoch into `{C}/out`.
const TRAIN: &str = "--epochs 1 --limit 64 --quiet --device cpu --out {C}/out";

/// [`TRAIN`] with `flag value` in place of its own value of `flag`, if it has one.
fn train_with(flag: &str, value: &str) -> String {
    let mut args: Vec<&str> = TRAIN.split_whitespace().collect();
    if let Some(i) = args.iter().position(|a| *a == flag) {
        args.drain(i..i + 2);
    }
    format!("{} {flag} {value}", args.join(" "))
}
/// Continues the fixtures' digits run (copied to `{C}/run`) for a second epoch.
const RESUME: &str = "--resume {C}/run/last.tlm --out {C}/run --epochs 2 --quiet --device cpu";

/// Whether `emulate` gets as far as reading its model here (QEMU and the firmware's target are
/// checked first).
fn emulate_reads_models() -> bool {
    let qemu = Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_or(true, |o| {
            !o.status.success() || String::from_utf8_lossy(&o.stdout).contains("thumbv7em-none-eabihf")
        });
    qemu && target
}

fn cases() -> Vec<Case> {
    use Class::*;
    let mut v = Vec::new();

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
    v
}

// ---------------------------------------------------------------------------------------------
// Running the corpus.

/// One case's result.
struct Ran {
    cmd: &'static str,
    class: Class,
    verdict: Verdict,
    line: String,
    why: String,
    outcome: Outcome,
}

/// Runs `case` in `dir` (its own empty folder) and classifies the outcome.
fn run_case(case: &Case, dir: &Path, f: &Path) -> Ran {
    std::fs::create_dir_all(dir).unwrap();
    if let Some(setup) = &case.setup {
        setup(dir, f);
    }
    let fill = |s: &str| {
        s.replace("{F}", &f.to_string_lossy())
            .replace("{C}", &dir.to_string_lossy())
    };
    let args: Vec<String> = case.args.split_whitespace().map(fill).collect();
    let (before, fixtures_before) = (snapshot(dir), snapshot(f));
    let outcome = run(dir, &args);
    let mut changed = changes(&before, &snapshot(dir), &case.may_write);
    changed.extend(
        changes(&fixtures_before, &snapshot(f), &[])
            .into_iter()
            .map(|c| format!("{c} (in the fixtures)")),
    );
    let err = &outcome.stderr;
    let aborted = ["panicked", "memory allocation of", "RUST_BACKTRACE", "stack overflow"]
        .iter()
        .find(|w| err.contains(*w) || outcome.stdout.contains(*w));
    let (verdict, why) = if outcome.timed_out {
        (Verdict::Hang, format!("still running after {LIMIT:?}"))
    } else if outcome.code.is_none() {
        (Verdict::Abort, "ended by a signal".to_string())
    } else if let Some(w) = aborted {
        (Verdict::Abort, format!("printed {w:?}"))
    } else if !changed.is_empty() {
        (Verdict::SilentWrong, changed.join("; "))
    } else {
        let code = outcome.code.unwrap();
        let checked = || match &case.check {
            Some(check) => check(dir, &outcome),
            None => Ok(()),
        };
        match &case.expect {
            Expect::Reject(_) if code == 0 => (Verdict::SilentWrong, "exit status 0 for a bad input".to_string()),
            Expect::Reject(_) if code != 1 && code != 2 => (Verdict::SilentWrong, format!("exit status {code}")),
            Expect::Reject(names) => {
                // `a|b`: either will do.
                let missing: Vec<String> = names
                    .iter()
                    .map(|n| fill(n))
                    .filter(|n| !n.split('|').any(|alt| err.contains(alt)))
                    .collect();
                if !missing.is_empty() {
                    (Verdict::SilentWrong, format!("the message does not name {missing:?}"))
                } else if let Err(e) = checked() {
                    (Verdict::SilentWrong, e)
                } else {
                    (Verdict::Rejected, String::new())
                }
            }
            Expect::Accept if code != 0 => (Verdict::WronglyRefused, format!("exit status {code}")),
            Expect::Accept => match checked() {
                Ok(()) => (Verdict::Accepted, String::new()),
                Err(e) => (Verdict::SilentWrong, e),
            },
        }
    };
    Ran {
        cmd: case.cmd,
        class: case.class,
        verdict,
        line: format!("torchlet {}", args.join(" ")),
        why,
        outcome,
    }
}

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

/// Counts per row label and verdict, as a table.
fn table(title: &str, rows: &BTreeMap<&str, [usize; 6]>) -> String {
    let mut s = format!("{title:<22}");
    for v in VERDICTS {
        s += &format!(" {:>15}", v.name());
    }
    s += &format!(" {:>7}\n", "total");
    for (label, counts) in rows {
        s += &format!("{label:<22}");
        for c in counts {
            s += &format!(" {c:>15}");
        }
        s += &format!(" {:>7}\n", counts.iter().sum::<usize>());
    }
    s
}

#[test]
fn every_bad_input_is_refused_cleanly_and_every_odd_one_works() {
    let start = Instant::now();
    let fx = fixtures();
    let f = fx.dir.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let cases = cases();
    let setup_secs = start.elapsed().as_secs_f64();
    let results: Vec<Ran> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| run_case(c, &work.path().join(format!("case-{i:03}")), &f))
        .collect();

    let mut by_class: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
    let mut by_cmd: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
    let mut classes: Vec<Class> = results.iter().map(|r| r.class).collect();
    classes.sort();
    for r in &results {
        let i = VERDICTS.iter().position(|v| *v == r.verdict).unwrap();
        by_class.entry(r.class.name()).or_default()[i] += 1;
        by_cmd.entry(r.cmd).or_default()[i] += 1;
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let slowest = results
        .iter()
        .max_by(|a, b| a.outcome.secs.total_cmp(&b.outcome.secs))
        .unwrap();
    println!("\nbad-input corpus: {} cases\n", results.len());
    println!("{}", table("class", &by_class));
    println!("{}", table("command", &by_cmd));
    println!(
        "inputs tried: {}, rejected with a clear message: {}, accepted: {}, aborts: {}, hangs: {}, silent wrong \
         results: {}, valid inputs refused: {}",
        results.len(),
        count(Verdict::Rejected),
        count(Verdict::Accepted),
        count(Verdict::Abort),
        count(Verdict::Hang),
        count(Verdict::SilentWrong),
        count(Verdict::WronglyRefused),
    );
    println!(
        "fixtures {setup_secs:.1} s, all {:.1} s; slowest case {:.1} s: {}",
        start.elapsed().as_secs_f64(),
        slowest.outcome.secs,
        slowest.line
    );
    // TORCHLET_CORPUS_VERBOSE=1 lists every case with the last line of its stderr.
    if std::env::var_os("TORCHLET_CORPUS_VERBOSE").is_some() {
        for r in &results {
            let last = r.outcome.stderr.trim().lines().last().unwrap_or("");
            println!(
                "[{}] {}
    {}",
                r.verdict.name(),
                r.line,
                tail(last, 300)
            );
        }
    }
    let failed: Vec<&Ran> = results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Rejected | Verdict::Accepted))
        .collect();
    for r in &failed {
        println!(
            "\n[{}] {} ({}): {}\n  {}\n  exit status {:?}, {:.1} s\n  stderr: {}\n  stdout: {}",
            r.verdict.name(),
            r.cmd,
            r.class.name(),
            r.why,
            r.line,
            r.outcome.code,
            r.outcome.secs,
            tail(r.outcome.stderr.trim(), 600).replace('\n', "\n    "),
            tail(r.outcome.stdout.trim(), 300).replace('\n', "\n    "),
        );
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed (listed above)",
        failed.len(),
        results.len()
    );
}
