//! Single-precision matrix multiply `C = A·B` (or `C += A·B`) over strided views, with no heap.
//!
//! This is the one compute-heavy loop of the crate: `Linear` calls it directly and convolution
//! calls it after `im2col`. Any stride layout of `A` and `B` is accepted. The work is done in
//! safe Rust that the compiler auto-vectorises (no intrinsics, no heap, at most 4 KiB of stack):
//!
//! - with 8 rows or more, a register-blocked micro-kernel keeps an `MR × NR` tile of `C` in
//!   local arrays and, for each `k`, broadcasts `A[i, k]` against one row of a packed panel of
//!   `B` (`KC × NR` floats on the stack, packed once and reused by up to `MC` rows of `A`).
//!   Packing copies rows of `B` when they are contiguous (`b.cs == 1`: `W·col`, `x·W`) and
//!   transposes columns in when those are (`b.rs == 1`: `A·Bᵀ` as in `x·Wᵀ` and the
//!   convolution weight gradient), so every layout runs the same inner loop;
//! - with fewer rows, packing does not pay: rows of `B` are streamed into rows of `C` (`axpy`),
//!   or, for `A·Bᵀ`, dot products run over contiguous rows with vector-wide accumulators.
//!
//! Tile sizes follow the target's vector width at compile time (`cfg!(target_feature)`): 4 × 16
//! with AVX or NEON, 4 × 8 with SSE2 (the default `x86_64` target; build with
//! `-C target-cpu=native` for about twice the speed), 4 × 4 on scalar FPUs (the Cortex-M4F
//! runs [`blocked`](super::blocked) instead, see [`Portable`](super::Portable)). Sums are accumulated in `f32` in an order that differs from a naive loop: results
//! agree with it to rounding.

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// Backing storage; must hold every element the multiply reads.
    pub data: &'a [f32],
    /// Row stride (distance between `(i, j)` and `(i + 1, j)`).
    pub rs: usize,
    /// Column stride (distance between `(i, j)` and `(i, j + 1)`).
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major matrix with `cols` columns (`rs = cols`, `cs = 1`).
    pub const fn row_major(data: &'a [f32], cols: usize) -> Self {
        MatRef { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns: a view with `rs = 1`, `cs = cols`.
    pub const fn transposed(data: &'a [f32], cols: usize) -> Self {
        MatRef { data, rs: 1, cs: cols }
    }
    /// Element `(i, j)`.
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Columns of the `C` tile held in registers: two or four vectors of the target's width.
const NR: usize = if cfg!(any(target_feature = "avx", target_arch = "aarch64")) {
    16
} else if cfg!(any(target_feature = "sse2", target_feature = "simd128")) {
    8
} else {
    4
};
/// Rows of the `C` tile held in registers.
const MR: usize = 4;
/// Depth of one packed panel of `B`: `KC × NR` floats, 4 KiB.
const KC: usize = 1024 / NR;
/// Rows of `A` multiplied by one packed panel of `B` before moving to the next strip.
const MC: usize = 128;
/// Vector width used by the dot-product kernel's accumulators.
const LANES: usize = NR / 2;
/// Depth of one block of the dot-product kernel (keeps 4 rows of `Bᵀ` in L1).
const KD: usize = 256;

/// `C[m×n] = A[m×k]·B[k×n]` (`accumulate == false`) or `C += A·B` (`accumulate == true`).
///
/// - `a`: `[m, k]` strided view;
/// - `b`: `[k, n]` strided view;
/// - `c`: `[m, n]` row-major with leading dimension `ldc >= n` (columns `n..ldc` untouched).
///
/// With `k == 0` the product is zero (`C` is zeroed unless accumulating).
pub fn gemm(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], ldc: usize, accumulate: bool) {
    if m == 0 || n == 0 {
        return;
    }
    debug_assert!(ldc >= n && c.len() >= (m - 1) * ldc + n);
    if !accumulate {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
    }
    if k == 0 {
        return;
    }
    debug_assert!(a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs);
    debug_assert!(b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs);
    if m < 2 * MR {
        // Too few rows to amortise packing: stream B once per row.
        if b.cs == 1 {
            gemm_rows(m, n, k, a, b, c, ldc);
        } else if b.rs == 1 && a.cs == 1 {
            gemm_dot(m, n, k, a, b, c, ldc);
        } else {
            gemm_naive(m, n, k, a, b, c, ldc);
        }
    } else if a.cs == 1 {
        let panel = |i0: usize, p0, kc| RowsA {
            rows: core::array::from_fn(|r| &a.data[(i0 + r) * a.rs + p0..][..kc]),
        };
        gemm_tiled(m, n, k, a, b, c, ldc, panel);
    } else if a.rs == 1 {
        // Columns of A contiguous (A = Mᵀ): one load of MR floats per k.
        let panel = |i0: usize, p0, kc| ColsA {
            cs: a.cs,
            panel: &a.data[i0 + p0 * a.cs..][..(kc - 1) * a.cs + MR],
        };
        gemm_tiled(m, n, k, a, b, c, ldc, panel);
    } else {
        gemm_tiled(m, n, k, a, b, c, ldc, |i0, p0, _| StridedA {
            a,
            i: core::array::from_fn(|r| i0 + r),
            p0,
        });
    }
}

/// `C += A·B` for a few rows: one `axpy` of a row of `B` into a row of `C` per element of `A`.
/// `B` has contiguous rows.
fn gemm_rows(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], ldc: usize) {
    for i in 0..m {
        let crow = &mut c[i * ldc..][..n];
        for p in 0..k {
            let aip = a.at(i, p);
            let brow = &b.data[p * b.rs..][..n];
            for (cj, &bj) in crow.iter_mut().zip(brow) {
                *cj += aip * bj;
            }
        }
    }
}

