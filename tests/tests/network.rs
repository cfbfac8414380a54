//! End-to-end tests of the planner and `Network`: whole-model gradients, batches, modes, errors
//! and initialisation.
//!
//! - Every parameter gradient of models that use every graph feature (nested `sequential`,
//!   `residual` with identity and projection shortcuts, `concat`, `bilinear` including the same
//!   tensor twice, `MaxPool2d(return_indices)` + `MaxUnpool2d`, every pool and pad, every
//!   activation, Linear on rank-2 samples, LazyLinear, Conv1d/2d/3d, ConvTranspose2d, Dropout,
//!   BatchNorm in train and eval mode) is checked against central finite differences of
//!   `sum(w * net(x))` for a fixed random `w` (`net.backward_from(&w)`); a proptest does the same
//!   for randomly composed smooth models.
//! - Batches smaller than the plan's give the full batch's per-sample outputs and correct
//!   gradients; train and eval mode differ exactly as PyTorch's; gradients accumulate.
//! - Every error path returns the exact `torchlet::Error`; `init_params` follows PyTorch's
//!   bounds.

use proptest::prelude::*;
use torchlet::layer::*;
use torchlet::loss::{CrossEntropyLoss, MSELoss};
use torchlet::plan::{node_count, Exec, Mode};
use torchlet::{Buffer, Error, Network, Plan, Rng, Shape};
use torchlet_tests::{numeric_grad, rand_vec, weighted_sum};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The four caller-owned buffers of a plan, sized as `Network::new` wants them.
struct Bufs {
    params: Vec<f32>,
    grads: Vec<f32>,
    state: Vec<f32>,
    arena: Vec<f32>,
}

impl Bufs {
    fn new<const C: usize>(plan: &Plan<C>) -> Self {
        let grads = if plan.mode() == Mode::Training {
            plan.param_len()
        } else {
            0
        };
        Bufs {
            params: vec![0.0; plan.param_len()],
            grads: vec![0.0; grads],
            state: vec![0.0; plan.state_len()],
            arena: vec![0.0; plan.arena_len()],
        }
    }

    fn net<'a, const C: usize>(&'a mut self, plan: &'a Plan<C>) -> Network<'a, C> {
        Network::new(
            plan,
            &mut self.params,
            &mut self.grads,
            &mut self.state,
            &mut self.arena,
        )
        .unwrap()
    }
}

/// PyTorch's initialisation from `seed`, then BatchNorm weights, biases and running statistics
/// moved away from 1 / 0 / (0, 1) so that no term of their gradients vanishes by symmetry.
fn randomize<const C: usize>(net: &mut Network<'_, C>, seed: u64) {
    net.init_params(seed).unwrap();
    let plan = net.plan();
    let mut r = Rng::new(seed ^ 0x5EED);
    for node in plan.nodes() {
        if let Exec::BatchNorm(g) = node.exec {
            let p = &mut net.params_mut().unwrap()[node.param_offset..node.param_offset + node.param_len()];
            for (k, v) in p.iter_mut().enumerate() {
                *v = if k < node.weight_len {
                    1.0 + r.uniform(-0.5, 0.5)
                } else {
                    r.uniform(-0.5, 0.5)
                };
            }
            if node.state_len > 0 {
                let s = &mut net.state_mut().unwrap()[node.state_offset..node.state_offset + node.state_len];
                for c in 0..g.c {
                    s[c] = r.uniform(-0.3, 0.3);
                    s[g.c + c] = r.uniform(0.5, 1.5);
                }
            }
        }
    }
}

/// `node k (Conv2d) weight[j]` for parameter index `i`.
fn locate<const C: usize>(plan: &Plan<C>, i: usize) -> String {
    for (k, n) in plan.nodes().iter().enumerate() {
        if (n.param_offset..n.param_offset + n.param_len()).contains(&i) {
            let j = i - n.param_offset;
            return if j < n.weight_len {
                format!("node {k} ({}) weight[{j}]", n.op_name)
            } else {
                format!("node {k} ({}) bias[{}]", n.op_name, j - n.weight_len)
            };
        }
    }
    format!("parameter {i} (outside every node)")
}

const RTOL: f32 = 2e-2;
const ATOL: f32 = 2e-3;

/// A whole-network gradient check: which batch, mode, step and parameters.
#[derive(Clone, Copy, Debug)]
struct GradCheck {
    /// Samples in the batch (at most the plan's batch size).
    n: usize,
    /// Seeds the parameters, the input, the output weight and the dropout masks.
    seed: u64,
    /// Training mode (batch statistics, dropout) or eval mode.
    train: bool,
    /// Finite-difference step.
    h: f32,
    /// Check at most this many parameters of each node, evenly spread (`usize::MAX`: all).
    per_node: usize,
    /// Require every node with parameters to have a gradient well above `ATOL`.
    require_signal: bool,
    /// Scale of the output weight `w` (raises small gradients well above `ATOL`).
    scale: f32,
}

