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

mod cases;
mod fixtures;
mod inputs;
mod runs;

use cases::*;
use fixtures::fixtures;

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
