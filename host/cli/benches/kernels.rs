//! Speed of each matrix-multiply provider this CPU runs ([`torchlet_host::kernels::available`]),
//! single thread, on the tutorial CIFAR-10 network (`tutorial-cnn`):
//!
//! 0. GFLOP/s of the matrix products its layers make (and a 512-square one, for the peak);
//! 1. GFLOP/s of its three convolutions, forward and backward, batch 64 and 1 (the shapes of
//!    `tools/bench-conv.sh`);
//! 2. a whole training step at batch 64 (forward, cross-entropy backward, SGD with momentum)
//!    in images per second, inference at batch 64 in images per second, and the latency of
//!    one image.
//!
//! Every figure is the median of repeated runs after a warm-up (the best run is printed
//! beside it: the steadier figure on a shared machine).
//!
//! Run: `cargo bench -p torchlet-host --bench kernels` (add `-- gemm`, `-- conv` or `-- step` for one
//! part; set `TORCHLET_KERNEL=avx2` or another name to time one provider). Under `cargo test`
//! it runs each case once, as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use torchlet::kernels::{Gemm, MatRef};
use torchlet::loss::CrossEntropyLoss;
use torchlet::ops::conv::{conv_backward_input_with, conv_backward_weight_with, conv_forward_with, conv_workspace_len};
use torchlet::ops::geom::{ConvGeom, PaddingMode};
use torchlet::optim::{Optimizer, Sgd};
use torchlet::{Mode, Network};
use torchlet_host::kernels;
use torchlet_host::model::Model;

/// The network's convolutions: `(name, C_in, C_out, H = W)`, kernel 5, padding 2.
const CONVS: [(&str, usize, usize, usize); 3] = [("conv1", 3, 32, 32), ("conv2", 32, 32, 16), ("conv3", 32, 64, 8)];