impl GradCheck {
    const fn new(n: usize, seed: u64) -> Self {
        GradCheck {
            n,
            seed,
            train: true,
            h: 5e-3,
            per_node: usize::MAX,
            require_signal: true,
            scale: 1.0,
        }
    }
    const fn eval(mut self) -> Self {
        self.train = false;
        self
    }
    const fn h(mut self, h: f32) -> Self {
        self.h = h;
        self
    }
    const fn scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// Compares `net.grads()` after `backward_from(w)` with central differences of
    /// `sum(w * net(x))` in every checked parameter. Dropout is reseeded before every forward
    /// pass, so it draws the same masks each time and is a fixed linear map.
    ///
    /// ReLU, LeakyReLU and max-pooling make the loss piecewise smooth: a kink closer than `h`
    /// to the point spoils the central difference at that step but not at a smaller one. A
    /// parameter whose difference at `h` disagrees is retried at `h / 3`, `h / 10`, `h / 30` and
    /// `h / 100`, and passes if one of them agrees (a wrong gradient would have to match one).
    /// BatchNorm in training mode followed by ReLU is the worst case: every weight of a conv
    /// moves every pre-activation of its channel, so kinks are dense.
    fn run<const C: usize>(&self, plan: &Plan<C>) -> Result<(), String> {
        let mut bufs = Bufs::new(plan);
        let mut net = bufs.net(plan);
        randomize(&mut net, self.seed);
        if !self.train {
            net.eval();
        }
        let x = rand_vec(self.n * plan.input_shape().numel(), self.seed.wrapping_add(1));
        let w: Vec<f32> = rand_vec(self.n * plan.output_shape().numel(), self.seed.wrapping_add(2))
            .iter()
            .map(|v| v * self.scale)
            .collect();
        net.zero_grad();
        net.set_seed(self.seed);
        net.forward(&x).map_err(|e| format!("forward: {e}"))?;
        net.backward_from(&w).map_err(|e| format!("backward: {e}"))?;
        let analytic = net.grads().to_vec();

        let mut idx = Vec::new();
        for node in plan.nodes() {
            let len = node.param_len();
            let take = len.min(self.per_node);
            idx.extend((0..take).map(|k| node.param_offset + k * len / take));
        }
        let agrees = |a: f32, e: f32| (a - e).abs() <= ATOL + RTOL * a.abs().max(e.abs());
        let mut numeric_at = |idx: &[usize], h: f32| {
            let p0: Vec<f32> = idx.iter().map(|&i| net.params()[i]).collect();
            let g = numeric_grad(&p0, h, |p| {
                for (&i, &v) in idx.iter().zip(p) {
                    net.params_mut().unwrap()[i] = v;
                }
                net.set_seed(self.seed);
                weighted_sum(&w, net.forward(&x).expect("forward"))
            });
            for (&i, &v) in idx.iter().zip(&p0) {
                net.params_mut().unwrap()[i] = v;
            }
            g
        };
        let numeric = numeric_at(&idx, self.h);
        for (k, &i) in idx.iter().enumerate() {
            let (a, e) = (analytic[i], numeric[k]);
            if !agrees(a, e) {
                let smaller: Vec<f32> = [3.0, 10.0, 30.0, 100.0]
                    .iter()
                    .map(|d| numeric_at(&[i], self.h / d)[0])
                    .collect();
                if !smaller.iter().any(|&e| agrees(a, e)) {
                    return Err(format!(
                        "{}: backward {a}, finite differences {e} (h/3 .. h/100: {smaller:?}) ({self:?})",
                        locate(plan, i)
                    ));
                }
            }
        }
        if self.require_signal {
            for (k, node) in plan.nodes().iter().enumerate() {
                let r = node.param_offset..node.param_offset + node.param_len();
                let top = idx
                    .iter()
                    .zip(&numeric)
                    .filter(|(i, _)| r.contains(i))
                    .map(|(_, g)| g.abs())
                    .fold(0.0, f32::max);
                if node.param_len() > 0 && top < 10.0 * ATOL {
                    return Err(format!(
                        "node {k} ({}): largest gradient {top} is too small to test",
                        node.op_name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `|a - b| <= atol + rtol * |b|` elementwise, naming the first offending index.
fn close(what: &str, a: &[f32], b: &[f32], rtol: f32, atol: f32) {
    torchlet_tests::assert_close(what, a, b, rtol, atol);
}

// ---------------------------------------------------------------------------------------------
// Models exercising every graph feature
// ---------------------------------------------------------------------------------------------

/// Activations, nested `sequential`, Linear on `[C, L]` samples (applies to the last dim),
/// LazyLinear, Softmax over a non-last dim, LogSoftmax, Dropout.
const ACTIVATIONS: [Layer; 8] = [
    linear(5, 4),
    leaky_relu(0.1),
    sequential(&[linear(4, 6), tanh(), sequential(&[linear(6, 4).bias(false), sigmoid()])]),
    softmax(1),
    lazy_linear(5),
    log_softmax(-1),
    dropout(0.4),
    linear(5, 2),
];
const ACTIVATIONS_PLAN: Plan<{ node_count(&ACTIVATIONS) }> = Plan::training(&ACTIVATIONS, Shape::cl(3, 5), 2);

/// A ResNet stem and two basic blocks: identity shortcut, then stride 2 with a 1x1 conv + BN
/// projection.
const RESNET: [Layer; 10] = [
    conv2d(3, 4, 3).padding(1).bias(false),
    batch_norm2d(4),
    relu(),
    residual(
        &[
            conv2d(4, 4, 3).padding(1).bias(false),
            batch_norm2d(4),
            relu(),
            conv2d(4, 4, 3).padding(1).bias(false),
            batch_norm2d(4),
        ],
        &[],
    ),
    relu(),
    residual(
        &[
            conv2d(4, 6, 3).stride(2).padding(1).bias(false),
            batch_norm2d(6),
            relu(),
            conv2d(6, 6, 3).padding(1).bias(false),
            batch_norm2d(6),
        ],
        &[conv2d(4, 6, 1).stride(2).bias(false), batch_norm2d(6)],
    ),
    relu(),
    adaptive_avg_pool2d(1, 1),
    flatten(),
    linear(6, 3),
];
const RESNET_CAP: usize = node_count(&RESNET);
const RESNET_PLAN: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 2);

/// `RESNET` with Tanh for ReLU: with batch statistics every weight moves every pre-activation
/// of its channel, and at batch 3 or 4 the ReLU kinks come closer together than f32 finite
/// differences can resolve (about 1e-4 apart).
const SMOOTH_RESNET: [Layer; 10] = [
    conv2d(3, 4, 3).padding(1).bias(false),
    batch_norm2d(4),
    tanh(),
    residual(
        &[
            conv2d(4, 4, 3).padding(1).bias(false),
            batch_norm2d(4),
            tanh(),
            conv2d(4, 4, 3).padding(1).bias(false),
            batch_norm2d(4),
        ],
        &[],
    ),
    tanh(),
    residual(
        &[
            conv2d(4, 6, 3).stride(2).padding(1).bias(false),
            batch_norm2d(6),
            tanh(),
            conv2d(6, 6, 3).padding(1).bias(false),
            batch_norm2d(6),
        ],
        &[conv2d(4, 6, 1).stride(2).bias(false), batch_norm2d(6)],
    ),
    tanh(),
    adaptive_avg_pool2d(1, 1),
    flatten(),
    linear(6, 3),
];

/// `concat` of two branches (one the identity), `bilinear` of two computed branches, of the
/// same tensor twice, and identity merges of a tensor with itself.
const MERGES: [Layer; 7] = [
    linear(4, 6),
    concat(&[linear(6, 3), tanh()], &[sigmoid()]),
    bilinear(&[linear(9, 4)], &[linear(9, 5), tanh()], 4, 5, 3),
    tanh(),
    bilinear(&[], &[], 3, 3, 2),
    concat(&[], &[]),
    residual(&[], &[linear(4, 4)]),
];
const MERGES_PLAN: Plan<{ node_count(&MERGES) }> = Plan::training(&MERGES, Shape::features(4), 3);

/// Merges reading the network input itself: Bilinear (both branches empty) and BatchNorm as
/// first layers need the input kept and an input-gradient scratch. The BatchNorm keeps no
/// running statistics, so it normalises with batch statistics in eval mode too.
const INPUT_MERGES: [Layer; 4] = [
    concat(
        &[bilinear(&[], &[], 4, 4, 3)],
        &[batch_norm1d(4).track_running_stats(false), leaky_relu(0.2)],
    ),
    residual(&[linear(7, 7)], &[]),
    bilinear(&[tanh()], &[linear(7, 2)], 7, 2, 3),
    linear(3, 2).bias(false),
];
const INPUT_MERGES_PLAN: Plan<{ node_count(&INPUT_MERGES) }> = Plan::training(&INPUT_MERGES, Shape::features(4), 3);

/// A tensor merged with itself inside merges: `x + x` inside a residual (x's gradient is 3g),
/// `cat(x, x)` in a body, and Bilinear of a merge with the identity.
const NESTED_MERGES: [Layer; 4] = [
    linear(3, 4),
    residual(&[residual(&[], &[]), tanh()], &[]),
    residual(&[concat(&[], &[]), linear(8, 4)], &[sigmoid()]),
    bilinear(&[residual(&[], &[])], &[], 4, 4, 2),
];
const NESTED_MERGES_PLAN: Plan<{ node_count(&NESTED_MERGES) }> = Plan::training(&NESTED_MERGES, Shape::features(3), 2);

/// MaxPool2d(return_indices) matched by a later MaxUnpool2d, every pad mode, AvgPool with
/// padding, count_include_pad and ceil_mode, MaxPool with padding, AdaptiveMaxPool, concat of
/// feature maps.
///
/// The indexed pool reads the network input, so no parameter moves its argmax: MaxUnpool2d
/// puts each value where the argmax is, and a moved argmax would make the loss jump (not just
/// kink), which finite differences cannot step over. `POOL_UNPOOL` covers a pool after a conv.
const POOLS: [Layer; 11] = [
    max_pool2d(2).return_indices(true),
    conv2d(2, 3, 3).padding(1),
    reflection_pad2d([1, 1, 1, 1]),
    conv2d(3, 2, 3),
    max_unpool2d(2),
    concat(
        &[conv2d(2, 2, 3).padding(1), tanh()],
        &[avg_pool2d(3).stride(1).padding(1).count_include_pad(false)],
    ),
    sequential(&[max_pool2d(3).stride(2).padding(1), replication_pad2d([0, 1, 1, 0])]),
    zero_pad2d([1, 0, 0, 1]),
    avg_pool2d(4).stride(3).ceil_mode(true),
    adaptive_max_pool2d(2, 1),
    sequential(&[flatten(), linear(8, 3)]),
];
const POOLS_PLAN: Plan<{ node_count(&POOLS) }> = Plan::training(&POOLS, Shape::chw(2, 8, 8), 2);

/// MaxPool2d(return_indices) after a conv, then MaxUnpool2d: the seed is one where no argmax
/// is within a finite-difference step of a tie.
const POOL_UNPOOL: [Layer; 6] = [
    conv2d(1, 2, 3).padding(1),
    max_pool2d(2).return_indices(true),
    conv2d(2, 2, 1),
    max_unpool2d(2),
    flatten(),
    linear(72, 2),
];
const POOL_UNPOOL_PLAN: Plan<6> = Plan::training(&POOL_UNPOOL, Shape::chw(1, 6, 6), 2);

/// Conv1d (padding='same', dilation), BatchNorm1d over `[C, L]`, pools over `[C, L]`.
const CONV1D: [Layer; 9] = [
    conv1d(2, 3, 3).padding(1),
    batch_norm1d(3),
    tanh(),
    avg_pool1d(2),
    conv1d(3, 4, 3).padding_same().dilation(2),
    max_pool1d(2),
    adaptive_avg_pool1d(3),
    linear(3, 2),
    sequential(&[flatten(), linear(8, 2)]),
];
const CONV1D_PLAN: Plan<{ node_count(&CONV1D) }> = Plan::training(&CONV1D, Shape::cl(2, 9), 2);

/// Conv3d with stride, groups and padding, AvgPool3d, MaxPool3d.
const CONV3D: [Layer; 7] = [
    conv3d(2, 4, 3).padding(1).stride(2),
    sigmoid(),
    conv3d(4, 4, 2).groups(2).padding(1),
    max_pool3d(2).padding(1),
    avg_pool3d(2).stride(1),
    flatten(),
    linear(16, 2),
];
const CONV3D_PLAN: Plan<{ node_count(&CONV3D) }> = Plan::training(&CONV3D, Shape::cdhw(2, 4, 5, 5), 2);

/// ConvTranspose2d with stride, padding, output_padding and groups; grouped strided Conv2d;
/// AdaptiveAvgPool2d with overlapping windows; Softmax over channels.
const TRANSPOSED: [Layer; 8] = [
    conv_transpose2d(2, 4, 3).stride(2).padding(1).output_padding(1),
    sigmoid(),
    conv_transpose2d(4, 2, 2).groups(2),
    conv2d(2, 4, 3).groups(2).stride(2),
    softmax(1),
    adaptive_avg_pool2d(2, 2),
    flatten(),
    linear(16, 3),
];
const TRANSPOSED_PLAN: Plan<{ node_count(&TRANSPOSED) }> = Plan::training(&TRANSPOSED, Shape::chw(2, 3, 3), 2);

#[test]
fn plans_have_the_expected_shapes() {
    assert_eq!(ACTIVATIONS_PLAN.output_shape(), Shape::cl(3, 2));
    assert_eq!(RESNET_PLAN.output_shape(), Shape::features(3));
    assert_eq!(MERGES_PLAN.output_shape(), Shape::features(4));
    assert_eq!(INPUT_MERGES_PLAN.output_shape(), Shape::features(2));
    assert_eq!(NESTED_MERGES_PLAN.output_shape(), Shape::features(2));
    assert_eq!(POOLS_PLAN.nodes()[4].out_shape, Shape::chw(2, 8, 8));
    assert_eq!(POOLS_PLAN.nodes()[12].out_shape, Shape::chw(4, 2, 2));
    assert_eq!(POOL_UNPOOL_PLAN.nodes()[3].out_shape, Shape::chw(2, 6, 6));
    assert_eq!(POOLS_PLAN.output_shape(), Shape::features(3));
    assert_eq!(CONV1D_PLAN.nodes()[5].out_shape, Shape::cl(4, 2));
    assert_eq!(CONV3D_PLAN.nodes()[3].out_shape, Shape::cdhw(4, 2, 3, 3));
    assert_eq!(CONV3D_PLAN.nodes()[4].out_shape, Shape::cdhw(4, 1, 2, 2));
    assert_eq!(TRANSPOSED_PLAN.nodes()[0].out_shape, Shape::chw(4, 6, 6));
    assert_eq!(TRANSPOSED_PLAN.nodes()[2].out_shape, Shape::chw(2, 7, 7));
    // Linear over [C, L] keeps C; LazyLinear inferred 4 inputs.
    assert_eq!(ACTIVATIONS_PLAN.nodes()[7].weight_len, 4 * 5);
}

#[test]
fn gradients_activations_nested_sequential_and_rank2_linear() {
    GradCheck::new(2, 1).scale(20.0).run(&ACTIVATIONS_PLAN).unwrap();
    // Eval mode: Dropout is the identity.
    GradCheck::new(2, 2).scale(20.0).eval().run(&ACTIVATIONS_PLAN).unwrap();
}

#[test]
fn gradients_resnet_blocks_with_batch_norm() {
    GradCheck::new(2, 3).h(1e-3).run(&RESNET_PLAN).unwrap();
    // Eval mode: BatchNorm is an affine map with the running statistics.
    GradCheck::new(2, 4)
        .h(3e-3)
        .scale(20.0)
        .eval()
        .run(&RESNET_PLAN)
        .unwrap();
}

#[test]
fn gradients_concat_and_bilinear() {
    GradCheck::new(3, 5).run(&MERGES_PLAN).unwrap();
    GradCheck::new(3, 6).run(&INPUT_MERGES_PLAN).unwrap();
    GradCheck::new(2, 12).eval().run(&INPUT_MERGES_PLAN).unwrap();
    GradCheck::new(2, 13).run(&NESTED_MERGES_PLAN).unwrap();
}

#[test]
fn gradients_pools_pads_and_max_unpool() {
    GradCheck::new(2, 7).h(3e-3).run(&POOLS_PLAN).unwrap();
    GradCheck::new(2, 11).h(3e-3).run(&POOL_UNPOOL_PLAN).unwrap();
}

#[test]
fn gradients_conv1d_conv3d_and_conv_transpose() {
    GradCheck::new(2, 8).h(3e-3).scale(3.0).run(&CONV1D_PLAN).unwrap();
    GradCheck::new(2, 9).h(3e-3).run(&CONV3D_PLAN).unwrap();
    GradCheck::new(2, 10).scale(10.0).run(&TRANSPOSED_PLAN).unwrap();
}

/// The inference plan of `train`'s model (ping-pong arena, nothing kept) computes what the
/// training plan computes in eval mode, for every batch size up to the plan's.
fn inference_matches_eval<const C: usize>(train: &Plan<C>, seed: u64) {
    let infer = Plan::<C>::try_new(train.layers(), train.input_shape(), train.batch(), Mode::Inference).unwrap();
    assert!(infer.arena_len() <= train.arena_len());
    let mut tb = Bufs::new(train);
    let mut tnet = tb.net(train);
    randomize(&mut tnet, seed);
    tnet.eval();
    let mut ib = Bufs::new(&infer);
    ib.params.copy_from_slice(tnet.params());
    ib.state.copy_from_slice(tnet.state());
    let mut inet = ib.net(&infer);
    let sample = train.input_shape().numel();
    for n in 1..=train.batch() {
        let x = rand_vec(n * sample, seed + n as u64);
        let want = match tnet.forward(&x) {
            Ok(y) => y.to_vec(),
            // Batch statistics in eval mode (no running statistics) need two values.
            Err(e) => {
                assert_eq!(inet.forward(&x).err(), Some(e));
                continue;
            }
        };
        close(
            &format!("inference plan, batch {n}"),
            inet.forward(&x).unwrap(),
            &want,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn inference_plans_compute_the_eval_mode_outputs() {
    inference_matches_eval(&ACTIVATIONS_PLAN, 70);
    inference_matches_eval(&RESNET_PLAN, 71);
    inference_matches_eval(&MERGES_PLAN, 72);
    inference_matches_eval(&INPUT_MERGES_PLAN, 73);
    inference_matches_eval(&NESTED_MERGES_PLAN, 74);
    inference_matches_eval(&POOLS_PLAN, 75);
    inference_matches_eval(&POOL_UNPOOL_PLAN, 76);
    inference_matches_eval(&CONV1D_PLAN, 77);
    inference_matches_eval(&CONV3D_PLAN, 78);
    inference_matches_eval(&TRANSPOSED_PLAN, 79);
}

// ---------------------------------------------------------------------------------------------
// Random smooth models
// ---------------------------------------------------------------------------------------------

fn leak(v: Vec<Layer>) -> &'static [Layer] {
    Box::leak(v.into_boxed_slice())
}

/// A random valid model over `[C, H, W]` built from differentiable layers only (no ReLU or
/// max-pool kinks), with containers, then `flatten` and `lazy_linear`, sometimes a Bilinear.
fn arb_smooth_model() -> impl Strategy<Value = (Vec<Layer<'static>>, Shape, usize, u64)> {
    let spec = prop::collection::vec((0u8..12, 1usize..4, 0usize..3), 1..7);
    (spec, 1usize..4, 2usize..6, 2usize..4, any::<u64>()).prop_map(|(spec, c0, hw, batch, seed)| {
        let (mut c, mut h, mut w) = (c0, hw, hw);
        let mut layers = Vec::new();
        for (kind, a, k) in spec {
            match kind {
                0 => {
                    let k = k + 1;
                    if k <= h + 2 * (k / 2) && k <= w + 2 * (k / 2) {
                        layers.push(conv2d(c, a, k).padding(k / 2));
                        h = h + 2 * (k / 2) + 1 - k;
                        w = w + 2 * (k / 2) + 1 - k;
                        c = a;
                    }
                }
                1 => layers.push(tanh()),
                2 => layers.push(sigmoid()),
                3 => layers.push(batch_norm2d(c)),
                4 if h >= 2 && w >= 2 => {
                    layers.push(avg_pool2d(2));
                    h /= 2;
                    w /= 2;
                }
                4 => layers.push(avg_pool2d(3).stride(1).padding(1)),
                5 => layers.push(residual(leak(vec![conv2d(c, c, 3).padding(1), tanh()]), &[])),
                6 => {
                    let body = leak(vec![conv2d(c, a, 3).padding(1).bias(false), batch_norm2d(a)]);
                    layers.push(residual(body, leak(vec![conv2d(c, a, 1).bias(false)])));
                    c = a;
                }
                7 if c <= 4 => {
                    let branch = leak(vec![conv2d(c, a, 1), sigmoid()]);
                    layers.push(if k == 0 {
                        concat(branch, &[])
                    } else {
                        concat(&[], branch)
                    });
                    c += a;
                }
                8 => {
                    layers.push(sequential(leak(vec![conv2d(c, a, 1), sequential(leak(vec![tanh()]))])));
                    c = a;
                }
                9 => {
                    let (pad, ok) = match k {
                        0 => (zero_pad2d([1, 0, 0, 1]), true),
                        1 => (replication_pad2d([0, 1, 1, 1]), true),
                        _ => (reflection_pad2d([1, 1, 1, 0]), h >= 2 && w >= 2),
                    };
                    if ok {
                        if let Kind::Op(Op::Pad2d(p)) = pad.kind {
                            w += p.padding[0] + p.padding[1];
                            h += p.padding[2] + p.padding[3];
                        }
                        layers.push(pad);
                    }
                }
                10 if c >= 2 => layers.push(softmax(1)),
                10 => layers.push(log_softmax(-1)),
                _ => layers.push(dropout(0.3)),
            }
        }
        layers.push(flatten());
        layers.push(lazy_linear(3));
        if seed % 2 == 0 {
            layers.push(bilinear(&[], leak(vec![linear(3, 2)]), 3, 2, 2));
        }
        (layers, Shape::chw(c0, hw, hw), batch, seed)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_smooth_models_have_correct_gradients((layers, input, batch, seed) in arb_smooth_model()) {
        let layers: &'static [Layer] = leak(layers);
        let plan = Plan::<40>::try_new(layers, input, batch, Mode::Training).unwrap();
        // Sometimes fewer samples than planned (BatchNorm needs two in training mode).
        let n = if seed % 3 == 0 && batch > 2 { batch - 1 } else { batch };
        let mut check = GradCheck::new(n, seed).h(1e-2);
        check.per_node = 10;
        check.require_signal = false;
        if let Err(e) = check.run(&plan) {
            return Err(TestCaseError::fail(e));
        }
        if let Err(e) = check.eval().run(&plan) {
            return Err(TestCaseError::fail(format!("eval mode: {e}")));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Batches smaller than the plan's
// ---------------------------------------------------------------------------------------------

#[test]
fn smaller_batches_give_the_full_batch_outputs() {
    const TRAIN: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 4);
    const INFER: Plan<RESNET_CAP> = Plan::inference(&RESNET, Shape::chw(3, 6, 6), 4);
    let sample = 3 * 6 * 6;
    let x = rand_vec(4 * sample, 21);
    let mut tb = Bufs::new(&TRAIN);
    let mut train = tb.net(&TRAIN);
    randomize(&mut train, 20);
    train.eval();
    let full = train.forward(&x).unwrap().to_vec();
    assert_eq!(full.len(), 4 * 3);
    let mut ib = Bufs::new(&INFER);
    ib.params.copy_from_slice(train.params());
    ib.state.copy_from_slice(train.state());
    let mut infer = ib.net(&INFER);
    assert!(!infer.is_training());
    close(
        "inference plan, full batch",
        infer.forward(&x).unwrap(),
        &full,
        1e-5,
        1e-6,
    );
    for n in 1..4 {
        for start in 0..=4 - n {
            let xs = &x[start * sample..(start + n) * sample];
            let want = &full[start * 3..(start + n) * 3];
            close(
                &format!("training plan in eval mode, {n} samples from {start}"),
                train.forward(xs).unwrap(),
                want,
                1e-5,
                1e-6,
            );
            close(
                &format!("inference plan, {n} samples from {start}"),
                infer.forward(xs).unwrap(),
                want,
                1e-5,
                1e-6,
            );
        }
    }
}

#[test]
fn smaller_batches_give_correct_gradients() {
    const BIG: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 4);
    const EXACT: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 3);
    const SMOOTH: Plan<RESNET_CAP> = Plan::training(&SMOOTH_RESNET, Shape::chw(3, 6, 6), 4);
    // Finite differences on 3 and 2 of 4 planned samples, in training mode (batch statistics
    // of 3 and 2) and in eval mode.
    GradCheck::new(3, 22).run(&SMOOTH).unwrap();
    GradCheck::new(2, 23).run(&SMOOTH).unwrap();
    GradCheck::new(1, 24).scale(10.0).eval().run(&SMOOTH).unwrap();
    // The same gradients, output and running statistics as a plan made for exactly 3.
    let x = rand_vec(3 * 3 * 6 * 6, 24);
    let w = rand_vec(3 * 3, 25);
    let run = |plan: &Plan<RESNET_CAP>| {
        let mut b = Bufs::new(plan);
        let mut net = b.net(plan);
        randomize(&mut net, 26);
        let y = net.forward(&x).unwrap().to_vec();
        net.backward_from(&w).unwrap();
        (y, net.grads().to_vec(), net.state().to_vec())
    };
    let (y_big, g_big, s_big) = run(&BIG);
    let (y_exact, g_exact, s_exact) = run(&EXACT);
    close("output", &y_big, &y_exact, 1e-5, 1e-6);
    close("gradients", &g_big, &g_exact, 1e-4, 1e-6);
    close("running statistics", &s_big, &s_exact, 1e-5, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Train and eval mode
// ---------------------------------------------------------------------------------------------

#[test]
fn batch_norm_uses_batch_statistics_in_train_and_running_statistics_in_eval() {
    const BN: [Layer; 1] = [batch_norm2d(2)];
    const PLAN: Plan<1> = Plan::training(&BN, Shape::chw(2, 2, 3), 3);
    let (n, c, s) = (3, 2, 6);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    randomize(&mut net, 30);
    let (weight, bias) = (net.params()[..c].to_vec(), net.params()[c..].to_vec());
    let state0 = net.state().to_vec();
    assert_eq!(state0[2 * c], 0.0);
    let x: Vec<f32> = rand_vec(n * c * s, 31)
        .iter()
        .enumerate()
        .map(|(i, v)| 2.0 * v + (i / s % c) as f32)
        .collect();
    let at = |i: usize, ch: usize, k: usize| (i * c + ch) * s + k;

    assert!(net.is_training());
    let y = net.forward(&x).unwrap().to_vec();
    let mut want = vec![0.0; x.len()];
    let mut state = state0.clone();
    state[2 * c] += 1.0;
    for ch in 0..c {
        let v: Vec<f64> = (0..n)
            .flat_map(|i| (0..s).map(move |k| (i, k)))
            .map(|(i, k)| x[at(i, ch, k)] as f64)
            .collect();
        let m = v.len() as f64;
        let mean = v.iter().sum::<f64>() / m;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / m;
        for i in 0..n {
            for k in 0..s {
                let j = at(i, ch, k);
                want[j] = ((x[j] as f64 - mean) / (var + 1e-5).sqrt() * weight[ch] as f64 + bias[ch] as f64) as f32;
            }
        }
        state[ch] = (0.9 * state0[ch] as f64 + 0.1 * mean) as f32;
        state[c + ch] = (0.9 * state0[c + ch] as f64 + 0.1 * var * m / (m - 1.0)) as f32;
    }
    close("train-mode output (batch statistics)", &y, &want, 1e-5, 1e-5);
    close(
        "running statistics after one training pass",
        net.state(),
        &state,
        1e-5,
        1e-6,
    );

    net.eval();
    assert!(!net.is_training());
    let state = net.state().to_vec();
    let y = net.forward(&x).unwrap().to_vec();
    assert_eq!(net.state(), &state[..], "eval mode leaves the running statistics alone");
    for j in 0..x.len() {
        let ch = j / s % c;
        let rv = (state[c + ch] as f64 + 1e-5).sqrt();
        want[j] = ((x[j] as f64 - state[ch] as f64) / rv * weight[ch] as f64 + bias[ch] as f64) as f32;
    }
    close("eval-mode output (running statistics)", &y, &want, 1e-5, 1e-5);

    net.train().unwrap();
    net.forward(&x).unwrap();
    assert_eq!(net.state()[2 * c], 2.0, "num_batches_tracked counts training passes");
}

#[test]
fn dropout_drops_in_train_and_is_the_identity_in_eval() {
    const DROP: [Layer; 1] = [dropout(0.3)];
    const PLAN: Plan<1> = Plan::training(&DROP, Shape::features(500), 4);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    let x: Vec<f32> = rand_vec(2000, 40).iter().map(|v| 1.5 + v).collect();

    net.set_seed(11);
    let y = net.forward(&x).unwrap().to_vec();
    let dropped = y.iter().filter(|&&v| v == 0.0).count();
    // 2000 draws of p = 0.3: standard deviation about 20.
    assert!((520..=680).contains(&dropped), "{dropped} of 2000 dropped with p = 0.3");
    for (i, (&yi, &xi)) in y.iter().zip(&x).enumerate() {
        assert!(
            yi == 0.0 || (yi - xi / 0.7).abs() <= 1e-6 * yi.abs(),
            "index {i}: {yi} from {xi}"
        );
    }
    // The same seed gives the same mask; the generator moves on otherwise.
    net.set_seed(11);
    assert_eq!(net.forward(&x).unwrap(), &y[..]);
    let saved = net.rng();
    let y2 = net.forward(&x).unwrap().to_vec();
    assert_ne!(y2, y, "a second pass without reseeding must draw a new mask");
    net.set_rng(saved);
    assert_eq!(net.forward(&x).unwrap(), &y2[..], "set_rng resumes the generator");
    net.set_seed(12);
    assert_ne!(net.forward(&x).unwrap(), &y[..]);
    net.eval();
    assert_eq!(net.forward(&x).unwrap(), &x[..], "Dropout is the identity in eval mode");
    net.train().unwrap();
    assert_ne!(net.forward(&x).unwrap(), &x[..]);
}

#[test]
fn dropout_gradient_uses_the_forward_mask() {
    // Linear -> Dropout: d(sum w * y)/d(bias_j) = sum over samples of w * mask.
    const NET: [Layer; 2] = [linear(3, 50), dropout(0.5)];
    const PLAN: Plan<2> = Plan::training(&NET, Shape::features(3), 2);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    net.init_params(1).unwrap();
    let x = rand_vec(6, 41);
    net.set_seed(3);
    let y = net.forward(&x).unwrap().to_vec();
    // Recover the mask from the output and the undropped output (eval mode).
    net.eval();
    let full = net.forward(&x).unwrap().to_vec();
    net.train().unwrap();
    net.set_seed(3);
    net.forward(&x).unwrap();
    let w = rand_vec(100, 42);
    net.zero_grad();
    net.backward_from(&w).unwrap();
    let gb = &net.grads()[150..200];
    for j in 0..50 {
        let want: f32 = (0..2)
            .map(|i| if y[i * 50 + j] == 0.0 { 0.0 } else { 2.0 * w[i * 50 + j] })
            .sum();
        assert!(
            (gb[j] - want).abs() <= 1e-5,
            "bias {j}: {} vs {want} (outputs {:?} / {:?})",
            gb[j],
            y[j],
            full[j]
        );
    }
    assert!(y.contains(&0.0) && y.iter().any(|&v| v != 0.0));
}

// ---------------------------------------------------------------------------------------------
// Gradient accumulation
// ---------------------------------------------------------------------------------------------

#[test]
fn gradients_accumulate_without_zero_grad() {
    let x = rand_vec(2 * 3 * 6 * 6, 50);
    let w = rand_vec(2 * 3, 51);
    let mut b = Bufs::new(&RESNET_PLAN);
    let mut net = b.net(&RESNET_PLAN);
    randomize(&mut net, 52);
    net.zero_grad();
    net.forward(&x).unwrap();
    net.backward_from(&w).unwrap();
    let once = net.grads().to_vec();
    assert!(once.iter().filter(|g| g.abs() > 1e-3).count() > once.len() / 2);
    net.forward(&x).unwrap();
    net.backward_from(&w).unwrap();
    let twice: Vec<f32> = once.iter().map(|g| 2.0 * g).collect();
    close("two backward passes", net.grads(), &twice, 1e-5, 1e-7);
    net.zero_grad();
    assert!(net.grads().iter().all(|&g| g == 0.0));

    // The same through a loss and with Dropout (same mask each time).
    let mut b = Bufs::new(&ACTIVATIONS_PLAN);
    let mut net = b.net(&ACTIVATIONS_PLAN);
    net.init_params(53).unwrap();
    let x = rand_vec(2 * 15, 54);
    // Output [3, 2] per sample: 3 classes at 2 positions.
    let labels = [1u32, 0, 2, 1];
    net.zero_grad();
    net.set_seed(9);
    net.forward(&x).unwrap();
    let l1 = net.backward(&CrossEntropyLoss::new(), &labels).unwrap();
    let once = net.grads().to_vec();
    net.set_seed(9);
    net.forward(&x).unwrap();
    let l2 = net.backward(&CrossEntropyLoss::new(), &labels).unwrap();
    assert_eq!(l1, l2);
    let twice: Vec<f32> = once.iter().map(|g| 2.0 * g).collect();
    close("two backward passes through a loss", net.grads(), &twice, 1e-5, 1e-7);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

const SMALL: [Layer; 4] = [conv2d(1, 2, 3), batch_norm2d(2), flatten(), linear(8, 3)];
const SMALL_TRAIN: Plan<4> = Plan::training(&SMALL, Shape::chw(1, 4, 4), 2);
const SMALL_INFER: Plan<4> = Plan::inference(&SMALL, Shape::chw(1, 4, 4), 2);

#[test]
fn new_rejects_each_wrong_buffer_length() {
    let p = &SMALL_TRAIN;
    let (pl, sl, al) = (p.param_len(), p.state_len(), p.arena_len());
    assert_eq!(sl, 5);
    let v = |n: usize| vec![0.0f32; n];
    let err = |params: usize, grads: usize, state: usize, arena: usize| {
        Network::new(p, &mut v(params), &mut v(grads), &mut v(state), &mut v(arena)).err()
    };
    assert_eq!(err(pl, pl, sl, al), None);
    assert_eq!(err(pl, pl, sl, al + 100), None, "a larger arena is fine");
    assert_eq!(
        err(pl - 1, pl, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Params,
            expected: pl,
            found: pl - 1
        })
    );
    assert_eq!(
        err(pl + 1, pl, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Params,
            expected: pl,
            found: pl + 1
        })
    );
    assert_eq!(
        err(pl, pl + 1, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Grads,
            expected: pl,
            found: pl + 1
        })
    );
    assert_eq!(
        err(pl, 0, sl, al),
        Some(Error::BufferLength {
            buffer: Buffer::Grads,
            expected: pl,
            found: 0
        })
    );
    assert_eq!(
        err(pl, pl, sl - 1, al),
        Some(Error::BufferLength {
            buffer: Buffer::State,
            expected: sl,
            found: sl - 1
        })
    );
    assert_eq!(
        err(pl, pl, 0, al),
        Some(Error::BufferLength {
            buffer: Buffer::State,
            expected: sl,
            found: 0
        })
    );
    assert_eq!(
        err(pl, pl, sl, al - 1),
        Some(Error::BufferLength {
            buffer: Buffer::Arena,
            expected: al,
            found: al - 1
        })
    );
    assert_eq!(
        err(pl, pl, sl, 0),
        Some(Error::BufferLength {
            buffer: Buffer::Arena,
            expected: al,
            found: 0
        })
    );
    // An inference plan takes no gradient buffer.
    let q = &SMALL_INFER;
    let e = Network::new(q, &mut v(pl), &mut v(pl), &mut v(sl), &mut v(q.arena_len())).err();
    assert_eq!(
        e,
        Some(Error::BufferLength {
            buffer: Buffer::Grads,
            expected: 0,
            found: pl
        })
    );
    assert!(Network::new(q, &mut v(pl), &mut [], &mut v(sl), &mut v(q.arena_len())).is_ok());
}

#[test]
fn forward_rejects_bad_inputs() {
    let mut b = Bufs::new(&SMALL_TRAIN);
    let mut net = b.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    let sample = 16;
    let x = rand_vec(3 * sample, 60);
    // Not a whole number of samples: the length of the next whole batch is expected.
    assert_eq!(
        net.forward(&x[..2 * sample - 1]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Input,
            expected: 2 * sample,
            found: 2 * sample - 1
        })
    );
    assert_eq!(
        net.forward(&x[..5]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Input,
            expected: sample,
            found: 5
        })
    );
    assert_eq!(
        net.forward(&x[..3 * sample]).err(),
        Some(Error::BatchSize { max: 2, found: 3 })
    );
    assert_eq!(net.forward(&[]).err(), Some(Error::BatchSize { max: 2, found: 0 }));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut xb = x[..sample].to_vec();
        xb[7] = bad;
        assert_eq!(net.forward(&xb).err(), Some(Error::NonFinite { what: "input" }));
    }
    // None of these ran the model.
    assert_eq!(net.output().err(), Some(Error::NotReady { what: "a forward pass" }));
    // BatchNorm in training mode needs more than one value per channel, as PyTorch.
    let mut one = Bufs::new(&SMALL_TRAIN);
    let mut tiny = one.net(&SMALL_TRAIN);
    tiny.init_params(0).unwrap();
    // conv output is [2, 2, 2]: a single sample has 4 values per channel, which is enough.
    assert!(tiny.forward(&x[..sample]).is_ok());
    const BN1: [Layer; 2] = [linear(3, 2), batch_norm1d(2)];
    const BN1_PLAN: Plan<2> = Plan::training(&BN1, Shape::features(3), 2);
    let mut b1 = Bufs::new(&BN1_PLAN);
    let mut net1 = b1.net(&BN1_PLAN);
    net1.init_params(0).unwrap();
    assert_eq!(
        net1.forward(&[0.1, 0.2, 0.3]).err(),
        Some(Error::Shape {
            layer: 1,
            op: "BatchNorm1d",
            what: "batch statistics need more than 1 value per channel (batch x spatial size)",
            expected: 2,
            found: 1
        })
    );
    net1.eval();
    assert!(
        net1.forward(&[0.1, 0.2, 0.3]).is_ok(),
        "eval mode uses the running statistics"
    );
}

const TRAINING_PLAN_NEEDED: Error = Error::NotReady {
    what: "a training plan (this network was planned for inference)",
};
const FORWARD_NEEDED: Error = Error::NotReady { what: "a forward pass" };

#[test]
fn backward_needs_a_training_plan_and_a_forward_pass() {
    let x = rand_vec(2 * 16, 61);
    let w = rand_vec(2 * 3, 62);
    let labels = [0u32, 2];

    let mut ib = Bufs::new(&SMALL_INFER);
    let mut infer = ib.net(&SMALL_INFER);
    infer.init_params(0).unwrap();
    assert!(!infer.is_training());
    assert_eq!(infer.train().err(), Some(TRAINING_PLAN_NEEDED));
    assert!(!infer.is_training(), "a failed train() leaves eval mode");
    assert_eq!(
        infer.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(TRAINING_PLAN_NEEDED)
    );
    infer.forward(&x).unwrap();
    assert_eq!(
        infer.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(TRAINING_PLAN_NEEDED)
    );
    assert_eq!(infer.backward_from(&w).err(), Some(TRAINING_PLAN_NEEDED));
    assert!(infer.loss(&CrossEntropyLoss::new(), &labels).unwrap().is_finite());

    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut net = tb.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(FORWARD_NEEDED)
    );
    assert_eq!(net.backward_from(&w).err(), Some(FORWARD_NEEDED));
    assert_eq!(net.loss(&CrossEntropyLoss::new(), &labels).err(), Some(FORWARD_NEEDED));
    net.forward(&x).unwrap();
    let before = net.loss(&CrossEntropyLoss::new(), &labels).unwrap();
    let loss = net.backward(&CrossEntropyLoss::new(), &labels).unwrap();
    assert_eq!(loss, before, "backward returns the loss `loss()` computes");
    // The activations were consumed: a second backward needs a new forward, as in PyTorch.
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &labels).err(),
        Some(FORWARD_NEEDED)
    );
    assert_eq!(net.backward_from(&w).err(), Some(FORWARD_NEEDED));
    // init_params invalidates the last pass too.
    net.forward(&x).unwrap();
    net.init_params(1).unwrap();
    assert_eq!(net.backward_from(&w).err(), Some(FORWARD_NEEDED));
}

#[test]
fn backward_from_checks_its_gradient() {
    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut net = tb.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    net.forward(&rand_vec(16, 63)).unwrap();
    // One sample: the gradient must have one sample's output length.
    assert_eq!(
        net.backward_from(&[0.0; 6]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Gradient,
            expected: 3,
            found: 6
        })
    );
    assert_eq!(
        net.backward_from(&[0.0, f32::NAN, 1.0]).err(),
        Some(Error::NonFinite { what: "grad_output" })
    );
    assert!(net.grads().iter().all(|&g| g == 0.0));
    net.backward_from(&[1.0, -1.0, 0.5]).unwrap();
    assert!(net.grads().iter().any(|&g| g != 0.0));
}

#[test]
fn loss_errors_leave_the_gradients_untouched() {
    let x = rand_vec(2 * 16, 64);
    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut net = tb.net(&SMALL_TRAIN);
    net.init_params(0).unwrap();
    net.zero_grad();
    net.forward(&x).unwrap();
    // 3 classes: label 3 at position 1 is out of range.
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &[2, 3]).err(),
        Some(Error::LabelOutOfRange {
            index: 1,
            label: 3,
            classes: 3
        })
    );
    assert_eq!(
        net.backward(&CrossEntropyLoss::new(), &[2, 1, 0]).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Target,
            expected: 2,
            found: 3
        })
    );
    // A NaN target makes the loss NaN.
    let mut t = vec![0.5f32; 6];
    t[4] = f32::NAN;
    assert_eq!(
        net.backward(&MSELoss::new(), &t).err(),
        Some(Error::NonFinite { what: "loss" })
    );
    assert!(net.grads().iter().all(|&g| g == 0.0), "no gradient after a failed loss");
    // A loss that overflows to infinity from finite outputs.
    let last = SMALL_TRAIN.nodes()[3];
    let p = &mut net.params_mut().unwrap()[last.param_offset..last.param_offset + last.param_len()];
    p[..last.weight_len].fill(0.0);
    p[last.weight_len..].fill(3e38);
    let y = net.forward(&x).unwrap();
    assert!(y.iter().all(|v| *v == 3e38), "{y:?}");
    assert_eq!(
        net.backward(&MSELoss::new(), &[0.0; 6]).err(),
        Some(Error::NonFinite { what: "loss" })
    );
    assert!(net.grads().iter().all(|&g| g == 0.0), "no gradient after a failed loss");
}

