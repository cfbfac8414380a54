// Residual sum, as torchlet::ops::merge::add_forward:
//
//   y = a + b
//
// a: [*] at x_off of binding 1; b: [*] at x2_off of binding 2 (may be the same buffer as a
// when one producer feeds both inputs: both are read only); y: [*] at y_off of binding 3,
// overwritten. One invocation per element.

struct Merge {
    a: u32, b: u32, second: u32, x_off: u32,
    x2_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Merge;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    y[p.y_off + t] = a[p.x_off + t] + b[p.x2_off + t];
}
