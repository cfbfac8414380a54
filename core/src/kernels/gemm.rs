//! Single-precision matrix multiply `C = A·B` (or `C += A·B`) over strided views, with no heap.
//!
//! This is the one compute-heavy loop of the crate: `Linear` calls it directly and convolution
//! calls it after `im2col`. Any stride layout of `A` and `B` is accepted; two layouts get fast,
//! cache-blocked paths that the compiler auto-vectorises (safe Rust, no intrinsics):
//!
//! - `B` with contiguous rows (`b.cs == 1`, as in `x·W` or `W·col`): a register-blocked
//!   micro-kernel keeps an `MR × NR` tile of `C` in local arrays and, for each `k`, broadcasts
//!   `A[i, k]` against a row of a small packed panel of `B` (at most 4 KiB of stack);
//! - `B` with contiguous columns (`b.rs == 1`, that is `A·Bᵀ` with `Bᵀ` row-major, as in
//!   `x·Wᵀ` of `Linear` and the convolution weight gradient) and `A` with contiguous rows:
//!   dot products of `2 × 4` row pairs with vector-wide independent accumulators;
//! - anything else: a plain loop nest.
//!
//! Tile sizes follow the target's vector width at compile time (`cfg!(target_feature)`), so the
//! same code builds for a Cortex-M0 and runs near peak on a desktop built with
//! `-C target-cpu=native`. Sums are accumulated in `f32`, in an order that differs from a naive
//! loop: results agree with it to rounding.

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
/// Depth of one block of the dot-product kernel (keeps `4` rows of `Bᵀ` in L1).
const KD: usize = 256;

