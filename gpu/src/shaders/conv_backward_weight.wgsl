// Convolution weight and bias gradients, as torchlet::ops::conv::conv_backward_weight
// (zeros padding):
//
//   gw[o, c, k] += sum_{n, p} gy[n, o, p] * x[n, g * C_in/groups + c, p * stride + k * dilation - pad]
//   gb[o]       += sum_{n, p} gy[n, o, p]
//
// x: [N, C_in, D, H, W] at x_off of binding 1; gw at w_off and gb at b_off of binding 2 (the
// gradient vector), accumulated; gy: [N, C_out, oD, oH, oW] at y_off of binding 3. Invocations
// 0..weight_len each own one weight element, the next C_out (with a bias) one bias element.

struct Conv {
    n: u32, c_in: u32, c_out: u32, groups: u32,
    id: u32, ih: u32, iw: u32, od: u32,
    oh: u32, ow: u32, kd: u32, kh: u32,
    kw: u32, sd: u32, sh: u32, sw: u32,
    dd: u32, dh: u32, dw: u32, pd: u32,
    ph: u32, pw: u32, x_off: u32, w_off: u32,
    b_off: u32, has_bias: u32, y_off: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Conv;
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
    let weight_len = p.c_out * cin_g * kvol;
    let iplane = p.id * p.ih * p.iw;
    let oplane = p.od * p.oh * p.ow;
    if t >= weight_len {
        // Bias gradient of output channel o.
        let o = t - weight_len;
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
    var r = t;
    let kx = r % p.kw;
    r = r / p.kw;
    let ky = r % p.kh;
    r = r / p.kh;
    let kz = r % p.kd;
    r = r / p.kd;
    let c = r % cin_g;
    let o = r / cin_g;
    let ci = (o / cout_g) * cin_g + c;
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
        let xbase = p.x_off + (n * p.c_in + ci) * iplane;
        let ybase = p.y_off + (n * p.c_out + o) * oplane;
        for (var oz = 0u; oz < p.od; oz++) {
            let iz = i32(oz * p.sd + kz * p.dd) - i32(p.pd);
            if iz < 0 || iz >= i32(p.id) {
                continue;
            }
            for (var oy = 0u; oy < p.oh; oy++) {
                let iy = i32(oy * p.sh + ky * p.dh) - i32(p.ph);
                if iy < 0 || iy >= i32(p.ih) {
                    continue;
                }
                let xrow = xbase + (u32(iz) * p.ih + u32(iy)) * p.iw;
                let yrow = ybase + (oz * p.oh + oy) * p.ow;
                for (var ox = 0u; ox < p.ow; ox++) {
                    let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pw);
                    if ix < 0 || ix >= i32(p.iw) {
                        continue;
                    }
                    acc += gy[yrow + ox] * x[xrow + u32(ix)];
                }
            }
        }
    }
    grads[p.w_off + t] += acc;
}
