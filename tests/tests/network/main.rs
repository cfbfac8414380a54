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

mod errors;
mod graphs;
mod init;
mod modes;
mod weights;
