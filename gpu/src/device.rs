//! Choosing a GPU adapter and opening a device on it: what `--device cpu|gpu|auto` means.
//!
//! - [`Selection::Cpu`]: no GPU is touched.
//! - [`Selection::Gpu`] ([`Preference::Any`]): the best adapter wgpu finds, a software one such
//!   as Mesa's lavapipe included (the way to run the GPU code on a machine without a GPU, as
//!   the tests do). No adapter at all is an [`Error::NoAdapter`].
//! - [`Selection::Auto`] ([`Preference::Hardware`]): a hardware GPU (discrete, then
//!   integrated, then virtual) when wgpu finds one, otherwise the CPU; a software adapter is
//!   never chosen, since the CPU kernels are faster than a software rasteriser.
//!
//! [`Device`] is a cheap-to-clone handle (an `Arc`) holding the wgpu device and queue, the
//! compiled compute pipelines of every shader ([`crate::kernels`]), a description of the
//! adapter for printing ([`AdapterSummary`]), and an error sink: wgpu's uncaptured-error and
//! device-lost callbacks store the first error there instead of panicking, and
//! [`Device::check`] turns it into an [`Error`].
//!
//! The instance honours `WGPU_BACKEND` (`vulkan`, `metal`, `dx12`, `gl`) and
//! `WGPU_ADAPTER_NAME` is not used: ranking is by device type, then by enumeration order.

use std::fmt;
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex};

use crate::error::{Error, Result, WgpuErrorKind};
use crate::kernels::Kernels;

/// What kind of adapter [`Device::new`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// Only a hardware GPU (`--device auto`): software adapters are skipped.
    Hardware,
    /// Any adapter, software ones included (`--device gpu`).
    Any,
}

/// The `--device` flag of the command line: `cpu`, `gpu` or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Train on the CPU.
    Cpu,
    /// Train on a GPU adapter, a software one if that is all there is; fail if there is none.
    Gpu,
    /// A hardware GPU when there is one, else the CPU.
    Auto,
}

impl FromStr for Selection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Selection::Cpu),
            "gpu" => Ok(Selection::Gpu),
            "auto" => Ok(Selection::Auto),
            _ => Err(Error::UnknownDevice { value: s.to_string() }),
        }
    }
}

/// Where [`Selection::resolve`] decided to run.
pub enum Resolved {
    /// On the CPU; `reason` says why (asked for, or no hardware GPU under `auto`) for printing.
    Cpu {
        /// A short sentence for the user.
        reason: String,
    },
    /// On this GPU device.
    Gpu(Device),
}

impl Selection {
    /// Opens the device this selection asks for.
    ///
    /// # Errors
    /// For [`Selection::Gpu`]: [`Error::NoAdapter`], [`Error::RequestDevice`] and the errors of
    /// compiling the shaders. [`Selection::Auto`] falls back to the CPU when no hardware
    /// adapter exists, but reports a hardware adapter that fails to open a device.
    pub fn resolve(self) -> Result<Resolved> {
        match self {
            Selection::Cpu => Ok(Resolved::Cpu {
                reason: "--device cpu".to_string(),
            }),
            Selection::Gpu => Ok(Resolved::Gpu(Device::new(Preference::Any)?)),
            Selection::Auto => match Device::new(Preference::Hardware) {
                Ok(d) => Ok(Resolved::Gpu(d)),
                Err(Error::NoAdapter { found, .. }) => Ok(Resolved::Cpu {
                    reason: format!("--device auto found no hardware GPU (adapters seen: {found})"),
                }),
                Err(e) => Err(e),
            },
        }
    }
}

/// The adapter a [`Device`] runs on, for printing and for deciding how to read timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name (`"NVIDIA H100"`, `"llvmpipe (LLVM 15.0.6, 256 bits)"`).
    pub name: String,
    /// The graphics API wgpu drives it through (`"vulkan"`, `"metal"`, `"dx12"`, `"gl"`).
    pub backend: String,
    /// `"discrete GPU"`, `"integrated GPU"`, `"virtual GPU"`, `"CPU (software)"` or `"other"`.
    pub device_type: String,
    /// The driver and its version, as the adapter reports them.
    pub driver: String,
    /// Whether this is a software adapter running on the CPU (lavapipe, llvmpipe, SwiftShader,
    /// WARP): a correctness backend, not a fast one.
    pub software: bool,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", driver {}", self.driver)?;
        }
        f.write_str(")")
    }
}

/// Names of software rasterisers some drivers report with a non-CPU device type.
const SOFTWARE_NAMES: [&str; 5] = [
    "llvmpipe",
    "lavapipe",
    "softpipe",
    "swiftshader",
    "microsoft basic render",
];

