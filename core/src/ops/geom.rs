//! Geometry shared by the sliding-window kernels (convolution and pooling).
//!
//! All window ops are implemented once, in three spatial dims `[D, H, W]`; 1-d and 2-d layers
//! set the leading dims to 1 (kernel 1, stride 1, padding 0). The planner fills these structs;
//! kernels trust them (the planner has validated them) and only read them.

/// How a convolution reads outside its input, as PyTorch's `padding_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PaddingMode {
    /// Zeros outside the input (`'zeros'`, the default).
    Zeros,
    /// Mirror without repeating the edge (`'reflect'`): index -1 reads 1.
    Reflect,
    /// Repeat the edge (`'replicate'`): index -1 reads 0.
    Replicate,
    /// Wrap around (`'circular'`): index -1 reads n-1.
    Circular,
}

impl PaddingMode {
    /// Maps a padded coordinate `i` (may be negative or `>= n`) to an input coordinate,
    /// or `None` for a zero.
    ///
    /// Valid for `-n < i < 2n - 1` in `Reflect` mode, which the planner guarantees
    /// (PyTorch requires padding < input size for reflect).
    #[inline(always)]
    pub fn map(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        if i >= 0 && i < n {
            return Some(i as usize);
        }
        match self {
            PaddingMode::Zeros => None,
            PaddingMode::Reflect => {
                let j = if i < 0 { -i } else { 2 * (n - 1) - i };
                Some(j.clamp(0, n - 1) as usize)
            }
            PaddingMode::Replicate => Some(i.clamp(0, n - 1) as usize),
            PaddingMode::Circular => Some(i.rem_euclid(n) as usize),
        }
    }
}

/// A convolution (or transposed convolution) over `[N, C, D, H, W]`.
///
/// For `Conv`: `output[d] = (input[d] + pad[d] + pad_back[d] - dilation[d] * (kernel[d] - 1) - 1) / stride[d] + 1`.
/// Only the front padding is stored; the back padding is implied by `output`.
/// Weight layout as PyTorch: `[C_out, C_in / groups, kD, kH, kW]` for `Conv`,
/// `[C_in, C_out / groups, kD, kH, kW]` for `ConvTranspose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvGeom {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Groups; `c_in` and `c_out` are multiples of it.
    pub groups: usize,
    /// Input spatial dims `[D, H, W]`.
    pub input: [usize; 3],
    /// Output spatial dims `[D, H, W]`.
    pub output: [usize; 3],
    /// Kernel size `[kD, kH, kW]`.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Dilation.
    pub dilation: [usize; 3],
    /// Padding before the input in each dim (for `ConvTranspose`: PyTorch's `padding`).
    pub pad: [usize; 3],
    /// What padding reads (`Zeros` only for `ConvTranspose`).
    pub mode: PaddingMode,
    /// Whether there is a bias `[C_out]` after the weight.
    pub bias: bool,
}

impl ConvGeom {
    /// Elements of the weight tensor (`Conv` layout; the same count for `ConvTranspose`).
    pub const fn weight_len(&self) -> usize {
        self.c_out * (self.c_in / self.groups) * self.kernel[0] * self.kernel[1] * self.kernel[2]
    }
    /// Input spatial size `D * H * W`.
    pub const fn in_spatial(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2]
    }
    /// Output spatial size.
    pub const fn out_spatial(&self) -> usize {
        self.output[0] * self.output[1] * self.output[2]
    }
    /// Kernel volume `kD * kH * kW`.
    pub const fn kernel_volume(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.kernel[2]
    }
}

/// A pooling window over `[N, C, D, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolGeom {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input spatial dims `[D, H, W]`.
    pub input: [usize; 3],
    /// Output spatial dims `[D, H, W]` (already accounting for `ceil_mode`).
    pub output: [usize; 3],
    /// Window size.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Dilation (max pooling only; 1 for average pooling).
    pub dilation: [usize; 3],
    /// Implicit padding on both sides (negative infinity for max, zeros for average).
    pub pad: [usize; 3],
    /// Average pooling: count padded zeros in the divisor (PyTorch's `count_include_pad`).
    pub count_include_pad: bool,
}

impl PoolGeom {
    /// Input spatial size `D * H * W`.
    pub const fn in_spatial(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2]
    }
    /// Output spatial size.
    pub const fn out_spatial(&self) -> usize {
        self.output[0] * self.output[1] * self.output[2]
    }
}

/// Output size of a sliding window in one dim, as PyTorch's formula; `None` if the window does
/// not fit. With `ceil_mode`, the last window must start inside the input or the left padding.
pub const fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_front: usize,
    pad_back: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = input + pad_front + pad_back;
    if padded < span {
        return None;
    }
    let num = padded - span;
    let mut out = if ceil_mode {
        num.div_ceil(stride) + 1
    } else {
        num / stride + 1
    };
    if ceil_mode && (out - 1) * stride >= input + pad_front {
        out -= 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_modes_map_like_pytorch() {
        // input [a b c d]: reflect pads as "c b | a b c d | c b", replicate "a a | .. | d d",
        // circular "c d | .. | a b".
        let r: [usize; 8] = core::array::from_fn(|k| PaddingMode::Reflect.map(k as isize - 2, 4).unwrap());
        assert_eq!(r, [2, 1, 0, 1, 2, 3, 2, 1]);
        let r: [usize; 8] = core::array::from_fn(|k| PaddingMode::Replicate.map(k as isize - 2, 4).unwrap());
        assert_eq!(r, [0, 0, 0, 1, 2, 3, 3, 3]);
        let r: [usize; 8] = core::array::from_fn(|k| PaddingMode::Circular.map(k as isize - 2, 4).unwrap());
        assert_eq!(r, [2, 3, 0, 1, 2, 3, 0, 1]);
        assert_eq!(PaddingMode::Zeros.map(-1, 4), None);
    }

    #[test]
    fn window_out_matches_pytorch() {
        // MaxPool2d(3, stride=2) on 6: floor -> 2, ceil -> 3 (last window starts at 4 < 6).
        assert_eq!(window_out(6, 3, 2, 0, 0, 1, false), Some(2));
        assert_eq!(window_out(6, 3, 2, 0, 0, 1, true), Some(3));
        // ceil_mode window that would start in the right padding is dropped: in 5, k 2, s 2, p 1.
        assert_eq!(window_out(5, 2, 2, 1, 1, 1, true), Some(3));
        assert_eq!(window_out(2, 5, 1, 0, 0, 1, false), None);
        assert_eq!(window_out(4, 0, 1, 0, 0, 1, false), None);
        // Conv2d(5, padding 2) keeps 32.
        assert_eq!(window_out(32, 5, 1, 2, 2, 1, false), Some(32));
    }
}
