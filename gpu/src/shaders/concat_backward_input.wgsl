// Channel concatenation input gradient, as torchlet::ops::merge::concat_backward_input
// (ga[s] += gy[s][..a], gb[s] += gy[s][a..]), one branch per dispatch:
//
//   g[s, j] += gy[s, start + j]   (start = 0 for the first input, a for the second)
//
// g: [n, len] (len = a, or b when second = 1) at x_off of binding 1, accumulated; gy:
// [n, a + b] at y_off of binding 3. Dispatched once per input, so contributions to a producer
// used twice add up, one dispatch after the other. One invocation per element of g.

struct Merge {
    a: u32, b: u32, second: u32, x_off: u32,
    x2_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Merge;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let len = select(p.a, p.b, p.second != 0u);
    let start = select(0u, p.a, p.second != 0u);
    let s = t / len;
    let j = t % len;
    g[p.x_off + t] += gy[p.y_off + s * (p.a + p.b) + start + j];
}
