//! `print(model)`: a model as PyTorch prints it.
//!
//! [`model_repr`] formats a `&[Layer]` tree exactly as PyTorch's `print(nn.Sequential(...))`
//! does for the same layers (checked against PyTorch 2.x in the tests), so a torchlet model can
//! be compared with its PyTorch twin line by line. PyTorch prints keyword arguments the way
//! they were passed, int or tuple; a torchlet spec only keeps the values, so pools print an int
//! when every spatial dim is equal, as `nn.MaxPool2d(2)` does, and convolutions always print
//! tuples, as PyTorch normalises them.
//!
//! torchlet's merges have no class in `torch.nn`; they print as the small modules one writes
//! for them in PyTorch, with their branches as children (an empty branch is `Identity()`):
//! `Residual` with `(body)` and `(shortcut)`, `Concat` with `(a)` and `(b)`, and `Bilinear`
//! (its weight and bias belong to the merge) with `(a)` and `(b)`. The child names are the ones
//! the model file's state-dict names use.

use torchlet::layer::{Approximate, ConvTranspose, Kind, Layer, Merge, Op, Padding, UpsampleMode};
use torchlet::ops::geom::PaddingMode;

/// The whole model as PyTorch's `print(model)` shows an `nn.Sequential` of `layers`.
pub fn model_repr(layers: &[Layer]) -> String {
    sequential_repr(layers)
}

/// One layer as PyTorch's `repr(module)`; containers span several lines.
pub fn layer_repr(layer: &Layer) -> String {
    match layer.kind {
        Kind::Op(op) => op_repr(&op),
        Kind::Sequential(inner) => sequential_repr(inner),
        Kind::Merge { merge, a, b } => {
            let (class, extra, names) = match merge {
                Merge::Add => ("Residual".to_string(), String::new(), ["body", "shortcut"]),
                Merge::Concat => ("Concat".to_string(), String::new(), ["a", "b"]),
                Merge::Bilinear(bl) => (
                    "Bilinear".to_string(),
                    format!(
                        "in1_features={}, in2_features={}, out_features={}, bias={}",
                        bl.in1_features,
                        bl.in2_features,
                        bl.out_features,
                        py_bool(bl.bias)
                    ),
                    ["a", "b"],
                ),
            };
            let children = [
                (names[0].to_string(), branch_repr(a)),
                (names[1].to_string(), branch_repr(b)),
            ];
            module(&class, &extra, &children)
        }
        Kind::Misuse(what) => format!("Invalid({what})"),
    }
}

/// A computing layer as PyTorch's `repr`: `Conv2d(3, 32, kernel_size=(5, 5), stride=(1, 1))`.
pub fn op_repr(op: &Op) -> String {
    format!("{}({})", op.torch_name(), extra_repr(op))
}

