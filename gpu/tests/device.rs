//! `--device cpu|gpu|auto`: parsing, and `auto` never choosing a software adapter.

mod common;

use torchlet_gpu::{Device, Error, Preference, Resolved, Selection};

#[test]
fn device_flag_parses_and_names_bad_values() {
    assert_eq!("cpu".parse::<Selection>().unwrap(), Selection::Cpu);
    assert_eq!("gpu".parse::<Selection>().unwrap(), Selection::Gpu);
    assert_eq!("auto".parse::<Selection>().unwrap(), Selection::Auto);
    let e = "cuda".parse::<Selection>().unwrap_err();
    assert_eq!(e.to_string(), "--device: expected cpu, gpu or auto, found \"cuda\"");
    match Selection::Cpu.resolve().unwrap() {
        Resolved::Cpu { reason } => assert_eq!(reason, "--device cpu"),
        Resolved::Gpu(d) => panic!("--device cpu opened {}", d.adapter()),
    }
}

#[test]
fn auto_takes_only_hardware_and_falls_back_to_the_cpu() {
    match Device::new(Preference::Hardware) {
        Ok(d) => assert!(!d.adapter().software, "auto chose a software adapter: {}", d.adapter()),
        Err(Error::NoAdapter { found, .. }) => {
            // No hardware GPU (as on CI's lavapipe machines): auto falls back with a reason.
            match Selection::Auto.resolve().unwrap() {
                Resolved::Cpu { reason } => {
                    assert!(reason.contains("no hardware GPU"), "{reason}");
                    assert!(reason.contains(&found), "{reason}");
                }
                Resolved::Gpu(d) => panic!("auto opened {} after finding no hardware GPU", d.adapter()),
            }
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn gpu_takes_any_adapter_and_reports_it() {
    let Some(dev) = common::device() else { return };
    let a = dev.adapter();
    assert!(!a.name.is_empty());
    let shown = a.to_string();
    assert!(shown.contains(&a.name) && shown.contains(&a.backend), "{shown}");
    println!("adapter: {shown}");
}
