//! CRC-32 (IEEE 802.3, reflected, polynomial `0xEDB88320`): the checksum of a model file.
//!
//! The same function as zlib's `crc32`, Python's `binascii.crc32` and PNG's: initial value
//! `0xFFFFFFFF`, final XOR `0xFFFFFFFF`. `crc32(b"123456789") == 0xCBF43926`. A table computed
//! at compile time: on a host 256 entries (one lookup per byte); on a bare-metal target
//! (`target_os = "none"`, where the CRC runs once, at boot) 16 entries, 64 bytes of flash
//! instead of 1 KiB, two lookups per byte.

/// Bits of the CRC advanced per table lookup.
const BITS: u32 = if cfg!(target_os = "none") { 4 } else { 8 };

/// The lookup table: the CRC of each `BITS`-bit value.
const TABLE: [u32; 1 << BITS] = {
    let mut table = [0u32; 1 << BITS];
    let mut i = 0;
    while i < table.len() {
        let mut c = i as u32;
        let mut k = 0;
        while k < BITS {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_parts(&[bytes])
}

/// The CRC-32 of the concatenation of `parts`.
pub(crate) fn crc32_parts(parts: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for part in parts {
        for &b in *part {
            c ^= b as u32;
            for _ in 0..8 / BITS {
                c = TABLE[(c & ((1 << BITS) - 1)) as usize] ^ (c >> BITS);
            }
        }
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32_parts(&[b"1234", b"", b"56789"]), 0xCBF4_3926);
        assert_eq!(crc32(b"TORCHLET"), 0x9E30_867B); // zlib.crc32(b"TORCHLET")
                                                     // Bit by bit, without the table.
        let mut naive = 0xFFFF_FFFFu32;
        for &b in b"TORCHLET" {
            naive ^= b as u32;
            for _ in 0..8 {
                naive = if naive & 1 != 0 {
                    (naive >> 1) ^ 0xEDB8_8320
                } else {
                    naive >> 1
                };
            }
        }
        assert_eq!(crc32(b"TORCHLET"), !naive);
    }
}
