//! A register-blocked matrix multiply for scalar FPUs with 32 single-precision registers (the
//! Cortex-M4F and M7's FPv4/FPv5): the kernel [`Portable`](super::Portable) runs on hard-float
//! Arm targets (`target_abi = "eabihf"`, e.g. `thumbv7em-none-eabihf`), where its main loop
//! takes 1.75 instructions per multiply-accumulate (56 for 32, no spills, no bounds checks).
//!
//! It handles the layout of inference, `C += W · col` with both operands row-major (`a.cs == 1`,
//! `b.cs == 1`: convolution after im2col, fused or not) and at least [`MR`] rows, and
//! `nn.Linear` on fewer than [`MR`] rows (`A` row-major, `B` transposed: `x · W^T`), which it
//! runs as `W · x` for each row, [`MR`] dot products in registers; every other call goes to
//! [`gemm::gemm`]. For each `KC`-deep block of `k` and each
//! strip of [`NR`] columns, the strip of `B` is packed once into a stack panel (`KC × NR`
//! floats, 4 KiB) whose rows the micro-kernel reads in order; then every block of `MR` rows of
//! `A` is multiplied by it with the `MR × NR` tile of `C` held in 16 registers: per `k`, one
//! load of each of the 4 values of `A` and the 4 of the panel, then 16 `vmla.f32`, two steps
//! per iteration so that every load is `vldr [row, #offset]`. A strip
//! narrower than `NR` (the last columns) gets a narrower tile, so nothing is computed twice;
//! the last rows, when `m` is not a multiple of `MR`, repeat the last row and drop it.
//!
//! The code is plain safe Rust (no intrinsics, no `unsafe`): it compiles on every target and is
//! tested on the host against the naive product; only the provider selection is per target.
//! Sums run in an order that differs from the naive loop: results agree with it to rounding.

use super::gemm::{self, MatRef};

/// Rows of the `C` tile held in registers (output channels of a convolution).
pub const MR: usize = 4;
/// Columns of the `C` tile held in registers (output positions of a convolution).
pub const NR: usize = 4;
/// Most rows of `B` packed at once: the panel is `KC × NR` floats (2 KiB of stack, zeroed
/// once per call).
const KC: usize = 128;

/// `C[m×n] = A[m×k]·B[k×n]` (`accumulate == false`) or `C += A·B` (`accumulate == true`),
/// with the contract of [`gemm::gemm`]:
///
/// - `a`: `[m, k]` strided view;
/// - `b`: `[k, n]` strided view;
/// - `c`: `[m, n]` row-major with leading dimension `ldc >= n` (columns `n..ldc` and rows
///   `m..` untouched).
///
/// Row-major `A` and `B` with `m >= MR`, and row-major `A` times a transposed `B` (`b.rs ==
/// 1`) with `m < MR <= n`, take the register-blocked paths; anything else is passed to
/// [`gemm::gemm`].
pub fn gemm(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], ldc: usize, accumulate: bool) {
    if m < MR && n >= MR && k > 0 && a.cs == 1 && b.rs == 1 && b.cs >= k {
        // A few rows times a transposed `B` (`nn.Linear` on one sample: `x · W^T`): each row
        // of `C` is `B^T · a_i`, `n` rows of `B^T` (row-major, `b.cs` apart) times one column,
        // the in-place strip of width 1 with `MR` dot products in registers.
        let bt = MatRef {
            data: b.data,
            rs: b.cs,
            cs: 1,
        };
        for i in 0..m {
            let ci = &mut c[i * ldc..];
            if !accumulate {
                ci[..n].fill(0.0);
            }
            let s = Strip {
                a: bt,
                b: bt,
                p0: 0,
                kc: k,
                j0: 0,
                m: n,
            };
            s.multiply::<1>(&a.data[i * a.rs..][..k], ci, 1);
        }
        return;
    }
    let row_major = a.cs == 1 && b.cs == 1 && a.rs >= k && b.rs >= n;
    if !row_major || m < MR || n == 0 || k == 0 {
        gemm::gemm(m, n, k, a, b, c, ldc, accumulate);
        return;
    }
    if !accumulate {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
    }
    if n <= NR && b.rs == n {
        // One strip stored as its own panel (`[k, n]` with rows `n` apart: a fused convolution
        // chunk of NR positions): multiply it in place, in one block of depth `k`.
        let s = Strip {
            a,
            b,
            p0: 0,
            kc: k,
            j0: 0,
            m,
        };
        match n {
            1 => s.multiply::<1>(&b.data[..k], c, ldc),
            2 => s.multiply::<2>(&b.data[..2 * k], c, ldc),
            3 => s.multiply::<3>(&b.data[..3 * k], c, ldc),
            _ => s.multiply::<NR>(&b.data[..NR * k], c, ldc),
        }
        return;
    }
    let mut panel = [0.0f32; KC * NR];
    // Blocks of equal depth: k = 800 is seven blocks of 114 or 115 rather than six of 128 and one
    // of 32.
    let kb = k.div_ceil(k.div_ceil(KC));
    for p0 in (0..k).step_by(kb) {
        let kc = kb.min(k - p0);
        for j0 in (0..n).step_by(NR) {
            let s = Strip { a, b, p0, kc, j0, m };
            match n - j0 {
                1 => s.run::<1>(&mut panel, c, ldc),
                2 => s.run::<2>(&mut panel, c, ldc),
                3 => s.run::<3>(&mut panel, c, ldc),
                _ => s.run::<NR>(&mut panel, c, ldc),
            }
        }
    }
}

