// Residual sum input gradient, as torchlet::ops::merge::add_backward_input (ga += gy,
// gb += gy), one branch per dispatch:
//
//   g += gy
//
// g: [*] (the gradient of one input's producer) at x_off of binding 1, accumulated; gy: [*]
// at y_off of binding 3. The host dispatches it once per input, so when one producer feeds
// both inputs (or other consumers too) every contribution is added, one dispatch after the
// other, without atomics. One invocation per element.

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
    g[p.x_off + t] += gy[p.y_off + t];
}
