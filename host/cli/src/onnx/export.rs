//! A [`Model`] as an ONNX graph ([`to_onnx`]): one ONNX node (or a few) per computing layer, in
//! the plan's order, the weights as initializers.
//!
//! The graph's input is named `input`, `[batch, *model.input]` with a symbolic batch, holding
//! what `torchlet predict` feeds the model (images as RGB in `[0, 1]`, NCHW, no normalisation);
//! its output is `logits`, `[batch, *output shape]`. Node and value names are the model's
//! layer paths (`features.0`, `fc1`: the `state_dict` prefixes), initializers
//! `<path>.weight`, `<path>.bias`, `<path>.running_mean`, ... as PyTorch names them. The class
//! names go into the metadata (`classes`, one per line).
//!
//! Eval-mode semantics: BatchNorm with its running statistics, Dropout dropped (an
//! `Identity`). A layer without an ONNX operator (or one this exporter does not write) is an
//! [`OnnxError::Unsupported`] naming it.

use prost::Message;
use torchlet::ops::activation::{Approximate, Softplus};
use torchlet::ops::geom::{ConvGeom, PaddingMode, PoolGeom};
use torchlet::plan::{Exec, Mode, Node, INPUT};

use super::proto::*;
use super::OnnxError;
use crate::model::Model;

/// ONNX IR version written (ONNX 1.10+, onnxruntime 1.10+ read it).
pub const IR_VERSION: i64 = 8;
/// The default opset (`--opset`).
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets [`to_onnx`] writes: every operator it uses exists with these semantics in all of them.
pub const OPSETS: std::ops::RangeInclusive<i64> = 14..=21;

/// The ONNX file of `model` with operator set `opset` ([`OPSETS`]).
///
/// # Errors
/// [`OnnxError::Opset`] outside [`OPSETS`]; [`OnnxError::Unsupported`] naming the first layer
/// without an ONNX form; [`OnnxError::Model`] if the model does not plan.
pub fn to_onnx(model: &Model, opset: i64) -> Result<Vec<u8>, OnnxError> {
    if !OPSETS.contains(&opset) {
        return Err(OnnxError::Opset {
            found: opset,
            min: *OPSETS.start(),
            max: *OPSETS.end(),
        });
    }
    let plan = model.plan(1, Mode::Inference)?;
    let paths = model.node_paths()?;
    let nodes = plan.nodes();
    let mut g = Graph {
        opset,
        ..Graph::default()
    };
    let value = |i: u16| -> String {
        if i == INPUT {
            "input".to_string()
        } else if i as usize + 1 == nodes.len() {
            "logits".to_string()
        } else {
            paths[i as usize].clone()
        }
    };
    for (i, node) in nodes.iter().enumerate() {
        let at = Layer {
            node,
            path: &paths[i],
            x: value(node.inputs[0]),
            x2: value(node.inputs[1]),
            y: value(i as u16),
            params: &model.params[node.param_offset..node.param_offset + node.param_len()],
            state: &model.state[node.state_offset..node.state_offset + node.state_len],
        };
        g.layer(&at)?;
    }
    let dims = |shape: &[usize]| {
        std::iter::once(DimValue::Param("batch".into()))
            .chain(shape.iter().map(|&d| DimValue::Value(d as i64)))
            .map(|v| Dimension { value: Some(v) })
            .collect()
    };
    let io = |name: &str, shape: &[usize]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims(shape) }),
            }),
        }),
    };
    let graph = GraphProto {
        node: g.nodes,
        name: model.name.clone(),
        initializer: g.inits,
        input: vec![io("input", model.input.dims())],
        output: vec![io("logits", plan.output_shape().dims())],
        ..Default::default()
    };
    let file = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "torchlet".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "{} exported by torchlet; input: what `torchlet predict` feeds it",
            model.name
        ),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        metadata_props: vec![StringStringEntryProto {
            key: "classes".into(),
            value: model.classes.join("\n"),
        }],
        ..Default::default()
    };
    Ok(file.encode_to_vec())
}

/// One computing layer of the plan and the names around it.
struct Layer<'a> {
    node: &'a Node,
    path: &'a str,
    /// The input value (and the second input of `Add`/`Concat`).
    x: String,
    x2: String,
    /// The output value.
    y: String,
    /// The node's weight and bias, in the plan's order.
    params: &'a [f32],
    /// The node's non-trainable state (BatchNorm: running mean, variance, count).
    state: &'a [f32],
}

impl Layer<'_> {
    fn unsupported(&self, why: &str) -> OnnxError {
        OnnxError::Unsupported {
            layer: self.path.to_string(),
            op: self.node.op_name,
            why: why.to_string(),
        }
    }
    /// Spatial dims of the input (1, 2 or 3).
    fn rank(&self) -> usize {
        self.node.in_shape.dims().len().saturating_sub(1).clamp(1, 3)
    }
    fn weight(&self) -> &[f32] {
        &self.params[..self.node.weight_len]
    }
    fn bias(&self) -> &[f32] {
        &self.params[self.node.weight_len..]
    }
}

