//! The column matrix of a convolution: `im2col` gathers the input values under every kernel
//! window position into `col[C_in/g · kD·kH·kW, positions]`, and `col2im` scatters a column
//! gradient back onto the input. Fast paths for stride 1, dilation 1, zero padding copy whole
//! rows; the general path reads padding through [`PaddingMode::map`].

use super::super::geom::{ConvGeom, PaddingMode};
use super::col_rows;
use crate::kernels::blocked::NR;

/// The column matrix's rows in order, as `(input channel, [kD, kH, kW] offsets)`.
fn kernel_offsets(g: &ConvGeom) -> impl Iterator<Item = (usize, [usize; 3])> {
    let [kd, kh, kw] = g.kernel;
    (0..g.c_in / g.groups)
        .flat_map(move |c| (0..kd).flat_map(move |a| (0..kh).flat_map(move |b| (0..kw).map(move |w| (c, [a, b, w])))))
}

/// Padded input coordinate of output position `o` at kernel offset `k` in dim `d`.
#[inline(always)]
fn src_index(g: &ConvGeom, d: usize, o: usize, k: usize) -> isize {
    (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize
}

/// The range of output positions `o < out` whose source `o·stride + off` lies inside `0..len`.
#[inline]
fn interior(out: usize, off: isize, stride: usize, len: usize) -> (usize, usize) {
    if stride == 1 {
        let lo = (-off).clamp(0, out as isize) as usize;
        return (lo, (len as isize - off).clamp(lo as isize, out as isize) as usize);
    }
    let s = stride as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let last = len as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// The pieces of output rows that a chunk of flattened output positions `l0 .. l0 + len`
/// covers, in order: `(z, y, x0, range)` where the row `(z, y)`'s positions `x0 ..` are the
/// chunk's `range`. Only the start needs divisions; one walker is cloned for every column row.
#[derive(Clone)]
struct Segments {
    oh: usize,
    ow: usize,
    z: usize,
    y: usize,
    x0: usize,
    done: usize,
    len: usize,
}

impl Segments {
    fn new(g: &ConvGeom, l0: usize, len: usize) -> Self {
        let [_, oh, ow] = g.output;
        Segments {
            oh,
            ow,
            z: l0 / (oh * ow),
            y: l0 / ow % oh,
            x0: l0 % ow,
            done: 0,
            len,
        }
    }
}

impl Iterator for Segments {
    type Item = (usize, usize, usize, core::ops::Range<usize>);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done >= self.len {
            return None;
        }
        let seg = (self.ow - self.x0).min(self.len - self.done);
        let item = (self.z, self.y, self.x0, self.done..self.done + seg);
        self.done += seg;
        self.x0 = 0;
        self.y += 1;
        if self.y == self.oh {
            self.y = 0;
            self.z += 1;
        }
        Some(item)
    }
}

/// The interior range (see [`interior`]) of the row piece `x0 .. x0 + seg` along W for kernel
/// offset `kw`, reusing `full`, the interior of a whole row, when the piece is a whole row.
#[inline]
fn piece_interior(g: &ConvGeom, full: (usize, usize), kw: usize, x0: usize, seg: usize) -> (isize, (usize, usize)) {
    let off = src_index(g, 2, x0, kw);
    if seg == g.output[2] {
        (off, full)
    } else {
        (off, interior(seg, off, g.stride[2], g.input[2]))
    }
}

/// Fills a chunk of the column matrix, `col[C_in/g · kvol, len]` for the flattened output
/// positions `l0 .. l0 + len` (`len = col.len() / rows`), from one sample-group
/// `x[C_in/g, D, H, W]`.
pub(super) fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    // Zero padding, by far the most common, gets its own copy with the padding test inlined;
    // with unit stride and dilation too, each piece is one contiguous copy.
    if is_unit_zeros(g) {
        im2col_unit_zeros(g, x, col, l0);
    } else if g.mode == PaddingMode::Zeros {
        im2col_mode::<true>(g, x, col, l0);
    } else {
        im2col_mode::<false>(g, x, col, l0);
    }
}

/// Whether the convolution has zero padding, stride 1 and dilation 1 in every dim: the case
/// where each piece of a column row is a contiguous run of one input row between zeros.
#[inline]
pub(super) fn is_unit_zeros(g: &ConvGeom) -> bool {
    g.mode == PaddingMode::Zeros && g.stride == [1; 3] && g.dilation == [1; 3]
}

