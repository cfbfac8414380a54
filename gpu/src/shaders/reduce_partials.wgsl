// Second pass of a split reduction (conv_backward_weight.wgsl): adds the per-chunk partial
// sums of E elements into the gradient vector, in chunk order:
//
//   grads[dst(e)] += sum_c partial[c, e],  dst(e) = w_off + e for e < split, else b_off + e - split
//
// partial: [chunks, E] in binding 1; grads in binding 2, accumulated. One invocation per element.

struct Reduce {
    elems: u32, chunks: u32, split: u32, w_off: u32,
    b_off: u32, total: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Reduce;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 64u;
    if e >= p.total {
        return;
    }
    var acc = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        acc += partial[c * p.elems + e];
    }
    let dst = select(p.b_off + e - p.split, p.w_off + e, e < p.split);
    grads[dst] += acc;
}
