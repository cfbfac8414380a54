// Bilinear parameter gradients, as torchlet::ops::bilinear::bilinear_backward_weight:
//
//   gw[o, i, j] += sum_r gy[r, o] * x1[r, i] * x2[r, j]
//   gb[o]       += sum_r gy[r, o]
//
// x1: [rows, in1] at x1_off of binding 1; gw: [out, in1, in2] at w_off and gb: [out] at b_off
// of binding 2 (the gradient vector), accumulated; gy: [rows, out] at y_off of binding 3;
// x2: [rows, in2] at x2_off of binding 4. One invocation per weight element, then one per bias
// element (t >= out * in1 * in2).

struct Bilinear {
    rows: u32, in1: u32, in2: u32, out: u32,
    has_bias: u32, x1_off: u32, x2_off: u32, w_off: u32,
    b_off: u32, y_off: u32, which: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Bilinear;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read> x2: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let wlen = p.out * p.in1 * p.in2;
    var acc = 0.0;
    if t >= wlen {
        let o = t - wlen;
        for (var r = 0u; r < p.rows; r++) {
            acc += gy[p.y_off + r * p.out + o];
        }
        grads[p.b_off + o] += acc;
        return;
    }
    let j = t % p.in2;
    let i = (t / p.in2) % p.in1;
    let o = t / (p.in2 * p.in1);
    for (var r = 0u; r < p.rows; r++) {
        acc += gy[p.y_off + r * p.out + o] * x1[p.x1_off + r * p.in1 + i] * x2[p.x2_off + r * p.in2 + j];
    }
    grads[p.w_off + t] += acc;
}
