// Padding input gradient, as torchlet::ops::pad::pad2d_backward_input, on 1 to 3 spatial dims:
//
//   gx[n, c, z] += sum of gy[n, c, q] over the output positions q with map(q - front) = z
//
// gx: [N, C, D, H, W] at x_off of binding 1, accumulated; gy: [N, C, oD, oH, oW] at y_off of
// binding 3. The CPU scatters; here each invocation owns one input element and gathers the
// output positions that read it (reflect, replicate and circular read an element from several
// places), in the CPU's order (d, then h, then w), so no atomics are needed. The map is
// separable, so a dim whose coordinate does not match skips its whole sub-block.

struct Pad {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    fd: u32, fh: u32, fw: u32, mode: u32,
    x_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Pad;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

// The input coordinate padded coordinate `i` reads along a dim of `n` (torchlet PaddingMode::map),
// or -1 for a zero: mode 0 zeros, 1 reflect (clamped as the core does), 2 replicate, 3 circular.
fn map(i: i32, n: i32) -> i32 {
    if i >= 0 && i < n {
        return i;
    }
    switch p.mode {
        case 1u: {
            return clamp(select(2 * (n - 1) - i, -i, i < 0), 0, n - 1);
        }
        case 2u: {
            return clamp(i, 0, n - 1);
        }
        case 3u: {
            // Only non-negative operands for `%`: wgpu's GL backend on llvmpipe computed
            // `-1 % 3` as 0 (an unsigned remainder), so the wrap below never takes the
            // remainder of a negative.
            if i < 0 {
                return n - 1 - (-i - 1) % n;
            }
            return i % n;
        }
        default: {
            return -1;
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let zw = i32(t % p.iw);
    let zh = i32((t / p.iw) % p.ih);
    let zd = i32((t / (p.iw * p.ih)) % p.id);
    let plane = t / (p.iw * p.ih * p.id);
    var v = gx[p.x_off + t];
    for (var qd = 0u; qd < p.od; qd++) {
        if map(i32(qd) - i32(p.fd), i32(p.id)) != zd {
            continue;
        }
        for (var qh = 0u; qh < p.oh; qh++) {
            if map(i32(qh) - i32(p.fh), i32(p.ih)) != zh {
                continue;
            }
            let row = p.y_off + ((plane * p.od + qd) * p.oh + qh) * p.ow;
            for (var qw = 0u; qw < p.ow; qw++) {
                if map(i32(qw) - i32(p.fw), i32(p.iw)) == zw {
                    v += gy[row + qw];
                }
            }
        }
    }
    gx[p.x_off + t] = v;
}
