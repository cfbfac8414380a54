//! The architecture as blocks: how a tree of containers is laid out as a flat list.
//!
//! Every non-empty container (the root model, each `Sequential`, each non-empty branch of a
//! merge) is one block: its layer count, then its layer records, which reference the blocks
//! of their containers by index ([`EMPTY`] for an empty one). Blocks are ordered by level,
//! deepest first, and within a level in model order (breadth-first); the root is last. Then
//! every reference points to an earlier block, and the references read in file order are
//! exactly `0, 1, 2, ..., blocks - 2`: each block but the root is used exactly once. A reader
//! checks both with one counter, and rebuilds the tree in one pass because a block's children
//! are always finished before it.

use super::error::{part, FileError};
use super::names::MAX_DEPTH;
use super::wire::{KindRecord, LayerRecord, Overflow, Sink, EMPTY};
use crate::error::{Error, Result};
use crate::layer::{Kind, Layer};

/// Block and layer counts of a model tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeStats {
    /// Blocks at each level (the root at level 0).
    pub per_level: [u32; MAX_DEPTH],
    /// Levels with blocks.
    pub height: usize,
    /// Layer records over all blocks.
    pub layers: u32,
}

impl TreeStats {
    /// Blocks in total.
    pub fn blocks(&self) -> u32 {
        self.per_level.iter().sum()
    }
    /// Index of the first block of `level` (deeper levels come first).
    fn first_of(&self, level: usize) -> u32 {
        self.per_level.iter().skip(level + 1).sum()
    }
}

/// Counts the blocks and layer records of `layers` (the root block), checking names and depth.
pub(crate) fn stats(layers: &[Layer]) -> Result<TreeStats> {
    let mut s = TreeStats::default();
    count(layers, 0, &mut s)?;
    Ok(s)
}

fn count(layers: &[Layer], level: usize, s: &mut TreeStats) -> Result<()> {
    if level >= MAX_DEPTH {
        return Err(FileError::new(
            part::NESTING,
            "containers are nested deeper than the format allows",
            MAX_DEPTH as u64,
            level as u64 + 1,
        )
        .into());
    }
    s.per_level[level] += 1;
    s.height = s.height.max(level + 1);
    s.layers = s.layers.checked_add(layers.len() as u32).ok_or(Error::Capacity {
        capacity: u32::MAX as usize,
        needed: layers.len(),
    })?;
    for l in layers {
        if l.name.contains('.') {
            return Err(FileError::new(
                part::LAYER_NAME,
                "must not contain '.' (PyTorch's rule for module names)",
                0,
                1,
            )
            .into());
        }
        for child in children(l)? {
            if !child.is_empty() {
                count(child, level + 1, s)?;
            }
        }
    }
    Ok(())
}

/// The containers of a layer, in order (empty slices for an op).
fn children<'l>(l: &Layer<'l>) -> Result<[&'l [Layer<'l>]; 2]> {
    match l.kind {
        Kind::Op(_) => Ok([&[], &[]]),
        Kind::Sequential(inner) => Ok([inner, &[]]),
        Kind::Merge { a, b, .. } => Ok([a, b]),
        Kind::Misuse(what) => Err(Error::Structure { what }),
    }
}

/// Writes the blocks of `layers` (see the [module docs](self)) into `sink`.
pub(crate) fn emit(layers: &[Layer], s: &TreeStats, sink: &mut Sink<'_>) -> core::result::Result<(), Overflow> {
    for level in (0..s.height).rev() {
        // References of this level's layers name the next level's blocks, in order.
        let mut next = s.first_of(level + 1);
        emit_level(layers, 0, level, &mut next, sink)?;
    }
    Ok(())
}

fn emit_level(
    layers: &[Layer],
    level: usize,
    target: usize,
    next: &mut u32,
    sink: &mut Sink<'_>,
) -> core::result::Result<(), Overflow> {
    if level == target {
        sink.record(&(layers.len() as u32))?;
        for l in layers {
            let mut r = |c: &[Layer]| {
                if c.is_empty() {
                    EMPTY
                } else {
                    *next += 1;
                    *next - 1
                }
            };
            let kind = match l.kind {
                Kind::Op(op) => KindRecord::Op(op),
                Kind::Sequential(inner) => KindRecord::Sequential(r(inner)),
                Kind::Merge { merge, a, b } => {
                    let a = r(a);
                    KindRecord::Merge { merge, a, b: r(b) }
                }
                // `stats` has rejected misuse; write nothing a reader would accept.
                Kind::Misuse(_) => return Err(Overflow),
            };
            sink.record(&LayerRecord { name: l.name, kind })?;
        }
        return Ok(());
    }
    for l in layers {
        for child in children(l).map_err(|_| Overflow)? {
            if !child.is_empty() {
                emit_level(child, level + 1, target, next, sink)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::*;
    use crate::model_file::wire::Mode;

    #[test]
    fn blocks_are_deepest_first_and_references_consecutive() {
        static A: [Layer; 2] = [conv2d(1, 1, 1), sequential(&[relu()])];
        static NET: [Layer; 3] = [sequential(&A), residual(&[relu()], &[]), sequential(&[tanh()])];
        let s = stats(&NET).unwrap();
        // Levels: root; A, [relu], [tanh]; [relu] inside A.
        assert_eq!(&s.per_level[..3], &[1, 3, 1]);
        assert_eq!(s.blocks(), 5);
        assert_eq!(s.layers, 3 + 2 + 1 + 1 + 1);
        let mut buf = [0u8; 256];
        let mut sink = Sink::new(Mode::Write(&mut buf), 0);
        emit(&NET, &s, &mut sink).unwrap();
        let n = sink.pos;
        // Decode and collect references in file order.
        let mut rest = &buf[..n];
        let mut refs = [0u32; 8];
        let mut nrefs = 0;
        for block in 0..5u32 {
            let (count, r): (u32, _) = postcard::take_from_bytes(rest).unwrap();
            rest = r;
            for _ in 0..count {
                let (l, r): (LayerRecord<'_>, _) = postcard::take_from_bytes(rest).unwrap();
                rest = r;
                let mut add = |x: u32| {
                    if x != EMPTY {
                        assert!(x < block);
                        refs[nrefs] = x;
                        nrefs += 1;
                    }
                };
                match l.kind {
                    KindRecord::Sequential(x) => add(x),
                    KindRecord::Merge { a, b, .. } => {
                        add(a);
                        add(b);
                    }
                    KindRecord::Op(_) => {}
                }
            }
        }
        assert!(rest.is_empty());
        assert_eq!(&refs[..nrefs], &[0, 1, 2, 3]);
    }
}
