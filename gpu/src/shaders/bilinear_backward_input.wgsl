// Bilinear input gradients, as torchlet::ops::bilinear::bilinear_backward_input, one input per
// dispatch (which = 0: the first, 1: the second):
//
//   which 0: gx1[r, i] += sum_o gy[r, o] * sum_j w[o, i, j] * x2[r, j]
//   which 1: gx2[r, j] += sum_o sum_i gy[r, o] * x1[r, i] * w[o, i, j]
//
// gx (gx1: [rows, in1] or gx2: [rows, in2]) at x1_off of binding 1, accumulated; w: [out, in1,
// in2] at w_off of binding 2; gy: [rows, out] at y_off of binding 3; the other input (x2 for
// which 0, x1 for which 1) at x2_off of binding 4. One invocation per element of gx.

struct Bilinear {
    rows: u32, in1: u32, in2: u32, out: u32,
    has_bias: u32, x1_off: u32, x2_off: u32, w_off: u32,
    b_off: u32, y_off: u32, which: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Bilinear;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read> other: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    var acc = 0.0;
    if p.which == 0u {
        let r = t / p.in1;
        let i = t % p.in1;
        for (var o = 0u; o < p.out; o++) {
            let wrow = p.w_off + (o * p.in1 + i) * p.in2;
            var s = 0.0;
            for (var j = 0u; j < p.in2; j++) {
                s += params[wrow + j] * other[p.x2_off + r * p.in2 + j];
            }
            acc += gy[p.y_off + r * p.out + o] * s;
        }
    } else {
        let r = t / p.in2;
        let j = t % p.in2;
        for (var o = 0u; o < p.out; o++) {
            let g = gy[p.y_off + r * p.out + o];
            for (var i = 0u; i < p.in1; i++) {
                acc += g * other[p.x2_off + r * p.in1 + i] * params[p.w_off + (o * p.in1 + i) * p.in2 + j];
            }
        }
    }
    gx[p.x1_off + t] += acc;
}
