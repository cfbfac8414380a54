// Convolution input gradient, as torchlet::ops::conv::conv_backward_input (zeros padding):
//
//   gx[n, ci, i] += sum over output channels o of ci's group, kernel offsets k and output
//                   positions p with p * stride + k * dilation - pad == i of w[o, c, k] * gy[n, o, p]
//
// gx: [N, C_in, D, H, W] at x_off of binding 1, accumulated; w at w_off of binding 2 (the
// parameter vector); gy: [N, C_out, oD, oH, oW] at y_off of binding 3.
//
// An implicit GEMM with a gather (no float atomics needed: every gx element has one owner), per
// group g: GX[c, j] += W'[c, k] * GY'[k, j] with c < C_in/groups rows, j = (n, i) < N * D*H*W
// columns and k = (o, kz, ky, kx) < C_out/groups * kvol, where W'[c, (o, kk)] = w[o, c, kk] and
// GY'[(o, kk), (n, i)] = gy[n, o, p] for the output position p that reads i through kernel
// offset kk (0 when there is none: out of range or not on the stride). 64 x 64 tiles, 4 x 4 per
// invocation, 16-deep slices in workgroup memory, as conv_forward.wgsl.

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
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

// BM, BN, BK, a_tile, b_tile and multiply_tiles come from tile_gemm.wgsl, which kernels.rs
// puts in front of this file.
var<workgroup> col_base: array<u32, 64>; // gy offset of (n, channel g * C_out/groups), or u32 max when j >= N
var<workgroup> col_z: array<i32, 64>; // input position + padding
var<workgroup> col_y: array<i32, 64>;
var<workgroup> col_x: array<i32, 64>;

// The output coordinate that reads input coordinate t (= i + pad - k * dilation) along one
// dimension, or -1 when none does.
fn out_coord(t: i32, stride: u32, size: u32) -> i32 {
    if t < 0 || (u32(t) % stride) != 0u {
        return -1;
    }
    let o = u32(t) / stride;
    return select(-1, i32(o), o < size);
}

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
    let big_k = cout_g * kvol;
    let oplane = p.od * p.oh * p.ow;
    let iplane = p.id * p.ih * p.iw;
    let big_n = p.n * iplane;
    let tiles_n = (big_n + BN - 1u) / BN;
    let tiles_m = (cin_g + BM - 1u) / BM;
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
            let n = j / iplane;
            let q = j % iplane;
            let ix = q % p.iw;
            let iy = (q / p.iw) % p.ih;
            let iz = q / (p.iw * p.ih);
            col_base[lid] = p.y_off + (n * p.c_out + g * cout_g) * oplane;
            col_z[lid] = i32(iz + p.pd);
            col_y[lid] = i32(iy + p.ph);
            col_x[lid] = i32(ix + p.pw);
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
        // W' slice: invocation (row ty + 16 r, k tx).
        let ka = k0 + tx;
        let oa = ka / kvol;
        let kka = ka % kvol;
        for (var r = 0u; r < 4u; r++) {
            let m = ty + 16u * r;
            var v = 0.0;
            if m0 + m < cin_g && ka < big_k {
                v = params[p.w_off + ((g * cout_g + oa) * cin_g + m0 + m) * kvol + kka];
            }
            a_tile[tx * BM + m] = v;
        }
        // GY' slice: invocation (k ty, columns tx + 16 r).
        let kb = k0 + ty;
        let ob = kb / kvol;
        let kr = kb % kvol;
        let dz = i32((kr / khw) * p.dd);
        let dy = i32(((kr / p.kw) % p.kh) * p.dh);
        let dx = i32((kr % p.kw) * p.dw);
        for (var r = 0u; r < 4u; r++) {
            let jj = tx + 16u * r;
            var v = 0.0;
            let base = col_base[jj];
            if kb < big_k && base != 0xffffffffu {
                let oz = out_coord(col_z[jj] - dz, p.sd, p.od);
                let oy = out_coord(col_y[jj] - dy, p.sh, p.oh);
                let ox = out_coord(col_x[jj] - dx, p.sw, p.ow);
                if oz >= 0 && oy >= 0 && ox >= 0 {
                    v = gy[base + ob * oplane + (u32(oz) * p.oh + u32(oy)) * p.ow + u32(ox)];
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
        let n = j / iplane;
        let q = j % iplane;
        for (var i = 0u; i < 4u; i++) {
            let m = m0 + ty + 16u * i;
            if m >= cin_g {
                continue;
            }
            let idx = p.x_off + (n * p.c_in + g * cin_g + m) * iplane + q;
            gx[idx] += acc[i * 4u + jx];
        }
    }
}
