// Bilinear forward, as torchlet::ops::bilinear::bilinear_forward (nn.Bilinear):
//
//   y[r, o] = b[o] + sum_i x1[r, i] * (sum_j w[o, i, j] * x2[r, j])
//
// x1: [rows, in1] at x1_off of binding 1; w: [out, in1, in2] at w_off and b: [out] at b_off of
// binding 2 (the parameter vector); y: [rows, out] at y_off of binding 3, overwritten;
// x2: [rows, in2] at x2_off of binding 4. One invocation per output element.

struct Bilinear {
    rows: u32, in1: u32, in2: u32, out: u32,
    has_bias: u32, x1_off: u32, x2_off: u32, w_off: u32,
    b_off: u32, y_off: u32, which: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Bilinear;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> x2: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let r = t / p.out;
    let o = t % p.out;
    var acc = 0.0;
    for (var i = 0u; i < p.in1; i++) {
        let wrow = p.w_off + (o * p.in1 + i) * p.in2;
        var s = 0.0;
        for (var j = 0u; j < p.in2; j++) {
            s += params[wrow + j] * x2[p.x2_off + r * p.in2 + j];
        }
        acc += x1[p.x1_off + r * p.in1 + i] * s;
    }
    if p.has_bias != 0u {
        acc += params[p.b_off + o];
    }
    y[p.y_off + t] = acc;
}