/// The graph being written.
#[derive(Default)]
struct Graph {
    opset: i64,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

fn attr_ints(name: &str, v: impl IntoIterator<Item = usize>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.into_iter().map(|x| x as i64).collect(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}
fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: ATTR_INT,
        ..Default::default()
    }
}
fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: ATTR_FLOAT,
        ..Default::default()
    }
}
fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: v.as_bytes().to_vec(),
        r#type: ATTR_STRING,
        ..Default::default()
    }
}

impl Graph {
    /// Adds a node `op` named `name` from `inputs` to `outputs`.
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: name.into(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
    }

    /// Adds a float initializer and returns its name.
    fn init(&mut self, name: String, dims: &[usize], data: &[f32]) -> String {
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds an int64 initializer and returns its name.
    fn init_i64(&mut self, name: String, data: &[i64]) -> String {
        self.inits.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// A one-input, one-output node without attributes.
    fn unary(&mut self, op: &str, l: &Layer<'_>) {
        self.node(op, l.path, &[&l.x], &l.y, vec![]);
    }

    /// The ONNX nodes of one layer.
    fn layer(&mut self, l: &Layer<'_>) -> Result<(), OnnxError> {
        let p = l.path;
        match l.node.exec {
            Exec::Conv(g) => self.conv(l, &g)?,
            Exec::MaxPool(g) => self.pool("MaxPool", l, &g),
            Exec::AvgPool(g) => self.pool("AveragePool", l, &g),
            Exec::AdaptiveAvgPool(g) | Exec::AdaptiveMaxPool(g) => {
                let avg = matches!(l.node.exec, Exec::AdaptiveAvgPool(_));
                let r = l.rank();
                let (i, o) = (&g.input[3 - r..], &g.output[3 - r..]);
                if o.iter().all(|&d| d == 1) {
                    self.unary(if avg { "GlobalAveragePool" } else { "GlobalMaxPool" }, l);
                } else if i.iter().zip(o).all(|(&i, &o)| i % o == 0) {
                    let k: Vec<usize> = i.iter().zip(o).map(|(&i, &o)| i / o).collect();
                    let attrs = vec![attr_ints("kernel_shape", k.clone()), attr_ints("strides", k)];
                    self.node(if avg { "AveragePool" } else { "MaxPool" }, p, &[&l.x], &l.y, attrs);
                } else {
                    return Err(l.unsupported("an adaptive pool whose input size is not a multiple of its output size"));
                }
            }
            Exec::ReLU => self.unary("Relu", l),
            Exec::Sigmoid => self.unary("Sigmoid", l),
            Exec::Tanh => self.unary("Tanh", l),
            Exec::LeakyReLU(s) => self.node("LeakyRelu", p, &[&l.x], &l.y, vec![attr_float("alpha", s)]),
            Exec::ELU(a) => self.node("Elu", p, &[&l.x], &l.y, vec![attr_float("alpha", a)]),
            Exec::ReLU6 => {
                let lo = self.init(format!("{p}.min"), &[], &[0.0]);
                let hi = self.init(format!("{p}.max"), &[], &[6.0]);
                self.node("Clip", p, &[&l.x, &lo, &hi], &l.y, vec![]);
            }
            Exec::Hardsigmoid => {
                let attrs = vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)];
                self.node("HardSigmoid", p, &[&l.x], &l.y, attrs);
            }
            Exec::Hardswish => self.unary("HardSwish", l),
            Exec::SiLU => {
                let s = format!("{p}/sigmoid");
                self.node("Sigmoid", &s, &[&l.x], &s, vec![]);
                self.node("Mul", p, &[&l.x, &s], &l.y, vec![]);
            }
            Exec::GELU(Approximate::None) => self.gelu(l),
            Exec::GELU(Approximate::Tanh) => return Err(l.unsupported("GELU(approximate='tanh') is not exported")),
            Exec::Softplus(s) => self.softplus(l, s),
            Exec::Mish => {
                let sp = format!("{p}/softplus");
                let t = format!("{p}/tanh");
                self.node("Softplus", &sp, &[&l.x], &sp, vec![]);
                self.node("Tanh", &t, &[&sp], &t, vec![]);
                self.node("Mul", p, &[&l.x, &t], &l.y, vec![]);
            }
            Exec::Softmax(g) | Exec::LogSoftmax(g) => {
                let dims = l.node.in_shape.dims();
                // The axis whose size is `g.axis` with `g.inner` values after it.
                let axis = (0..dims.len())
                    .find(|&d| dims[d] == g.axis && dims[d + 1..].iter().product::<usize>() == g.inner)
                    .ok_or_else(|| l.unsupported("a softmax axis that is not one of the input's dims"))?;
                let op = if matches!(l.node.exec, Exec::Softmax(_)) {
                    "Softmax"
                } else {
                    "LogSoftmax"
                };
                self.node(op, p, &[&l.x], &l.y, vec![attr_int("axis", axis as i64 + 1)]);
            }
            Exec::BatchNorm(g) => {
                if !g.track_running_stats {
                    return Err(
                        l.unsupported("a BatchNorm without running statistics uses batch statistics in eval mode")
                    );
                }
                let c = g.c;
                let (w, b) = if g.affine {
                    (l.weight().to_vec(), l.bias().to_vec())
                } else {
                    (vec![1.0; c], vec![0.0; c])
                };
                let scale = self.init(format!("{p}.weight"), &[c], &w);
                let bias = self.init(format!("{p}.bias"), &[c], &b);
                let mean = self.init(format!("{p}.running_mean"), &[c], &l.state[..c]);
                let var = self.init(format!("{p}.running_var"), &[c], &l.state[c..2 * c]);
                let attrs = vec![attr_float("epsilon", g.eps)];
                self.node(
                    "BatchNormalization",
                    p,
                    &[&l.x, &scale, &bias, &mean, &var],
                    &l.y,
                    attrs,
                );
            }
            Exec::PReLU(g) => {
                // One slope, or one per channel broadcast over the spatial dims.
                let mut dims = vec![g.num_parameters];
                if g.num_parameters > 1 {
                    dims.extend(std::iter::repeat_n(1, l.node.in_shape.dims().len().saturating_sub(1)));
                }
                let w = self.init(format!("{p}.weight"), &dims, l.weight());
                self.node("PRelu", p, &[&l.x, &w], &l.y, vec![]);
            }
            Exec::Dropout(_) | Exec::ChannelDropout(..) => self.unary("Identity", l),
            Exec::Linear(g) => {
                let w = self.init(format!("{p}.weight"), &[g.out_f, g.in_f], l.weight());
                let mut inputs = vec![l.x.as_str(), w.as_str()];
                let b;
                if g.bias {
                    b = self.init(format!("{p}.bias"), &[g.out_f], l.bias());
                    inputs.push(&b);
                }
                if l.node.in_shape.dims().len() == 1 {
                    self.node("Gemm", p, &inputs, &l.y, vec![attr_int("transB", 1)]);
                } else {
                    return Err(l.unsupported("a Linear over more than one input dimension is not exported"));
                }
            }
            Exec::Copy => {
                let out = l.node.out_shape.dims();
                if out.len() == 1 {
                    self.node("Flatten", p, &[&l.x], &l.y, vec![attr_int("axis", 1)]);
                } else {
                    let shape: Vec<i64> = std::iter::once(-1).chain(out.iter().map(|&d| d as i64)).collect();
                    let s = self.init_i64(format!("{p}.shape"), &shape);
                    self.node("Reshape", p, &[&l.x, &s], &l.y, vec![]);
                }
            }
            Exec::Add => self.node("Add", p, &[&l.x, &l.x2], &l.y, vec![]),
            Exec::Concat(_) => {
                let (a, b) = (l.node.in_shape.dims(), l.node.in_shape2.dims());
                let axis = (0..a.len()).find(|&d| a[d] != b[d]).unwrap_or(0);
                self.node(
                    "Concat",
                    p,
                    &[&l.x, &l.x2],
                    &l.y,
                    vec![attr_int("axis", axis as i64 + 1)],
                );
            }
            Exec::Pad2d(g) => {
                let r = l.rank();
                // PyTorch's (left, right, top, bottom, front, back), last dim first.
                let begin: Vec<usize> = (0..r).rev().map(|d| g.padding[2 * d]).collect();
                let end: Vec<usize> = (0..r).rev().map(|d| g.padding[2 * d + 1]).collect();
                self.pad(l, g.mode, &begin, &end, &l.x, &l.y)?;
            }
            _ => return Err(l.unsupported("this layer has no ONNX form in torchlet's exporter")),
        }
        Ok(())
    }

