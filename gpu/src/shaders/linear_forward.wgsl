// Linear forward, as torchlet::ops::linear::linear_forward (nn.Linear):
//
//   y[r, o] = b[o] + sum_i x[r, i] * w[o, i]
//
// x: [rows, in_f] at x_off of binding 1; w: [out_f, in_f] at w_off and b: [out_f] at b_off of
// binding 2 (the parameter vector); y: [rows, out_f] at y_off of binding 3, overwritten.
// One invocation per output element.

struct Linear {
    rows: u32, in_f: u32, out_f: u32, has_bias: u32,
    x_off: u32, w_off: u32, b_off: u32, y_off: u32,
    total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Linear;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let r = t / p.out_f;
    let o = t % p.out_f;
    let xrow = p.x_off + r * p.in_f;
    let wrow = p.w_off + o * p.in_f;
    var acc = 0.0;
    for (var i = 0u; i < p.in_f; i++) {
        acc += x[xrow + i] * params[wrow + i];
    }
    if p.has_bias != 0u {
        acc += params[p.b_off + o];
    }
    y[p.y_off + t] = acc;
}
