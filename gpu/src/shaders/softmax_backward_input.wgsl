// Softmax input gradient, as torchlet::ops::softmax::softmax_backward_input:
//
//   gx[o, a, i] += y[o, a, i] * (gy[o, a, i] - sum_b gy[o, b, i] * y[o, b, i])
//
// gx: [N, outer, axis, inner] at x_off of binding 1, accumulated; y (the forward output): the
// same shape at aux_off of binding 2; gy: at y_off of binding 3. One invocation per line.

struct Softmax {
    outer: u32, axis: u32, inner: u32, x_off: u32,
    y_off: u32, aux_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Softmax;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    // Line t = (n, o, i) of the [N, outer, axis, inner] view: element a sits at base + a * inner.
    let base = (t / p.inner) * p.axis * p.inner + t % p.inner;
    var dot = 0.0;
    for (var a = 0u; a < p.axis; a++) {
        let k = base + a * p.inner;
        dot += gy[p.y_off + k] * y[p.aux_off + k];
    }
    for (var a = 0u; a < p.axis; a++) {
        let k = base + a * p.inner;
        gx[p.x_off + k] += y[p.aux_off + k] * (gy[p.y_off + k] - dot);
    }
}