/// The run of a piece of `n` output positions whose sources `o + off` (`o < n`) lie inside an
/// input row of `iw`: `(lo, hi)`, where positions `lo..hi` read `src[lo + off..hi + off]` and the
/// rest are padding. [`interior`] for stride 1.
#[inline(always)]
fn unit_interior(n: usize, off: isize, iw: usize) -> (usize, usize) {
    let lo = (-off).clamp(0, n as isize) as usize;
    (lo, (iw as isize - off).clamp(lo as isize, n as isize) as usize)
}

/// [`im2col`] for [`is_unit_zeros`] geometry. The `kW` column rows of one `(c, kd, kh)` read
/// the same input row for every output row, so the row is looked up once for all of them; each
/// piece is then written once: zeros, one contiguous copy, zeros.
pub(super) fn im2col_unit_zeros(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let [kd_n, kh_n, kw_n] = g.kernel;
    let in_sp = g.in_spatial();
    let len = col.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    let [pd, ph, pw] = g.pad.map(|p| p as isize);
    // 2-d with output rows as wide as input rows: consecutive output rows read consecutive
    // input rows, so a whole column row is one shifted copy.
    let [_, oh, ow] = g.output;
    let flat = id == 1 && kd_n == 1 && pd == 0 && ow == iw;
    if flat {
        // Where a column row reads depends on the tap only: work it out once per tap, then
        // apply it to every input channel.
        let taps = kh_n * kw_n;
        for t in 0..taps {
            let shift = Shift::new(
                l0,
                len,
                [(t / kw_n) as isize - ph, (t % kw_n) as isize - pw],
                [oh, iw, ih],
            );
            for c in 0..g.c_in / g.groups {
                let row = (c * taps + t) * len;
                shift.apply(&mut col[row..row + len], &x[c * in_sp..][..in_sp]);
            }
        }
        return;
    }
    let taps = (0..g.c_in / g.groups).flat_map(|c| (0..kd_n).flat_map(move |a| (0..kh_n).map(move |b| (c, a, b))));
    for ((c, kd, kh), block) in taps.zip(col.chunks_exact_mut(kw_n * len)) {
        let xc = &x[c * in_sp..][..in_sp];
        for (z, y, x0, range) in segments.clone() {
            let (zs, ys) = ((z + kd) as isize - pd, (y + kh) as isize - ph);
            let inside = zs >= 0 && (zs as usize) < id && ys >= 0 && (ys as usize) < ih;
            if !inside {
                for colrow in block.chunks_exact_mut(len) {
                    colrow[range.clone()].fill(0.0);
                }
                continue;
            }
            let src = &xc[(zs as usize * ih + ys as usize) * iw..][..iw];
            for (kw, colrow) in block.chunks_exact_mut(len).enumerate() {
                let out = &mut colrow[range.clone()];
                let off = (x0 + kw) as isize - pw;
                let (lo, hi) = unit_interior(out.len(), off, iw);
                let (head, rest) = out.split_at_mut(lo);
                let (mid, tail) = rest.split_at_mut(hi - lo);
                zero_run(head);
                if lo < hi {
                    let start = (lo as isize + off) as usize;
                    copy_run(mid, &src[start..start + mid.len()]);
                }
                zero_run(tail);
            }
        }
    }
}

/// Whether [`im2col_panels`] handles `g`: a 1-d or 2-d convolution (`D == kD == 1`, no depth
/// padding) with zero padding; any stride and dilation.
pub(super) fn panels_fit(g: &ConvGeom) -> bool {
    g.mode == PaddingMode::Zeros && g.input[0] == 1 && g.output[0] == 1 && g.kernel[0] == 1 && g.pad[0] == 0
}

/// A chunk of the column matrix for the flattened output positions `l0 .. l0 + len` (`len =
/// col.len() / rows`) as the panels of [`crate::kernels::blocked`]: `[rows, NR]` for each
/// `NR` positions, one after the other (the last one `[rows, len % NR]` when `NR` does not
/// divide `len`), from one sample-group `x[C_in/g, 1, H, W]` ([`panels_fit`] geometry).
///
/// Each strip works out, per kernel tap, the input offsets of its positions (or none, for
/// padding) once, then gathers them from every input channel.
pub(super) fn im2col_panels(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    debug_assert!(panels_fit(g));
    let rows = col_rows(g);
    for (s, panel) in col.chunks_mut(rows * NR).enumerate() {
        let q0 = l0 + s * NR;
        match panel.len() / rows {
            1 => gather_strip::<1>(g, x, panel, q0),
            2 => gather_strip::<2>(g, x, panel, q0),
            3 => gather_strip::<3>(g, x, panel, q0),
            _ => gather_strip::<NR>(g, x, panel, q0),
        }
    }
}

