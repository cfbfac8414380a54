//! Fused inference plans (`torchlet::plan::fuse`): `Conv -> [activation] -> pool` computed row
//! by row gives the unfused path's output (a training plan run in eval mode) to rounding, on
//! random geometries and on the zoo, in far less arena; chains whose parts have other readers
//! are left alone.

use proptest::prelude::*;
use torchlet::layer::*;
use torchlet::plan::{Fuse, Mode};
use torchlet::{Network, Plan, Shape};
use torchlet_tests::{assert_close, check_close, rand_vec};

/// The eval-mode output of `layers` on `x` through an inference plan (fused) and through a
/// training plan (never fused), with the same weights.
fn both<'l>(
    layers: &'l [Layer<'l>],
    input: Shape,
    batch: usize,
    x: &[f32],
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Plan<'l, 16>) {
    let fused = Plan::<16>::try_new(layers, input, batch, Mode::Inference).unwrap();
    let plain = Plan::<16>::try_new(layers, input, batch, Mode::Training).unwrap();
    let mut params = vec![0.0; plain.param_len()];
    let mut state = vec![0.0; plain.state_len()];
    plain.init_state(&mut state).unwrap();
    let mut grads = vec![0.0; plain.param_len()];
    let mut arena = vec![0.0; plain.arena_len()];
    let mut net = Network::new(&plain, &mut params, &mut grads, &mut state, &mut arena).unwrap();
    net.init_params(seed).unwrap();
    // Every parameter moved off its initial value (BatchNorm's weight 1 and bias 0 would hide
    // a wrong scale or shift).
    for (p, r) in net
        .params_mut()
        .unwrap()
        .iter_mut()
        .zip(rand_vec(plain.param_len(), seed ^ 7))
    {
        *p += 0.25 * r;
    }
    // One training-mode pass gives BatchNorm running statistics other than (0, 1) (a batch
    // too small for batch statistics keeps the initial ones).
    if net.train().is_ok() {
        let _ = net.forward(x);
    }
    net.eval();
    let want = net.forward(x).unwrap().to_vec();
    let mut arena = vec![f32::NAN; fused.arena_len()];
    let mut net = Network::with_weights(&fused, &params, &state, &mut arena).unwrap();
    let got = net.forward(x).unwrap().to_vec();
    (got, want, fused)
}

#[test]
fn the_tutorial_cnn_runs_fused_in_under_64_kib() {
    for (layers, input, bound) in [
        (&torchlet::zoo::TUTORIAL_CNN[..], Shape::chw(3, 32, 32), 65_536),
        (&torchlet::zoo::DIGITS_CNN[..], Shape::chw(1, 8, 8), 12_288),
    ] {
        let x = rand_vec(2 * input.numel(), 5);
        let (got, want, plan) = both(layers, input, 2, &x, 3);
        assert_close("fused vs unfused", &got, &want, 1e-5, 1e-5);
        let one = Plan::<16>::try_new(layers, input, 1, Mode::Inference).unwrap();
        assert!(one.arena_bytes() <= bound, "{} bytes", one.arena_bytes());
        assert!(plan.nodes().iter().any(|n| matches!(n.fuse, Fuse::ConvPool { .. })));
    }
}

#[test]
fn the_cortex_m4_kernel_gives_the_portable_output_on_the_zoo() {
    // `kernels::Blocked` is what `Portable` runs on hard-float Arm (the firmware); here it runs
    // the fused and the unfused plans of the two networks the firmware is measured on.
    for (layers, input) in [
        (&torchlet::zoo::TUTORIAL_CNN[..], Shape::chw(3, 32, 32)),
        (&torchlet::zoo::DIGITS_CNN[..], Shape::chw(1, 8, 8)),
    ] {
        let x = rand_vec(2 * input.numel(), 11);
        let plain = Plan::<16>::try_new(layers, input, 2, Mode::Training).unwrap();
        let mut params = vec![0.0; plain.param_len()];
        let mut state = vec![0.0; plain.state_len()];
        plain.init_state(&mut state).unwrap();
        let mut grads = vec![0.0; plain.param_len()];
        let mut arena = vec![0.0; plain.arena_len()];
        let mut net = Network::new(&plain, &mut params, &mut grads, &mut state, &mut arena).unwrap();
        net.init_params(7).unwrap();
        net.eval();
        let want = net.forward(&x).unwrap().to_vec();
        net.set_gemm(&torchlet::kernels::BLOCKED);
        let got = net.forward(&x).unwrap().to_vec();
        assert_close("unfused: blocked vs portable", &got, &want, 1e-5, 1e-5);
        let fused = Plan::<16>::try_new(layers, input, 2, Mode::Inference).unwrap();
        let mut arena = vec![0.0; fused.arena_len()];
        let mut net = Network::with_weights(&fused, &params, &state, &mut arena).unwrap();
        let want = net.forward(&x).unwrap().to_vec();
        net.set_gemm(&torchlet::kernels::BLOCKED);
        let got = net.forward(&x).unwrap().to_vec();
        assert_close("fused: blocked vs portable", &got, &want, 1e-5, 1e-5);
    }
}

