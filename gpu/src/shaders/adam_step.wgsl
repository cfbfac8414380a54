// One Adam / AdamW / AMSGrad step, as torchlet::optim::Adam (torch.optim.Adam and AdamW), with
// learning rate gamma, weight decay lambda, betas (beta1, beta2) and eps:
//
//   theta <- theta * decay,  decay = 1 - gamma lambda   decoupled (AdamW), if lambda != 0
//   g <- g + lambda theta                               coupled (Adam), if lambda != 0
//   m <- m + (g - m) (1 - beta1)
//   v <- v beta2 + (1 - beta2) g g
//   v_max <- max(v_max, v)                              amsgrad (v_max replaces v below)
//   theta <- theta - step_size m / (sqrt(v) / bc2_sqrt + eps)
//
// The per-step scalars step_size = gamma / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t) and
// decay are computed on the host in f64 and rounded to f32, as the core does.
//
// params: [P] in binding 1, updated; grads: [P] in binding 2; state (binding 3): the core's
// layout [m | v] or [m | v | v_max] (P floats each), updated; loss (binding 4): element 0 is
// this step's loss. The step is skipped when that loss is NaN or infinite, as the CPU's
// backward refuses a non-finite loss before any step.

struct Adam {
    len: u32, amsgrad: u32, decoupled: u32, _pad0: u32,
    step_size: f32, bc2_sqrt: f32, decay: f32, weight_decay: f32,
    beta1: f32, beta2: f32, eps: f32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Adam;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
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
    var theta = params[i];
    var g = grads[i];
    if p.weight_decay != 0.0 {
        if p.decoupled != 0u {
            theta = theta * p.decay;
        } else {
            g = g + p.weight_decay * theta;
        }
    }
    var m = state[i];
    m = m + (g - m) * (1.0 - p.beta1);
    state[i] = m;
    let v = state[p.len + i] * p.beta2 + (1.0 - p.beta2) * g * g;
    state[p.len + i] = v;
    var second = v;
    if p.amsgrad != 0u {
        second = max(state[2u * p.len + i], v);
        state[2u * p.len + i] = second;
    }
    let denom = sqrt(second) / p.bc2_sqrt + p.eps;
    params[i] = theta - p.step_size * m / denom;
}
