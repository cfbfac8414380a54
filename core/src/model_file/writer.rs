//! Writing model files, state dicts and checkpoints into a caller-owned buffer.
//!
//! Two passes over the same code: the first counts bytes ([`encoded_len`]), the second
//! writes them ([`encode`]) into a buffer at least that long. Names are formatted straight
//! into the buffer, so nothing is allocated; a firmware can save a checkpoint into a `static`
//! buffer and write it to flash.

use super::error::{part, FileError};
use super::names::{for_each_node, TensorName};
use super::tensors::{node_tensors, Layout, Role, DTYPE_F32};
use super::train::TrainState;
use super::tree::{self, TreeStats};
use super::wire::{
    self, Meta, Mode, Sink, TensorRecordOut, CRC_LEN, FIXED, FLAG_RUN, FLAG_STATE_DICT, FLAG_TRAIN, MAX_RUN_RECORD,
};
use super::{ModelSpec, MAGIC, VERSION, VERSION_F32};
use crate::error::{check_len, Buffer, Error, Result};
use crate::plan::Plan;
use crate::quant::QuantWeights;

/// Bytes of the model file [`encode`] writes for these arguments.
///
/// # Errors
/// As [`encode`], except for the output buffer.
pub fn encoded_len<const CAP: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    params: &[f32],
    state: &[f32],
    train: Option<(&TrainState, &[f32])>,
) -> Result<usize> {
    write(false, spec, plan, params, state, train, None, Mode::Count)
}

/// Writes a model file (architecture, class names, parameters, state and optionally the
/// training state of a checkpoint) into `out`; returns the number of bytes written, which is
/// [`encoded_len`].
///
/// - `spec`: the model's name, layers, input shape and class names; its layers and input must
///   be the plan's.
/// - `params`: `plan.param_len()` floats; `state`: `plan.state_len()` floats.
/// - `train`: for a checkpoint, the training state and the optimizer's state buffer
///   (`record.state_len(plan.param_len())` floats).
///
/// # Errors
/// [`Error::BufferLength`] for a buffer of the wrong length (or an `out` shorter than
/// [`encoded_len`]), [`Error::Structure`] if `spec` and `plan` describe different models, a
/// [`FileError`] for a layer name with a `.`, containers nested deeper than
/// [`super::MAX_DEPTH`] or a file over 4 GiB.
pub fn encode<const CAP: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    params: &[f32],
    state: &[f32],
    train: Option<(&TrainState, &[f32])>,
    out: &mut [u8],
) -> Result<usize> {
    let len = encoded_len(spec, plan, params, state, train)?;
    let found = out.len();
    let out = out.get_mut(..len).ok_or(Error::BufferLength {
        buffer: Buffer::Output,
        expected: len,
        found,
    })?;
    write(false, spec, plan, params, state, train, None, Mode::Write(out))
}

/// Bytes of the state dict [`encode_state_dict`] writes.
///
/// # Errors
/// As [`encode_state_dict`], except for the output buffer.
pub fn encoded_state_dict_len<const CAP: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    params: &[f32],
    state: &[f32],
    train: Option<(&TrainState, &[f32])>,
) -> Result<usize> {
    write(true, spec, plan, params, state, train, None, Mode::Count)
}

/// Writes a state dict: as [`encode`] without the architecture and class names (flags bit 1).
/// The tensors keep their names and shapes, so a state dict loads into any plan whose
/// parameters are named and shaped the same ([`super::ModelFile::check_plan`]).
///
/// # Errors
/// As [`encode`].
pub fn encode_state_dict<const CAP: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    params: &[f32],
    state: &[f32],
    train: Option<(&TrainState, &[f32])>,
    out: &mut [u8],
) -> Result<usize> {
    let len = encoded_state_dict_len(spec, plan, params, state, train)?;
    let found = out.len();
    let out = out.get_mut(..len).ok_or(Error::BufferLength {
        buffer: Buffer::Output,
        expected: len,
        found,
    })?;
    write(true, spec, plan, params, state, train, None, Mode::Write(out))
}

fn overflow(_: wire::Overflow) -> Error {
    Error::BufferLength {
        buffer: Buffer::Output,
        expected: 0,
        found: 0,
    }
}

fn too_large(what: &'static str, size: usize) -> Error {
    FileError::new(
        what,
        "too large for a version 1 file (4 GiB)",
        u32::MAX as u64,
        size as u64,
    )
    .into()
}

/// Bytes of the int8 model file [`encode_int8`] writes.
///
/// # Errors
/// As [`encode_int8`], except for the output buffer.
pub fn encoded_int8_len<const CAP: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    q: &QuantWeights<'_>,
) -> Result<usize> {
    write(false, spec, plan, &[], &[], None, Some(q), Mode::Count)
}

