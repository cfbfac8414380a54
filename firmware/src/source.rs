//! Where inputs come from: a [`FrameSource`], and its implementation over an embedded-hal
//! I2C bus, so a real camera or sensor driver plugs in.
//!
//! - [`I2cFrameSource`] reads frames from an I2C device speaking the small register protocol
//!   below, over any `embedded_hal::i2c::I2c` (a HAL's I2C peripheral, or a bus shared through
//!   `embedded-hal-bus`). A sensor with another protocol implements [`FrameSource`] itself.
//! - [`BlobSensor`] is that device simulated in memory: it implements `embedded_hal::i2c::I2c`
//!   and serves the frames of a [`VectorBlob`] (test vectors in the `INPUTS` flash region,
//!   written by `torchlet emulate`). Under QEMU the firmware runs the same [`I2cFrameSource`]
//!   code it runs on a board.
//!
//! Register protocol (all integers little-endian): writing `[REG_INFO]` then reading 8 bytes
//! gives the frame count and the floats per frame (`u32` each); writing `[REG_SELECT, i: u32]`
//! selects frame `i`; writing `[REG_FRAME]` then reading streams the selected frame: its label
//! (`u32`, `u32::MAX` when unknown) then its floats (`f32`), continuing where the last read
//! stopped (reads may be split into bus-sized chunks).
//!
//! Test-vector blob layout ([`VectorBlob`]): magic `TLINPUT1`, `count: u32`, `frame_len: u32`,
//! then `count` records of `label: u32` and `frame_len` `f32`, then a CRC-32 (the model
//! file's, [`torchlet::model_file::crc32`]) of everything before it.

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, Operation, SevenBitAddress};
use torchlet::model_file::crc32;

/// The 8 bytes a test-vector blob starts with.
pub const BLOB_MAGIC: [u8; 8] = *b"TLINPUT1";
/// Bytes of the blob header (magic, count, frame length).
pub const BLOB_HEADER: usize = 16;
/// Register: frame count and floats per frame.
pub const REG_INFO: u8 = 0x01;
/// Register: select a frame (followed by its index, `u32`).
pub const REG_SELECT: u8 = 0x02;
/// Register: stream the selected frame (label, then floats).
pub const REG_FRAME: u8 = 0x03;
/// The simulated sensor's 7-bit I2C address.
pub const SENSOR_ADDRESS: SevenBitAddress = 0x2A;
/// Label of a frame whose class is unknown.
pub const NO_LABEL: u32 = u32::MAX;

/// A source of input frames, one sample at a time.
pub trait FrameSource {
    /// Number of frames, or `None` for a live sensor without an end.
    fn len(&self) -> Option<usize>;
    /// Whether the source has no frames.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// Floats per frame (the model's input, `[C, H, W]` flattened).
    fn frame_len(&self) -> usize;
    /// Reads frame `index` into `out` (`frame_len()` floats, `[C, H, W]`); returns its label
    /// when the source knows it (test vectors), else `None`.
    ///
    /// # Errors
    /// A message naming what failed (bus error, index past the end, `out` of the wrong length).
    fn read_frame(&mut self, index: usize, out: &mut [f32]) -> Result<Option<u32>, &'static str>;
}

/// Frames from an I2C device speaking the register protocol of the [module docs](self).
#[derive(Debug)]
pub struct I2cFrameSource<I: I2c> {
    i2c: I,
    address: SevenBitAddress,
    count: usize,
    frame_len: usize,
}

impl<I: I2c> I2cFrameSource<I> {
    /// Opens the device at `address` on `i2c` and reads its frame count and frame length.
    ///
    /// # Errors
    /// `"i2c: ..."` if the bus fails.
    pub fn new(mut i2c: I, address: SevenBitAddress) -> Result<Self, &'static str> {
        let mut info = [0u8; 8];
        i2c.write_read(address, &[REG_INFO], &mut info)
            .map_err(|_| "i2c: reading the sensor's info register failed")?;
        let count = u32::from_le_bytes([info[0], info[1], info[2], info[3]]) as usize;
        let frame_len = u32::from_le_bytes([info[4], info[5], info[6], info[7]]) as usize;
        Ok(I2cFrameSource {
            i2c,
            address,
            count,
            frame_len,
        })
    }

    /// Gives the bus back.
    pub fn release(self) -> I {
        self.i2c
    }
}