/// One panel of [`im2col_panels`]: `panel[(c · taps + t) · W + j]` is input channel `c` under
/// tap `t` at output position `q0 + j`.
#[inline(always)]
fn gather_strip<const W: usize>(g: &ConvGeom, x: &[f32], panel: &mut [f32], q0: usize) {
    let [_, ih, iw] = g.input;
    let ow = g.output[2];
    let kw = g.kernel[2];
    let taps = g.kernel[1] * kw;
    let in_sp = g.in_spatial();
    let cin = g.c_in / g.groups;
    let (y0, x0) = (q0 / ow, q0 % ow);
    if x0 + W <= ow && g.stride[2] == 1 {
        // The strip lies in one output row: under each tap it reads one run of an input row
        // (or nothing), the same for every input channel.
        let iy0 = (y0 * g.stride[1]) as isize - g.pad[1] as isize;
        let ix0 = x0 as isize - g.pad[2] as isize;
        let gap = taps * W;
        debug_assert!(panel.len() == cin * gap && x.len() >= cin * in_sp);
        let mut first = 0;
        for ky in 0..g.kernel[1] {
            let iy = iy0 + (ky * g.dilation[1]) as isize;
            let inside = iy >= 0 && (iy as usize) < ih;
            for kx in 0..kw {
                let ix = ix0 + (kx * g.dilation[2]) as isize;
                let (lo, hi) = if inside { unit_interior(W, ix, iw) } else { (0, 0) };
                let runs = Runs {
                    first,
                    gap,
                    cin,
                    in_sp,
                    lo,
                    start: (iy.max(0) * iw as isize + ix + lo as isize).max(0) as usize,
                };
                match hi - lo {
                    0 => runs.copy::<W, 0>(panel, x),
                    1 => runs.copy::<W, 1>(panel, x),
                    2 => runs.copy::<W, 2>(panel, x),
                    3 => runs.copy::<W, 3>(panel, x),
                    _ => runs.copy::<W, W>(panel, x),
                }
                first += W;
            }
        }
        return;
    }
    // Padded input coordinates of each position's kernel window origin.
    let origin: [(isize, isize); W] = core::array::from_fn(|j| {
        let q = q0 + j;
        (
            (q / ow * g.stride[1]) as isize - g.pad[1] as isize,
            (q % ow * g.stride[2]) as isize - g.pad[2] as isize,
        )
    });
    for t in 0..taps {
        let (dy, dx) = ((t / kw * g.dilation[1]) as isize, (t % kw * g.dilation[2]) as isize);
        // usize::MAX (never a valid index) for padding.
        let idx: [usize; W] = origin.map(|(y, x)| {
            let (y, x) = (y + dy, x + dx);
            if y >= 0 && (y as usize) < ih && x >= 0 && (x as usize) < iw {
                y as usize * iw + x as usize
            } else {
                usize::MAX
            }
        });
        for (c, dst) in panel[t * W..].chunks_mut(taps * W).take(cin).enumerate() {
            let xc = &x[c * in_sp..][..in_sp];
            for (d, &i) in dst[..W].iter_mut().zip(&idx) {
                *d = xc.get(i).copied().unwrap_or(0.0);
            }
        }
    }
}

/// The rows of one tap of a panel: for every input channel `c`, the row
/// `panel[first + c · gap ..][..W]` is `x[start + c · in_sp ..][..N]` at `lo`, zeros around it.
#[derive(Clone, Copy)]
struct Runs {
    first: usize,
    gap: usize,
    cin: usize,
    in_sp: usize,
    lo: usize,
    start: usize,
}

impl Runs {
    #[inline(always)]
    fn copy<const W: usize, const N: usize>(self, panel: &mut [f32], x: &[f32]) {
        let Runs {
            first,
            gap,
            cin,
            in_sp,
            lo,
            start,
        } = self;
        for c in 0..cin {
            let dst = &mut panel[first + c * gap..][..W];
            if N < W {
                dst.fill(0.0);
            }
            if N > 0 {
                let src = &x[start + c * in_sp..][..N];
                dst[lo..lo + N].copy_from_slice(src);
            }
        }
    }
}

