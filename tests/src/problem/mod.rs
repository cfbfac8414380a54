//! Problems per op family, in one place: the random valid geometry each layer's property tests
//! draw (on every backend) and the naive reference each backend's kernels are checked against,
//! as tract keeps one `Problem` and reference per op.

pub mod conv;
pub mod pool;