fn summarize(info: &wgpu::AdapterInfo) -> AdapterSummary {
    let lname = info.name.to_lowercase();
    let software = info.device_type == wgpu::DeviceType::Cpu || SOFTWARE_NAMES.iter().any(|s| lname.contains(s));
    let device_type = match info.device_type {
        _ if software => "CPU (software)",
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "CPU (software)",
        wgpu::DeviceType::Other => "other",
    };
    let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
        (false, false) => format!("{} {}", info.driver, info.driver_info),
        (false, true) => info.driver.clone(),
        (true, _) => info.driver_info.clone(),
    };
    AdapterSummary {
        name: info.name.clone(),
        backend: info.backend.to_string(),
        device_type: device_type.to_string(),
        driver,
        software,
    }
}

/// Rank of an adapter for a preference (higher is better), `None` when it is not acceptable.
fn rank(s: &AdapterSummary, info: &wgpu::AdapterInfo, pref: Preference) -> Option<u8> {
    if s.software {
        return match pref {
            Preference::Hardware => None,
            // Prefer Vulkan's lavapipe to GL's llvmpipe: it is the better-tested path.
            Preference::Any => Some(if info.backend == wgpu::Backend::Vulkan { 2 } else { 1 }),
        };
    }
    Some(match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 6,
        wgpu::DeviceType::IntegratedGpu => 5,
        wgpu::DeviceType::VirtualGpu => 4,
        _ => 3,
    })
}

/// The first error wgpu reported through a callback, kept until [`Device::check`] takes it.
type Sink = Arc<Mutex<Option<Error>>>;

fn record(sink: &Sink, e: Error) {
    // A poisoned lock only means another thread panicked while holding it; the slot is still usable.
    let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(e);
    }
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
    kernels: Kernels,
    sink: Sink,
    /// Set once the device is lost (really, or by [`Device::simulate_loss`]): every later
    /// [`Device::check`] reports it, whatever else wgpu says about the calls after it.
    lost: Lost,
}

type Lost = Arc<Mutex<Option<String>>>;

/// An open GPU device with this crate's shaders compiled: see the [module docs](self).
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device").field("adapter", &self.inner.adapter).finish()
    }
}