/// How the micro-kernel reads an `MR`-row block of `A`: `col(p)` is `A[i_r, p0 + p]` for the
/// block's rows `i_r`.
trait APanel {
    /// Column `p` (relative to the block's first `k`) of the `MR` rows.
    fn col(&self, p: usize) -> [f32; MR];
}

/// Rows of `A` that are contiguous (`a.cs == 1`), pre-sliced to the block's depth.
struct RowsA<'a> {
    rows: [&'a [f32]; MR],
}

impl APanel for RowsA<'_> {
    #[inline(always)]
    fn col(&self, p: usize) -> [f32; MR] {
        core::array::from_fn(|r| self.rows[r][p])
    }
}

/// Rows of `A` with any strides.
struct StridedA<'a> {
    a: MatRef<'a>,
    i: [usize; MR],
    p0: usize,
}

impl APanel for StridedA<'_> {
    #[inline(always)]
    fn col(&self, p: usize) -> [f32; MR] {
        let base = (self.p0 + p) * self.a.cs;
        core::array::from_fn(|r| self.a.data[self.i[r] * self.a.rs + base])
    }
}

/// Columns of `A` that are contiguous (`a.rs == 1`): `panel` starts at the block's first
/// element.
struct ColsA<'a> {
    cs: usize,
    panel: &'a [f32],
}

impl APanel for ColsA<'_> {
    #[inline(always)]
    fn col(&self, p: usize) -> [f32; MR] {
        self.panel[p * self.cs..][..MR].try_into().unwrap_or([0.0; MR])
    }
}

