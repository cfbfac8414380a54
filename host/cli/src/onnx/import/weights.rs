//! Tensors of an ONNX file: initializers and `Constant` values decoded into [`Tensor`]s, with
//! every declared size checked against the bytes actually present before anything is
//! allocated ([`check_declared_sizes`], [`decode`]).

use super::Fail;
use crate::onnx::proto::{TensorProto, DOUBLE, EXTERNAL, FLOAT, INT32, INT64};

/// The most elements a tensor computed while folding shape subgraphs may have (they are
/// shapes and pads, a handful of integers).
pub(crate) const MAX_FOLDED: usize = 1 << 16;

/// A decoded tensor: its dims and its values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

/// The values of a [`Tensor`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    /// `float` (and `double`, narrowed).
    F32(Vec<f32>),
    /// `int64` (and `int32`, widened).
    I64(Vec<i64>),
}

impl Tensor {
    /// A 1-D `int64` tensor.
    pub fn ints(v: Vec<i64>) -> Tensor {
        Tensor {
            dims: vec![v.len()],
            data: Data::I64(v),
        }
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The values as integers (floats truncated, as `Cast` does).
    pub fn to_i64(&self) -> Vec<i64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
        }
    }

    /// The values as floats.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// The number of elements that `dims` declare, or why they are invalid.
pub(crate) fn numel(dims: &[i64]) -> Result<usize, String> {
    dims.iter().try_fold(1usize, |n, &d| {
        let d = usize::try_from(d).map_err(|_| format!("a negative dimension {d} in {dims:?}"))?;
        n.checked_mul(d).ok_or_else(|| format!("dims {dims:?} overflow"))
    })
}

/// Bytes per element of the data types the importer reads.
fn elem_size(data_type: i32) -> Option<usize> {
    match data_type {
        FLOAT | INT32 => Some(4),
        INT64 | DOUBLE => Some(8),
        _ => None,
    }
}

/// The ONNX name of a data type, for messages.
pub(crate) fn type_name(data_type: i32) -> String {
    match data_type {
        FLOAT => "float".into(),
        INT32 => "int32".into(),
        INT64 => "int64".into(),
        DOUBLE => "double".into(),
        2 => "uint8".into(),
        3 => "int8".into(),
        9 => "bool".into(),
        10 => "float16".into(),
        16 => "bfloat16".into(),
        t => format!("data type {t}"),
    }
}

/// Refuses tensors whose declared sizes add up to more bytes than the file has (a hostile
/// or corrupt file declaring a huge initializer), before any of them is decoded.
pub(crate) fn check_declared_sizes<'a>(
    tensors: impl Iterator<Item = &'a TensorProto>,
    file_len: usize,
) -> Result<(), Fail> {
    let mut total = 0usize;
    for t in tensors {
        let n = numel(&t.dims).map_err(|e| Fail::Invalid(format!("tensor '{}': {e}", t.name)))?;
        let bytes = n.saturating_mul(elem_size(t.data_type).unwrap_or(1));
        total = total.saturating_add(bytes);
        if bytes > file_len || total > file_len {
            return Err(Fail::Invalid(format!(
                "tensor '{}' declares dims {:?} ({bytes} bytes); the tensors declared so far need {total} bytes, \
                 more than the whole file ({file_len} bytes): truncated or corrupt",
                t.name, t.dims
            )));
        }
    }
    Ok(())
}

/// Decodes `t`: its declared dims must match the values present (`raw_data` or the typed
/// field); external data and unsupported data types are refused.
pub(crate) fn decode(t: &TensorProto) -> Result<Tensor, Fail> {
    let bad = |why: String| Fail::Invalid(format!("tensor '{}': {why}", t.name));
    if t.data_location == EXTERNAL || !t.external_data.is_empty() {
        return Err(bad(
            "its values are in an external file; torchlet reads only self-contained ONNX files \
             (save with onnx.save(model, path, save_as_external_data=False))"
                .into(),
        ));
    }
    let n = numel(&t.dims).map_err(bad)?;
    let size = elem_size(t.data_type).ok_or_else(|| {
        bad(format!(
            "{} values are not supported (float, double, int32 or int64 are)",
            type_name(t.data_type)
        ))
    })?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let raw = &t.raw_data;
    let typed_len = match t.data_type {
        FLOAT => t.float_data.len(),
        INT32 => t.int32_data.len(),
        INT64 => t.int64_data.len(),
        _ => t.double_data.len(),
    };
    let found = if raw.is_empty() { typed_len } else { raw.len() / size };
    if found != n || (!raw.is_empty() && raw.len() % size != 0) {
        return Err(bad(format!(
            "dims {:?} declare {n} values, the file holds {} ({} bytes of raw data, {typed_len} typed values)",
            t.dims,
            found,
            raw.len()
        )));
    }
    let data = if raw.is_empty() {
        match t.data_type {
            FLOAT => Data::F32(t.float_data.clone()),
            INT32 => Data::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect()),
            INT64 => Data::I64(t.int64_data.clone()),
            _ => Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        }
    } else {
        match t.data_type {
            FLOAT => Data::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            INT32 => Data::I64(
                raw.chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            INT64 => Data::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            _ => Data::F32(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                    .collect(),
            ),
        }
    };
    Ok(Tensor { dims, data })
}

/// The float values of a weight tensor, which must have `dims` and be finite.
pub(crate) fn weight(t: &Tensor, name: &str, dims: &[usize]) -> Result<Vec<f32>, String> {
    if t.dims != dims && !(t.numel() == dims.iter().product::<usize>() && squeezed(&t.dims) == squeezed(dims)) {
        return Err(format!("weight '{name}' has dims {:?}, expected {dims:?}", t.dims));
    }
    let Data::F32(v) = &t.data else {
        return Err(format!("weight '{name}' holds integers, expected floats"));
    };
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(format!("weight '{name}' has the non-finite value {x} at index {i}"));
    }
    Ok(v.clone())
}

/// `dims` without its 1s (a bias `[1, C]` is a bias `[C]`).
fn squeezed(dims: &[usize]) -> Vec<usize> {
    dims.iter().copied().filter(|&d| d != 1).collect()
}

/// `w` (`rows x cols`, row-major) transposed.
pub(crate) fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}
