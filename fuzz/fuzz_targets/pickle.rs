//! Fuzzes the restricted pickle reader of `torchlet import` (`host/cli/src/pytorch/pickle.rs`,
//! compiled here by itself: it depends on `std` alone): whatever the bytes, `pickle::load`
//! returns `Ok` or `Err` and never panics, overflows the stack or allocates without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../host/cli/src/pytorch/pickle.rs"]
mod pickle;

fuzz_target!(|data: &[u8]| {
    if let Ok(pickle::Value::Dict(d)) = pickle::load(data) {
        // What pth.rs does next: a state dict's keys and tensor views.
        for (k, v) in d.items() {
            let _ = k.kind();
            if let pickle::Value::Tensor(t) = v {
                assert_eq!(t.size.len(), t.stride.len());
                let _ = t.storage.numel.checked_mul(t.storage.dtype.size());
            }
        }
    }
});
