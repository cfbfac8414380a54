//! Fuzzes the model-file reader: whatever the bytes, `ModelFile::parse` and everything after a
//! successful parse (layers, plan, check against the plan, tensor views) return `Ok` or `Err`
//! and never panic.
//!
//! Each input is tried twice: as it is (the fixed header and CRC checks), and with its CRC
//! repaired (almost no mutation keeps a CRC valid, so without this the records behind it would
//! never be reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use torchlet::layer::{identity, Layer};
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
    // Plans hold `&'static` layers: leak the bytes and the layer storage for this input,
    // and free them at the end, after everything borrowing them is gone.
    let bytes: *mut [u8] = Box::into_raw(data.to_vec().into_boxed_slice());
    // SAFETY: `bytes` is freed only at the end of this function, after its last use.
    let file = match ModelFile::parse(unsafe { &*bytes }) {
        Ok(f) => f,
        Err(_) => {
            // SAFETY: nothing borrows from `bytes` any more.
            unsafe { drop(Box::from_raw(bytes)) };
            return;
        }
    };
    let _ = file.class_names().count();
    for t in file.tensors() {
        let _ = t.as_f32();
    }
    let _ = (file.params(), file.state(), file.optimizer_state(), file.train_state());
    let mut p = vec![0.0; file.param_len()];
    file.copy_params_into(&mut p).unwrap();
    if !file.is_state_dict() && file.layer_count() <= 4096 {
        let storage: *mut [Layer] = Box::into_raw(vec![identity(); file.layer_count()].into_boxed_slice());
        // SAFETY: as for `bytes`: the plan and layers borrowing it are dropped before it is freed.
        if let Ok(plan) = file.plan::<32>(unsafe { &mut *storage }, 2, Mode::Inference) {
            file.check_plan(&plan).expect("a plan made from the file fits the file");
            assert_eq!(
                file.params().map(|p| p.len()).unwrap_or(plan.param_len()),
                plan.param_len()
            );
        }
        // SAFETY: the plan and the layers (which borrowed `storage`) are gone.
        unsafe { drop(Box::from_raw(storage)) };
    }
    // SAFETY: `file` and everything borrowed from it are no longer used.
    unsafe { drop(Box::from_raw(bytes)) };
}
