// Linear weight and bias gradients, as torchlet::ops::linear::linear_backward_weight:
//
//   gw[o, i] += sum_r gy[r, o] * x[r, i]
//   gb[o]    += sum_r gy[r, o]
//
// x: [rows, in_f] at x_off of binding 1; gw at w_off and gb at b_off of binding 2 (the gradient
// vector), accumulated; gy: [rows, out_f] at y_off of binding 3. Invocations 0..out_f*in_f each
// own one weight element, the next out_f (with a bias) one bias element.

struct Linear {
    rows: u32, in_f: u32, out_f: u32, has_bias: u32,
    x_off: u32, w_off: u32, b_off: u32, y_off: u32,
    total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Linear;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let weight_len = p.out_f * p.in_f;
    if t >= weight_len {
        let o = t - weight_len;
        var acc = 0.0;
        for (var r = 0u; r < p.rows; r++) {
            acc += gy[p.y_off + r * p.out_f + o];
        }
        grads[p.b_off + o] += acc;
        return;
    }
    let o = t / p.in_f;
    let i = t % p.in_f;
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        acc += gy[p.y_off + r * p.out_f + o] * x[p.x_off + r * p.in_f + i];
    }
    grads[p.w_off + t] += acc;
}
