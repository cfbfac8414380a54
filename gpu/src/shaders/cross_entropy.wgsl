// Cross-entropy of class indices and its gradient, as torchlet::loss::CrossEntropyLoss (class
// weights w, all ones without `weight`; ignore_index; label smoothing eps; reduction 'none',
// 'mean' or 'sum'), on logits [N, C, S] (S: the product of the spatial dims, 1 for [N, C]):
//
//   lse      = max + ln sum_k e^(x[k] - max),  p[k] = e^(x[k] - lse)   (over the C classes)
//   l_pos    = (1 - eps) w[y] (lse - x[y]) + eps / C * sum_k w[k] (lse - x[k])
//   g[k]     = up (p[k] ((1 - eps) w[y] + eps / C sum_j w[j]) - (1 - eps) w[y] [k == y]
//                  - eps / C w[k])
//
// and l = 0, g = 0 at positions whose label is ignore_index. 'mean' divides by
// total = sum w[y] over the non-ignored positions; up is 1 (up_mode 0: loss_and_grad),
// upstream[0] (up_mode 1; divided by total for 'mean') or upstream[pos] (up_mode 2, 'none').
//
// logits at x_off of binding 1; labels: [N, S] (u32) in binding 2, checked < C by the host;
// grad: [N, C, S] at y_off of binding 3, overwritten; out (binding 4): per_element = 1: the
// loss of each position [N, S]; else [reduced loss (the sum for 'none'), number of
// non-ignored positions whose first maximal logit is the label]; upstream: binding 5; w: [C]
// in binding 6. One workgroup: each invocation takes positions li, li + 256, ...; partial sums
// are added in a fixed order (deterministic).

struct CrossEntropy {
    n: u32, c: u32, s: u32, x_off: u32,
    y_off: u32, smoothing: f32, reduction: u32, up_mode: u32,
    per_element: u32, ignore: u32, has_ignore: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: CrossEntropy;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> upstream: array<f32>;
@group(0) @binding(6) var<storage, read> weight: array<f32>;

const WG: u32 = 256u;
var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_correct: array<u32, WG>;
var<workgroup> part_total: array<f32, WG>;

fn ignored(y: u32) -> bool {
    return p.has_ignore != 0u && y == p.ignore;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    let positions = p.n * p.s;
    // The 'mean' denominator first: sum of w[y] over the non-ignored positions.
    var t = 0.0;
    for (var pos = li; pos < positions; pos += WG) {
        let y = labels[pos];
        if !ignored(y) {
            t += weight[y];
        }
    }
    part_total[li] = t;
    workgroupBarrier();
    var total = 0.0;
    for (var k = 0u; k < WG; k++) {
        total += part_total[k];
    }
    var up0 = 1.0;
    if p.up_mode == 1u {
        up0 = upstream[0];
    }
    var up_all = up0;
    if p.reduction == 1u {
        up_all = up0 / total;
    }
    let eps = p.smoothing;
    let eps_c = eps / f32(p.c);
    var w_sum = 0.0;
    if eps != 0.0 {
        for (var k = 0u; k < p.c; k++) {
            w_sum += weight[k];
        }
    }
    var loss = 0.0;
    var correct = 0u;
    for (var pos = li; pos < positions; pos += WG) {
        let ni = pos / p.s;
        let si = pos % p.s;
        let base = p.x_off + ni * p.c * p.s + si;
        let gbase = p.y_off + ni * p.c * p.s + si;
        let y = labels[pos];
        var l = 0.0;
        if ignored(y) {
            for (var k = 0u; k < p.c; k++) {
                grad[gbase + k * p.s] = 0.0;
            }
        } else {
            var m = logits[base];
            var arg = 0u;
            for (var k = 1u; k < p.c; k++) {
                let v = logits[base + k * p.s];
                if v > m {
                    m = v;
                    arg = k;
                }
            }
            var se = 0.0;
            for (var k = 0u; k < p.c; k++) {
                se += exp(logits[base + k * p.s] - m);
            }
            let lse = m + log(se);
            let wy = weight[y];
            l = (1.0 - eps) * wy * (lse - logits[base + y * p.s]);
            if eps != 0.0 {
                var sum = 0.0;
                for (var k = 0u; k < p.c; k++) {
                    sum += weight[k] * (lse - logits[base + k * p.s]);
                }
                l += eps_c * sum;
            }
            var up = up_all;
            if p.up_mode == 2u {
                up = upstream[pos];
            }
            let p_scale = (1.0 - eps) * wy + eps_c * w_sum;
            for (var k = 0u; k < p.c; k++) {
                let pk = exp(logits[base + k * p.s] - lse);
                var d = pk * p_scale;
                if k == y {
                    d -= (1.0 - eps) * wy;
                }
                if eps != 0.0 {
                    d -= eps_c * weight[k];
                }
                grad[gbase + k * p.s] = up * d;
            }
            correct += select(0u, 1u, arg == y);
        }
        if p.per_element != 0u {
            out[pos] = l;
        }
        loss += l;
    }
    part_loss[li] = loss;
    part_correct[li] = correct;
    workgroupBarrier();
    if li == 0u && p.per_element == 0u {
        var sum = 0.0;
        var hits = 0u;
        for (var k = 0u; k < WG; k++) {
            sum += part_loss[k];
            hits += part_correct[k];
        }
        if p.reduction == 1u {
            sum = sum / total;
        }
        out[0] = sum;
        out[1] = f32(hits);
    }
}
