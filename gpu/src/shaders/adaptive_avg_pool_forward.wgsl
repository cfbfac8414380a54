// Adaptive average pooling forward, as torchlet::ops::pool::adaptive_avg_pool_forward
// (nn.AdaptiveAvgPool1d/2d):
//
//   y[n, c, o] = mean of x over the window [floor(o * in / out), ceil((o + 1) * in / out))
//                in each dim (windows overlap when out does not divide in)
//
// x: [N, C, D, H, W] at x_off of binding 1; y: [N, C, oD, oH, oW] at y_off of binding 3,
// overwritten. One invocation per output element, summing in the CPU's order.

struct Adaptive {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    x_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Adaptive;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// The window [floor(i * input / output), ceil((i + 1) * input / output)) of output i along one
// dim (the core's adaptive_range).
fn window(i: u32, input: u32, output: u32) -> vec2<u32> {
    return vec2<u32>(i * input / output, ((i + 1u) * input + output - 1u) / output);
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
    let wz = window(oz, p.id, p.od);
    let wy = window(oy, p.ih, p.oh);
    let wx = window(ox, p.iw, p.ow);
    let xbase = p.x_off + plane * p.id * p.ih * p.iw;
    var sum = 0.0;
    for (var d = wz.x; d < wz.y; d++) {
        for (var h = wy.x; h < wy.y; h++) {
            let row = xbase + (d * p.ih + h) * p.iw;
            for (var w = wx.x; w < wx.y; w++) {
                sum += x[row + w];
            }
        }
    }
    y[p.y_off + t] = sum / f32((wz.y - wz.x) * (wy.y - wy.x) * (wx.y - wx.x));
}
