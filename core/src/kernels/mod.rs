//! Compute kernels shared by the layers: the matrix multiply that convolution and `Linear` use,
//! and the [`Gemm`] provider trait that lets a caller swap it for a faster one.
//!
//! Every multiply in the crate goes through a [`Gemm`]: [`Portable`] (the default, the safe,
//! auto-vectorised code of [`gemm`] that also runs on a Cortex-M0+, or on hard-float Arm such as
//! the Cortex-M4F the register-blocked kernel of [`blocked`]) or one the caller supplies.
//! A desktop binary passes a kernel that uses the CPU's vector units chosen at run time
//! (`torchlet_host::kernels::best()` picks AVX2+FMA on x86-64 when the CPU has it), with
//! [`Network::set_gemm`](crate::Network::set_gemm) or the `*_with` functions of
//! [`ops::conv`](crate::ops::conv) and [`ops::linear`](crate::ops::linear). The core itself
//! stays safe and `no_std`: a provider is a plain trait object, `&dyn Gemm`.
//!
//! Use [`Portable`] on a microcontroller and whenever bit-for-bit agreement with the portable
//! build matters; another provider agrees with it to rounding (sums run in another order).

pub mod blocked;
pub mod gemm;

pub use gemm::MatRef;

/// A single-precision matrix multiply: `C[m×n] = A[m×k]·B[k×n]`, or `C += A·B`.
///
/// The contract of every implementation is that of [`gemm::gemm`]:
///
/// - `a`: `[m, k]` strided view (`A[i, p] = a.data[i * a.rs + p * a.cs]`);
/// - `b`: `[k, n]` strided view;
/// - `c`: `[m, n]` row-major with leading dimension `ldc >= n`; columns `n..ldc` and rows
///   `m..` are never written;
/// - `accumulate == false` overwrites `C` (also when `k == 0`, which gives zeros);
///   `accumulate == true` adds the product to it;
/// - any stride layout is accepted (row-major, transposed, gapped), `m`, `n` or `k` may be 0.
///
/// Results agree with the naive triple loop to `f32` rounding (summation order differs between
/// implementations). Implementations are `Sync` so one provider serves every worker thread of
/// data-parallel training.
///
/// # Panics
/// An implementation may panic if a view or `c` is too short for the shape; the crate's layers
/// only call it with views they have checked.
pub trait Gemm: Sync {
    /// `C = A·B` (`accumulate == false`) or `C += A·B` (`accumulate == true`); see the
    /// [trait docs](Gemm) for the shapes: `a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]` with row
    /// stride `ldc`.
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
    );

    /// A short name for logs and benchmarks (`"portable"`, `"avx2+fma"`).
    fn name(&self) -> &'static str;

    /// The width of the column panels the kernel multiplies in place, without packing
    /// ([`blocked::NR`] for [`Blocked`]), or 0 for none: a fused convolution then builds its
    /// column matrix as panels of that many positions (`[rows, width]` each, one after the
    /// other) and multiplies each one by itself.
    fn panel_width(&self) -> usize {
        0
    }
}

/// The portable kernel, safe Rust chosen at compile time for the build target:
///
/// - on hard-float 32-bit Arm (`target_abi = "eabihf"`: `thumbv7em-none-eabihf`, the
///   Cortex-M4F and M7), [`blocked::gemm`], which keeps a 4 × 4 tile of `C` in the FPU's
///   registers (Arm's FPU target features are not visible to `cfg` on stable Rust; the ABI is);
/// - everywhere else, [`gemm::gemm`], which the compiler vectorises for the target (SSE2 on
///   the default `x86_64` target, NEON on `aarch64`, scalar on a Cortex-M0+).
///
/// The default provider of [`Network`](crate::Network) and of the layer functions without
/// `_with`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

/// Whether [`Portable`] runs [`blocked::gemm`] (hard-float 32-bit Arm) rather than
/// [`gemm::gemm`].
const USE_BLOCKED: bool = cfg!(all(target_arch = "arm", target_abi = "eabihf"));

impl Gemm for Portable {
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
        if USE_BLOCKED {
            blocked::gemm(m, n, k, a, b, c, ldc, accumulate);
        } else {
            gemm::gemm(m, n, k, a, b, c, ldc, accumulate);
        }
    }

    fn name(&self) -> &'static str {
        "portable"
    }

    fn panel_width(&self) -> usize {
        if USE_BLOCKED {
            blocked::NR
        } else {
            0
        }
    }
}

/// The [`Portable`] provider as a `'static` trait object, for [`Network::set_gemm`](crate::Network::set_gemm).
pub static PORTABLE: Portable = Portable;

/// The register-blocked kernel [`blocked::gemm`] on every target: what [`Portable`] runs on a
/// Cortex-M4F, for running and testing that code on the host
/// ([`Network::set_gemm`](crate::Network::set_gemm)).
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocked;

impl Gemm for Blocked {
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
        blocked::gemm(m, n, k, a, b, c, ldc, accumulate);
    }

    fn name(&self) -> &'static str {
        "blocked"
    }

    fn panel_width(&self) -> usize {
        blocked::NR
    }
}

/// The [`Blocked`] provider as a `'static` trait object.
pub static BLOCKED: Blocked = Blocked;
