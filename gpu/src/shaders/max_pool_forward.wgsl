// Max pooling forward with argmax indices, as torchlet::ops::pool::max_pool_forward
// (nn.MaxPool1d/2d/3d):
//
//   y[n, c, o] = max over the dilated window o * stride - pad + k * dilation (k < kernel) of
//                the positions inside the input; indices[n, c, o] = the flat index
//                d * H * W + h * W + w of the first maximum within the (n, c) plane.
//
// x: [N, C, D, H, W] at x_off of binding 1; indices: [N, C, oD, oH, oW] (u32) in binding 2;
// y: [N, C, oD, oH, oW] at y_off of binding 3, overwritten. Window bounds as PyTorch's CPU
// kernel (torchlet's dilated_range): a window with no input position gives -inf and the index
// of its first position after the padding, which lies outside the plane.

struct Pool {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    kd: u32, kh: u32, kw: u32, sd: u32,
    sh: u32, sw: u32, dd: u32, dh: u32,
    dw: u32, pd: u32, ph: u32, pw: u32,
    x_off: u32, y_off: u32, total: u32, scatter: u32,
}

@group(0) @binding(0) var<uniform> p: Pool;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// First input position, end (exclusive) of the window of output `o` along one dim.
fn window(o: u32, input: u32, kernel: u32, stride: u32, dilation: u32, pad: u32) -> vec2<i32> {
    let start = i32(o * stride) - i32(pad);
    let end = min(start + i32(dilation * (kernel - 1u) + 1u), i32(input));
    var first = start;
    if first < 0 {
        let d = i32(dilation);
        first += (-first + d - 1) / d * d;
    }
    return vec2<i32>(first, max(end, 0));
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
    let wz = window(oz, p.id, p.kd, p.sd, p.dd, p.pd);
    let wy = window(oy, p.ih, p.kh, p.sh, p.dh, p.ph);
    let wx = window(ox, p.iw, p.kw, p.sw, p.dw, p.pw);
    let xbase = p.x_off + plane * p.id * p.ih * p.iw;
    var best = bitcast<f32>(0xff800000u);
    var best_at = u32((wz.x * i32(p.ih) + wy.x) * i32(p.iw) + wx.x);
    for (var d = wz.x; d < wz.y; d += i32(p.dd)) {
        for (var h = wy.x; h < wy.y; h += i32(p.dh)) {
            for (var w = wx.x; w < wx.y; w += i32(p.dw)) {
                let at = u32((d * i32(p.ih) + h) * i32(p.iw) + w);
                let v = x[xbase + at];
                if v > best || v != v {
                    best = v;
                    best_at = at;
                }
            }
        }
    }
    y[p.y_off + t] = best;
    indices[t] = best_at;
}
