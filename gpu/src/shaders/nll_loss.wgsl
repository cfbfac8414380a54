// Negative log-likelihood of class indices and its gradient, as torchlet::loss::NLLLoss (class
// weights w, all ones without `weight`; ignore_index; reduction 'none', 'mean' or 'sum'), on
// log-probabilities x: [N, C, S] (S: the product of the spatial dims, 1 for [N, C]):
//
//   l_pos = -w[y] x[y],   g[k] = -w[y] up [k == y]
//
// and l = 0, g = 0 at positions whose label is ignore_index. 'mean' divides by
// total = sum w[y] over the non-ignored positions; up is 1 (up_mode 0: loss_and_grad),
// upstream[0] (up_mode 1; divided by total for 'mean') or upstream[pos] (up_mode 2, 'none').
//
// Bindings and outputs as cross_entropy.wgsl (the correct count compares the first maximal
// input with the label). One workgroup of 256; partial sums added in a fixed order.

struct Nll {
    n: u32, c: u32, s: u32, x_off: u32,
    y_off: u32, smoothing: f32, reduction: u32, up_mode: u32,
    per_element: u32, ignore: u32, has_ignore: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Nll;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
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
    var loss = 0.0;
    var correct = 0u;
    for (var pos = li; pos < positions; pos += WG) {
        let ni = pos / p.s;
        let si = pos % p.s;
        let base = p.x_off + ni * p.c * p.s + si;
        let gbase = p.y_off + ni * p.c * p.s + si;
        let y = labels[pos];
        var l = 0.0;
        for (var k = 0u; k < p.c; k++) {
            grad[gbase + k * p.s] = 0.0;
        }
        if !ignored(y) {
            var m = xs[base];
            var arg = 0u;
            for (var k = 1u; k < p.c; k++) {
                let v = xs[base + k * p.s];
                if v > m {
                    m = v;
                    arg = k;
                }
            }
            let w = weight[y];
            l = -w * xs[base + y * p.s];
            var up = up_all;
            if p.up_mode == 2u {
                up = upstream[pos];
            }
            grad[gbase + y * p.s] = -w * up;
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
