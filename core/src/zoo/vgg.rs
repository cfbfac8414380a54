//! VGG with BatchNorm for 32×32 inputs (torchvision's `vgg11_bn` ... `vgg19_bn` features with a
//! 512-512 classifier): one `const fn` builds the features from torchvision's configurations.

use crate::layer::*;

/// `M` in a VGG configuration: a 2×2 max pool.
const M: usize = 0;
/// torchvision's configuration "A" (VGG-11).
const VGG11_CFG: [usize; 13] = [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "B" (VGG-13).
const VGG13_CFG: [usize; 15] = [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "D" (VGG-16).
const VGG16_CFG: [usize; 18] = [
    64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
];

/// torchvision's configuration "E" (VGG-19).
const VGG19_CFG: [usize; 21] = [
    64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M,
];

/// torchvision's `make_layers(cfg, batch_norm=True)`: Conv2d(3×3, padding 1), BatchNorm2d and
/// ReLU per number, MaxPool2d(2, 2) per `M`. `N` must be 3 per number plus 1 per `M`.
const fn vgg_features<const N: usize>(cfg: &[usize]) -> [Layer<'static>; N] {
    let mut out = [identity(); N];
    let (mut i, mut at, mut c_in) = (0, 0, 3);
    while i < cfg.len() {
        if cfg[i] == M {
            out[at] = max_pool2d(2);
            at += 1;
        } else {
            out[at] = conv2d(c_in, cfg[i], 3).padding(1);
            out[at + 1] = batch_norm2d(cfg[i]);
            out[at + 2] = relu();
            at += 3;
            c_in = cfg[i];
        }
        i += 1;
    }
    assert!(at == N, "vgg_features: N does not match the configuration");
    out
}

const VGG11_FEATURES: [Layer; 29] = vgg_features(&VGG11_CFG);
const VGG13_FEATURES: [Layer; 35] = vgg_features(&VGG13_CFG);
const VGG16_FEATURES: [Layer; 44] = vgg_features(&VGG16_CFG);
const VGG19_FEATURES: [Layer; 53] = vgg_features(&VGG19_CFG);

/// The classifier for 32×32 inputs (the features end at `[512, 1, 1]`): torchvision's three
/// `Linear` layers with ReLU and Dropout(0.5), 512 wide instead of 4,096.
const VGG_CLASSIFIER: [Layer; 7] = [
    linear(512, 512),
    relu(),
    dropout(0.5),
    linear(512, 512),
    relu(),
    dropout(0.5),
    linear(512, 10),
];

/// VGG-11 with BatchNorm for 32×32 inputs: 9,756,426 parameters.
pub const VGG11: [Layer; 3] = [
    sequential(&VGG11_FEATURES).named("features"),
    flatten(),
    sequential(&VGG_CLASSIFIER).named("classifier"),
];

/// VGG-13 with BatchNorm for 32×32 inputs.
pub const VGG13: [Layer; 3] = [
    sequential(&VGG13_FEATURES).named("features"),
    flatten(),
    sequential(&VGG_CLASSIFIER).named("classifier"),
];

/// VGG-16 with BatchNorm for 32×32 inputs: 15,253,578 parameters.
pub const VGG16: [Layer; 3] = [
    sequential(&VGG16_FEATURES).named("features"),
    flatten(),
    sequential(&VGG_CLASSIFIER).named("classifier"),
];

/// VGG-19 with BatchNorm for 32×32 inputs.
pub const VGG19: [Layer; 3] = [
    sequential(&VGG19_FEATURES).named("features"),
    flatten(),
    sequential(&VGG_CLASSIFIER).named("classifier"),
];
