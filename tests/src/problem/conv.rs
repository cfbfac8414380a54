//! The convolution family's problems: valid random geometry (one strategy per layer, shared
//! by the CPU and GPU tests) and naive references written from PyTorch's definitions (explicit
//! padding, then a direct loop nest, in f64).

use proptest::prelude::*;
use torchlet::ops::geom::{ConvGeom, PaddingMode};

/// Every padding mode.
pub const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Replicate,
    PaddingMode::Circular,
];

/// Elements of a transposed convolution's weight `[C_in, C_out / groups, k...]`.
pub fn ct_weight_len(g: &ConvGeom) -> usize {
    g.c_in * (g.c_out / g.groups) * g.kernel.iter().product::<usize>()
}

/// One spatial dim's raw draw: (kernel, stride, dilation, padding, input size).
type Dim = (usize, usize, usize, usize, usize);

fn dim() -> impl Strategy<Value = Dim> {
    (1usize..=3, 1usize..=2, 1usize..=2, 0usize..=2, 1usize..=5)
}

/// A valid convolution with 1 to 3 spatial dims, any padding mode (reflect and circular with
/// inputs larger than the padding), groups, dilation and stride.
pub fn conv_geom() -> impl Strategy<Value = ConvGeom> {
    (
        1usize..=3,
        [dim(), dim(), dim()],
        1usize..=3,
        1usize..=2,
        1usize..=2,
        1usize..=2,
        0usize..4,
        any::<bool>(),
    )
        .prop_map(|(dims, raw, groups, cin_g, cout_g, n, mode, bias)| {
            let mode = MODES[mode];
            let mut g = ConvGeom {
                n,
                c_in: groups * cin_g,
                c_out: groups * cout_g,
                groups,
                input: [1; 3],
                output: [1; 3],
                kernel: [1; 3],
                stride: [1; 3],
                dilation: [1; 3],
                pad: [0; 3],
                mode,
                bias,
            };
            for (d, &(k, s, dil, p, in_raw)) in raw.iter().enumerate().skip(3 - dims) {
                let span = dil * (k - 1) + 1;
                // Large enough for one window, and (reflect, circular) larger than the padding.
                let min_in = span
                    .saturating_sub(2 * p)
                    .max(if mode == PaddingMode::Zeros { 1 } else { p + 1 });
                let input = in_raw.min(if dims == 3 { 3 } else { 5 }).max(min_in);
                g.kernel[d] = k;
                g.stride[d] = s;
                g.dilation[d] = dil;
                g.pad[d] = p;
                g.input[d] = input;
                g.output[d] = (input + 2 * p - span) / s + 1;
            }
            g
        })
}

/// A valid transposed convolution with 1 to 3 spatial dims (output padding smaller than stride
/// or dilation, a non-empty output).
pub fn conv_transpose_geom() -> impl Strategy<Value = ConvGeom> {
    let ct_dim = (1usize..=3, 1usize..=3, 1usize..=2, 0usize..=2, 1usize..=4, 0usize..3);
    (
        1usize..=3,
        [ct_dim.clone(), ct_dim.clone(), ct_dim],
        1usize..=2,
        1usize..=2,
        1usize..=3,
        1usize..=2,
        any::<bool>(),
    )
        .prop_map(|(dims, raw, groups, cin_g, cout_g, n, bias)| {
            let mut g = ConvGeom {
                n,
                c_in: groups * cin_g,
                c_out: groups * cout_g,
                groups,
                input: [1; 3],
                output: [1; 3],
                kernel: [1; 3],
                stride: [1; 3],
                dilation: [1; 3],
                pad: [0; 3],
                mode: PaddingMode::Zeros,
                bias,
            };
            for (d, &(k, s, dil, p, input, op_raw)) in raw.iter().enumerate().skip(3 - dims) {
                let input = input.min(if dims == 3 { 3 } else { 4 });
                // PyTorch: output_padding must be smaller than either stride or dilation.
                let op = op_raw % s.max(dil);
                let full = (input - 1) * s + dil * (k - 1) + op;
                // The output must not be empty: 2 * padding <= full.
                let p = p.min(full / 2);
                g.kernel[d] = k;
                g.stride[d] = s;
                g.dilation[d] = dil;
                g.pad[d] = p;
                g.input[d] = input;
                g.output[d] = full - 2 * p + 1;
            }
            g
        })
}

// ---------------------------------------------------------------------------------------------
// Reference convolution: pad explicitly (as torch.nn.functional.pad), then a direct loop nest.

/// Index into the unpadded input for padded coordinate `i` (may be negative), written from
/// PyTorch's definitions of the padding modes.
pub fn source(mode: PaddingMode, i: isize, n: usize) -> Option<usize> {
    let n = n as isize;
    let j = match mode {
        _ if (0..n).contains(&i) => i,
        PaddingMode::Zeros => return None,
        // "d c b | a b c d | c b a": mirror about the edge element.
        PaddingMode::Reflect if i < 0 => -i,
        PaddingMode::Reflect => 2 * (n - 1) - i,
        PaddingMode::Replicate => i.clamp(0, n - 1),
        PaddingMode::Circular => ((i % n) + n) % n,
    };
    assert!((0..n).contains(&j), "reference padding out of its valid range");
    Some(j as usize)
}

