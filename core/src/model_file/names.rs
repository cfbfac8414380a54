//! PyTorch `state_dict` names for the layers of a model, without a heap.
//!
//! A layer's path is its position in the tree of containers, segments joined by `.`, as
//! PyTorch's `named_modules()`: a segment is the layer's [`Layer::name`], or its index in its
//! container when the name is empty (as `nn.Sequential`). The branches of a
//! [`Kind::Merge`] are children named `body` and `shortcut` for [`Merge::Add`] (a residual
//! block) and `a` and `b` for [`Merge::Concat`] and [`Merge::Bilinear`].
//!
//! ```text
//! [conv2d(3, 8, 3).named("stem"), residual(&[conv2d(8, 8, 3), relu()], &[]), flatten(), linear(..)]
//!  stem              1.body.0  1.body.1  (1: the Add)          2          3
//! ```
//!
//! [`for_each_node`] walks a model in the order the planner flattens it
//! ([`crate::Plan::nodes`]): a container's layers in order, a merge's first branch, its second
//! branch, then the merge itself. It calls back with each node's index and its [`Path`], which
//! formats itself (`{path}.weight`) into any `core::fmt::Write` (a `heapless::String`, a
//! `std::string::String`, a byte buffer), so no name is ever stored.

use core::fmt;

use super::error::{part, FileError};
use crate::error::{Error, Result};
use crate::layer::{Kind, Layer, Merge};

/// The most container levels a model file holds (the root counts as one).
pub const MAX_DEPTH: usize = 16;

/// Segments of the deepest path: a layer segment per level and a branch segment per merge.
const MAX_SEGMENTS: usize = 2 * MAX_DEPTH + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment<'l> {
    Name(&'l str),
    Index(usize),
}

/// The path of a layer in its model: `"features.3.body.0"`. Formats itself with `{}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path<'l> {
    segments: [Segment<'l>; MAX_SEGMENTS],
    len: usize,
}

impl<'l> Path<'l> {
    const fn root() -> Self {
        Path {
            segments: [Segment::Index(0); MAX_SEGMENTS],
            len: 0,
        }
    }

    fn push(&mut self, s: Segment<'l>) -> Result<()> {
        if self.len == MAX_SEGMENTS {
            return Err(nesting(self.len));
        }
        self.segments[self.len] = s;
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the path has no segments (never for a layer).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Path<'_> {
    /// Calls `f` with the pieces of the path's text in order (what `{}` writes), without
    /// `core::fmt`: the firmware compares tensor names with it.
    pub fn for_each_piece(&self, f: &mut dyn FnMut(&str)) {
        for (i, s) in self.segments[..self.len].iter().enumerate() {
            if i > 0 {
                f(".");
            }
            match *s {
                Segment::Name(n) => f(n),
                Segment::Index(k) => {
                    let mut digits = [0u8; 20];
                    let mut at = digits.len();
                    let mut v = k;
                    loop {
                        at -= 1;
                        digits[at] = b'0' + (v % 10) as u8;
                        v /= 10;
                        if v == 0 {
                            break;
                        }
                    }
                    f(core::str::from_utf8(&digits[at..]).unwrap_or("?"));
                }
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut r = Ok(());
        self.for_each_piece(&mut |s| {
            if r.is_ok() {
                r = f.write_str(s);
            }
        });
        r
    }
}

/// A tensor name: a layer path and a suffix (`weight`, `running_mean`, ...), joined by `.`.
#[derive(Clone, Copy, Debug)]
pub struct TensorName<'p, 'l> {
    /// The layer.
    pub path: &'p Path<'l>,
    /// The tensor of the layer.
    pub suffix: &'static str,
}

impl TensorName<'_, '_> {
    /// Calls `f` with the pieces of the name's text in order (what `{}` writes), without
    /// `core::fmt`.
    pub fn for_each_piece(&self, f: &mut dyn FnMut(&str)) {
        self.path.for_each_piece(f);
        f(".");
        f(self.suffix);
    }
}

impl fmt::Display for TensorName<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.path, self.suffix)
    }
}

fn nesting(found: usize) -> Error {
    FileError::new(
        part::NESTING,
        "containers are nested deeper than the format allows",
        MAX_DEPTH as u64,
        found as u64,
    )
    .into()
}

