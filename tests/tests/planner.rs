//! Planner properties: shapes and parameter counts, arena invariants (no two live buffers
//! overlap; the arena is at least the peak live size), `const` plans equal run-time plans, and
//! invalid models are errors that say what was expected and found.

use proptest::prelude::*;
use torchlet::layer::*;
use torchlet::plan::{node_count, Mode, Slot};
use torchlet::{Error, Plan, Shape};

const TUTORIAL: [Layer; 9] = [
    conv2d(3, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 64, 5).padding(2),
    max_pool2d(2),
    flatten(),
    linear(1024, 64),
    linear(64, 10),
];
const TUTORIAL_TRAIN: Plan<9> = Plan::training(&TUTORIAL, Shape::chw(3, 32, 32), 64);
const TUTORIAL_INFER: Plan<9> = Plan::inference(&TUTORIAL, Shape::chw(3, 32, 32), 1);

fn check_arena<const C: usize>(p: &Plan<C>) {
    let slots: Vec<Slot> = p.slots().filter(|s| s.len > 0).collect();
    for (i, a) in slots.iter().enumerate() {
        assert!(
            a.offset + a.len <= p.arena_len(),
            "slot {a:?} exceeds the arena {}",
            p.arena_len()
        );
        assert!(a.first <= a.last, "slot {a:?} has an empty lifetime");
        for b in &slots[i + 1..] {
            assert!(!a.conflicts(b), "live slots overlap: {a:?} and {b:?}");
        }
    }
    assert!(
        p.arena_len() >= p.peak_live_len(),
        "arena {} < peak live {}",
        p.arena_len(),
        p.peak_live_len()
    );
}

#[test]
fn tutorial_network_shapes_and_parameters() {
    assert_eq!(TUTORIAL_TRAIN.param_len(), 145_578);
    let shapes: Vec<String> = TUTORIAL_TRAIN.nodes().iter().map(|n| n.out_shape.to_string()).collect();
    assert_eq!(
        shapes,
        [
            "[32, 32, 32]",
            "[32, 16, 16]",
            "[32, 16, 16]",
            "[32, 8, 8]",
            "[64, 8, 8]",
            "[64, 4, 4]",
            "[1024]",
            "[64]",
            "[10]"
        ]
    );
    let counts: Vec<usize> = TUTORIAL_TRAIN.nodes().iter().map(|n| n.param_len()).collect();
    assert_eq!(counts, [2432, 0, 25632, 0, 51264, 0, 0, 65600, 650]);
    check_arena(&TUTORIAL_TRAIN);
    check_arena(&TUTORIAL_INFER);
    // Training keeps what backward needs: at least every conv/linear input and the pool indices.
    let kept: usize = 64 * (3 * 32 * 32 + 32 * 16 * 16 + 32 * 8 * 8 + 1024 + 64);
    assert!(TUTORIAL_TRAIN.arena_len() >= kept);
    // Inference frees as it goes: far below the sum of all activations plus scratch.
    let all: usize = TUTORIAL_INFER.slots().map(|s| s.len).sum();
    assert!(
        TUTORIAL_INFER.arena_len() < all,
        "no reuse: {} vs {all}",
        TUTORIAL_INFER.arena_len()
    );
}

#[test]
fn const_plan_equals_runtime_plan() {
    let rt = Plan::<9>::try_new(&TUTORIAL, Shape::chw(3, 32, 32), 64, Mode::Training).unwrap();
    assert_eq!(rt, TUTORIAL_TRAIN);
    let rt = Plan::<9>::try_new(&TUTORIAL, Shape::chw(3, 32, 32), 1, Mode::Inference).unwrap();
    assert_eq!(rt, TUTORIAL_INFER);
}

#[test]
fn node_count_expands_containers() {
    const BLOCK: [Layer; 5] = [
        conv2d(8, 8, 3).padding(1),
        batch_norm2d(8),
        relu(),
        conv2d(8, 8, 3).padding(1),
        batch_norm2d(8),
    ];
    const NET: [Layer; 3] = [
        sequential(&[conv2d(3, 8, 3).padding(1), relu()]),
        residual(&BLOCK, &[]),
        relu(),
    ];
    assert_eq!(node_count(&NET), 2 + 5 + 1 + 1);
    const P: Plan<9> = Plan::training(&NET, Shape::chw(3, 8, 8), 2);
    check_arena(&P);
    assert_eq!(P.nodes()[7].op_name, "Add");
}