/// One strip of the product: `C[.., j0 .. j0 + W] += A[.., p0 .. p0 + kc] · B[p0 .. p0 + kc,
/// j0 .. j0 + W]` for all `m` rows, `W` the strip's width (`NR`, or less for the last strip).
#[derive(Clone, Copy)]
struct Strip<'a> {
    /// `[m, k]` row-major view (`cs == 1`).
    a: MatRef<'a>,
    /// `[k, n]` row-major view (`cs == 1`).
    b: MatRef<'a>,
    /// First row of `B` (column of `A`) of the block.
    p0: usize,
    /// Depth of the block.
    kc: usize,
    /// First column of the strip.
    j0: usize,
    /// Rows of `A` and `C`.
    m: usize,
}

impl Strip<'_> {
    /// Packs the strip of `B` into `panel` (`kc × W` floats, row `p` at `p * W`) and multiplies
    /// every `MR`-row block of `A` by it into `c` (`[m, ldc]` row-major).
    #[inline(always)]
    fn run<const W: usize>(self, panel: &mut [f32; KC * NR], c: &mut [f32], ldc: usize) {
        let bp = &mut panel[..self.kc * W];
        let src = &self.b.data[self.p0 * self.b.rs + self.j0..];
        debug_assert!(src.len() >= (self.kc - 1) * self.b.rs + W);
        for (dst, row) in bp.chunks_exact_mut(W).zip(src.chunks(self.b.rs)) {
            dst.copy_from_slice(&row[..W]);
        }
        self.multiply::<W>(bp, c, ldc);
    }

    /// Multiplies every `MR`-row block of `A` by the packed strip `bp` (`[kc, W]` row-major)
    /// into `c` (`[m, ldc]` row-major).
    #[inline(always)]
    fn multiply<const W: usize>(self, bp: &[f32], c: &mut [f32], ldc: usize) {
        let (rs, p0, kc, j0) = (self.a.rs, self.p0, self.kc, self.j0);
        let full = self.m - self.m % MR;
        for i0 in (0..full).step_by(MR) {
            // A whole block of MR rows: its rows of `A` and `C` sliced from one start each.
            let a = &self.a.data[i0 * rs + p0..];
            let rows: [&[f32]; MR] = core::array::from_fn(|r| &a[r * rs..][..kc]);
            let cb = &mut c[i0 * ldc + j0..];
            let acc: [[f32; W]; MR] = core::array::from_fn(|r| {
                let mut t = [0.0; W];
                t.copy_from_slice(&cb[r * ldc..][..W]);
                t
            });
            let acc = tile::<W>(rows, bp, acc);
            for (r, acc_r) in acc.iter().enumerate() {
                cb[r * ldc..][..W].copy_from_slice(acc_r);
            }
        }
        for i0 in (full..self.m).step_by(MR) {
            // The last block of a ragged `m` repeats row m - 1; its results are dropped.
            let rows: [usize; MR] = core::array::from_fn(|r| (i0 + r).min(self.m - 1));
            let a: [&[f32]; MR] = rows.map(|i| &self.a.data[i * self.a.rs + self.p0..][..self.kc]);
            let mut acc = [[0.0f32; W]; MR];
            for (r, acc_r) in acc.iter_mut().enumerate().take(self.m - i0) {
                acc_r.copy_from_slice(&c[(i0 + r) * ldc + self.j0..][..W]);
            }
            let acc = tile::<W>(a, bp, acc);
            for (r, acc_r) in acc.iter().enumerate().take(self.m - i0) {
                c[(i0 + r) * ldc + self.j0..][..W].copy_from_slice(acc_r);
            }
        }
    }
}