    /// `Pad` of the spatial dims (`begin`, `end`: per spatial dim, outermost first).
    fn pad(
        &mut self,
        l: &Layer<'_>,
        mode: PaddingMode,
        begin: &[usize],
        end: &[usize],
        x: &str,
        y: &str,
    ) -> Result<(), OnnxError> {
        let mode = match mode {
            PaddingMode::Zeros => "constant",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "edge",
            PaddingMode::Circular if self.opset >= 19 => "wrap",
            PaddingMode::Circular => return Err(l.unsupported("circular padding needs --opset 19 or later")),
        };
        let pads: Vec<i64> = [0, 0]
            .into_iter()
            .chain(begin.iter().map(|&v| v as i64))
            .chain([0, 0])
            .chain(end.iter().map(|&v| v as i64))
            .collect();
        let name = format!("{}.pads", l.path);
        let pads = self.init_i64(name, &pads);
        self.node("Pad", y, &[x, &pads], y, vec![attr_string("mode", mode)]);
        Ok(())
    }

    fn conv(&mut self, l: &Layer<'_>, g: &ConvGeom) -> Result<(), OnnxError> {
        let r = l.rank();
        let sp = 3 - r;
        let p = l.path;
        let mut wdims = vec![g.c_out, g.c_in / g.groups];
        wdims.extend_from_slice(&g.kernel[sp..]);
        let w = self.init(format!("{p}.weight"), &wdims, l.weight());
        let mut inputs = vec![String::new(), w];
        if g.bias {
            inputs.push(self.init(format!("{p}.bias"), &[g.c_out], l.bias()));
        }
        let pads = &g.pad[sp..];
        let mut x = l.x.clone();
        let zero_pads = vec![0; r];
        let conv_pads = if g.mode != PaddingMode::Zeros && pads.iter().any(|&v| v > 0) {
            let padded = format!("{p}/pad");
            self.pad(l, g.mode, pads, pads, &l.x, &padded)?;
            x = padded;
            &zero_pads[..]
        } else {
            pads
        };
        inputs[0] = x;
        let attrs = vec![
            attr_ints("kernel_shape", g.kernel[sp..].to_vec()),
            attr_ints("strides", g.stride[sp..].to_vec()),
            attr_ints("pads", conv_pads.iter().chain(conv_pads).copied()),
            attr_ints("dilations", g.dilation[sp..].to_vec()),
            attr_int("group", g.groups as i64),
        ];
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node("Conv", p, &refs, &l.y, attrs);
        Ok(())
    }

