// PReLU weight gradient, as torchlet::ops::activation::prelu_backward_weight:
// gw[c] += sum of gy * x over the elements of channel c (all elements when `one_weight`) with
// x <= 0. `total` is the number of elements [N, C, S]; one workgroup of 256 per weight, the
// sum added by a tree in workgroup memory.
//
// x: at x_off of binding 1; the gradients at w_off of binding 2 (accumulated); gy: at y_off
// of binding 3.

struct Prelu {
    x_off: u32, y_off: u32, w_off: u32, total: u32,
    channels: u32, inner: u32, one_weight: u32, _pad0: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Prelu;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let c = wid.x + wid.y * nwg.x;
    let weights = select(p.channels, 1u, p.one_weight != 0u);
    // Element k of the weight's elements: all of them when shared, else channel c's.
    let count = select(p.total / p.channels, p.total, p.one_weight != 0u);
    var s = 0.0;
    if c < weights {
        for (var k = li; k < count; k += WG) {
            var i = k;
            if p.one_weight == 0u {
                i = (k / p.inner * p.channels + c) * p.inner + k % p.inner;
            }
            let v = x[p.x_off + i];
            if v <= 0.0 {
                s += gy[p.y_off + i] * v;
            }
        }
    }
    part[li] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if li < half {
            part[li] += part[li + half];
        }
        workgroupBarrier();
    }
    if li == 0u && c < weights {
        grads[p.w_off + c] += part[0];
    }
}