impl<I: I2c> FrameSource for I2cFrameSource<I> {
    fn len(&self) -> Option<usize> {
        Some(self.count)
    }

    fn frame_len(&self) -> usize {
        self.frame_len
    }

    fn read_frame(&mut self, index: usize, out: &mut [f32]) -> Result<Option<u32>, &'static str> {
        if index >= self.count {
            return Err("frame index past the sensor's last frame");
        }
        if out.len() != self.frame_len {
            return Err("the frame buffer's length is not the sensor's frame length");
        }
        let i = u32::try_from(index).map_err(|_| "frame index too large")?.to_le_bytes();
        self.i2c
            .write(self.address, &[REG_SELECT, i[0], i[1], i[2], i[3]])
            .map_err(|_| "i2c: selecting a frame failed")?;
        let mut label = [0u8; 4];
        self.i2c
            .write_read(self.address, &[REG_FRAME], &mut label)
            .map_err(|_| "i2c: reading a frame failed")?;
        // The rest of the frame in bus-sized chunks of 16 floats.
        let mut chunk = [0u8; 64];
        for part in out.chunks_mut(16) {
            let bytes = &mut chunk[..part.len() * 4];
            self.i2c
                .read(self.address, bytes)
                .map_err(|_| "i2c: reading a frame failed")?;
            for (v, b) in part.iter_mut().zip(bytes.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        let label = u32::from_le_bytes(label);
        Ok((label != NO_LABEL).then_some(label))
    }
}

/// A validated test-vector blob (layout in the [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct VectorBlob<'a> {
    records: &'a [u8],
    count: usize,
    frame_len: usize,
}

impl<'a> VectorBlob<'a> {
    /// Validates the blob at the start of `region`: magic, lengths, CRC-32.
    ///
    /// # Errors
    /// A message naming the check that failed.
    pub fn parse(region: &'a [u8]) -> Result<Self, &'static str> {
        if region.len() < BLOB_HEADER + 4 || region[..8] != BLOB_MAGIC {
            return Err("inputs region: no test vectors (the region does not start with TLINPUT1)");
        }
        let word =
            |at: usize| u32::from_le_bytes([region[at], region[at + 1], region[at + 2], region[at + 3]]) as usize;
        let (count, frame_len) = (word(8), word(12));
        let record = frame_len
            .checked_add(1)
            .and_then(|n| n.checked_mul(4))
            .ok_or("inputs region: frame length too large")?;
        let body = count
            .checked_mul(record)
            .and_then(|n| n.checked_add(BLOB_HEADER))
            .filter(|&n| n + 4 <= region.len())
            .ok_or("inputs region: the header claims more frames than the region holds")?;
        if word(body) as u32 != crc32(&region[..body]) {
            return Err("inputs region: CRC mismatch: the test vectors are corrupted");
        }
        Ok(VectorBlob {
            records: &region[BLOB_HEADER..body],
            count,
            frame_len,
        })
    }

    /// Number of frames.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Floats per frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Frame `index` as its raw record: label (`u32`) then `frame_len` `f32`, little-endian.
    pub fn record(&self, index: usize) -> Option<&'a [u8]> {
        let n = (self.frame_len + 1) * 4;
        self.records
            .get(index.checked_mul(n)?..index.checked_mul(n)?.checked_add(n)?)
    }
}

/// A simulated I2C frame sensor serving a [`VectorBlob`] (the register protocol of the
/// [module docs](self)), for QEMU runs and tests.
pub struct BlobSensor<'a> {
    blob: VectorBlob<'a>,
    address: SevenBitAddress,
    register: u8,
    selected: usize,
    cursor: usize,
}

