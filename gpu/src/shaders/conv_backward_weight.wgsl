// Convolution weight and bias gradients, as torchlet::ops::conv::conv_backward_weight
// (zeros padding), first of two passes:
//
//   gw[o, c, k] = sum_{n, p} gy[n, o, p] * x[n, g * C_in/groups + c, p * stride + k * dilation - pad]
//   gb[o]       = sum_{n, p} gy[n, o, p]
//
// A weight element's sum runs over the whole batch and every output position (64 x 1,024
// terms for the tutorial network's first layer at batch 64, which has only 2,432 weights), so
// the batch is split into chunks of `chunk` samples: invocation t computes element
// e = t % E of chunk t / E (E = weight_len + C_out with a bias, else weight_len) and writes
// it to partial[t]; reduce_partials.wgsl then adds the chunks into the gradient vector.
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
    let elems = weight_len + select(0u, p.c_out, p.has_bias != 0u);
    let e = t % elems;
    let n0 = (t / elems) * p.chunk;
    let n1 = min(n0 + p.chunk, p.n);
    let iplane = p.id * p.ih * p.iw;
    let oplane = p.od * p.oh * p.ow;
    if e >= weight_len {
        // Bias gradient of output channel o.
        let o = e - weight_len;
        var acc = 0.0;
        for (var n = n0; n < n1; n++) {
            let ybase = p.y_off + (n * p.c_out + o) * oplane;
            for (var q = 0u; q < oplane; q++) {
                acc += gy[ybase + q];
            }
        }
        partial[t] = acc;
        return;
    }
    var r = e;
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
    for (var n = n0; n < n1; n++) {
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
    partial[t] = acc;
}
