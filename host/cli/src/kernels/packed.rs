//! The packed matrix multiply: the loop nest around a register-tile micro-kernel, in safe Rust.
//!
//! The classic five-loop GEMM (Goto and van de Geijn, "Anatomy of high-performance matrix
//! multiplication", 2008; the BLIS layout): `B` is packed `KC` rows × `NC` columns at a time
//! into `NR`-column panels, `A` `MC` rows × `KC` columns at a time into `MR`-row panels, so the
//! micro-kernel reads both with unit stride whatever the views' strides were (row-major,
//! transposed, gapped: every layout the layers use runs the same inner loop). A `KC × NR` panel
//! of `B` (16 KiB) stays in L1 while the kernel walks the `MC × KC` block of `A` in L2.
//!
//! When the rows of `B` are contiguous (`B` row-major: the column matrix of a convolution, an
//! upstream gradient) the kernel reads them in place with their row stride and only the last,
//! partial panel is packed: `B` is then read once from memory instead of copied first. (Not
//! when the row stride is a multiple of 512 bytes: such rows share a few L1 cache sets.)
//!
//! Packing buffers are per thread (`thread_local`), allocated once and reused, so data-parallel
//! workers never share them and a multiply allocates nothing after its thread's first.
//!
//! Tiles that overhang the edge of `C` are computed into a local tile (padding rows and
//! columns of the packed panels are zero) and only their valid part is added to `C`.

use std::cell::RefCell;

use torchlet::kernels::MatRef;

/// A register-tile micro-kernel: `C[MR×NR] (+)= Σ_p a[p] ⊗ b[p]` over packed panels.
pub(crate) trait MicroKernel: Sync {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// `C[r, j] = (overwrite ? 0 : C[r, j]) + Σ_{p < kc} a[p·MR + r] · b[p·ldb + j]` for
    /// `r < MR`, `j < NR`, with `C[r, j]` at `c[r·ldc + j]`.
    ///
    /// - `a`: `[kc, MR]` packed, at least `kc·MR` floats;
    /// - `b`: `[kc, NR]` with row stride `ldb >= NR` (`NR` when packed), at least
    ///   `(kc − 1)·ldb + NR` floats;
    /// - `c`: at least `(MR − 1)·ldc + NR` floats, `ldc >= NR`.
    ///
    /// # Panics
    /// If a slice is shorter than stated or a stride smaller.
    fn tile(&self, kc: usize, a: &[f32], b: &[f32], ldb: usize, c: &mut [f32], ldc: usize, overwrite: bool);
}

/// Depth of one packed block (rows of `B`, columns of `A`).
const KC: usize = 256;
/// Rows of `A` packed at once (about 144 KiB at `KC`, in L2), rounded down to a multiple of `MR`.
const MC: usize = 144;
/// Columns of `B` packed at once (2 MiB at `KC`), rounded down to a multiple of `NR`.
const NC: usize = 2048;
/// Packed buffers start at a multiple of this many floats (64 bytes, a cache line).
const ALIGN: usize = 16;