/// The names of a merge's two branches.
pub const fn branch_names(merge: &Merge) -> (&'static str, &'static str) {
    match merge {
        Merge::Add => ("body", "shortcut"),
        Merge::Concat | Merge::Bilinear(_) => ("a", "b"),
    }
}

/// Calls `f(node, path)` for every computing layer (plan node) of `layers`, in the order of
/// [`crate::Plan::nodes`]; returns the number of nodes.
///
/// # Errors
/// [`Error::Structure`] for a misused builder ([`Kind::Misuse`]), a [`FileError`] with part
/// `"nesting"` for containers nested deeper than [`MAX_DEPTH`] levels, and any error of `f`
/// (the walk stops at the first).
pub fn for_each_node<'l>(layers: &'l [Layer<'l>], mut f: impl FnMut(usize, &Path<'l>) -> Result<()>) -> Result<usize> {
    let mut path = Path::root();
    let mut node = 0;
    walk(layers, 1, &mut path, &mut node, &mut f)?;
    Ok(node)
}

fn walk<'l>(
    layers: &'l [Layer<'l>],
    level: usize,
    path: &mut Path<'l>,
    node: &mut usize,
    f: &mut impl FnMut(usize, &Path<'l>) -> Result<()>,
) -> Result<()> {
    if level > MAX_DEPTH {
        return Err(nesting(level));
    }
    for (i, l) in layers.iter().enumerate() {
        path.push(if l.name.is_empty() {
            Segment::Index(i)
        } else {
            Segment::Name(l.name)
        })?;
        match l.kind {
            Kind::Op(_) => {
                f(*node, path)?;
                *node += 1;
            }
            Kind::Sequential(inner) => {
                if !inner.is_empty() {
                    walk(inner, level + 1, path, node, f)?;
                }
            }
            Kind::Merge { merge, a, b } => {
                let (na, nb) = branch_names(&merge);
                for (branch, name) in [(a, na), (b, nb)] {
                    if !branch.is_empty() {
                        path.push(Segment::Name(name))?;
                        walk(branch, level + 1, path, node, f)?;
                        path.pop();
                    }
                }
                f(*node, path)?;
                *node += 1;
            }
            Kind::Misuse(what) => return Err(Error::Structure { what }),
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::layer::*;
    use std::{format, string::String, vec::Vec};

    #[test]
    fn paths_follow_plan_order_and_pytorch_names() {
        static BODY: [Layer; 2] = [conv2d(8, 8, 3), relu()];
        static DOWN: [Layer; 1] = [conv2d(8, 8, 1).named("conv")];
        static NET: [Layer; 4] = [
            conv2d(3, 8, 3).named("stem"),
            residual(&BODY, &DOWN),
            sequential(&[flatten(), lazy_linear(4)]).named("head"),
            concat(&[], &[identity()]),
        ];
        let mut names: Vec<(usize, String)> = Vec::new();
        let n = for_each_node(&NET, |i, p| {
            names.push((i, format!("{p}")));
            Ok(())
        })
        .unwrap();
        assert_eq!(n, crate::plan::node_count(&NET));
        let got: Vec<&str> = names.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            got,
            [
                "stem",
                "1.body.0",
                "1.body.1",
                "1.shortcut.conv",
                "1",
                "head.0",
                "head.1",
                "3.b.0",
                "3"
            ]
        );
        assert!(names.iter().enumerate().all(|(k, (i, _))| k == *i));
        let p = Path {
            segments: [Segment::Index(2); MAX_SEGMENTS],
            len: 1,
        };
        assert_eq!(
            format!(
                "{}",
                TensorName {
                    path: &p,
                    suffix: "weight"
                }
            ),
            "2.weight"
        );
    }

    #[test]
    fn too_deep_nesting_is_an_error() {
        fn nest(depth: usize) -> &'static [Layer<'static>] {
            let inner: &'static [Layer<'static>] = if depth == 0 { &[] } else { nest(depth - 1) };
            let v: Vec<Layer> = if inner.is_empty() {
                std::vec![relu()]
            } else {
                std::vec![sequential(inner)]
            };
            v.leak()
        }
        assert!(for_each_node(nest(MAX_DEPTH - 1), |_, _| Ok(())).is_ok());
        let e = for_each_node(nest(MAX_DEPTH), |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(e, Error::ModelFile(FileError { part: "nesting", .. })),
            "{e:?}"
        );
    }
}