/// Regression: a forward pass that fails midway (here BatchNorm's "more than 1 value per channel"
/// check, network.rs `forward_node`) leaves `last_n` of the previous successful pass, so
/// `output()` returns a mix of old and new activations and `backward` runs on them.
#[test]
fn a_failed_forward_invalidates_the_previous_pass() {
    const BN1: [Layer; 2] = [linear(3, 2), batch_norm1d(2)];
    const PLAN: Plan<2> = Plan::training(&BN1, Shape::features(3), 2);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    net.init_params(0).unwrap();
    net.forward(&[0.1, 0.2, 0.3, -0.3, 0.5, 0.9]).unwrap();
    assert!(net.forward(&[0.1, 0.2, 0.3]).is_err());
    assert_eq!(net.output().err(), Some(FORWARD_NEEDED));
    assert_eq!(net.backward_from(&[1.0; 4]).err(), Some(FORWARD_NEEDED));
}

// ---------------------------------------------------------------------------------------------
// init_params
// ---------------------------------------------------------------------------------------------

const INIT: [Layer; 7] = [
    conv2d(4, 6, 3).groups(2),
    batch_norm2d(6),
    conv_transpose2d(6, 8, 2).groups(2),
    conv2d(8, 8, 1).bias(false),
    flatten(),
    linear(200, 5),
    bilinear(&[], &[linear(5, 7)], 5, 7, 2),
];
const INIT_PLAN: Plan<{ node_count(&INIT) }> = Plan::training(&INIT, Shape::chw(4, 6, 6), 1);

