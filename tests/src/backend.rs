//! The backends one test body runs on: the core's portable kernels ([`Cpu`]) and the wgpu
//! shaders ([`Gpu`], on lavapipe where there is no GPU), behind one [`Backend`] trait.
//!
//! A test body is written once against `&dyn Backend` and checked against a naive reference;
//! [`crate::test_device!`] instantiates it as one `#[test]` per backend, as candle's
//! `test_device!` does. Each method has the signature of the core kernel of the same name, with
//! scratch allocated inside and argmax indices as plain `u32`s; gradients accumulate (`+=`).

use torchlet::ops::conv::{conv_backward_input, conv_backward_weight, conv_forward, conv_workspace_len};
use torchlet::ops::conv_transpose::{
    conv_transpose_backward_input, conv_transpose_backward_weight, conv_transpose_forward, conv_transpose_workspace_len,
};
use torchlet::ops::geom::{ConvGeom, PaddingMode, PoolGeom};
use torchlet::ops::pool::{
    adaptive_avg_pool_backward_input, adaptive_avg_pool_forward, adaptive_max_pool_backward_input,
    adaptive_max_pool_forward, avg_pool_backward_input, avg_pool_forward, decode_index, encode_index,
    max_pool_backward_input, max_pool_forward, AdaptiveGeom,
};
use torchlet_gpu::{ops as gpu, Device, Error, Preference};

/// What a backend failed with, as a test failure message.
pub type Outcome = Result<(), String>;

