//! The int8 kernels (`torchlet::quant`) against independent integer references written in this
//! file from TFLite's definitions (naive loop nests, `i64`/`i128` arithmetic, the rounding
//! rules stated as magnitudes and floors rather than gemmlowp's bit tricks), bit for bit, on
//! random geometry, zero points, multipliers and activation ranges; the fixed-point helpers
//! against their definitions; quantise -> int8 kernel -> dequantise against the `f32` kernels
//! within an output step; and every kernel on garbage geometry returning an error, never
//! panicking.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torchlet::ops::conv::{conv_forward, conv_workspace_len};
use torchlet::ops::geom::{ConvGeom, PaddingMode, PoolGeom};
use torchlet::ops::linear::{linear_forward, LinearGeom};
use torchlet::ops::merge::{add_forward, ConcatGeom};
use torchlet::ops::pool::{avg_pool_forward, AdaptiveGeom};
use torchlet::quant::*;
use torchlet_tests::problem::conv::{conv_geom, source};
use torchlet_tests::problem::pool::{outputs, pool_geom, window_positions};

// ---------------------------------------------------------------------------------------------
// The reference arithmetic, from the definitions.

/// `a · b / 2^31` rounded to the nearest integer, halves up (toward +inf), in `i128`: gemmlowp's
/// `SaturatingRoundingDoublingHighMul`, whose one out-of-range result (`a = b = i32::MIN`,
/// exactly `2^31`) saturates.
fn ref_high_mul(a: i32, b: i32) -> i64 {
    let p = a as i128 * b as i128;
    ((p + (1 << 30)).div_euclid(1 << 31)).min(i32::MAX as i128) as i64
}

/// `v / 2^e` rounded to the nearest integer, halves away from zero (on the magnitude).
fn ref_div_pot(v: i64, e: u32) -> i64 {
    if e == 0 {
        return v;
    }
    let mag = (v.abs() + (1 << (e - 1))) >> e;
    if v < 0 {
        -mag
    } else {
        mag
    }
}

/// TFLite's `MultiplyByQuantizedMultiplier`: left shift (the caller keeps it in `i32`), the
/// rounded doubling high multiply, then the rounded right shift.
fn ref_requantize(acc: i64, m: i32, shift: i32) -> i64 {
    let x = acc << shift.max(0);
    assert!(i32::try_from(x).is_ok(), "reference: the left shift leaves i32");
    ref_div_pot(ref_high_mul(x as i32, m), (-shift).max(0) as u32)
}

/// The output stage: requantise, add the zero point, clamp.
fn ref_out(acc: i64, (m, s): (i32, i32), zp: i32, act: ActRange) -> i8 {
    (ref_requantize(acc, m, s) + zp as i64).clamp(act.min as i64, act.max as i64) as i8
}

/// `s / c` rounded half away from zero, as a rational: `sign(s) · floor((2|s| + c) / 2c)`.
fn ref_round_div(s: i64, c: i64) -> i64 {
    s.signum() * ((2 * s.abs() + c) / (2 * c))
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// An output stage's data: per-channel (or per-tensor) multipliers and shifts, zero point, clamp.
#[derive(Debug, Clone)]
struct Stage {
    mult: Vec<i32>,
    shift: Vec<i32>,
    zp: i32,
    act: ActRange,
}

impl Stage {
    fn get(&self) -> OutputStage<'_> {
        OutputStage {
            multiplier: &self.mult,
            shift: &self.shift,
            output_zp: self.zp,
            act: self.act,
        }
    }
    fn ch(&self, o: usize) -> (i32, i32) {
        let i = if self.mult.len() == 1 { 0 } else { o };
        (self.mult[i], self.shift[i])
    }
}

/// An activation range: the full range, a ReLU-like floor at `zp`, or any non-empty interval.
fn act_range(zp: i32) -> impl Strategy<Value = ActRange> {
    prop_oneof![
        Just(ActRange::FULL),
        Just(ActRange {
            min: zp as i8,
            max: 127
        }),
        (any::<i8>(), any::<i8>()).prop_map(|(a, b)| ActRange {
            min: a.min(b),
            max: a.max(b)
        }),
    ]
}

