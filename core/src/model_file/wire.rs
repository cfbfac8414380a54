//! The records of a model file's header and the byte sink the writer encodes them into.
//!
//! Each record is one postcard value (see `docs/model-format.md` for the byte-level encoding).
//! The reader decodes them one at a time with `postcard::take_from_bytes`, borrowing names
//! from the file; the writer encodes them with [`Sink`], which either counts bytes, writes
//! them into the caller's buffer, or compares them with existing bytes (to check that a file
//! holds exactly the architecture of a plan).

use core::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::layer::{Merge, Op};

/// Bytes of the fixed header: magic, version, flags, header length, data offset, data length.
pub(crate) const FIXED: usize = 24;
/// Alignment of the data section and of each data block, in bytes.
pub(crate) const ALIGN: usize = 64;
/// Bytes of the CRC at the end.
pub(crate) const CRC_LEN: usize = 4;
/// A block reference meaning "no block": an empty container (the identity branch).
pub(crate) const EMPTY: u32 = u32::MAX;
/// Flags bit 0: the file holds a training-state record.
pub(crate) const FLAG_TRAIN: u16 = 1;
/// Flags bit 1: a state dict (no architecture).
pub(crate) const FLAG_STATE_DICT: u16 = 2;
/// Flags bit 2: the file holds a run record (how the run that produced it was configured).
pub(crate) const FLAG_RUN: u16 = 4;
/// The longest run record a reader accepts, in bytes.
pub const MAX_RUN_RECORD: usize = 64 * 1024;

/// Rounds `n` up to a multiple of [`ALIGN`] (`None` on overflow).
pub(crate) const fn align(n: usize) -> Option<usize> {
    match n.checked_add(ALIGN - 1) {
        Some(m) => Some(m / ALIGN * ALIGN),
        None => None,
    }
}

/// The most dims a tensor shape in a file can have.
pub const MAX_RANK: usize = 6;

/// A tensor shape as stored in a file: up to [`MAX_RANK`] dims (rank 0 is a scalar).
///
/// Encoded as a postcard sequence of varints: the rank, then each dim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dims {
    rank: u8,
    dims: [u64; MAX_RANK],
}

impl Dims {
    /// A shape from its dims; `None` for more than [`MAX_RANK`] dims.
    pub fn new(dims: &[u64]) -> Option<Self> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut d = Dims {
            rank: dims.len() as u8,
            dims: [0; MAX_RANK],
        };
        d.dims[..dims.len()].copy_from_slice(dims);
        Some(d)
    }

    /// The dims, `rank` of them.
    pub fn as_slice(&self) -> &[u64] {
        &self.dims[..(self.rank as usize).min(MAX_RANK)]
    }

    /// Number of elements: the product of the dims (1 for a scalar); `None` on overflow.
    pub fn numel(&self) -> Option<u64> {
        self.as_slice().iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }
}

impl fmt::Display for Dims {
    /// As PyTorch prints sizes: `[64, 3, 5, 5]`, `[]` for a scalar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl Serialize for Dims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.as_slice().len()))?;
        for d in self.as_slice() {
            seq.serialize_element(d)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Dims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DimsVisitor;
        impl<'de> Visitor<'de> for DimsVisitor {
            type Value = Dims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("at most 6 dims")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dims, A::Error> {
                if seq.size_hint().is_some_and(|n| n > MAX_RANK) {
                    return Err(de::Error::invalid_length(seq.size_hint().unwrap_or(0), &self));
                }
                let mut d = Dims::default();
                while let Some(v) = seq.next_element::<u64>()? {
                    if d.rank as usize == MAX_RANK {
                        return Err(de::Error::invalid_length(MAX_RANK + 1, &self));
                    }
                    d.dims[d.rank as usize] = v;
                    d.rank += 1;
                }
                Ok(d)
            }
        }
        deserializer.deserialize_seq(DimsVisitor)
    }
}

/// Record 1: the model's name, input shape and the counts of the records that follow.
#[derive(Serialize, Deserialize)]
pub(crate) struct Meta<'a> {
    pub name: &'a str,
    /// Shape of one input sample (rank 1 to 4).
    pub input: Dims,
    pub classes: u32,
    pub blocks: u32,
    /// Layer records over all blocks.
    pub layers: u32,
    pub tensors: u32,
}

/// What a layer record is: an operation, or a container referencing earlier blocks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum KindRecord {
    /// A computing layer.
    Op(Op),
    /// A nested `nn.Sequential`: the block with its layers ([`EMPTY`] for none).
    Sequential(u32),
    /// Two branches (blocks, [`EMPTY`] for the identity) and how they merge.
    Merge { merge: Merge, a: u32, b: u32 },
}

/// A layer of a block: its name in its container (empty: its index) and what it is.
#[derive(Serialize, Deserialize)]
pub(crate) struct LayerRecord<'a> {
    pub name: &'a str,
    pub kind: KindRecord,
}

/// A tensor of the data section, as read.
#[derive(Serialize, Deserialize)]
pub(crate) struct TensorRecord<'a> {
    pub name: &'a str,
    pub role: u8,
    pub dtype: u8,
    pub shape: Dims,
    /// Bytes from the start of the data section.
    pub offset: u64,
    pub numel: u64,
}

