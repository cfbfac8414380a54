// BatchNorm eval backward, the running statistics being constants, as
// torchlet::ops::batchnorm::batch_norm_backward_eval. With invstd = 1 / sqrt(running_var[c] +
// eps) and xhat = (x - running_mean[c]) * invstd:
//
//   gx += gy * weight[c] * invstd,  gweight[c] += sum gy * xhat,  gbias[c] += sum gy
//
// (weight 1 and no weight or bias gradient without affine).
//
// Bindings as batch_norm_backward_train.wgsl, except binding 4: the running statistics
// [running_mean[C], running_var[C], num_batches_tracked] at state_off. One workgroup of 256
// per channel, the sums added by a tree in workgroup memory.

struct Bn {
    n: u32, c: u32, s: u32, flags: u32,
    x_off: u32, w_off: u32, b_off: u32, y_off: u32,
    state_off: u32, saved_off: u32, total: u32, _pad0: u32,
    eps: f32, momentum: f32, _pad1: u32, _pad2: u32,
}

const AFFINE: u32 = 1u;
const HAS_GX: u32 = 16u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Bn;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<f32>;
@group(0) @binding(5) var<storage, read> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;

var<workgroup> part_gy: array<f32, WG>;
var<workgroup> part_gy_xhat: array<f32, WG>;

fn at(c: u32, k: u32) -> u32 {
    return (k / p.s * p.c + c) * p.s + k % p.s;
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let c = wid.x + wid.y * nwg.x;
    if c >= p.c {
        return;
    }
    let m = p.n * p.s;
    let mean = state[p.state_off + c];
    let invstd = 1.0 / sqrt(state[p.state_off + p.c + c] + p.eps);
    var scale = invstd;
    if (p.flags & AFFINE) != 0u {
        var s_gy = 0.0;
        var s_gy_xhat = 0.0;
        for (var k = li; k < m; k += WG) {
            let i = at(c, k);
            let g = gy[p.y_off + i];
            s_gy += g;
            s_gy_xhat += g * (x[p.x_off + i] - mean) * invstd;
        }
        part_gy[li] = s_gy;
        part_gy_xhat[li] = s_gy_xhat;
        workgroupBarrier();
        for (var half = WG / 2u; half > 0u; half = half / 2u) {
            if li < half {
                part_gy[li] += part_gy[li + half];
                part_gy_xhat[li] += part_gy_xhat[li + half];
            }
            workgroupBarrier();
        }
        if li == 0u {
            grads[p.w_off + c] += part_gy_xhat[0];
            grads[p.b_off + c] += part_gy[0];
        }
        scale = params[p.w_off + c] * invstd;
    }
    if (p.flags & HAS_GX) == 0u {
        return;
    }
    for (var k = li; k < m; k += WG) {
        let i = at(c, k);
        gx[p.x_off + i] += gy[p.y_off + i] * scale;
    }
}
