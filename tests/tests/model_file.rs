//! Model files (`torchlet::model_file`): random models round-trip bit for bit; every
//! single-byte corruption and every truncation of a real file is an error naming the right
//! part; corrupted records with a repaired CRC never panic; the committed version-1 golden
//! file keeps loading (names, shapes, CRC, outputs) and an independent Python reader
//! (`tools/read_tlm.py`) reads it the same way.

use proptest::prelude::*;
use serde_json::json;
use torchlet::layer::*;
use torchlet::model_file::{self, part, FileError, ModelFile, ModelSpec, OptimizerRecord, Role, TrainState};
use torchlet::ops::geom::PaddingMode;
use torchlet::plan::Mode;
use torchlet::{Error, Network, Plan, Shape};
use torchlet_tests::{fixture_path, load_fixture, rand_vec};

const CAP: usize = 64;

/// Leaks a copy of `bytes` at a 4-byte aligned address (files in flash are `&'static`).
fn leak_aligned(bytes: &[u8]) -> &'static [u8] {
    let mut v = vec![0u8; bytes.len() + 3];
    let off = (4 - v.as_ptr() as usize % 4) % 4;
    v[off..off + bytes.len()].copy_from_slice(bytes);
    &v.leak()[off..off + bytes.len()]
}

/// `n` layer slots for [`ModelFile::layers`]; the rebuilt layers and their plan borrow them.
fn storage(n: usize) -> Vec<Layer<'static>> {
    vec![identity(); n]
}

fn file_error(e: Error) -> FileError {
    match e {
        Error::ModelFile(f) => f,
        other => panic!("expected a model-file error, got {other:?}"),
    }
}

/// Plausible BatchNorm running statistics for a plan: mean in [-1, 1), var in [0.5, 1.5).
fn bn_state<const C: usize>(plan: &Plan<C>, seed: u64) -> Vec<f32> {
    let mut s = rand_vec(plan.state_len(), seed);
    for n in plan.nodes() {
        if let torchlet::plan::Exec::BatchNorm(g) = n.exec {
            if n.state_len > 0 {
                let o = n.state_offset;
                for v in &mut s[o + g.c..o + 2 * g.c] {
                    *v = 1.0 + 0.5 * *v;
                }
                s[o + 2 * g.c] = 3.0;
            }
        }
    }
    s
}

fn encode_vec<const C: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<C>,
    params: &[f32],
    state: &[f32],
    train: Option<(&TrainState, &[f32])>,
) -> Vec<u8> {
    let n = model_file::encoded_len(spec, plan, params, state, train).unwrap();
    let mut out = vec![0xAAu8; n + 7];
    assert_eq!(
        model_file::encode(spec, plan, params, state, train, &mut out).unwrap(),
        n
    );
    assert!(out[n..].iter().all(|&b| b == 0xAA), "encode wrote past its length");
    out.truncate(n);
    out
}

