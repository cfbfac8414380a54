//! The AVX2 + FMA micro-kernel for x86-64: a 6 × 16 register tile (12 `ymm` accumulators,
//! two `ymm` rows of `B`, one broadcast of `A`), the shape BLIS and OpenBLAS use on Haswell
//! and Zen.
//!
//! The only `unsafe` code of the crate lives here: `core::arch` intrinsics inside a
//! `#[target_feature(enable = "avx2,fma")]` function. An [`Avx2Fma`] value can only be made by
//! [`Avx2Fma::detect`], which checks the CPU at run time, so holding one proves the
//! instructions exist; every slice is checked against the tile's extent before a raw pointer
//! is read or written.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::packed::MicroKernel;

/// Rows of the register tile.
const MR: usize = 6;
/// Columns of the register tile (two 8-float vectors).
const NR: usize = 16;

/// Proof that this CPU has AVX2 and FMA; the micro-kernel that uses them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Fma {
    /// Private, so that only [`Avx2Fma::detect`] makes one.
    _detected: (),
}

impl Avx2Fma {
    /// The kernel, if the CPU running this process has AVX2 and FMA.
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
            .then_some(Avx2Fma { _detected: () })
    }
}

impl MicroKernel for Avx2Fma {
    const MR: usize = MR;
    const NR: usize = NR;

    fn tile(&self, kc: usize, a: &[f32], b: &[f32], ldb: usize, c: &mut [f32], ldc: usize, overwrite: bool) {
        assert!(
            kc > 0
                && a.len() >= kc * MR
                && ldb >= NR
                && b.len() >= (kc - 1) * ldb + NR
                && ldc >= NR
                && c.len() >= (MR - 1) * ldc + NR,
            "avx2 micro-kernel: panels or tile too short"
        );
        // SAFETY: `self` exists only if `detect` found AVX2 and FMA on this CPU; the assert
        // above covers every element `tile_6x16` reads (`a[..kc·MR]`, `b[p·ldb + j]` for
        // `p < kc`, `j < NR`) and reads or writes (`c[r·ldc + j]` for `r < MR`, `j < NR`).
        unsafe { tile_6x16(kc, a.as_ptr(), b.as_ptr(), ldb, c.as_mut_ptr(), ldc, overwrite) }
    }
}

/// `C[6×16] (+)= Σ_p a[p·6 + r] · b[p·ldb + j]`.
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` is valid for `kc·6` reads, `b` for reads of `b[p·ldb + j]`
/// (`p < kc`, `j < 16`), and `c` for reads and writes of `c[r·ldc + j]`, `r < 6`, `j < 16`.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x16(
    kc: usize,
    mut a: *const f32,
    mut b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    overwrite: bool,
) {
    let mut acc: [[__m256; 2]; MR] = [[_mm256_setzero_ps(); 2]; MR];
    for _ in 0..kc {
        // SAFETY: `p < kc`, so `b[p·ldb .. p·ldb + 16]` and `a[p·6 .. p·6 + 6]` are in bounds
        // (the caller's contract); unaligned loads have no alignment requirement.
        unsafe {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let ar = _mm256_broadcast_ss(&*a.add(r));
                acc_r[0] = _mm256_fmadd_ps(ar, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(ar, b1, acc_r[1]);
            }
            a = a.add(MR);
            // On the last step this points past `b`'s end; it is never read.
            b = b.wrapping_add(ldb);
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        // SAFETY: `c[r·ldc .. r·ldc + 16]` is in bounds for `r < 6` (the caller's contract).
        unsafe {
            let row = c.add(r * ldc);
            if overwrite {
                _mm256_storeu_ps(row, acc_r[0]);
                _mm256_storeu_ps(row.add(8), acc_r[1]);
            } else {
                _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc_r[0]));
                _mm256_storeu_ps(row.add(8), _mm256_add_ps(_mm256_loadu_ps(row.add(8)), acc_r[1]));
            }
        }
    }
}