#[test]
fn errors_name_the_layer_and_both_values() {
    static BAD: [Layer; 3] = [conv2d(3, 8, 3), relu(), conv2d(16, 4, 3)];
    let e = Plan::<3>::try_new(&BAD, Shape::chw(3, 16, 16), 1, Mode::Inference).unwrap_err();
    assert_eq!(
        e,
        Error::Shape {
            layer: 2,
            op: "Conv2d",
            what: "in_channels differs from the channels of its input",
            expected: 16,
            found: 8
        }
    );
    assert!(e.to_string().contains("layer 2 (Conv2d)"), "{e}");
    static LIN: [Layer; 2] = [flatten(), linear(100, 10)];
    let e = Plan::<2>::try_new(&LIN, Shape::chw(1, 8, 8), 1, Mode::Inference).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shape {
                layer: 1,
                expected: 100,
                found: 64,
                ..
            }
        ),
        "{e:?}"
    );
    static MIS: [Layer; 1] = [relu().stride(2)];
    let e = Plan::<1>::try_new(&MIS, Shape::features(4), 1, Mode::Inference).unwrap_err();
    assert!(matches!(e, Error::Structure { .. }), "{e:?}");
    let e = Plan::<1>::try_new(&TUTORIAL, Shape::chw(3, 32, 32), 1, Mode::Inference).unwrap_err();
    assert_eq!(e, Error::Capacity { capacity: 1, needed: 9 });
    static UNPOOL: [Layer; 1] = [max_unpool2d(2)];
    assert!(matches!(
        Plan::<1>::try_new(&UNPOOL, Shape::chw(1, 4, 4), 1, Mode::Inference),
        Err(Error::Structure { .. })
    ));
    static SMALL: [Layer; 1] = [conv2d(1, 1, 5)];
    assert!(Plan::<1>::try_new(&SMALL, Shape::chw(1, 3, 3), 1, Mode::Inference).is_err());
}

#[test]
fn lazy_linear_infers_in_features() {
    static NET: [Layer; 3] = [flatten(), lazy_linear(7), linear(7, 2)];
    let p = Plan::<3>::try_new(&NET, Shape::chw(2, 3, 5), 4, Mode::Training).unwrap();
    assert_eq!(p.nodes()[1].weight_len, 30 * 7);
    assert_eq!(p.param_len(), 30 * 7 + 7 + 7 * 2 + 2);
}

