//! Op families and the cargo features that compile them in: a firmware built for one model
//! links only the kernels that model uses.
//!
//! Each family of [`crate::ops`] but reshaping (`Identity`, `Flatten`, always in) has an `op-*`
//! feature; `all-ops` (the default) turns them all on. With a family's feature off, its
//! planning, forward and backward code is dead and not linked, and the planner refuses a layer
//! of that family with [`Error::NotCompiled`], naming the layer and the feature. A feature
//! changes what compiles in, never a result.
//!
//! [`op_feature`] and [`merge_feature`] map layers to features, and [`for_each_feature`] lists
//! the features a model needs (`torchlet emulate` builds the firmware with them).

use crate::error::Error;
use crate::layer::{Kind, Layer, Merge, Op};

/// Every `op-*` feature (`all-ops` turns all on).
pub const ALL: [&str; 16] = [
    "op-conv",
    "op-conv-transpose",
    "op-pool",
    "op-adaptive-pool",
    "op-unpool",
    "op-pad",
    "op-activation",
    "op-smooth-activation",
    "op-softmax",
    "op-batchnorm",
    "op-dropout",
    "op-linear",
    "op-merge",
    "op-bilinear",
    "op-shuffle",
    "op-upsample",
];

/// The feature that compiles `op` in; `None` for reshaping, always compiled in.
pub const fn op_feature(op: &Op) -> Option<&'static str> {
    Some(match op {
        Op::Conv(_) => "op-conv",
        Op::ConvTranspose(_) | Op::ConvTransposeNd(..) => "op-conv-transpose",
        Op::MaxPool(_) | Op::AvgPool(_) => "op-pool",
        Op::AdaptiveAvgPool(_) | Op::AdaptiveMaxPool(_) => "op-adaptive-pool",
        Op::MaxUnpool(_) | Op::MaxUnpoolNd(..) => "op-unpool",
        Op::Pad2d(_) | Op::Pad(_) => "op-pad",
        Op::ReLU | Op::LeakyReLU(_) | Op::ReLU6 | Op::Hardswish | Op::Hardsigmoid | Op::PReLU(_) => "op-activation",
        Op::Sigmoid | Op::Tanh | Op::ELU(_) | Op::GELU(_) | Op::SiLU | Op::Softplus(_) | Op::Mish => {
            "op-smooth-activation"
        }
        Op::Softmax(_) | Op::LogSoftmax(_) => "op-softmax",
        Op::BatchNorm(_) => "op-batchnorm",
        Op::Dropout(_) | Op::ChannelDropout(..) => "op-dropout",
        Op::Linear(_) => "op-linear",
        Op::ChannelShuffle(_) => "op-shuffle",
        Op::Upsample(_) => "op-upsample",
        Op::Identity | Op::Flatten => return None,
    })
}

/// The feature that compiles the merge `m` in.
pub const fn merge_feature(m: &Merge) -> &'static str {
    match m {
        Merge::Add | Merge::Concat => "op-merge",
        Merge::Bilinear(_) => "op-bilinear",
    }
}

/// Calls `f` with the feature of every layer of `layers` (containers walked, in model order;
/// repeats included).
pub fn for_each_feature(layers: &[Layer], f: &mut dyn FnMut(&'static str)) {
    for l in layers {
        match l.kind {
            Kind::Op(op) => {
                if let Some(feature) = op_feature(&op) {
                    f(feature);
                }
            }
            Kind::Sequential(inner) => for_each_feature(inner, f),
            Kind::Merge { merge, a, b } => {
                for_each_feature(a, f);
                for_each_feature(b, f);
                f(merge_feature(&merge));
            }
            Kind::Misuse(_) => {}
        }
    }
}

/// The refusal of layer `layer` (`op`) whose family's `feature` is off.
pub(crate) const fn not_compiled(layer: usize, op: &'static str, feature: &'static str) -> Error {
    Error::NotCompiled { layer, op, feature }
}

/// `$e` (a `Result`; `do $e`: a `()` expression, then `Ok(())`) if feature `$f` is on, else [`Error::NotCompiled`] for `$at` (an
/// `ops::geom::At` or anything with `layer` and `op`). `cfg!` keeps `$e` type-checked in
/// every build and dead when the feature is off.
macro_rules! gated {
    ($f:literal, $at:expr, do $e:expr) => {
        $crate::ops::family::gated!($f, $at, {
            $e;
            Ok(())
        })
    };
    ($f:literal, $at:expr, $e:expr) => {
        if cfg!(feature = $f) {
            $e
        } else {
            Err($crate::ops::family::not_compiled($at.layer, $at.op, $f))
        }
    };
}
pub(crate) use gated;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_is_in_the_list_and_the_digits_cnn_needs_four() {
        let mut seen = [false; ALL.len()];
        let mut count = 0;
        for_each_feature(&crate::zoo::DIGITS_CNN, &mut |f| {
            let k = ALL.iter().position(|a| *a == f).expect("listed");
            count += usize::from(!seen[k]);
            seen[k] = true;
        });
        assert_eq!(count, 4, "conv, pool, activation, linear");
        assert_eq!(op_feature(&Op::Flatten), None);
    }

    #[test]
    fn a_layer_whose_family_is_off_is_refused_naming_the_feature() {
        use crate::{Mode, Plan, Shape};
        let r = Plan::<9>::try_new(&crate::zoo::DIGITS_CNN, Shape::chw(1, 8, 8), 1, Mode::Inference);
        if cfg!(feature = "op-conv") {
            assert!(r.is_ok());
        } else {
            let e = Error::NotCompiled {
                layer: 0,
                op: "Conv2d",
                feature: "op-conv",
            };
            assert_eq!(r.err(), Some(e));
        }
    }
}
