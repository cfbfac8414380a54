// Channel dropout in training mode, as torchlet::ops::dropout::channel_dropout_forward
// (nn.Dropout1d/2d/3d(p) in model.train()):
//
//   f = 0 with probability p, else 1 / (1 - p), one draw per channel plane;
//   mask[i] = f(i / plane);  y[i] = x[i] * mask[i]
//
// x: [N, C, *spatial] at x_off of binding 1; mask: same shape at aux_off of binding 2,
// overwritten, kept for the backward pass (dropout_backward_input.wgsl); y: at y_off of
// binding 3, overwritten. plane = prod(spatial). One invocation per element; every element of
// a plane hashes the same (seed, plane index), so the plane is dropped as a whole.

struct ChannelDropout {
    x_off: u32, y_off: u32, aux_off: u32, total: u32,
    p: f32, keep: f32, seed_lo: u32, seed_hi: u32,
    plane: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ChannelDropout;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    let h = pcg(t / p.plane + pcg(p.seed_lo + pcg(p.seed_hi)));
    // 24 random bits: a float uniform in [0, 1), as the core's Rng::next_f32.
    let u = f32(h >> 8u) * (1.0 / 16777216.0);
    let m = select(p.keep, 0.0, u < p.p);
    mask[p.aux_off + t] = m;
    y[p.y_off + t] = x[p.x_off + t] * m;
}
