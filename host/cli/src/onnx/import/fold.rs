//! Constant folding: the small subgraphs exporters write to compute shapes and pads
//! (`Constant`, `Shape`, `Gather`, `Unsqueeze`, `Concat`, `Slice`, `Cast`, ...) evaluated at
//! import time, so that `Reshape` and `Pad` see their targets as numbers.
//!
//! The batch size is symbolic: `Shape` of a value computed from the graph input yields
//! [`BATCH`] for it, which flows through the folding as an ordinary integer and tells a
//! `Reshape` to `[batch, -1]` (a flatten) from any other. Folded tensors are limited to
//! [`MAX_FOLDED`] elements, checked before they are allocated.

use super::attrs::{attr, attr_i, attr_ints};
use super::weights::{decode, Data, Tensor, MAX_FOLDED};
use crate::onnx::proto::{NodeProto, DOUBLE, FLOAT, INT32, INT64};

/// The value standing for the (symbolic) batch size in folded shapes.
pub(crate) const BATCH: i64 = -(1 << 40);

/// Whether `op` is one [`fold`] evaluates.
pub(crate) fn foldable(op: &str) -> bool {
    matches!(
        op,
        "Constant"
            | "Identity"
            | "Cast"
            | "Shape"
            | "Gather"
            | "Unsqueeze"
            | "Squeeze"
            | "Concat"
            | "Reshape"
            | "ConstantOfShape"
            | "Slice"
            | "Transpose"
            | "Add"
            | "Sub"
            | "Mul"
            | "Div"
    )
}

/// The output of `node` whose inputs are all the constants `inputs` (`None` for an omitted
/// optional input).
pub(crate) fn fold(node: &NodeProto, inputs: &[Option<Tensor>]) -> Result<Tensor, String> {
    let get = |i: usize| -> Result<&Tensor, String> {
        inputs
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("input {i} is missing"))
    };
    let out = match node.op_type.as_str() {
        "Constant" => constant(node)?,
        "Identity" => get(0)?.clone(),
        "Cast" => match attr_i(node, "to", 0) as i32 {
            FLOAT | DOUBLE => with_data(get(0)?, Data::F32(get(0)?.to_f32())),
            INT32 | INT64 | 9 => with_data(get(0)?, Data::I64(get(0)?.to_i64())),
            to => return Err(format!("a cast to data type {to} is not folded")),
        },
        "Shape" => shape_of(&get(0)?.dims.iter().map(|&d| d as i64).collect::<Vec<_>>(), node),
        "Gather" => gather(get(0)?, get(1)?, attr_i(node, "axis", 0))?,
        "Unsqueeze" | "Squeeze" => {
            let x = get(0)?;
            let axes = match inputs.get(1).and_then(Option::as_ref) {
                Some(a) => Some(a.to_i64()),
                None => attr_ints(node, "axes"),
            };
            let dims = if node.op_type == "Unsqueeze" {
                unsqueeze(&x.dims, &axes.ok_or("Unsqueeze without axes")?)?
            } else {
                squeeze(&x.dims, axes.as_deref())?
            };
            with_dims(x, dims)
        }
        "Concat" => {
            let parts: Vec<&Tensor> = (0..inputs.len()).map(get).collect::<Result<_, _>>()?;
            concat(&parts, attr_i(node, "axis", 0))?
        }
        "Reshape" => {
            let x = get(0)?;
            let dims = reshape(&x.dims, &get(1)?.to_i64(), attr_i(node, "allowzero", 0) != 0)?;
            with_dims(x, dims)
        }
        "ConstantOfShape" => {
            let dims = get(0)?
                .to_i64()
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<_>, _>>();
            let dims = dims.map_err(|_| "a negative dimension")?;
            let n = checked_numel(&dims)?;
            let value = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                Some(t) => decode(t).map_err(|e| e.to_string())?,
                None => Tensor {
                    dims: vec![1],
                    data: Data::F32(vec![0.0]),
                },
            };
            let data = match value.data {
                Data::F32(v) => Data::F32(vec![v.first().copied().unwrap_or(0.0); n]),
                Data::I64(v) => Data::I64(vec![v.first().copied().unwrap_or(0); n]),
            };
            Tensor { dims, data }
        }
        "Slice" => slice(node, inputs)?,
        "Transpose" => transpose(get(0)?, attr_ints(node, "perm"))?,
        "Add" | "Sub" | "Mul" | "Div" => arith(&node.op_type, get(0)?, get(1)?)?,
        op => return Err(format!("{op} of constants is not folded")),
    };
    if out.numel() > MAX_FOLDED {
        return Err(format!(
            "a folded constant of {} values (at most {MAX_FOLDED})",
            out.numel()
        ));
    }
    Ok(out)
}

