// Linear input gradient, as torchlet::ops::linear::linear_backward_input:
//
//   gx[r, i] += sum_o gy[r, o] * w[o, i]
//
// gx: [rows, in_f] at x_off of binding 1, accumulated; w: [out_f, in_f] at w_off of binding 2
// (the parameter vector); gy: [rows, out_f] at y_off of binding 3. One invocation per element of gx.

struct Linear {
    rows: u32, in_f: u32, out_f: u32, has_bias: u32,
    x_off: u32, w_off: u32, b_off: u32, y_off: u32,
    total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Linear;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let r = t / p.in_f;
    let i = t % p.in_f;
    let yrow = p.y_off + r * p.out_f;
    var acc = 0.0;
    for (var o = 0u; o < p.out_f; o++) {
        acc += gy[yrow + o] * params[p.w_off + o * p.in_f + i];
    }
    gx[p.x_off + t] += acc;
}
