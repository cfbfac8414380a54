// Convolution weight and bias gradients, as torchlet::ops::conv::conv_backward_weight
// (zeros padding), first of two passes:
//
//   gw[o, c, k] = sum_{n, p} gy[n, o, p] * x[n, g * C_in/groups + c, p * stride + k * dilation - pad]
//   gb[o]       = sum_{n, p} gy[n, o, p]
//
// An implicit GEMM, per group g: GW[o, col] = sum_r GY[o, r] * X[r, col] with o < C_out/groups
// rows, col = (c, kz, ky, kx) < C_in/groups * kvol columns, plus one column of ones for the bias
// (its result is gb), and r = (n, p) the reduction over samples and output positions. The
// reduction is long (64 x 1,024 terms for the tutorial network's first layer at batch 64), so it
// is split over chunks of `chunk` samples: each chunk writes its partial sums to
// partial[chunk, E] (E = weight_len + C_out with a bias, else weight_len, the gradient layout)
// and reduce_partials.wgsl adds the chunks into the gradient vector. 64 x 64 tiles, 4 x 4 per
// invocation, 16-deep slices in workgroup memory, as conv_forward.wgsl. Workgroup w: tile
// column, tile row, chunk, group, fastest first.
//
// x: [N, C_in, D, H, W] at x_off of binding 1; gy: [N, C_out, oD, oH, oW] at y_off of binding 3;
// partial: [chunks, E] in binding 4, overwritten.

struct Conv {
    n: u32, c_in: u32, c_out: u32, groups: u32,
    id: u32, ih: u32, iw: u32, od: u32,
    oh: u32, ow: u32, kd: u32, kh: u32,
    kw: u32, sd: u32, sh: u32, sw: u32,
    dd: u32, dh: u32, dw: u32, pd: u32,
    ph: u32, pw: u32, x_off: u32, w_off: u32,
    b_off: u32, has_bias: u32, y_off: u32, total: u32,
    chunk: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Conv;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

const NONE: u32 = 0xffffffffu;
const ONES: u32 = 0xfffffffeu;

// BM, BN, BK, a_tile, b_tile and multiply_tiles come from tile_gemm.wgsl, which kernels.rs
// puts in front of this file.
var<workgroup> col_c: array<u32, 64>; // channel offset c * iplane; NONE past the end, ONES for the bias column
var<workgroup> col_z: array<i32, 64>; // kernel offset * dilation - pad
var<workgroup> col_y: array<i32, 64>;
var<workgroup> col_x: array<i32, 64>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    let kvol = p.kd * p.kh * p.kw;
    let khw = p.kh * p.kw;
    let big_kw = cin_g * kvol;
    let weight_len = p.c_out * big_kw;
    let elems = weight_len + select(0u, p.c_out, p.has_bias != 0u);
    let cols = big_kw + select(0u, 1u, p.has_bias != 0u);
    let oplane = p.od * p.oh * p.ow;
    let iplane = p.id * p.ih * p.iw;
    let chunks = (p.n + p.chunk - 1u) / p.chunk;
    let tiles_n = (cols + BN - 1u) / BN;
    let tiles_m = (cout_g + BM - 1u) / BM;
    let w = wid.x + wid.y * nwg.x;
    let tile_n = w % tiles_n;
    let tile_m = (w / tiles_n) % tiles_m;
    let s = (w / (tiles_n * tiles_m)) % chunks;
    let g = w / (tiles_n * tiles_m * chunks);
    if g >= p.groups {
        return;
    }
    let c0 = tile_n * BN;
    let m0 = tile_m * BM;
    let n0 = s * p.chunk;
    let n1 = min(n0 + p.chunk, p.n);
    let big_r = (n1 - n0) * oplane;

    if lid < BN {
        let col = c0 + lid;
        if col < big_kw {
            let c = col / kvol;
            let kr = col % kvol;
            col_c[lid] = c * iplane;
            col_z[lid] = i32((kr / khw) * p.dd) - i32(p.pd);
            col_y[lid] = i32(((kr / p.kw) % p.kh) * p.dh) - i32(p.ph);
            col_x[lid] = i32((kr % p.kw) * p.dw) - i32(p.pw);
        } else if col < cols {
            col_c[lid] = ONES;
        } else {
            col_c[lid] = NONE;
        }
    }

    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    workgroupBarrier();

    for (var r0 = 0u; r0 < big_r; r0 += BK) {
        // GY slice: invocation (rows ty + 16 i, reduction index tx).
        let ra = r0 + tx;
        let na = n0 + ra / oplane;
        let ybase = p.y_off + (na * p.c_out + g * cout_g + m0) * oplane + ra % oplane;
        for (var i = 0u; i < 4u; i++) {
            let m = ty + 16u * i;
            var v = 0.0;
            if m0 + m < cout_g && ra < big_r {
                v = gy[ybase + m * oplane];
            }
            a_tile[tx * BM + m] = v;
        }
        // X slice: invocation (reduction index ty, columns tx + 16 i); decode r once.
        let rb = r0 + ty;
        let nb = n0 + rb / oplane;
        let q = rb % oplane;
        let izb = i32((q / (p.ow * p.oh)) * p.sd);
        let iyb = i32(((q / p.ow) % p.oh) * p.sh);
        let ixb = i32((q % p.ow) * p.sw);
        let xbase = p.x_off + (nb * p.c_in + g * cin_g) * iplane;
        for (var i = 0u; i < 4u; i++) {
            let jj = tx + 16u * i;
            var v = 0.0;
            let cc = col_c[jj];
            if rb < big_r && cc != NONE {
                if cc == ONES {
                    v = 1.0;
                } else {
                    let iz = izb + col_z[jj];
                    let iy = iyb + col_y[jj];
                    let ix = ixb + col_x[jj];
                    if iz >= 0 && iz < i32(p.id) && iy >= 0 && iy < i32(p.ih) && ix >= 0 && ix < i32(p.iw) {
                        v = x[xbase + cc + (u32(iz) * p.ih + u32(iy)) * p.iw + u32(ix)];
                    }
                }
            }
            b_tile[ty * BN + jj] = v;
        }
        workgroupBarrier();
        multiply_tiles(&acc, tx, ty);
        workgroupBarrier();
    }

    for (var jx = 0u; jx < 4u; jx++) {
        let col = c0 + tx + 16u * jx;
        if col >= cols {
            continue;
        }
        for (var i = 0u; i < 4u; i++) {
            let m = m0 + ty + 16u * i;
            if m >= cout_g {
                continue;
            }
            let o = g * cout_g + m;
            let e = select(weight_len + o, o * big_kw + col, col < big_kw);
            partial[s * elems + e] = acc[i * 4u + jx];
        }
    }
}