impl Device {
    /// Opens the best adapter that `pref` accepts and compiles every shader.
    ///
    /// # Errors
    /// [`Error::NoAdapter`] when wgpu finds no acceptable adapter (the message lists those it
    /// found); [`Error::RequestDevice`] when the adapter refuses a device; [`Error::Wgpu`] if a
    /// shader fails to compile on this adapter.
    pub fn new(pref: Preference) -> Result<Device> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let mut seen = Vec::new();
        let mut best: Option<(u8, wgpu::Adapter, AdapterSummary)> = None;
        for a in adapters {
            let info = a.get_info();
            let s = summarize(&info);
            seen.push(s.to_string());
            if let Some(r) = rank(&s, &info, pref) {
                if best.as_ref().is_none_or(|(b, _, _)| r > *b) {
                    best = Some((r, a, s));
                }
            }
        }
        let Some((_, adapter, summary)) = best else {
            return Err(Error::NoAdapter {
                wanted: match pref {
                    Preference::Hardware => "hardware GPU",
                    Preference::Any => "GPU adapter (hardware or software)",
                },
                found: if seen.is_empty() {
                    "none (on Linux without a GPU: apt-get install mesa-vulkan-drivers libvulkan1)".to_string()
                } else {
                    seen.join("; ")
                },
            });
        };
        Self::open(adapter, summary)
    }

    fn open(adapter: wgpu::Adapter, summary: AdapterSummary) -> Result<Device> {
        // The adapter's own limits: the defaults cap storage bindings at 128 MiB, which a batch
        // of 256 CIFAR images through a wide network can exceed.
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("torchlet"),
            // Timestamp queries only where the adapter has them: `profile` uses them, nothing else.
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| Error::RequestDevice {
            adapter: summary.name.clone(),
            message: e.to_string(),
        })?;
        let sink: Sink = Arc::new(Mutex::new(None));
        let s = sink.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let (kind, message) = match e {
                wgpu::Error::OutOfMemory { source } => (WgpuErrorKind::OutOfMemory, source.to_string()),
                wgpu::Error::Validation { description, .. } => (WgpuErrorKind::Validation, description),
                wgpu::Error::Internal { description, .. } => (WgpuErrorKind::Internal, description),
            };
            record(
                &s,
                Error::Wgpu {
                    context: "running on the GPU",
                    kind,
                    message,
                },
            );
        }));
        let lost: Lost = Arc::new(Mutex::new(None));
        let l = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            // Dropping the device on purpose also reports "lost"; only record real losses.
            if reason != wgpu::DeviceLostReason::Destroyed {
                let mut slot = l.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(format!("{reason:?}: {message}"));
            }
        });
        let kernels = Kernels::new(&device);
        let dev = Device {
            inner: Arc::new(Inner {
                device,
                queue,
                adapter: summary,
                limits,
                kernels,
                sink,
                lost,
            }),
        };
        dev.check("compiling the shaders")?;
        Ok(dev)
    }

    /// The adapter this device runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.inner.adapter
    }

    /// The wgpu device (for callers that add their own passes).
    pub fn wgpu_device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn kernels(&self) -> &Kernels {
        &self.inner.kernels
    }

    /// Returns the first error wgpu reported since the last check, attributed to `context`.
    ///
    /// # Errors
    /// [`Error::Wgpu`] or [`Error::DeviceLost`].
    pub fn check(&self, context: &'static str) -> Result<()> {
        let taken = self.inner.sink.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(message) = self.inner.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(Error::DeviceLost { message });
        }
        match taken {
            None => Ok(()),
            Some(Error::Wgpu { kind, message, .. }) => Err(Error::Wgpu { context, kind, message }),
            Some(e) => Err(e),
        }
    }

    /// A storage buffer of `len` elements of 4 bytes (at least one), zeroed; `what` names it in
    /// errors.
    ///
    /// # Errors
    /// [`Error::TooLarge`] beyond the adapter's buffer or binding limits.
    pub(crate) fn storage(&self, what: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) as u64) * 4;
        let limit = self
            .inner
            .limits
            .max_buffer_size
            .min(self.inner.limits.max_storage_buffer_binding_size);
        if bytes > limit {
            return Err(Error::TooLarge {
                buffer: what.to_string(),
                bytes,
                limit,
            });
        }
        Ok(self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `data` (4-byte elements).
    pub(crate) fn storage_with<T: bytemuck::Pod>(&self, what: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let buf = self.storage(what, data.len())?;
        if !data.is_empty() {
            self.inner.queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
        }
        Ok(buf)
    }

    /// Whether the device can time GPU work with timestamp queries ([`crate::profile`]).
    pub fn has_timestamps(&self) -> bool {
        self.inner.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether the device was lost ([`Error::DeviceLost`]); nothing more runs on it.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Loses the device on purpose, as a driver reset or an unplugged GPU would: the wgpu
    /// device is destroyed and every later call on it, or on a network built on it, returns
    /// [`Error::DeviceLost`] with `reason`. For testing what a program does when the GPU goes
    /// away mid-run (`torchlet train` honours `TORCHLET_GPU_FAULT=lose-at-step:N`).
    pub fn simulate_loss(&self, reason: &str) {
        self.inner
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(format!("simulated: {reason}"));
        self.inner.device.destroy();
    }

    /// A buffer the CPU maps to read `len` 4-byte elements back.
    pub(crate) fn staging(&self, what: &str, len: usize) -> wgpu::Buffer {
        self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: (len.max(1) as u64) * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Waits for all submitted work, maps the first `len` elements of `staging` and copies them out.
    ///
    /// # Errors
    /// [`Error::Readback`], and the device's pending error ([`Device::check`]) attributed to `context`.
    pub(crate) fn read_staging<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        len: usize,
        context: &'static str,
    ) -> Result<Vec<T>> {
        let bytes = (len as u64) * 4;
        if len == 0 {
            self.check(context)?;
            return Ok(Vec::new());
        }
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            // The receiver lives until after the poll below; a failed send cannot happen then.
            let _ = tx.send(r);
        });
        let polled = self.inner.device.poll(wgpu::PollType::wait_indefinitely());
        self.check(context)?;
        polled.map_err(|e| Error::Readback { message: e.to_string() })?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Readback { message: e.to_string() }),
            Err(_) => {
                return Err(Error::Readback {
                    message: "the map callback never ran".to_string(),
                })
            }
        }
        let out = {
            let view = staging
                .get_mapped_range(0..bytes)
                .map_err(|e| Error::Readback { message: e.to_string() })?;
            bytemuck::cast_slice::<u8, T>(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Copies `len` elements of `buf` from element `offset` to the CPU (one submission; not for
    /// the training loop).
    ///
    /// # Errors
    /// As [`Device::read_staging`].
    pub(crate) fn read<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<T>> {
        let staging = self.staging("readback", len);
        let mut enc = self.inner.device.create_command_encoder(&Default::default());
        if len > 0 {
            enc.copy_buffer_to_buffer(buf, offset as u64 * 4, &staging, 0, len as u64 * 4);
        }
        self.inner.queue.submit([enc.finish()]);
        self.read_staging(&staging, len, "reading a buffer back")
    }
}
