// Convolution input gradient, as torchlet::ops::conv::conv_backward_input (zeros padding):
//
//   gx[n, ci, i] += sum over output channels o of ci's group, kernel offsets k and output
//                   positions p with p * stride + k * dilation - pad == i of w[o, c, k] * gy[n, o, p]
//
// gx: [N, C_in, D, H, W] at x_off of binding 1, accumulated; w at w_off of binding 2 (the
// parameter vector); gy: [N, C_out, oD, oH, oW] at y_off of binding 3. One invocation per input
// element: a gather, so no two invocations write the same element.

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

// The output coordinate that reads input coordinate `i` through kernel offset `k` along one
// dim, or -1 when there is none.
fn out_coord(i: u32, k: u32, stride: u32, dilation: u32, pad: u32, out: u32) -> i32 {
    let num = i32(i + pad) - i32(k * dilation);
    if num < 0 || num % i32(stride) != 0 {
        return -1;
    }
    let o = num / i32(stride);
    if o >= i32(out) {
        return -1;
    }
    return o;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    var r = t;
    let ix = r % p.iw;
    r = r / p.iw;
    let iy = r % p.ih;
    r = r / p.ih;
    let iz = r % p.id;
    r = r / p.id;
    let ci = r % p.c_in;
    let n = r / p.c_in;
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    let g = ci / cin_g;
    let c = ci % cin_g;
    let kvol = p.kd * p.kh * p.kw;
    let oplane = p.od * p.oh * p.ow;
    var acc = 0.0;
    for (var o = g * cout_g; o < (g + 1u) * cout_g; o++) {
        let wbase = p.w_off + (o * cin_g + c) * kvol;
        let ybase = p.y_off + (n * p.c_out + o) * oplane;
        for (var kz = 0u; kz < p.kd; kz++) {
            let oz = out_coord(iz, kz, p.sd, p.dd, p.pd, p.od);
            if oz < 0 {
                continue;
            }
            for (var ky = 0u; ky < p.kh; ky++) {
                let oy = out_coord(iy, ky, p.sh, p.dh, p.ph, p.oh);
                if oy < 0 {
                    continue;
                }
                for (var kx = 0u; kx < p.kw; kx++) {
                    let ox = out_coord(ix, kx, p.sw, p.dw, p.pw, p.ow);
                    if ox < 0 {
                        continue;
                    }
                    let at = (u32(oz) * p.oh + u32(oy)) * p.ow + u32(ox);
                    acc += params[wbase + (kz * p.kh + ky) * p.kw + kx] * gy[ybase + at];
                }
            }
        }
    }
    gx[p.x_off + t] += acc;
}
