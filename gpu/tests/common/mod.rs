//! Shared by the GPU tests: opening the test device (or skipping when there is none) and
//! comparing GPU results with the CPU's.

#![allow(dead_code)]

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use torchlet::Rng;
use torchlet_gpu::{Device, Error, Preference};

/// Random configurations each op test draws (lavapipe runs a few GFLOP/s: keep them small).
pub const CASES: u32 = 12;

/// Runs `test` on [`CASES`] values of `strategy` (shrinking a failure) and panics with the
/// minimal failing input; no regression files, CI pins `PROPTEST_RNG_SEED` instead.
pub fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), String>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |v| test(v).map_err(TestCaseError::fail)) {
        panic!("{e}");
    }
}

/// A GPU error as a test failure message.
pub fn gpu_err(e: Error) -> String {
    format!("GPU error: {e}")
}

/// Relative tolerance of every GPU-vs-CPU comparison (issue 8: 1e-4 relative).
pub const RTOL: f32 = 1e-4;

/// The device the tests run on: any adapter, Mesa's lavapipe on a machine without a GPU.
///
/// Without an adapter the test prints why it is skipped and returns `None`, unless
/// `TORCHLET_REQUIRE_GPU=1` is set (CI, where lavapipe is installed), which makes that a failure.
pub fn device() -> Option<Device> {
    match Device::new(Preference::Any) {
        Ok(d) => Some(d),
        Err(e @ Error::NoAdapter { .. }) => {
            if std::env::var("TORCHLET_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("TORCHLET_REQUIRE_GPU=1 but {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
        Err(e) => panic!("opening the GPU device failed: {e}"),
    }
}

/// `len` floats uniform in `[-1, 1)` from `seed`.
pub fn floats(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Checks `|gpu - cpu| <= RTOL * |cpu| + atol` element by element, where the absolute part is
/// `1e-5` times the largest magnitude in `cpu` (at least 1e-6): sums of terms of both signs
/// can land near zero, where only an absolute tolerance makes sense.
pub fn check_close(what: &str, gpu: &[f32], cpu: &[f32]) -> Result<(), String> {
    if gpu.len() != cpu.len() {
        return Err(format!("{what}: GPU gave {} values, CPU {}", gpu.len(), cpu.len()));
    }
    let scale = cpu.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, v| m.max(v.abs()));
    let atol = (1e-5 * scale).max(1e-6);
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        // Equal values pass, infinities included (an empty max-pooling window gives -inf).
        let ok = g == c || (g - c).abs() <= RTOL * c.abs() + atol;
        if !ok {
            return Err(format!(
                "{what}[{i}]: GPU {g} vs CPU {c} (diff {:e}, tolerance {:e})",
                (g - c).abs(),
                RTOL * c.abs() + atol
            ));
        }
    }
    Ok(())
}

/// [`check_close`] that panics with the message.
pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f32]) {
    if let Err(m) = check_close(what, gpu, cpu) {
        panic!("{m}");
    }
}