/// One column row of a 2-d convolution whose output rows are as wide as its input rows
/// (`oW == W`; unit stride and dilation, zero padding), for the flattened output positions
/// `l0 .. l0 + len`: `out[j] = x[(r + dy) · W + (s + dx)]` where `l0 + j = r · W + s`, or 0
/// where that lies outside the input `x[H, W]`. It depends on the tap `(dy, dx)` only, not on
/// the input channel.
///
/// Input and output rows are both `W` long, so one copy of `x` shifted by `dy · W + dx` puts
/// every valid value in place; the `|dx|` columns per row that wrapped into a neighbouring row
/// are zeroed afterwards.
#[derive(Clone, Copy)]
struct Shift {
    /// `out[..lo]` and `out[hi..]` are zeros; `out[lo..hi]` is copied from `x[start..]`.
    lo: usize,
    hi: usize,
    start: usize,
    /// Columns `wrap.0 .. wrap.1` of every row read a neighbouring row: zeroed after the copy.
    wrap: (usize, usize),
    /// Index in `out` of the first position of the row holding `out[lo]`, as an offset from `lo`
    /// (`l0 + lo` minus its column).
    col0: usize,
    /// `W`.
    w: usize,
}

impl Shift {
    /// The shift of tap `(dy, dx)` for positions `l0 .. l0 + len` of `oh` output rows, input
    /// `[ih, w]`.
    #[inline]
    fn new(l0: usize, len: usize, [dy, dx]: [isize; 2], [oh, w, ih]: [usize; 3]) -> Self {
        let end = l0 + len;
        // Output rows `r` with `0 <= r + dy < H`, as flat positions clipped to the chunk.
        let rows_lo = (-dy).clamp(0, oh as isize) as usize;
        let rows_hi = (ih as isize - dy).clamp(rows_lo as isize, oh as isize) as usize;
        let p_lo = (rows_lo * w).clamp(l0, end);
        let p_hi = (rows_hi * w).clamp(p_lo, end);
        // Of those, the positions whose shifted source lies inside the plane (only wrapped
        // columns of the first and last row can fall outside it).
        let shift = dy * w as isize + dx;
        let q_lo = p_lo.max((-shift).max(0) as usize).min(p_hi);
        let q_hi = (((ih * w) as isize - shift).max(0) as usize).clamp(q_lo, p_hi);
        let wrap = if dx < 0 {
            (0, ((-dx) as usize).min(w))
        } else {
            ((w as isize - dx).max(0) as usize, w)
        };
        Shift {
            lo: q_lo - l0,
            hi: q_hi - l0,
            start: (q_lo as isize + shift).max(0) as usize,
            wrap,
            col0: q_lo % w,
            w,
        }
    }

    /// Writes the column row `out` (`[len]`) from one input channel `x` (`[H · W]`).
    #[inline]
    fn apply(&self, out: &mut [f32], x: &[f32]) {
        let (lo, hi, w) = (self.lo, self.hi, self.w);
        zero_run(&mut out[..lo]);
        zero_run(&mut out[hi..]);
        if lo == hi {
            return;
        }
        copy_run(&mut out[lo..hi], &x[self.start..self.start + (hi - lo)]);
        for c in self.wrap.0..self.wrap.1 {
            // The first position of column `c` at or after `lo`, then every `w`-th.
            let first = if c < self.col0 {
                lo + c + w - self.col0
            } else {
                lo + c - self.col0
            };
            if first < hi {
                out[first..hi].iter_mut().step_by(w).for_each(|v| *v = 0.0);
            }
        }
    }
}

/// Runs of at most this many floats are copied or zeroed inline, four at a time: on a
/// Cortex-M a call to `memcpy` or `memset` costs more than such a copy (the runs of small
/// inputs, e.g. 4 or 8 wide, are that short); longer runs use `copy_from_slice` and `fill`.
const SHORT_RUN: usize = 16;

/// `dst = src` (`src`: `[dst.len()]`).
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    if dst.len() > SHORT_RUN {
        dst.copy_from_slice(src);
        return;
    }
    let src = &src[..dst.len()];
    let mut d = dst.chunks_exact_mut(4);
    let mut s = src.chunks_exact(4);
    for (d4, s4) in (&mut d).zip(&mut s) {
        let v: [f32; 4] = [s4[0], s4[1], s4[2], s4[3]];
        d4.copy_from_slice(&v);
    }
    for (a, &b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = b;
    }
}

