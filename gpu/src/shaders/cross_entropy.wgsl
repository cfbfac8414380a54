// Cross-entropy loss of class indices and its gradient, as torchlet::loss::CrossEntropyLoss
// (no class weights, no ignored index; label smoothing eps; reduction 'mean' or 'sum'):
//
//   log p[k] = x[k] - lse,  lse = max + ln sum_k e^(x[k] - max)
//   l_r      = (1 - eps) (-log p[y_r]) + eps / C * sum_k (-log p[k])
//   loss     = sum_r l_r (times 1/N for 'mean')
//   g[r, k]  = (p[k] - (1 - eps) [k == y_r] - eps / C) (times 1/N for 'mean')
//
// logits: [N, C] at x_off of binding 1; labels: [N] (u32) in binding 2, checked < C by the
// host; grad: [N, C] at y_off of binding 3, overwritten; out (binding 4): [loss, number of rows
// whose first maximal logit is the label]. One workgroup: each invocation takes rows
// li, li + 256, ...; the partial sums are then added in a fixed order (deterministic).

struct CrossEntropy {
    n: u32, c: u32, x_off: u32, y_off: u32,
    smoothing: f32, mean: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: CrossEntropy;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_correct: array<u32, WG>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    let scale = select(1.0, 1.0 / f32(p.n), p.mean != 0u);
    let cf = f32(p.c);
    var loss = 0.0;
    var correct = 0u;
    for (var r = li; r < p.n; r += WG) {
        let base = p.x_off + r * p.c;
        var m = bitcast<f32>(0xff800000u);
        var arg = 0u;
        for (var k = 0u; k < p.c; k++) {
            let v = logits[base + k];
            if v > m {
                m = v;
                arg = k;
            }
        }
        var s = 0.0;
        for (var k = 0u; k < p.c; k++) {
            s += exp(logits[base + k] - m);
        }
        let lse = m + log(s);
        let y = labels[r];
        var sum_nlp = 0.0;
        let gbase = p.y_off + r * p.c;
        for (var k = 0u; k < p.c; k++) {
            let v = logits[base + k];
            sum_nlp += lse - v;
            let hot = select(0.0, 1.0 - p.smoothing, k == y);
            grad[gbase + k] = (exp(v - lse) - hot - p.smoothing / cf) * scale;
        }
        loss += (1.0 - p.smoothing) * (lse - logits[base + y]) + p.smoothing / cf * sum_nlp;
        correct += select(0u, 1u, arg == y);
    }
    part_loss[li] = loss;
    part_correct[li] = correct;
    workgroupBarrier();
    if li == 0u {
        var total = 0.0;
        var hits = 0u;
        for (var k = 0u; k < WG; k++) {
            total += part_loss[k];
            hits += part_correct[k];
        }
        out[0] = total * scale;
        out[1] = f32(hits);
    }
}
