//! Histograms with TensorBoard's default bucket layout.
//!
//! As `torch.utils.tensorboard`'s `add_histogram(..., bins="tensorflow")` (its default): the
//! bucket edges are `-1e20 < ... < -1e-12 < 0 < 1e-12 < 1.1e-12 < ... < 1e20`, growing by a
//! factor 1.1 (`v = 1e-12; while v < 1e20: v *= 1.1`, 774 edges on each side, mirrored, and 0).
//! Values are counted as `numpy.histogram` counts them against those edges: bucket `i` holds
//! `edges[i] <= v < edges[i + 1]`, the last bucket also its right edge; values beyond the
//! outermost edges (|v| > ~1e20) count in `num`, `sum`, `min`, `max` but in no bucket.
//!
//! Then, as PyTorch's `make_histogram`, only the buckets from the first to the last non-empty
//! one are kept, plus one empty bucket on the left (so TensorBoard, which stores only right
//! edges, also knows where the first bucket starts): `bucket_limit` holds right edges,
//! `bucket` the counts.

use std::sync::OnceLock;

use super::proto::HistogramProto;
use super::SummaryError;

/// TensorBoard's default bucket edges (PyTorch's `SummaryWriter.default_bins`), ascending.
pub fn default_edges() -> &'static [f64] {
    static EDGES: OnceLock<Vec<f64>> = OnceLock::new();
    EDGES.get_or_init(|| {
        let mut pos = Vec::new();
        let mut v = 1e-12f64;
        while v < 1e20 {
            pos.push(v);
            v *= 1.1;
        }
        let mut edges: Vec<f64> = pos.iter().rev().map(|v| -v).collect();
        edges.push(0.0);
        edges.extend_from_slice(&pos);
        edges
    })
}

/// The histogram of `values` with the default buckets. See the [module docs](self).
///
/// # Errors
/// [`SummaryError::Invalid`] if `values` is empty, holds NaN or an infinity, or has no value
/// inside the buckets' range (PyTorch raises a `ValueError` for these).
pub fn histogram(values: &[f32]) -> Result<HistogramProto, SummaryError> {
    let invalid = |detail: String| SummaryError::invalid("add_histogram", detail);
    if values.is_empty() {
        return Err(invalid("no values (an empty tensor)".into()));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!("value {i} is {}, not finite", values[i])));
    }
    let edges = default_edges();
    let mut counts = vec![0u64; edges.len() - 1];
    let (mut min, mut max, mut sum, mut sum_squares) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
    let last = edges.len() - 1;
    let last_bucket = counts.len() - 1;
    for &v in values {
        let v = v as f64;
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sum_squares += v * v;
        if v < edges[0] || v > edges[last] {
            continue;
        }
        // Number of edges <= v, minus one: the bucket whose left edge is the largest <= v.
        let k = edges.partition_point(|&e| e <= v);
        counts[(k - 1).min(last_bucket)] += 1;
    }
    let first = counts.iter().position(|&c| c > 0);
    let (Some(first), Some(end)) = (first, counts.iter().rposition(|&c| c > 0)) else {
        return Err(invalid(
            "every value lies beyond the buckets' range (|v| > 1e20)".into(),
        ));
    };
    // Counts of buckets first-1 ..= end (bucket first-1 is empty, or a 0 in front when first
    // is the very first bucket); their right edges are edges[first ..= end + 1].
    let mut bucket = Vec::with_capacity(end - first + 2);
    if first == 0 {
        bucket.push(0.0);
    }
    bucket.extend(counts[first.saturating_sub(1)..=end].iter().map(|&c| c as f64));
    let bucket_limit = edges[first..=end + 1].to_vec();
    debug_assert_eq!(bucket.len(), bucket_limit.len());
    Ok(HistogramProto {
        min,
        max,
        num: values.len() as f64,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_symmetric_geometric_and_span_1e_minus12_to_1e20() {
        let e = default_edges();
        assert_eq!(e.len(), 2 * 774 + 1);
        assert_eq!(e[774], 0.0);
        assert_eq!(e[775], 1e-12);
        assert!(e[e.len() - 1] >= 1e20 / 1.1 && e[e.len() - 1] < 1e20);
        for i in 0..774 {
            assert_eq!(e[774 - 1 - i], -e[775 + i]);
        }
        assert!(e.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn counts_each_value_once_in_the_bucket_holding_it() {
        let values = [0.5f32, -0.5, 0.5, 3.0, 0.0, 1e-3];
        let h = histogram(&values).unwrap();
        assert_eq!(h.bucket.iter().sum::<f64>(), values.len() as f64);
        assert_eq!((h.min, h.max, h.num, h.sum), (-0.5, 3.0, 6.0, 3.5 + 1e-3f32 as f64));
        // First kept bucket is empty, its right edge is the left edge of the first count.
        assert_eq!(h.bucket[0], 0.0);
        assert!(h.bucket_limit[0] <= -0.5 && -0.5 < h.bucket_limit[1]);
        for &v in &values {
            let v = v as f64;
            let i = h.bucket_limit.partition_point(|&e| e <= v);
            assert!(h.bucket[i] > 0.0, "no count for {v}");
        }
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(histogram(&[]).is_err());
        assert!(histogram(&[1.0, f32::NAN])
            .unwrap_err()
            .to_string()
            .contains("value 1 is NaN"));
        assert!(histogram(&[f32::INFINITY]).is_err());
        assert!(histogram(&[3e20]).is_err());
    }
}
