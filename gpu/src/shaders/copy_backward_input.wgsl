// Copy input gradient (Flatten, Identity): gx += gy.
//
// gx: [*] at x_off of binding 1, accumulated; gy: [*] at y_off of binding 3.

struct Elementwise {
    x_off: u32, y_off: u32, aux_off: u32, total: u32,
    slope: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Elementwise;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if t >= p.total {
        return;
    }
    gx[p.x_off + t] += gy[p.y_off + t];
}