/// PyTorch's `extra_repr()` of a computing layer: what goes between the parentheses.
pub fn extra_repr(op: &Op) -> String {
    match op {
        Op::Conv(c) => {
            let d = c.dims as usize;
            let mut s = format!(
                "{}, {}, kernel_size={}, stride={}",
                c.in_channels,
                c.out_channels,
                tuple(&c.kernel_size, d),
                tuple(&c.stride, d)
            );
            match c.padding {
                Padding::Explicit(p) if last(&p, d).iter().any(|&v| v != 0) => {
                    s += &format!(", padding={}", tuple(&p, d))
                }
                Padding::Explicit(_) => {}
                Padding::Same => s += ", padding=same",
                Padding::Valid => s += ", padding=valid",
            }
            if last(&c.dilation, d).iter().any(|&v| v != 1) {
                s += &format!(", dilation={}", tuple(&c.dilation, d));
            }
            if c.groups != 1 {
                s += &format!(", groups={}", c.groups);
            }
            if !c.bias {
                s += ", bias=False";
            }
            if c.padding_mode != PaddingMode::Zeros {
                s += &format!(", padding_mode={}", padding_mode_name(c.padding_mode));
            }
            s
        }
        Op::ConvTranspose(c) => conv_transpose_repr(c, 2),
        Op::MaxPool(p) => {
            let d = p.dims as usize;
            format!(
                "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
                int_or_tuple(&p.kernel_size, d),
                int_or_tuple(&p.stride, d),
                int_or_tuple(&p.padding, d),
                int_or_tuple(&p.dilation, d),
                py_bool(p.ceil_mode)
            )
        }
        Op::AvgPool(p) => {
            let d = p.dims as usize;
            // AvgPool1d normalises its arguments to 1-tuples; 2-d and 3-d keep them as passed.
            let f = |a: &[usize; 3]| {
                if d == 1 {
                    tuple(a, 1)
                } else {
                    int_or_tuple(a, d)
                }
            };
            format!(
                "kernel_size={}, stride={}, padding={}",
                f(&p.kernel_size),
                f(&p.stride),
                f(&p.padding)
            )
        }
        Op::AdaptiveAvgPool(a) | Op::AdaptiveMaxPool(a) => {
            if a.dims == 1 {
                format!("output_size={}", a.output_size[2])
            } else {
                format!("output_size={}", tuple(&a.output_size, a.dims as usize))
            }
        }
        Op::MaxUnpool(u) => format!(
            "kernel_size={}, stride={}, padding={}",
            tuple(&u.kernel_size, 2),
            tuple(&u.stride, 2),
            tuple(&u.padding, 2)
        ),
        Op::Pad2d(p) => tuple(&p.padding, 4),
        Op::ConvTransposeNd(c, d) => conv_transpose_repr(c, *d as usize),
        Op::MaxUnpoolNd(u, d) => {
            let d = *d as usize;
            let (k, s, p) = (tuple(&u.kernel_size, d), tuple(&u.stride, d), tuple(&u.padding, d));
            format!("kernel_size={k}, stride={s}, padding={p}")
        }
        Op::Pad(p) => {
            let items: Vec<String> = p.padding[..2 * p.dims as usize].iter().map(usize::to_string).collect();
            format!("({})", items.join(", "))
        }
        Op::LeakyReLU(slope) => format!("negative_slope={}", py_float(*slope)),
        Op::Softmax(dim) | Op::LogSoftmax(dim) => format!("dim={dim}"),
        Op::BatchNorm(b) => format!(
            "{}, eps={}, momentum={}, affine={}, bias={}, track_running_stats={}",
            b.num_features,
            py_float(b.eps),
            b.momentum.map_or("None".to_string(), py_float),
            py_bool(b.affine),
            py_bool(b.affine),
            py_bool(b.track_running_stats)
        ),
        Op::Dropout(p) | Op::ChannelDropout(p, _) => format!("p={}, inplace=False", py_float(*p)),
        Op::Linear(l) => {
            format!(
                "in_features={}, out_features={}, bias={}",
                l.in_features,
                l.out_features,
                py_bool(l.bias)
            )
        }
        Op::Flatten => "start_dim=1, end_dim=-1".to_string(),
        Op::ChannelShuffle(groups) => format!("groups={groups}"),
        Op::Upsample(u) => {
            let mode = match u.mode {
                UpsampleMode::Nearest => "nearest",
                UpsampleMode::Bilinear => "bilinear",
            };
            if u.scale_factor > 0.0 {
                format!("scale_factor={}, mode='{mode}'", py_float(u.scale_factor))
            } else {
                format!("size=({}, {}), mode='{mode}'", u.size[0], u.size[1])
            }
        }
        Op::ReLU | Op::Sigmoid | Op::Tanh | Op::Identity => String::new(),
        Op::ELU(alpha) => format!("alpha={}", py_float(*alpha)),
        Op::GELU(a) => match a {
            Approximate::None => "approximate='none'".to_string(),
            Approximate::Tanh => "approximate='tanh'".to_string(),
        },
        Op::Softplus(p) => format!("beta={}, threshold={}", py_float(p.beta), py_float(p.threshold)),
        Op::PReLU(p) => format!("num_parameters={}", p.num_parameters),
        Op::SiLU | Op::Hardswish | Op::Hardsigmoid | Op::Mish | Op::ReLU6 => String::new(),
    }
}

/// The `extra_repr` of `nn.ConvTranspose{d}d`.
fn conv_transpose_repr(c: &ConvTranspose, d: usize) -> String {
    let mut s = format!(
        "{}, {}, kernel_size={}, stride={}",
        c.in_channels,
        c.out_channels,
        tuple(&c.kernel_size, d),
        tuple(&c.stride, d)
    );
    if last(&c.padding, d).iter().any(|&v| v != 0) {
        s += &format!(", padding={}", tuple(&c.padding, d));
    }
    if last(&c.dilation, d).iter().any(|&v| v != 1) {
        s += &format!(", dilation={}", tuple(&c.dilation, d));
    }
    if last(&c.output_padding, d).iter().any(|&v| v != 0) {
        s += &format!(", output_padding={}", tuple(&c.output_padding, d));
    }
    if c.groups != 1 {
        s += &format!(", groups={}", c.groups);
    }
    if !c.bias {
        s += ", bias=False";
    }
    s
}

