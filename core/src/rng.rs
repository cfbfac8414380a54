//! A small deterministic random number generator for initialisation and dropout.
//!
//! PCG-XSH-RR 32 (O'Neill, 2014): 64-bit state, 32-bit output, statistically good and tiny, so
//! it runs the same on a desktop and a Cortex-M0. The whole state is one `u64` pair that can be
//! saved in a checkpoint ([`Rng::state`]) to resume a run exactly.
//!
//! This is not PyTorch's generator: the same seed gives other numbers than `torch.manual_seed`.
//! Tests that compare with PyTorch load PyTorch's initial weights instead.

/// PCG32 generator. `Copy`, so a layer can fork its own stream cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rng {
    state: u64,
    inc: u64,
}

const MULT: u64 = 6364136223846793005;

impl Rng {
    /// A generator seeded with `seed` (stream 0).
    pub const fn new(seed: u64) -> Self {
        Self::with_stream(seed, 0)
    }

    /// A generator for an independent stream of the same seed (for example one per worker).
    pub const fn with_stream(seed: u64, stream: u64) -> Self {
        let inc = (stream << 1) | 1;
        let mut state = 0u64.wrapping_mul(MULT).wrapping_add(inc);
        state = state.wrapping_add(seed);
        state = state.wrapping_mul(MULT).wrapping_add(inc);
        Rng { state, inc }
    }

    /// The raw state, for checkpoints; [`Rng::from_state`] restores it.
    pub const fn state(&self) -> (u64, u64) {
        (self.state, self.inc)
    }

    /// Restores a generator saved with [`Rng::state`]. The increment is forced odd.
    pub const fn from_state(state: u64, inc: u64) -> Self {
        Rng { state, inc: inc | 1 }
    }

    /// The next 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MULT).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `[0, 1)` with 24 bits of precision.
    #[inline]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift, unbiased enough for `n < 2^16`,
    /// bias below `n / 2^32` otherwise). Returns 0 for `n == 0`.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_resumable() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..10 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
        let (s, i) = a.state();
        let mut c = Rng::from_state(s, i);
        assert_eq!(a.next_u32(), c.next_u32());
        assert_ne!(Rng::new(1).next_u32(), Rng::new(2).next_u32());
    }

    #[test]
    fn uniform_is_in_range_and_roughly_flat() {
        let mut r = Rng::new(7);
        let mut hist = [0u32; 10];
        for _ in 0..100_000 {
            let v = r.next_f32();
            assert!((0.0..1.0).contains(&v));
            hist[(v * 10.0) as usize] += 1;
        }
        for h in hist {
            assert!((9_000..11_000).contains(&h), "{hist:?}");
        }
    }
}
