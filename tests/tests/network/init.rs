//! `init_params`: PyTorch's bounds, per layer kind, deterministic per seed.

use super::*;
#[allow(unused_imports)]
use crate::{errors::*, graphs::*, modes::*, weights::*};

// ---------------------------------------------------------------------------------------------
// init_params
// ---------------------------------------------------------------------------------------------

pub(crate) const INIT: [Layer; 7] = [
    conv2d(4, 6, 3).groups(2),
    batch_norm2d(6),
    conv_transpose2d(6, 8, 2).groups(2),
    conv2d(8, 8, 1).bias(false),
    flatten(),
    linear(200, 5),
    bilinear(&[], &[linear(5, 7)], 5, 7, 2),
];
pub(crate) const INIT_PLAN: Plan<{ node_count(&INIT) }> = Plan::training(&INIT, Shape::chw(4, 6, 6), 1);

/// PyTorch's `fan_in` of each node's weight, written out by hand: `weight.size(1) * kernel`.
pub(crate) const INIT_FAN_IN: [usize; 8] = [
    2 * 9, // Conv2d(4, 6, 3, groups=2): weight [6, 2, 3, 3]
    0,     // BatchNorm2d
    4 * 4, // ConvTranspose2d(6, 8, 2, groups=2): weight [6, 4, 2, 2]
    8,     // Conv2d(8, 8, 1): weight [8, 8, 1, 1]
    0,     // Flatten
    200,   // Linear(200, 5)
    5,     // Linear(5, 7)
    5,     // Bilinear(5, 7, 2): bound 1 / sqrt(in1_features)
];

pub(crate) fn init_net_params(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut b = Bufs::new(&INIT_PLAN);
    b.state.fill(7.0);
    b.params.fill(7.0);
    let mut net = b.net(&INIT_PLAN);
    net.init_params(seed).unwrap();
    (net.params().to_vec(), net.state().to_vec())
}

#[test]
pub(crate) fn init_params_uses_pytorch_bounds() {
    let (params, state) = init_net_params(3);
    let nodes = INIT_PLAN.nodes();
    assert_eq!(nodes.len(), INIT_FAN_IN.len());
    for (k, (node, &fan_in)) in nodes.iter().zip(&INIT_FAN_IN).enumerate() {
        let p = &params[node.param_offset..node.param_offset + node.param_len()];
        let (w, b) = p.split_at(node.weight_len);
        if fan_in == 0 {
            continue;
        }
        let bound = 1.0 / (fan_in as f32).sqrt();
        for (j, &v) in p.iter().enumerate() {
            assert!(
                v.abs() <= bound,
                "node {k} ({}) parameter {j}: {v} outside ±{bound}",
                node.op_name
            );
        }
        // Uniform over the whole range: the extremes come close to the bound and the mean of
        // |w| is about bound / 2.
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mean_abs = w.iter().map(|v| v.abs()).sum::<f32>() / w.len() as f32;
        assert!(
            max >= 0.8 * bound,
            "node {k} ({}): max |w| {max} of bound {bound}",
            node.op_name
        );
        if w.len() >= 90 {
            assert!(
                (0.4 * bound..=0.6 * bound).contains(&mean_abs),
                "node {k}: mean |w| {mean_abs}, bound {bound}"
            );
        }
        assert!(w.iter().any(|&v| v < 0.0) && w.iter().any(|&v| v > 0.0));
        assert!(b.iter().all(|&v| v != 7.0), "node {k}: bias not initialised");
    }
    // BatchNorm: weight 1, bias 0, running mean 0, running var 1, num_batches_tracked 0.
    let bn = &nodes[1];
    assert_eq!(
        &params[bn.param_offset..bn.param_offset + 12],
        &[[1.0; 6], [0.0; 6]].concat()[..]
    );
    assert_eq!(state, [vec![0.0; 6], vec![1.0; 6], vec![0.0]].concat());
    // Conv with bias(false) has no bias; the parameter count is PyTorch's.
    assert_eq!(nodes[3].bias_len, 0);
    assert_eq!(
        INIT_PLAN.param_len(),
        (108 + 6) + 12 + (96 + 8) + 64 + (1000 + 5) + (35 + 7) + (70 + 2)
    );
}

#[test]
pub(crate) fn init_params_bounds_conv1d_and_conv3d() {
    const NET: [Layer; 2] = [conv1d(3, 4, 5).dilation(2), conv1d(4, 2, 1)];
    const P1: Plan<2> = Plan::training(&NET, Shape::cl(3, 12), 1);
    const NET3: [Layer; 1] = [conv3d(2, 3, 2)];
    const P3: Plan<1> = Plan::training(&NET3, Shape::cdhw(2, 3, 3, 3), 1);
    let mut b = Bufs::new(&P1);
    let mut net = b.net(&P1);
    net.init_params(9).unwrap();
    let p = net.params();
    let bound = 1.0 / 15f32.sqrt(); // fan_in = 3 * 5
    assert!(p[..64].iter().all(|v| v.abs() <= bound) && p[..60].iter().any(|v| v.abs() > 0.8 * bound));
    assert!(p[64..].iter().all(|v| v.abs() <= 0.5), "fan_in 4");
    let mut b = Bufs::new(&P3);
    let mut net = b.net(&P3);
    net.init_params(9).unwrap();
    let bound = 1.0 / 16f32.sqrt(); // fan_in = 2 * 2 * 2 * 2
    assert!(net.params().iter().all(|v| v.abs() <= bound));
    assert!(net.params().iter().any(|v| v.abs() > 0.8 * bound));
}

#[test]
pub(crate) fn init_params_is_deterministic_per_seed() {
    let (a, sa) = init_net_params(5);
    let (b, sb) = init_net_params(5);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = init_net_params(6);
    for (k, node) in INIT_PLAN.nodes().iter().enumerate() {
        let r = node.param_offset..node.param_offset + node.weight_len;
        if INIT_FAN_IN[k] > 0 {
            assert_ne!(a[r.clone()], c[r], "node {k}: another seed must give other weights");
        }
    }
    // Appending a layer does not change the earlier layers' initial weights.
    const LONGER: [Layer; 8] = [
        conv2d(4, 6, 3).groups(2),
        batch_norm2d(6),
        conv_transpose2d(6, 8, 2).groups(2),
        conv2d(8, 8, 1).bias(false),
        flatten(),
        linear(200, 5),
        bilinear(&[], &[linear(5, 7)], 5, 7, 2),
        linear(2, 4),
    ];
    const LONGER_PLAN: Plan<{ node_count(&LONGER) }> = Plan::training(&LONGER, Shape::chw(4, 6, 6), 1);
    let mut lb = Bufs::new(&LONGER_PLAN);
    let mut net = lb.net(&LONGER_PLAN);
    net.init_params(5).unwrap();
    assert_eq!(&net.params()[..a.len()], &a[..]);
}