/// Python's `repr(float)` of an `f32`: the shortest digits that give the same `f32` back,
/// in fixed notation for exponents in `-4..16` (`0.1`, `5.0`) and scientific otherwise
/// (`1e-05`, `1.5e+16`).
pub fn py_float(v: f32) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.25e-5".
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let (int, frac) = if exp >= 0 {
            let e = exp as usize + 1;
            if digits.len() <= e {
                (format!("{digits}{}", "0".repeat(e - digits.len())), String::new())
            } else {
                (digits[..e].to_string(), digits[e..].to_string())
            }
        } else {
            ("0".to_string(), format!("{}{digits}", "0".repeat((-exp - 1) as usize)))
        };
        let frac = if frac.is_empty() { "0".to_string() } else { frac };
        format!("{sign}{int}.{frac}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn padding_mode_name(m: PaddingMode) -> &'static str {
    match m {
        PaddingMode::Zeros => "zeros",
        PaddingMode::Reflect => "reflect",
        PaddingMode::Replicate => "replicate",
        PaddingMode::Circular => "circular",
    }
}

/// The last `d` entries of a spatial array (`[D, H, W]` keeps 1s in front of lower dims).
fn last<const N: usize>(a: &[usize; N], d: usize) -> &[usize] {
    &a[N - d.min(N)..]
}

/// A Python tuple of the last `d` entries: `(3,)`, `(5, 5)`.
fn tuple<const N: usize>(a: &[usize; N], d: usize) -> String {
    let items: Vec<String> = last(a, d).iter().map(usize::to_string).collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}

/// An int when the last `d` entries are equal, else a tuple.
fn int_or_tuple(a: &[usize; 3], d: usize) -> String {
    let l = last(a, d);
    if l.iter().all(|&v| v == l[0]) {
        l[0].to_string()
    } else {
        tuple(a, d)
    }
}

fn sequential_repr(layers: &[Layer]) -> String {
    let children: Vec<(String, String)> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                if l.name.is_empty() {
                    i.to_string()
                } else {
                    l.name.to_string()
                },
                layer_repr(l),
            )
        })
        .collect();
    module("Sequential", "", &children)
}

/// A merge branch: an `nn.Sequential`, or `Identity()` when empty.
fn branch_repr(layers: &[Layer]) -> String {
    if layers.is_empty() {
        "Identity()".to_string()
    } else {
        sequential_repr(layers)
    }
}

/// PyTorch's `Module.__repr__`: the extra repr, then `(name): child` lines indented by two.
fn module(class: &str, extra: &str, children: &[(String, String)]) -> String {
    let mut lines: Vec<String> = if extra.is_empty() {
        Vec::new()
    } else {
        extra.lines().map(String::from).collect()
    };
    let extra_count = lines.len();
    for (name, repr) in children {
        lines.push(format!("({name}): {}", add_indent(repr, 2)));
    }
    let mut s = format!("{class}(");
    if extra_count == 1 && children.is_empty() {
        s += &lines[0];
    } else if !lines.is_empty() {
        s += "\n  ";
        s += &lines.join("\n  ");
        s += "\n";
    }
    s += ")";
    s
}

