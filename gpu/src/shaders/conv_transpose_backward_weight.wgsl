// Transposed convolution parameter gradients, as
// torchlet::ops::conv_transpose::conv_transpose_backward_weight:
//
//   gw[c, o', k] += sum over n and input positions i of
//                   x[n, c, i] * gy[n, g * C_out/groups + o', i * stride + k * dilation - pad]
//   gb[o]        += sum over n and output positions q of gy[n, o, q]
//
// x: [N, C_in, D, H, W] at x_off of binding 1; gw: [C_in, C_out/groups, kD, kH, kW] at w_off
// and gb: [C_out] at b_off of binding 2 (the gradient vector), accumulated;
// gy: [N, C_out, oD, oH, oW] at y_off of binding 3. One invocation per weight element, then one
// per bias element (t >= weight elements), each summing over the whole batch.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
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
    let wlen = p.c_in * cout_g * kvol;
    if t >= wlen {
        let o = t - wlen;
        var acc = 0.0;
        for (var n = 0u; n < p.n; n++) {
            let ybase = p.y_off + (n * p.c_out + o) * oplane;
            for (var q = 0u; q < oplane; q++) {
                acc += gy[ybase + q];
            }
        }
        grads[p.b_off + o] += acc;
        return;
    }
    let kk = t % kvol;
    let oo = (t / kvol) % cout_g;
    let c = t / (kvol * cout_g);
    let o = (c / cin_g) * cout_g + oo;
    let kx = kk % p.kw;
    let ky = (kk / p.kw) % p.kh;
    let kz = kk / (p.kw * p.kh);
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
        let xbase = p.x_off + (n * p.c_in + c) * iplane;
        let ybase = p.y_off + (n * p.c_out + o) * oplane;
        for (var iz = 0u; iz < p.id; iz++) {
            let qz = i32(iz * p.sd + kz * p.dd) - i32(p.pd);
            if qz < 0 || qz >= i32(p.od) {
                continue;
            }
            for (var iy = 0u; iy < p.ih; iy++) {
                let qy = i32(iy * p.sh + ky * p.dh) - i32(p.ph);
                if qy < 0 || qy >= i32(p.oh) {
                    continue;
                }
                for (var ix = 0u; ix < p.iw; ix++) {
                    let qx = i32(ix * p.sw + kx * p.dw) - i32(p.pw);
                    if qx < 0 || qx >= i32(p.ow) {
                        continue;
                    }
                    let q = (u32(qz) * p.oh + u32(qy)) * p.ow + u32(qx);
                    acc += x[xbase + (iz * p.ih + iy) * p.iw + ix] * gy[ybase + q];
                }
            }
        }
    }
    grads[p.w_off + t] += acc;
}