/// A tensor record as written: the same wire bytes as [`TensorRecord`], with a name that is
/// formatted while it is encoded (a layer path and a suffix), so no string is ever built.
#[derive(Serialize)]
pub(crate) struct TensorRecordOut<N: fmt::Display> {
    #[serde(serialize_with = "collect_str")]
    pub name: N,
    pub role: u8,
    pub dtype: u8,
    pub shape: Dims,
    pub offset: u64,
    pub numel: u64,
}

fn collect_str<N: fmt::Display, S: Serializer>(name: &N, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(name)
}

/// Where encoded bytes go.
pub(crate) enum Mode<'b> {
    /// Nowhere: only count them.
    Count,
    /// Into this buffer.
    Write(&'b mut [u8]),
    /// Compare them with these bytes; remember the first difference.
    Compare(&'b [u8]),
}

/// A byte cursor for the writer (see [`Mode`]).
pub(crate) struct Sink<'b> {
    pub mode: Mode<'b>,
    /// Position of the next byte in the file.
    pub pos: usize,
    /// In [`Mode::Compare`]: the position of the first chunk that differs.
    pub diff: Option<usize>,
}

/// The buffer of a [`Sink`] is too short (the writer sized it wrongly; never expected).
#[derive(Debug)]
pub(crate) struct Overflow;

impl<'b> Sink<'b> {
    pub fn new(mode: Mode<'b>, pos: usize) -> Self {
        Sink { mode, pos, diff: None }
    }

    /// Appends `data` at `pos`.
    pub fn put(&mut self, data: &[u8]) -> Result<(), Overflow> {
        let end = self.pos.checked_add(data.len()).ok_or(Overflow)?;
        match &mut self.mode {
            Mode::Count => {}
            Mode::Write(buf) => buf.get_mut(self.pos..end).ok_or(Overflow)?.copy_from_slice(data),
            Mode::Compare(buf) => {
                if buf.get(self.pos..end) != Some(data) && self.diff.is_none() {
                    self.diff = Some(self.pos);
                }
            }
        }
        self.pos = end;
        Ok(())
    }

    /// Appends `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> Result<(), Overflow> {
        let z = [0u8; ALIGN];
        let mut left = n;
        while left > 0 {
            let k = left.min(ALIGN);
            self.put(&z[..k])?;
            left -= k;
        }
        Ok(())
    }

    /// Appends `value`, postcard-encoded.
    pub fn record<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Overflow> {
        postcard::serialize_with_flavor(value, Flavor(self)).map_err(|_| Overflow)
    }

    /// Appends floats as little-endian `f32`.
    pub fn floats(&mut self, xs: &[f32]) -> Result<(), Overflow> {
        for x in xs {
            self.put(&x.to_le_bytes())?;
        }
        Ok(())
    }
}

/// Adapts a [`Sink`] to postcard's serializer.
struct Flavor<'s, 'b>(&'s mut Sink<'b>);

impl postcard::ser_flavors::Flavor for Flavor<'_, '_> {
    type Output = ();
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put(&[data]).map_err(|_| postcard::Error::SerializeBufferFull)
    }
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.put(data).map_err(|_| postcard::Error::SerializeBufferFull)
    }
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Compares a string with pieces written through `core::fmt::Write` (a name that is never
/// built), without allocating.
pub(crate) struct StrEq<'s> {
    rest: &'s [u8],
    ok: bool,
}

impl<'s> StrEq<'s> {
    pub fn new(s: &'s str) -> Self {
        StrEq {
            rest: s.as_bytes(),
            ok: true,
        }
    }
    /// Whether everything written so far equals the whole string.
    pub fn matches(&self) -> bool {
        self.ok && self.rest.is_empty()
    }

    /// Compares the next piece `s`.
    pub fn push(&mut self, s: &str) {
        match self.rest.strip_prefix(s.as_bytes()) {
            Some(r) if self.ok => self.rest = r,
            _ => self.ok = false,
        }
    }
}

impl fmt::Write for StrEq<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_round_trip_as_a_postcard_sequence() {
        let d = Dims::new(&[64, 3, 5, 5]).unwrap();
        let mut buf = [0u8; 16];
        let used = postcard::to_slice(&d, &mut buf).unwrap();
        assert_eq!(used, &[4, 64, 3, 5, 5]);
        let (back, rest): (Dims, _) = postcard::take_from_bytes(&buf[..5]).unwrap();
        assert_eq!(back, d);
        assert!(rest.is_empty());
        assert_eq!(back.numel(), Some(64 * 75));
        // Seven dims are rejected, not truncated.
        assert!(postcard::take_from_bytes::<Dims>(&[7, 1, 1, 1, 1, 1, 1, 1]).is_err());
        assert_eq!(Dims::new(&[]).unwrap().numel(), Some(1));
    }

    #[test]
    fn str_eq_compares_pieces() {
        use core::fmt::Write;
        let mut e = StrEq::new("0.body.1.weight");
        for piece in ["0", ".", "body", ".1", ".weight"] {
            e.write_str(piece).unwrap();
        }
        assert!(e.matches());
        let mut e = StrEq::new("0.body");
        write!(e, "0.bo").unwrap();
        assert!(!e.matches());
        let mut e = StrEq::new("0");
        write!(e, "0.x").unwrap();
        assert!(!e.matches());
    }
}