/// `C[m×n] = A[m×k]·B[k×n]` (`accumulate == false`) or `C += A·B` (`accumulate == true`).
///
/// - `a`: `[m, k]` strided view;
/// - `b`: `[k, n]` strided view;
/// - `c`: `[m, n]` row-major with leading dimension `ldc >= n` (columns `n..ldc` untouched).
///
/// With `k == 0` the product is zero (`C` is zeroed unless accumulating).
#[allow(clippy::too_many_arguments)]
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
        let panel = |i: [usize; MR], p0, kc| RowsA { rows: core::array::from_fn(|r| &a.data[i[r] * a.rs + p0..][..kc]) };
        gemm_tiled(m, n, k, b, c, ldc, panel);
    } else {
        gemm_tiled(m, n, k, b, c, ldc, |i, p0, _| StridedA { a, i, p0 });
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

/// `C += A·B` by `MR × NR` register tiles: `NR`-column strips of `B` are packed `KC` rows at a
/// time into a stack panel (4 KiB) and multiplied by every `MR`-row block of an `MC`-row block
/// of `A`.
///
/// `panel(i, p0, kc)` gives the `A` reader for rows `i` (clamped to `m - 1` at the bottom edge,
/// the extra rows are computed and dropped) and columns `p0..p0 + kc`.
#[inline(always)]
fn gemm_tiled<P: APanel>(
    m: usize,
    n: usize,
    k: usize,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    panel: impl Fn([usize; MR], usize, usize) -> P,
) {
    let mut bp = [[0.0f32; NR]; KC];
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        let bp = &mut bp[..kc];
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            for j0 in (0..n).step_by(NR) {
                let nr = NR.min(n - j0);
                pack_b(b, p0, j0, nr, bp);
                for i0 in (ic..ic + mc).step_by(MR) {
                    let rows: [usize; MR] = core::array::from_fn(|r| (i0 + r).min(m - 1));
                    let acc = micro_kernel(&panel(rows, p0, kc), bp);
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
    let len = a[0].len();
    let body = len - len % LANES;
    let (a0, a1) = (&a[0][..body], &a[1][..body]);
    let (b0, b1, b2, b3) = (&b[0][..body], &b[1][..body], &b[2][..body], &b[3][..body]);
    let z = [0.0f32; LANES];
    let (mut c00, mut c01, mut c02, mut c03, mut c10, mut c11, mut c12, mut c13) = (z, z, z, z, z, z, z, z);
    let mut o = 0;
    while o < body {
        let x0: [f32; LANES] = a0[o..o + LANES].try_into().unwrap_or(z);
        let x1: [f32; LANES] = a1[o..o + LANES].try_into().unwrap_or(z);
        let y0: [f32; LANES] = b0[o..o + LANES].try_into().unwrap_or(z);
        let y1: [f32; LANES] = b1[o..o + LANES].try_into().unwrap_or(z);
        let y2: [f32; LANES] = b2[o..o + LANES].try_into().unwrap_or(z);
        let y3: [f32; LANES] = b3[o..o + LANES].try_into().unwrap_or(z);
        for l in 0..LANES {
            c00[l] += x0[l] * y0[l];
            c01[l] += x0[l] * y1[l];
            c02[l] += x0[l] * y2[l];
            c03[l] += x0[l] * y3[l];
            c10[l] += x1[l] * y0[l];
            c11[l] += x1[l] * y1[l];
            c12[l] += x1[l] * y2[l];
            c13[l] += x1[l] * y3[l];
        }
        o += LANES;
    }
    let acc = [[c00, c01, c02, c03], [c10, c11, c12, c13]];
    let mut out = [[0.0f32; 4]; 2];
    for s in 0..2 {
        for t in 0..4 {
            let tail: f32 = a[s][body..].iter().zip(&b[t][body..]).map(|(x, y)| x * y).sum();
            out[s][t] = acc[s][t].iter().sum::<f32>() + tail;
        }
    }
    out
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

    /// A matrix `rows × cols` stored row-major (`trans == false`) or column-major, in a buffer
    /// with one extra float of slack and an offset of 1 so views never start at index 0.
    fn view(buf: &[f32], rows: usize, cols: usize, trans: bool) -> MatRef<'_> {
        let data = &buf[1..1 + rows * cols];
        if trans {
            MatRef { data, rs: 1, cs: rows }
        } else {
            MatRef { data, rs: cols, cs: 1 }
        }
    }

    fn check(m: usize, n: usize, k: usize, ta: bool, tb: bool, accumulate: bool, ldc_extra: usize, seed: u32) {
        let mut abuf = [0.0f32; 1 + 40 * 40];
        let mut bbuf = [0.0f32; 1 + 40 * 40];
        fill(&mut abuf, seed);
        fill(&mut bbuf, seed + 1);
        let a = view(&abuf, m, k, ta);
        let b = view(&bbuf, k, n, tb);
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
                    s += a.at(i, p) as f64 * b.at(p, j) as f64;
                }
                let err = (c[idx] as f64 - s).abs();
                assert!(
                    err <= 1e-5 * (k as f64 + 1.0),
                    "m{m} n{n} k{k} ta{ta} tb{tb} acc{accumulate}: C[{i},{j}] = {} vs {s}",
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
                    let layout = seed as usize % 4;
                    check(m, n, k, layout & 1 == 1, layout & 2 == 2, seed % 2 == 0, seed as usize % 3, seed);
                }
            }
        }
    }

    #[test]
    fn every_layout_on_a_few_shapes() {
        for (s, &(m, n, k)) in [(9, 17, 33), (40, 40, 40), (8, 16, 3), (13, 1, 29), (1, 23, 11), (17, 5, 40)].iter().enumerate() {
            for layout in 0..4 {
                for accumulate in [false, true] {
                    check(m, n, k, layout & 1 == 1, layout & 2 == 2, accumulate, 2, (s * 8 + layout) as u32);
                }
            }
        }
    }

    #[test]
    fn deep_products_cross_block_boundaries() {
        // k larger than KC and KD, m and n not multiples of the tiles.
        const M: usize = 11;
        const N: usize = 21;
        const K: usize = 600;
        let mut a = [0.0f32; M * K];
        let mut bt = [0.0f32; N * K];
        fill(&mut a, 7);
        fill(&mut bt, 8);
        let mut b = [0.0f32; K * N];
        for p in 0..K {
            for j in 0..N {
                b[p * N + j] = bt[j * K + p];
            }
        }
        let mut c1 = [0.0f32; M * N];
        let mut c2 = [0.0f32; M * N];
        gemm(M, N, K, MatRef::row_major(&a, K), MatRef::row_major(&b, N), &mut c1, N, false);
        gemm(M, N, K, MatRef::row_major(&a, K), MatRef::transposed(&bt, K), &mut c2, N, false);
        for i in 0..M {
            for j in 0..N {
                let s: f64 = (0..K).map(|p| a[i * K + p] as f64 * b[p * N + j] as f64).sum();
                assert!((c1[i * N + j] as f64 - s).abs() < 1e-3, "tiled");
                assert!((c2[i * N + j] as f64 - s).abs() < 1e-3, "dot");
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