fn stage(channels: usize) -> impl Strategy<Value = Stage> {
    (
        any::<bool>(),
        prop::collection::vec((1i32 << 30)..=i32::MAX, channels),
        prop::collection::vec(-20i32..=1, channels),
        -128i32..=127,
    )
        .prop_flat_map(|(per_tensor, mut mult, mut shift, zp)| {
            if per_tensor {
                mult.truncate(1);
                shift.truncate(1);
            }
            act_range(zp).prop_map(move |act| Stage {
                mult: mult.clone(),
                shift: shift.clone(),
                zp,
                act,
            })
        })
}

fn i8s(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(any::<i8>(), n)
}

fn weights(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(-127i8..=127, n)
}

fn biases(n: usize) -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(-100_000i32..=100_000, n)
}

// ---------------------------------------------------------------------------------------------
// Requantisation and the multiplier.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn requantize_right_shift_matches_definition(acc in any::<i32>(), m in any::<i32>(), shift in -31i32..=0) {
        prop_assert_eq!(requantize(acc, m, shift) as i64, ref_requantize(acc as i64, m, shift));
    }

    #[test]
    fn requantize_left_shift_matches_definition(raw in any::<i32>(), m in any::<i32>(), shift in 1i32..=30) {
        let acc = raw >> shift; // keeps acc · 2^shift in i32
        prop_assert_eq!(requantize(acc, m, shift) as i64, ref_requantize(acc as i64, m, shift));
    }

    #[test]
    fn quantize_multiplier_is_within_its_precision(e in -40i32..31, f in 1.0f64..2.0) {
        let real = f * 2f64.powi(e);
        match quantize_multiplier(real) {
            Ok((0, 0)) => prop_assert!(real < 2f64.powi(-31)),
            Ok((m, s)) => {
                prop_assert!((1 << 30..=i32::MAX).contains(&m) && (-31..=30).contains(&s));
                let back = m as f64 * 2f64.powi(s - 31);
                prop_assert!((back - real).abs() <= real * 2f64.powi(-30), "{real} -> {m} * 2^{s}");
            }
            Err(_) => prop_assert!(real >= 2f64.powi(30) * (1.0 - 2f64.powi(-31))),
        }
    }

    #[test]
    fn requantize_rounds_the_real_product(acc in -(1i32 << 24)..(1 << 24), e in -20i32..0, f in 1.0f64..2.0) {
        let real = f * 2f64.powi(e);
        let (m, s) = quantize_multiplier(real).unwrap();
        let exact = acc as f64 * real;
        // Two roundings (each at most half a unit) and the multiplier's relative 2^-31.
        prop_assert!((requantize(acc, m, s) as f64 - exact).abs() <= 1.0, "{acc} * {real}");
    }
}

