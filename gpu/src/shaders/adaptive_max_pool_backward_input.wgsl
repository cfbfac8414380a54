// Adaptive max pooling input gradient, as
// torchlet::ops::pool::adaptive_max_pool_backward_input:
//
//   gx[n, c, i] += sum of gy[n, c, o] over the outputs o whose argmax index is i
//
// gx: [N, C, D, H, W] at x_off of binding 1, accumulated; indices: [N, C, oD, oH, oW] (u32)
// from the forward pass in binding 2; gy: [N, C, oD, oH, oW] at y_off of binding 3. The CPU
// scatters; each invocation here owns one input element and gathers, in the CPU's output
// order, from the windows that hold it (adaptive windows are never empty, so an index always
// lies in its own window).

struct Adaptive {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    x_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Adaptive;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

// The window [floor(i * input / output), ceil((i + 1) * input / output)) of output i along one
// dim (the core's adaptive_range).
fn window(i: u32, input: u32, output: u32) -> vec2<u32> {
    return vec2<u32>(i * input / output, ((i + 1u) * input + output - 1u) / output);
}

// The outputs [lo, hi) along one dim whose window may hold input position i: a superset,
// every candidate is checked against its window.
fn candidates(i: u32, input: u32, output: u32) -> vec2<u32> {
    let lo = i * output / input;
    let hi = min(((i + 1u) * output + input - 1u) / input + 1u, output);
    return vec2<u32>(select(0u, lo - 1u, lo > 0u), hi);
}

fn holds(o: u32, i: u32, input: u32, output: u32) -> bool {
    let w = window(o, input, output);
    return w.x <= i && i < w.y;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let in_plane = p.id * p.ih * p.iw;
    let at = t % in_plane;
    let plane = t / in_plane;
    let ix = at % p.iw;
    let iy = at / p.iw % p.ih;
    let iz = at / (p.iw * p.ih);
    let cz = candidates(iz, p.id, p.od);
    let cy = candidates(iy, p.ih, p.oh);
    let cx = candidates(ix, p.iw, p.ow);
    let obase = plane * p.od * p.oh * p.ow;
    var acc = gx[p.x_off + t];
    for (var z = cz.x; z < cz.y; z++) {
        if !holds(z, iz, p.id, p.od) {
            continue;
        }
        for (var h = cy.x; h < cy.y; h++) {
            if !holds(h, iy, p.ih, p.oh) {
                continue;
            }
            for (var w = cx.x; w < cx.y; w++) {
                let o = obase + (z * p.oh + h) * p.ow + w;
                if holds(w, ix, p.iw, p.ow) && indices[o] == at {
                    acc += gy[p.y_off + o];
                }
            }
        }
    }
    gx[p.x_off + t] = acc;
}
