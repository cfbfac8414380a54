//! Fast matrix multiplies for the desktop, chosen at run time: one binary uses AVX2 + FMA on
//! x86-64 CPUs that have it and the portable kernel on those that do not.
//!
//! The core ([`torchlet`]) is safe, `no_std` code compiled for the build target, which for
//! `x86_64` means SSE2. This module supplies a [`Gemm`] provider built for the CPU the process
//! runs on: a packed five-loop multiply (BLIS-style packing of both operands) around a
//! register-tile micro-kernel,
//!
//! | kernel | where | tile |
//! |---|---|---|
//! | `avx2+fma` | x86-64 with AVX2 and FMA (Haswell, Zen and later, AVX-512 CPUs too) | 6 × 16 |
//! | `packed` | `aarch64` (NEON, vectorised by the compiler) | 8 × 8 |
//! | `portable` | everywhere ([`torchlet::kernels::Portable`]) | 4 × 8 (SSE2) |
//!
//! [`best()`] picks the fastest this CPU runs, once per process; set `TORCHLET_KERNEL` to
//! `portable`, `packed`, `avx2` or `auto` (the default) to force one, for example to compare
//! results or speed. [`describe()`] says which was chosen and why, for logs. Use it with
//! [`torchlet::Network::set_gemm`]:
//!
//! ```no_run
//! # fn demo(net: &mut torchlet::Network<'_, 9>) {
//! net.set_gemm(torchlet_host::kernels::best());
//! eprintln!("matrix multiply: {}", torchlet_host::kernels::describe());
//! # }
//! ```
//!
//! Results agree with the portable kernel to `f32` rounding, not bit for bit (sums run in
//! another order). Small products (fewer than [`SMALL_FLOPS`] multiply-adds or a single row)
//! go to the portable kernel, whose unpacked paths are faster there.
#![deny(unsafe_code)]

pub(crate) mod packed;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

use torchlet::kernels::{Gemm, MatRef, Portable};

use packed::MicroKernel;

/// Below this many multiply-adds (`m·n·k`), packing costs more than it saves: such products
/// run on the portable kernel.
pub const SMALL_FLOPS: usize = 8 * 1024;

/// A [`Gemm`] provider: the packed multiply around micro-kernel `K`.
struct Packed<K: MicroKernel> {
    kernel: K,
    name: &'static str,
}

impl<K: MicroKernel> Gemm for Packed<K> {
    fn gemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: MatRef<'_>,
        b: MatRef<'_>,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        if m.saturating_mul(n).saturating_mul(k) < SMALL_FLOPS || m == 1 {
            Portable.gemm(m, n, k, a, b, c, ldc, accumulate);
        } else {
            packed::gemm(&self.kernel, m, n, k, a, b, c, ldc, accumulate);
        }
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

/// The portable kernel, as a `'static` provider.
static PORTABLE: Portable = Portable;

/// The packed multiply with the compiler-vectorised micro-kernel (every target).
static PACKED: Packed<packed::Generic> = Packed {
    kernel: packed::Generic,
    name: "packed",
};

/// The AVX2 + FMA provider, if this CPU has both.
#[cfg(target_arch = "x86_64")]
fn avx2() -> Option<&'static dyn Gemm> {
    static AVX2: OnceLock<Option<Packed<x86::Avx2Fma>>> = OnceLock::new();
    AVX2.get_or_init(|| {
        x86::Avx2Fma::detect().map(|kernel| Packed {
            kernel,
            name: "avx2+fma",
        })
    })
    .as_ref()
    .map(|p| p as &'static dyn Gemm)
}

/// The AVX2 + FMA provider: never on a CPU other than x86-64.
#[cfg(not(target_arch = "x86_64"))]
fn avx2() -> Option<&'static dyn Gemm> {
    None
}

/// Every provider this CPU can run, fastest first (the portable kernel last). Tests run each
/// against a reference; benchmarks compare them.
pub fn available() -> Vec<&'static dyn Gemm> {
    let mut out: Vec<&'static dyn Gemm> = Vec::new();
    out.extend(avx2());
    out.push(&PACKED);
    out.push(&PORTABLE);
    out
}

/// Why [`by_name`] has no provider for a name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A name of no provider.
    #[error("unknown kernel `{0}`: expected one of auto, avx2, packed, portable")]
    Unknown(String),
    /// A provider this CPU cannot run (`avx2` without AVX2 and FMA).
    #[error("kernel `{0}`: this CPU has no AVX2 and FMA")]
    Unsupported(String),
}

