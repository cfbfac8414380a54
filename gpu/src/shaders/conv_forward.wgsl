// Convolution forward, as torchlet::ops::conv::conv_forward (nn.Conv1d/2d/3d, zeros padding):
//
//   y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] * x[n, g * C_in/groups + c, p * stride + k * dilation - pad]
//
// x: [N, C_in, D, H, W] at x_off of binding 1; w: [C_out, C_in/groups, kD, kH, kW] at w_off and
// b: [C_out] at b_off of binding 2 (the parameter vector); y: [N, C_out, oD, oH, oW] at y_off of
// binding 3, overwritten. One invocation per output element (`total` of them).

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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    var r = t;
    let ox = r % p.ow;
    r = r / p.ow;
    let oy = r % p.oh;
    r = r / p.oh;
    let oz = r % p.od;
    r = r / p.od;
    let o = r % p.c_out;
    let n = r / p.c_out;
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    let g = o / cout_g;
    let kvol = p.kd * p.kh * p.kw;
    var acc = 0.0;
    for (var c = 0u; c < cin_g; c++) {
        let xbase = p.x_off + (n * p.c_in + g * cin_g + c) * p.id * p.ih * p.iw;
        let wbase = p.w_off + (o * cin_g + c) * kvol;
        for (var kz = 0u; kz < p.kd; kz++) {
            let iz = i32(oz * p.sd + kz * p.dd) - i32(p.pd);
            if iz < 0 || iz >= i32(p.id) {
                continue;
            }
            for (var ky = 0u; ky < p.kh; ky++) {
                let iy = i32(oy * p.sh + ky * p.dh) - i32(p.ph);
                if iy < 0 || iy >= i32(p.ih) {
                    continue;
                }
                let xrow = xbase + (u32(iz) * p.ih + u32(iy)) * p.iw;
                let wrow = wbase + (kz * p.kh + ky) * p.kw;
                for (var kx = 0u; kx < p.kw; kx++) {
                    let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pw);
                    if ix < 0 || ix >= i32(p.iw) {
                        continue;
                    }
                    acc += x[xrow + u32(ix)] * params[wrow + kx];
                }
            }
        }
    }
    if p.has_bias != 0u {
        acc += params[p.b_off + o];
    }
    y[p.y_off + t] = acc;
}
