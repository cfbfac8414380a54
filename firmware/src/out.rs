//! Plain-text output without `core::fmt`: a [`Line`] is built from `&str`s, unsigned integers
//! in decimal or hex, and `f32`s (exactly, as their bit pattern), then [`print`]ed to the
//! host's stdout over semihosting.
//!
//! `core::fmt` (its float formatting above all) is about 20 KB of flash; the firmware's own
//! lines and its panic handler use this writer instead, so none of it is linked into
//! `classify`. Scores are printed as `0x` and the 8 hex digits of the `f32`'s bits: exact, and
//! `torchlet emulate` reads them back as the same `f32`.

/// Bytes a [`Line`] holds; longer text is cut and ends with `...`.
pub const LINE_CAPACITY: usize = 192;

/// One line of text under construction (no newline: [`print`] adds it).
pub struct Line {
    buf: [u8; LINE_CAPACITY],
    len: usize,
    cut: bool,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Line {
            buf: [0; LINE_CAPACITY],
            len: 0,
            cut: false,
        }
    }

    /// Appends `s` (cut at the capacity).
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let room = LINE_CAPACITY - self.len;
        let n = b.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        self.cut |= n < b.len();
        self
    }

    /// Appends `v` in decimal.
    pub fn u64(&mut self, mut v: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&digits[i..])
    }

    /// Appends `v` in decimal.
    pub fn usize(&mut self, v: usize) -> &mut Self {
        self.u64(v as u64)
    }

    /// Appends `v` as `0x` and its hex digits (lower case, no leading zeros).
    pub fn hex(&mut self, mut v: u64) -> &mut Self {
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(v & 0xF) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.str("0x").bytes(&digits[i..])
    }

    /// Appends `v` exactly: `0x` and the 8 hex digits of its bits (`f32::from_bits` reads it
    /// back).
    pub fn f32_bits(&mut self, v: f32) -> &mut Self {
        let bits = v.to_bits();
        let mut digits = [0u8; 8];
        for (k, d) in digits.iter_mut().enumerate() {
            *d = b"0123456789abcdef"[((bits >> (28 - 4 * k)) & 0xF) as usize];
        }
        self.str("0x").bytes(&digits)
    }

    /// Appends `v` rounded to 4 decimals (`-1.2346`, `inf`, `NaN`; magnitudes from 2^32 on
    /// print as `>4294967295`): for people, not to be read back exactly.
    pub fn f32(&mut self, v: f32) -> &mut Self {
        if v.is_nan() {
            return self.str("NaN");
        }
        if v.is_sign_negative() {
            self.str("-");
        }
        let a = v.abs();
        if a.is_infinite() {
            return self.str("inf");
        }
        if a >= 4_294_967_295.0 {
            return self.str(">4294967295");
        }
        // Whole part (exact), then 4 decimals of the rest (exact too), rounded half up.
        let mut whole = a as u64;
        let mut frac = ((a - whole as f32) * 10_000.0 + 0.5) as u32;
        if frac >= 10_000 {
            (whole, frac) = (whole + 1, frac - 10_000);
        }
        self.u64(whole).str(".");
        for p in [1000, 100, 10, 1] {
            self.bytes(&[b'0' + ((frac / p) % 10) as u8]);
        }
        self
    }

    /// The text so far, `...` at the end if it was cut.
    pub fn as_str(&self) -> &str {
        let text = core::str::from_utf8(&self.buf[..self.len]).unwrap_or_else(|e| {
            // Cut inside a multi-byte character: the valid part.
            core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or("")
        });
        if self.cut {
            text.get(..text.len().saturating_sub(3)).unwrap_or(text)
        } else {
            text
        }
    }

    /// Whether text was cut at the capacity.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// Prints `line` and a newline to the host's stdout (semihosting); nothing off an ARM target or
/// without a host.
pub fn print(line: &Line) {
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    if let Ok(mut out) = cortex_m_semihosting::hio::hstdout() {
        let _ = out.write_all(line.as_str().as_bytes());
        let _ = out.write_all(if line.is_cut() { b"...\n" } else { b"\n" });
    }
    #[cfg(not(all(target_arch = "arm", target_os = "none")))]
    let _ = line;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Line)) -> std::string::String {
        extern crate std;
        let mut l = Line::new();
        f(&mut l);
        let mut s = std::string::String::from(l.as_str());
        if l.is_cut() {
            s.push_str("...");
        }
        s
    }

    extern crate std;

    #[test]
    fn integers_and_text() {
        assert_eq!(
            text(|l| _ = l.str("pred ").usize(0).str(" ").u64(u64::MAX)),
            "pred 0 18446744073709551615"
        );
        assert_eq!(text(|l| _ = l.hex(0xdeadbeef).str(" ").hex(0)), "0xdeadbeef 0x0");
    }

    #[test]
    fn floats_exact_and_rounded() {
        for v in [1.0f32, -0.0, 3.1415927, f32::MIN_POSITIVE, -1e30, f32::NAN] {
            let s = text(|l| _ = l.f32_bits(v));
            let bits = u32::from_str_radix(s.strip_prefix("0x").unwrap(), 16).unwrap();
            assert_eq!(bits, v.to_bits(), "{s}");
        }
        assert_eq!(text(|l| _ = l.f32(-1.23456)), "-1.2346");
        assert_eq!(text(|l| _ = l.f32(2.0)), "2.0000");
        assert_eq!(text(|l| _ = l.f32(0.00004)), "0.0000");
        assert_eq!(text(|l| _ = l.f32(f32::INFINITY)), "inf");
        assert_eq!(text(|l| _ = l.f32(1e12)), ">4294967295");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let long = [b'x'; 300];
        let s = text(|l| _ = l.str(core::str::from_utf8(&long).unwrap()));
        assert_eq!(s.len(), LINE_CAPACITY);
        assert!(s.ends_with("xxx..."));
    }
}