fn forward_bits<const C: usize>(plan: &Plan<C>, params: &[f32], state: &[f32], x: &[f32]) -> Vec<u32> {
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::with_weights(plan, params, state, &mut arena).unwrap();
    net.forward(x).unwrap().iter().map(|v| v.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------
// Random models round-trip.

/// A random valid model over `[C, H, W]` with names, residual blocks (with and without a
/// shortcut), concatenation, nested sequentials, BatchNorm, Dropout, and a head that may end
/// in BatchNorm1d or a Bilinear merge.
fn arb_model() -> impl Strategy<Value = (Vec<Layer<'static>>, Shape, usize)> {
    let layer = (0u8..9, 1usize..5, 1usize..4, any::<bool>());
    (
        prop::collection::vec(layer, 1..7),
        1usize..4,
        4usize..9,
        1usize..4,
        0u8..3,
    )
        .prop_map(|(spec, c0, hw, batch, head)| {
            let leak = |v: Vec<Layer<'static>>| -> &'static [Layer<'static>] { v.leak() };
            let mut layers = Vec::new();
            let (mut c, mut h) = (c0, hw);
            for (i, (kind, a, k, named)) in spec.into_iter().enumerate() {
                let l = match kind {
                    0 => {
                        let k = k.min(h);
                        let l = conv2d(c, a, k).padding(k / 2);
                        h = h + 2 * (k / 2) - k + 1;
                        c = a;
                        l
                    }
                    1 => relu(),
                    2 if h >= 2 => {
                        h /= 2;
                        max_pool2d(2)
                    }
                    3 => batch_norm2d(c),
                    4 => {
                        let body = leak(vec![conv2d(c, c, 3).padding(1), batch_norm2d(c), relu()]);
                        let short = if k > 1 {
                            leak(vec![conv2d(c, c, 1).named("down")])
                        } else {
                            &[]
                        };
                        residual(body, short)
                    }
                    5 => {
                        let l = concat(leak(vec![conv2d(c, a, 1), tanh()]), &[]);
                        c += a;
                        l
                    }
                    6 => sequential(leak(vec![
                        conv2d(c, c, 1).bias(k > 1),
                        sigmoid(),
                        sequential(leak(vec![identity()])),
                    ])),
                    7 => dropout(0.25),
                    _ => leaky_relu(0.1),
                };
                layers.push(if named { l.named(leak_name(format!("l{i}"))) } else { l });
            }
            layers.push(flatten());
            layers.push(lazy_linear(3).named("fc"));
            match head {
                1 => layers.push(batch_norm1d(3)),
                2 => layers.push(bilinear(leak(vec![linear(3, 2)]), &[], 2, 3, 4).named("bil")),
                _ => {}
            }
            (layers, Shape::chw(c0, hw, hw), batch)
        })
}

fn leak_name(s: String) -> &'static str {
    s.leak()
}

fn arb_train() -> impl Strategy<Value = u8> {
    0u8..4
}

/// A training state of kind `k` (none, SGD without momentum, SGD with momentum, AMSGrad).
fn train_state(k: u8, steps: u64) -> Option<TrainState> {
    let optimizer = match k {
        0 => return None,
        1 => OptimizerRecord::from(&torchlet::optim::Sgd::new(0.1)),
        2 => OptimizerRecord::from(&torchlet::optim::Sgd::new(0.1).momentum(0.9).nesterov(true)),
        _ => OptimizerRecord::from(&torchlet::optim::Adam::adamw(1e-3).amsgrad(true)),
    };
    Some(TrainState {
        epoch: 7,
        step: steps * 3,
        rng: (steps, 99),
        best_metric: 0.75,
        optimizer,
        optimizer_steps: steps,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_models_round_trip((layers, input, batch) in arb_model(), seed in 0u64..1000, tk in arb_train()) {
        let layers: &'static [Layer] = layers.leak();
        let plan = Plan::<CAP>::try_new(layers, input, batch, Mode::Inference).unwrap();
        let params = rand_vec(plan.param_len(), seed);
        let state = bn_state(&plan, seed + 1);
        let train = train_state(tk, seed);
        let opt = train.map(|t| rand_vec(t.optimizer.state_len(plan.param_len()).unwrap(), seed + 2)).unwrap_or_default();
        let spec = ModelSpec { name: "random", layers, input, classes: &["x", "", "zürich"], run: None };
        let bytes = leak_aligned(&encode_vec(&spec, &plan, &params, &state, train.as_ref().map(|t| (t, &opt[..]))));

        let file = ModelFile::parse(bytes).unwrap();
        prop_assert_eq!(file.name(), "random");
        prop_assert_eq!(file.input_shape(), input);
        prop_assert_eq!(file.class_names().collect::<Vec<_>>(), vec!["x", "", "zürich"]);
        prop_assert_eq!(file.node_count(), plan.len());
        prop_assert_eq!(file.train_state(), train);
        prop_assert_eq!(file.optimizer_state().unwrap(), &opt[..]);
        let mut slots = storage(file.layer_count());
        let plan2 = file.plan::<CAP>(&mut slots, batch, Mode::Inference).unwrap();
        prop_assert_eq!(plan2, plan);
        prop_assert_eq!(file.params().unwrap(), &params[..]);
        prop_assert_eq!(file.state().unwrap(), &state[..]);

        // The same outputs, bit for bit, from the file's zero-copy weights and plan.
        let x = rand_vec(batch * input.numel(), seed + 3);
        let want = forward_bits(&plan, &params, &state, &x);
        let got = forward_bits(&plan2, file.params().unwrap(), file.state().unwrap(), &x);
        prop_assert_eq!(got, want);

        // Names and shapes, from the tensor table alone, cover both buffers exactly.
        let mut p = vec![f32::NAN; plan.param_len()];
        for t in file.tensors().filter(|t| t.role == Role::Parameter) {
            prop_assert!(t.name.ends_with(".weight") || t.name.ends_with(".bias"), "{}", t.name);
            t.copy_to(&mut p[t.offset / 4..t.offset / 4 + t.numel]).unwrap();
        }
        prop_assert_eq!(p, params.clone());

        // A state dict of the same model loads into the same plan.
        let n = model_file::encoded_state_dict_len(&spec, &plan, &params, &state, None).unwrap();
        let mut sd = vec![0u8; n];
        model_file::encode_state_dict(&spec, &plan, &params, &state, None, &mut sd).unwrap();
        let sd = ModelFile::parse(leak_aligned(&sd)).unwrap();
        prop_assert!(sd.is_state_dict());
        prop_assert_eq!(sd.tensor_count(), file.tensors().filter(|t| t.role != Role::Optimizer).count());
        sd.check_plan(&plan).unwrap();
        let mut copied = vec![0.0; plan.param_len()];
        sd.copy_params_into(&mut copied).unwrap();
        prop_assert_eq!(copied, params);
    }
}

// ---------------------------------------------------------------------------------------
// Names and shapes are PyTorch's.

#[test]
fn tensor_names_and_shapes_are_pytorchs() {
    static BODY: [Layer; 3] = [
        conv2d(4, 4, 3).padding(1).bias(false).named("conv1"),
        batch_norm2d(4).named("bn1"),
        relu(),
    ];
    static SHORT: [Layer; 1] = [conv2d(4, 4, 1)];
    static NET: [Layer; 7] = [
        conv2d(2, 4, 3).padding(1),
        residual(&BODY, &SHORT).named("block"),
        conv_transpose2d(4, 6, 2).stride(2).groups(2).named("up"),
        concat(&[conv2d(6, 2, 1)], &[]),
        adaptive_avg_pool2d(1, 1),
        flatten(),
        sequential(&[linear(8, 5), bilinear(&[], &[linear(5, 3)], 5, 3, 2)]).named("head"),
    ];
    let plan = Plan::<16>::try_new(&NET, Shape::chw(2, 4, 4), 1, Mode::Inference).unwrap();
    let spec = ModelSpec::new("names", &plan);
    let params = vec![0.5; plan.param_len()];
    let state = vec![0.0; plan.state_len()];
    let bytes = leak_aligned(&encode_vec(&spec, &plan, &params, &state, None));
    let file = ModelFile::parse(bytes).unwrap();
    let table: Vec<(String, String)> = file
        .tensors()
        .map(|t| (t.name.to_string(), t.shape.to_string()))
        .collect();
    let want = [
        ("0.weight", "[4, 2, 3, 3]"),
        ("0.bias", "[4]"),
        ("block.body.conv1.weight", "[4, 4, 3, 3]"),
        ("block.body.bn1.weight", "[4]"),
        ("block.body.bn1.bias", "[4]"),
        ("block.shortcut.0.weight", "[4, 4, 1, 1]"),
        ("block.shortcut.0.bias", "[4]"),
        ("up.weight", "[4, 3, 2, 2]"),
        ("up.bias", "[6]"),
        ("3.a.0.weight", "[2, 6, 1, 1]"),
        ("3.a.0.bias", "[2]"),
        ("head.0.weight", "[5, 8]"),
        ("head.0.bias", "[5]"),
        ("head.1.b.0.weight", "[3, 5]"),
        ("head.1.b.0.bias", "[3]"),
        ("head.1.weight", "[2, 5, 3]"),
        ("head.1.bias", "[2]"),
        ("block.body.bn1.running_mean", "[4]"),
        ("block.body.bn1.running_var", "[4]"),
        ("block.body.bn1.num_batches_tracked", "[]"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(table, want);
    // Parameters tile the parameter buffer in plan order, state follows at a 64-byte boundary.
    let total: usize = file
        .tensors()
        .filter(|t| t.role == Role::Parameter)
        .map(|t| t.numel)
        .sum();
    assert_eq!(total, plan.param_len());
    let first_state = file.tensors().find(|t| t.role == Role::State).unwrap();
    assert_eq!(first_state.offset, (4 * plan.param_len()).div_ceil(64) * 64);
}

// ---------------------------------------------------------------------------------------
// Corruption and truncation of a real file.

static SMALL: [Layer; 6] = [
    conv2d(1, 4, 3).named("conv1"),
    batch_norm2d(4).named("bn1"),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(36, 5).named("fc"),
];

/// A small real checkpoint: CNN with BatchNorm, class names, SGD momentum state (~2.4 KB).
fn small_file() -> (Vec<u8>, Plan<'static, 6>) {
    let plan = Plan::<6>::try_new(&SMALL, Shape::chw(1, 8, 8), 2, Mode::Inference).unwrap();
    let spec = ModelSpec {
        name: "small",
        layers: &SMALL,
        input: Shape::chw(1, 8, 8),
        classes: &["a", "b", "c", "d", "e"],
        run: None,
    };
    let params = rand_vec(plan.param_len(), 1);
    let state = bn_state(&plan, 2);
    let train = train_state(2, 10).unwrap();
    let momentum = rand_vec(plan.param_len(), 3);
    (
        encode_vec(&spec, &plan, &params, &state, Some((&train, &momentum))),
        plan,
    )
}

fn fixed_header_part(i: usize) -> &'static str {
    match i {
        0..8 => part::MAGIC,
        8..10 => part::VERSION,
        10..12 => part::FLAGS,
        12..16 => part::HEADER_LENGTH,
        16..20 => part::DATA_OFFSET,
        20..24 => part::DATA_LENGTH,
        _ => part::CRC,
    }
}

#[test]
fn every_byte_flip_is_an_error_naming_the_part() {
    let (bytes, plan) = small_file();
    assert!((2000..5000).contains(&bytes.len()), "{} bytes", bytes.len());
    let ok = ModelFile::parse(&bytes).unwrap();
    ok.check_plan(&plan).unwrap();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0xFF;
        let e = file_error(ModelFile::parse(&b).unwrap_err());
        assert_eq!(e.part, fixed_header_part(i), "byte {i}: {e}");
        // Every single-bit flip is an error too, naming that field or the CRC.
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let e = file_error(ModelFile::parse(&b).unwrap_err());
            assert!(
                e.part == fixed_header_part(i) || e.part == part::CRC,
                "byte {i} bit {bit}: {e}"
            );
        }
    }
}

#[test]
fn every_truncation_and_extension_is_a_length_error() {
    let (bytes, _) = small_file();
    for n in 0..bytes.len() {
        let e = file_error(ModelFile::parse(&bytes[..n]).unwrap_err());
        assert_eq!(e.part, part::FILE_LENGTH, "truncated to {n}: {e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        file_error(ModelFile::parse(&longer).unwrap_err()).part,
        part::FILE_LENGTH
    );
}

/// Recomputes the CRC after an edit, so the records themselves are exercised.
fn fix_crc(b: &mut [u8]) {
    let n = b.len() - 4;
    let crc = model_file::crc32(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn corrupted_records_with_a_valid_crc_never_panic() {
    let (bytes, _) = small_file();
    let header_end = 24 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let record_parts = [
        part::META,
        part::INPUT_SHAPE,
        part::CLASS_NAME,
        part::BLOCK,
        part::LAYER,
        part::LAYER_NAME,
        part::LAYER_REFERENCE,
        part::NESTING,
        part::TENSOR,
        part::TENSOR_NAME,
        part::TENSOR_ROLE,
        part::TENSOR_DTYPE,
        part::TENSOR_SHAPE,
        part::TENSOR_OFFSET,
        part::TRAINING_STATE,
        part::OPTIMIZER_STATE,
        part::HEADER_LENGTH,
        part::DATA_LENGTH,
        part::PADDING,
    ];
    let mut rejected = 0;
    for i in 24..header_end + 64 {
        for x in [0xFF, 0x01, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= x;
            fix_crc(&mut b);
            match ModelFile::parse(leak_aligned(&b)) {
                Err(e) => {
                    let e = file_error(e);
                    assert!(record_parts.contains(&e.part), "byte {i} ^ {x:#x}: {e}");
                    rejected += 1;
                }
                // Still a valid file (a changed name or hyper-parameter): loading must not
                // panic; the plan check either passes or names the difference.
                Ok(f) if !f.is_state_dict() => {
                    let _ = f.plan::<8>(&mut storage(f.layer_count()), 2, Mode::Inference);
                }
                Ok(_) => {}
            }
        }
    }
    assert!(rejected > 100, "only {rejected} corruptions were rejected");
}

#[test]
fn errors_say_what_was_expected_and_found() {
    let (mut bytes, plan) = small_file();
    bytes[8] = 9;
    let e = ModelFile::parse(&bytes).unwrap_err();
    assert_eq!(
        e,
        Error::ModelFile(FileError {
            part: "version",
            index: None,
            what: "unsupported format version",
            expected: model_file::VERSION as u64,
            found: 9
        })
    );
    assert_eq!(
        e.to_string(),
        "model file: version: unsupported format version: expected 2, found 9"
    );
    bytes[8] = 1;
    let n = bytes.len();
    bytes[n - 1] ^= 0x10;
    let e = ModelFile::parse(&bytes).unwrap_err().to_string();
    assert!(
        e.starts_with("model file: crc: checksum mismatch: the file is corrupted: expected 0x"),
        "{e}"
    );

    // A file checked against another model's plan names the difference.
    let (bytes, _) = small_file();
    let file = ModelFile::parse(leak_aligned(&bytes)).unwrap();
    static OTHER: [Layer; 6] = [
        conv2d(1, 4, 3).named("conv1"),
        batch_norm2d(4).named("bn1"),
        relu(),
        max_pool2d(2),
        flatten(),
        linear(36, 6).named("fc"),
    ];
    let other = Plan::<6>::try_new(&OTHER, Shape::chw(1, 8, 8), 2, Mode::Inference).unwrap();
    assert_eq!(
        file_error(file.check_plan(&other).unwrap_err()).part,
        part::ARCHITECTURE
    );
    let mut sd = vec![0u8; 4096];
    let spec = ModelSpec::new("x", &other);
    let (p, s) = (vec![0.0; other.param_len()], vec![0.0; other.state_len()]);
    let n = model_file::encode_state_dict(&spec, &other, &p, &s, None, &mut sd).unwrap();
    let sd = ModelFile::parse(leak_aligned(&sd[..n])).unwrap();
    let e = file_error(sd.check_plan(&plan).unwrap_err());
    assert_eq!(
        (e.part, e.expected, e.found),
        (part::PARAMETER_COUNT, plan.param_len() as u64, other.param_len() as u64)
    );
    static RENAMED: [Layer; 6] = [
        conv2d(1, 4, 3).named("conv1"),
        batch_norm2d(4).named("bn1"),
        relu(),
        max_pool2d(2),
        flatten(),
        linear(36, 5).named("head"),
    ];
    let renamed = Plan::<6>::try_new(&RENAMED, Shape::chw(1, 8, 8), 2, Mode::Inference).unwrap();
    let e = file_error(file.check_plan(&renamed).unwrap_err());
    assert_eq!(e.part, part::ARCHITECTURE);
    let (spec, p, s) = (
        ModelSpec::new("x", &plan),
        file.params().unwrap(),
        file.state().unwrap(),
    );
    let mut buf = vec![0u8; model_file::encoded_state_dict_len(&spec, &plan, p, s, None).unwrap()];
    model_file::encode_state_dict(&spec, &plan, p, s, None, &mut buf).unwrap();
    let sd = ModelFile::parse(leak_aligned(&buf)).unwrap();
    let e = file_error(sd.check_plan(&renamed).unwrap_err());
    assert_eq!((e.part, e.index), (part::TENSOR_NAME, Some(4)), "{e}");

    // Writer errors: short buffers, mismatched buffers, names PyTorch would reject.
    let spec = ModelSpec::new("x", &plan);
    let (p, s) = (vec![0.0; plan.param_len()], vec![0.0; plan.state_len()]);
    let need = model_file::encoded_len(&spec, &plan, &p, &s, None).unwrap();
    assert!(matches!(
        model_file::encode(&spec, &plan, &p, &s, None, &mut vec![0; need - 1]),
        Err(Error::BufferLength { expected, .. }) if expected == need
    ));
    assert!(matches!(
        model_file::encoded_len(&spec, &plan, &p[1..], &s, None),
        Err(Error::BufferLength { .. })
    ));
    static DOTTED: [Layer; 2] = [flatten(), linear(4, 2).named("a.b")];
    let dotted = Plan::<2>::try_new(&DOTTED, Shape::features(4), 1, Mode::Inference).unwrap();
    let e = model_file::encoded_len(&ModelSpec::new("x", &dotted), &dotted, &[0.0; 10], &[], None).unwrap_err();
    assert_eq!(file_error(e).part, part::LAYER_NAME);
}

#[test]
fn misaligned_bytes_are_an_error_not_a_panic_and_can_be_copied() {
    let (bytes, plan) = small_file();
    let aligned = leak_aligned(&[&[0u8][..], &bytes].concat());
    let shifted = &aligned[1..]; // odd address
    let file = ModelFile::parse(shifted).unwrap();
    assert_eq!(file_error(file.params().unwrap_err()).part, part::ALIGNMENT);
    let mut p = vec![0.0; plan.param_len()];
    file.copy_params_into(&mut p).unwrap();
    let good = ModelFile::parse(leak_aligned(&bytes)).unwrap();
    assert_eq!(p, good.params().unwrap());
}

// ---------------------------------------------------------------------------------------
// The golden file of format version 1.

static G_BODY: [Layer; 3] = [
    conv2d(8, 8, 3).padding(1).groups(2).bias(false).named("conv"),
    batch_norm2d(8).named("bn"),
    relu(),
];
static G_SHORT: [Layer; 1] = [conv2d(8, 8, 1)];
static G_BRANCH: [Layer; 2] = [conv2d(8, 4, 1), sigmoid()];
static G_HEAD: [Layer; 4] = [
    flatten(),
    dropout(0.5),
    linear(24, 10).named("fc1"),
    batch_norm1d(10).momentum(None),
];
static G_PROJ: [Layer; 1] = [linear(10, 4)];
/// Every kind of layer that fits one image model.
static GOLDEN: [Layer; 16] = [
    conv2d(3, 8, 3)
        .padding(1)
        .padding_mode(PaddingMode::Reflect)
        .named("stem"),
    batch_norm2d(8).named("bn"),
    leaky_relu(0.1),
    residual(&G_BODY, &G_SHORT).named("block"),
    max_pool2d(2).return_indices(true),
    max_unpool2d(2),
    zero_pad2d([1, 1, 1, 1]),
    avg_pool2d(2).count_include_pad(false),
    concat(&G_BRANCH, &[]),
    reflection_pad2d([1, 1, 1, 1]),
    conv_transpose2d(12, 6, 3).named("up"),
    adaptive_max_pool2d(4, 4),
    tanh(),
    adaptive_avg_pool2d(2, 2),
    sequential(&G_HEAD).named("head"),
    bilinear(&G_PROJ, &[], 4, 10, 5).named("bil"),
];
const G_CLASSES: [&str; 5] = ["plane", "car", "bird", "cat", "deer"];
const G_BATCH: usize = 2;

fn golden_parts() -> (Plan<'static, CAP>, Vec<f32>, Vec<f32>, TrainState, Vec<f32>) {
    let plan = Plan::<CAP>::try_new(&GOLDEN, Shape::chw(3, 8, 8), G_BATCH, Mode::Inference).unwrap();
    let params: Vec<f32> = rand_vec(plan.param_len(), 2024).iter().map(|v| v * 0.5).collect();
    let state = bn_state(&plan, 2025);
    let adam = torchlet::optim::Adam::new(1e-3).amsgrad(true).weight_decay(1e-4);
    let train = TrainState {
        epoch: 12,
        step: 3456,
        rng: torchlet::Rng::new(7).state(),
        best_metric: 0.8125,
        optimizer: OptimizerRecord::from(&adam),
        optimizer_steps: 3456,
    };
    let opt = rand_vec(3 * plan.param_len(), 2026).iter().map(|v| v.abs()).collect();
    (plan, params, state, train, opt)
}

/// Regenerates `tests/fixtures/golden-v1.tlm` and its sidecar `golden-v1.json`. Run only when
/// creating the fixture; the committed files must keep loading in every later version:
/// `cargo test -p torchlet-tests --test model_file -- --ignored write_golden_v1`
#[test]
#[ignore]
fn write_golden_v1() {
    let (plan, params, state, train, opt) = golden_parts();
    let spec = ModelSpec {
        name: "golden-v1",
        layers: &GOLDEN,
        input: plan.input_shape(),
        classes: &G_CLASSES,
        run: None,
    };
    let bytes = encode_vec(&spec, &plan, &params, &state, Some((&train, &opt)));
    let file = ModelFile::parse(leak_aligned(&bytes)).unwrap();
    let input = rand_vec(G_BATCH * plan.input_shape().numel(), 2027);
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::with_weights(&plan, &params, &state, &mut arena).unwrap();
    let output = net.forward(&input).unwrap().to_vec();
    let tensors: Vec<_> = file
        .tensors()
        .map(
            |t| json!({"name": t.name, "role": t.role.code(), "shape": t.dims(), "offset": t.offset, "numel": t.numel}),
        )
        .collect();
    let sidecar = json!({
        "format_version": 1,
        "size": bytes.len(),
        "crc": file.crc(),
        "name": "golden-v1",
        "input_shape": [3, 8, 8],
        "classes": G_CLASSES,
        "layer_count": file.layer_count(),
        "node_count": plan.len(),
        "param_len": plan.param_len(),
        "state_len": plan.state_len(),
        "tensors": tensors,
        "train_state": {"epoch": train.epoch, "step": train.step, "rng": [train.rng.0, train.rng.1],
                        "best_metric": train.best_metric, "optimizer_steps": train.optimizer_steps},
        "batch": G_BATCH,
        "input": input,
        "output": output,
    });
    std::fs::write(fixture_path("golden-v1.tlm"), &bytes).unwrap();
    std::fs::write(
        fixture_path("golden-v1.json"),
        serde_json::to_string_pretty(&sidecar).unwrap() + "\n",
    )
    .unwrap();
}

fn golden_bytes() -> &'static [u8] {
    leak_aligned(&std::fs::read(fixture_path("golden-v1.tlm")).expect("tests/fixtures/golden-v1.tlm"))
}

#[test]
fn golden_v1_file_keeps_loading() {
    let side = load_fixture("golden-v1.json");
    let bytes = golden_bytes();
    assert_eq!(bytes.len() as u64, side["size"].as_u64().unwrap());
    let file = ModelFile::parse(bytes).unwrap();
    assert_eq!(file.version(), 1);
    assert_eq!(file.crc() as u64, side["crc"].as_u64().unwrap());
    assert_eq!(file.name(), "golden-v1");
    assert_eq!(file.input_shape(), Shape::chw(3, 8, 8));
    assert_eq!(file.class_names().collect::<Vec<_>>(), G_CLASSES);
    assert_eq!(file.layer_count() as u64, side["layer_count"].as_u64().unwrap());
    let table = side["tensors"].as_array().unwrap();
    assert_eq!(file.tensor_count(), table.len());
    for (t, want) in file.tensors().zip(table) {
        assert_eq!(t.name, want["name"].as_str().unwrap());
        assert_eq!(t.role.code() as u64, want["role"].as_u64().unwrap(), "{}", t.name);
        let dims: Vec<u64> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims(), &dims[..], "{}", t.name);
        assert_eq!(t.offset as u64, want["offset"].as_u64().unwrap(), "{}", t.name);
    }
    let ts = file.train_state().unwrap();
    assert_eq!(ts.epoch as u64, side["train_state"]["epoch"].as_u64().unwrap());
    assert_eq!(
        ts.optimizer_steps,
        side["train_state"]["optimizer_steps"].as_u64().unwrap()
    );
    assert!(ts.optimizer.adam().unwrap().amsgrad);
    assert_eq!(file.optimizer_state().unwrap().len(), 3 * file.param_len());

    // The layers rebuilt from the file plan and run as the model did when it was written.
    let batch = side["batch"].as_u64().unwrap() as usize;
    let mut slots = storage(file.layer_count());
    let plan = file.plan::<CAP>(&mut slots, batch, Mode::Inference).unwrap();
    assert_eq!(plan.len() as u64, side["node_count"].as_u64().unwrap());
    assert_eq!(plan.layers(), &GOLDEN[..]);
    let x = torchlet_tests::floats(&side["input"]);
    let mut arena = vec![0.0; plan.arena_len()];
    let mut net = Network::with_weights(&plan, file.params().unwrap(), file.state().unwrap(), &mut arena).unwrap();
    let y = net.forward(&x).unwrap();
    torchlet_tests::assert_close("golden output", y, &torchlet_tests::floats(&side["output"]), 1e-5, 1e-6);
}

#[test]
fn this_version_still_writes_golden_v1_byte_for_byte() {
    if model_file::VERSION_F32 != 1 {
        return; // later versions write their own format; they only have to read v1
    }
    let (plan, params, state, train, opt) = golden_parts();
    let spec = ModelSpec {
        name: "golden-v1",
        layers: &GOLDEN,
        input: plan.input_shape(),
        classes: &G_CLASSES,
        run: None,
    };
    let bytes = encode_vec(&spec, &plan, &params, &state, Some((&train, &opt)));
    assert!(
        bytes == golden_bytes(),
        "the writer's output differs from the committed golden-v1.tlm"
    );
}

#[test]
fn python_reader_reads_the_golden_file_from_the_spec_alone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = match std::process::Command::new("python3")
        .arg("tools/read_tlm.py")
        .arg("--json")
        .arg("tests/fixtures/golden-v1.tlm")
        .current_dir(&root)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("skipped: python3 is not available ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "read_tlm.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = ModelFile::parse(golden_bytes()).unwrap();
    assert_eq!(py["crc"].as_u64().unwrap(), file.crc() as u64);
    assert_eq!(py["name"], "golden-v1");
    assert_eq!(py["input"], json!([3, 8, 8]));
    assert_eq!(py["classes"], json!(G_CLASSES));
    let blocks = py["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), file.block_count());
    let layers: usize = blocks.iter().map(|b| b.as_array().unwrap().len()).sum();
    assert_eq!(layers + blocks.len(), file.layer_count());
    // The root block is last: its layers are the model's, with the names given above.
    let root_names: Vec<&str> = blocks
        .last()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = GOLDEN.iter().map(|l| l.name).collect();
    assert_eq!(root_names, want);
    assert_eq!(
        blocks.last().unwrap()[0]["kind"]["Op"]["Conv"]["padding_mode"],
        "Reflect"
    );
    let tensors = py["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), file.tensor_count());
    for (t, p) in file.tensors().zip(tensors) {
        assert_eq!(p["name"].as_str().unwrap(), t.name);
        assert_eq!(p["shape"], json!(t.dims()));
        assert_eq!(p["offset"].as_u64().unwrap(), t.offset as u64);
        let sum: f64 = t.as_f32().unwrap().iter().map(|&v| v as f64).sum();
        let ps = p["sum"].as_f64().unwrap();
        assert!(
            (ps - sum).abs() <= 1e-9 * (1.0 + sum.abs()),
            "{}: python sum {ps}, rust {sum}",
            t.name
        );
    }
    assert_eq!(py["train_state"]["optimizer"]["Adam"]["amsgrad"], true);
    assert_eq!(py["train_state"]["epoch"], 12);
}

/// Regenerates the fuzzer's seed corpus `fuzz/corpus/model_file/` (small valid files of each
/// kind, and the golden file): `cargo test -p torchlet-tests --test model_file -- --ignored write_fuzz_seeds`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/model_file");
    std::fs::create_dir_all(&dir).unwrap();
    let (small, plan) = small_file();
    std::fs::write(dir.join("small-checkpoint.tlm"), &small).unwrap();
    let spec = ModelSpec::new("small", &plan);
    let (p, s) = (rand_vec(plan.param_len(), 5), bn_state(&plan, 6));
    let mut sd = vec![0u8; model_file::encoded_state_dict_len(&spec, &plan, &p, &s, None).unwrap()];
    model_file::encode_state_dict(&spec, &plan, &p, &s, None, &mut sd).unwrap();
    std::fs::write(dir.join("small-state-dict.tlm"), &sd).unwrap();
    static TINY: [Layer; 3] = [flatten(), linear(4, 3).named("fc"), log_softmax(1)];
    let tiny = Plan::<3>::try_new(&TINY, Shape::features(4), 1, Mode::Inference).unwrap();
    let bytes = encode_vec(&ModelSpec::new("tiny", &tiny), &tiny, &rand_vec(15, 7), &[], None);
    std::fs::write(dir.join("tiny.tlm"), &bytes).unwrap();
    static BODY: [Layer; 2] = [conv1d(2, 2, 3).padding(1), relu()];
    static RES: [Layer; 4] = [
        residual(&BODY, &[]),
        avg_pool1d(2),
        concat(&[max_pool1d(1)], &[sigmoid()]),
        flatten(),
    ];
    let res = Plan::<8>::try_new(&RES, Shape::cl(2, 6), 1, Mode::Inference).unwrap();
    let train = train_state(3, 1).unwrap();
    let opt = rand_vec(3 * res.param_len(), 8);
    let bytes = encode_vec(
        &ModelSpec::new("res1d", &res),
        &res,
        &rand_vec(res.param_len(), 9),
        &[],
        Some((&train, &opt)),
    );
    std::fs::write(dir.join("residual-1d-adam.tlm"), &bytes).unwrap();
    std::fs::copy(fixture_path("golden-v1.tlm"), dir.join("golden-v1.tlm")).unwrap();
}

// ---------------------------------------------------------------------------------------
// Hand-made files: each check of the reader, independently of the writer.

/// A file from raw header records (bytes as postcard encodes them) and `data_len` zero bytes
/// of data: the fixed header, padding and CRC as the spec says.
fn craft(records: &[u8], flags: u16, data_len: usize) -> Vec<u8> {
    let d = (24 + records.len()).div_ceil(64) * 64;
    let mut f = b"TORCHLET".to_vec();
    f.extend(1u16.to_le_bytes());
    f.extend(flags.to_le_bytes());
    f.extend((records.len() as u32).to_le_bytes());
    f.extend((d as u32).to_le_bytes());
    f.extend((data_len as u32).to_le_bytes());
    f.extend(records);
    f.resize(d + data_len, 0);
    let crc = model_file::crc32(&f);
    f.extend(crc.to_le_bytes());
    f
}

/// Meta record: name "", input `[4]`, no classes, then the counts.
fn meta(blocks: u8, layers: u8, tensors: u8) -> Vec<u8> {
    vec![0, 1, 4, 0, blocks, layers, tensors]
}

/// A chain of `levels` blocks: the deepest holds a ReLU, each other a Sequential of the previous.
fn chain(levels: u8) -> Vec<u8> {
    let mut r = meta(levels, levels, 0);
    r.extend([1, 0, 0, 8]); // block 0: 1 layer, name "", Op, ReLU
    for k in 1..levels {
        r.extend([1, 0, 1, k - 1]); // block k: 1 layer, name "", Sequential(k - 1)
    }
    r
}

fn parse_part(records: &[u8], flags: u16, data_len: usize) -> Result<ModelFile<'static>, FileError> {
    ModelFile::parse(leak_aligned(&craft(records, flags, data_len))).map_err(file_error)
}

#[test]
fn hand_made_files_exercise_every_record_check() {
    // The smallest model file: one ReLU.
    let f = parse_part(&chain(1), 0, 0).unwrap();
    assert_eq!((f.block_count(), f.layer_count(), f.node_count()), (1, 2, 1));
    let mut slots = storage(f.layer_count());
    let plan = f.plan::<1>(&mut slots, 1, Mode::Inference).unwrap();
    assert_eq!(plan.output_shape(), Shape::features(4));
    // 16 levels of containers are allowed, 17 are not.
    let f = parse_part(&chain(16), 0, 0).unwrap();
    assert!(f.plan::<1>(&mut storage(f.layer_count()), 1, Mode::Inference).is_ok());
    assert_eq!(parse_part(&chain(17), 0, 0).unwrap_err().part, part::NESTING);

    let bad = |records: Vec<u8>| parse_part(&records, 0, 0).unwrap_err();
    // A forward reference, a block used twice, a block never used.
    let mut r = meta(2, 2, 0);
    r.extend([1, 0, 1, 1, 1, 0, 0, 8]);
    assert_eq!(bad(r).part, part::LAYER_REFERENCE);
    let mut r = meta(3, 3, 0);
    r.extend([1, 0, 0, 8, 1, 0, 1, 0, 1, 0, 1, 0]);
    let e = bad(r);
    assert_eq!(
        (e.part, e.expected, e.found, e.index),
        (part::LAYER_REFERENCE, 1, 0, Some(2))
    );
    let mut r = meta(2, 2, 0);
    r.extend([1, 0, 0, 8, 1, 0, 0, 8]);
    assert_eq!(bad(r).part, part::LAYER_REFERENCE);
    // A merge with an empty branch (u32::MAX) is fine; a name with a dot is not.
    let mut r = meta(2, 2, 0);
    r.extend([1, 0, 0, 8, 1, 0, 2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(parse_part(&r, 0, 0).unwrap().node_count(), 2);
    let mut r = meta(1, 1, 0);
    r.extend([1, 3, b'a', b'.', b'b', 0, 8]);
    assert_eq!(bad(r).part, part::LAYER_NAME);
    // Counts that disagree with the records; records that do not fill the header.
    let mut r = meta(1, 2, 0);
    r.extend([1, 0, 0, 8]);
    assert_eq!(bad(r).part, part::META);
    let mut r = chain(1);
    r.push(0);
    assert_eq!(bad(r).part, part::HEADER_LENGTH);
    let mut r = chain(1);
    r[2] = 0; // input dim 0
    assert_eq!(bad(r).part, part::INPUT_SHAPE);
    let mut r = chain(1);
    r[4] = 0; // a model without blocks
    assert_eq!(bad(r).part, part::META);

    // Tensors: a state dict (flags bit 1) with one `[2, 2]` parameter at offset 0.
    let sd = |tensor: &[u8], flags: u16, data_len: usize| {
        let mut r = vec![0, 1, 4, 0, 0, 0, 1];
        r.extend(tensor);
        parse_part(&r, flags, data_len)
    };
    let t = |name: &[u8], role: u8, dtype: u8, offset: u8, numel: u8| {
        let mut v = vec![name.len() as u8];
        v.extend(name);
        v.extend([role, dtype, 2, 2, 2, offset, numel]);
        v
    };
    let f = sd(&t(b"w", 0, 0, 0, 4), 2, 16).unwrap();
    assert_eq!(f.tensor("w").unwrap().dims(), &[2, 2]);
    assert_eq!(f.params().unwrap(), &[0.0; 4]);
    assert_eq!(sd(&t(b"w", 0, 0, 4, 4), 2, 20).unwrap_err().part, part::TENSOR_OFFSET);
    assert_eq!(sd(&t(b"w", 0, 0, 0, 4), 2, 12).unwrap_err().part, part::TENSOR_SHAPE);
    assert_eq!(sd(&t(b"w", 0, 0, 0, 4), 2, 20).unwrap_err().part, part::DATA_LENGTH);
    assert_eq!(sd(&t(b"w", 0, 0, 0, 5), 2, 20).unwrap_err().part, part::TENSOR_SHAPE);
    assert_eq!(sd(&t(b"w", 0, 1, 0, 4), 2, 16).unwrap_err().part, part::TENSOR_DTYPE);
    assert_eq!(sd(&t(b"w", 3, 0, 0, 4), 2, 16).unwrap_err().part, part::TENSOR_ROLE);
    assert_eq!(sd(&t(b"w", 2, 0, 0, 4), 2, 16).unwrap_err().part, part::TENSOR_ROLE);
    assert_eq!(sd(&t(b"", 0, 0, 0, 4), 2, 16).unwrap_err().part, part::TENSOR_NAME);
    // The state block starts at the next 64-byte boundary, and its padding must be zero.
    let mut two = t(b"w", 0, 0, 0, 4);
    two.extend(t(b"s", 1, 0, 64, 4));
    let mut r = vec![0, 1, 4, 0, 0, 0, 2];
    r.extend(&two);
    let f = parse_part(&r, 2, 80).unwrap();
    assert_eq!((f.param_len(), f.state_len()), (4, 4));
    let mut bytes = craft(&r, 2, 80);
    let d = bytes.len() - 84;
    bytes[d + 20] = 1;
    fix_crc(&mut bytes);
    assert_eq!(file_error(ModelFile::parse(&bytes).unwrap_err()).part, part::PADDING);
    let mut r = vec![0, 1, 4, 0, 0, 0, 2];
    r.extend(t(b"s", 1, 0, 0, 4));
    r.extend(t(b"w", 0, 0, 64, 4));
    assert_eq!(parse_part(&r, 2, 80).unwrap_err().part, part::TENSOR_ROLE);
}

#[test]
fn run_records_round_trip_and_are_bounded() {
    static LAYERS: [Layer; 2] = [flatten(), linear(4, 3)];
    let plan = Plan::<2>::try_new(&LAYERS, Shape::features(4), 1, Mode::Inference).unwrap();
    let (p, s) = (vec![0.5; plan.param_len()], vec![]);
    let encode = |run: Option<&str>| {
        let spec = ModelSpec {
            run,
            ..ModelSpec::new("r", &plan)
        };
        let mut out = vec![0u8; model_file::encoded_len(&spec, &plan, &p, &s, None)?];
        model_file::encode(&spec, &plan, &p, &s, None, &mut out)?;
        Ok::<_, Error>(out)
    };
    let with = encode(Some(r#"{"seed":7}"#)).unwrap();
    let file = ModelFile::parse(leak_aligned(&with)).unwrap();
    assert_eq!(file.run_record(), Some(r#"{"seed":7}"#));
    assert_eq!(u16::from_le_bytes([with[10], with[11]]), 4, "flags bit 2");
    file.check_plan(&plan).unwrap();
    let without = encode(None).unwrap();
    assert_eq!(ModelFile::parse(leak_aligned(&without)).unwrap().run_record(), None);
    // Too long to write; and a record cut short is an error naming it.
    let long = "x".repeat(model_file::MAX_RUN_RECORD + 1);
    assert_eq!(file_error(encode(Some(&long)).unwrap_err()).part, part::RUN_RECORD);
    let mut bad = with.clone();
    bad[10] = 5; // claims a training state too: the run record is read as one
    let n = bad.len();
    let crc = torchlet::model_file::crc32(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(ModelFile::parse(leak_aligned(&bad)).is_err());
}
