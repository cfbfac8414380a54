//! Convolution throughput on the tutorial CIFAR-10 network's three convolutions, single thread.
//!
//! `Conv2d(3, 32, 5, padding=2)` at 32×32, `Conv2d(32, 32, 5, padding=2)` at 16×16 and
//! `Conv2d(32, 64, 5, padding=2)` at 8×8, at batch 64 (training) and batch 1 (inference):
//! forward, backward (input and weight gradients), and for conv1 the weight gradient alone
//! (the network never needs the gradient of its input image). Criterion's throughput is in
//! floating-point operations (2 per multiply-add), so its `elem/s` read as FLOP/s; a summary
//! table in GFLOP/s is printed at the end.
//!
//! Run: `cargo bench -p torchlet --bench conv`. The default `x86_64` target only has SSE2;
//! `RUSTFLAGS="-C target-cpu=native"` lets the compiler use AVX2 (about twice as fast), and
//! adding `-C llvm-args=-fp-contract=fast` lets it fuse multiply-adds into FMA (another ~10%).
//! `cargo bench -p torchlet --bench conv -- none` skips criterion and prints only the summary.
//! Compare with numpy's single-thread sgemm: `python3 tools/numpy_sgemm_peak.py`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use torchlet::ops::conv::{conv_backward_input, conv_backward_weight, conv_forward, conv_workspace_len};
use torchlet::ops::geom::{ConvGeom, PaddingMode};

/// One of the network's convolutions: `(name, C_in, C_out, H = W)`, kernel 5, padding 2.
const CONVS: [(&str, usize, usize, usize); 3] = [("conv1", 3, 32, 32), ("conv2", 32, 32, 16), ("conv3", 32, 64, 8)];
const BATCHES: [usize; 2] = [64, 1];

fn geom(c_in: usize, c_out: usize, hw: usize, n: usize) -> ConvGeom {
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

/// Multiply-adds of one forward pass (and of each of the two backward products).
fn macs(g: &ConvGeom) -> u64 {
    (g.n * g.c_out * g.out_spatial() * (g.c_in / g.groups) * g.kernel_volume()) as u64
}

/// Which pass a benchmark runs.
#[derive(Clone, Copy)]
enum Pass {
    Forward,
    Backward,
    BackwardWeight,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::Backward => "backward",
            Pass::BackwardWeight => "backward_weight",
        }
    }
    fn flops(self, g: &ConvGeom) -> u64 {
        match self {
            Pass::Forward | Pass::BackwardWeight => 2 * macs(g),
            Pass::Backward => 4 * macs(g),
        }
    }
}

/// Buffers of one convolution, with deterministic contents.
struct Tensors {
    g: ConvGeom,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    y: Vec<f32>,
    gx: Vec<f32>,
    gw: Vec<f32>,
    gb: Vec<f32>,
    work: Vec<f32>,
}

impl Tensors {
    fn new(g: ConvGeom) -> Self {
        let v = |n: usize, s: usize| {
            (0..n)
                .map(|i| ((i * 7919 + s) % 1000) as f32 / 1000.0 - 0.5)
                .collect::<Vec<_>>()
        };
        let (x_len, y_len) = (g.n * g.c_in * g.in_spatial(), g.n * g.c_out * g.out_spatial());
        Tensors {
            g,
            x: v(x_len, 1),
            w: v(g.weight_len(), 2),
            b: v(g.c_out, 3),
            y: v(y_len, 4),
            gx: vec![0.0; x_len],
            gw: vec![0.0; g.weight_len()],
            gb: vec![0.0; g.c_out],
            work: vec![0.0; conv_workspace_len(&g)],
        }
    }

    fn run(&mut self, pass: Pass) {
        let t = self;
        match pass {
            Pass::Forward => conv_forward(&t.g, &t.x, &t.w, &t.b, &mut t.y, &mut t.work),
            Pass::Backward => {
                // `y` stands in for the upstream gradient.
                conv_backward_input(&t.g, &t.w, &t.y, &mut t.gx, &mut t.work);
                conv_backward_weight(&t.g, &t.x, &t.y, &mut t.gw, &mut t.gb, &mut t.work);
            }
            Pass::BackwardWeight => conv_backward_weight(&t.g, &t.x, &t.y, &mut t.gw, &mut t.gb, &mut t.work),
        }
        black_box(&mut t.y);
        black_box(&mut t.gx);
        black_box(&mut t.gw);
    }
}

/// Every benchmark: (conv name, batch, pass, geometry).
fn cases() -> Vec<(&'static str, usize, Pass, ConvGeom)> {
    let mut out = Vec::new();
    for &n in &BATCHES {
        for &(name, c_in, c_out, hw) in &CONVS {
            let g = geom(c_in, c_out, hw, n);
            out.push((name, n, Pass::Forward, g));
            out.push((name, n, Pass::Backward, g));
            if name == "conv1" {
                out.push((name, n, Pass::BackwardWeight, g));
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    for (name, n, pass, g) in cases() {
        let mut group = c.benchmark_group(format!("{name}/batch{n}"));
        group.throughput(Throughput::Elements(pass.flops(&g)));
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        if n > 1 {
            group.sample_size(10).sampling_mode(SamplingMode::Flat);
        }
        let mut t = Tensors::new(g);
        group.bench_function(BenchmarkId::from_parameter(pass.name()), |bch| bch.iter(|| t.run(pass)));
        group.finish();
    }
}

/// Times each case for about half a second and prints GFLOP/s of the median and of the best
/// run (the best is the steadier figure on a shared machine).
fn summary() {
    println!("\nSummary (single thread; GFLOP/s = 2 x multiply-adds / time):");
    println!(
        "{:<8} {:>6} {:<16} {:>10} {:>10} {:>10} {:>10}",
        "conv", "batch", "pass", "median ms", "best ms", "GFLOP/s", "best"
    );
    for (name, n, pass, g) in cases() {
        let mut t = Tensors::new(g);
        t.run(pass);
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < 5 || (start.elapsed() < Duration::from_millis(500) && times.len() < 1000) {
            let t0 = Instant::now();
            t.run(pass);
            times.push(t0.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let (best, median) = (times[0], times[times.len() / 2]);
        let gflops = |secs: f64| pass.flops(&g) as f64 / secs / 1e9;
        println!(
            "{name:<8} {n:>6} {:<16} {:>10.3} {:>10.3} {:>10.2} {:>10.2}",
            pass.name(),
            median * 1e3,
            best * 1e3,
            gflops(median),
            gflops(best)
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // Only under `cargo bench` (which passes `--bench`), not when `cargo test` smoke-runs benches.
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
}
