//! ResNets for CIFAR (He et al., 2016; as `kuangliu/pytorch-cifar`): a 3×3 stem without max
//! pooling, four stages of residual blocks, global average pooling and one `Linear`. ResNet-18
//! and -34 use basic blocks, ResNet-50 bottleneck blocks. State-dict names are PyTorch's with
//! a block's branches as `body` and `shortcut` (`layer2.0.body.conv1.weight`).

use crate::layer::*;

/// The body of ResNet's basic block: conv 3×3 (stride `stride`), BN, ReLU, conv 3×3, BN.
const fn basic_body(c_in: usize, c_out: usize, stride: usize) -> [Layer<'static>; 5] {
    [
        conv2d(c_in, c_out, 3)
            .stride(stride)
            .padding(1)
            .bias(false)
            .named("conv1"),
        batch_norm2d(c_out).named("bn1"),
        relu(),
        conv2d(c_out, c_out, 3).padding(1).bias(false).named("conv2"),
        batch_norm2d(c_out).named("bn2"),
    ]
}

/// The projection shortcut of a block that changes the shape: conv 1×1 (stride), BN.
const fn projection(c_in: usize, c_out: usize, stride: usize) -> [Layer<'static>; 2] {
    [conv2d(c_in, c_out, 1).stride(stride).bias(false), batch_norm2d(c_out)]
}

const BODY_64: [Layer; 5] = basic_body(64, 64, 1);
const BODY_64_128: [Layer; 5] = basic_body(64, 128, 2);
const BODY_128: [Layer; 5] = basic_body(128, 128, 1);
const BODY_128_256: [Layer; 5] = basic_body(128, 256, 2);
const BODY_256: [Layer; 5] = basic_body(256, 256, 1);
const BODY_256_512: [Layer; 5] = basic_body(256, 512, 2);
const BODY_512: [Layer; 5] = basic_body(512, 512, 1);
const SHORTCUT_64_128: [Layer; 2] = projection(64, 128, 2);
const SHORTCUT_128_256: [Layer; 2] = projection(128, 256, 2);
const SHORTCUT_256_512: [Layer; 2] = projection(256, 512, 2);

/// The names of a stage's blocks (`0`, `1`, ...) and of the ReLU after each, as PyTorch's stage.
const BLOCK: [&str; 6] = ["0", "1", "2", "3", "4", "5"];
const RELU: [&str; 6] = ["relu0", "relu1", "relu2", "relu3", "relu4", "relu5"];

/// `N / 2` residual blocks, each `relu(body(x) + shortcut(x))`: the first with `first` and
/// `shortcut`, the others with `rest` and the identity.
const fn stage<const N: usize>(
    first: &'static [Layer<'static>],
    shortcut: &'static [Layer<'static>],
    rest: &'static [Layer<'static>],
) -> [Layer<'static>; N] {
    let mut out = [identity(); N];
    let mut b = 0;
    while 2 * b < N {
        let (body, sc): (&'static [Layer<'static>], &'static [Layer<'static>]) =
            if b == 0 { (first, shortcut) } else { (rest, &[]) };
        out[2 * b] = residual(body, sc).named(BLOCK[b]);
        out[2 * b + 1] = relu().named(RELU[b]);
        b += 1;
    }
    out
}

const LAYER1: [Layer; 4] = stage(&BODY_64, &[], &BODY_64);
const LAYER2: [Layer; 4] = stage(&BODY_64_128, &SHORTCUT_64_128, &BODY_128);
const LAYER3: [Layer; 4] = stage(&BODY_128_256, &SHORTCUT_128_256, &BODY_256);
const LAYER4: [Layer; 4] = stage(&BODY_256_512, &SHORTCUT_256_512, &BODY_512);

/// ResNet-18 for CIFAR (He et al., 2016; as `kuangliu/pytorch-cifar`): a 3×3 stem without max
/// pooling, four stages of two basic blocks (64, 128, 256, 512 channels), global average
/// pooling and `Linear(512, 10)`: 11,173,962 parameters. State-dict names are PyTorch's
/// with the block's branches as `body` and `shortcut` (`layer2.0.body.conv1.weight`).
pub const RESNET18: [Layer; 10] = [
    conv2d(3, 64, 3).padding(1).bias(false).named("conv1"),
    batch_norm2d(64).named("bn1"),
    relu().named("relu"),
    sequential(&LAYER1).named("layer1"),
    sequential(&LAYER2).named("layer2"),
    sequential(&LAYER3).named("layer3"),
    sequential(&LAYER4).named("layer4"),
    adaptive_avg_pool2d(1, 1).named("avgpool"),
    flatten().named("flatten"),
    linear(512, 10).named("linear"),
];

