// Average pooling input gradient, as torchlet::ops::pool::avg_pool_backward_input:
//
//   gx[n, c, i] += sum of gy[n, c, o] / divisor(o) over the outputs o whose window holds i
//
// with the forward's windows and divisors (avg_pool_forward.wgsl). gx: [N, C, D, H, W] at
// x_off of binding 1, accumulated; gy: [N, C, oD, oH, oW] at y_off of binding 3. The CPU
// scatters; here each invocation owns one input element and gathers, in the CPU's output
// order, from the windows that contain it (no atomics, no races).

struct AvgPool {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    kd: u32, kh: u32, kw: u32, sd: u32,
    sh: u32, sw: u32, pd: u32, ph: u32,
    pw: u32, include_pad: u32, x_off: u32, y_off: u32,
    total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: AvgPool;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

fn range(o: u32, input: u32, kernel: u32, stride: u32, pad: u32) -> vec3<i32> {
    let start = i32(o * stride) - i32(pad);
    let end = min(start + i32(kernel), i32(input + pad));
    let padded = max(end - start, 0);
    let first = max(start, 0);
    let last = max(min(end, i32(input)), first);
    return vec3<i32>(first, last, padded);
}

// The outputs [lo, hi) along one dim whose window [o * stride - pad, ... + kernel) holds i.
fn outputs(i: u32, output: u32, kernel: u32, stride: u32, pad: u32) -> vec2<u32> {
    let top = i + pad;
    var lo = 0u;
    if top + 1u > kernel {
        lo = (top + 1u - kernel + stride - 1u) / stride;
    }
    let hi = min(top / stride + 1u, output);
    return vec2<u32>(lo, max(hi, lo));
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
    let plane = r / p.id;
    let oz = outputs(iz, p.od, p.kd, p.sd, p.pd);
    let oy = outputs(iy, p.oh, p.kh, p.sh, p.ph);
    let ox = outputs(ix, p.ow, p.kw, p.sw, p.pw);
    let gbase = p.y_off + plane * p.od * p.oh * p.ow;
    var acc = gx[p.x_off + t];
    for (var z = oz.x; z < oz.y; z++) {
        let rz = range(z, p.id, p.kd, p.sd, p.pd);
        for (var h = oy.x; h < oy.y; h++) {
            let ry = range(h, p.ih, p.kh, p.sh, p.ph);
            for (var w = ox.x; w < ox.y; w++) {
                let rx = range(w, p.iw, p.kw, p.sw, p.pw);
                var divisor = 0;
                if p.include_pad != 0u {
                    divisor = rz.z * ry.z * rx.z;
                } else {
                    divisor = (rz.y - rz.x) * (ry.y - ry.x) * (rx.y - rx.x);
                }
                acc += gy[gbase + (z * p.oh + h) * p.ow + w] / f32(divisor);
            }
        }
    }
    gx[p.x_off + t] = acc;
}
