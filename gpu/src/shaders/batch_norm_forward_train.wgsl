// BatchNorm training forward, as torchlet::ops::batchnorm::batch_norm_forward_train
// (nn.BatchNorm1d/2d in model.train()). Input viewed as [N, C, S]; for channel c over its
// M = N * S values:
//
//   mean = sum x / M,  var = sum (x - mean)^2 / M (biased),  invstd = 1 / sqrt(var + eps)
//   y    = (x - mean) * (invstd * weight[c]) + bias[c]       (weight 1, bias 0 without affine)
//
// With track_running_stats (f = momentum, or 1 / num_batches_tracked for momentum None):
//   running_mean = (1 - f) running_mean + f mean
//   running_var  = (1 - f) running_var  + f sum (x - mean)^2 / (M - 1)   (unbiased)
//
// x: [N, C, S] at x_off of binding 1; weight, bias: [C] at w_off, b_off of binding 2 (the
// parameters); y: [N, C, S] at y_off of binding 3, overwritten; binding 4 holds the running
// statistics [running_mean[C], running_var[C], num_batches_tracked] at state_off and the saved
// [mean[C], invstd[C]] for the backward pass at saved_off.
//
// Dispatched twice with the same bindings, as the core's order: first with COUNT set, one
// invocation adds 1 to num_batches_tracked (separately, because all channels read it and
// workgroups cannot wait for each other); then one workgroup of 256 per channel: each
// invocation sums a strided share of the channel, a tree in workgroup memory adds the shares
// (mean first, then the centred squares, two passes as the core).

struct Bn {
    n: u32, c: u32, s: u32, flags: u32,
    x_off: u32, w_off: u32, b_off: u32, y_off: u32,
    state_off: u32, saved_off: u32, total: u32, _pad0: u32,
    eps: f32, momentum: f32, _pad1: u32, _pad2: u32,
}

const AFFINE: u32 = 1u;
const TRACK: u32 = 2u;
const CUMULATIVE: u32 = 4u;
const COUNT: u32 = 8u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Bn;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

var<workgroup> part: array<f32, WG>;

// Adds part[0..WG] into part[0]; every invocation of the workgroup calls it.
fn tree(li: u32) -> f32 {
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if li < half {
            part[li] += part[li + half];
        }
        workgroupBarrier();
    }
    let total = part[0];
    workgroupBarrier();
    return total;
}

// Index of the k-th value (k < N * S) of channel c.
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
    if (p.flags & COUNT) != 0u {
        if c == 0u && li == 0u && (p.flags & TRACK) != 0u {
            state[p.state_off + 2u * p.c] += 1.0;
        }
        return;
    }
    if c >= p.c {
        return;
    }
    let m = p.n * p.s;
    let inv_count = 1.0 / f32(m);
    var sum = 0.0;
    for (var k = li; k < m; k += WG) {
        sum += x[p.x_off + at(c, k)];
    }
    part[li] = sum;
    let mean = tree(li) * inv_count;
    var sq = 0.0;
    for (var k = li; k < m; k += WG) {
        let d = x[p.x_off + at(c, k)] - mean;
        sq += d * d;
    }
    part[li] = sq;
    let sq_total = tree(li);
    let invstd = 1.0 / sqrt(sq_total * inv_count + p.eps);
    if li == 0u {
        state[p.saved_off + c] = mean;
        state[p.saved_off + p.c + c] = invstd;
        if (p.flags & TRACK) != 0u {
            let tracked = state[p.state_off + 2u * p.c];
            let f = select(p.momentum, 1.0 / tracked, (p.flags & CUMULATIVE) != 0u);
            let unbiased = sq_total / (f32(m) - 1.0);
            let rm = p.state_off + c;
            let rv = p.state_off + p.c + c;
            state[rm] = (1.0 - f) * state[rm] + f * mean;
            state[rv] = (1.0 - f) * state[rv] + f * unbiased;
        }
    }
    var w = 1.0;
    var b = 0.0;
    if (p.flags & AFFINE) != 0u {
        w = params[p.w_off + c];
        b = params[p.b_off + c];
    }
    let scale = invstd * w;
    for (var k = li; k < m; k += WG) {
        let i = at(c, k);
        y[p.y_off + i] = (x[p.x_off + i] - mean) * scale + b;
    }
}