/// Writes an int8 model file (format version 2, flags bit 3): the architecture, class names and
/// run record of `spec`, no `f32` tensors, and the quantised parameters `q` (see
/// `docs/model-format.md`, section 10); returns the bytes written ([`encoded_int8_len`]).
///
/// # Errors
/// As [`encode`]; also parameters whose lengths are not `plan`'s int8
/// [`layout`](crate::quant::layout), or a plan node without an int8 form.
pub fn encode_int8<const CAP: usize>(
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    q: &QuantWeights<'_>,
    out: &mut [u8],
) -> Result<usize> {
    let len = encoded_int8_len(spec, plan, q)?;
    let found = out.len();
    let out = out.get_mut(..len).ok_or(Error::BufferLength {
        buffer: Buffer::Output,
        expected: len,
        found,
    })?;
    write(false, spec, plan, &[], &[], None, Some(q), Mode::Write(out))
}

/// Checks `q`'s lengths against `plan`'s int8 layout.
fn check_int8<const CAP: usize>(plan: &Plan<CAP>, q: &QuantWeights<'_>) -> Result<()> {
    let l = crate::quant::layout(plan)?;
    check_len(Buffer::Params, l.weights, q.weights.len())?;
    for xs in [q.bias, q.multiplier, q.shift] {
        check_len(Buffer::Params, l.channels, xs.len())?;
    }
    check_len(Buffer::State, plan.len(), q.nodes.len())
}

#[allow(clippy::too_many_arguments)]
fn write<const CAP: usize>(
    state_dict: bool,
    spec: &ModelSpec<'_>,
    plan: &Plan<CAP>,
    params: &[f32],
    state: &[f32],
    train: Option<(&TrainState, &[f32])>,
    int8: Option<&QuantWeights<'_>>,
    mode: Mode<'_>,
) -> Result<usize> {
    let same_layers = core::ptr::eq(spec.layers, plan.layers()) || spec.layers == plan.layers();
    if !same_layers || spec.input != plan.input_shape() {
        return Err(Error::Structure {
            what: "the spec's layers or input shape differ from the plan's",
        });
    }
    match int8 {
        Some(q) => check_int8(plan, q)?,
        None => {
            check_len(Buffer::Params, plan.param_len(), params.len())?;
            check_len(Buffer::State, plan.state_len(), state.len())?;
        }
    }
    let opt_names: &[&str] = match train {
        Some((t, opt)) => {
            let want = t.optimizer.state_len(params.len()).ok_or(Error::Capacity {
                capacity: usize::MAX,
                needed: 0,
            })?;
            check_len(Buffer::OptimizerState, want, opt.len())?;
            t.optimizer.state_names()
        }
        None => &[],
    };
    let opt_state = train.map_or(&[][..], |t| t.1);
    let tree = if state_dict {
        TreeStats::default()
    } else {
        tree::stats(spec.layers)?
    };
    let nodes = plan.nodes();
    let node = |i: usize| {
        nodes.get(i).ok_or(Error::Structure {
            what: "the spec's layers differ from the plan's",
        })
    };

    // The tensor table, placed.
    let (layout, tensors) = match int8 {
        Some(_) => (Layout::default(), 0),
        None => place_tensors(spec.layers, &node, opt_names.len(), params.len())?,
    };
    let data_len = match int8 {
        Some(q) => super::int8::data_len(q.weights.len(), q.bias.len())
            .ok_or_else(|| too_large(part::DATA_LENGTH, usize::MAX))?,
        None => layout.cursor,
    };
    let blocks = layout.blocks;

    let mut sink = Sink::new(mode, FIXED);
    let o = overflow;
    let classes = if state_dict { &[][..] } else { spec.classes };
    let input = spec.input.dims();
    let mut dims = [0u64; 4];
    for (d, &s) in dims.iter_mut().zip(input) {
        *d = s as u64;
    }
    let meta = Meta {
        name: spec.name,
        input: wire::Dims::new(&dims[..input.len()]).unwrap_or_default(),
        classes: u32::try_from(classes.len()).map_err(|_| too_large(part::META, classes.len()))?,
        blocks: tree.blocks(),
        layers: tree.layers,
        tensors: u32::try_from(tensors).map_err(|_| too_large(part::META, tensors))?,
    };
    sink.record(&meta).map_err(o)?;
    for c in classes {
        sink.record(c).map_err(o)?;
    }
    if !state_dict {
        tree::emit(spec.layers, &tree, &mut sink).map_err(o)?;
    }
    if int8.is_none() {
        emit_tensor_records(spec.layers, &node, opt_names, params.len(), &mut sink)?;
    }
    if let Some((t, _)) = train {
        sink.record(t).map_err(o)?;
    }
    if let Some(run) = spec.run {
        if run.len() > MAX_RUN_RECORD {
            return Err(FileError::new(part::RUN_RECORD, "too long", MAX_RUN_RECORD as u64, run.len() as u64).into());
        }
        sink.record(&run).map_err(o)?;
    }
    if let Some(q) = int8 {
        super::int8::emit_records(q, &mut sink)?;
    }

    let header_len = sink.pos - FIXED;
    let data = wire::align(sink.pos).ok_or_else(|| too_large(part::HEADER_LENGTH, header_len))?;
    let total = data
        .checked_add(data_len)
        .and_then(|n| n.checked_add(CRC_LEN))
        .ok_or_else(|| too_large(part::DATA_LENGTH, data_len))?;
    if total > u32::MAX as usize {
        return Err(too_large(part::FILE_LENGTH, total));
    }
    sink.zeros(data - sink.pos).map_err(o)?;
    if let Some(q) = int8 {
        super::int8::emit_data(q, &mut sink)?;
    }
    // Data blocks: parameters, state, optimizer state, each at its aligned start.
    for (role, xs) in [params, state, opt_state].into_iter().enumerate() {
        if blocks[role].1 > 0 || !xs.is_empty() {
            let start = data + blocks[role].0;
            sink.zeros(start.saturating_sub(sink.pos)).map_err(o)?;
            sink.floats(xs).map_err(o)?;
        }
    }
    sink.zeros((data + data_len).saturating_sub(sink.pos)).map_err(o)?;
    debug_assert_eq!(sink.pos, data + data_len);

    let flags = if train.is_some() { FLAG_TRAIN } else { 0 }
        | if state_dict { FLAG_STATE_DICT } else { 0 }
        | if spec.run.is_some() { FLAG_RUN } else { 0 }
        | if int8.is_some() { super::int8::FLAG_INT8 } else { 0 };
    let version = if int8.is_some() { VERSION } else { VERSION_F32 };
    if let Mode::Write(buf) = &mut sink.mode {
        finish(buf, version, flags, header_len, data, data_len)?;
    }
    Ok(total)
}

