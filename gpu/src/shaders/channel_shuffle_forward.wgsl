// Channel shuffle forward, as torchlet::ops::shuffle::channel_shuffle_forward
// (nn.ChannelShuffle(groups)):
//
//   y[n, j * groups + i] = x[n, i * (C / groups) + j]
//
// y: [N, C, *spatial] (plane = prod(spatial) elements per channel) of binding 1, overwritten;
// x: the same shape, binding 3. One invocation per output element (a gather).

struct Shuffle {
    c: u32, groups: u32, plane: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Shuffle;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let k = t / p.plane;
    let s = t % p.plane;
    let n = k / p.c;
    let o = k % p.c;
    let src = (o % p.groups) * (p.c / p.groups) + o / p.groups;
    y[t] = x[(n * p.c + src) * p.plane + s];
}
