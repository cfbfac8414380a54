// Input gradient of the activations of activation_forward.wgsl, as
// torchlet::ops::activation::*_backward_input: gx += gy * act_grad(kind, a, b, x), from the
// forward input x.
//
// gx: [*] at x_off of binding 1, accumulated; x: [*] at aux_off of binding 2; gy: [*] at
// y_off of binding 3.

struct Act {
    x_off: u32, y_off: u32, aux_off: u32, total: u32,
    kind: u32, a: f32, b: f32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Act;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    gx[p.x_off + t] += gy[p.y_off + t] * act_grad(p.kind, p.a, p.b, x[p.aux_off + t]);
}