/// Places every tensor of the model (parameters, then state, then `opt_tensors` optimizer
/// tensors of `param_len` floats) in the data section; returns the layout and the tensor count.
fn place_tensors<'n>(
    layers: &[crate::layer::Layer],
    node: &dyn Fn(usize) -> Result<&'n crate::plan::Node>,
    opt_tensors: usize,
    param_len: usize,
) -> Result<(Layout, usize)> {
    let mut layout = Layout::default();
    let mut tensors = 0usize;
    for role in [Role::Parameter, Role::State] {
        for_each_node(layers, |i, _| {
            node_tensors(node(i)?, |t| {
                if t.role == role {
                    layout
                        .place(role.code(), t.numel)
                        .ok_or_else(|| too_large(part::DATA_LENGTH, usize::MAX))?;
                    tensors += 1;
                }
                Ok(())
            })
        })?;
    }
    for _ in 0..opt_tensors {
        layout
            .place(Role::Optimizer.code(), param_len)
            .ok_or_else(|| too_large(part::DATA_LENGTH, usize::MAX))?;
        tensors += 1;
    }
    Ok((layout, tensors))
}

/// Writes the tensor records, in the order and at the offsets of [`place_tensors`].
fn emit_tensor_records<'n>(
    layers: &[crate::layer::Layer],
    node: &dyn Fn(usize) -> Result<&'n crate::plan::Node>,
    opt_names: &[&str],
    param_len: usize,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let mut place = Layout::default();
    for role in [Role::Parameter, Role::State] {
        for_each_node(layers, |i, path| {
            node_tensors(node(i)?, |t| {
                if t.role != role {
                    return Ok(());
                }
                let offset = place.place(role.code(), t.numel).unwrap_or(0);
                let name = TensorName { path, suffix: t.suffix };
                let rec = TensorRecordOut {
                    name,
                    role: role.code(),
                    dtype: DTYPE_F32,
                    shape: t.shape,
                    offset: offset as u64,
                    numel: t.numel as u64,
                };
                sink.record(&rec).map_err(overflow)
            })
        })?;
    }
    for name in opt_names {
        let offset = place.place(Role::Optimizer.code(), param_len).unwrap_or(0);
        let shape = wire::Dims::new(&[param_len as u64]).unwrap_or_default();
        let rec = TensorRecordOut {
            name: OptName(name),
            role: Role::Optimizer.code(),
            dtype: DTYPE_F32,
            shape,
            offset: offset as u64,
            numel: param_len as u64,
        };
        sink.record(&rec).map_err(overflow)?;
    }
    Ok(())
}

/// Writes the fixed header at the start of `buf` and the CRC after the data.
fn finish(buf: &mut [u8], version: u16, flags: u16, header_len: usize, data: usize, data_len: usize) -> Result<()> {
    let mut fixed = [0u8; FIXED];
    fixed[..8].copy_from_slice(&MAGIC);
    fixed[8..10].copy_from_slice(&version.to_le_bytes());
    fixed[10..12].copy_from_slice(&flags.to_le_bytes());
    fixed[12..16].copy_from_slice(&(header_len as u32).to_le_bytes());
    fixed[16..20].copy_from_slice(&(data as u32).to_le_bytes());
    fixed[20..24].copy_from_slice(&(data_len as u32).to_le_bytes());
    let end = data + data_len;
    buf.get_mut(..FIXED)
        .ok_or(overflow(wire::Overflow))?
        .copy_from_slice(&fixed);
    let crc = super::crc::crc32(buf.get(..end).ok_or(overflow(wire::Overflow))?);
    buf.get_mut(end..end + CRC_LEN)
        .ok_or(overflow(wire::Overflow))?
        .copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The name of an optimizer tensor: `optimizer.{name}`.
struct OptName<'n>(&'n str);

impl core::fmt::Display for OptName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "optimizer.{}", self.0)
    }
}
