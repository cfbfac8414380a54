//! ONNX operators to torchlet layers: one pass over the nodes in topological order that folds
//! constant subgraphs ([`super::fold`]), follows the sample shape of every value computed from
//! the graph input (each layer planned alone on its input shape, so shapes are torchlet's
//! own), and turns each computing node into a [`NodeKind`]: layers with their weights, a
//! merge (`Add`, `Concat` of two computed values), or an alias (`Identity`, `Dropout`, a
//! `Reshape` that changes nothing).

use std::collections::{HashMap, HashSet};

use torchlet::layer::*;
use torchlet::{Mode, Plan, Shape};

use super::attrs::{attr, attr_f, attr_i, attr_ints, attr_s};
use super::fold::{self, BATCH};
use super::graph::Graph;
use super::weights::{decode, transpose, weight, Tensor};
use super::Fail;
use crate::onnx::proto::NodeProto;

/// One element of the layer tree being built: a computing layer with its weights (in the
/// plan's order: weight then bias; BatchNorm state: mean, variance, count), or a merge of two
/// branches.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    Op { op: Op, params: Vec<f32>, state: Vec<f32> },
    Merge { merge: Merge, a: Vec<Item>, b: Vec<Item> },
}

/// What a node became.
#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    /// Folded into a constant (or a tensor source: `Constant`).
    Folded,
    /// Its output is its first input.
    Alias,
    /// Layers applied to its first input.
    Layers(Vec<Item>),
    /// `Add` or `Concat` of its two inputs.
    Merge(Merge),
}

/// The state of the conversion pass.
pub(crate) struct Ctx<'p> {
    pub g: &'p Graph<'p>,
    /// Folded constants.
    pub consts: HashMap<&'p str, Tensor>,
    /// The sample shape (without the batch) of every value computed from the graph input.
    pub shapes: HashMap<&'p str, Vec<usize>>,
    /// Values that are another value (`Identity`, `Dropout`, ...).
    pub alias: HashMap<&'p str, &'p str>,
    /// What each node became, by node index.
    pub kinds: Vec<NodeKind>,
    /// The opset of the default domain.
    pub opset: i64,
    /// Nodes that are a `MatMul` as a Linear without its bias yet.
    matmuls: HashSet<usize>,
}

type R<T> = Result<T, String>;

fn op(o: Op) -> Item {
    Item::Op {
        op: o,
        params: vec![],
        state: vec![],
    }
}

/// `v` in a `[D, H, W]` array with `fill` before it (the layout of torchlet's spatial fields).
fn sp3(v: &[usize], fill: usize) -> R<[usize; 3]> {
    if v.is_empty() || v.len() > 3 {
        return Err(format!("{} spatial dims (1 to 3 are supported)", v.len()));
    }
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    Ok(out)
}

fn usizes(v: &[i64], what: &str) -> R<Vec<usize>> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| format!("{what} {v:?} has a negative value")))
        .collect()
}

