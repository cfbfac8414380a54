// Upsampling forward, as torchlet::ops::upsample::upsample_forward (nn.Upsample, nearest or
// bilinear, on [N, C, H, W]):
//
//   y[oh, ow] = sum over the taps (h, w) of oh and ow of wh * ww * x[h, w]
//
// y: [N, C, oH, oW] of binding 1, overwritten; x: [N, C, H, W] of binding 3. One invocation
// per output element.

struct Upsample {
    c: u32, ih: u32, iw: u32, oh: u32,
    ow: u32, rh: f32, rw: f32, bilinear: u32,
    align: u32, total: u32, _pad0: u32, _pad1: u32,
}

// The taps of output coordinate `dst` along a dim of `n` inputs with ratio `r`, as
// UpsampleGeom::taps: (i0, i1) and their weights (l0, l1).
struct Taps {
    i0: u32, i1: u32, l0: f32, l1: f32,
}

fn taps(dst: u32, n: u32, r: f32) -> Taps {
    if p.bilinear == 0u {
        let i = min(u32(f32(dst) * r), n - 1u);
        return Taps(i, i, 1.0, 0.0);
    }
    var src = f32(dst) * r;
    if p.align == 0u {
        src = max((f32(dst) + 0.5) * r - 0.5, 0.0);
    }
    let i0 = min(u32(src), n - 1u);
    let i1 = select(i0, i0 + 1u, i0 < n - 1u);
    let l1 = src - f32(i0);
    return Taps(i0, i1, 1.0 - l1, l1);
}

@group(0) @binding(0) var<uniform> p: Upsample;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let plane = t / (p.oh * p.ow);
    let i = (t / p.ow) % p.oh;
    let j = t % p.ow;
    let a = taps(i, p.ih, p.rh);
    let b = taps(j, p.iw, p.rw);
    let base = plane * p.ih * p.iw;
    y[t] = a.l0 * (b.l0 * x[base + a.i0 * p.iw + b.i0] + b.l1 * x[base + a.i0 * p.iw + b.i1])
        + a.l1 * (b.l0 * x[base + a.i1 * p.iw + b.i0] + b.l1 * x[base + a.i1 * p.iw + b.i1]);
}
