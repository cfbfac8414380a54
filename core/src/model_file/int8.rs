//! int8 models in a model file (format version 2, flags bit 3): the records and data that hold a
//! quantised model's [`QuantWeights`](crate::quant::QuantWeights), their validation when a file
//! is parsed, and a zero-copy view of them.
//!
//! An int8 file is a whole model (architecture, class names, optional run record) with no
//! `f32` tensors; after the run record comes one **int8 record** (`Int8Meta`: the input's
//! scale and zero point, the node, weight and channel counts) and one **node record** per plan
//! node (`Int8Node`: output scale, zero point, clamp). Its data section is `[bias i32 ×
//! channels][multiplier i32 × channels][shift i32 × channels][weights i8 × weights]`, zero
//! padded to a multiple of 4, little-endian. See `docs/model-format.md`, section 10.

use serde::{Deserialize, Serialize};

use super::error::{part, FileError};
use super::reader::{check_zeros, err, ModelFile, Records};
use super::wire::Sink;
use crate::error::{check_len, Buffer, Error, Result};
use crate::quant::{ActRange, NodeQuant, QuantParams, QuantWeights};

/// Flags bit 3: an int8 model (version 2 and later).
pub(crate) const FLAG_INT8: u16 = 8;

/// The int8 record, after the run record.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Int8Meta {
    pub input_scale: f32,
    pub input_zero_point: i32,
    pub nodes: u32,
    pub weights: u32,
    pub channels: u32,
}

/// One node's output quantisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Int8Node {
    pub scale: f32,
    pub zero_point: i32,
    pub act_min: i8,
    pub act_max: i8,
}

/// Where a parsed file's int8 parts are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Int8Info {
    pub input: QuantParams,
    pub nodes_at: usize,
    pub nodes: usize,
    pub weights: usize,
    pub channels: usize,
}

/// Data bytes of an int8 model with these counts, or `None` on overflow.
pub(crate) fn data_len(weights: usize, channels: usize) -> Option<usize> {
    channels.checked_mul(12)?.checked_add(weights.checked_add(3)? / 4 * 4)
}

fn params(part: &'static str, i: Option<usize>, scale: f32, zp: i32) -> Result<QuantParams> {
    QuantParams::new(scale, zp).map_err(|_| {
        let e = FileError::new(
            part,
            "scale must be finite and positive, zero point in [-128, 127]",
            0,
            zp as u64,
        );
        match i {
            Some(i) => e.with_index(i).into(),
            None => e.into(),
        }
    })
}

impl<'a> ModelFile<'a> {
    /// Reads and checks the int8 records (flags bit 3) and the int8 data of `data_len` bytes.
    pub(super) fn read_int8(&mut self, r: &mut Records<'a>, data_len: usize) -> Result<()> {
        let m = r.decode(part::INT8, None, |c| c.int8_meta())?;
        let input = params(part::INT8, None, m.input_scale, m.input_zero_point)?;
        if m.nodes != self.nodes {
            return Err(err(
                part::INT8,
                "node records must number the model's nodes",
                self.nodes,
                m.nodes,
            ));
        }
        let nodes_at = r.pos;
        for i in 0..m.nodes as usize {
            let n = r.decode(part::INT8_NODE, Some(i), |c| c.int8_node())?;
            params(part::INT8_NODE, Some(i), n.scale, n.zero_point)?;
            if n.act_min > n.act_max {
                return Err(FileError::new(
                    part::INT8_NODE,
                    "clamp needs min <= max",
                    n.act_min as u64,
                    n.act_max as u64,
                )
                .with_index(i)
                .into());
            }
        }
        let (w, c) = (m.weights as usize, m.channels as usize);
        let want = data_len_or(w, c)?;
        if want != data_len {
            return Err(err(
                part::DATA_LENGTH,
                "must be 12 bytes per channel plus the weights, padded to 4",
                want,
                data_len,
            ));
        }
        let shifts = self.bytes.get(self.data + 8 * c..self.data + 12 * c).unwrap_or(&[]);
        for (i, s) in shifts.chunks_exact(4).enumerate() {
            let s = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            if !(-31..=30).contains(&s) {
                return Err(FileError::new(part::INT8, "shift must be in [-31, 30]", 30, s as u64)
                    .with_index(i)
                    .into());
            }
        }
        let mults = self.bytes.get(self.data + 4 * c..self.data + 8 * c).unwrap_or(&[]);
        if let Some(i) = mults.chunks_exact(4).position(|v| v[3] & 0x80 != 0) {
            return Err(FileError::new(part::INT8, "multiplier must not be negative", 0, 1)
                .with_index(i)
                .into());
        }
        let end = self.data + 12 * c + w;
        check_zeros(self.bytes, end, self.data + data_len)?;
        self.int8 = Some(Int8Info {
            input,
            nodes_at,
            nodes: m.nodes as usize,
            weights: w,
            channels: c,
        });
        Ok(())
    }

