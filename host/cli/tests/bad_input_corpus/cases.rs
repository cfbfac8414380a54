//! The corpus: every case, one function per class of input.

use super::*;

/// Files that are not regular files, as given to a command that reads a model.
pub(crate) const NON_REGULAR: [&str; 5] = [
    "{F}/fifo.tlm",
    "{F}/socket.tlm",
    "/dev/null",
    "/dev/zero",
    "{F}/dir.tlm",
];

/// Model files that are not valid model files.
pub(crate) const CORRUPT: [&str; 12] = [
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
pub(crate) const SOME_CORRUPT: [&str; 5] = [
    "{F}/empty.tlm",
    "{F}/truncated.tlm",
    "{F}/wrong-magic.tlm",
    "{F}/flipped-data.tlm",
    "{F}/version-2.tlm",
];

/// Model files that are valid but need absurd memory or claim absurd sizes.
pub(crate) const ABSURD_MODELS: [&str; 5] = [
    "{F}/huge-arena.tlm",
    "{F}/absurd-arena.tlm",
    "{F}/huge-linear.tlm",
    "{F}/overflow-linear.tlm",
    "{F}/overflow-input.tlm",
];

/// A digits run of one quick epoch into `{C}/out`.
pub(crate) const TRAIN: &str = "--epochs 1 --limit 64 --quiet --device cpu --out {C}/out";

/// [`TRAIN`] with `flag value` in place of its own value of `flag`, if it has one.
pub(crate) fn train_with(flag: &str, value: &str) -> String {
    let mut args: Vec<&str> = TRAIN.split_whitespace().collect();
    if let Some(i) = args.iter().position(|a| *a == flag) {
        args.drain(i..i + 2);
    }
    format!("{} {flag} {value}", args.join(" "))
}
/// Continues the fixtures' digits run (copied to `{C}/run`) for a second epoch.
pub(crate) const RESUME: &str = "--resume {C}/run/last.tlm --out {C}/run --epochs 2 --quiet --device cpu";

/// Whether `emulate` gets as far as reading its model here (QEMU and the firmware's target are
/// checked first).
pub(crate) fn emulate_reads_models() -> bool {
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

/// Every case of the corpus, by class.
pub(crate) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    inputs::non_regular_files(&mut v);
    inputs::symbolic_links(&mut v);
    inputs::absurd_sizes(&mut v);
    inputs::corrupt_models(&mut v);
    runs::second_runs(&mut v);
    runs::contradicting_resumes(&mut v);
    runs::divergence(&mut v);
    runs::bad_flag_values(&mut v);
    inputs::damaged_data_sets(&mut v);
    runs::emulate_models(&mut v);
    v
}
