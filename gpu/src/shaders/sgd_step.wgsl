// One SGD step, as torchlet::optim::Sgd (torch.optim.SGD), with weight decay lambda, momentum
// mu, dampening tau, Nesterov and learning rate gamma:
//
//   g <- g + lambda theta                    if lambda != 0
//   b <- g  (first step)  or  mu b + (1 - tau) g   if mu != 0
//   g <- g + mu b  (nesterov)  or  g <- b
//   theta <- theta - gamma g
//
// params: [P] in binding 1, updated; grads: [P] in binding 2; momentum buffer b: [P] in
// binding 3 (unused without momentum); loss (binding 4): element 0 is this step's loss. The
// step is skipped when that loss is NaN or infinite, as the CPU's backward refuses a
// non-finite loss before any step.

struct Sgd {
    len: u32, first: u32, nesterov: u32, _pad0: u32,
    lr: f32, momentum: f32, dampening: f32, weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: Sgd;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;
@group(0) @binding(4) var<storage, read> loss: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if i >= p.len {
        return;
    }
    // Exponent bits all ones: infinity or NaN (WGSL has no isnan/isinf).
    if (bitcast<u32>(loss[0]) & 0x7f800000u) == 0x7f800000u {
        return;
    }
    var d = grads[i];
    if p.weight_decay != 0.0 {
        d += p.weight_decay * params[i];
    }
    if p.momentum != 0.0 {
        var b = d;
        if p.first == 0u {
            b = p.momentum * buf[i] + (1.0 - p.dampening) * d;
        }
        buf[i] = b;
        if p.nesterov != 0u {
            d = d + p.momentum * b;
        } else {
            d = b;
        }
    }
    params[i] -= p.lr * d;
}