/// PyTorch's `fan_in` of each node's weight, written out by hand: `weight.size(1) * kernel`.
const INIT_FAN_IN: [usize; 8] = [
    2 * 9, // Conv2d(4, 6, 3, groups=2): weight [6, 2, 3, 3]
    0,     // BatchNorm2d
    4 * 4, // ConvTranspose2d(6, 8, 2, groups=2): weight [6, 4, 2, 2]
    8,     // Conv2d(8, 8, 1): weight [8, 8, 1, 1]
    0,     // Flatten
    200,   // Linear(200, 5)
    5,     // Linear(5, 7)
    5,     // Bilinear(5, 7, 2): bound 1 / sqrt(in1_features)
];

fn init_net_params(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut b = Bufs::new(&INIT_PLAN);
    b.state.fill(7.0);
    b.params.fill(7.0);
    let mut net = b.net(&INIT_PLAN);
    net.init_params(seed).unwrap();
    (net.params().to_vec(), net.state().to_vec())
}

#[test]
fn init_params_uses_pytorch_bounds() {
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
fn init_params_bounds_conv1d_and_conv3d() {
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
fn init_params_is_deterministic_per_seed() {
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

// ---------------------------------------------------------------------------------------------
// Read-only weights
// ---------------------------------------------------------------------------------------------

#[test]
fn read_only_weights_run_inference_only() {
    const WRITABLE: Error = Error::NotReady {
        what: "writable weights (these are read-only)",
    };
    let x = rand_vec(2 * 16, 80);
    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut tnet = tb.net(&SMALL_TRAIN);
    randomize(&mut tnet, 81);
    tnet.eval();
    let want = tnet.forward(&x).unwrap().to_vec();
    let (params, state) = (tnet.params().to_vec(), tnet.state().to_vec());

    let mut arena = vec![0.0; SMALL_INFER.arena_len()];
    assert_eq!(
        Network::with_weights(&SMALL_TRAIN, &params, &state, &mut arena).err(),
        Some(Error::NotReady {
            what: "an inference plan (read-only weights cannot train)"
        })
    );
    assert_eq!(
        Network::with_weights(&SMALL_INFER, &params[1..], &state, &mut arena).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Params,
            expected: params.len(),
            found: params.len() - 1
        })
    );
    assert_eq!(
        Network::with_weights(&SMALL_INFER, &params, &state[1..], &mut arena).err(),
        Some(Error::BufferLength {
            buffer: Buffer::State,
            expected: state.len(),
            found: state.len() - 1
        })
    );
    let mut short = vec![0.0; SMALL_INFER.arena_len() - 1];
    assert_eq!(
        Network::with_weights(&SMALL_INFER, &params, &state, &mut short).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Arena,
            expected: SMALL_INFER.arena_len(),
            found: short.len()
        })
    );
    let mut net = Network::with_weights(&SMALL_INFER, &params, &state, &mut arena).unwrap();
    assert!(!net.is_training());
    close("read-only weights", net.forward(&x).unwrap(), &want, 1e-6, 0.0);
    assert_eq!(net.train().err(), Some(TRAINING_PLAN_NEEDED));
    assert_eq!(net.init_params(0).err(), Some(WRITABLE));
    assert_eq!(net.params_mut().err(), Some(WRITABLE));
    assert_eq!(net.state_mut().err(), Some(WRITABLE));
    assert_eq!(net.backward_from(&[0.0; 6]).err(), Some(TRAINING_PLAN_NEEDED));
    assert_eq!(net.params(), &params[..]);
}

/// `Network::init_params` draws layer `i` from stream `i`: appending layers keeps the initial
/// weights of the layers before them (as its documentation says).
#[test]
fn appending_a_layer_keeps_the_earlier_layers_initial_weights() {
    const A: [Layer; 2] = [linear(4, 3), linear(3, 2)];
    const B: [Layer; 4] = [linear(4, 3), linear(3, 2), relu(), linear(2, 2)];
    const PA: Plan<2> = Plan::training(&A, Shape::features(4), 1);
    const PB: Plan<4> = Plan::training(&B, Shape::features(4), 1);
    let mut ba = Bufs::new(&PA);
    let mut na = ba.net(&PA);
    na.init_params(1).unwrap();
    let mut bb = Bufs::new(&PB);
    let mut nb = bb.net(&PB);
    nb.init_params(1).unwrap();
    assert_eq!(na.params(), &nb.params()[..PA.param_len()]);
    // A different seed gives different weights.
    nb.init_params(2).unwrap();
    assert_ne!(na.params(), &nb.params()[..PA.param_len()]);
}
