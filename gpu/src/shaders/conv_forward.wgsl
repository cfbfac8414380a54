// Convolution forward, as torchlet::ops::conv::conv_forward (nn.Conv1d/2d/3d, zeros padding):
//
//   y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] * x[n, g * C_in/groups + c, p * stride + k * dilation - pad]
//
// x: [N, C_in, D, H, W] at x_off of binding 1; w: [C_out, C_in/groups, kD, kH, kW] at w_off and
// b: [C_out] at b_off of binding 2 (the parameter vector); y: [N, C_out, oD, oH, oW] at y_off of
// binding 3, overwritten.
//
// An implicit GEMM, per group g: Y[o, j] = W[o, k] * X[k, j] with o < C_out/groups rows,
// j = (n, p) < N * P columns and k = (c, kz, ky, kx) < C_in/groups * kvol, where X is the
// im2col matrix gathered on the fly (never stored). Each workgroup of 256 invocations computes a
// 64 x 64 tile of Y, 4 x 4 elements per invocation, staging 16-deep slices of W and X in
// workgroup memory. The geometry of the tile's 64 columns is decoded once into `col_*`.
// Workgroup w: tile column w % tiles_n, then tile row, then group (`total` = workgroups * 256).

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
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// BM, BN, BK, a_tile, b_tile and multiply_tiles come from tile_gemm.wgsl, which kernels.rs
// puts in front of this file.
var<workgroup> col_base: array<u32, 64>; // x offset of (n, channel g * C_in/groups), or u32 max when j >= N
var<workgroup> col_z: array<i32, 64>;
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
    let big_k = cin_g * kvol;
    let plane = p.od * p.oh * p.ow;
    let iplane = p.id * p.ih * p.iw;
    let big_n = p.n * plane;
    let tiles_n = (big_n + BN - 1u) / BN;
    let tiles_m = (cout_g + BM - 1u) / BM;
    let w = wid.x + wid.y * nwg.x;
    let tile_n = w % tiles_n;
    let tile_m = (w / tiles_n) % tiles_m;
    let g = w / (tiles_n * tiles_m);
    if g >= p.groups {
        return;
    }
    let j0 = tile_n * BN;
    let m0 = tile_m * BM;

    if lid < BN {
        let j = j0 + lid;
        if j < big_n {
            let n = j / plane;
            let q = j % plane;
            let ox = q % p.ow;
            let oy = (q / p.ow) % p.oh;
            let oz = q / (p.ow * p.oh);
            col_base[lid] = p.x_off + (n * p.c_in + g * cin_g) * iplane;
            col_z[lid] = i32(oz * p.sd) - i32(p.pd);
            col_y[lid] = i32(oy * p.sh) - i32(p.ph);
            col_x[lid] = i32(ox * p.sw) - i32(p.pw);
        } else {
            col_base[lid] = 0xffffffffu;
        }
    }

    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    workgroupBarrier();

    for (var k0 = 0u; k0 < big_k; k0 += BK) {
        // W slice: invocation (row ty + 16 r, k tx).
        let ka = k0 + tx;
        for (var r = 0u; r < 4u; r++) {
            let m = ty + 16u * r;
            var v = 0.0;
            if m0 + m < cout_g && ka < big_k {
                v = params[p.w_off + (g * cout_g + m0 + m) * big_k + ka];
            }
            a_tile[tx * BM + m] = v;
        }
        // X slice: invocation (k ty, columns tx + 16 r); decode k once.
        let kb = k0 + ty;
        let c = kb / kvol;
        let kr = kb % kvol;
        let dz = i32((kr / khw) * p.dd);
        let dy = i32(((kr / p.kw) % p.kh) * p.dh);
        let dx = i32((kr % p.kw) * p.dw);
        for (var r = 0u; r < 4u; r++) {
            let jj = tx + 16u * r;
            var v = 0.0;
            let base = col_base[jj];
            if kb < big_k && base != 0xffffffffu {
                let iz = col_z[jj] + dz;
                let iy = col_y[jj] + dy;
                let ix = col_x[jj] + dx;
                if iz >= 0 && iz < i32(p.id) && iy >= 0 && iy < i32(p.ih) && ix >= 0 && ix < i32(p.iw) {
                    v = x[base + c * iplane + (u32(iz) * p.ih + u32(iy)) * p.iw + u32(ix)];
                }
            }
            b_tile[ty * BN + jj] = v;
        }
        workgroupBarrier();
        multiply_tiles(&acc, tx, ty);
        workgroupBarrier();
    }

    for (var jx = 0u; jx < 4u; jx++) {
        let j = j0 + tx + 16u * jx;
        if j >= big_n {
            continue;
        }
        let n = j / plane;
        let q = j % plane;
        for (var i = 0u; i < 4u; i++) {
            let m = m0 + ty + 16u * i;
            if m >= cout_g {
                continue;
            }
            let o = g * cout_g + m;
            var v = acc[i * 4u + jx];
            if p.has_bias != 0u {
                v += params[p.b_off + o];
            }
            y[p.y_off + (n * p.c_out + o) * plane + q] = v;
        }
    }
}
