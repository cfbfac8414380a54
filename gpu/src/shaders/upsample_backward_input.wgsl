// Upsampling input gradient, as torchlet::ops::upsample::upsample_backward_input:
//
//   gx[h, w] += sum over oh, ow of wh(oh, h) * ww(ow, w) * gy[oh, ow]
//
// gx: [N, C, H, W] of binding 1, accumulated; gy: [N, C, oH, oW] of binding 3. The CPU
// scatters; here each invocation owns one input element and gathers the output positions
// whose taps read it (no float atomics in WGSL). The weights are separable, so an output row
// that does not read row h skips its whole row.

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
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

// The weight with which output coordinate `dst` reads input coordinate `i`.
fn weight(dst: u32, i: u32, n: u32, r: f32) -> f32 {
    let k = taps(dst, n, r);
    return select(0.0, k.l0, k.i0 == i) + select(0.0, k.l1, k.i1 == i);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let plane = t / (p.ih * p.iw);
    let h = (t / p.iw) % p.ih;
    let w = t % p.iw;
    let base = plane * p.oh * p.ow;
    var acc = 0.0;
    for (var i = 0u; i < p.oh; i++) {
        let a = weight(i, h, p.ih, p.rh);
        if a == 0.0 {
            continue;
        }
        for (var j = 0u; j < p.ow; j++) {
            let b = weight(j, w, p.iw, p.rw);
            if b != 0.0 {
                acc += a * b * gy[base + i * p.ow + j];
            }
        }
    }
    gx[t] += acc;
}