impl<'p> Ctx<'p> {
    /// A fresh pass over `g`.
    pub fn new(g: &'p Graph<'p>, opset: i64) -> Ctx<'p> {
        let mut shapes = HashMap::new();
        shapes.insert(g.input, g.input_dims.clone());
        Ctx {
            g,
            consts: HashMap::new(),
            shapes,
            alias: HashMap::new(),
            kinds: vec![NodeKind::Folded; g.nodes.len()],
            opset,
            matmuls: HashSet::new(),
        }
    }

    /// `v` after following aliases.
    pub fn resolve(&self, mut v: &'p str) -> &'p str {
        // Aliases point at earlier values (topological order): the chain ends.
        for _ in 0..self.g.nodes.len() + 1 {
            match self.alias.get(v) {
                Some(&a) => v = a,
                None => break,
            }
        }
        v
    }

    /// Whether `v` is computed from the graph input.
    pub fn is_dynamic(&self, v: &str) -> bool {
        self.shapes.contains_key(self.resolve_str(v))
    }

    fn resolve_str<'a>(&'a self, v: &'a str) -> &'a str {
        let mut v = v;
        for _ in 0..self.g.nodes.len() + 1 {
            match self.alias.get(v) {
                Some(&a) => v = a,
                None => break,
            }
        }
        v
    }

    /// The constant value `v` (folded, an initializer or a `Constant`), or `None` when it is
    /// not a constant.
    pub fn constant(&self, v: &str) -> Result<Option<Tensor>, Fail> {
        let v = self.resolve_str(v);
        if let Some(t) = self.consts.get(v) {
            return Ok(Some(t.clone()));
        }
        match self.g.tensors.get(v) {
            Some(t) => decode(t).map(Some),
            None => Ok(None),
        }
    }

    /// Runs the pass over every node, in topological order.
    pub fn run(&mut self) -> Result<(), Fail> {
        for &i in &self.g.order {
            self.node(i)?;
        }
        Ok(())
    }

    fn node(&mut self, i: usize) -> Result<(), Fail> {
        let g = self.g;
        let n = &g.nodes[i];
        let fail = |why: String| g.fail(i, why);
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(fail(format!(
                "operators of domain '{}' are not supported (only the default ONNX domain)",
                n.domain
            )));
        }
        if n.op_type == "Constant" && g.tensors.contains_key(n.output.first().map_or("", String::as_str)) {
            return Ok(());
        }
        let dynamic: Vec<usize> = (0..n.input.len())
            .filter(|&k| !n.input[k].is_empty() && self.is_dynamic(&n.input[k]))
            .collect();
        let out = n
            .output
            .first()
            .map(String::as_str)
            .ok_or_else(|| fail("a node without outputs".into()))?;
        if n.op_type == "Shape" && !dynamic.is_empty() {
            let dims = &self.shapes[self.resolve(&n.input[dynamic[0]])];
            let full: Vec<i64> = std::iter::once(BATCH).chain(dims.iter().map(|&d| d as i64)).collect();
            self.consts.insert(out, fold::shape_of(&full, n));
            return Ok(());
        }
        if dynamic.is_empty() {
            if !fold::foldable(&n.op_type) {
                return Err(fail(
                    "it computes only on constants, and torchlet folds only shape arithmetic".into(),
                ));
            }
            let inputs = n
                .input
                .iter()
                .map(|v| if v.is_empty() { Ok(None) } else { self.constant(v) })
                .collect::<Result<Vec<_>, _>>()?;
            let t = fold::fold(n, &inputs).map_err(fail)?;
            self.consts.insert(out, t);
            return Ok(());
        }
        for extra in n.output.iter().skip(1).filter(|o| !o.is_empty()) {
            if g.uses.get(extra.as_str()).copied().unwrap_or(0) > 0 || extra == g.output {
                return Err(fail(format!(
                    "its output '{extra}' is used; torchlet computes only the first output"
                )));
            }
        }
        if dynamic != [0] && !matches!(n.op_type.as_str(), "Add" | "Concat") {
            return Err(fail(
                "only its first input may be computed from the graph input; the others must be constants".into(),
            ));
        }
        let x = self.resolve(&n.input[dynamic[0]]);
        let in_dims = self.shapes[x].clone();
        let kind = self.convert(i, n, &in_dims).map_err(fail)?;
        let out_dims = match &kind {
            NodeKind::Alias => {
                self.alias.insert(out, x);
                return Ok(());
            }
            NodeKind::Layers(items) => planned(items, &in_dims).map_err(fail)?,
            NodeKind::Merge(m) => self.merged(n, *m).map_err(fail)?,
            NodeKind::Folded => return Ok(()),
        };
        self.shapes.insert(out, out_dims);
        self.kinds[i] = kind;
        Ok(())
    }

    /// The output shape of a merge of the node's two inputs.
    fn merged(&self, n: &NodeProto, m: Merge) -> R<Vec<usize>> {
        if n.input.len() != 2 {
            return Err(format!("{} inputs (torchlet merges two branches)", n.input.len()));
        }
        let a = &self.shapes[self.resolve_str(&n.input[0])];
        let b = &self.shapes[self.resolve_str(&n.input[1])];
        match m {
            Merge::Add if a == b => Ok(a.clone()),
            Merge::Concat if a.len() == b.len() && a[1..] == b[1..] => {
                let mut d = a.clone();
                d[0] = a[0].checked_add(b[0]).ok_or("overflow")?;
                Ok(d)
            }
            _ => Err(format!(
                "inputs of shapes {a:?} and {b:?} (after the batch) do not merge"
            )),
        }
    }

    /// A constant input `k` of node `n`.
    fn input_const(&self, n: &NodeProto, k: usize) -> R<Option<Tensor>> {
        match n.input.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match self.constant(v).map_err(|e| e.to_string())? {
                Some(t) => Ok(Some(t)),
                None => Err(format!("input {k} ('{v}') must be a constant")),
            },
        }
    }

    fn convert(&mut self, i: usize, n: &NodeProto, x: &[usize]) -> R<NodeKind> {
        let rank = x.len();
        let layers = |v: Vec<Item>| Ok(NodeKind::Layers(v));
        match n.op_type.as_str() {
            "Identity" => Ok(NodeKind::Alias),
            "Dropout" => {
                if let Some(t) = self.input_const(n, 2)? {
                    if t.to_i64().iter().any(|&v| v != 0) {
                        return Err("Dropout in training mode".into());
                    }
                }
                Ok(NodeKind::Alias)
            }
            "Relu" => layers(vec![op(Op::ReLU)]),
            "LeakyRelu" => layers(vec![op(Op::LeakyReLU(attr_f(n, "alpha", 0.01)))]),
            "Sigmoid" => layers(vec![op(Op::Sigmoid)]),
            "Tanh" => layers(vec![op(Op::Tanh)]),
            "Elu" => layers(vec![op(Op::ELU(attr_f(n, "alpha", 1.0)))]),
            "HardSwish" => layers(vec![op(Op::Hardswish)]),
            "HardSigmoid" => {
                let (a, b) = (attr_f(n, "alpha", 0.2), attr_f(n, "beta", 0.5));
                if (a - 1.0 / 6.0).abs() > 1e-6 || (b - 0.5).abs() > 1e-6 {
                    return Err(format!(
                        "alpha {a} and beta {b}: torchlet's Hardsigmoid has 1/6 and 0.5"
                    ));
                }
                layers(vec![op(Op::Hardsigmoid)])
            }
            "Clip" => self.clip(n),
            "Softmax" | "LogSoftmax" => {
                let last = rank as i64;
                let axis = attr_i(n, "axis", if self.opset >= 13 { -1 } else { 1 });
                let axis = if axis < 0 { axis + last + 1 } else { axis };
                if !(1..=last).contains(&axis) || (self.opset < 13 && axis != last) {
                    return Err(format!("axis {axis} of a rank-{} input", rank + 1));
                }
                let o = if n.op_type == "Softmax" {
                    Op::Softmax(axis as i8)
                } else {
                    Op::LogSoftmax(axis as i8)
                };
                layers(vec![op(o)])
            }
            "Conv" => self.conv(n, x).map(NodeKind::Layers),
            "BatchNormalization" => self.batch_norm(n, x).map(NodeKind::Layers),
            "MaxPool" | "AveragePool" => pool(n, x).map(NodeKind::Layers),
            "GlobalAveragePool" | "GlobalMaxPool" => layers(vec![global(n.op_type == "GlobalAveragePool", rank)?]),
            "ReduceMean" | "ReduceMax" => {
                let axes = match self.input_const(n, 1)? {
                    Some(t) => Some(t.to_i64()),
                    None => attr_ints(n, "axes"),
                };
                let mut axes: Vec<i64> = axes
                    .ok_or("a reduction over all dims")?
                    .iter()
                    .map(|&a| if a < 0 { a + rank as i64 + 1 } else { a })
                    .collect();
                axes.sort_unstable();
                if rank < 2 || axes != (2..=rank as i64).collect::<Vec<_>>() {
                    return Err(format!(
                        "axes {axes:?}: torchlet reduces only over all spatial dims (global pooling)"
                    ));
                }
                let mut v = vec![global(n.op_type == "ReduceMean", rank)?];
                if attr_i(n, "keepdims", 1) == 0 {
                    v.push(op(Op::Flatten));
                }
                layers(v)
            }
            "Flatten" => {
                let axis = attr_i(n, "axis", 1);
                if axis != 1 && axis != -(rank as i64) {
                    return Err(format!("axis {axis}: torchlet flattens from dim 1"));
                }
                layers(vec![op(Op::Flatten)])
            }
            "Reshape" | "Squeeze" | "Unsqueeze" => self.reshape(n, x),
            "Gemm" => self.gemm(n, x).map(NodeKind::Layers),
            "MatMul" => {
                let w = self.input_const(n, 1)?.ok_or("MatMul without weights")?;
                let [fin, fout] = w.dims[..] else {
                    return Err(format!("weights of dims {:?} (expected [in, out])", w.dims));
                };
                if x != [fin] {
                    return Err(format!("an input of shape {x:?} with weights [{fin}, {fout}] (torchlet's Linear takes [batch, features])"));
                }
                let w = weight(&w, &n.input[1], &[fin, fout])?;
                self.matmuls.insert(i);
                let lin = Op::Linear(Linear {
                    in_features: fin,
                    out_features: fout,
                    bias: false,
                });
                layers(vec![Item::Op {
                    op: lin,
                    params: transpose(&w, fin, fout),
                    state: vec![],
                }])
            }
            "Add" => self.add(n),
            "Concat" => {
                let axis = attr_i(n, "axis", 0);
                if axis != 1 && axis != -(rank as i64) {
                    return Err(format!("axis {axis}: torchlet concatenates along channels (dim 1)"));
                }
                if n.input.len() != 2 || !n.input.iter().all(|v| self.is_dynamic(v)) {
                    return Err("torchlet concatenates exactly two computed values".into());
                }
                Ok(NodeKind::Merge(Merge::Concat))
            }
            "Pad" => self.pad(n, x).map(NodeKind::Layers),
            other => Err(format!("{other} has no torchlet layer")),
        }
    }

    fn clip(&self, n: &NodeProto) -> R<NodeKind> {
        let bound = |k: usize, name: &str| -> R<Option<f32>> {
            Ok(match self.input_const(n, k)? {
                Some(t) => t.to_f32().first().copied(),
                None => attr(n, name).map(|a| a.f),
            })
        };
        match (bound(1, "min")?, bound(2, "max")?) {
            (Some(0.0), None) => Ok(NodeKind::Layers(vec![op(Op::ReLU)])),
            (Some(0.0), Some(6.0)) => Ok(NodeKind::Layers(vec![op(Op::ReLU6)])),
            (lo, hi) => Err(format!(
                "bounds {lo:?}..{hi:?} (torchlet has ReLU (0, none) and ReLU6 (0, 6))"
            )),
        }
    }

    fn add(&mut self, n: &NodeProto) -> R<NodeKind> {
        if n.input.len() != 2 {
            return Err(format!("{} inputs", n.input.len()));
        }
        if n.input.iter().all(|v| self.is_dynamic(v)) {
            if self.resolve_str(&n.input[0]) == self.resolve_str(&n.input[1]) {
                return Err("it adds a value to itself".into());
            }
            return Ok(NodeKind::Merge(Merge::Add));
        }
        // A constant added to a MatMul's output: the Linear's bias.
        let (d, c) = if self.is_dynamic(&n.input[0]) { (0, 1) } else { (1, 0) };
        let x = self.resolve(&n.input[d]);
        let producer = self.g.producer.get(x).copied();
        let single_use = self.g.uses.get(x).copied() == Some(1);
        let b = self.input_const(n, c)?.ok_or("a constant input")?;
        if let Some(p) = producer.filter(|p| self.matmuls.contains(p) && single_use) {
            if let NodeKind::Layers(items) = &mut self.kinds[p] {
                if let [Item::Op {
                    op: Op::Linear(l),
                    params,
                    ..
                }] = &mut items[..]
                {
                    let bias = weight(&b, &n.input[c], &[l.out_features])?;
                    l.bias = true;
                    params.extend_from_slice(&bias);
                    self.matmuls.remove(&p);
                    return Ok(NodeKind::Alias);
                }
            }
        }
        Err(
            "it adds a constant to a computed value; torchlet supports that only as the bias of a MatMul (Linear)"
                .into(),
        )
    }

    fn conv(&self, n: &NodeProto, x: &[usize]) -> R<Vec<Item>> {
        let w = self.input_const(n, 1)?.ok_or("Conv without weights")?;
        let d = w
            .dims
            .len()
            .checked_sub(2)
            .filter(|d| (1..=3).contains(d))
            .ok_or(format!("weights of dims {:?}", w.dims))?;
        if x.len() != d + 1 {
            return Err(format!("an input of shape {x:?} for a {d}-d convolution"));
        }
        let groups = usize::try_from(attr_i(n, "group", 1))
            .ok()
            .filter(|&g| g > 0)
            .ok_or("group < 1")?;
        let (c_out, c_in_g) = (w.dims[0], w.dims[1]);
        if c_in_g.checked_mul(groups) != Some(x[0]) {
            return Err(format!(
                "weights {:?} with group {groups} do not fit {} input channels",
                w.dims, x[0]
            ));
        }
        let kernel = w.dims[2..].to_vec();
        if let Some(k) = attr_ints(n, "kernel_shape") {
            if usizes(&k, "kernel_shape")? != kernel {
                return Err(format!("kernel_shape {k:?} differs from the weights' {kernel:?}"));
            }
        }
        let (begin, end) = pads(n, d)?;
        let mut items = vec![];
        let padding = if begin == end {
            begin.clone()
        } else if d == 2 {
            items.push(op(Op::Pad2d(Pad2d {
                mode: PaddingMode::Zeros,
                padding: [begin[1], end[1], begin[0], end[0]],
            })));
            vec![0; d]
        } else {
            return Err(format!("asymmetric pads {begin:?} / {end:?}"));
        };
        let mut params = weight(&w, &n.input[1], &w.dims)?;
        let bias = self.input_const(n, 2)?;
        if let Some(b) = &bias {
            params.extend(weight(b, &n.input[2], &[c_out])?);
        }
        let conv = Conv {
            dims: d as u8,
            in_channels: x[0],
            out_channels: c_out,
            kernel_size: sp3(&kernel, 1)?,
            stride: sp3(&ints_or(n, "strides", d, 1)?, 1)?,
            padding: Padding::Explicit(sp3(&padding, 0)?),
            dilation: sp3(&ints_or(n, "dilations", d, 1)?, 1)?,
            groups,
            bias: bias.is_some(),
            padding_mode: PaddingMode::Zeros,
        };
        items.push(Item::Op {
            op: Op::Conv(conv),
            params,
            state: vec![],
        });
        Ok(items)
    }

    fn batch_norm(&self, n: &NodeProto, x: &[usize]) -> R<Vec<Item>> {
        if attr_i(n, "training_mode", 0) != 0 {
            return Err("BatchNormalization in training mode".into());
        }
        let c = *x.first().ok_or("a scalar input")?;
        let get = |k: usize, what: &str| -> R<Vec<f32>> {
            let t = self.input_const(n, k)?.ok_or(format!("no {what}"))?;
            weight(&t, &n.input[k], &[c])
        };
        let mut params = get(1, "scale")?;
        params.extend(get(2, "bias")?);
        let mut state = get(3, "mean")?;
        state.extend(get(4, "variance")?);
        state.push(0.0);
        let dims = match x.len() {
            1 | 2 => 1,
            3 => 2,
            _ => 3,
        };
        let bn = BatchNorm {
            dims,
            num_features: c,
            eps: attr_f(n, "epsilon", 1e-5),
            // ONNX's momentum weighs the old statistics, PyTorch's the new ones.
            momentum: Some(attr(n, "momentum").map_or(0.1, |a| 1.0 - a.f)),
            affine: true,
            track_running_stats: true,
        };
        Ok(vec![Item::Op {
            op: Op::BatchNorm(bn),
            params,
            state,
        }])
    }

    fn gemm(&self, n: &NodeProto, x: &[usize]) -> R<Vec<Item>> {
        if attr_i(n, "transA", 0) != 0 {
            return Err("transA = 1".into());
        }
        let w = self.input_const(n, 1)?.ok_or("Gemm without weights")?;
        let [a, b] = w.dims[..] else {
            return Err(format!("weights of dims {:?}", w.dims));
        };
        let trans_b = attr_i(n, "transB", 0) != 0;
        let (fin, fout) = if trans_b { (b, a) } else { (a, b) };
        if x != [fin] {
            return Err(format!(
                "an input of shape {x:?} for weights {:?} (transB {})",
                w.dims,
                u8::from(trans_b)
            ));
        }
        let mut params = weight(&w, &n.input[1], &[a, b])?;
        if !trans_b {
            params = transpose(&params, fin, fout);
        }
        let alpha = attr_f(n, "alpha", 1.0);
        params.iter_mut().for_each(|v| *v *= alpha);
        let bias = self.input_const(n, 2)?;
        if let Some(c) = &bias {
            let beta = attr_f(n, "beta", 1.0);
            let mut v = if c.numel() == 1 {
                vec![c.to_f32()[0]; fout]
            } else {
                weight(c, &n.input[2], &[fout])?
            };
            v.iter_mut().for_each(|x| *x *= beta);
            params.extend(v);
        }
        let lin = Linear {
            in_features: fin,
            out_features: fout,
            bias: bias.is_some(),
        };
        Ok(vec![Item::Op {
            op: Op::Linear(lin),
            params,
            state: vec![],
        }])
    }

    /// `Reshape`, `Squeeze`, `Unsqueeze` of a computed value: a flatten to `[batch, features]`
    /// or nothing at all; anything else is refused.
    fn reshape(&self, n: &NodeProto, x: &[usize]) -> R<NodeKind> {
        let arg = match self.input_const(n, 1)? {
            Some(t) => Some(t.to_i64()),
            None => attr_ints(n, if n.op_type == "Reshape" { "shape" } else { "axes" }),
        };
        // The result for batches of 1 and 2: the batch must stay in front, the rest the same.
        let result = |batch: i64| -> R<Vec<usize>> {
            let full: Vec<usize> = std::iter::once(batch as usize).chain(x.iter().copied()).collect();
            match n.op_type.as_str() {
                "Reshape" => {
                    let target: Vec<i64> = arg
                        .clone()
                        .ok_or("no shape")?
                        .iter()
                        .map(|&d| if d == BATCH { batch } else { d })
                        .collect();
                    fold::reshape(&full, &target, attr_i(n, "allowzero", 0) != 0)
                }
                _ => {
                    let t = Tensor {
                        dims: full.clone(),
                        data: super::weights::Data::I64(vec![]),
                    };
                    let mut inputs = vec![Some(t)];
                    if let Some(a) = &arg {
                        inputs.push(Some(Tensor::ints(a.clone())));
                    }
                    fold::fold_dims(n, &inputs)
                }
            }
        };
        let (one, two) = (result(1)?, result(2)?);
        if one.first() != Some(&1) || two.first() != Some(&2) || one[1..] != two[1..] {
            return Err(format!(
                "it reshapes [batch, {x:?}] to {one:?}: torchlet keeps the batch dim first"
            ));
        }
        if one[1..] == *x {
            Ok(NodeKind::Alias)
        } else if one.len() == 2 {
            Ok(NodeKind::Layers(vec![op(Op::Flatten)]))
        } else {
            Err(format!(
                "it reshapes {x:?} to {:?}: torchlet only flattens to [batch, features]",
                &one[1..]
            ))
        }
    }

    fn pad(&self, n: &NodeProto, x: &[usize]) -> R<Vec<Item>> {
        let pads = match self.input_const(n, 1)? {
            Some(t) => t.to_i64(),
            None => attr_ints(n, "pads").ok_or("no pads")?,
        };
        if let Some(v) = self.input_const(n, 2)? {
            if v.to_f32().iter().any(|&v| v != 0.0) {
                return Err("a constant other than 0".into());
            }
        }
        if self.input_const(n, 3)?.is_some() {
            return Err("the axes input".into());
        }
        let r = x.len() + 1;
        let mode = match attr_s(n, "mode", "constant").as_str() {
            "constant" => PaddingMode::Zeros,
            "reflect" => PaddingMode::Reflect,
            "edge" => PaddingMode::Replicate,
            "wrap" => PaddingMode::Circular,
            m => return Err(format!("mode '{m}'")),
        };
        let pads = usizes(&pads, "pads")?;
        if pads.len() != 2 * r || pads[0] != 0 || pads[1] != 0 || pads[r] != 0 || pads[r + 1] != 0 {
            return Err(format!("pads {pads:?}: torchlet pads only the spatial dims"));
        }
        let d = r - 2;
        // PyTorch's order: last dim first, (begin, end) of each.
        let mut torch = [0usize; 6];
        for k in 0..d {
            torch[2 * k] = pads[r - 1 - k];
            torch[2 * k + 1] = pads[2 * r - 1 - k];
        }
        let o = if d == 2 {
            Op::Pad2d(Pad2d {
                mode,
                padding: [torch[0], torch[1], torch[2], torch[3]],
            })
        } else if d == 1 || d == 3 {
            Op::Pad(Pad {
                dims: d as u8,
                mode,
                padding: torch,
            })
        } else {
            return Err(format!("an input of shape {x:?}"));
        };
        Ok(vec![op(o)])
    }
}

