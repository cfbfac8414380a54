// Softmax over an axis, as torchlet::ops::softmax::softmax_forward (nn.Softmax(dim)):
//
//   y[o, a, i] = exp(x[o, a, i] - m) / sum_b exp(x[o, b, i] - m),   m = max_b x[o, b, i]
//
// Each sample is viewed as [outer, axis, inner]; the batch folds into outer.
// x: [N, outer, axis, inner] at x_off of binding 1; y: the same shape at y_off of binding 3,
// overwritten. One invocation per line (n, o, i), which owns its axis elements.

struct Softmax {
    outer: u32, axis: u32, inner: u32, x_off: u32,
    y_off: u32, aux_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Softmax;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    // Line t = (n, o, i) of the [N, outer, axis, inner] view: element a sits at base + a * inner.
    let base = (t / p.inner) * p.axis * p.inner + t % p.inner;
    var m = x[p.x_off + base];
    for (var a = 1u; a < p.axis; a++) {
        m = max(m, x[p.x_off + base + a * p.inner]);
    }
    var sum = 0.0;
    for (var a = 0u; a < p.axis; a++) {
        let k = base + a * p.inner;
        let e = exp(x[p.x_off + k] - m);
        y[p.y_off + k] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var a = 0u; a < p.axis; a++) {
        y[p.y_off + base + a * p.inner] *= inv;
    }
}