impl<'a> BlobSensor<'a> {
    /// A sensor answering at [`SENSOR_ADDRESS`].
    pub fn new(blob: VectorBlob<'a>) -> Self {
        BlobSensor {
            blob,
            address: SENSOR_ADDRESS,
            register: 0,
            selected: 0,
            cursor: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ErrorKind> {
        match bytes {
            [REG_SELECT, a, b, c, d] => {
                self.selected = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
                self.register = REG_SELECT;
            }
            [reg @ (REG_INFO | REG_FRAME)] => {
                self.register = *reg;
                self.cursor = 0;
            }
            _ => return Err(ErrorKind::Other),
        }
        Ok(())
    }

    fn read(&mut self, out: &mut [u8]) -> Result<(), ErrorKind> {
        match self.register {
            REG_INFO => {
                let mut info = [0u8; 8];
                info[..4].copy_from_slice(&(self.blob.count as u32).to_le_bytes());
                info[4..].copy_from_slice(&(self.blob.frame_len as u32).to_le_bytes());
                let n = out.len().min(8);
                out[..n].copy_from_slice(&info[..n]);
                Ok(())
            }
            REG_FRAME => {
                let record = self.blob.record(self.selected).ok_or(ErrorKind::Other)?;
                let end = self.cursor + out.len();
                out.copy_from_slice(record.get(self.cursor..end).ok_or(ErrorKind::Overrun)?);
                self.cursor = end;
                Ok(())
            }
            _ => Err(ErrorKind::Other),
        }
    }
}

impl ErrorType for BlobSensor<'_> {
    type Error = ErrorKind;
}

impl I2c for BlobSensor<'_> {
    fn transaction(&mut self, address: SevenBitAddress, operations: &mut [Operation<'_>]) -> Result<(), Self::Error> {
        if address != self.address {
            return Err(ErrorKind::NoAcknowledge(
                embedded_hal::i2c::NoAcknowledgeSource::Address,
            ));
        }
        for op in operations {
            match op {
                Operation::Write(bytes) => self.write(bytes)?,
                Operation::Read(buf) => self.read(buf)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// A blob of `frames` (each `frame_len` floats) with labels, as `torchlet emulate` writes it.
    fn blob(frames: &[Vec<f32>], labels: &[u32]) -> Vec<u8> {
        let mut b = Vec::from(BLOB_MAGIC);
        b.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frames[0].len() as u32).to_le_bytes());
        for (f, l) in frames.iter().zip(labels) {
            b.extend_from_slice(&l.to_le_bytes());
            f.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        }
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn frames_come_back_through_the_i2c_source_in_bus_sized_chunks() {
        // 37 floats: two whole 16-float chunks and a partial one.
        let frames: Vec<Vec<f32>> = (0..3)
            .map(|k| (0..37).map(|i| (k * 100 + i) as f32 * 0.5).collect())
            .collect();
        let bytes = blob(&frames, &[7, NO_LABEL, 2]);
        let mut src = I2cFrameSource::new(BlobSensor::new(VectorBlob::parse(&bytes).unwrap()), SENSOR_ADDRESS).unwrap();
        assert_eq!((src.len(), src.frame_len()), (Some(3), 37));
        let mut out = [0.0f32; 37];
        for (k, label) in [(2, Some(2)), (0, Some(7)), (1, None)] {
            assert_eq!(src.read_frame(k, &mut out).unwrap(), label);
            assert_eq!(&out[..], &frames[k][..]);
        }
        assert!(src.read_frame(3, &mut out).is_err());
        assert!(src.read_frame(0, &mut out[..36]).is_err());
    }

    #[test]
    fn a_damaged_or_short_blob_is_refused() {
        let frames = [std::vec![1.0f32; 4]];
        let mut bytes = blob(&frames, &[1]);
        assert!(VectorBlob::parse(&bytes).is_ok());
        bytes[20] ^= 1;
        assert!(VectorBlob::parse(&bytes).unwrap_err().contains("CRC"));
        assert!(VectorBlob::parse(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("claims more"));
        assert!(VectorBlob::parse(&[0xFF; 64]).unwrap_err().contains("TLINPUT1"));
    }

    #[test]
    fn another_address_is_not_acknowledged() {
        let bytes = blob(&[std::vec![0.0f32; 2]], &[0]);
        let sensor = BlobSensor::new(VectorBlob::parse(&bytes).unwrap());
        assert!(I2cFrameSource::new(sensor, SENSOR_ADDRESS + 1).is_err());
    }
}