/// An `ints` attribute with `d` values, or `default` repeated.
fn ints_or(n: &NodeProto, name: &str, d: usize, default: usize) -> R<Vec<usize>> {
    match attr_ints(n, name) {
        Some(v) if v.len() == d => usizes(&v, name),
        Some(v) => Err(format!("{name} {v:?} for {d} spatial dims")),
        None => Ok(vec![default; d]),
    }
}

/// The `pads` attribute (`[begin..., end...]`) and `auto_pad` (only `NOTSET` and `VALID`).
fn pads(n: &NodeProto, d: usize) -> R<(Vec<usize>, Vec<usize>)> {
    let auto = attr_s(n, "auto_pad", "NOTSET");
    if auto != "NOTSET" && auto != "VALID" {
        return Err(format!("auto_pad {auto} (only explicit pads are supported)"));
    }
    let p = ints_or(n, "pads", 2 * d, 0)?;
    if auto == "VALID" {
        return Ok((vec![0; d], vec![0; d]));
    }
    Ok((p[..d].to_vec(), p[d..].to_vec()))
}

fn pool(n: &NodeProto, x: &[usize]) -> R<Vec<Item>> {
    let d = x
        .len()
        .checked_sub(1)
        .filter(|d| (1..=3).contains(d))
        .ok_or(format!("an input of shape {x:?}"))?;
    let kernel = usizes(&attr_ints(n, "kernel_shape").ok_or("no kernel_shape")?, "kernel_shape")?;
    if kernel.len() != d {
        return Err(format!("kernel_shape {kernel:?} for {d} spatial dims"));
    }
    let (begin, end) = pads(n, d)?;
    if begin != end {
        return Err(format!("asymmetric pads {begin:?} / {end:?}"));
    }
    let stride = sp3(&ints_or(n, "strides", d, 1)?, 1)?;
    let dilation = ints_or(n, "dilations", d, 1)?;
    let ceil_mode = attr_i(n, "ceil_mode", 0) != 0;
    let (kernel_size, padding) = (sp3(&kernel, 1)?, sp3(&begin, 0)?);
    let o = if n.op_type == "MaxPool" {
        Op::MaxPool(MaxPool {
            dims: d as u8,
            kernel_size,
            stride,
            padding,
            dilation: sp3(&dilation, 1)?,
            ceil_mode,
            return_indices: false,
        })
    } else {
        if dilation.iter().any(|&v| v != 1) {
            return Err("a dilated average pool".into());
        }
        Op::AvgPool(AvgPool {
            dims: d as u8,
            kernel_size,
            stride,
            padding,
            ceil_mode,
            count_include_pad: attr_i(n, "count_include_pad", 0) != 0,
        })
    };
    Ok(vec![op(o)])
}

