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

/// A device lost mid-run (here on purpose, as a driver reset would) turns every later call
/// into `Error::DeviceLost`, without a panic, and a new device works again.
#[test]
fn a_lost_device_is_an_error_on_every_later_call() {
    use torchlet::layer::{flatten, linear, relu, Layer};
    use torchlet::loss::CrossEntropyLoss;
    use torchlet::optim::Sgd;
    use torchlet::{Mode, Plan, Shape};
    use torchlet_gpu::GpuNetwork;

    let Some(dev) = common::device() else { return };
    static LAYERS: [Layer; 4] = [flatten(), linear(8, 6), relu(), linear(6, 3)];
    let plan: Plan<4> = Plan::try_new(&LAYERS, Shape::chw(1, 2, 4), 2, Mode::Training).unwrap();
    let params: Vec<f32> = (0..plan.param_len()).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
    let mut net = GpuNetwork::new(&dev, &plan, &params).unwrap();
    let (img, labels) = (vec![0.5; 16], [0u32, 2]);
    let (loss, mut sgd) = (CrossEntropyLoss::new(), Sgd::new(0.1));
    net.train_step(&img, &labels, &loss, &mut sgd).unwrap();
    assert!(!dev.is_lost());

    dev.simulate_loss("test");
    assert!(dev.is_lost());
    let lost = |r: Result<(), Error>, what: &str| match r {
        Err(Error::DeviceLost { message }) => assert!(message.contains("simulated: test"), "{what}: {message}"),
        other => panic!("{what} after the loss: {other:?}"),
    };
    lost(net.train_step(&img, &labels, &loss, &mut sgd).map(|_| ()), "train_step");
    lost(net.params().map(|_| ()), "params");
    lost(net.forward(&img).map(|_| ()), "forward");
    lost(GpuNetwork::new(&dev, &plan, &params).map(|_| ()), "GpuNetwork::new");
    let e = net.params().unwrap_err().to_string();
    assert!(e.starts_with("the GPU device was lost"), "{e}");

    // The loss belongs to that device only.
    let fresh = common::device().unwrap();
    let mut again = GpuNetwork::new(&fresh, &plan, &params).unwrap();
    again.train_step(&img, &labels, &loss, &mut sgd).unwrap();
}
