//! Reading model files: [`ModelFile::parse`] validates every byte, then hands out the
//! architecture, the names and zero-copy views of the tensors.
//!
//! The checks run in this order, and the first that fails is the error (a [`FileError`]
//! naming the part, what was expected and what was found):
//!
//! 1. the fixed header: magic, version, flags, data offset and data length alignment, header
//!    length and file length against each other;
//! 2. the CRC-32 over everything before it;
//! 3. every header record in order: the meta record, the class names, the blocks and their
//!    layer records (names, references to earlier blocks, each block used once, nesting
//!    depth), the tensor table (role order, dtype, shape against element count, offsets
//!    exactly as the layout rule places them, inside the data), the training state and the
//!    optimizer tensors it implies; the records must fill the header exactly;
//! 4. padding bytes are zeros.
//!
//! Nothing is copied and nothing panics, whatever the bytes. What a parsed file holds is in
//! `view.rs`; checking it against a plan and rebuilding its layers in `load.rs`.

use super::crc::{crc32, crc32_parts};
use super::decode::{Bad, Cur, R};
use super::error::{part, FileError};
use super::int8::FLAG_INT8;
use super::names::MAX_DEPTH;
use super::tensors::{Layout, Role, DTYPE_F32};
use super::train::TrainState;
use super::wire::{
    self, KindRecord, LayerRecord, Meta, TensorRecord, CRC_LEN, EMPTY, FIXED, FLAG_RUN, FLAG_STATE_DICT, FLAG_TRAIN,
    MAX_RUN_RECORD,
};
use super::{MAGIC, VERSION};
use crate::error::{Error, Result};
use crate::shape::Shape;

/// A validated model file (or state dict, or checkpoint) borrowed from its bytes.
///
/// On a microcontroller the bytes are a `&'static [u8]` in flash and the parameters are used
/// in place ([`ModelFile::params`]); on a host they are a buffer read from disk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelFile<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) version: u16,
    pub(super) flags: u16,
    pub(super) data: usize,
    pub(super) crc: u32,
    pub(super) name: &'a str,
    pub(super) input: Shape,
    pub(super) classes: u32,
    pub(super) blocks: u32,
    pub(super) layers: u32,
    pub(super) nodes: u32,
    pub(super) tensors: u32,
    pub(super) classes_at: usize,
    pub(super) blocks_at: usize,
    pub(super) tensors_at: usize,
    pub(super) header_end: usize,
    /// Start (bytes from the data section) and length (floats) of the parameter, state and
    /// optimizer-state blocks.
    pub(super) regions: [(usize, usize); 3],
    pub(super) train: Option<TrainState>,
    /// The run record (flags bit 2).
    pub(super) run: Option<&'a str>,
    /// The int8 parts (flags bit 3).
    pub(super) int8: Option<super::int8::Int8Info>,
}

/// Postcard records (decoded by `super::decode`) between `pos` and `end` of the file.
pub(super) struct Records<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
    pub end: usize,
}

impl<'a> Records<'a> {
    /// The next record, decoded by `f` (`super::decode`); `part`/`index` name it in the error.
    /// A layer whose op family is not compiled in is refused with [`Error::NotCompiled`]
    /// (`layer`: the record's index in the file).
    pub fn decode<T>(
        &mut self,
        part: &'static str,
        index: Option<usize>,
        f: impl FnOnce(&mut Cur<'a>) -> R<T>,
    ) -> Result<T> {
        let mut c = Cur {
            b: self.bytes.get(self.pos..self.end).unwrap_or(&[]),
        };
        match f(&mut c) {
            Ok(v) => {
                self.pos = self.end - c.b.len();
                Ok(v)
            }
            Err(Bad::NotCompiled(op, feature)) => {
                Err(crate::ops::family::not_compiled(index.unwrap_or(0), op, feature))
            }
            Err(Bad::Malformed) => {
                let mut err = FileError::at_byte(
                    part,
                    "is not a valid record (malformed postcard, or past the header's end)",
                    self.pos,
                );
                if let Some(i) = index {
                    err = err.with_index(i);
                }
                Err(err.into())
            }
        }
    }

    /// The next record, a layer record.
    pub fn layer(&mut self, index: Option<usize>) -> Result<LayerRecord<'a>> {
        self.decode(part::LAYER, index, Cur::layer)
    }

    /// The next record, a `u32`.
    pub fn u32(&mut self, part: &'static str, index: Option<usize>) -> Result<u32> {
        self.decode(part, index, Cur::u32)
    }