#[test]
fn requantize_known_answers() {
    // 0.5 in Q31 is 2^30: 3 · 0.5 = 1.5 rounds half up in the high multiply -> 2; -1.5 -> -1.
    assert_eq!(requantize(3, 1 << 30, 0), 2);
    assert_eq!(requantize(-3, 1 << 30, 0), -1);
    // 0.25 = 2^30 with shift -1: 1.5 -> 2 -> 1 (the divide rounds 1 / 2 half away from zero).
    assert_eq!(requantize(3, 1 << 30, -1), 1);
    assert_eq!(requantize(-3, 1 << 30, -1), -1);
    assert_eq!(requantize(6, 1 << 30, -1), 2);
    assert_eq!(requantize(-6, 1 << 30, -1), -2);
    // The saturating case of the doubling high multiply.
    assert_eq!(doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
    assert_eq!(requantize(i32::MIN, i32::MIN, 0), i32::MAX);
    // Left shift: 1.5 = 0.75 · 2^1; 3 · 1.5 = 4.5 -> 5; -4.5 -> -4.
    assert_eq!(requantize(3, 3 << 29, 1), 5);
    assert_eq!(requantize(-3, 3 << 29, 1), -4);
    // The largest shifts.
    assert_eq!(requantize(i32::MAX, i32::MAX, -31), 1);
    assert_eq!(requantize(1, 1 << 30, 30), 1 << 29);
    for (acc, m, s) in [
        (3, 1 << 30, 0),
        (-7, 1_500_000_000, -3),
        (12345, 1_234_567_890, -9),
        (-1, i32::MAX, 0),
    ] {
        assert_eq!(requantize(acc, m, s) as i64, ref_requantize(acc as i64, m, s));
    }
}

// ---------------------------------------------------------------------------------------------
// Convolution.

#[derive(Debug, Clone)]
struct ConvCase {
    g: ConvGeom,
    zp: i32,
    st: Stage,
    x: Vec<i8>,
    w: Vec<i8>,
    b: Vec<i32>,
    scratch: usize,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    conv_geom().prop_flat_map(|g| {
        let k = conv_s8_scratch_len(&g);
        (
            -128i32..=127,
            stage(g.c_out),
            i8s(g.n * g.c_in * g.in_spatial()),
            weights(g.weight_len()),
            biases(if g.bias { g.c_out } else { 0 }),
            (1usize..=4, 0..k),
        )
            .prop_map(move |(zp, st, x, w, b, (cols, extra))| ConvCase {
                g,
                zp,
                st,
                x,
                w,
                b,
                scratch: cols * k + extra,
            })
    })
}

/// The convolution from its definition: explicit padding (the zero point for `Zeros`, which
/// adds nothing once the zero point is subtracted), `i64` accumulators, the output stage.
fn ref_conv(c: &ConvCase) -> Vec<i8> {
    let g = &c.g;
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let at = |d: usize, o: usize, k: usize| (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let mut y = Vec::new();
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for (_, [z, r, s], _) in outputs(1, g.output) {
                let mut acc = if g.bias { c.b[o] as i64 } else { 0 };
                for ci in 0..cin_g {
                    for a in 0..kd {
                        for bb in 0..kh {
                            for e in 0..kw {
                                let wv = c.w[(((o * cin_g + ci) * kd + a) * kh + bb) * kw + e] as i64;
                                let xv = match (
                                    source(g.mode, at(0, z, a), id),
                                    source(g.mode, at(1, r, bb), ih),
                                    source(g.mode, at(2, s, e), iw),
                                ) {
                                    (Some(sd), Some(sh), Some(sw)) => {
                                        c.x[(((n * g.c_in + grp * cin_g + ci) * id + sd) * ih + sh) * iw + sw] as i64
                                    }
                                    _ => c.zp as i64,
                                };
                                acc += wv * (xv - c.zp as i64);
                            }
                        }
                    }
                }
                y.push(ref_out(acc, c.st.ch(o), c.st.zp, c.st.act));
            }
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conv_matches_reference(c in conv_case()) {
        let mut y = vec![0x55i8; c.g.n * c.g.c_out * c.g.out_spatial()];
        let mut scratch = vec![i16::MIN; c.scratch];
        conv_s8(&c.g, c.zp, &c.st.get(), &c.x, &c.w, &c.b, &mut y, &mut scratch).unwrap();
        prop_assert_eq!(y, ref_conv(&c));
    }
}

#[test]
fn depthwise_conv_matches_reference() {
    // A MobileNet-style depthwise 3x3, stride 2, padding 1, 8 channels of 9x9.
    let g = ConvGeom {
        n: 1,
        c_in: 8,
        c_out: 8,
        groups: 8,
        input: [1, 9, 9],
        output: [1, 5, 5],
        kernel: [1, 3, 3],
        stride: [1, 2, 2],
        dilation: [1; 3],
        pad: [0, 1, 1],
        mode: PaddingMode::Zeros,
        bias: true,
    };
    let mut rng = torchlet::Rng::new(7);
    let mut r = |lo: f32, hi: f32| rng.uniform(lo, hi) as i32;
    let c = ConvCase {
        g,
        zp: -3,
        st: Stage {
            mult: (0..8).map(|_| r(1.1e9, 2.1e9)).collect(),
            shift: (0..8).map(|_| r(-9.0, -5.0)).collect(),
            zp: 4,
            act: ActRange { min: 4, max: 127 },
        },
        x: (0..8 * 81).map(|_| r(-128.0, 127.0) as i8).collect(),
        w: (0..8 * 9).map(|_| r(-127.0, 127.0) as i8).collect(),
        b: (0..8).map(|_| r(-3000.0, 3000.0)).collect(),
        scratch: 9,
    };
    let mut y = vec![0i8; 8 * 25];
    conv_s8(&c.g, c.zp, &c.st.get(), &c.x, &c.w, &c.b, &mut y, &mut [0; 9]).unwrap();
    assert_eq!(y, ref_conv(&c));
    assert!(y.iter().any(|&v| v > 4), "the case should not be all clamped");
}

// ---------------------------------------------------------------------------------------------
// Linear.

#[derive(Debug, Clone)]
struct LinearCase {
    n: usize,
    g: LinearGeom,
    zp: i32,
    st: Stage,
    x: Vec<i8>,
    w: Vec<i8>,
    b: Vec<i32>,
}

fn linear_case() -> impl Strategy<Value = LinearCase> {
    (1usize..=2, 1usize..=3, 1usize..=40, 1usize..=6, any::<bool>()).prop_flat_map(|(n, rows, in_f, out_f, bias)| {
        let g = LinearGeom {
            rows,
            in_f,
            out_f,
            bias,
        };
        (
            -128i32..=127,
            stage(out_f),
            i8s(n * rows * in_f),
            weights(out_f * in_f),
            biases(if bias { out_f } else { 0 }),
        )
            .prop_map(move |(zp, st, x, w, b)| LinearCase { n, g, zp, st, x, w, b })
    })
}

fn ref_linear(c: &LinearCase) -> Vec<i8> {
    let g = &c.g;
    let mut y = Vec::new();
    for r in 0..c.n * g.rows {
        for o in 0..g.out_f {
            let mut acc = if g.bias { c.b[o] as i64 } else { 0 };
            for i in 0..g.in_f {
                acc += c.w[o * g.in_f + i] as i64 * (c.x[r * g.in_f + i] as i64 - c.zp as i64);
            }
            y.push(ref_out(acc, c.st.ch(o), c.st.zp, c.st.act));
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn linear_matches_reference(c in linear_case()) {
        let mut y = vec![0i8; c.n * c.g.rows * c.g.out_f];
        linear_s8(c.n, &c.g, c.zp, &c.st.get(), &c.x, &c.w, &c.b, &mut y).unwrap();
        prop_assert_eq!(y, ref_linear(&c));
    }
}

// ---------------------------------------------------------------------------------------------
// Pooling.

fn pool_case(max: bool) -> impl Strategy<Value = (PoolGeom, i32, ActRange, Vec<i8>)> {
    (pool_geom(max), -128i32..=127)
        .prop_flat_map(|(g, zp)| (Just(g), Just(zp), act_range(zp), i8s(g.n * g.c * g.in_spatial())))
}

fn ref_max_pool(g: &PoolGeom, act: ActRange, x: &[i8]) -> Vec<i8> {
    let [_, ih, iw] = g.input;
    outputs(g.n * g.c, g.output)
        .map(|(p, o, _)| {
            let pos: Vec<Vec<usize>> = (0..3)
                .map(|d| window_positions(o[d], g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad[d]))
                .collect();
            let mut m = -128i64;
            for &a in &pos[0] {
                for &b in &pos[1] {
                    for &c in &pos[2] {
                        m = m.max(x[p * g.in_spatial() + (a * ih + b) * iw + c] as i64);
                    }
                }
            }
            m.clamp(act.min as i64, act.max as i64) as i8
        })
        .collect()
}

/// PyTorch's average with the padding reading the zero point (real 0): the window's positions
/// before `input + pad` count in the divisor when `count_include_pad`, those inside the input
/// are summed (and are the divisor otherwise); the quotient rounded half away from zero.
fn ref_avg_pool(g: &PoolGeom, zp: i32, act: ActRange, x: &[i8]) -> Vec<i8> {
    let [_, ih, iw] = g.input;
    outputs(g.n * g.c, g.output)
        .map(|(p, o, _)| {
            let pos: Vec<Vec<usize>> = (0..3)
                .map(|d| window_positions(o[d], g.input[d], g.kernel[d], g.stride[d], 1, g.pad[d]))
                .collect();
            let padded: i64 = (0..3)
                .map(|d| {
                    let start = (o[d] * g.stride[d]) as i64 - g.pad[d] as i64;
                    (start + g.kernel[d] as i64).min((g.input[d] + g.pad[d]) as i64) - start
                })
                .product();
            let mut sum = 0i64;
            for &a in &pos[0] {
                for &b in &pos[1] {
                    for &c in &pos[2] {
                        sum += x[p * g.in_spatial() + (a * ih + b) * iw + c] as i64;
                    }
                }
            }
            let valid = (pos[0].len() * pos[1].len() * pos[2].len()) as i64;
            let div = if g.count_include_pad {
                sum += zp as i64 * (padded - valid);
                padded
            } else {
                valid
            };
            ref_round_div(sum, div).clamp(act.min as i64, act.max as i64) as i8
        })
        .collect()
}

fn adaptive_case() -> impl Strategy<Value = (usize, AdaptiveGeom, ActRange, Vec<i8>)> {
    (
        1usize..=3,
        1usize..=2,
        1usize..=3,
        [
            (1usize..=3, 1usize..=3),
            (1usize..=3, 1usize..=3),
            (1usize..=3, 1usize..=3),
        ],
    )
        .prop_flat_map(|(dims, n, c, ds)| {
            let (mut input, mut output) = ([1; 3], [1; 3]);
            for (d, &(o, f)) in ds.iter().enumerate().skip(3 - dims) {
                output[d] = o;
                input[d] = o * f;
            }
            let g = AdaptiveGeom { c, input, output };
            (Just(n), Just(g), act_range(0), i8s(n * c * g.in_spatial()))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn max_pool_matches_reference((g, _zp, act, x) in pool_case(true)) {
        let mut y = vec![0i8; g.n * g.c * g.out_spatial()];
        max_pool_s8(&g, act, &x, &mut y).unwrap();
        prop_assert_eq!(y, ref_max_pool(&g, act, &x));
    }

    #[test]
    fn avg_pool_matches_reference((g, zp, act, x) in pool_case(false)) {
        let mut y = vec![0i8; g.n * g.c * g.out_spatial()];
        avg_pool_s8(&g, zp, act, &x, &mut y).unwrap();
        prop_assert_eq!(y, ref_avg_pool(&g, zp, act, &x));
    }

    #[test]
    fn adaptive_avg_pool_matches_reference((n, g, act, x) in adaptive_case()) {
        let mut y = vec![0i8; n * g.c * g.out_spatial()];
        adaptive_avg_pool_s8(n, &g, act, &x, &mut y).unwrap();
        // The adaptive windows [floor(i·in/out), ceil((i+1)·in/out)) summed directly.
        let [_, ih, iw] = g.input;
        let want: Vec<i8> = outputs(n * g.c, g.output)
            .map(|(p, o, _)| {
                let w: Vec<_> = (0..3)
                    .map(|d| torchlet_tests::problem::pool::adaptive_window(o[d], g.input[d], g.output[d]))
                    .collect();
                let mut sum = 0i64;
                for a in w[0].clone() {
                    for b in w[1].clone() {
                        for c in w[2].clone() {
                            sum += x[p * g.in_spatial() + (a * ih + b) * iw + c] as i64;
                        }
                    }
                }
                let count = (w[0].len() * w[1].len() * w[2].len()) as i64;
                ref_round_div(sum, count).clamp(act.min as i64, act.max as i64) as i8
            })
            .collect();
        prop_assert_eq!(y, want);
    }
}

// ---------------------------------------------------------------------------------------------
// Residual add and concatenation.

/// Quantisation parameters with a scale in `[2^-12, 2)`.
fn params() -> impl Strategy<Value = QuantParams> {
    (-12i32..1, 1.0f32..2.0, -128i32..=127).prop_map(|(e, f, zp)| QuantParams::new(f * 2f32.powi(e), zp).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn add_matches_reference(
        (pa, pb, po) in (params(), params(), params()),
        act in act_range(0),
        (a, b) in (1usize..64).prop_flat_map(|n| (i8s(n), i8s(n))),
    ) {
        let p = match AddParams::new(pa, pb, po, act) {
            Ok(p) => p,
            // The output scale too small for the fixed-point range: TFLite rejects it too.
            Err(_) => return Ok(()),
        };
        let mut y = vec![0i8; a.len()];
        add_s8(&p, &a, &b, &mut y).unwrap();
        let side = |q: i8, zp: i32, m: (i32, i32)| ref_requantize((q as i64 - zp as i64) << 20, m.0, m.1);
        let want: Vec<i8> = a
            .iter()
            .zip(&b)
            .map(|(&qa, &qb)| {
                let sum = side(qa, pa.zero_point, p.a_mult) + side(qb, pb.zero_point, p.b_mult);
                ref_out(sum, p.out_mult, po.zero_point, act)
            })
            .collect();
        prop_assert_eq!(y, want);
    }

    #[test]
    fn concat_matches_reference(
        (pa, pb, po) in (params(), params(), params()),
        same in any::<bool>(),
        (n, la, lb) in (1usize..=3, 0usize..12, 0usize..12),
        seed in any::<u64>(),
    ) {
        let pa = if same { po } else { pa };
        let (ra, rb) = (Rescale::new(pa, po).unwrap(), Rescale::new(pb, po).unwrap());
        let mut rng = torchlet::Rng::new(seed);
        let mut q = |len: usize| -> Vec<i8> { (0..len).map(|_| rng.uniform(-128.0, 127.99).floor() as i8).collect() };
        let (a, b) = (q(n * la), q(n * lb));
        let mut y = vec![0i8; n * (la + lb)];
        concat_s8(n, &ConcatGeom { a: la, b: lb }, &a, &ra, &b, &rb, &mut y).unwrap();
        let rescale = |v: i8, from: QuantParams| -> i8 {
            let d = v as i64 - from.zero_point as i64;
            let r = if from.scale == po.scale {
                d
            } else {
                let (m, s) = quantize_multiplier(from.scale as f64 / po.scale as f64).unwrap();
                ref_requantize(d, m, s)
            };
            (r + po.zero_point as i64).clamp(-128, 127) as i8
        };
        let mut want = Vec::new();
        for s in 0..n {
            want.extend(a[s * la..(s + 1) * la].iter().map(|&v| rescale(v, pa)));
            want.extend(b[s * lb..(s + 1) * lb].iter().map(|&v| rescale(v, pb)));
        }
        prop_assert_eq!(y, want);
    }
}

// ---------------------------------------------------------------------------------------------
// Quantise -> int8 kernel -> dequantise against the f32 kernels.

/// `|got - want| <= steps · scale + 1e-5` elementwise, `want` clamped to the representable
/// (and activation) range first.
fn close(what: &str, got: &[f32], want: &[f32], lo: f32, hi: f32, scale: f32, steps: f32) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let w = w.clamp(lo, hi);
        prop_assert!(
            (g - w).abs() <= steps * scale + 1e-5,
            "{what}[{i}]: int8 {g}, f32 {w} (scale {scale})"
        );
    }
    Ok(())
}

/// Output parameters covering `y`'s range.
fn out_params(y: &[f32]) -> QuantParams {
    let (lo, hi) = y.iter().fold((0.0f32, 0.0f32), |(l, h), &v| (l.min(v), h.max(v)));
    QuantParams::from_range(lo, hi).unwrap()
}

/// A layer's quantised weight and bias, their dequantised values and the weight scales.
struct QLayer {
    wq: Vec<i8>,
    bq: Vec<i32>,
    wd: Vec<f32>,
    bd: Vec<f32>,
    scales: Vec<f32>,
}

/// Quantises a weight `[C_out, ...]` per channel and a bias `[C_out]` for input parameters `ps`.
fn quantised_layer(w: &[f32], b: &[f32], c_out: usize, ps: QuantParams) -> QLayer {
    let mut scales = vec![0.0; c_out];
    weight_scales(w, &mut scales).unwrap();
    let mut wq = vec![0i8; w.len()];
    quantize_weights(w, &scales, &mut wq).unwrap();
    let mut bq = vec![0i32; b.len()];
    if !b.is_empty() {
        quantize_bias(b, ps.scale, &scales, &mut bq).unwrap();
    }
    let per = w.len() / c_out;
    let wd = wq
        .iter()
        .enumerate()
        .map(|(i, &q)| q as f32 * scales[i / per])
        .collect();
    let bd = bq
        .iter()
        .enumerate()
        .map(|(o, &q)| (q as f64 * ps.scale as f64 * scales[o] as f64) as f32)
        .collect();
    QLayer { wq, bq, wd, bd, scales }
}

fn dequantised(p: QuantParams, q: &[i8]) -> Vec<f32> {
    let mut v = vec![0.0; q.len()];
    dequantize_slice(p, q, &mut v).unwrap();
    v
}

fn quantised(p: QuantParams, x: &[f32]) -> Vec<i8> {
    let mut q = vec![0; x.len()];
    quantize_slice(p, x, &mut q).unwrap();
    q
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conv_is_close_to_f32(g in conv_geom(), seed in any::<u64>(), relu in any::<bool>()) {
        let x = torchlet_tests::rand_vec(g.n * g.c_in * g.in_spatial(), seed);
        let w = torchlet_tests::rand_vec(g.weight_len(), seed ^ 1);
        let b = torchlet_tests::rand_vec(if g.bias { g.c_out } else { 0 }, seed ^ 2);
        let px = QuantParams::from_range(-1.0, 1.0).unwrap();
        let xq = quantised(px, &x);
        let QLayer { wq, bq, wd, bd, scales } = quantised_layer(&w, &b, g.c_out, px);
        let mut yf = vec![0.0; g.n * g.c_out * g.out_spatial()];
        conv_forward(&g, &dequantised(px, &xq), &wd, &bd, &mut yf, &mut vec![0.0; conv_workspace_len(&g)]);
        let po = out_params(&yf);
        let (mut m, mut s) = (vec![0; g.c_out], vec![0; g.c_out]);
        output_multipliers(px.scale, &scales, po.scale, &mut m, &mut s).unwrap();
        let act = ActRange::fused(if relu { FusedActivation::Relu } else { FusedActivation::None }, po);
        let st = OutputStage { multiplier: &m, shift: &s, output_zp: po.zero_point, act };
        let mut yq = vec![0i8; yf.len()];
        conv_s8(&g, px.zero_point, &st, &xq, &wq, &bq, &mut yq, &mut vec![0; conv_s8_scratch_len(&g)]).unwrap();
        let lo = if relu { 0.0 } else { f32::MIN };
        close("conv", &dequantised(po, &yq), &yf, lo, f32::MAX, po.scale, 1.0)?;
    }

    #[test]
    fn linear_is_close_to_f32((rows, in_f, out_f) in (1usize..4, 1usize..64, 1usize..10), seed in any::<u64>()) {
        let x = torchlet_tests::rand_vec(rows * in_f, seed);
        let w = torchlet_tests::rand_vec(out_f * in_f, seed ^ 1);
        let b = torchlet_tests::rand_vec(out_f, seed ^ 2);
        let px = QuantParams::from_range(-1.0, 1.0).unwrap();
        let xq = quantised(px, &x);
        let QLayer { wq, bq, wd, bd, scales } = quantised_layer(&w, &b, out_f, px);
        let mut yf = vec![0.0; rows * out_f];
        linear_forward(rows, in_f, out_f, &dequantised(px, &xq), &wd, &bd, &mut yf);
        let po = out_params(&yf);
        let (mut m, mut s) = (vec![0; out_f], vec![0; out_f]);
        output_multipliers(px.scale, &scales, po.scale, &mut m, &mut s).unwrap();
        let st = OutputStage { multiplier: &m, shift: &s, output_zp: po.zero_point, act: ActRange::FULL };
        let mut yq = vec![0i8; yf.len()];
        let g = LinearGeom { rows: 1, in_f, out_f, bias: true };
        linear_s8(rows, &g, px.zero_point, &st, &xq, &wq, &bq, &mut yq).unwrap();
        close("linear", &dequantised(po, &yq), &yf, f32::MIN, f32::MAX, po.scale, 1.0)?;
    }

    #[test]
    fn avg_pool_is_close_to_f32(g in pool_geom(false), seed in any::<u64>(), zp in -40i32..40) {
        let p = QuantParams::new(1.0 / 64.0, zp).unwrap();
        let x = torchlet_tests::rand_vec(g.n * g.c * g.in_spatial(), seed);
        let xq = quantised(p, &x);
        let mut yf = vec![0.0; g.n * g.c * g.out_spatial()];
        avg_pool_forward(&g, &dequantised(p, &xq), &mut yf);
        let mut yq = vec![0i8; yf.len()];
        avg_pool_s8(&g, zp, ActRange::FULL, &xq, &mut yq).unwrap();
        close("avg pool", &dequantised(p, &yq), &yf, f32::MIN, f32::MAX, p.scale, 0.5)?;
    }

    #[test]
    fn add_is_close_to_f32((pa, pb, po) in (params(), params(), params()), seed in any::<u64>()) {
        let n = 32;
        let a = quantised(pa, &torchlet_tests::rand_vec(n, seed).iter().map(|v| v * 100.0 * pa.scale).collect::<Vec<_>>());
        let b = quantised(pb, &torchlet_tests::rand_vec(n, seed ^ 1).iter().map(|v| v * 100.0 * pb.scale).collect::<Vec<_>>());
        let Ok(p) = AddParams::new(pa, pb, po, ActRange::FULL) else { return Ok(()) };
        let mut yq = vec![0i8; n];
        add_s8(&p, &a, &b, &mut yq).unwrap();
        let mut yf = vec![0.0; n];
        add_forward(&dequantised(pa, &a), &dequantised(pb, &b), &mut yf);
        let (lo, hi) = (po.dequantize(-128), po.dequantize(127));
        close("add", &dequantised(po, &yq), &yf, lo, hi, po.scale, 1.0)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: an error, never a panic.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn garbage_geometry_is_an_error_not_a_panic(
        raw in prop::collection::vec(prop_oneof![0usize..4, Just(usize::MAX), Just(1usize << 40)], 20),
        lens in prop::collection::vec(0usize..40, 4),
        bias in any::<bool>(),
    ) {
        let t = |i: usize| [raw[i], raw[i + 1], raw[i + 2]];
        let g = ConvGeom {
            n: raw[0], c_in: raw[1], c_out: raw[2], groups: raw[3],
            input: t(4), output: t(7), kernel: t(10), stride: t(13), dilation: t(16),
            pad: [raw[19], 0, 1], mode: PaddingMode::Zeros, bias,
        };
        let st = OutputStage { multiplier: &[1 << 30], shift: &[0], output_zp: 0, act: ActRange::FULL };
        let (x, w, b) = (vec![0i8; lens[0]], vec![0i8; lens[1]], vec![0i32; lens[2]]);
        let mut y = vec![0i8; lens[3]];
        let _ = conv_s8(&g, 0, &st, &x, &w, &b, &mut y, &mut vec![0; lens[2]]);
        let pg = PoolGeom {
            n: raw[0], c: raw[1], input: t(4), output: t(7), kernel: t(10), stride: t(13), dilation: t(16),
            pad: [raw[19], 0, 1], count_include_pad: bias,
        };
        let _ = max_pool_s8(&pg, ActRange::FULL, &x, &mut y);
        let _ = avg_pool_s8(&pg, 0, ActRange::FULL, &x, &mut y);
        let ag = AdaptiveGeom { c: raw[1], input: t(4), output: t(7) };
        let _ = adaptive_avg_pool_s8(raw[0], &ag, ActRange::FULL, &x, &mut y);
        let lg = LinearGeom { rows: raw[4], in_f: raw[5], out_f: raw[6], bias };
        let _ = linear_s8(raw[0], &lg, 0, &st, &x, &w, &b, &mut y);
        let cg = ConcatGeom { a: raw[5], b: raw[6] };
        let r = Rescale { in_zp: 0, out_zp: 0, mult: None };
        let _ = concat_s8(raw[0], &cg, &x, &r, &w, &r, &mut y);
    }
}
