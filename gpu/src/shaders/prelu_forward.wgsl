// PReLU forward, as torchlet::ops::activation::prelu_forward: y = x if x > 0 else w[c] x,
// c = (t / inner) % channels, or the one weight when `one_weight`.
//
// x: [N, C, S] at x_off of binding 1; the weight [C] or [1] at w_off of binding 2 (the
// parameters); y: [N, C, S] at y_off of binding 3, overwritten.

struct Prelu {
    x_off: u32, y_off: u32, w_off: u32, total: u32,
    channels: u32, inner: u32, one_weight: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Prelu;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let c = select((t / p.inner) % p.channels, 0u, p.one_weight != 0u);
    let v = x[p.x_off + t];
    y[p.y_off + t] = select(params[p.w_off + c] * v, v, v > 0.0);
}