    /// The next record, a string.
    pub fn str(&mut self, part: &'static str, index: Option<usize>) -> Result<&'a str> {
        self.decode(part, index, Cur::str)
    }

    /// The next record, a tensor record.
    pub fn tensor(&mut self, index: Option<usize>) -> Result<TensorRecord<'a>> {
        self.decode(part::TENSOR, index, Cur::tensor)
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

pub(super) fn err(
    part: &'static str,
    what: &'static str,
    expected: impl TryInto<u64>,
    found: impl TryInto<u64>,
) -> Error {
    FileError::new(
        part,
        what,
        expected.try_into().unwrap_or(u64::MAX),
        found.try_into().unwrap_or(u64::MAX),
    )
    .into()
}

impl<'a> ModelFile<'a> {
    /// Validates `bytes` as a model file and returns a view of it.
    ///
    /// The checks, in order (`docs/model-format.md`, section 7): the fixed header (magic,
    /// version, flags, data offset and length alignment, header length and file length against
    /// each other); the CRC-32; every record (meta, class names, blocks and layer records with
    /// their references and nesting depth, the tensor table with its roles, dtypes, shapes and
    /// offsets, the training state and the optimizer tensors it implies); zero padding.
    ///
    /// # Errors
    /// [`Error::ModelFile`] naming the part that is wrong, what was expected and found. Never
    /// panics, whatever the bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let len = bytes.len();
        // 1. Fixed header.
        let n = len.min(8);
        if bytes[..n] != MAGIC[..n] {
            let mut found = [0u8; 8];
            found[..n].copy_from_slice(&bytes[..n]);
            return Err(err(
                part::MAGIC,
                "not a torchlet model file",
                u64::from_le_bytes(MAGIC),
                u64::from_le_bytes(found),
            ));
        }
        if len < FIXED + CRC_LEN {
            return Err(err(
                part::FILE_LENGTH,
                "shorter than the fixed header and the CRC (truncated)",
                FIXED + CRC_LEN,
                len,
            ));
        }
        let version = u16_at(bytes, 8);
        if version == 0 || version > VERSION {
            return Err(err(part::VERSION, "unsupported format version", VERSION, version));
        }
        let flags = u16_at(bytes, 10);
        let known = FLAG_TRAIN | FLAG_STATE_DICT | FLAG_RUN | if version >= 2 { FLAG_INT8 } else { 0 };
        if flags & !known != 0 {
            return Err(err(part::FLAGS, "unknown flag bits are set", flags & known, flags));
        }
        // Version 2 is the int8 format; f32 files are written as version 1.
        if version >= 2 && flags & FLAG_INT8 == 0 {
            return Err(err(
                part::VERSION,
                "version 2 is the int8 format, and the int8 flag (bit 3) is not set",
                u64::from(super::VERSION_F32),
                version,
            ));
        }
        let h = u32_at(bytes, 12) as usize;
        let d = u32_at(bytes, 16) as usize;
        let l = u32_at(bytes, 20) as usize;
        if d % wire::ALIGN != 0 || d == 0 {
            return Err(err(
                part::DATA_OFFSET,
                "must be a positive multiple of 64",
                wire::align(d).unwrap_or(0).max(64),
                d,
            ));
        }
        if l % 4 != 0 {
            return Err(err(
                part::DATA_LENGTH,
                "must be a multiple of 4 (f32 data)",
                l - l % 4,
                l,
            ));
        }
        let header_end = FIXED.saturating_add(h);
        let header_ok = wire::align(header_end) == Some(d);
        let expected_len = d as u64 + l as u64 + CRC_LEN as u64;
        let file_ok = expected_len == len as u64;
        if !header_ok && !file_ok {
            return Err(err(
                part::DATA_OFFSET,
                "agrees with neither the header length nor the file length",
                wire::align(header_end).unwrap_or(0),
                d,
            ));
        }
        if !header_ok {
            return Err(err(
                part::HEADER_LENGTH,
                "must end in the 64 bytes before the data offset",
                d.saturating_sub(FIXED),
                h,
            ));
        }
        if !file_ok {
            // If the data length is the one wrong field, the CRC matches with the data length
            // the file's length implies: say so rather than "truncated".
            let implied = len.checked_sub(d + CRC_LEN).and_then(|n| u32::try_from(n).ok());
            if let Some(n) = implied.filter(|n| n % 4 == 0) {
                let crc = crc32_parts(&[&bytes[..20], &n.to_le_bytes(), &bytes[FIXED..len - CRC_LEN]]);
                if crc == u32_at(bytes, len - CRC_LEN) {
                    return Err(err(
                        part::DATA_LENGTH,
                        "disagrees with the file's length (the rest of the file is intact)",
                        n,
                        l,
                    ));
                }
            }
            return Err(err(
                part::FILE_LENGTH,
                "must be data offset + data length + 4 (truncated file, or wrong data length)",
                expected_len,
                len,
            ));
        }
        // 2. CRC.
        let body = len - CRC_LEN;
        let stored = u32_at(bytes, body);
        let crc = crc32(&bytes[..body]);
        if crc != stored {
            return Err(err(part::CRC, "checksum mismatch: the file is corrupted", stored, crc));
        }
        // 3. Records.
        let mut f = ModelFile {
            bytes,
            version,
            flags,
            data: d,
            crc,
            name: "",
            input: Shape::features(1),
            classes: 0,
            blocks: 0,
            layers: 0,
            nodes: 0,
            tensors: 0,
            classes_at: 0,
            blocks_at: 0,
            tensors_at: 0,
            header_end,
            regions: [(0, 0); 3],
            train: None,
            run: None,
            int8: None,
        };
        let int8 = flags & FLAG_INT8 != 0;
        if int8 && flags & (FLAG_TRAIN | FLAG_STATE_DICT) != 0 {
            return Err(err(
                part::FLAGS,
                "an int8 model is a whole model without a training state",
                FLAG_INT8 | (flags & FLAG_RUN),
                flags,
            ));
        }
        let mut r = Records {
            bytes,
            pos: FIXED,
            end: header_end,
        };
        f.read_meta(&mut r)?;
        f.classes_at = r.pos;
        for i in 0..f.classes as usize {
            r.str(part::CLASS_NAME, Some(i))?;
        }
        f.blocks_at = r.pos;
        f.read_blocks(&mut r)?;
        f.tensors_at = r.pos;
        if int8 && f.tensors != 0 {
            return Err(err(
                part::TENSOR_COUNT,
                "an int8 model holds no f32 tensors",
                0u64,
                f.tensors,
            ));
        }
        f.read_tensors(&mut r, if int8 { 0 } else { l })?;
        f.read_trailing(&mut r)?;
        if int8 {
            f.read_int8(&mut r, l)?;
        }
        if r.pos != header_end {
            return Err(err(
                part::HEADER_LENGTH,
                "the records end before the header does",
                r.pos - FIXED,
                h,
            ));
        }
        f.check_optimizer_tensors()?;
        // 4. Padding between the header and the data.
        check_zeros(bytes, header_end, d)?;
        Ok(f)
    }

    /// The records after the tensors: the training state (flags bit 0), the run record (bit 2).
    fn read_trailing(&mut self, r: &mut Records<'a>) -> Result<()> {
        if self.flags & FLAG_TRAIN != 0 {
            self.train = Some(r.decode(part::TRAINING_STATE, None, Cur::train)?);
        }
        if self.flags & FLAG_RUN != 0 {
            let run: &'a str = r.str(part::RUN_RECORD, None)?;
            if run.len() > MAX_RUN_RECORD {
                return Err(err(part::RUN_RECORD, "too long", MAX_RUN_RECORD, run.len()));
            }
            self.run = Some(run);
        }
        Ok(())
    }

    fn read_meta(&mut self, r: &mut Records<'a>) -> Result<()> {
        let meta: Meta<'a> = r.decode(part::META, None, Cur::meta)?;
        let dims = meta.input.as_slice();
        if dims.is_empty() || dims.len() > 4 {
            return Err(err(part::INPUT_SHAPE, "rank must be 1 to 4", 4u64, dims.len()));
        }
        let mut d = [1usize; 4];
        let mut numel = 1usize;
        for (x, &v) in d.iter_mut().zip(dims) {
            *x = usize::try_from(v).ok().filter(|&v| v > 0).ok_or(err(
                part::INPUT_SHAPE,
                "dims must be positive and fit in usize",
                1u64,
                v,
            ))?;
            numel = numel
                .checked_mul(*x)
                .ok_or(err(part::INPUT_SHAPE, "too many elements", usize::MAX, v))?;
        }
        self.input = Shape::from_dims(&d[..dims.len()]).unwrap_or(Shape::features(1));
        let state_dict = self.flags & FLAG_STATE_DICT != 0;
        if state_dict && (meta.classes | meta.blocks | meta.layers) != 0 {
            return Err(err(
                part::META,
                "a state dict has no classes, blocks or layers",
                0u64,
                meta.classes | meta.blocks | meta.layers,
            ));
        }
        if !state_dict && meta.blocks == 0 {
            return Err(err(
                part::META,
                "a model file has at least one block (the root)",
                1u64,
                0u64,
            ));
        }
        self.name = meta.name;
        self.classes = meta.classes;
        self.blocks = meta.blocks;
        self.layers = meta.layers;
        self.tensors = meta.tensors;
        Ok(())
    }

    fn read_blocks(&mut self, r: &mut Records<'a>) -> Result<()> {
        let mut next_ref = 0u32;
        let mut index = 0usize;
        for k in 0..self.blocks {
            let count: u32 = r.u32(part::BLOCK, Some(k as usize))?;
            for _ in 0..count {
                let at = r.pos;
                let l = r.layer(Some(index))?;
                if l.name.contains('.') {
                    return Err(FileError::at_byte(part::LAYER_NAME, "must not contain '.'", at)
                        .with_index(index)
                        .into());
                }
                let mut check = |x: u32| -> Result<()> {
                    if x == EMPTY {
                        return Ok(());
                    }
                    if x != next_ref {
                        let e = FileError::new(
                            part::LAYER_REFERENCE,
                            "references must name blocks 0, 1, 2, ... in file order",
                            next_ref as u64,
                            x as u64,
                        );
                        return Err(e.with_index(index).into());
                    }
                    if x >= k {
                        let e = FileError::new(part::LAYER_REFERENCE, "must name an earlier block", k as u64, x as u64);
                        return Err(e.with_index(index).into());
                    }
                    next_ref += 1;
                    Ok(())
                };
                match l.kind {
                    KindRecord::Op(_) => self.nodes += 1,
                    KindRecord::Sequential(x) => check(x)?,
                    KindRecord::Merge { a, b, .. } => {
                        check(a)?;
                        check(b)?;
                        self.nodes += 1;
                    }
                }
                index += 1;
            }
        }
        if index != self.layers as usize {
            return Err(err(
                part::META,
                "layer count differs from the layer records of the blocks",
                self.layers,
                index,
            ));
        }
        if self.blocks > 0 && next_ref != self.blocks - 1 {
            return Err(err(
                part::LAYER_REFERENCE,
                "every block but the root must be used exactly once",
                self.blocks - 1,
                next_ref,
            ));
        }
        // Nesting depth: the root's children are the blocks its references name, and so on
        // down; with references in order, each level is a contiguous range of blocks.
        let (mut a, mut b) = (self.blocks.saturating_sub(1), self.blocks);
        let mut levels = 0usize;
        while a < b {
            levels += 1;
            if levels > MAX_DEPTH {
                return Err(err(
                    part::NESTING,
                    "containers are nested deeper than the format allows",
                    MAX_DEPTH,
                    levels,
                ));
            }
            (a, b) = self.refs_before(a, b, r.pos)?;
        }
        Ok(())
    }

    /// The number of block references in blocks `0..a` and in blocks `0..b`.
    fn refs_before(&self, a: u32, b: u32, end: usize) -> Result<(u32, u32)> {
        let mut r = Records {
            bytes: self.bytes,
            pos: self.blocks_at,
            end,
        };
        let (mut refs, mut at_a) = (0u32, 0u32);
        for k in 0..b {
            if k == a {
                at_a = refs;
            }
            let count: u32 = r.u32(part::BLOCK, Some(k as usize))?;
            for _ in 0..count {
                let l = r.layer(None)?;
                let n = |x: u32| (x != EMPTY) as u32;
                refs += match l.kind {
                    KindRecord::Op(_) => 0,
                    KindRecord::Sequential(x) => n(x),
                    KindRecord::Merge { a, b, .. } => n(a) + n(b),
                };
            }
        }
        Ok((at_a, refs))
    }

    fn read_tensors(&mut self, r: &mut Records<'a>, data_len: usize) -> Result<()> {
        let mut layout = Layout::default();
        let mut prev_role = 0u8;
        for t in 0..self.tensors as usize {
            let at = r.pos;
            let rec: TensorRecord<'a> = r.tensor(Some(t))?;
            let fail = |part, what, expected: u64, found: u64| -> Error {
                FileError::new(part, what, expected, found).with_index(t).into()
            };
            if rec.name.is_empty() {
                return Err(FileError::at_byte(part::TENSOR_NAME, "must not be empty", at)
                    .with_index(t)
                    .into());
            }
            if Role::from_code(rec.role).is_none() {
                return Err(fail(
                    part::TENSOR_ROLE,
                    "unknown role (0 parameter, 1 state, 2 optimizer)",
                    2,
                    rec.role as u64,
                ));
            }
            if rec.role < prev_role {
                return Err(fail(
                    part::TENSOR_ROLE,
                    "tensors must be sorted by role",
                    prev_role as u64,
                    rec.role as u64,
                ));
            }
            if rec.role == Role::Optimizer.code() && self.flags & FLAG_TRAIN == 0 {
                return Err(fail(
                    part::TENSOR_ROLE,
                    "optimizer state needs a training state (flags bit 0)",
                    1,
                    rec.role as u64,
                ));
            }
            if rec.dtype != DTYPE_F32 {
                return Err(fail(
                    part::TENSOR_DTYPE,
                    "unknown dtype (0: f32)",
                    DTYPE_F32 as u64,
                    rec.dtype as u64,
                ));
            }
            let numel = rec.shape.numel().ok_or(fail(
                part::TENSOR_SHAPE,
                "element count overflows",
                u64::MAX,
                u64::MAX - 1,
            ))?;
            if numel != rec.numel {
                return Err(fail(
                    part::TENSOR_SHAPE,
                    "numel differs from the product of the shape",
                    numel,
                    rec.numel,
                ));
            }
            let before = layout.cursor;
            let numel = usize::try_from(numel).ok().filter(|&n| n <= data_len / 4).ok_or(fail(
                part::TENSOR_SHAPE,
                "more elements than the data section holds",
                (data_len / 4) as u64,
                numel,
            ))?;
            let offset =
                layout
                    .place(rec.role, numel)
                    .ok_or(fail(part::TENSOR_OFFSET, "offset overflows", 0, rec.offset))?;
            if rec.offset != offset as u64 {
                return Err(fail(
                    part::TENSOR_OFFSET,
                    "must follow the previous tensor (each role's block starts 64-byte aligned)",
                    offset as u64,
                    rec.offset,
                ));
            }
            if layout.cursor > data_len {
                return Err(fail(
                    part::TENSOR_OFFSET,
                    "the tensor ends beyond the data section",
                    data_len as u64,
                    layout.cursor as u64,
                ));
            }
            check_zeros(self.bytes, self.data + before, self.data + offset)?;
            prev_role = rec.role;
        }
        if layout.cursor != data_len {
            return Err(err(
                part::DATA_LENGTH,
                "must end where the last tensor ends",
                layout.cursor,
                data_len,
            ));
        }
        self.regions = layout.blocks;
        Ok(())
    }

    fn check_optimizer_tensors(&self) -> Result<()> {
        let names: &[&str] = self.train.map_or(&[], |t| t.optimizer.state_names());
        let p = self.regions[0].1;
        let mut count = 0usize;
        for (t, info) in self.tensors().enumerate().filter(|(_, i)| i.role == Role::Optimizer) {
            let fail = |what, expected: u64, found: u64| -> Error {
                FileError::new(part::OPTIMIZER_STATE, what, expected, found)
                    .with_index(t)
                    .into()
            };
            let Some(name) = names.get(count) else {
                return Err(fail(
                    "more optimizer tensors than the optimizer has",
                    names.len() as u64,
                    count as u64 + 1,
                ));
            };
            if info.name.strip_prefix("optimizer.") != Some(*name) {
                return Err(fail(
                    "tensor name differs from the optimizer's state (optimizer.exp_avg, ...)",
                    count as u64,
                    u64::MAX,
                ));
            }
            if info.dims() != [p as u64] {
                return Err(fail("shape must be [parameter count]", p as u64, info.numel as u64));
            }
            count += 1;
        }
        if count != names.len() {
            return Err(err(
                part::OPTIMIZER_STATE,
                "fewer optimizer tensors than the optimizer has",
                names.len(),
                count,
            ));
        }
        Ok(())
    }
}

/// Checks that `bytes[from..to]` are zeros.
pub(super) fn check_zeros(bytes: &[u8], from: usize, to: usize) -> Result<()> {
    let gap = bytes.get(from..to).unwrap_or(&[]);
    match gap.iter().position(|&b| b != 0) {
        Some(i) => Err(FileError::at_byte(part::PADDING, "must be zero", from + i).into()),
        None => Ok(()),
    }
}
