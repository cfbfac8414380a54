// ELU, GELU, SiLU, Hardswish, Hardsigmoid, Softplus, Mish and ReLU6 forward (the kind in the
// uniform), as torchlet::ops::activation::*_forward: y = act(kind, a, b, x), the functions in
// activation_functions.wgsl.
//
// x: [*] at x_off of binding 1; y: [*] at y_off of binding 3, overwritten. One invocation per element.

struct Act {
    x_off: u32, y_off: u32, aux_off: u32, total: u32,
    kind: u32, a: f32, b: f32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Act;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    y[p.y_off + t] = act(p.kind, p.a, p.b, x[p.x_off + t]);
}
