// Max unpooling forward, as torchlet::ops::pool::max_unpool_forward (nn.MaxUnpool2d):
//
//   y[n, c, s] = x[n, c, i] for the last i with indices[n, c, i] = s, else 0
//
// x: [N, C, in_spatial] at x_off of binding 1; indices: [N, C, in_spatial] (u32, flat positions
// in an output plane, from the max pool's forward pass) in binding 2; y: [N, C, out_spatial] at
// y_off of binding 3, overwritten. The CPU scatters (the later of two equal indices wins); here
// each invocation owns one output element and scans its plane's indices from the end, so the
// same one wins. Indices >= out_spatial are never found, as the CPU skips them.

struct Unpool {
    n: u32, c: u32, in_sp: u32, out_sp: u32,
    x_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Unpool;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let s = t % p.out_sp;
    let plane = t / p.out_sp;
    var v = 0.0;
    for (var k = p.in_sp; k > 0u; k--) {
        let i = plane * p.in_sp + k - 1u;
        if indices[i] == s {
            v = x[p.x_off + i];
            break;
        }
    }
    y[p.y_off + t] = v;
}