const LAYER1_34: [Layer; 6] = stage(&BODY_64, &[], &BODY_64);
const LAYER2_34: [Layer; 8] = stage(&BODY_64_128, &SHORTCUT_64_128, &BODY_128);
const LAYER3_34: [Layer; 12] = stage(&BODY_128_256, &SHORTCUT_128_256, &BODY_256);
const LAYER4_34: [Layer; 6] = stage(&BODY_256_512, &SHORTCUT_256_512, &BODY_512);

/// ResNet-34 for CIFAR: ResNet-18 with 3, 4, 6 and 3 basic blocks per stage.
pub const RESNET34: [Layer; 10] = [
    conv2d(3, 64, 3).padding(1).bias(false).named("conv1"),
    batch_norm2d(64).named("bn1"),
    relu().named("relu"),
    sequential(&LAYER1_34).named("layer1"),
    sequential(&LAYER2_34).named("layer2"),
    sequential(&LAYER3_34).named("layer3"),
    sequential(&LAYER4_34).named("layer4"),
    adaptive_avg_pool2d(1, 1).named("avgpool"),
    flatten().named("flatten"),
    linear(512, 10).named("linear"),
];

/// The body of ResNet's bottleneck block (expansion 4, stride on the 3×3 as torchvision's
/// v1.5): conv 1×1 to `planes`, BN, ReLU, conv 3×3 (stride), BN, ReLU, conv 1×1 to
/// `4 * planes`, BN.
const fn bottleneck(c_in: usize, planes: usize, stride: usize) -> [Layer<'static>; 8] {
    [
        conv2d(c_in, planes, 1).bias(false).named("conv1"),
        batch_norm2d(planes).named("bn1"),
        relu(),
        conv2d(planes, planes, 3)
            .stride(stride)
            .padding(1)
            .bias(false)
            .named("conv2"),
        batch_norm2d(planes).named("bn2"),
        relu(),
        conv2d(planes, 4 * planes, 1).bias(false).named("conv3"),
        batch_norm2d(4 * planes).named("bn3"),
    ]
}

const NECK_64_FIRST: [Layer; 8] = bottleneck(64, 64, 1);
const NECK_64: [Layer; 8] = bottleneck(256, 64, 1);
const NECK_128_FIRST: [Layer; 8] = bottleneck(256, 128, 2);
const NECK_128: [Layer; 8] = bottleneck(512, 128, 1);
const NECK_256_FIRST: [Layer; 8] = bottleneck(512, 256, 2);
const NECK_256: [Layer; 8] = bottleneck(1024, 256, 1);
const NECK_512_FIRST: [Layer; 8] = bottleneck(1024, 512, 2);
const NECK_512: [Layer; 8] = bottleneck(2048, 512, 1);
const SHORTCUT_64_256: [Layer; 2] = projection(64, 256, 1);
const SHORTCUT_256_512_2: [Layer; 2] = projection(256, 512, 2);
const SHORTCUT_512_1024: [Layer; 2] = projection(512, 1024, 2);
const SHORTCUT_1024_2048: [Layer; 2] = projection(1024, 2048, 2);

const LAYER1_50: [Layer; 6] = stage(&NECK_64_FIRST, &SHORTCUT_64_256, &NECK_64);
const LAYER2_50: [Layer; 8] = stage(&NECK_128_FIRST, &SHORTCUT_256_512_2, &NECK_128);
const LAYER3_50: [Layer; 12] = stage(&NECK_256_FIRST, &SHORTCUT_512_1024, &NECK_256);
const LAYER4_50: [Layer; 6] = stage(&NECK_512_FIRST, &SHORTCUT_1024_2048, &NECK_512);

/// ResNet-50 for CIFAR: the 3×3 stem, four stages of 3, 4, 6 and 3 bottleneck blocks (256 to
/// 2,048 channels), global average pooling and `Linear(2048, 10)`.
pub const RESNET50: [Layer; 10] = [
    conv2d(3, 64, 3).padding(1).bias(false).named("conv1"),
    batch_norm2d(64).named("bn1"),
    relu().named("relu"),
    sequential(&LAYER1_50).named("layer1"),
    sequential(&LAYER2_50).named("layer2"),
    sequential(&LAYER3_50).named("layer3"),
    sequential(&LAYER4_50).named("layer4"),
    adaptive_avg_pool2d(1, 1).named("avgpool"),
    flatten().named("flatten"),
    linear(2048, 10).named("linear"),
];
