//! Where a training step's GPU time goes: every dispatch of one [`GpuNetwork`] step timed with
//! timestamp queries, summed per shader. `torchlet bench --device gpu` prints it when
//! `TORCHLET_GPU_PROFILE=1` is set; use it to decide which kernel to tune next.
//!
//! Each dispatch runs in its own compute pass with timestamps at its start and end, so the
//! sum is the GPU's busy time without the gaps between dispatches; a step's wall time minus
//! that sum is the launch, synchronisation and transfer overhead. Needs an adapter with
//! `TIMESTAMP_QUERY` ([`Device::has_timestamps`]); lavapipe and most discrete GPUs have it.

use torchlet::loss::CrossEntropyLoss;
use torchlet::optim::Sgd;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::network::GpuNetwork;

/// GPU time of one shader over one training step.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The shader's file name (`conv_forward.wgsl`).
    pub shader: &'static str,
    /// Its dispatches in the step.
    pub dispatches: usize,
    /// Their summed GPU time, microseconds.
    pub micros: f64,
}

/// Runs one training step as [`GpuNetwork::train_step`] does (so it trains: the parameters
/// move by one more step), then the same dispatches again, each timed, and returns the time
/// per shader, slowest first.
///
/// - `images`: `[n, *input_shape]`; `labels`: `[n]`.
///
/// # Errors
/// [`Error::Unsupported`] when the adapter has no timestamp queries; those of `train_step`.
pub fn profile_step(
    net: &mut GpuNetwork,
    images: &[f32],
    labels: &[u32],
    loss: &CrossEntropyLoss<'_>,
    sgd: &mut Sgd,
) -> Result<Vec<KernelTime>> {
    let dev: Device = net.device().clone();
    if !dev.has_timestamps() {
        return Err(Error::Unsupported {
            layer: usize::MAX,
            op: "profile",
            what: "this adapter has no timestamp queries",
        });
    }
    net.train_step(images, labels, loss, sgd)?;
    let (passes, clear) = net.step_passes();
    let count = u32::try_from(passes.len() * 2)
        .unwrap_or(u32::MAX)
        .min(wgpu::QUERY_SET_MAX_QUERIES);
    let wd = dev.wgpu_device();
    let set = wd.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let bytes = u64::from(count) * 8;
    let resolve = wd.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile resolve"),
        size: bytes,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = dev.staging("profile readback", count as usize * 2);
    let mut enc = wd.create_command_encoder(&Default::default());
    for b in clear {
        enc.clear_buffer(b, 0, None);
    }
    let timed = (count / 2) as usize;
    for (i, p) in passes.iter().enumerate().take(timed) {
        let q = (2 * i) as u32;
        let mut cpass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(p.spec().kernel().source().0),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &set,
                beginning_of_pass_write_index: Some(q),
                end_of_pass_write_index: Some(q + 1),
            }),
        });
        p.encode(&dev, &mut cpass);
    }
    enc.resolve_query_set(&set, 0..count, &resolve, 0);
    enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
    dev.queue().submit([enc.finish()]);
    let words: Vec<u32> = dev.read_staging(&staging, count as usize * 2, "profiling a training step")?;
    let period = f64::from(dev.queue().get_timestamp_period());
    let stamp = |q: usize| u64::from(words[2 * q]) | (u64::from(words[2 * q + 1]) << 32);
    let mut out: Vec<KernelTime> = Vec::new();
    for (i, p) in passes.iter().enumerate().take(timed) {
        let ns = stamp(2 * i + 1).saturating_sub(stamp(2 * i)) as f64 * period;
        let shader = p.spec().kernel().source().0;
        match out.iter_mut().find(|k| k.shader == shader) {
            Some(k) => {
                k.dispatches += 1;
                k.micros += ns / 1e3;
            }
            None => out.push(KernelTime {
                shader,
                dispatches: 1,
                micros: ns / 1e3,
            }),
        }
    }
    out.sort_by(|a, b| b.micros.total_cmp(&a.micros));
    Ok(out)
}
