// Max pooling input gradient, as torchlet::ops::pool::max_pool_backward_input:
//
//   gx[n, c, i] += sum of gy[n, c, o] over the outputs o whose argmax index is i
//
// gx: [N, C, D, H, W] at x_off of binding 1, accumulated; indices: [N, C, oD, oH, oW] (u32)
// from the forward pass in binding 2; gy: [N, C, oD, oH, oW] at y_off of binding 3. The CPU
// scatters; here each invocation owns one input element and gathers from the windows that
// contain it (no atomics, no races, same sum up to its order).
//
// A window with no input position at all (dilation with padding) stores, as PyTorch does, the
// flat index of a position outside the window that can alias a real element of the plane, and
// the CPU adds its gradient there. A gather cannot find those, so for such geometries
// (`scatter` = 1, decided by the host) each invocation owns a whole (n, c) plane and scatters
// in the CPU's order instead.

struct Pool {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    kd: u32, kh: u32, kw: u32, sd: u32,
    sh: u32, sw: u32, dd: u32, dh: u32,
    dw: u32, pd: u32, ph: u32, pw: u32,
    x_off: u32, y_off: u32, total: u32, scatter: u32,
}

@group(0) @binding(0) var<uniform> p: Pool;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

// The output coordinate whose window reads input coordinate `i` at window offset `k`, or -1.
fn out_coord(i: u32, k: u32, stride: u32, dilation: u32, pad: u32, out: u32) -> i32 {
    let num = i32(i + pad) - i32(k * dilation);
    if num < 0 || num % i32(stride) != 0 {
        return -1;
    }
    let o = num / i32(stride);
    if o >= i32(out) {
        return -1;
    }
    return o;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let iplane = p.id * p.ih * p.iw;
    let oplane = p.od * p.oh * p.ow;
    if p.scatter != 0u {
        // Invocation t owns plane t.
        for (var o = 0u; o < oplane; o++) {
            let i = indices[t * oplane + o];
            if i < iplane {
                gx[p.x_off + t * iplane + i] += gy[p.y_off + t * oplane + o];
            }
        }
        return;
    }
    let plane = t / iplane;
    let at = t % iplane;
    let ix = at % p.iw;
    let iy = (at / p.iw) % p.ih;
    let iz = at / (p.iw * p.ih);
    let obase = plane * oplane;
    var acc = 0.0;
    for (var kz = 0u; kz < p.kd; kz++) {
        let oz = out_coord(iz, kz, p.sd, p.dd, p.pd, p.od);
        if oz < 0 {
            continue;
        }
        for (var ky = 0u; ky < p.kh; ky++) {
            let oy = out_coord(iy, ky, p.sh, p.dh, p.ph, p.oh);
            if oy < 0 {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ox = out_coord(ix, kx, p.sw, p.dw, p.pw, p.ow);
                if ox < 0 {
                    continue;
                }
                let o = obase + (u32(oz) * p.oh + u32(oy)) * p.ow + u32(ox);
                if indices[o] == at {
                    acc += gy[p.y_off + o];
                }
            }
        }
    }
    gx[p.x_off + t] += acc;
}
