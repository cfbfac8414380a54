// PReLU input gradient, as torchlet::ops::activation::prelu_backward_input:
// gx += gy if x > 0 else w[c] gy.
//
// gx: [N, C, S] at x_off of binding 1, accumulated; the weight at w_off of binding 2; gy at
// y_off of binding 3; x (the forward input) at x_off of binding 4.

struct Prelu {
    x_off: u32, y_off: u32, w_off: u32, total: u32,
    channels: u32, inner: u32, one_weight: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Prelu;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let c = select((t / p.inner) % p.channels, 0u, p.one_weight != 0u);
    let g = gy[p.y_off + t];
    gx[p.x_off + t] += select(params[p.w_off + c] * g, g, x[p.x_off + t] > 0.0);
}
