// Transposed convolution input gradient, as
// torchlet::ops::conv_transpose::conv_transpose_backward_input (an ordinary convolution of gy):
//
//   gx[n, c, i] += sum over o' < C_out/groups and kernel offsets k of
//                  w[c, o', k] * gy[n, g * C_out/groups + o', i * stride + k * dilation - pad]
//
// (g: c's group; positions outside the output are skipped). gx: [N, C_in, D, H, W] at x_off of
// binding 1, accumulated; w: [C_in, C_out/groups, kD, kH, kW] at w_off of binding 2;
// gy: [N, C_out, oD, oH, oW] at y_off of binding 3. One invocation per input element.

struct ConvT {
    n: u32, c_in: u32, c_out: u32, groups: u32,
    id: u32, ih: u32, iw: u32, od: u32,
    oh: u32, ow: u32, kd: u32, kh: u32,
    kw: u32, sd: u32, sh: u32, sw: u32,
    dd: u32, dh: u32, dw: u32, pd: u32,
    ph: u32, pw: u32, x_off: u32, w_off: u32,
    b_off: u32, has_bias: u32, y_off: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: ConvT;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    let kvol = p.kd * p.kh * p.kw;
    let iplane = p.id * p.ih * p.iw;
    let oplane = p.od * p.oh * p.ow;
    let ix = t % p.iw;
    let iy = (t / p.iw) % p.ih;
    let iz = (t / (p.iw * p.ih)) % p.id;
    let c = (t / iplane) % p.c_in;
    let n = t / (iplane * p.c_in);
    let g = c / cin_g;
    var acc = 0.0;
    for (var oo = 0u; oo < cout_g; oo++) {
        let ybase = p.y_off + (n * p.c_out + g * cout_g + oo) * oplane;
        let wbase = p.w_off + (c * cout_g + oo) * kvol;
        for (var kz = 0u; kz < p.kd; kz++) {
            let qz = i32(iz * p.sd + kz * p.dd) - i32(p.pd);
            if qz < 0 || qz >= i32(p.od) {
                continue;
            }
            for (var ky = 0u; ky < p.kh; ky++) {
                let qy = i32(iy * p.sh + ky * p.dh) - i32(p.ph);
                if qy < 0 || qy >= i32(p.oh) {
                    continue;
                }
                for (var kx = 0u; kx < p.kw; kx++) {
                    let qx = i32(ix * p.sw + kx * p.dw) - i32(p.pw);
                    if qx < 0 || qx >= i32(p.ow) {
                        continue;
                    }
                    let q = (u32(qz) * p.oh + u32(qy)) * p.ow + u32(qx);
                    acc += params[wbase + (kz * p.kh + ky) * p.kw + kx] * gy[ybase + q];
                }
            }
        }
    }
    gx[p.x_off + t] += acc;
}