/// The dims of the output of a `Squeeze` or `Unsqueeze` (`inputs`: the data, whose values are
/// not read, and the axes if given as an input).
pub(crate) fn fold_dims(node: &NodeProto, inputs: &[Option<Tensor>]) -> Result<Vec<usize>, String> {
    let x = inputs.first().and_then(Option::as_ref).ok_or("no data")?;
    let axes = match inputs.get(1).and_then(Option::as_ref) {
        Some(a) => Some(a.to_i64()),
        None => attr_ints(node, "axes"),
    };
    if node.op_type == "Unsqueeze" {
        unsqueeze(&x.dims, &axes.ok_or("Unsqueeze without axes")?)
    } else {
        squeeze(&x.dims, axes.as_deref())
    }
}

/// `Shape` (with opset 15's `start` and `end`) of a value with dims `dims`.
pub(crate) fn shape_of(dims: &[i64], node: &NodeProto) -> Tensor {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(attr_i(node, "start", 0));
    let end = clamp(attr_i(node, "end", r));
    Tensor::ints(dims[start..end.max(start)].to_vec())
}

fn constant(node: &NodeProto) -> Result<Tensor, String> {
    if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
        return decode(t).map_err(|e| e.to_string());
    }
    if let Some(a) = attr(node, "value_float") {
        return Ok(Tensor {
            dims: vec![],
            data: Data::F32(vec![a.f]),
        });
    }
    if let Some(a) = attr(node, "value_floats") {
        return Ok(Tensor {
            dims: vec![a.floats.len()],
            data: Data::F32(a.floats.clone()),
        });
    }
    if let Some(a) = attr(node, "value_int") {
        return Ok(Tensor {
            dims: vec![],
            data: Data::I64(vec![a.i]),
        });
    }
    if let Some(a) = attr(node, "value_ints") {
        return Ok(Tensor::ints(a.ints.clone()));
    }
    Err("a Constant without a value, value_float(s) or value_int(s) attribute".into())
}

fn checked_numel(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_FOLDED)
        .ok_or_else(|| format!("a constant of dims {dims:?} is too large to fold (at most {MAX_FOLDED} values)"))
}

fn with_dims(x: &Tensor, dims: Vec<usize>) -> Tensor {
    Tensor {
        dims,
        data: x.data.clone(),
    }
}

fn with_data(x: &Tensor, data: Data) -> Tensor {
    Tensor {
        dims: x.dims.clone(),
        data,
    }
}

/// `axis` of a rank-`r` tensor (negative counts from the end; `extra` allows `r + extra`).
fn axis(a: i64, r: usize, extra: usize) -> Result<usize, String> {
    let n = (r + extra) as i64;
    let v = if a < 0 { a + n } else { a };
    if (0..n).contains(&v) {
        Ok(v as usize)
    } else {
        Err(format!("axis {a} out of range for rank {r}"))
    }
}

fn gather(x: &Tensor, idx: &Tensor, ax: i64) -> Result<Tensor, String> {
    if x.dims.len() != 1 || axis(ax, 1, 0)? != 0 {
        return Err(format!("Gather on dims {:?} (only 1-D data is folded)", x.dims));
    }
    let n = x.dims[0] as i64;
    let picks = idx
        .to_i64()
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + n } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| (j as i64) < n)
                .ok_or(format!("index {i} out of range {n}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data = match &x.data {
        Data::F32(v) => Data::F32(picks.iter().map(|&j| v[j]).collect()),
        Data::I64(v) => Data::I64(picks.iter().map(|&j| v[j]).collect()),
    };
    Ok(Tensor {
        dims: idx.dims.clone(),
        data,
    })
}

