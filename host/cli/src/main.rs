//! The `torchlet` command line; see [`torchlet_host::cli`].

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use torchlet_host::cli::{run, Cli};

fn main() -> ExitCode {
    quiet_headless_wayland_probe();
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        // `torchlet inspect ... | head` closes the pipe early: not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = out.flush();
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Listing GPU adapters (`--device auto`, the default) loads Mesa's drivers where they are
/// installed, and they ask libwayland for a display; without `XDG_RUNTIME_DIR` (a headless
/// machine, CI, a container) libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set in
/// the environment." twice, which reads like a failure of ours. Any absolute path silences the
/// check, and no Wayland socket lives in the temporary folder, so the probe still finds no
/// display. Runs first in `main`, before any other thread exists, and only when the variable
/// is unset.
fn quiet_headless_wayland_probe() {
    if cfg!(target_os = "linux") && std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}
