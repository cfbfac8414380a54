//! Per-sample tensor shapes.
//!
//! A [`Shape`] describes one sample, without the batch dimension: `[F]` for features,
//! `[C, L]` for 1-d signals, `[C, H, W]` for images and `[C, D, H, W]` for volumes. The batch
//! dimension `N` always comes first in memory (NCHW, contiguous, row-major), exactly as PyTorch's
//! default layout.

/// The shape of one sample: rank 1 to 4, dims beyond the rank are 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    rank: u8,
    dims: [usize; 4],
}

impl Shape {
    /// A vector of `f` features: `[F]`.
    pub const fn features(f: usize) -> Self {
        Shape {
            rank: 1,
            dims: [f, 1, 1, 1],
        }
    }
    /// A 1-d signal: `[C, L]`.
    pub const fn cl(c: usize, l: usize) -> Self {
        Shape {
            rank: 2,
            dims: [c, l, 1, 1],
        }
    }
    /// An image: `[C, H, W]`.
    pub const fn chw(c: usize, h: usize, w: usize) -> Self {
        Shape {
            rank: 3,
            dims: [c, h, w, 1],
        }
    }
    /// A volume: `[C, D, H, W]`.
    pub const fn cdhw(c: usize, d: usize, h: usize, w: usize) -> Self {
        Shape {
            rank: 4,
            dims: [c, d, h, w],
        }
    }
    /// A shape from its dims; `None` unless `1 <= dims.len() <= 4`.
    pub const fn from_dims(dims: &[usize]) -> Option<Self> {
        if dims.is_empty() || dims.len() > 4 {
            return None;
        }
        let mut d = [1usize; 4];
        let mut i = 0;
        while i < dims.len() {
            d[i] = dims[i];
            i += 1;
        }
        Some(Shape {
            rank: dims.len() as u8,
            dims: d,
        })
    }
    /// Number of dimensions (1 to 4).
    pub const fn rank(&self) -> usize {
        self.rank as usize
    }
    /// The dims, `rank()` of them.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }
    /// Dim `i` (`i < rank`), or 1 beyond the rank.
    pub const fn dim(&self, i: usize) -> usize {
        if i < 4 {
            self.dims[i]
        } else {
            1
        }
    }
    /// The first dim: channels (or features for rank 1).
    pub const fn channels(&self) -> usize {
        self.dims[0]
    }
    /// The last dim (what `Linear` acts on).
    pub const fn last(&self) -> usize {
        self.dims[self.rank as usize - 1]
    }
    /// Elements in one sample; `usize::MAX` when that overflows (a shape no plan accepts: the
    /// planner refuses it as [`Error::TooLarge`](crate::Error::TooLarge), never a wrapped count).
    pub const fn numel(&self) -> usize {
        self.dims[0]
            .saturating_mul(self.dims[1])
            .saturating_mul(self.dims[2])
            .saturating_mul(self.dims[3])
    }
    /// The spatial dims as `[D, H, W]`, padded with leading 1s: `[1, 1, L]` for rank 2,
    /// `[1, H, W]` for rank 3, `[D, H, W]` for rank 4, `[1, 1, 1]` for rank 1.
    pub const fn spatial3(&self) -> [usize; 3] {
        match self.rank {
            2 => [1, 1, self.dims[1]],
            3 => [1, self.dims[1], self.dims[2]],
            4 => [self.dims[1], self.dims[2], self.dims[3]],
            _ => [1, 1, 1],
        }
    }
    /// Channels `c` with spatial dims `s` (`[D, H, W]`) at the given rank (2, 3 or 4).
    pub const fn with_spatial3(rank: usize, c: usize, s: [usize; 3]) -> Self {
        match rank {
            2 => Shape::cl(c, s[2]),
            3 => Shape::chw(c, s[1], s[2]),
            4 => Shape::cdhw(c, s[0], s[1], s[2]),
            _ => Shape::features(c),
        }
    }
    /// The same shape with the last dim replaced.
    pub const fn with_last(&self, last: usize) -> Self {
        let mut s = *self;
        s.dims[self.rank as usize - 1] = last;
        s
    }
    /// The same shape with the channel (first) dim replaced.
    pub const fn with_channels(&self, c: usize) -> Self {
        let mut s = *self;
        s.dims[0] = c;
        s
    }
    /// Equality usable in `const fn`.
    pub const fn const_eq(&self, other: &Shape) -> bool {
        self.rank == other.rank
            && self.dims[0] == other.dims[0]
            && self.dims[1] == other.dims[1]
            && self.dims[2] == other.dims[2]
            && self.dims[3] == other.dims[3]
    }
}

impl core::fmt::Display for Shape {
    /// Formats as PyTorch prints sizes of one sample: `[3, 32, 32]`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spatial_round_trip() {
        let s = Shape::chw(3, 32, 28);
        assert_eq!(s.spatial3(), [1, 32, 28]);
        assert_eq!(Shape::with_spatial3(3, 3, [1, 32, 28]), s);
        assert_eq!(s.numel(), 3 * 32 * 28);
        assert_eq!(Shape::cl(4, 7).spatial3(), [1, 1, 7]);
        assert_eq!(Shape::from_dims(&[2, 3]), Some(Shape::cl(2, 3)));
        assert_eq!(Shape::from_dims(&[]), None);
    }
}