fn unsqueeze(dims: &[usize], axes: &[i64]) -> Result<Vec<usize>, String> {
    let r = dims.len() + axes.len();
    let mut ax = axes.iter().map(|&a| axis(a, r, 0)).collect::<Result<Vec<_>, _>>()?;
    ax.sort_unstable();
    let mut out = dims.to_vec();
    for a in ax {
        if a > out.len() {
            return Err(format!("Unsqueeze axes {axes:?} for dims {dims:?}"));
        }
        out.insert(a, 1);
    }
    Ok(out)
}

fn squeeze(dims: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>, String> {
    match axes {
        None => Ok(dims.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let ax = axes
                .iter()
                .map(|&a| axis(a, dims.len(), 0))
                .collect::<Result<Vec<_>, _>>()?;
            if ax.iter().any(|&a| dims[a] != 1) {
                return Err(format!("Squeeze of axes {axes:?} of dims {dims:?}"));
            }
            Ok(dims
                .iter()
                .enumerate()
                .filter(|(i, _)| !ax.contains(i))
                .map(|(_, &d)| d)
                .collect())
        }
    }
}

fn concat(parts: &[&Tensor], ax: i64) -> Result<Tensor, String> {
    let first = parts.first().ok_or("Concat without inputs")?;
    // Scalars concatenate as 1-D tensors of one value (a common exporter shortcut).
    let dims_of = |t: &Tensor| if t.dims.is_empty() { vec![1] } else { t.dims.clone() };
    let d0 = dims_of(first);
    let a = axis(ax, d0.len(), 0)?;
    let mut total = 0usize;
    for p in parts {
        let d = dims_of(p);
        if d.len() != d0.len() || d.iter().zip(&d0).enumerate().any(|(i, (x, y))| i != a && x != y) {
            return Err(format!("Concat of dims {:?} and {:?} along axis {a}", d0, d));
        }
        total = total.checked_add(d[a]).ok_or("overflow")?;
    }
    let outer: usize = d0[..a].iter().product();
    let mut dims = d0.clone();
    dims[a] = total;
    checked_numel(&dims)?;
    let ints = parts.iter().all(|p| matches!(p.data, Data::I64(_)));
    let chunk = |p: &Tensor| -> usize { dims_of(p)[a..].iter().product() };
    if ints {
        let mut out = Vec::new();
        for o in 0..outer {
            for p in parts {
                let c = chunk(p);
                out.extend_from_slice(&p.to_i64()[o * c..(o + 1) * c]);
            }
        }
        Ok(Tensor {
            dims,
            data: Data::I64(out),
        })
    } else {
        let mut out = Vec::new();
        for o in 0..outer {
            for p in parts {
                let c = chunk(p);
                out.extend_from_slice(&p.to_f32()[o * c..(o + 1) * c]);
            }
        }
        Ok(Tensor {
            dims,
            data: Data::F32(out),
        })
    }
}

/// The dims of a `Reshape` of `dims` to `shape` (`0` copies a dim unless `allowzero`, one
/// `-1` is inferred).
pub(crate) fn reshape(dims: &[usize], shape: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let numel: usize = dims.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*dims.get(i).ok_or(format!("Reshape to {shape:?} of dims {dims:?}"))?),
            s if s >= 0 => out.push(s as usize),
            _ => return Err(format!("Reshape to {shape:?}")),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("overflow")?;
    if let Some(i) = infer {
        if known == 0 || numel % known != 0 {
            return Err(format!("Reshape of dims {dims:?} to {shape:?}"));
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(format!("Reshape of dims {dims:?} to {shape:?}"));
    }
    Ok(out)
}

fn slice(node: &NodeProto, inputs: &[Option<Tensor>]) -> Result<Tensor, String> {
    let x = inputs.first().and_then(Option::as_ref).ok_or("Slice without data")?;
    let arg = |i: usize, name: &str| -> Option<Vec<i64>> {
        match inputs.get(i).and_then(Option::as_ref) {
            Some(t) => Some(t.to_i64()),
            None => attr_ints(node, name),
        }
    };
    let starts = arg(1, "starts").ok_or("Slice without starts")?;
    let ends = arg(2, "ends").ok_or("Slice without ends")?;
    let r = x.dims.len();
    let axes = arg(3, "axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = inputs
        .get(4)
        .and_then(Option::as_ref)
        .map(Tensor::to_i64)
        .unwrap_or(vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("Slice with inputs of different lengths".into());
    }
    // The source index of each output position, per axis.
    let mut picks: Vec<Vec<usize>> = x.dims.iter().map(|&d| (0..d).collect()).collect();
    for k in 0..starts.len() {
        let a = axis(axes[k], r, 0)?;
        let d = x.dims[a] as i64;
        let step = steps[k];
        if step == 0 {
            return Err("Slice with step 0".into());
        }
        let fix = |v: i64, lo: i64, hi: i64| (if v < 0 { v.saturating_add(d) } else { v }).clamp(lo, hi);
        let mut v = Vec::new();
        if d == 0 {
            // Nothing to pick.
        } else if step > 0 {
            let (mut i, e) = (fix(starts[k], 0, d), fix(ends[k], 0, d));
            while i < e {
                v.push(i as usize);
                i = i.saturating_add(step);
            }
        } else {
            let (mut i, e) = (fix(starts[k], 0, d - 1), fix(ends[k], -1, d - 1));
            while i > e {
                v.push(i as usize);
                i = i.saturating_add(step);
            }
        }
        picks[a] = v;
    }
    let dims: Vec<usize> = picks.iter().map(Vec::len).collect();
    checked_numel(&dims)?;
    let index = gathered(&x.dims, &picks);
    Ok(Tensor {
        data: pick(&x.data, &index),
        dims,
    })
}

/// Row-major source offsets of every output element of a per-axis selection `picks`.
fn gathered(dims: &[usize], picks: &[Vec<usize>]) -> Vec<usize> {
    let mut offsets = vec![0usize];
    for (a, p) in picks.iter().enumerate() {
        let stride: usize = dims[a + 1..].iter().product();
        offsets = offsets
            .iter()
            .flat_map(|&o| p.iter().map(move |&i| o + i * stride))
            .collect();
    }
    offsets
}

fn pick(data: &Data, index: &[usize]) -> Data {
    match data {
        Data::F32(v) => Data::F32(index.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Data::I64(index.iter().map(|&i| v[i]).collect()),
    }
}

fn transpose(x: &Tensor, perm: Option<Vec<i64>>) -> Result<Tensor, String> {
    let r = x.dims.len();
    let perm: Vec<usize> = match perm {
        Some(p) => p.iter().map(|&a| axis(a, r, 0)).collect::<Result<_, _>>()?,
        None => (0..r).rev().collect(),
    };
    let mut seen = vec![false; r];
    if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
        return Err(format!("Transpose with perm {perm:?} of rank {r}"));
    }
    let dims: Vec<usize> = perm.iter().map(|&a| x.dims[a]).collect();
    let strides: Vec<usize> = (0..r).map(|a| x.dims[a + 1..].iter().product()).collect();
    let mut offsets = vec![0usize];
    for &a in &perm {
        let stride = strides[a];
        offsets = offsets
            .iter()
            .flat_map(|&o| (0..x.dims[a]).map(move |i| o + i * stride))
            .collect();
    }
    Ok(Tensor {
        data: pick(&x.data, &offsets),
        dims,
    })
}

fn arith(op: &str, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let (dims, n) = if a.numel() == b.numel() {
        (
            if a.dims.len() >= b.dims.len() {
                a.dims.clone()
            } else {
                b.dims.clone()
            },
            a.numel(),
        )
    } else if b.numel() == 1 {
        (a.dims.clone(), a.numel())
    } else if a.numel() == 1 {
        (b.dims.clone(), b.numel())
    } else {
        return Err(format!("{op} of dims {:?} and {:?}", a.dims, b.dims));
    };
    let at = |v: &[i64], i: usize| v[if v.len() == 1 { 0 } else { i }];
    if let (Data::I64(x), Data::I64(y)) = (&a.data, &b.data) {
        let out = (0..n)
            .map(|i| {
                let (p, q) = (at(x, i), at(y, i));
                match op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    _ => p.checked_div(q),
                }
                .ok_or_else(|| format!("{op} of {p} and {q} overflows"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Tensor {
            dims,
            data: Data::I64(out),
        });
    }
    let (x, y) = (a.to_f32(), b.to_f32());
    let atf = |v: &[f32], i: usize| v[if v.len() == 1 { 0 } else { i }];
    let out = (0..n)
        .map(|i| {
            let (p, q) = (atf(&x, i), atf(&y, i));
            match op {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                _ => p / q,
            }
        })
        .collect();
    Ok(Tensor {
        dims,
        data: Data::F32(out),
    })
}
