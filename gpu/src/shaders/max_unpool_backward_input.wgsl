// Max unpooling input gradient, as torchlet::ops::pool::max_unpool_backward_input:
//
//   gx[n, c, i] += gy[n, c, indices[n, c, i]]   (nothing for an index >= out_spatial)
//
// gx: [N, C, in_spatial] at x_off of binding 1, accumulated; indices: [N, C, in_spatial] (u32)
// in binding 2; gy: [N, C, out_spatial] at y_off of binding 3. A gather already: one invocation
// per input element.

struct Unpool {
    n: u32, c: u32, in_sp: u32, out_sp: u32,
    x_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Unpool;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let idx = indices[t];
    if idx < p.out_sp {
        gx[p.x_off + t] += gy[p.y_off + (t / p.in_sp) * p.out_sp + idx];
    }
}
