//! Fuzzes the model-file reader: whatever the bytes, `ModelFile::parse` and everything after a
//! successful parse (layers, plan, check against the plan, tensor views) return `Ok` or `Err`
//! and never panic.
//!
//! Each input is tried twice: as it is (the fixed header and CRC checks), and with its CRC
//! repaired (almost no mutation keeps a CRC valid, so without this the records behind it would
//! never be reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use torchlet::layer::identity;
use torchlet::model_file::{crc32, ModelFile};
use torchlet::plan::Mode;

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if data.len() >= 28 {
        let mut fixed = data.to_vec();
        let n = fixed.len() - 4;
        let crc = crc32(&fixed[..n]);
        fixed[n..].copy_from_slice(&crc.to_le_bytes());
        exercise(&fixed);
    }
});

fn exercise(data: &[u8]) {
    // A copy, so that the file starts where an allocation does (aligned, as a file read into
    // memory or placed in flash would be).
    let bytes = data.to_vec();
    let Ok(file) = ModelFile::parse(&bytes) else {
        return;
    };
    let _ = file.class_names().count();
    for t in file.tensors() {
        let _ = t.as_f32();
    }
    let _ = (file.params(), file.state(), file.optimizer_state(), file.train_state());
    let mut p = vec![0.0; file.param_len()];
    file.copy_params_into(&mut p).unwrap();
    if !file.is_state_dict() && file.layer_count() <= 4096 {
        // The rebuilt layers borrow this storage and `data`; the plan borrows the layers.
        let mut storage = vec![identity(); file.layer_count()];
        if let Ok(plan) = file.plan::<32>(&mut storage, 2, Mode::Inference) {
            file.check_plan(&plan).expect("a plan made from the file fits the file");
            assert_eq!(
                file.params().map(|p| p.len()).unwrap_or(plan.param_len()),
                plan.param_len()
            );
        }
    }
}
