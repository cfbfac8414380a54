// Channel shuffle input gradient, as torchlet::ops::shuffle::channel_shuffle_backward_input:
//
//   gx[n, i * (C / groups) + j] += gy[n, j * groups + i]
//
// gx: [N, C, *spatial] (plane = prod(spatial) elements per channel) of binding 1, accumulated;
// gy: the same shape, binding 3. One invocation per input element: the inverse permutation
// is a gather too, so no two invocations write the same element.

struct Shuffle {
    c: u32, groups: u32, plane: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Shuffle;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let k = t / p.plane;
    let s = t % p.plane;
    let n = k / p.c;
    let ci = k % p.c;
    let per = p.c / p.groups;
    let o = (ci % per) * p.groups + ci / per;
    gx[t] += gy[(n * p.c + o) * p.plane + s];
}