/// The kernels of the conv and pool families on one backend. Shapes as the core's kernels.
#[allow(missing_docs)]
pub trait Backend {
    /// `"cpu"` or `"gpu"`, for messages.
    fn name(&self) -> &'static str;
    /// How many random cases a property test draws on this backend.
    fn cases(&self) -> u32;
    fn conv_forward(&self, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Outcome;
    fn conv_backward_input(&self, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Outcome;
    fn conv_backward_weight(&self, g: &ConvGeom, x: &[f32], gy: &[f32], gw: &mut [f32], gb: &mut [f32]) -> Outcome;
    fn conv_transpose_forward(&self, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Outcome;
    fn conv_transpose_backward_input(&self, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Outcome;
    fn conv_transpose_backward_weight(
        &self,
        g: &ConvGeom,
        x: &[f32],
        gy: &[f32],
        gw: &mut [f32],
        gb: &mut [f32],
    ) -> Outcome;
    fn max_pool_forward(&self, g: &PoolGeom, x: &[f32], y: &mut [f32], idx: &mut [u32]) -> Outcome;
    fn max_pool_backward_input(&self, g: &PoolGeom, idx: &[u32], gy: &[f32], gx: &mut [f32]) -> Outcome;
    fn avg_pool_forward(&self, g: &PoolGeom, x: &[f32], y: &mut [f32]) -> Outcome;
    fn avg_pool_backward_input(&self, g: &PoolGeom, gy: &[f32], gx: &mut [f32]) -> Outcome;
    fn adaptive_avg_pool_forward(&self, n: usize, g: &AdaptiveGeom, x: &[f32], y: &mut [f32]) -> Outcome;
    fn adaptive_avg_pool_backward_input(&self, n: usize, g: &AdaptiveGeom, gy: &[f32], gx: &mut [f32]) -> Outcome;
    fn adaptive_max_pool_forward(
        &self,
        n: usize,
        g: &AdaptiveGeom,
        x: &[f32],
        y: &mut [f32],
        idx: &mut [u32],
    ) -> Outcome;
    fn adaptive_max_pool_backward_input(
        &self,
        n: usize,
        g: &AdaptiveGeom,
        idx: &[u32],
        gy: &[f32],
        gx: &mut [f32],
    ) -> Outcome;
}

/// The core's portable kernels.
pub struct Cpu;

fn encode(idx: &[u32]) -> Vec<f32> {
    idx.iter().map(|&i| encode_index(i as usize)).collect()
}

fn decode_into(enc: &[f32], idx: &mut [u32]) {
    for (i, &e) in idx.iter_mut().zip(enc) {
        *i = decode_index(e) as u32;
    }
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn cases(&self) -> u32 {
        48
    }
    fn conv_forward(&self, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Outcome {
        conv_forward(g, x, w, b, y, &mut vec![0.0; conv_workspace_len(g)]);
        Ok(())
    }
    fn conv_backward_input(&self, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Outcome {
        conv_backward_input(g, w, gy, gx, &mut vec![0.0; conv_workspace_len(g)]);
        Ok(())
    }
    fn conv_backward_weight(&self, g: &ConvGeom, x: &[f32], gy: &[f32], gw: &mut [f32], gb: &mut [f32]) -> Outcome {
        conv_backward_weight(g, x, gy, gw, gb, &mut vec![0.0; conv_workspace_len(g)]);
        Ok(())
    }
    fn conv_transpose_forward(&self, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Outcome {
        conv_transpose_forward(g, x, w, b, y, &mut vec![0.0; conv_transpose_workspace_len(g)]);
        Ok(())
    }
    fn conv_transpose_backward_input(&self, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Outcome {
        conv_transpose_backward_input(g, w, gy, gx, &mut vec![0.0; conv_transpose_workspace_len(g)]);
        Ok(())
    }
    fn conv_transpose_backward_weight(
        &self,
        g: &ConvGeom,
        x: &[f32],
        gy: &[f32],
        gw: &mut [f32],
        gb: &mut [f32],
    ) -> Outcome {
        conv_transpose_backward_weight(g, x, gy, gw, gb, &mut vec![0.0; conv_transpose_workspace_len(g)]);
        Ok(())
    }
    fn max_pool_forward(&self, g: &PoolGeom, x: &[f32], y: &mut [f32], idx: &mut [u32]) -> Outcome {
        let mut enc = vec![0.0; idx.len()];
        max_pool_forward(g, x, y, &mut enc);
        decode_into(&enc, idx);
        Ok(())
    }
    fn max_pool_backward_input(&self, g: &PoolGeom, idx: &[u32], gy: &[f32], gx: &mut [f32]) -> Outcome {
        max_pool_backward_input(g, &encode(idx), gy, gx);
        Ok(())
    }
    fn avg_pool_forward(&self, g: &PoolGeom, x: &[f32], y: &mut [f32]) -> Outcome {
        avg_pool_forward(g, x, y);
        Ok(())
    }
    fn avg_pool_backward_input(&self, g: &PoolGeom, gy: &[f32], gx: &mut [f32]) -> Outcome {
        avg_pool_backward_input(g, gy, gx);
        Ok(())
    }
    fn adaptive_avg_pool_forward(&self, n: usize, g: &AdaptiveGeom, x: &[f32], y: &mut [f32]) -> Outcome {
        adaptive_avg_pool_forward(n, g.c, g.input, g.output, x, y);
        Ok(())
    }
    fn adaptive_avg_pool_backward_input(&self, n: usize, g: &AdaptiveGeom, gy: &[f32], gx: &mut [f32]) -> Outcome {
        adaptive_avg_pool_backward_input(n, g.c, g.input, g.output, gy, gx);
        Ok(())
    }
    fn adaptive_max_pool_forward(
        &self,
        n: usize,
        g: &AdaptiveGeom,
        x: &[f32],
        y: &mut [f32],
        idx: &mut [u32],
    ) -> Outcome {
        let mut enc = vec![0.0; idx.len()];
        adaptive_max_pool_forward(n, g.c, g.input, g.output, x, y, &mut enc);
        decode_into(&enc, idx);
        Ok(())
    }
    fn adaptive_max_pool_backward_input(
        &self,
        n: usize,
        g: &AdaptiveGeom,
        idx: &[u32],
        gy: &[f32],
        gx: &mut [f32],
    ) -> Outcome {
        adaptive_max_pool_backward_input(n, g.c, g.input, g.output, &encode(idx), gy, gx);
        Ok(())
    }
}

/// The wgpu shaders of `torchlet-gpu` on a device.
pub struct Gpu(pub Device);

impl Gpu {
    /// The test device: any adapter (lavapipe on a machine without a GPU). Without one the
    /// test prints why it is skipped and gets `None`, unless `TORCHLET_REQUIRE_GPU=1` (CI),
    /// which makes that a failure.
    pub fn open() -> Option<Gpu> {
        match Device::new(Preference::Any) {
            Ok(d) => Some(Gpu(d)),
            Err(e @ Error::NoAdapter { .. }) => {
                assert!(
                    !std::env::var("TORCHLET_REQUIRE_GPU").is_ok_and(|v| v == "1"),
                    "TORCHLET_REQUIRE_GPU=1 but {e}"
                );
                eprintln!("skipping GPU test: {e}");
                None
            }
            Err(e) => panic!("opening the GPU device failed: {e}"),
        }
    }
}

impl Gpu {
    /// A convolution with reflect, replicate or circular padding runs on the GPU as the
    /// network runs it: a pad pass, then a zero-padding convolution over the padded input
    /// (`torchlet_gpu::ops::padded_conv_geom`).
    fn padded_input(&self, g: &ConvGeom, x: &[f32]) -> Result<(ConvGeom, Vec<f32>), String> {
        let p = gpu::padded_conv_geom(g);
        let mut xp = vec![f32::NAN; g.n * g.c_in * p.in_spatial()];
        gpu::pad_forward(&self.0, g.n * g.c_in, 1, g.input, g.pad, p.input, g.mode, x, &mut xp).map_err(gpu_err)?;
        Ok((p, xp))
    }
}

fn gpu_err(e: Error) -> String {
    format!("GPU error: {e}")
}

impl Backend for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }
    fn cases(&self) -> u32 {
        // lavapipe runs a few GFLOP/s: fewer, still random, cases.
        12
    }
    fn conv_forward(&self, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Outcome {
        if g.mode == PaddingMode::Zeros {
            return gpu::conv_forward(&self.0, g, x, w, b, y).map_err(gpu_err);
        }
        let (p, xp) = self.padded_input(g, x)?;
        gpu::conv_forward(&self.0, &p, &xp, w, b, y).map_err(gpu_err)
    }
    fn conv_backward_input(&self, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Outcome {
        if g.mode == PaddingMode::Zeros {
            return gpu::conv_backward_input(&self.0, g, w, gy, gx).map_err(gpu_err);
        }
        let p = gpu::padded_conv_geom(g);
        let mut gxp = vec![0.0; g.n * g.c_in * p.in_spatial()];
        gpu::conv_backward_input(&self.0, &p, w, gy, &mut gxp).map_err(gpu_err)?;
        gpu::pad_backward_input(&self.0, g.n * g.c_in, 1, g.input, g.pad, p.input, g.mode, &gxp, gx).map_err(gpu_err)
    }
    fn conv_backward_weight(&self, g: &ConvGeom, x: &[f32], gy: &[f32], gw: &mut [f32], gb: &mut [f32]) -> Outcome {
        if g.mode == PaddingMode::Zeros {
            return gpu::conv_backward_weight(&self.0, g, x, gy, gw, gb).map_err(gpu_err);
        }
        let (p, xp) = self.padded_input(g, x)?;
        gpu::conv_backward_weight(&self.0, &p, &xp, gy, gw, gb).map_err(gpu_err)
    }
    fn conv_transpose_forward(&self, g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) -> Outcome {
        gpu::conv_transpose_forward(&self.0, g, x, w, b, y).map_err(gpu_err)
    }
    fn conv_transpose_backward_input(&self, g: &ConvGeom, w: &[f32], gy: &[f32], gx: &mut [f32]) -> Outcome {
        gpu::conv_transpose_backward_input(&self.0, g, w, gy, gx).map_err(gpu_err)
    }
    fn conv_transpose_backward_weight(
        &self,
        g: &ConvGeom,
        x: &[f32],
        gy: &[f32],
        gw: &mut [f32],
        gb: &mut [f32],
    ) -> Outcome {
        gpu::conv_transpose_backward_weight(&self.0, g, x, gy, gw, gb).map_err(gpu_err)
    }
    fn max_pool_forward(&self, g: &PoolGeom, x: &[f32], y: &mut [f32], idx: &mut [u32]) -> Outcome {
        gpu::max_pool_forward(&self.0, g, x, y, idx).map_err(gpu_err)
    }
    fn max_pool_backward_input(&self, g: &PoolGeom, idx: &[u32], gy: &[f32], gx: &mut [f32]) -> Outcome {
        gpu::max_pool_backward_input(&self.0, g, idx, gy, gx).map_err(gpu_err)
    }
    fn avg_pool_forward(&self, g: &PoolGeom, x: &[f32], y: &mut [f32]) -> Outcome {
        gpu::avg_pool_forward(&self.0, g, x, y).map_err(gpu_err)
    }
    fn avg_pool_backward_input(&self, g: &PoolGeom, gy: &[f32], gx: &mut [f32]) -> Outcome {
        gpu::avg_pool_backward_input(&self.0, g, gy, gx).map_err(gpu_err)
    }
    fn adaptive_avg_pool_forward(&self, n: usize, g: &AdaptiveGeom, x: &[f32], y: &mut [f32]) -> Outcome {
        gpu::adaptive_avg_pool_forward(&self.0, n, g.c, g.input, g.output, x, y).map_err(gpu_err)
    }
    fn adaptive_avg_pool_backward_input(&self, n: usize, g: &AdaptiveGeom, gy: &[f32], gx: &mut [f32]) -> Outcome {
        gpu::adaptive_avg_pool_backward_input(&self.0, n, g.c, g.input, g.output, gy, gx).map_err(gpu_err)
    }
    fn adaptive_max_pool_forward(
        &self,
        n: usize,
        g: &AdaptiveGeom,
        x: &[f32],
        y: &mut [f32],
        idx: &mut [u32],
    ) -> Outcome {
        gpu::adaptive_max_pool_forward(&self.0, n, g.c, g.input, g.output, x, y, idx).map_err(gpu_err)
    }
    fn adaptive_max_pool_backward_input(
        &self,
        n: usize,
        g: &AdaptiveGeom,
        idx: &[u32],
        gy: &[f32],
        gx: &mut [f32],
    ) -> Outcome {
        gpu::adaptive_max_pool_backward_input(&self.0, n, g.c, g.input, g.output, idx, gy, gx).map_err(gpu_err)
    }
}

/// Runs `body` on `backend.cases()` values of `strategy`, shrinking a failure and panicking
/// with the minimal failing input and the backend's name (no regression files: CI pins
/// `PROPTEST_RNG_SEED`).
pub fn check_cases<S: proptest::strategy::Strategy>(
    backend: &dyn Backend,
    strategy: S,
    body: impl Fn(&dyn Backend, S::Value) -> Outcome,
) where
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: backend.cases(),
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |v| body(backend, v).map_err(TestCaseError::fail)) {
        panic!("on the {}: {e}", backend.name());
    }
}

/// One test body, one `#[test]` per backend: `test_device!(name, body)` defines `name::cpu`
/// and `name::gpu`, each calling the sibling function `body(&backend)`. The GPU one skips (with a message) where no
/// adapter exists, unless `TORCHLET_REQUIRE_GPU=1`.
#[macro_export]
macro_rules! test_device {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn cpu() {
                super::$body(&$crate::backend::Cpu);
            }
            #[test]
            fn gpu() {
                if let Some(g) = $crate::backend::Gpu::open() {
                    super::$body(&g);
                }
            }
        }
    };
}