/// `k` steps per iteration of the micro-kernel's main loop: each row of `A` and the panel are
/// read in chunks of `U` steps, at constant offsets from one address per row and iteration.
const U: usize = 2;

/// The micro-kernel: `acc[r][j] + Σ_p a[r][p] · bp[p·W + j]`.
///
/// - `a`: `MR` rows of `A`, each `[kc]`;
/// - `bp`: the packed strip `[kc, W]` row-major;
/// - `acc`: the `MR × W` tile of `C` to add to.
///
/// Per `p`: `MR` loads of `A`, `W` of the panel and `MR · W` multiply-adds, all in registers;
/// the main loop takes `U` steps at a time so that its loads address `[row + constant]`.
#[inline(always)]
fn tile<const W: usize>(a: [&[f32]; MR], bp: &[f32], mut acc: [[f32; W]; MR]) -> [[f32; W]; MR] {
    let [r0, r1, r2, r3] = a.map(|row| row.chunks_exact(U));
    let tails = [r0.remainder(), r1.remainder(), r2.remainder(), r3.remainder()];
    let steps = bp.chunks_exact(U * W);
    let tail_b = steps.remainder();
    for ((((x0, x1), x2), x3), b) in r0.zip(r1).zip(r2).zip(r3).zip(steps) {
        for (u, bu) in b.chunks_exact(W).enumerate() {
            step(&mut acc, [x0[u], x1[u], x2[u], x3[u]], bu);
        }
    }
    for (p, bu) in tail_b.chunks_exact(W).enumerate() {
        step(&mut acc, tails.map(|t| t[p]), bu);
    }
    acc
}