#[test]
fn chains_with_other_readers_are_not_fused() {
    // The convolution's output is also the residual's shortcut input: not fused.
    static BODY: [Layer; 2] = [conv2d(4, 4, 3).padding(1), relu()];
    static SHORTCUT: [Layer; 0] = [];
    static LAYERS: [Layer; 4] = [
        conv2d(2, 4, 3).padding(1),
        residual(&BODY, &SHORTCUT),
        max_pool2d(2),
        flatten(),
    ];
    let x = rand_vec(2 * 2 * 8 * 8, 1);
    let (got, want, plan) = both(&LAYERS, Shape::chw(2, 8, 8), 2, &x, 9);
    assert_close("residual", &got, &want, 1e-5, 1e-5);
    // The pool reads the Add: nothing to fuse into it (the body's ReLU runs in place on its
    // convolution's output). Max-pool indices read by an unpool: kept.
    assert!(plan
        .nodes()
        .iter()
        .all(|n| matches!(n.fuse, Fuse::None | Fuse::InPlace)));
    assert_eq!(plan.nodes().iter().filter(|n| n.fuse == Fuse::InPlace).count(), 1);
    static UNPOOL: [Layer; 3] = [
        conv2d(1, 2, 3).padding(1),
        max_pool2d(2).return_indices(true),
        max_unpool2d(2),
    ];
    let x = rand_vec(8 * 8, 2);
    let (got, want, plan) = both(&UNPOOL, Shape::chw(1, 8, 8), 1, &x, 4);
    assert_close("unpool", &got, &want, 1e-5, 1e-5);
    assert!(plan.nodes().iter().all(|n| n.fuse == Fuse::None));
}

/// A random `Conv2d -> [BatchNorm2d] -> [activation] -> pool` and its input.
fn chain() -> impl Strategy<Value = (Vec<Layer<'static>>, Shape, usize, u64)> {
    (
        (1usize..4, 1usize..4, 1usize..3, 3usize..11, 3usize..11),
        (1usize..4, 1usize..3, 0usize..2, 1usize..3, any::<bool>()),
        (0usize..4, any::<bool>(), 1usize..4, 1usize..3),
        (1usize..3, any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |((cin, cout, groups, h, w), (k, s, pad, dil, bias), (act, max, pk, ps), (n, seed, norm))| {
                let conv = conv2d(cin * groups, cout * groups, k)
                    .stride(s)
                    .padding(pad.min(k / 2))
                    .dilation(dil)
                    .groups(groups)
                    .bias(bias);
                let act = match act {
                    0 => None,
                    1 => Some(relu()),
                    2 => Some(relu6()),
                    _ => Some(leaky_relu(0.1)),
                };
                let pool = if max {
                    max_pool2d(pk).stride(ps)
                } else {
                    avg_pool2d(pk).stride(ps)
                };
                let mut layers = vec![conv];
                if norm {
                    layers.push(batch_norm2d(cout * groups));
                }
                layers.extend(act);
                layers.push(pool);
                (layers, Shape::chw(cin * groups, h, w), n, seed)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn fused_equals_unfused_on_random_chains((layers, input, n, seed) in chain()) {
        let layers = &layers[..];
        // Geometries that do not plan (a kernel larger than the padded input) are skipped.
        prop_assume!(Plan::<16>::try_new(layers, input, n, Mode::Training).is_ok());
        let x = rand_vec(n * input.numel(), seed);
        let (got, want, plan) = both(layers, input, n, &x, seed);
        prop_assert!(plan.nodes().iter().any(|node| matches!(node.fuse, Fuse::ConvPool { .. })), "{layers:?}");
        check_close("fused vs unfused", &got, &want, 1e-5, 1e-5).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn batch_norm_and_activations_run_in_place() {
    // Conv -> BN -> ReLU without a pool: one buffer for the three. Conv -> BN -> ReLU -> pool:
    // all in the pool's pass. The last node in place still gives the output.
    static LAYERS: [Layer; 9] = [
        conv2d(2, 4, 3).padding(1),
        batch_norm2d(4),
        relu(),
        conv2d(4, 4, 3).padding(1),
        batch_norm2d(4),
        relu6(),
        max_pool2d(2),
        flatten(),
        leaky_relu(0.2),
    ];
    let input = Shape::chw(2, 8, 8);
    let x = rand_vec(3 * input.numel(), 11);
    let (got, want, plan) = both(&LAYERS, input, 3, &x, 12);
    assert_eq!(
        got, want,
        "in place and fused BatchNorm give the unfused values exactly"
    );
    let kinds: Vec<Fuse> = plan.nodes().iter().map(|n| n.fuse).collect();
    assert_eq!(kinds[1], Fuse::InPlace);
    assert_eq!(kinds[2], Fuse::InPlace);
    assert!(matches!(kinds[6], Fuse::ConvPool { conv: 3, bn: 4, .. }), "{kinds:?}");
    assert_eq!(kinds[8], Fuse::InPlace);
    // The BN of a training plan's statistics (track_running_stats = false) uses batch
    // statistics even in eval mode: neither fused nor in place.
    static BATCH_STATS: [Layer; 3] = [
        conv2d(2, 4, 3),
        batch_norm2d(4).track_running_stats(false),
        max_pool2d(2),
    ];
    let plan = Plan::<16>::try_new(&BATCH_STATS, input, 2, Mode::Inference).unwrap();
    assert!(plan.nodes().iter().all(|n| n.fuse == Fuse::None), "{:?}", plan.nodes());
}

#[test]
fn vgg_and_resnet_plans_fuse_their_batch_norms() {
    for (name, layers) in [
        ("vgg11", &torchlet::zoo::VGG11[..]),
        ("resnet18", &torchlet::zoo::RESNET18[..]),
    ] {
        let one = Plan::<128>::try_new(layers, Shape::chw(3, 32, 32), 1, Mode::Inference).unwrap();
        let in_place = one.nodes().iter().filter(|n| n.fuse == Fuse::InPlace).count();
        assert!(in_place > 0, "{name}: no node in place");
        let train = Plan::<128>::try_new(layers, Shape::chw(3, 32, 32), 1, Mode::Training).unwrap();
        assert!(
            one.arena_bytes() * 3 < train.arena_bytes(),
            "{name}: {} vs {}",
            one.arena_bytes(),
            train.arena_bytes()
        );
    }
}
