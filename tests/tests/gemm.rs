//! Matrix-multiply providers: every one this CPU runs (`torchlet_host::kernels::available()`:
//! AVX2 + FMA where present, the packed kernel, the portable one) against a naive `f64` loop
//! for random shapes (1 to 70, so below, at and across every tile edge), every stride layout of
//! `A` and `B` (row-major, transposed, gapped), overwrite and accumulate, and a padded `C`; the
//! layer shapes of the tutorial network; and a training step of that network on the fast
//! provider against the portable one.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::kernels::{Gemm, MatRef, Portable};
use torchlet::loss::CrossEntropyLoss;
use torchlet::{Mode, Network};
use torchlet_host::kernels;
use torchlet_host::model::Model;

/// Strides `(rs, cs)` of a `rows × cols` view in layout 0 (row-major), 1 (column-major, a
/// transpose), 2 (row-major with gaps) or 3 (column-major with gaps).
fn strides(rows: usize, cols: usize, layout: usize) -> (usize, usize) {
    match layout {
        0 => (cols, 1),
        1 => (1, rows),
        2 => (2 * cols + 1, 2),
        _ => (2, 2 * rows + 3),
    }
}

/// Floats a view needs: one past its last element.
fn extent(rows: usize, cols: usize, (rs, cs): (usize, usize)) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// Deterministic values in [-1, 1).
fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One multiply problem.
#[derive(Clone, Debug)]
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    la: usize,
    lb: usize,
    accumulate: bool,
    ldc_extra: usize,
    seed: u64,
}

/// Runs `provider` on `p` and compares every element of `C` (and its padding) with the naive
/// product in `f64`; the tolerance scales with `Σ_p |A[i, p]·B[p, j]|`.
fn check(provider: &dyn Gemm, p: &Problem) -> Result<(), String> {
    let (sa, sb) = (strides(p.m, p.k, p.la), strides(p.k, p.n, p.lb));
    let a = fill(extent(p.m, p.k, sa), p.seed);
    let b = fill(extent(p.k, p.n, sb), p.seed + 1);
    let ldc = p.n + p.ldc_extra;
    let c0 = fill(p.m * ldc, p.seed + 2);
    let mut c = c0.clone();
    let av = MatRef {
        data: &a,
        rs: sa.0,
        cs: sa.1,
    };
    let bv = MatRef {
        data: &b,
        rs: sb.0,
        cs: sb.1,
    };
    provider.gemm(p.m, p.n, p.k, av, bv, &mut c, ldc, p.accumulate);
    for i in 0..p.m {
        for j in 0..ldc {
            let idx = i * ldc + j;
            if j >= p.n {
                if c[idx] != c0[idx] {
                    return Err(format!("{}: {p:?}: padding C[{i},{j}] written", provider.name()));
                }
                continue;
            }
            let (mut want, mut scale) = (if p.accumulate { c0[idx] as f64 } else { 0.0 }, 1.0f64);
            for q in 0..p.k {
                let t = a[i * sa.0 + q * sa.1] as f64 * b[q * sb.0 + j * sb.1] as f64;
                want += t;
                scale += t.abs();
            }
            let err = (c[idx] as f64 - want).abs();
            // f32 rounding grows with about the square root of the depth.
            if err > 8e-7 * ((p.k + 1) as f64).sqrt() * scale {
                return Err(format!(
                    "{}: {p:?}: C[{i},{j}] = {} but the f64 product is {want}",
                    provider.name(),
                    c[idx]
                ));
            }
        }
    }
    Ok(())
}

