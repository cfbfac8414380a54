//! TFRecord framing: how an event file stores its records, with masked CRC-32C checksums.
//!
//! Each record is
//!
//! ```text
//! u64 length (little-endian) | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
//! ```
//!
//! where `masked_crc32c(x) = rotr(crc32c(x), 15) + 0xa282ead8` (TensorFlow's
//! `tensorflow/core/lib/hash/crc32c.h`; the mask keeps a CRC of data that embeds CRCs from being
//! trivially related). CRC-32C is the Castagnoli polynomial (reflected `0x82F63B78`), computed
//! here with a 256-entry table built at compile time.

/// Bytes of framing around each record's data: 8 (length) + 4 + 4 (checksums).
pub const OVERHEAD: usize = 16;

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// CRC-32C (Castagnoli) of `data`: `crc32c(b"123456789") == 0xE306_9283`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TensorFlow's masked CRC-32C: `rotr(crc32c(data), 15) + 0xa282ead8` (wrapping).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one framed record holding `data` to `out`.
pub fn frame(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Why a byte string is not a sequence of valid records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Offset of the record that is bad.
    pub offset: usize,
    /// What is wrong with it.
    pub what: &'static str,
}

/// Splits `bytes` into the data of its records, checking both checksums of each.
///
/// # Errors
/// [`FrameError`] with the offset of the first record that is truncated or whose length or
/// data checksum does not match.
pub fn unframe(bytes: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let err = |what| FrameError { offset: at, what };
        let header = bytes.get(at..at + 12).ok_or(err("truncated record header"))?;
        let len_bytes = &header[..8];
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if stored != masked_crc32c(len_bytes) {
            return Err(err("length checksum mismatch"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| err("record length overflows"))?;
        let start = at + 12;
        let end = start.checked_add(len).ok_or(err("record length overflows"))?;
        let data = bytes.get(start..end).ok_or(err("truncated record data"))?;
        let crc = bytes.get(end..end + 4).ok_or(err("truncated record checksum"))?;
        if u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) != masked_crc32c(data) {
            return Err(err("data checksum mismatch"));
        }
        out.push(data);
        at = end + 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_values() {
        // The standard check value and RFC 3720 (iSCSI) B.4 test vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    #[allow(clippy::manual_rotate)] // written as TensorFlow's crc32c::Mask, on purpose
    fn masked_crc_matches_tensorflow_formula() {
        let c = crc32c(b"abc");
        assert_eq!(masked_crc32c(b"abc"), ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn frame_then_unframe_round_trips_and_detects_corruption() {
        let mut bytes = Vec::new();
        frame(b"hello", &mut bytes);
        frame(b"", &mut bytes);
        frame(&[7u8; 300], &mut bytes);
        assert_eq!(bytes.len(), 5 + 300 + 3 * OVERHEAD);
        let records = unframe(&bytes).unwrap();
        assert_eq!(records, vec![&b"hello"[..], &b""[..], &[7u8; 300][..]]);

        let mut bad = bytes.clone();
        bad[14] ^= 1; // a data byte of the first record
        assert_eq!(unframe(&bad).unwrap_err().what, "data checksum mismatch");
        let mut bad = bytes.clone();
        bad[0] ^= 1; // its length
        assert_eq!(unframe(&bad).unwrap_err().what, "length checksum mismatch");
        let cut = &bytes[..bytes.len() - 1];
        let e = unframe(cut).unwrap_err();
        assert_eq!((e.offset, e.what), (5 + 2 * OVERHEAD, "truncated record checksum"));
    }
}