/// `dst = 0`.
#[inline(always)]
fn zero_run(dst: &mut [f32]) {
    if dst.len() > SHORT_RUN {
        dst.fill(0.0);
        return;
    }
    let mut d = dst.chunks_exact_mut(4);
    for d4 in &mut d {
        d4.copy_from_slice(&[0.0; 4]);
    }
    for a in d.into_remainder() {
        *a = 0.0;
    }
}

/// [`im2col`] for zero padding (`ZEROS`) or the other modes.
#[inline(always)]
pub(super) fn im2col_mode<const ZEROS: bool>(g: &ConvGeom, x: &[f32], col: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let (in_sp, mode) = (g.in_spatial(), g.mode);
    let len = col.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    for ((c, [kd, kh, kw]), colrow) in kernel_offsets(g).zip(col.chunks_exact_mut(len)) {
        // With zero padding, zero each row once; then only the interior of each piece is copied.
        if ZEROS {
            colrow.fill(0.0);
        }
        let xc = &x[c * in_sp..][..in_sp];
        let full = interior(g.output[2], src_index(g, 2, 0, kw), g.stride[2], iw);
        for (z, y, x0, range) in segments.clone() {
            // Only zero padding maps outside the input (`None`); that piece is already zero.
            let (Some(zd), Some(yh)) = (
                map::<ZEROS>(mode, src_index(g, 0, z, kd), id),
                map::<ZEROS>(mode, src_index(g, 1, y, kh), ih),
            ) else {
                continue;
            };
            let out = &mut colrow[range];
            let src = &xc[(zd * ih + yh) * iw..][..iw];
            let (off, (lo, hi)) = piece_interior(g, full, kw, x0, out.len());
            if !ZEROS {
                gather_edges(out, src, off, g.stride[2], lo, hi, mode);
            }
            gather_interior(out, src, off, g.stride[2], lo, hi);
        }
    }
}

/// [`PaddingMode::map`], with the zero-padding case known at compile time.
#[inline(always)]
fn map<const ZEROS: bool>(mode: PaddingMode, i: isize, n: usize) -> Option<usize> {
    if ZEROS {
        (i >= 0 && i < n as isize).then_some(i as usize)
    } else {
        mode.map(i, n)
    }
}

/// `out[o] = src[map(o·stride + off)]` outside the interior `lo..hi` (reflect, replicate and
/// circular padding).
#[inline]
fn gather_edges(out: &mut [f32], src: &[f32], off: isize, stride: usize, lo: usize, hi: usize, mode: PaddingMode) {
    let read = |o: usize| {
        mode.map(o as isize * stride as isize + off, src.len())
            .map_or(0.0, |i| src[i])
    };
    for (o, v) in out.iter_mut().enumerate().take(lo) {
        *v = read(o);
    }
    for (o, v) in out.iter_mut().enumerate().skip(hi) {
        *v = read(o);
    }
}

/// `out[o] = src[o·stride + off]` inside the interior `lo..hi`.
#[inline]
fn gather_interior(out: &mut [f32], src: &[f32], off: isize, stride: usize, lo: usize, hi: usize) {
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + off) as usize;
    let out = &mut out[lo..hi];
    if stride == 1 {
        for (v, &s) in out.iter_mut().zip(&src[start..]) {
            *v = s;
        }
    } else {
        for (v, &s) in out.iter_mut().zip(src[start..].iter().step_by(stride)) {
            *v = s;
        }
    }
}

/// Scatters a chunk of the column-matrix gradient, `dcol[C_in/g · kvol, len]` for the
/// flattened output positions `l0 .. l0 + len`, into `gx[C_in/g, D, H, W]` (accumulating),
/// through the same index map as [`im2col`].
pub(super) fn col2im(g: &ConvGeom, dcol: &[f32], gx: &mut [f32], l0: usize) {
    if is_unit_zeros(g) {
        col2im_unit_zeros(g, dcol, gx, l0);
    } else if g.mode == PaddingMode::Zeros {
        col2im_mode::<true>(g, dcol, gx, l0);
    } else {
        col2im_mode::<false>(g, dcol, gx, l0);
    }
}