/// One `k` step of the micro-kernel: `acc[r][j] += x[r] · b[j]` (`b`: `[W]`).
#[inline(always)]
fn step<const W: usize>(acc: &mut [[f32; W]; MR], x: [f32; MR], b: &[f32]) {
    for (acc_r, &xr) in acc.iter_mut().zip(&x) {
        for (acc_rj, &bj) in acc_r.iter_mut().zip(b) {
            *acc_rj += xr * bj;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    /// Deterministic values in [-1, 1).
    fn fill(buf: &mut [f32], seed: u32) {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
        for v in buf.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *v = (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
        }
    }

    /// Largest `m`, `n`, `k` and row gap of the tests.
    const M: usize = 70;
    const N: usize = 37;
    const K: usize = 530;
    const GAP: usize = 3;

    /// Runs [`gemm`] on row-major (or, with `layout != 0`, transposed or gapped) views and
    /// compares every element of `C`, the padding columns and the rows below `m` with the
    /// naive product in `f64`.
    #[allow(clippy::too_many_arguments)]
    fn check(m: usize, n: usize, k: usize, gap: usize, ldc_extra: usize, layout: usize, accumulate: bool, seed: u32) {
        let mut abuf = vec![0.0f32; M * (K + GAP) + 1];
        let mut bbuf = vec![0.0f32; (K + GAP) * (N + GAP) + 1];
        fill(&mut abuf, seed);
        fill(&mut bbuf, seed + 1);
        let (a, b) = match layout {
            0 => (
                MatRef {
                    data: &abuf[1..],
                    rs: k + gap,
                    cs: 1,
                },
                MatRef {
                    data: &bbuf[1..],
                    rs: n + gap,
                    cs: 1,
                },
            ),
            1 => (MatRef::transposed(&abuf, m), MatRef::row_major(&bbuf, n)),
            _ => (MatRef::row_major(&abuf, k), MatRef::transposed(&bbuf, k)),
        };
        let ldc = n + ldc_extra;
        let mut c = vec![0.0f32; (M + 1) * (N + GAP)];
        fill(&mut c, seed + 2);
        let c0 = c.clone();
        gemm(m, n, k, a, b, &mut c, ldc, accumulate);
        for i in 0..m {
            for j in 0..ldc {
                let idx = i * ldc + j;
                if j >= n {
                    assert_eq!(c[idx], c0[idx], "padding column {j} of row {i} touched");
                    continue;
                }
                let mut s = if accumulate { c0[idx] as f64 } else { 0.0 };
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                let err = (c[idx] as f64 - s).abs();
                assert!(
                    err <= 2e-6 * (k as f64 + 1.0),
                    "m{m} n{n} k{k} gap{gap} layout{layout} acc{accumulate}: C[{i},{j}] = {} vs {s}",
                    c[idx]
                );
            }
        }
        assert_eq!(c[m * ldc..], c0[m * ldc..], "rows below m touched");
    }

    #[test]
    fn odd_shapes_and_strides_match_the_naive_product() {
        let ms = [4usize, 5, 6, 7, 8, 9, 13, 16, 32, 33];
        let ns = [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17];
        let ks = [1usize, 2, 3, 9, 25, 75];
        let mut seed = 0;
        for &m in &ms {
            for &n in &ns {
                for &k in &ks {
                    seed += 1;
                    let gap = seed as usize % 3;
                    check(m, n, k, gap, seed as usize % 2, 0, seed % 2 == 0, seed);
                }
            }
        }
    }

    #[test]
    fn deep_products_cross_the_panel_depth() {
        // k above KC (several blocks of equal depth), ragged m and n, row gaps.
        for (m, n, k) in [(32, 5, 2 * KC + 18), (M, N, K), (7, 3, KC + 1), (64, 16, KC)] {
            for accumulate in [false, true] {
                check(m, n, k, GAP, 1, 0, accumulate, (m * n + k) as u32);
            }
        }
    }

    #[test]
    fn a_strip_stored_as_its_panel_is_multiplied_in_place() {
        // `b.rs == n <= NR`: no packing, one block as deep as k (above KC here too).
        for n in 1..=NR {
            for (m, k) in [(4, 1), (9, 7), (32, 800), (33, KC + 3)] {
                check(m, n, k, 0, 1, 0, k % 2 == 0, (m + n * k) as u32);
            }
        }
    }

    #[test]
    fn a_few_rows_times_a_transposed_b_match_the_naive_product() {
        // `nn.Linear` on 1..3 samples: `B` transposed (`rs == 1`), with and without row gaps.
        for m in 1..MR {
            for (n, k) in [(4, 1), (10, 128), (5, 7), (13, 2 * KC + 3), (6, 2)] {
                for accumulate in [false, true] {
                    check(m, n, k, 0, 1, 2, accumulate, (m * n + k) as u32);
                }
            }
        }
    }

    #[test]
    fn other_layouts_and_small_m_fall_back_to_the_portable_kernel() {
        for (m, n, k) in [(9, 6, 11), (1, 10, 128), (3, 4, 5), (33, 17, 40)] {
            for layout in 0..3 {
                check(m, n, k, 0, 2, layout, layout == 1, (m + n + k + layout) as u32);
            }
        }
    }

    #[test]
    fn empty_shapes_zero_or_keep() {
        let mut c = [5.0f32; 12];
        let a = MatRef::row_major(&[], 0);
        gemm(4, 3, 0, a, a, &mut c, 3, true);
        assert_eq!(c, [5.0; 12]);
        gemm(4, 3, 0, a, a, &mut c, 3, false);
        assert_eq!(c, [0.0; 12]);
        gemm(0, 3, 2, a, a, &mut c, 3, false);
        assert_eq!(c, [0.0; 12]);
    }
}