/// PyTorch's `_addindent`: every line but the first gets `n` more spaces.
fn add_indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut lines = s.split('\n');
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines {
        out.push('\n');
        out += &pad;
        out += l;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use torchlet::layer::*;

    #[test]
    fn python_float_repr() {
        for (v, s) in [
            (1e-5f32, "1e-05"),
            (0.1, "0.1"),
            (0.01, "0.01"),
            (0.5, "0.5"),
            (5.0, "5.0"),
            (0.0, "0.0"),
            (-0.25, "-0.25"),
            (1e-3, "0.001"),
            (1e-4, "0.0001"),
            (1.5e16, "1.5e+16"),
            (123456.0, "123456.0"),
            (1e-8, "1e-08"),
        ] {
            assert_eq!(py_float(v), s, "{v}");
        }
    }

    // Expected strings printed by PyTorch 2.x (`print(nn.Conv2d(3, 32, 5, padding=2))` etc.).
    #[test]
    fn single_layers_match_pytorch() {
        let cases: [(Layer, &str); 26] = [
            (conv2d(3, 32, 5).padding(2), "Conv2d(3, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"),
            (conv1d(3, 4, 3), "Conv1d(3, 4, kernel_size=(3,), stride=(1,))"),
            (
                conv3d(2, 2, 3).stride(2).dilation(2).groups(2).bias(false).padding_mode(PaddingMode::Reflect),
                "Conv3d(2, 2, kernel_size=(3, 3, 3), stride=(2, 2, 2), dilation=(2, 2, 2), groups=2, bias=False, padding_mode=reflect)",
            ),
            (conv2d(3, 3, 3).padding_same(), "Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1), padding=same)"),
            (
                conv2d(3, 3, 1).kernel_size_each(&[3, 5]).padding_valid(),
                "Conv2d(3, 3, kernel_size=(3, 5), stride=(1, 1), padding=valid)",
            ),
            (
                conv_transpose2d(4, 2, 3).stride(2).output_padding(1),
                "ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))",
            ),
            (max_pool2d(2), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"),
            (max_pool1d(3), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"),
            (
                max_pool2d(3).stride(2).padding(1).ceil_mode(true),
                "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)",
            ),
            (max_unpool2d(2), "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"),
            (avg_pool1d(2), "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))"),
            (avg_pool2d(2), "AvgPool2d(kernel_size=2, stride=2, padding=0)"),
            (avg_pool3d(2), "AvgPool3d(kernel_size=2, stride=2, padding=0)"),
            (adaptive_avg_pool1d(3), "AdaptiveAvgPool1d(output_size=3)"),
            (adaptive_avg_pool2d(1, 1), "AdaptiveAvgPool2d(output_size=(1, 1))"),
            (adaptive_max_pool2d(2, 3), "AdaptiveMaxPool2d(output_size=(2, 3))"),
            (reflection_pad2d([1, 2, 3, 4]), "ReflectionPad2d((1, 2, 3, 4))"),
            (zero_pad2d([1, 1, 1, 1]), "ZeroPad2d((1, 1, 1, 1))"),
            (leaky_relu(0.01), "LeakyReLU(negative_slope=0.01)"),
            (log_softmax(-1), "LogSoftmax(dim=-1)"),
            (
                batch_norm2d(16),
                "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
            ),
            (
                batch_norm1d(8).eps(1e-3).momentum(None).affine(false).track_running_stats(false),
                "BatchNorm1d(8, eps=0.001, momentum=None, affine=False, bias=False, track_running_stats=False)",
            ),
            (dropout(0.25), "Dropout(p=0.25, inplace=False)"),
            (linear(3, 2).bias(false), "Linear(in_features=3, out_features=2, bias=False)"),
            (lazy_linear(10), "LazyLinear(in_features=0, out_features=10, bias=True)"),
            (flatten(), "Flatten(start_dim=1, end_dim=-1)"),
        ];
        for (layer, expected) in cases {
            assert_eq!(layer_repr(&layer), expected);
        }
        assert_eq!(layer_repr(&relu()), "ReLU()");
        assert_eq!(layer_repr(&identity()), "Identity()");
        assert_eq!(layer_repr(&sequential(&[])), "Sequential()");
    }

    // `print(nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh())))` in PyTorch.
    #[test]
    fn nesting_matches_pytorch() {
        static INNER: [Layer; 1] = [tanh()];
        static NET: [Layer; 2] = [relu(), sequential(&INNER)];
        assert_eq!(
            model_repr(&NET),
            "Sequential(\n  (0): ReLU()\n  (1): Sequential(\n    (0): Tanh()\n  )\n)"
        );
    }

    #[test]
    fn merges_print_their_branches() {
        static BODY: [Layer; 2] = [conv2d(4, 4, 3).padding(1).named("conv"), relu()];
        static NET: [Layer; 2] = [residual(&BODY, &[]).named("block"), flatten()];
        assert_eq!(
            model_repr(&NET),
            "Sequential(\n  (block): Residual(\n    (body): Sequential(\n      (conv): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n      (1): ReLU()\n    )\n    (shortcut): Identity()\n  )\n  (1): Flatten(start_dim=1, end_dim=-1)\n)"
        );
        static A: [Layer; 1] = [flatten()];
        let b = bilinear(&A, &A, 4, 4, 2);
        // A PyTorch module with this `extra_repr` and children `a`, `b` prints the same.
        assert_eq!(
            layer_repr(&b),
            "Bilinear(\n  in1_features=4, in2_features=4, out_features=2, bias=True\n  (a): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)\n  )\n  (b): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)\n  )\n)"
        );
    }

    /// The TensorBoard graph's info cards (`attr`) hold these lines when the host draws a model
    /// (`train` passes `op_repr` to `add_graph`).
    #[test]
    fn tensorboard_graph_nodes_carry_the_print_line() {
        use crate::summary::graph::graph_def;
        use crate::summary::proto::attr_value::Value;
        use torchlet::Shape;

        static BODY: [Layer; 2] = [conv2d(8, 8, 3).padding(1), relu()];
        static NET: [Layer; 5] = [
            conv2d(3, 8, 3).padding(1).named("stem"),
            residual(&BODY, &[]),
            max_pool2d(2),
            flatten(),
            linear(8 * 4 * 4, 10),
        ];
        let g = graph_def(&NET, Shape::chw(3, 8, 8), &op_repr).unwrap();
        assert_eq!(
            g.node[1].attr["attr"].value,
            Some(Value::S(
                b"Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))".to_vec()
            ))
        );
        // A merge has no print line of its own.
        assert_eq!((g.node[4].op.as_str(), g.node[4].attr.get("attr")), ("Add", None));
    }
}
