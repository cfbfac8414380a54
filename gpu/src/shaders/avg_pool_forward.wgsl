// Average pooling forward, as torchlet::ops::pool::avg_pool_forward (nn.AvgPool1d/2d/3d):
//
//   y[n, c, o] = sum of x over the window of o / divisor
//
// In each dim the window [o * stride - pad, o * stride - pad + kernel) is clipped to the end
// of the padded input (input + pad) and measured (its product over dims is PyTorch's
// pool_size), then clipped to the input. The divisor is pool_size with count_include_pad,
// else the number of input positions in the window; an empty window gives 0.
//
// x: [N, C, D, H, W] at x_off of binding 1; y: [N, C, oD, oH, oW] at y_off of binding 3,
// overwritten. One invocation per output element, summing in the CPU's order.

struct AvgPool {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    kd: u32, kh: u32, kw: u32, sd: u32,
    sh: u32, sw: u32, pd: u32, ph: u32,
    pw: u32, include_pad: u32, x_off: u32, y_off: u32,
    total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: AvgPool;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// (first, last, padded length) of output o's window along one dim (the core's avg_range).
fn range(o: u32, input: u32, kernel: u32, stride: u32, pad: u32) -> vec3<i32> {
    let start = i32(o * stride) - i32(pad);
    let end = min(start + i32(kernel), i32(input + pad));
    let padded = max(end - start, 0);
    let first = max(start, 0);
    let last = max(min(end, i32(input)), first);
    return vec3<i32>(first, last, padded);
}

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
    let plane = r / p.od;
    let rz = range(oz, p.id, p.kd, p.sd, p.pd);
    let ry = range(oy, p.ih, p.kh, p.sh, p.ph);
    let rx = range(ox, p.iw, p.kw, p.sw, p.pw);
    var divisor = 0;
    if rz.x < rz.y && ry.x < ry.y && rx.x < rx.y {
        if p.include_pad != 0u {
            divisor = rz.z * ry.z * rx.z;
        } else {
            divisor = (rz.y - rz.x) * (ry.y - ry.x) * (rx.y - rx.x);
        }
    }
    let xbase = p.x_off + plane * p.id * p.ih * p.iw;
    var sum = 0.0;
    for (var d = rz.x; d < rz.y; d++) {
        for (var h = ry.x; h < ry.y; h++) {
            let row = xbase + u32((d * i32(p.ih) + h) * i32(p.iw));
            for (var w = rx.x; w < rx.y; w++) {
                sum += x[row + u32(w)];
            }
        }
    }
    y[p.y_off + t] = select(sum / f32(divisor), 0.0, divisor == 0);
}
