//! The small convolutional networks of the zoo: the course's CIFAR-10 network, the digits
//! CNN, LeNet-5, the microcontroller CNN and AlexNet for CIFAR.

use crate::layer::*;

/// The course's CIFAR-10 network: 145,578 parameters.
pub const TUTORIAL_CNN: [Layer; 9] = [
    conv2d(3, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 32, 5).padding(2),
    max_pool2d(2),
    conv2d(32, 64, 5).padding(2),
    max_pool2d(2),
    flatten(),
    linear(1024, 64),
    linear(64, 10),
];

/// CIFAR-10's classes, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The small CNN of `examples/train_digits.rs` for the 8×8 digits: 6,090 parameters.
pub const DIGITS_CNN: [Layer; 8] = [
    conv2d(1, 16, 3).padding(1),
    relu(),
    max_pool2d(2),
    conv2d(16, 32, 3).padding(1),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(32 * 2 * 2, 10),
];

/// The digit classes `"0"` to `"9"`.
pub const DIGIT_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// LeNet-5 (LeCun et al., 1998) for 28×28 MNIST as PyTorch tutorials write it: the 5×5
/// convolutions of 6 and 16 channels (the first padded by 2, so 28×28 input behaves as the
/// paper's 32×32), ReLU and 2×2 max pooling, then 120, 84 and 10 features: 61,706 parameters.
pub const LENET5: [Layer; 12] = [
    conv2d(1, 6, 5).padding(2),
    relu(),
    max_pool2d(2),
    conv2d(6, 16, 5),
    relu(),
    max_pool2d(2),
    flatten(),
    linear(16 * 5 * 5, 120),
    relu(),
    linear(120, 84),
    relu(),
    linear(84, 10),
];

/// A CNN for microcontrollers: 3×3 convolutions of 8, 16 and 16 channels, two 2×2 max pools,
/// global average pooling and one `Linear`: 3,738 parameters (14.6 KiB as f32). Global pooling
/// makes it take any input from 4×4 up (MNIST's 28×28, the digits' 8×8).
pub const MCU_CNN: [Layer; 11] = [
    conv2d(1, 8, 3).padding(1),
    relu(),
    max_pool2d(2),
    conv2d(8, 16, 3).padding(1),
    relu(),
    max_pool2d(2),
    conv2d(16, 16, 3).padding(1),
    relu(),
    adaptive_avg_pool2d(1, 1),
    flatten(),
    linear(16, 10),
];

/// AlexNet's five convolutions scaled for 32×32 CIFAR, as `bearpaw/pytorch-classification`
/// (`models/cifar/alexnet.py`): an 11×11 stride-4 stem, then 5×5 and three 3×3 convolutions.
const ALEXNET_FEATURES: [Layer; 13] = [
    conv2d(3, 64, 11).stride(4).padding(5),
    relu(),
    max_pool2d(2),
    conv2d(64, 192, 5).padding(2),
    relu(),
    max_pool2d(2),
    conv2d(192, 384, 3).padding(1),
    relu(),
    conv2d(384, 256, 3).padding(1),
    relu(),
    conv2d(256, 256, 3).padding(1),
    relu(),
    max_pool2d(2),
];

/// AlexNet for CIFAR: `features`, then a single `Linear(256, 10)` `classifier`: 2,472,266
/// parameters.
pub const ALEXNET: [Layer; 3] = [
    sequential(&ALEXNET_FEATURES).named("features"),
    flatten(),
    linear(256, 10).named("classifier"),
];