/// A random valid chain of layers over `[C, H, W]`, built at run time (the residual bodies
/// are leaked: a strategy's values own no borrowed storage).
fn arb_model() -> impl Strategy<Value = (Vec<Layer<'static>>, Shape, usize)> {
    let layer = prop_oneof![
        (1usize..6, 1usize..4).prop_map(|(c, k)| (0u8, c, k)),
        Just((1u8, 0, 0)),
        Just((2u8, 0, 0)),
        Just((3u8, 0, 0)),
        (1usize..4).prop_map(|c| (4u8, c, 0)),
    ];
    (prop::collection::vec(layer, 1..8), 1usize..4, 4usize..10, 1usize..5).prop_map(|(spec, c0, hw, batch)| {
        let mut layers = Vec::new();
        let (mut c, mut h) = (c0, hw);
        for (kind, a, k) in spec {
            match kind {
                0 => {
                    let k = k.min(h);
                    layers.push(conv2d(c, a, k).padding(k / 2));
                    h = h + 2 * (k / 2) - k + 1;
                    c = a;
                }
                1 => layers.push(relu()),
                2 if h >= 2 => {
                    layers.push(max_pool2d(2));
                    h /= 2;
                }
                3 => layers.push(batch_norm2d(c)),
                4 => {
                    let body = Box::leak(vec![conv2d(c, c, 3).padding(1), relu()].into_boxed_slice());
                    layers.push(residual(body, &[]));
                }
                _ => layers.push(identity()),
            }
        }
        layers.push(flatten());
        layers.push(lazy_linear(3));
        (layers, Shape::chw(c0, hw, hw), batch)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_models_have_sound_arenas((layers, input, batch) in arb_model()) {
        for mode in [Mode::Training, Mode::Inference] {
            let p = Plan::<32>::try_new(&layers, input, batch, mode).unwrap();
            check_arena(&p);
            // Every node's buffers are in the arena and sized for the batch, except the
            // outputs that a fused inference pass never stores.
            for n in p.nodes() {
                let stored = if n.fuse == torchlet::plan::Fuse::Into { 0 } else { batch * n.out_shape.numel() };
                prop_assert_eq!(n.out.len, stored);
            }
        }
    }
}

#[test]
fn plans_borrow_models_built_at_run_time() {
    // Containers, names and the model itself in local storage: the plan borrows them and is
    // dropped before them, with nothing leaked or `'static`.
    let names: Vec<String> = (0..2).map(|i| format!("block{i}")).collect();
    let body = vec![conv2d(2, 2, 3).padding(1), relu()];
    let shortcut = vec![conv2d(2, 2, 1).named("down")];
    let model = vec![
        residual(&body, &shortcut).named(&names[0]),
        sequential(&body).named(&names[1]),
        flatten(),
        linear(2 * 4 * 4, 3),
    ];
    let plan = Plan::<8>::try_new(&model, Shape::chw(2, 4, 4), 2, Mode::Training).unwrap();
    assert_eq!(plan.layers()[1].name, "block1");
    assert_eq!(plan.len(), 8);
    static SAME: [Layer; 4] = [
        residual(&[conv2d(2, 2, 3).padding(1), relu()], &[conv2d(2, 2, 1).named("down")]).named("block0"),
        sequential(&[conv2d(2, 2, 3).padding(1), relu()]).named("block1"),
        flatten(),
        linear(2 * 4 * 4, 3),
    ];
    let same = Plan::<8>::try_new(&SAME, Shape::chw(2, 4, 4), 2, Mode::Training).unwrap();
    assert_eq!(plan.layers(), same.layers());
    assert_eq!(plan.nodes(), same.nodes());
    assert_eq!(plan.arena_len(), same.arena_len());
}

#[test]
fn empty_input_shapes_are_errors_not_panics() {
    static NET: [Layer; 2] = [flatten(), lazy_linear(3)];
    for input in [Shape::features(0), Shape::chw(3, 0, 4), Shape::cl(0, 5)] {
        let e = Plan::<2>::try_new(&NET, input, 1, Mode::Training).unwrap_err();
        assert!(matches!(e, Error::Shape { op: "input", .. }), "{e:?}");
    }
}

#[test]
fn absurd_batches_are_too_large_never_wrapped() {
    static LAYERS: [Layer; 3] = [conv2d(3, 8, 3), flatten(), linear(8 * 30 * 30, 10)];
    for batch in [1usize << 50, 1_000_000_000_000_000, usize::MAX] {
        for mode in [Mode::Inference, Mode::Training] {
            let e = Plan::<3>::try_new(&LAYERS, Shape::chw(3, 32, 32), batch, mode).unwrap_err();
            assert_eq!(
                e,
                Error::TooLarge {
                    batch,
                    max: torchlet::plan::MAX_BUFFER_LEN
                },
                "{batch}"
            );
        }
    }
    // A large batch that fits is still planned.
    let ok = Plan::<3>::try_new(&LAYERS, Shape::chw(3, 32, 32), 1 << 20, Mode::Training).unwrap();
    assert_eq!(ok.batch(), 1 << 20);
}

#[test]
fn multiply_accumulates_follow_the_profilers_convention() {
    // The course's CIFAR-10 network, counted by hand: conv 3->32 5x5 on 32x32, conv 32->32 on
    // 16x16, conv 32->64 on 8x8, fc 1024->64, fc 64->10.
    let plan = Plan::<16>::try_new(&torchlet::zoo::TUTORIAL_CNN, Shape::chw(3, 32, 32), 1, Mode::Inference).unwrap();
    let by_hand = 32 * 3 * 25 * 32 * 32 + 32 * 32 * 25 * 16 * 16 + 64 * 32 * 25 * 8 * 8 + 1024 * 64 + 64 * 10;
    assert_eq!(plan.macs(), by_hand as u64);
    // Grouped and transposed convolutions, bilinear; everything else counts 0.
    static LAYERS: [Layer; 4] = [
        conv2d(4, 8, 3).groups(2).padding(1),
        conv_transpose2d(8, 2, 2).stride(2),
        relu(),
        flatten(),
    ];
    let plan = Plan::<4>::try_new(&LAYERS, Shape::chw(4, 5, 5), 1, Mode::Inference).unwrap();
    let macs: Vec<u64> = plan.nodes().iter().map(|n| n.macs()).collect();
    assert_eq!(macs, [8 * 2 * 9 * 25, 8 * 2 * 4 * 25, 0, 0]);
}

#[test]
fn absurd_layers_are_too_large_never_wrapped() {
    // 64 · 2^58 weights overflow a 64-bit count; 64 · 2^56 only exceed MAX_BUFFER_LEN.
    static WRAPS: [Layer; 2] = [flatten(), linear(64, 1 << 58)];
    static HUGE: [Layer; 2] = [flatten(), linear(64, 1 << 56)];
    static BIAS_WRAPS: [Layer; 2] = [flatten(), linear(64, usize::MAX)];
    static CONV: [Layer; 1] = [conv2d(1, 1 << 62, 1)];
    static BILINEAR: [Layer; 1] = [bilinear(&[], &[], 64, 64, 1 << 52)];
    for (layers, input) in [
        (&WRAPS[..], Shape::chw(1, 8, 8)),
        (&HUGE[..], Shape::chw(1, 8, 8)),
        (&BIAS_WRAPS[..], Shape::chw(1, 8, 8)),
        (&CONV[..], Shape::chw(1, 8, 8)),
        (&BILINEAR[..], Shape::features(64)),
    ] {
        let layers: &'static [Layer] = layers;
        for mode in [Mode::Inference, Mode::Training] {
            let e = Plan::<4>::try_new(layers, input, 1, mode).unwrap_err();
            assert!(matches!(e, Error::TooLarge { batch: 1, .. }), "{e:?}");
        }
    }
}
