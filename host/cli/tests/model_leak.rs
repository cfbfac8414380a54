//! Loading a model many times does not grow the heap. In a test binary of its own: the
//! resident set it measures would count other tests' allocations in a shared process.

use std::path::Path;

use torchlet_host::model::Model;

#[test]
fn loading_a_model_many_times_does_not_grow_the_heap() {
    // Before plans borrowed their layers, every load leaked the file's bytes and layers:
    // 10,000 loads of this 25 KB file leaked 250 MB. The resident set must not grow by a
    // fifth of that.
    let bytes = Model::from_zoo("digits-cnn", 3).unwrap().to_bytes().unwrap();
    let resident = || -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
    };
    let load = || drop(Model::from_bytes(bytes.clone(), Path::new("mem.tlm")).unwrap());
    (0..1000).for_each(|_| load());
    let Some(before) = resident() else {
        eprintln!("skipped: no /proc/self/statm on this system");
        return;
    };
    (0..10_000).for_each(|_| load());
    let after = resident().unwrap_or(before);
    let leaked = 10_000 * bytes.len() as u64;
    assert!(
        after.saturating_sub(before) < leaked / 5,
        "resident set grew by {} bytes over 10,000 loads",
        after - before
    );
}