/// Global average (or max) pooling of a `[C, ...spatial]` sample.
fn global(avg: bool, rank: usize) -> R<Item> {
    let d = rank
        .checked_sub(1)
        .filter(|d| (1..=3).contains(d))
        .ok_or(format!("a rank-{} input", rank + 1))?;
    let a = Adaptive {
        dims: d as u8,
        output_size: [1; 3],
    };
    Ok(op(if avg {
        Op::AdaptiveAvgPool(a)
    } else {
        Op::AdaptiveMaxPool(a)
    }))
}

/// The sample shape after `items` (plain layers), planned by torchlet on `x`.
pub(crate) fn planned(items: &[Item], x: &[usize]) -> R<Vec<usize>> {
    let layers: Vec<Layer<'static>> = items
        .iter()
        .filter_map(|it| match it {
            Item::Op { op, .. } => Some(Layer {
                kind: Kind::Op(*op),
                name: "",
            }),
            Item::Merge { .. } => None,
        })
        .collect();
    let shape = Shape::from_dims(x).ok_or(format!(
        "an input of shape {x:?} (torchlet takes 1 to 4 dims after the batch)"
    ))?;
    let plan = Plan::<4>::try_new(&layers, shape, 1, Mode::Inference)
        .map_err(|e| format!("it does not fit its input of shape {x:?}: {e}"))?;
    Ok(plan.output_shape().dims().to_vec())
}