thread_local! {
    /// This thread's packing buffers for `A`, `B` and the last panel of an unpacked `B`.
    static PACK: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// The `len`-float prefix of `buf` that starts on an [`ALIGN`] boundary, growing `buf` as needed.
fn aligned(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len + ALIGN {
        buf.resize(len + ALIGN, 0.0);
    }
    let off = buf.as_ptr().align_offset(ALIGN * size_of::<f32>()).min(ALIGN - 1);
    &mut buf[off..off + len]
}

/// `C = A·B` or `C += A·B` with the micro-kernel `K` (the contract of
/// [`torchlet::kernels::Gemm::gemm`]).
///
/// # Panics
/// If a view or `c` is too short for the shape (checked once, before any work).
pub(crate) fn gemm<K: MicroKernel>(
    kernel: &K,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm: C of {} floats is too short for {m}x{n} with row stride {ldc}",
        c.len()
    );
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs,
        "gemm: A of {} floats is too short for {m}x{k} with strides ({}, {})",
        a.data.len(),
        a.rs,
        a.cs
    );
    assert!(
        b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs,
        "gemm: B of {} floats is too short for {k}x{n} with strides ({}, {})",
        b.data.len(),
        b.rs,
        b.cs
    );
    let (mr, nr) = (K::MR, K::NR);
    let mc_max = (MC / mr).max(1) * mr;
    let nc_max = (NC / nr).max(1) * nr;
    // Blocks of equal depth: k = 800 is 4 blocks of 200 rather than 3 of 256 and one of 32.
    let kb = k.div_ceil(k.div_ceil(KC));
    PACK.with(|pack| {
        let mut pack = pack.borrow_mut();
        let [abuf, bbuf, ebuf] = &mut *pack;
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            let nc_pad = nc.div_ceil(nr) * nr;
            for pc in (0..k).step_by(kb) {
                let kc = kb.min(k - pc);
                let overwrite = pc == 0 && !accumulate;
                // In place only when rows do not alias in L1: a row stride that is a multiple of
                // 512 bytes maps every row of a panel to the same few cache sets.
                let bsrc = if b.cs == 1 && b.rs % 128 != 0 {
                    // Rows in place; only the partial last panel is packed.
                    let full = nc / nr * nr;
                    let edge = aligned(ebuf, if full < nc { kc * nr } else { 0 });
                    if full < nc {
                        pack_b(b, pc, kc, jc + full, nc - full, nr, edge);
                    }
                    BPanels::Direct {
                        data: &b.data[pc * b.rs + jc..],
                        ldb: b.rs,
                        edge,
                    }
                } else {
                    let bp = aligned(bbuf, kc * nc_pad);
                    pack_b(b, pc, kc, jc, nc, nr, bp);
                    BPanels::Packed(bp)
                };
                for ic in (0..m).step_by(mc_max) {
                    let mc = mc_max.min(m - ic);
                    let mc_pad = mc.div_ceil(mr) * mr;
                    let ap = aligned(abuf, kc * mc_pad);
                    pack_a(a, ic, mc, pc, kc, mr, ap);
                    macro_kernel(kernel, kc, mc, nc, ap, &bsrc, &mut c[ic * ldc + jc..], ldc, overwrite);
                }
            }
        }
    });
}

/// Where the micro-kernel reads the `NR`-column panels of a `kc × nc` block of `B`.
enum BPanels<'s> {
    /// Packed ([`pack_b`]): panel `t` at `bp[t·kc·NR..]`, row stride `NR`.
    Packed(&'s [f32]),
    /// Rows of `B` in place: panel `t` at `data[t·NR..]` with row stride `ldb`, except a
    /// partial last panel, packed in `edge`.
    Direct {
        data: &'s [f32],
        ldb: usize,
        edge: &'s [f32],
    },
}

/// Multiplies a packed `mc × kc` block of `A` by a `kc × nc` block of `B` into `c[mc, nc]`
/// (row stride `ldc`), tile by tile.
#[inline(always)]
fn macro_kernel<K: MicroKernel>(
    kernel: &K,
    kc: usize,
    mc: usize,
    nc: usize,
    ap: &[f32],
    bsrc: &BPanels<'_>,
    c: &mut [f32],
    ldc: usize,
    overwrite: bool,
) {
    let (mr, nr) = (K::MR, K::NR);
    // An edge tile, computed whole into a local buffer (large enough for any kernel here).
    let mut tile = [0.0f32; 16 * 32];
    debug_assert!(mr * nr <= tile.len());
    for j0 in (0..nc).step_by(nr) {
        let nv = nr.min(nc - j0);
        let (bpanel, ldb): (&[f32], usize) = match bsrc {
            BPanels::Packed(bp) => (&bp[j0 * kc..][..kc * nr], nr),
            BPanels::Direct { data, ldb, .. } if nv == nr => (&data[j0..], *ldb),
            BPanels::Direct { edge, .. } => (edge, nr),
        };
        for (it, apanel) in ap.chunks_exact(kc * mr).enumerate() {
            let i0 = it * mr;
            let mv = mr.min(mc - i0);
            let c0 = i0 * ldc + j0;
            if mv == mr && nv == nr && c.len() >= c0 + (mr - 1) * ldc + nr {
                kernel.tile(kc, apanel, bpanel, ldb, &mut c[c0..], ldc, overwrite);
            } else {
                kernel.tile(kc, apanel, bpanel, ldb, &mut tile, nr, true);
                for r in 0..mv {
                    let crow = &mut c[c0 + r * ldc..][..nv];
                    let trow = &tile[r * nr..][..nv];
                    if overwrite {
                        crow.copy_from_slice(trow);
                    } else {
                        for (cv, &t) in crow.iter_mut().zip(trow) {
                            *cv += t;
                        }
                    }
                }
            }
        }
    }
}