/// `C += A·B` by `MR × NR` register tiles: `NR`-column strips of `B` are packed `KC` rows at a
/// time into a stack panel (4 KiB) and multiplied by every `MR`-row block of an `MC`-row block
/// of `A`.
///
/// `panel(i0, p0, kc)` gives the `A` reader for rows `i0..i0 + MR` and columns `p0..p0 + kc`;
/// a partial block at the bottom edge reads `a` with its rows clamped to `m - 1` (the extra
/// rows are computed and dropped).
#[inline(always)]
fn gemm_tiled<P: APanel>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    panel: impl Fn(usize, usize, usize) -> P,
) {
    let mut bp = [[0.0f32; NR]; KC];
    // Blocks of equal depth: k = 75 is two blocks of 38 and 37 rather than 64 and 11.
    let kb = k.div_ceil(k.div_ceil(KC));
    for p0 in (0..k).step_by(kb) {
        let kc = kb.min(k - p0);
        let bp = &mut bp[..kc];
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            for j0 in (0..n).step_by(NR) {
                let nr = NR.min(n - j0);
                pack_b(b, p0, j0, nr, bp);
                for i0 in (ic..ic + mc).step_by(MR) {
                    let acc = if i0 + MR <= m {
                        micro_kernel(&panel(i0, p0, kc), bp)
                    } else {
                        let i = core::array::from_fn(|r| (i0 + r).min(m - 1));
                        micro_kernel(&StridedA { a, i, p0 }, bp)
                    };
                    for (r, acc_r) in acc.iter().enumerate().take(m - i0) {
                        let crow = &mut c[(i0 + r) * ldc + j0..][..nr];
                        for (cj, &v) in crow.iter_mut().zip(acc_r) {
                            *cj += v;
                        }
                    }
                }
            }
        }
    }
}

/// Packs `B[p0 .. p0 + bp.len(), j0 .. j0 + nr]` into `bp` (row `p` of the block in `bp[p]`),
/// zero-filling columns `nr..NR`.
#[inline(always)]
fn pack_b(b: MatRef<'_>, p0: usize, j0: usize, nr: usize, bp: &mut [[f32; NR]]) {
    if b.cs == 1 {
        // Rows of B are contiguous: copy them.
        for (p, dst) in bp.iter_mut().enumerate() {
            let src = &b.data[(p0 + p) * b.rs + j0..];
            if nr == NR {
                *dst = src[..NR].try_into().unwrap_or([0.0; NR]);
            } else {
                dst[..nr].copy_from_slice(&src[..nr]);
                dst[nr..].fill(0.0);
            }
        }
    } else if b.rs == 1 {
        // Columns of B (rows of Bᵀ) are contiguous: transpose them in.
        let kc = bp.len();
        for t in 0..NR {
            if t < nr {
                let col = &b.data[(j0 + t) * b.cs + p0..][..kc];
                for (dst, &v) in bp.iter_mut().zip(col) {
                    dst[t] = v;
                }
            } else {
                bp.iter_mut().for_each(|dst| dst[t] = 0.0);
            }
        }
    } else {
        for (p, dst) in bp.iter_mut().enumerate() {
            for (t, d) in dst.iter_mut().enumerate() {
                *d = if t < nr { b.at(p0 + p, j0 + t) } else { 0.0 };
            }
        }
    }
}

/// The register tile: `acc[r][j] = Σ_p A[r, p] · bp[p][j]`.
#[inline(always)]
fn micro_kernel<P: APanel>(a: &P, bp: &[[f32; NR]]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (p, brow) in bp.iter().enumerate() {
        let av = a.col(p);
        for r in 0..MR {
            for j in 0..NR {
                acc[r][j] += av[r] * brow[j];
            }
        }
    }
    acc
}

