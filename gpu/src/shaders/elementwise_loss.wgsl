// The reduction and gradient shared by the elementwise losses (torchlet::loss's `elementwise`
// module): each kernel is this file followed by one loss's `value`, `derivative` and `valid`
// functions (mse_loss.wgsl, l1_loss.wgsl, bce_loss.wgsl, bce_with_logits_loss.wgsl).
//
// With f the loss of one element, f' its derivative and len the element count:
//
//   reduction 'none' (0):  out[i] = f(x_i, t_i)          gx_i = up_i f'(x_i, t_i)
//   reduction 'mean' (1):  out[0] = sum_i f / len        gx_i = (up / len) f'(x_i, t_i)
//   reduction 'sum'  (2):  out[0] = sum_i f              gx_i = up f'(x_i, t_i)
//
// where the upstream gradient up is 1 (up_mode 0: `Loss::loss_and_grad`, where 'none' returns
// the sum), upstream[0] (up_mode 1) or upstream[i] (up_mode 2, 'none' only). With
// per_element = 0 the reduced value goes to out[0] (the sum for 'none') and out[1] = 0 (the
// correct count of class losses). An element for which `valid` fails (BCELoss: an input outside
// [0, 1]) makes the reduced loss NaN, which the host and the optimiser shaders treat as a
// non-finite loss.
//
// input: [len] at x_off of binding 1; targets: [len] in binding 2; grad: [len] at g_off of
// binding 3, overwritten; out: binding 4; upstream: binding 5. One workgroup of 256: each
// invocation takes elements li, li + 256, ...; partial sums are then added in a fixed order.

struct ElementwiseLoss {
    len: u32, x_off: u32, g_off: u32, reduction: u32,
    up_mode: u32, per_element: u32, last: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: ElementwiseLoss;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> ts: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> upstream: array<f32>;

const WG: u32 = 256u;
var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_bad: array<u32, WG>;

// ln(1 + x), accurate for small |x| (WGSL has no log1p): ln(u) x / (u - 1) with u = 1 + x.
fn log1p_(x: f32) -> f32 {
    let u = 1.0 + x;
    if u == 1.0 {
        return x;
    }
    return log(u) * (x / (u - 1.0));
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    var up0 = 1.0;
    if p.up_mode == 1u {
        up0 = upstream[0];
    }
    var scale = up0;
    if p.reduction == 1u {
        scale = up0 / f32(p.len);
    }
    var sum = 0.0;
    var bad = 0u;
    for (var i = li; i < p.len; i += WG) {
        let x = xs[p.x_off + i];
        let t = ts[i];
        if !valid(x) {
            bad = 1u;
        }
        let l = value(i, x, t);
        var s = scale;
        if p.up_mode == 2u {
            s = upstream[i];
        }
        grad[p.g_off + i] = s * derivative(i, x, t);
        if p.per_element != 0u {
            out[i] = l;
        }
        sum += l;
    }
    part_loss[li] = sum;
    part_bad[li] = bad;
    workgroupBarrier();
    if li == 0u && p.per_element == 0u {
        var total = 0.0;
        var any_bad = 0u;
        for (var k = 0u; k < WG; k++) {
            total += part_loss[k];
            any_bad |= part_bad[k];
        }
        if p.reduction == 1u {
            total = total / f32(p.len);
        }
        if any_bad != 0u {
            // A quiet NaN, built at run time (a constant NaN is a shader-creation error).
            total = bitcast<f32>(0x7fc00000u | (p.len & 0u));
        }
        out[0] = total;
        out[1] = 0.0;
    }
}
