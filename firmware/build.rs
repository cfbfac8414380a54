//! Puts memory.x on the linker path and links cortex-m-rt's script, for thumb targets only.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    if std::env::var("TARGET").unwrap_or_default().starts_with("thumb") {
        println!("cargo:rustc-link-arg=-Tlink.x");
    }
}