/// `C += A·B` where `A` has contiguous rows and `B` contiguous columns: each `C[i, j]` is the
/// dot product of row `i` of `A` and row `j` of `Bᵀ`, computed in `2 × 4` tiles over `KD`-deep
/// blocks with `LANES`-wide accumulators.
fn gemm_dot(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], ldc: usize) {
    // With k == 1 the strides along k are never used; treat them as 1.
    let (ars, bcs) = (a.rs, b.cs);
    for p0 in (0..k).step_by(KD) {
        let kc = KD.min(k - p0);
        for j0 in (0..n).step_by(4) {
            let bj: [usize; 4] = core::array::from_fn(|t| (j0 + t).min(n - 1));
            let brows: [&[f32]; 4] = core::array::from_fn(|t| &b.data[bj[t] * bcs + p0..][..kc]);
            let nr = 4.min(n - j0);
            for i0 in (0..m).step_by(2) {
                let ai: [usize; 2] = [i0, (i0 + 1).min(m - 1)];
                let arows: [&[f32]; 2] = core::array::from_fn(|s| &a.data[ai[s] * ars + p0..][..kc]);
                let dots = dot_tile(arows, brows);
                for (s, d) in dots.iter().enumerate().take(m - i0) {
                    let crow = &mut c[(i0 + s) * ldc + j0..][..nr];
                    for (cj, &v) in crow.iter_mut().zip(d) {
                        *cj += v;
                    }
                }
            }
        }
    }
}

/// Eight dot products `a[s] · b[t]` of equal-length slices.
#[inline(always)]
fn dot_tile(a: [&[f32]; 2], b: [&[f32]; 4]) -> [[f32; 4]; 2] {
    /// The next `LANES` floats of a chunk iterator, as an array the compiler can vectorise.
    #[inline(always)]
    fn lanes<'s>(it: &mut core::slice::ChunksExact<'s, f32>) -> Option<[f32; LANES]> {
        it.next().and_then(|c| c.try_into().ok())
    }
    let mut acc = [[[0.0f32; LANES]; 4]; 2];
    let mut xa = a.map(|s| s.chunks_exact(LANES));
    let mut yb = b.map(|s| s.chunks_exact(LANES));
    while let (Some(x0), Some(x1), Some(y0), Some(y1), Some(y2), Some(y3)) = (
        lanes(&mut xa[0]),
        lanes(&mut xa[1]),
        lanes(&mut yb[0]),
        lanes(&mut yb[1]),
        lanes(&mut yb[2]),
        lanes(&mut yb[3]),
    ) {
        for (s, x) in [x0, x1].iter().enumerate() {
            for (t, y) in [y0, y1, y2, y3].iter().enumerate() {
                madd(&mut acc[s][t], x, y);
            }
        }
    }
    let mut out = [[0.0f32; 4]; 2];
    for s in 0..2 {
        for t in 0..4 {
            let tail: f32 = xa[s]
                .remainder()
                .iter()
                .zip(yb[t].remainder())
                .map(|(x, y)| x * y)
                .sum();
            out[s][t] = acc[s][t].iter().sum::<f32>() + tail;
        }
    }
    out
}

/// `acc += x * y`, lane by lane.
#[inline(always)]
fn madd(acc: &mut [f32; LANES], x: &[f32; LANES], y: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] += x[l] * y[l];
    }
}