fn problem() -> impl Strategy<Value = Problem> {
    (
        1usize..=70,
        1usize..=70,
        1usize..=70,
        0usize..4,
        0usize..4,
        any::<bool>(),
        0usize..3,
        any::<u64>(),
    )
        .prop_map(|(m, n, k, la, lb, accumulate, ldc_extra, seed)| Problem {
            m,
            n,
            k,
            la,
            lb,
            accumulate,
            ldc_extra,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_provider_matches_the_f64_product(p in problem()) {
        for provider in kernels::available() {
            check(provider, &p).map_err(TestCaseError::fail)?;
        }
    }
}

#[test]
fn providers_are_listed_and_the_chosen_one_is_described() {
    let names: Vec<&str> = kernels::available().iter().map(|k| k.name()).collect();
    assert!(names.contains(&"portable") && names.contains(&"packed"), "{names:?}");
    let best = kernels::best().name();
    assert!(names.contains(&best), "best() = {best} is not among {names:?}");
    assert!(kernels::describe().starts_with(best), "{}", kernels::describe());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert_eq!(names[0], "avx2+fma");
        assert!(kernels::by_name("avx2").is_ok());
    }
}

#[test]
fn unit_and_empty_dimensions() {
    for provider in kernels::available() {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 40, 1),
            (40, 1, 1),
            (1, 1, 300),
            (7, 1, 90),
            (1, 33, 64),
            (64, 64, 1),
        ] {
            for la in 0..4 {
                for lb in 0..4 {
                    for accumulate in [false, true] {
                        let p = Problem {
                            m,
                            n,
                            k,
                            la,
                            lb,
                            accumulate,
                            ldc_extra: 1,
                            seed: (m * 1000 + n * 10 + k + la + lb) as u64,
                        };
                        check(provider, &p).unwrap_or_else(|e| panic!("{e}"));
                    }
                }
            }
        }
        // k = 0: C is zeroed, or kept when accumulating; m or n = 0 writes nothing.
        let mut c = [5.0f32; 6];
        let empty = MatRef::row_major(&[], 0);
        provider.gemm(2, 3, 0, empty, empty, &mut c, 3, true);
        assert_eq!(c, [5.0; 6], "{}", provider.name());
        provider.gemm(2, 3, 0, empty, empty, &mut c, 3, false);
        assert_eq!(c, [0.0; 6], "{}", provider.name());
        let mut c = [5.0f32; 6];
        provider.gemm(0, 3, 4, empty, empty, &mut c, 3, false);
        provider.gemm(2, 0, 4, empty, empty, &mut c, 3, false);
        assert_eq!(c, [5.0; 6], "{}", provider.name());
    }
}

#[test]
fn tutorial_network_shapes_in_every_pass_layout() {
    // (m, n, k, layout of A, layout of B) as the layers call them: conv forward W·col,
    // conv input gradient Wᵀ·gy, conv weight gradient gy·colᵀ, linear x·Wᵀ, gy·W and gyᵀ·x.
    let shapes = [
        (32, 864, 75, 0, 0),
        (32, 160, 75, 0, 0),
        (32, 80, 800, 0, 0),
        (64, 64, 800, 0, 0),
        (75, 864, 32, 1, 0),
        (800, 80, 32, 1, 0),
        (800, 64, 64, 1, 0),
        (32, 75, 864, 0, 1),
        (32, 800, 80, 0, 1),
        (64, 800, 64, 0, 1),
        (64, 64, 1024, 0, 1),
        (64, 10, 64, 0, 1),
        (64, 1024, 64, 0, 0),
        (64, 1024, 64, 1, 0),
        (10, 64, 64, 1, 0),
    ];
    for provider in kernels::available() {
        for (s, &(m, n, k, la, lb)) in shapes.iter().enumerate() {
            for accumulate in [false, true] {
                let p = Problem {
                    m,
                    n,
                    k,
                    la,
                    lb,
                    accumulate,
                    ldc_extra: 0,
                    seed: s as u64,
                };
                check(provider, &p).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// Largest `|x − y| / (1 + |y|)` over two equal-length slices.
fn max_rel(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    x.iter()
        .zip(y)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f32::max)
}

#[test]
fn a_tutorial_cnn_step_on_each_provider_matches_the_portable_one() {
    let model = Model::from_zoo("tutorial-cnn", 3).expect("zoo model");
    let batch = 9;
    let images = fill(batch * model.input.numel(), 11);
    let labels: Vec<u32> = (0..batch as u32).map(|i| i * 7 % 10).collect();
    let plan = model.plan(batch, Mode::Training).expect("plan");
    let run = |gemm: &'static dyn Gemm| {
        let (mut params, mut state) = (model.params.clone(), model.state.clone());
        let mut grads = vec![0.0; plan.param_len()];
        let mut arena = vec![0.0; plan.arena_len()];
        let mut net = Network::new(&plan, &mut params, &mut grads, &mut state, &mut arena).expect("buffers");
        net.set_gemm(gemm);
        assert_eq!(net.gemm().name(), gemm.name());
        let logits = net.forward(&images).expect("forward").to_vec();
        let loss = net.backward(&CrossEntropyLoss::new(), &labels).expect("backward");
        (logits, loss, net.grads().to_vec())
    };
    static PORTABLE: Portable = Portable;
    let (logits0, loss0, grads0) = run(&PORTABLE);
    assert!(grads0.iter().any(|g| g.abs() > 1e-6), "the step computes gradients");
    for provider in kernels::available() {
        let (logits, loss, grads) = run(provider);
        let name = provider.name();
        assert!(max_rel(&logits, &logits0) < 1e-5, "{name}: logits differ");
        assert!((loss - loss0).abs() < 1e-5, "{name}: loss {loss} vs {loss0}");
        assert!(max_rel(&grads, &grads0) < 1e-4, "{name}: gradients differ");
    }
}