/// Times `f` for about `budget` (at least 5 runs, after one warm-up) and returns the median
/// and the best time in seconds; one run only when `quick`.
fn time(quick: bool, budget: Duration, mut f: impl FnMut()) -> (f64, f64) {
    f();
    if quick {
        return (0.0, 0.0);
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < budget && times.len() < 2000) {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

/// Deterministic values in [-0.5, 0.5).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn conv_geom(c_in: usize, c_out: usize, hw: usize, n: usize) -> ConvGeom {
    ConvGeom {
        n,
        c_in,
        c_out,
        groups: 1,
        input: [1, hw, hw],
        output: [1, hw, hw],
        kernel: [1, 5, 5],
        stride: [1; 3],
        dilation: [1; 3],
        pad: [0, 2, 2],
        mode: PaddingMode::Zeros,
        bias: true,
    }
}

fn bench_conv(quick: bool, providers: &[&'static dyn Gemm]) {
    println!("\nconvolutions (single thread; GFLOP/s = 2 x multiply-adds / median time; best in brackets)");
    print!("{:<6} {:>5} {:<9}", "conv", "batch", "pass");
    for p in providers {
        print!(" {:>18}", p.name());
    }
    println!();
    for n in [64, 1] {
        for (name, c_in, c_out, hw) in CONVS {
            let g = conv_geom(c_in, c_out, hw, n);
            let macs = (n * c_out * hw * hw * c_in * 25) as f64;
            let (x, w, b) = (
                values(n * c_in * hw * hw, 1),
                values(g.weight_len(), 2),
                values(c_out, 3),
            );
            let gy = values(n * c_out * hw * hw, 4);
            let mut y = vec![0.0; gy.len()];
            let mut gx = vec![0.0; x.len()];
            let (mut gw, mut gb) = (vec![0.0; w.len()], vec![0.0; c_out]);
            let mut work = vec![0.0; conv_workspace_len(&g)];
            for (pass, flops) in [("forward", 2.0 * macs), ("backward", 4.0 * macs)] {
                print!("{name:<6} {n:>5} {pass:<9}");
                for &p in providers {
                    let (med, best) = time(quick, Duration::from_millis(400), || {
                        if pass == "forward" {
                            conv_forward_with(p, &g, &x, &w, &b, &mut y, &mut work);
                        } else {
                            conv_backward_input_with(p, &g, &w, &gy, &mut gx, &mut work);
                            conv_backward_weight_with(p, &g, &x, &gy, &mut gw, &mut gb, &mut work);
                        }
                        black_box((&y, &gx, &gw));
                    });
                    if !quick {
                        print!(" {:>8.1} [{:>7.1}]", flops / med / 1e9, flops / best / 1e9);
                    }
                }
                println!();
            }
        }
    }
}

/// The multiplies the layers make, `(what, m, n, k, A transposed, B transposed)`.
const PRODUCTS: [(&str, usize, usize, usize, bool, bool); 9] = [
    ("conv1 W.col", 32, 864, 75, false, false),
    ("conv2 W.col", 32, 80, 800, false, false),
    ("conv2 Wt.gy", 800, 80, 32, true, false),
    ("conv2 gy.colT", 32, 800, 80, false, true),
    ("conv1 gy.colT", 32, 75, 864, false, true),
    ("fc1 x.WT", 64, 64, 1024, false, true),
    ("fc1 gy.W", 64, 1024, 64, false, false),
    ("fc1 gyT.x", 64, 1024, 64, true, false),
    ("square 512", 512, 512, 512, false, false),
];

fn bench_gemm(quick: bool, providers: &[&'static dyn Gemm]) {
    println!("\nmatrix products (single thread; GFLOP/s of the median, best in brackets)");
    print!("{:<14} {:>15}", "product", "m x n x k");
    for p in providers {
        print!(" {:>18}", p.name());
    }
    println!();
    for (what, m, n, k, ta, tb) in PRODUCTS {
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let av = if ta {
            MatRef::transposed(&a, m)
        } else {
            MatRef::row_major(&a, k)
        };
        let bv = if tb {
            MatRef::transposed(&b, k)
        } else {
            MatRef::row_major(&b, n)
        };
        let mut c = vec![0.0; m * n];
        print!("{what:<14} {:>15}", format!("{m}x{n}x{k}"));
        for &p in providers {
            let (med, best) = time(quick, Duration::from_millis(300), || {
                p.gemm(m, n, k, av, bv, &mut c, n, true);
                black_box(&c);
            });
            if !quick {
                let flops = 2.0 * (m * n * k) as f64;
                print!(" {:>8.1} [{:>7.1}]", flops / med / 1e9, flops / best / 1e9);
            }
        }
        println!();
    }
}

fn bench_step(quick: bool, providers: &[&'static dyn Gemm]) {
    println!("\ntutorial-cnn (single thread; medians, best in brackets)");
    println!(
        "{:<10} {:>22} {:>22} {:>22}",
        "kernel", "train img/s (b64)", "infer img/s (b64)", "latency ms (b1)"
    );
    let model = Model::from_zoo("tutorial-cnn", 0).expect("tutorial-cnn is in the zoo");
    let batch = 64;
    let images = values(batch * model.input.numel(), 5);
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let train_plan = model.plan(batch, Mode::Training).expect("plans");
    let infer_plan = model.plan(batch, Mode::Inference).expect("plans");
    let one_plan = model.plan(1, Mode::Inference).expect("plans");
    let budget = Duration::from_secs(3);
    for &p in providers {
        let mut params = model.params.clone();
        let mut state = model.state.clone();
        let mut grads = vec![0.0; train_plan.param_len()];
        let mut arena = vec![0.0; train_plan.arena_len()];
        let mut net = Network::new(&train_plan, &mut params, &mut grads, &mut state, &mut arena).expect("buffers");
        net.set_gemm(p);
        // A small learning rate keeps the weights near their initial values over many steps.
        let mut sgd = Sgd::new(1e-4).momentum(0.9);
        let mut momentum = vec![0.0; sgd.state_len(train_plan.param_len())];
        let loss = CrossEntropyLoss::new();
        let (train_med, train_best) = time(quick, budget, || {
            net.zero_grad();
            net.forward(&images).expect("forward");
            net.backward(&loss, &labels).expect("backward");
            net.step(&mut sgd, &mut momentum).expect("step");
        });

        let mut arena = vec![0.0; infer_plan.arena_len()];
        let mut net = Network::with_weights(&infer_plan, &model.params, &model.state, &mut arena).expect("buffers");
        net.set_gemm(p);
        let (inf_med, inf_best) = time(quick, budget, || {
            black_box(net.forward(&images).expect("forward"));
        });

        let mut arena = vec![0.0; one_plan.arena_len()];
        let mut net = Network::with_weights(&one_plan, &model.params, &model.state, &mut arena).expect("buffers");
        net.set_gemm(p);
        let one = &images[..model.input.numel()];
        let (lat_med, lat_best) = time(quick, budget, || {
            black_box(net.forward(one).expect("forward"));
        });
        if !quick {
            let b = batch as f64;
            println!(
                "{:<10} {:>12.0} [{:>7.0}] {:>12.0} [{:>7.0}] {:>12.3} [{:>7.3}]",
                p.name(),
                b / train_med,
                b / train_best,
                b / inf_med,
                b / inf_best,
                lat_med * 1e3,
                lat_best * 1e3
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test` runs this once per case as a smoke test.
    let quick = !args.iter().any(|a| a == "--bench");
    let parts = ["gemm", "conv", "step"];
    let only = |what: &str| !args.iter().any(|a| parts.contains(&a.as_str())) || args.iter().any(|a| a == what);
    // `TORCHLET_KERNEL=avx2` (etc.) benchmarks that provider alone.
    let providers = if std::env::var_os("TORCHLET_KERNEL").is_some() {
        vec![kernels::best()]
    } else {
        // The compiler-vectorised `packed` kernel is the aarch64 path; on x86-64 it is only a
        // correctness reference (time it with `TORCHLET_KERNEL=packed`).
        let skip = if cfg!(target_arch = "aarch64") { "" } else { "packed" };
        kernels::available().into_iter().filter(|k| k.name() != skip).collect()
    };
    println!("kernel chosen by best(): {}", kernels::describe());
    if only("gemm") {
        bench_gemm(quick, &providers);
    }
    if only("conv") {
        bench_conv(quick, &providers);
    }
    if only("step") {
        bench_step(quick, &providers);
    }
}