/// `C += A·B` for any strides.
fn gemm_naive(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], ldc: usize) {
    for i in 0..m {
        let crow = &mut c[i * ldc..][..n];
        for p in 0..k {
            let aip = a.at(i, p);
            for (j, cj) in crow.iter_mut().enumerate() {
                *cj += aip * b.at(p, j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Buffer size that holds any view below of a matrix up to 40 × 40.
    const BUF: usize = 1 + 39 * 81 + 39 * 2 + 1;

    /// A `rows × cols` view of `buf` in one of four layouts: 0 row-major, 1 column-major,
    /// 2 and 3 the same with gaps (both strides > 1). Views start at offset 1.
    fn view(buf: &[f32], rows: usize, cols: usize, layout: usize) -> MatRef<'_> {
        let (rs, cs) = match layout {
            0 => (cols, 1),
            1 => (1, rows),
            2 => (2 * cols + 1, 2),
            _ => (2, 2 * rows + 1),
        };
        MatRef {
            data: &buf[1..],
            rs,
            cs,
        }
    }

    fn check(m: usize, n: usize, k: usize, la: usize, lb: usize, accumulate: bool, ldc_extra: usize, seed: u32) {
        let mut abuf = [0.0f32; BUF];
        let mut bbuf = [0.0f32; BUF];
        fill(&mut abuf, seed);
        fill(&mut bbuf, seed + 1);
        let a = view(&abuf, m, k, la);
        let b = view(&bbuf, k, n, lb);
        let ldc = n + ldc_extra;
        let mut c = [0.0f32; 40 * 43];
        fill(&mut c, seed + 2);
        let c0 = c;
        gemm(m, n, k, a, b, &mut c, ldc, accumulate);
        for i in 0..m {
            for j in 0..ldc {
                let idx = i * ldc + j;
                if j >= n {
                    assert_eq!(c[idx], c0[idx], "padding column touched");
                    continue;
                }
                let mut s = if accumulate { c0[idx] as f64 } else { 0.0 };
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                let err = (c[idx] as f64 - s).abs();
                assert!(
                    err <= 1e-5 * (k as f64 + 1.0),
                    "m{m} n{n} k{k} layouts {la} {lb} acc{accumulate}: C[{i},{j}] = {} vs {s}",
                    c[idx]
                );
            }
        }
        // Rows below m are untouched.
        assert_eq!(c[m * ldc..], c0[m * ldc..]);
    }

    #[test]
    fn all_layouts_and_odd_sizes_match_naive() {
        let sizes = [1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 40];
        let mut seed = 0;
        for &m in &sizes {
            for &n in &sizes {
                for &k in &[1usize, 2, 5, 8, 13, 39] {
                    seed += 1;
                    let layout = seed as usize % 16;
                    check(m, n, k, layout % 4, layout / 4, seed % 2 == 0, seed as usize % 3, seed);
                }
            }
        }
    }

    #[test]
    fn every_layout_on_a_few_shapes() {
        let shapes = [
            (9, 17, 33),
            (40, 40, 40),
            (8, 16, 3),
            (13, 1, 29),
            (1, 23, 11),
            (17, 5, 40),
            (6, 33, 7),
        ];
        for (s, &(m, n, k)) in shapes.iter().enumerate() {
            for la in 0..4 {
                for lb in 0..4 {
                    for accumulate in [false, true] {
                        check(m, n, k, la, lb, accumulate, 2, (s * 16 + la * 4 + lb) as u32);
                    }
                }
            }
        }
    }

    #[test]
    fn large_products_cross_block_boundaries() {
        // k larger than KC and KD, m larger than MC, m and n not multiples of the tiles; every
        // combination of row- and column-major A and B.
        const MAX: usize = 1 + 140 * 600;
        let mut abuf = [0.0f32; MAX];
        let mut bbuf = [0.0f32; 1 + 600 * 21];
        fill(&mut abuf, 7);
        fill(&mut bbuf, 8);
        let mut c = [0.0f32; 140 * 21];
        for (m, n, k) in [(11, 21, 600), (137, 19, 150)] {
            for layout in 0..4 {
                let a = view(&abuf, m, k, layout % 2);
                let b = view(&bbuf, k, n, layout / 2);
                gemm(m, n, k, a, b, &mut c, n, false);
                for i in 0..m {
                    for j in 0..n {
                        let s: f64 = (0..k).map(|p| a.at(i, p) as f64 * b.at(p, j) as f64).sum();
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - s).abs() < 1e-4 * k as f64,
                            "{m}x{n}x{k} layout {layout}: C[{i},{j}] {got} vs {s}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn k_zero_zeroes_or_keeps() {
        let a = MatRef::row_major(&[], 0);
        let mut c = [5.0f32; 6];
        gemm(2, 3, 0, a, a, &mut c, 3, true);
        assert_eq!(c, [5.0; 6]);
        gemm(2, 3, 0, a, a, &mut c, 3, false);
        assert_eq!(c, [0.0; 6]);
    }
}