    /// Whether this is an int8 model (flags bit 3).
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// The quantisation of the network's input, for an int8 model.
    pub fn int8_input(&self) -> Option<QuantParams> {
        self.int8.map(|q| q.input)
    }

    /// `(weights, channels)` counts of an int8 model.
    pub fn int8_counts(&self) -> Option<(usize, usize)> {
        self.int8.map(|q| (q.weights, q.channels))
    }

    /// Copies the node records into `out: [nodes]`.
    ///
    /// # Errors
    /// Not an int8 file, or `out` of the wrong length.
    pub fn int8_nodes_into(&self, out: &mut [NodeQuant]) -> Result<()> {
        let q = self.int8.ok_or(not_int8())?;
        check_len(Buffer::State, q.nodes, out.len())?;
        let mut r = Records {
            bytes: self.bytes,
            pos: q.nodes_at,
            end: self.header_end,
        };
        for (i, o) in out.iter_mut().enumerate() {
            let n = r.decode(part::INT8_NODE, Some(i), |c| c.int8_node())?;
            *o = NodeQuant {
                out: params(part::INT8_NODE, Some(i), n.scale, n.zero_point)?,
                act: ActRange {
                    min: n.act_min,
                    max: n.act_max,
                },
            };
        }
        Ok(())
    }

    /// The int8 weights, zero-copy: `[weights]`.
    pub fn int8_weights(&self) -> Result<&'a [i8]> {
        let q = self.int8.ok_or(not_int8())?;
        let start = self.data + 12 * q.channels;
        let bytes = self.bytes.get(start..start + q.weights).ok_or(not_int8())?;
        Ok(bytemuck::cast_slice(bytes))
    }

    /// Copies biases, multipliers and shifts into `bias`, `multiplier`, `shift`: `[channels]`
    /// each (any alignment and byte order).
    pub fn int8_channels_into(&self, bias: &mut [i32], multiplier: &mut [i32], shift: &mut [i32]) -> Result<()> {
        let q = self.int8.ok_or(not_int8())?;
        for (k, out) in [bias, multiplier, shift].into_iter().enumerate() {
            check_len(Buffer::Params, q.channels, out.len())?;
            let start = self.data + 4 * k * q.channels;
            let bytes = self.bytes.get(start..start + 4 * q.channels).ok_or(not_int8())?;
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Ok(())
    }
}

fn not_int8() -> Error {
    FileError::new(part::FLAGS, "not an int8 model file (flags bit 3)", FLAG_INT8 as u64, 0).into()
}

fn data_len_or(w: usize, c: usize) -> Result<usize> {
    data_len(w, c).ok_or(err(
        part::INT8,
        "weights and channels overflow the data length",
        u32::MAX,
        u64::MAX,
    ))
}

/// Writes the int8 record and node records of `q` (header part).
pub(crate) fn emit_records(q: &QuantWeights<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let o = |_| Error::BufferLength {
        buffer: Buffer::Output,
        expected: 0,
        found: 0,
    };
    let count = |n: usize| {
        u32::try_from(n)
            .map_err(|_| Error::from(FileError::new(part::INT8, "count too large", u32::MAX as u64, n as u64)))
    };
    let meta = Int8Meta {
        input_scale: q.input.scale,
        input_zero_point: q.input.zero_point,
        nodes: count(q.nodes.len())?,
        weights: count(q.weights.len())?,
        channels: count(q.bias.len())?,
    };
    sink.record(&meta).map_err(o)?;
    for n in q.nodes {
        let rec = Int8Node {
            scale: n.out.scale,
            zero_point: n.out.zero_point,
            act_min: n.act.min,
            act_max: n.act.max,
        };
        sink.record(&rec).map_err(o)?;
    }
    Ok(())
}

/// Writes the int8 data of `q` (data part), zero padded to a multiple of 4.
pub(crate) fn emit_data(q: &QuantWeights<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let o = |_| Error::BufferLength {
        buffer: Buffer::Output,
        expected: 0,
        found: 0,
    };
    for xs in [q.bias, q.multiplier, q.shift] {
        for v in xs {
            sink.put(&v.to_le_bytes()).map_err(o)?;
        }
    }
    sink.put(bytemuck::cast_slice(q.weights)).map_err(o)?;
    sink.zeros((4 - q.weights.len() % 4) % 4).map_err(o)
}
