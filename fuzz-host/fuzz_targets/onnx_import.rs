//! Fuzzes the ONNX reader: whatever the bytes, `import_onnx` returns `Ok` or `Err` and never
//! panics, and what it returns runs. Seeds: PyTorch and torchlet exports
//! (`fuzz/corpus/onnx_import/`); run with `tools/fuzz-onnx-import.sh`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use torchlet_host::onnx::{import_onnx, ImportOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = import_onnx(data, Path::new("fuzz.onnx"), &ImportOptions::default()) {
        if model.input.numel() <= 1 << 16 {
            let _ = model.forward(&vec![0.5; model.input.numel()]);
        }
    }
});
