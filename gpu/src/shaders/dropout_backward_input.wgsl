// Dropout input gradient, as torchlet::ops::dropout::dropout_backward_input:
//
//   gx[i] += gy[i] * mask[i]
//
// gx: [*] at x_off of binding 1, accumulated; mask: [*] (the factors the forward pass drew)
// at aux_off of binding 2; gy: [*] at y_off of binding 3. One invocation per element.

struct Dropout {
    x_off: u32, y_off: u32, aux_off: u32, total: u32,
    p: f32, keep: f32, seed_lo: u32, seed_hi: u32,
}

@group(0) @binding(0) var<uniform> p: Dropout;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    gx[p.x_off + t] += gy[p.y_off + t] * mask[p.aux_off + t];
}