/// Packs `A[ic .. ic + mc, pc .. pc + kc]` into `mr`-row panels: panel `t` holds
/// `ap[t·kc·mr + p·mr + r] = A[ic + t·mr + r, pc + p]`, zero for rows past `mc`.
///
/// The tile heights of the kernels here get their own copies, so that the inner loops run
/// over compile-time widths (no bounds checks, unrolled).
fn pack_a(a: MatRef<'_>, ic: usize, mc: usize, pc: usize, kc: usize, mr: usize, ap: &mut [f32]) {
    match mr {
        6 => pack_a_fixed::<6>(a, ic, mc, pc, kc, ap),
        8 => pack_a_fixed::<8>(a, ic, mc, pc, kc, ap),
        _ => {
            for (t, panel) in ap.chunks_exact_mut(kc * mr).enumerate() {
                let i0 = ic + t * mr;
                let rows = mr.min(ic + mc - i0);
                panel.fill(0.0);
                for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                    for (r, d) in dst.iter_mut().enumerate().take(rows) {
                        *d = a.data[(i0 + r) * a.rs + (pc + p) * a.cs];
                    }
                }
            }
        }
    }
}

/// [`pack_a`] for a tile height `MR` known at compile time.
fn pack_a_fixed<const MR: usize>(a: MatRef<'_>, ic: usize, mc: usize, pc: usize, kc: usize, ap: &mut [f32]) {
    for (t, panel) in ap.chunks_exact_mut(kc * MR).enumerate() {
        let i0 = ic + t * MR;
        let rows = MR.min(ic + mc - i0);
        let panel = panel.chunks_exact_mut(MR).map(|d| <&mut [f32; MR]>::try_from(d).ok());
        if rows == MR && a.rs == 1 {
            // Columns of A are contiguous: copy MR floats per k.
            for (p, dst) in panel.enumerate() {
                let src = &a.data[i0 + (pc + p) * a.cs..][..MR];
                if let (Some(dst), Ok(src)) = (dst, <&[f32; MR]>::try_from(src)) {
                    *dst = *src;
                }
            }
        } else if rows == MR && a.cs == 1 {
            // Rows of A are contiguous: interleave MR of them.
            let src: [&[f32]; MR] = core::array::from_fn(|r| &a.data[(i0 + r) * a.rs + pc..][..kc]);
            for (p, dst) in panel.enumerate() {
                if let Some(dst) = dst {
                    for r in 0..MR {
                        dst[r] = src[r][p];
                    }
                }
            }
        } else {
            // Any strides, or the last rows: clamp the row index and zero the rows past `mc`.
            for (p, dst) in panel.enumerate() {
                if let Some(dst) = dst {
                    for (r, d) in dst.iter_mut().enumerate() {
                        *d = if r < rows {
                            a.data[(i0 + r) * a.rs + (pc + p) * a.cs]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Packs `B[pc .. pc + kc, jc .. jc + nc]` into `nr`-column panels: panel `t` holds
/// `bp[t·kc·nr + p·nr + j] = B[pc + p, jc + t·nr + j]`, zero for columns past `nc`.
fn pack_b(b: MatRef<'_>, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, bp: &mut [f32]) {
    match nr {
        16 => pack_b_fixed::<16>(b, pc, kc, jc, nc, bp),
        8 => pack_b_fixed::<8>(b, pc, kc, jc, nc, bp),
        _ => {
            for (t, panel) in bp.chunks_exact_mut(kc * nr).enumerate() {
                let j0 = jc + t * nr;
                let cols = nr.min(jc + nc - j0);
                panel.fill(0.0);
                for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                    for (j, d) in dst.iter_mut().enumerate().take(cols) {
                        *d = b.data[(pc + p) * b.rs + (j0 + j) * b.cs];
                    }
                }
            }
        }
    }
}

/// [`pack_b`] for a tile width `NR` known at compile time.
fn pack_b_fixed<const NR: usize>(b: MatRef<'_>, pc: usize, kc: usize, jc: usize, nc: usize, bp: &mut [f32]) {
    for (t, panel) in bp.chunks_exact_mut(kc * NR).enumerate() {
        let j0 = jc + t * NR;
        let cols = NR.min(jc + nc - j0);
        let panel = panel.chunks_exact_mut(NR).map(|d| <&mut [f32; NR]>::try_from(d).ok());
        if cols == NR && b.cs == 1 {
            // Rows of B are contiguous: copy NR floats per k.
            for (p, dst) in panel.enumerate() {
                let src = &b.data[(pc + p) * b.rs + j0..][..NR];
                if let (Some(dst), Ok(src)) = (dst, <&[f32; NR]>::try_from(src)) {
                    *dst = *src;
                }
            }
        } else if cols == NR && b.rs == 1 {
            // Columns of B are contiguous: transpose NR of them in.
            let src: [&[f32]; NR] = core::array::from_fn(|j| &b.data[pc + (j0 + j) * b.cs..][..kc]);
            for (p, dst) in panel.enumerate() {
                if let Some(dst) = dst {
                    for j in 0..NR {
                        dst[j] = src[j][p];
                    }
                }
            }
        } else {
            // Any strides, or the last columns: zero the columns past `nc`.
            for (p, dst) in panel.enumerate() {
                if let Some(dst) = dst {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = if j < cols {
                            b.data[(pc + p) * b.rs + (j0 + j) * b.cs]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// A micro-kernel in safe Rust over fixed-size arrays, which the compiler vectorises for the
/// build target: NEON on `aarch64` (where fused multiply-add is part of the base ISA and
/// `mul_add` becomes `fmla`), and the baseline elsewhere. `MR × NR` = 8 × 8 keeps 16 NEON
/// accumulators of the 32 registers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Generic;

/// Rows of [`Generic`]'s tile.
const GMR: usize = 8;
/// Columns of [`Generic`]'s tile.
const GNR: usize = 8;

impl MicroKernel for Generic {
    const MR: usize = GMR;
    const NR: usize = GNR;

    fn tile(&self, kc: usize, a: &[f32], b: &[f32], ldb: usize, c: &mut [f32], ldc: usize, overwrite: bool) {
        let mut acc = [[0.0f32; GNR]; GMR];
        for (p, av) in a[..kc * GMR].chunks_exact(GMR).enumerate() {
            let av: &[f32; GMR] = av.try_into().unwrap_or(&[0.0; GMR]);
            let bv: &[f32; GNR] = b[p * ldb..][..GNR].try_into().unwrap_or(&[0.0; GNR]);
            for r in 0..GMR {
                for j in 0..GNR {
                    acc[r][j] = madd(av[r], bv[j], acc[r][j]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let crow = &mut c[r * ldc..][..GNR];
            for (cv, &v) in crow.iter_mut().zip(acc_r) {
                *cv = if overwrite { v } else { *cv + v };
            }
        }
    }
}

/// `x·y + z`: fused on `aarch64` (one `fmla`), separate elsewhere (a fused multiply-add without
/// hardware support is a slow library call).
#[inline(always)]
fn madd(x: f32, y: f32, z: f32) -> f32 {
    #[cfg(target_arch = "aarch64")]
    {
        x.mul_add(y, z)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        x * y + z
    }
}