/// The provider called `name`: `portable`, `packed`, `avx2` (also `avx2+fma`), or `auto` for
/// the fastest this CPU runs.
///
/// # Errors
/// [`KernelError::Unknown`] naming the accepted names if `name` is unknown;
/// [`KernelError::Unsupported`] if this CPU cannot run it (`avx2` without AVX2 and FMA).
pub fn by_name(name: &str) -> Result<&'static dyn Gemm, KernelError> {
    match name {
        "auto" | "" => Ok(auto()),
        "portable" => Ok(&PORTABLE),
        "packed" => Ok(&PACKED),
        "avx2" | "avx2+fma" => avx2().ok_or_else(|| KernelError::Unsupported(name.to_string())),
        _ => Err(KernelError::Unknown(name.to_string())),
    }
}

/// The fastest provider for this CPU: AVX2 + FMA on x86-64 when present, the packed kernel on
/// `aarch64` (NEON), else the portable kernel.
fn auto() -> &'static dyn Gemm {
    if let Some(k) = avx2() {
        return k;
    }
    if cfg!(target_arch = "aarch64") {
        &PACKED
    } else {
        &PORTABLE
    }
}

/// What [`best()`] chose and why, computed once.
fn choice() -> &'static (&'static dyn Gemm, String) {
    static CHOICE: OnceLock<(&'static dyn Gemm, String)> = OnceLock::new();
    CHOICE.get_or_init(|| match std::env::var("TORCHLET_KERNEL") {
        Ok(name) if !name.is_empty() && name != "auto" => match by_name(&name) {
            Ok(k) => (k, format!("{} (TORCHLET_KERNEL={name}; {})", k.name(), cpu_features())),
            Err(e) => {
                let k = auto();
                let why = format!("{} (TORCHLET_KERNEL ignored: {e}; {})", k.name(), cpu_features());
                eprintln!("warning: TORCHLET_KERNEL: {e}; using {}", k.name());
                (k, why)
            }
        },
        _ => {
            let k = auto();
            (k, format!("{} (detected; {})", k.name(), cpu_features()))
        }
    })
}

/// The matrix multiply to give [`torchlet::Network::set_gemm`]: the fastest this CPU runs, or
/// the one `TORCHLET_KERNEL` names (an unknown or unsupported name prints a warning once and
/// falls back to the detected kernel).
pub fn best() -> &'static dyn Gemm {
    choice().0
}

/// One line saying which kernel [`best()`] uses and the CPU features it saw, e.g.
/// `avx2+fma (detected; cpu: avx2 fma, no avx512f)`.
pub fn describe() -> &'static str {
    &choice().1
}

/// The vector features of this CPU that matter here, for [`describe()`].
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let f = |name: &str, has: bool| if has { name.to_string() } else { format!("no {name}") };
        format!(
            "cpu: {} {} {}",
            f("avx2", std::arch::is_x86_feature_detected!("avx2")),
            f("fma", std::arch::is_x86_feature_detected!("fma")),
            f("avx512f", std::arch::is_x86_feature_detected!("avx512f"))
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        "cpu: aarch64 neon".to_string()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        format!("cpu: {}", std::env::consts::ARCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `C = A·B` by the naive loop in `f64`.
    fn reference(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64)
                    .sum();
            }
        }
        c
    }

    #[test]
    fn every_provider_matches_the_reference_across_blocks_and_edges() {
        // k past one KC block, m past one MC block, n not a multiple of any tile width.
        let (m, n, k) = (151, 37, 530);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
        for provider in available() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let av = if ta {
                    MatRef::transposed(&a, m)
                } else {
                    MatRef::row_major(&a, k)
                };
                let bv = if tb {
                    MatRef::transposed(&b, k)
                } else {
                    MatRef::row_major(&b, n)
                };
                let want = reference(m, n, k, av, bv);
                let mut c = vec![1.0f32; m * (n + 3)];
                provider.gemm(m, n, k, av, bv, &mut c, n + 3, true);
                for i in 0..m {
                    for j in 0..n + 3 {
                        let got = c[i * (n + 3) + j] as f64;
                        if j >= n {
                            assert_eq!(got, 1.0, "{}: padding column written", provider.name());
                        } else {
                            let err = (got - 1.0 - want[i * n + j]).abs();
                            assert!(err < 1e-3, "{} {ta} {tb}: C[{i},{j}] off by {err}", provider.name());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn names_select_providers_and_unknown_names_are_refused() {
        assert_eq!(by_name("portable").map(|k| k.name()), Ok("portable"));
        assert_eq!(by_name("packed").map(|k| k.name()), Ok("packed"));
        let err = by_name("sse9").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("sse9") && err.contains("portable"), "{err}");
        assert!(!describe().is_empty());
    }
}