/// [`col2im`] for [`is_unit_zeros`] geometry: the transpose of [`im2col_unit_zeros`], adding
/// each piece's interior run into one input row (padding positions have no input to receive
/// their gradient). The additions happen in the same order as the general path.
pub(super) fn col2im_unit_zeros(g: &ConvGeom, dcol: &[f32], gx: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let [kd_n, kh_n, kw_n] = g.kernel;
    let in_sp = g.in_spatial();
    let len = dcol.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    let [pd, ph, pw] = g.pad.map(|p| p as isize);
    let taps = (0..g.c_in / g.groups).flat_map(|c| (0..kd_n).flat_map(move |a| (0..kh_n).map(move |b| (c, a, b))));
    for ((c, kd, kh), block) in taps.zip(dcol.chunks_exact(kw_n * len)) {
        let gxc = &mut gx[c * in_sp..][..in_sp];
        for (z, y, x0, range) in segments.clone() {
            let (zs, ys) = ((z + kd) as isize - pd, (y + kh) as isize - ph);
            if zs < 0 || zs as usize >= id || ys < 0 || ys as usize >= ih {
                continue;
            }
            let dst = &mut gxc[(zs as usize * ih + ys as usize) * iw..][..iw];
            for (kw, colrow) in block.chunks_exact(len).enumerate() {
                let grad = &colrow[range.clone()];
                let off = (x0 + kw) as isize - pw;
                let (lo, hi) = unit_interior(grad.len(), off, iw);
                if lo == hi {
                    continue;
                }
                let start = (lo as isize + off) as usize;
                for (d, &gv) in dst[start..start + (hi - lo)].iter_mut().zip(&grad[lo..hi]) {
                    *d += gv;
                }
            }
        }
    }
}

/// [`col2im`] for zero padding (`ZEROS`) or the other modes.
#[inline(always)]
pub(super) fn col2im_mode<const ZEROS: bool>(g: &ConvGeom, dcol: &[f32], gx: &mut [f32], l0: usize) {
    let [id, ih, iw] = g.input;
    let (in_sp, mode) = (g.in_spatial(), g.mode);
    let len = dcol.len() / col_rows(g);
    let segments = Segments::new(g, l0, len);
    for ((c, [kd, kh, kw]), colrow) in kernel_offsets(g).zip(dcol.chunks_exact(len)) {
        let gxc = &mut gx[c * in_sp..][..in_sp];
        let full = interior(g.output[2], src_index(g, 2, 0, kw), g.stride[2], iw);
        for (z, y, x0, range) in segments.clone() {
            let (Some(zd), Some(yh)) = (
                map::<ZEROS>(mode, src_index(g, 0, z, kd), id),
                map::<ZEROS>(mode, src_index(g, 1, y, kh), ih),
            ) else {
                continue;
            };
            let dst = &mut gxc[(zd * ih + yh) * iw..][..iw];
            let grad = &colrow[range];
            let (off, (lo, hi)) = piece_interior(g, full, kw, x0, grad.len());
            if !ZEROS {
                scatter_edges(grad, dst, off, g.stride[2], lo, hi, mode);
            }
            scatter_interior(grad, dst, off, g.stride[2], lo, hi);
        }
    }
}

/// `dst[map(o·stride + off)] += grad[o]` outside the interior `lo..hi` (reflect, replicate and
/// circular padding).
#[inline]
fn scatter_edges(grad: &[f32], dst: &mut [f32], off: isize, stride: usize, lo: usize, hi: usize, mode: PaddingMode) {
    let n = dst.len();
    let edges = grad.iter().enumerate().take(lo).chain(grad.iter().enumerate().skip(hi));
    for (o, &gv) in edges {
        if let Some(i) = mode.map(o as isize * stride as isize + off, n) {
            dst[i] += gv;
        }
    }
}

/// `dst[o·stride + off] += grad[o]` inside the interior `lo..hi`.
#[inline]
fn scatter_interior(grad: &[f32], dst: &mut [f32], off: isize, stride: usize, lo: usize, hi: usize) {
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + off) as usize;
    let grad = &grad[lo..hi];
    if stride == 1 {
        for (d, &gv) in dst[start..].iter_mut().zip(grad) {
            *d += gv;
        }
    } else {
        for (d, &gv) in dst[start..].iter_mut().step_by(stride).zip(grad) {
            *d += gv;
        }
    }
}
