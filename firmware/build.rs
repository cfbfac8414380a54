//! Puts the board's memory layout (`memory/<board>.x`, picked by a `board-*` feature) on the
//! linker path as `memory.x`, and links cortex-m-rt's script (and defmt's), for thumb targets only.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = if env::var_os("CARGO_FEATURE_BOARD_STM32F405").is_some() {
        "stm32f405"
    } else {
        "mps2-an386"
    };
    let src = format!("memory/{board}.x");
    fs::copy(&src, out.join("memory.x")).unwrap_or_else(|e| panic!("{src}: {e}"));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    if env::var("TARGET").unwrap_or_default().starts_with("thumb") {
        println!("cargo:rustc-link-arg=-Tlink.x");
        if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
            println!("cargo:rustc-link-arg=-Tdefmt.x");
        }
    }
}