/// Reference convolution `y = conv(x, w) + b`: the direct loop nest over explicitly padded
/// input, in f64.
pub fn conv_reference(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let at = |d: usize, o: usize, k: usize| (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let mut y = vec![0.0f32; g.n * g.c_out * od * oh * ow];
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for (z, yy, xx) in (0..od).flat_map(|z| (0..oh).flat_map(move |yy| (0..ow).map(move |xx| (z, yy, xx)))) {
                let mut acc = if g.bias { b[o] as f64 } else { 0.0 };
                for c in 0..cin_g {
                    let ci = grp * cin_g + c;
                    for (a, bb, cc) in
                        (0..kd).flat_map(|a| (0..kh).flat_map(move |bb| (0..kw).map(move |cc| (a, bb, cc))))
                    {
                        let (Some(sd), Some(sh), Some(sw)) = (
                            source(g.mode, at(0, z, a), id),
                            source(g.mode, at(1, yy, bb), ih),
                            source(g.mode, at(2, xx, cc), iw),
                        ) else {
                            continue;
                        };
                        let xv = x[(((n * g.c_in + ci) * id + sd) * ih + sh) * iw + sw];
                        let wv = w[(((o * cin_g + c) * kd + a) * kh + bb) * kw + cc];
                        acc += xv as f64 * wv as f64;
                    }
                }
                y[(((n * g.c_out + o) * od + z) * oh + yy) * ow + xx] = acc as f32;
            }
        }
    }
    y
}

/// Reference convolution gradients `(gx, gw, gb)` of `sum(gy * y)`: the same loop nest as
/// [`conv_reference`], accumulating instead of reading.
pub fn conv_grad_reference(g: &ConvGeom, x: &[f32], w: &[f32], gy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let at = |d: usize, o: usize, k: usize| (o * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let (mut gx, mut gw, mut gb) = (vec![0.0f64; x.len()], vec![0.0f64; w.len()], vec![0.0f64; g.c_out]);
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for (z, yy, xx) in (0..od).flat_map(|z| (0..oh).flat_map(move |yy| (0..ow).map(move |xx| (z, yy, xx)))) {
                let gv = gy[(((n * g.c_out + o) * od + z) * oh + yy) * ow + xx] as f64;
                gb[o] += gv;
                for c in 0..cin_g {
                    let ci = grp * cin_g + c;
                    for (a, bb, cc) in
                        (0..kd).flat_map(|a| (0..kh).flat_map(move |bb| (0..kw).map(move |cc| (a, bb, cc))))
                    {
                        let (Some(sd), Some(sh), Some(sw)) = (
                            source(g.mode, at(0, z, a), id),
                            source(g.mode, at(1, yy, bb), ih),
                            source(g.mode, at(2, xx, cc), iw),
                        ) else {
                            continue;
                        };
                        let xi = (((n * g.c_in + ci) * id + sd) * ih + sh) * iw + sw;
                        let wi = (((o * cin_g + c) * kd + a) * kh + bb) * kw + cc;
                        gx[xi] += w[wi] as f64 * gv;
                        gw[wi] += x[xi] as f64 * gv;
                    }
                }
            }
        }
    }
    let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (f(gx), f(gw), if g.bias { f(gb) } else { Vec::new() })
}

/// Reference transposed convolution: every input element scatters `x · w` into the output.
pub fn conv_transpose_reference(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (cin_g, cout_g) = (g.c_in / g.groups, g.c_out / g.groups);
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let to = |d: usize, i: usize, k: usize| (i * g.stride[d] + k * g.dilation[d]) as isize - g.pad[d] as isize;
    let inside = |v: isize, n: usize| (0..n as isize).contains(&v).then_some(v as usize);
    let mut y = vec![0.0f64; g.n * g.c_out * od * oh * ow];
    for n in 0..g.n {
        for c in 0..g.c_in {
            let grp = c / cin_g;
            for (z, yy, xx) in (0..id).flat_map(|z| (0..ih).flat_map(move |yy| (0..iw).map(move |xx| (z, yy, xx)))) {
                let xv = x[(((n * g.c_in + c) * id + z) * ih + yy) * iw + xx] as f64;
                for oc in 0..cout_g {
                    let o = grp * cout_g + oc;
                    for (a, bb, cc) in
                        (0..kd).flat_map(|a| (0..kh).flat_map(move |bb| (0..kw).map(move |cc| (a, bb, cc))))
                    {
                        let (Some(pd), Some(ph), Some(pw)) = (
                            inside(to(0, z, a), od),
                            inside(to(1, yy, bb), oh),
                            inside(to(2, xx, cc), ow),
                        ) else {
                            continue;
                        };
                        let wv = w[(((c * cout_g + oc) * kd + a) * kh + bb) * kw + cc] as f64;
                        y[(((n * g.c_out + o) * od + pd) * oh + ph) * ow + pw] += xv * wv;
                    }
                }
            }
        }
    }
    let sp = od * oh * ow;
    y.iter()
        .enumerate()
        .map(|(i, &v)| (if g.bias { v + b[i / sp % g.c_out] as f64 } else { v }) as f32)
        .collect()
}
