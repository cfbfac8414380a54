// BatchNorm eval forward, as torchlet::ops::batchnorm::batch_norm_forward_eval
// (nn.BatchNorm1d/2d in model.eval(), with track_running_stats):
//
//   y = (x - running_mean[c]) * (weight[c] / sqrt(running_var[c] + eps)) + bias[c]
//
// x: [N, C, S] at x_off of binding 1; weight, bias: [C] at w_off, b_off of binding 2 (weight
// 1, bias 0 without affine); y: [N, C, S] at y_off of binding 3, overwritten; binding 4: the
// running statistics [running_mean[C], running_var[C], num_batches_tracked] at state_off,
// read only. One invocation per element.

struct Bn {
    n: u32, c: u32, s: u32, flags: u32,
    x_off: u32, w_off: u32, b_off: u32, y_off: u32,
    state_off: u32, saved_off: u32, total: u32, _pad0: u32,
    eps: f32, momentum: f32, _pad1: u32, _pad2: u32,
}

const AFFINE: u32 = 1u;

@group(0) @binding(0) var<uniform> p: Bn;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let c = t / p.s % p.c;
    let invstd = 1.0 / sqrt(state[p.state_off + p.c + c] + p.eps);
    var w = 1.0;
    var b = 0.0;
    if (p.flags & AFFINE) != 0u {
        w = params[p.w_off + c];
        b = params[p.b_off + c];
    }
    y[p.y_off + t] = (x[p.x_off + t] - state[p.state_off + c]) * (invstd * w) + b;
}