    fn pool(&mut self, op: &str, l: &Layer<'_>, g: &PoolGeom) {
        let sp = 3 - l.rank();
        // PyTorch's ceil_mode shows as an output one longer than the floor formula gives.
        let ceil = (sp..3).any(|d| {
            let span = g.input[d] + 2 * g.pad[d];
            let reach = g.dilation[d] * (g.kernel[d] - 1) + 1;
            span >= reach && g.output[d] > (span - reach) / g.stride[d] + 1
        });
        let mut attrs = vec![
            attr_ints("kernel_shape", g.kernel[sp..].to_vec()),
            attr_ints("strides", g.stride[sp..].to_vec()),
            attr_ints("pads", g.pad[sp..].iter().chain(&g.pad[sp..]).copied()),
            attr_int("ceil_mode", i64::from(ceil)),
        ];
        if op == "MaxPool" {
            attrs.push(attr_ints("dilations", g.dilation[sp..].to_vec()));
        } else {
            attrs.push(attr_int("count_include_pad", i64::from(g.count_include_pad)));
        }
        self.node(op, l.path, &[&l.x], &l.y, attrs);
    }

    /// `x * 0.5 * (1 + erf(x / sqrt 2))`, PyTorch's exact GELU (ONNX's `Gelu` is opset 20).
    fn gelu(&mut self, l: &Layer<'_>) {
        let p = l.path;
        let sqrt2 = self.init(format!("{p}.sqrt2"), &[], &[std::f32::consts::SQRT_2]);
        let one = self.init(format!("{p}.one"), &[], &[1.0]);
        let half = self.init(format!("{p}.half"), &[], &[0.5]);
        let (d, e, a, m) = (
            format!("{p}/div"),
            format!("{p}/erf"),
            format!("{p}/add"),
            format!("{p}/mul"),
        );
        self.node("Div", &d, &[&l.x, &sqrt2], &d, vec![]);
        self.node("Erf", &e, &[&d], &e, vec![]);
        self.node("Add", &a, &[&e, &one], &a, vec![]);
        self.node("Mul", &m, &[&l.x, &a], &m, vec![]);
        self.node("Mul", p, &[&m, &half], &l.y, vec![]);
    }

    /// `Softplus` with PyTorch's `beta`: `softplus(beta x) / beta` (its `threshold` linear
    /// region equals the formula to f32 rounding).
    fn softplus(&mut self, l: &Layer<'_>, s: Softplus) {
        let p = l.path;
        if s.beta == 1.0 {
            return self.unary("Softplus", l);
        }
        let beta = self.init(format!("{p}.beta"), &[], &[s.beta]);
        let (m, sp) = (format!("{p}/scale"), format!("{p}/softplus"));
        self.node("Mul", &m, &[&l.x, &beta], &m, vec![]);
        self.node("Softplus", &sp, &[&m], &sp, vec![]);
        self.node("Div", p, &[&sp, &beta], &l.y, vec![]);
    }
}
