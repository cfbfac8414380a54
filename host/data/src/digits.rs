//! The digits set, embedded in the binary: 1,797 handwritten digits of 8×8 pixels.
//!
//! The UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin, C. Kaynak, 1998;
//! CC BY 4.0), as shipped in scikit-learn (`sklearn/datasets/data/digits.csv.gz`). Each line is
//! 64 pixel values in `0..=16` and the label `0..=9`. It is small (57 KB gzipped), so it is the
//! default data of every command that needs one, with no download.

use std::fmt;
use std::io::Read;

/// The gzipped CSV, as shipped.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// Pixels per image (8 × 8).
pub const PIXELS: usize = 64;
/// Number of classes.
pub const CLASSES: usize = 10;

/// The digits, decoded: images scaled to `[0, 1]` (pixel / 16), `[N, 1, 8, 8]` row-major.
#[derive(Clone, Debug)]
pub struct Digits {
    /// `[N, 64]` pixels in `[0, 1]`.
    pub images: Vec<f32>,
    /// `[N]` labels in `0..10`.
    pub labels: Vec<u32>,
}

/// Why the digits CSV could not be read.
#[derive(Debug)]
pub enum DigitsError {
    /// The gzip stream is damaged.
    Gzip(std::io::Error),
    /// A line does not have 65 integers in range.
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for DigitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigitsError::Gzip(e) => write!(f, "digits.csv.gz: not a valid gzip stream: {e}"),
            DigitsError::Line { line, reason } => write!(f, "digits.csv.gz line {line}: {reason}"),
        }
    }
}

impl std::error::Error for DigitsError {}

impl Digits {
    /// The embedded set.
    pub fn embedded() -> Self {
        // The embedded bytes are part of the binary and checked by the tests.
        Self::from_gz(DIGITS_CSV_GZ).expect("the embedded digits set is valid")
    }

    /// Parses a gzipped digits CSV.
    ///
    /// # Errors
    /// [`DigitsError`] naming the line and the problem.
    pub fn from_gz(bytes: &[u8]) -> Result<Self, DigitsError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(DigitsError::Gzip)?;
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let err = |reason: String| DigitsError::Line { line: i + 1, reason };
            let vals: Vec<&str> = line.split(',').collect();
            if vals.len() != PIXELS + 1 {
                return Err(err(format!("expected {} values, found {}", PIXELS + 1, vals.len())));
            }
            for (k, v) in vals[..PIXELS].iter().enumerate() {
                let p: u32 = v
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("pixel {k}: {v:?} is not an integer")))?;
                if p > 16 {
                    return Err(err(format!("pixel {k}: expected 0..=16, found {p}")));
                }
                images.push(p as f32 / 16.0);
            }
            let l: u32 = vals[PIXELS]
                .trim()
                .parse()
                .map_err(|_| err(format!("label {:?} is not an integer", vals[PIXELS])))?;
            if l as usize >= CLASSES {
                return Err(err(format!("label: expected 0..=9, found {l}")));
            }
            labels.push(l);
        }
        Ok(Digits { images, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A seeded shuffle split into (train, held-out) with `held_out` images in the second part.
    pub fn split(&self, held_out: usize, seed: u64) -> (Digits, Digits) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = torchlet::Rng::new(seed);
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u32 + 1) as usize;
            order.swap(i, j);
        }
        let held_out = held_out.min(self.len());
        let pick = |idx: &[usize]| Digits {
            images: idx
                .iter()
                .flat_map(|&i| self.images[i * PIXELS..(i + 1) * PIXELS].iter().copied())
                .collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        };
        let (train, test) = order.split_at(self.len() - held_out);
        (pick(train), pick(test))
    }
}

/// The digits as a [`Dataset`](crate::Dataset): items are `[1, 8, 8]` tensors in `[0, 1]`
/// (pixel / 16), classes `"0"` … `"9"`.
impl crate::Dataset for Digits {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<(crate::Sample, crate::Label), crate::DataError> {
        let len = self.labels.len();
        let label = *self.labels.get(index).ok_or(crate::DataError::Index { index, len })?;
        let pixels = self
            .images
            .get(index * PIXELS..(index + 1) * PIXELS)
            .unwrap_or_default();
        let tensor = crate::Tensor::new(vec![1, 8, 8], pixels.to_vec())?;
        Ok((crate::Sample::Tensor(tensor), label))
    }
    fn classes(&self) -> Option<Vec<String>> {
        Some((0..CLASSES).map(|c| c.to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_set_has_1797_images_of_all_classes() {
        let d = Digits::embedded();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.images.len(), 1797 * 64);
        let mut seen = [0; 10];
        for &l in &d.labels {
            seen[l as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 170), "{seen:?}");
        assert!(d.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }

    #[test]
    fn damaged_input_names_the_line() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        writeln!(enc, "{}", vec!["0"; 65].join(",")).unwrap();
        writeln!(enc, "{},3", vec!["17"; 64].join(",")).unwrap();
        let gz = enc.finish().unwrap();
        let e = Digits::from_gz(&gz).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("0..=16"), "{e}");
        assert!(Digits::from_gz(b"not gzip").unwrap_err().to_string().contains("gzip"));
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let d = Digits::embedded();
        let (a, b) = d.split(360, 1);
        assert_eq!((a.len(), b.len()), (1437, 360));
        let (a2, _) = d.split(360, 1);
        assert_eq!(a.labels, a2.labels);
        let (a3, _) = d.split(360, 2);
        assert_ne!(a.labels, a3.labels);
    }
}
