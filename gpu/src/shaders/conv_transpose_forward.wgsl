// Transposed convolution forward, as torchlet::ops::conv_transpose::conv_transpose_forward
// (nn.ConvTranspose1d/2d/3d):
//
//   y[n, o, q] = b[o] + sum over input channels c of o's group, kernel offsets k and input
//                positions i with i * stride + k * dilation - pad = q of x[n, c, i] * w[c, o', k]
//
// (o' = o mod C_out/groups). x: [N, C_in, D, H, W] (small) at x_off of binding 1;
// w: [C_in, C_out/groups, kD, kH, kW] at w_off and b: [C_out] at b_off of binding 2 (the
// parameter vector); y: [N, C_out, oD, oH, oW] (large) at y_off of binding 3, overwritten. The
// CPU scatters; here each invocation owns one output element and gathers the input positions
// that reach it: i = (q + pad - k * dilation) / stride where that divides exactly. Positions
// no input reaches (output_padding) get the bias only.

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
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// The input position of output position q through kernel offset k along one dim, or -1.
fn source(q: u32, k: u32, stride: u32, dilation: u32, pad: u32, input: u32) -> i32 {
    let s = i32(q + pad) - i32(k * dilation);
    if s < 0 || s % i32(stride) != 0 {
        return -1;
    }
    let i = s / i32(stride);
    return select(-1, i, i < i32(input));
}

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
    let qx = t % p.ow;
    let qy = (t / p.ow) % p.oh;
    let qz = (t / (p.ow * p.oh)) % p.od;
    let o = (t / oplane) % p.c_out;
    let n = t / (oplane * p.c_out);
    let g = o / cout_g;
    let oo = o % cout_g;
    var acc = 0.0;
    for (var kz = 0u; kz < p.kd; kz++) {
        let iz = source(qz, kz, p.sd, p.dd, p.pd, p.id);
        if iz < 0 {
            continue;
        }
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = source(qy, ky, p.sh, p.dh, p.ph, p.ih);
            if iy < 0 {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = source(qx, kx, p.sw, p.dw, p.pw, p.iw);
                if ix < 0 {
                    continue;
                }
                let pos = (u32(iz) * p.ih + u32(iy)) * p.iw + u32(ix);
                let kk = (kz * p.kh + ky) * p.kw + kx;
                for (var ci = 0u; ci < cin_g; ci++) {
                    let c = g * cin_g + ci;
                    acc += x[p.x_off + (n * p.c_in + c) * iplane + pos] * params[p.w_off + (c * cout_g + oo) * kvol + kk];
                }
            }
        }
    }
    if p.has_bias != 0u {
        acc += params[p.b_off + o];
    }
    y[p.y_off + t] = acc;
}
