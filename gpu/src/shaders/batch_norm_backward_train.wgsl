// BatchNorm training backward, through the batch statistics, as
// torchlet::ops::batchnorm::batch_norm_backward_train. With xhat = (x - mean) * invstd and
// M = N * S values per channel c:
//
//   gbias[c]   += sum gy
//   gweight[c] += sum gy * xhat
//   gx         += weight[c] * invstd * (gy - sum(gy) / M - xhat * sum(gy * xhat) / M)
//
// (weight 1 and no weight or bias gradient without affine).
//
// gx: [N, C, S] at x_off of binding 1, accumulated (only with HAS_GX: a layer reading the
// network's input needs no input gradient); weight: [C] at w_off of binding 2; gy: [N, C, S]
// at y_off of binding 3; binding 4: the saved [mean[C], invstd[C]] of the forward pass at
// saved_off; x: [N, C, S] at x_off of binding 5; binding 6: the gradients, gweight and gbias
// at w_off and b_off, accumulated. One workgroup of 256 per channel: strided shares of both
// sums, added by a tree in workgroup memory; invocation 0 owns the channel's weight and bias
// gradients, every invocation its share of gx.

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
    let mean = state[p.saved_off + c];
    let invstd = state[p.saved_off + p.c + c];
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
    let sum_gy = part_gy[0];
    let sum_gy_xhat = part_gy_xhat[0];
    var w = 1.0;
    if (p.flags & AFFINE) != 0u {
        w = params[p.w_off + c];
        if li == 0u {
            grads[p.w_off + c] += sum_gy_xhat;
            grads[p.b_off + c] += sum_gy;
        }
    }
    if (p.flags & HAS_GX) == 0u {
        return;
    }
    let inv_count = 1.0 / f32(m);
    let scale = w * invstd;
    let mean_gy = sum_gy * inv_count;
    let mean_gy_xhat = sum_gy_xhat * inv_count;
    for (var k = li; k < m; k += WG) {
        let i = at(c, k);
        let xhat = (x[p.x_off + i] - mean) * invstd;
        gx[p.x_off + i] += scale * (gy[p.y_off + i] - mean_gy - xhat * mean_gy_xhat);
    }
}
