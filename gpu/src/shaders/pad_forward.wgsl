// Padding forward, as torchlet::ops::pad::pad2d_forward (nn.ZeroPad2d, ReflectionPad2d,
// ReplicationPad2d, CircularPad2d), on 1 to 3 spatial dims (the padded input of a convolution
// with padding_mode reflect, replicate or circular reads the same way):
//
//   y[n, c, q] = x[n, c, map(q - front)]   (0 where a zeros-mode map falls outside)
//
// x: [N, C, D, H, W] at x_off of binding 1; y: [N, C, oD, oH, oW] at y_off of binding 3,
// overwritten; front (fd, fh, fw): the padding before each dim, the back padding is implied by
// the output size. One invocation per output element.

struct Pad {
    n: u32, c: u32, id: u32, ih: u32,
    iw: u32, od: u32, oh: u32, ow: u32,
    fd: u32, fh: u32, fw: u32, mode: u32,
    x_off: u32, y_off: u32, total: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Pad;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

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
    let qw = t % p.ow;
    let qh = (t / p.ow) % p.oh;
    let qd = (t / (p.ow * p.oh)) % p.od;
    let plane = t / (p.ow * p.oh * p.od);
    let zd = map(i32(qd) - i32(p.fd), i32(p.id));
    let zh = map(i32(qh) - i32(p.fh), i32(p.ih));
    let zw = map(i32(qw) - i32(p.fw), i32(p.iw));
    var v = 0.0;
    if zd >= 0 && zh >= 0 && zw >= 0 {
        v = x[p.x_off + ((plane * p.id + u32(zd)) * p.ih + u32(zh)) * p.iw + u32(zw)];
    }
    y[p.y_off + t] = v;
}
