//! The model zoo's architectures, as `const` layer lists every crate shares: the host trains
//! and inspects them by name (`torchlet train --model NAME`), the firmware plans its static
//! arena from them at compile time, the GPU tests run them.
//!
//! Each entry is an architecture only, for its default input and class count; a zoo model's
//! weights are PyTorch's default initialisation from a seed, trained weights live in `.tlm`
//! files. The host adapts an entry to a data set (class count, input channels and size):
//! `torchlet_host::zoo::build`.
//!
//! | name | input | parameters (10 classes) | what |
//! |---|---|---|---|
//! | `tutorial-cnn` | `[3, 32, 32]` | 145,578 | the PyTorch course's CIFAR-10 network |
//! | `digits-cnn` | `[1, 8, 8]` | 6,090 | the README's first example (`train_digits`) |
//! | `lenet5` | `[1, 28, 28]` | 61,706 | LeCun's LeNet-5 as PyTorch tutorials write it (ReLU, max pooling) |
//! | `mcu-cnn` | `[1, 28, 28]`, any size from 4×4 | 3,738 | a microcontroller CNN: 14.6 KiB of f32 weights |
//! | `alexnet` | `[3, 32, 32]` | 2,472,266 | AlexNet for CIFAR (bearpaw/pytorch-classification) |
//! | `vgg11` | `[3, 32, 32]` | 9,756,426 | torchvision's `vgg11_bn` features, a 512-512 classifier for 32×32 |
//! | `vgg13` | `[3, 32, 32]` | 9,941,322 | torchvision's `vgg13_bn` features, the same classifier |
//! | `vgg16` | `[3, 32, 32]` | 15,253,578 | torchvision's `vgg16_bn` features, the same classifier |
//! | `vgg19` | `[3, 32, 32]` | 20,565,834 | torchvision's `vgg19_bn` features, the same classifier |
//! | `resnet18` | `[3, 32, 32]`, any size | 11,173,962 | the CIFAR ResNet-18 (3×3 stem, no max pool, BatchNorm) |
//! | `resnet34` | `[3, 32, 32]`, any size | 21,282,122 | the CIFAR ResNet-34 (basic blocks 3-4-6-3) |
//! | `resnet50` | `[3, 32, 32]`, any size | 23,520,842 | the CIFAR ResNet-50 (bottleneck blocks 3-4-6-3) |
//!
//! The parameter counts and every parameter's shape are checked against the same
//! architectures written in PyTorch (`tools/fixtures/zoo_params.py`, `host/cli/tests/zoo.rs`).

mod cnn;
mod resnet;
mod vgg;

pub use self::cnn::*;
pub use self::resnet::*;
pub use self::vgg::*;

use crate::layer::Layer;
use crate::shape::Shape;

/// A named architecture: layers, input shape and class names, for its default data set.
#[derive(Clone, Copy, Debug)]
pub struct ZooModel {
    /// The name to look it up by (`tutorial-cnn`).
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// The layers, as an `nn.Sequential`, for [`ZooModel::input`] and [`ZooModel::classes`].
    pub layers: &'static [Layer<'static>],
    /// The shape of one input sample it was designed for.
    pub input: Shape,
    /// The name of each output class of the default head.
    pub classes: &'static [&'static str],
    /// Which inputs it takes, in words (for error messages).
    pub takes: &'static str,
}

/// What the models without global pooling take.
const FIXED_SIZE: &str = "any channel count (the first convolution adapts) at this height and width only";

/// Every model of the zoo.
pub const ZOO: [ZooModel; 12] = [
    ZooModel {
        name: "tutorial-cnn",
        description: "the PyTorch course's CIFAR-10 CNN",
        layers: &TUTORIAL_CNN,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "digits-cnn",
        description: "the small CNN of the train_digits example (8x8 digits)",
        layers: &DIGITS_CNN,
        input: Shape::chw(1, 8, 8),
        classes: &DIGIT_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "lenet5",
        description: "LeNet-5 for 28x28 MNIST (ReLU, max pooling)",
        layers: &LENET5,
        input: Shape::chw(1, 28, 28),
        classes: &DIGIT_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "mcu-cnn",
        description: "a microcontroller CNN for digits and MNIST (3,738 parameters, global average pooling)",
        layers: &MCU_CNN,
        input: Shape::chw(1, 28, 28),
        classes: &DIGIT_CLASSES,
        takes: "any channel count and any height and width from 4x4 up",
    },
    ZooModel {
        name: "alexnet",
        description: "AlexNet for 32x32 CIFAR",
        layers: &ALEXNET,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "vgg11",
        description: "VGG-11 with BatchNorm for 32x32 CIFAR",
        layers: &VGG11,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "vgg13",
        description: "VGG-13 with BatchNorm for 32x32 CIFAR",
        layers: &VGG13,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "vgg16",
        description: "VGG-16 with BatchNorm for 32x32 CIFAR",
        layers: &VGG16,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "vgg19",
        description: "VGG-19 with BatchNorm for 32x32 CIFAR",
        layers: &VGG19,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: FIXED_SIZE,
    },
    ZooModel {
        name: "resnet18",
        description: "ResNet-18 for 32x32 CIFAR (3x3 stem, no max pool)",
        layers: &RESNET18,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: "any channel count and any height and width",
    },
    ZooModel {
        name: "resnet34",
        description: "ResNet-34 for 32x32 CIFAR (basic blocks 3-4-6-3)",
        layers: &RESNET34,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: "any channel count and any height and width",
    },
    ZooModel {
        name: "resnet50",
        description: "ResNet-50 for 32x32 CIFAR (bottleneck blocks 3-4-6-3)",
        layers: &RESNET50,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
        takes: "any channel count and any height and width",
    },
];

/// The zoo model called `name`, if any.
pub fn find(name: &str) -> Option<&'static ZooModel> {
    ZOO.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::plan::{node_count, Mode, Plan};

    /// The parameter counts of the table above (PyTorch's, see `tools/fixtures/zoo_params.py`).
    const COUNTS: [(&str, usize); 12] = [
        ("tutorial-cnn", 145_578),
        ("digits-cnn", 6_090),
        ("lenet5", 61_706),
        ("mcu-cnn", 3_738),
        ("alexnet", 2_472_266),
        ("vgg11", 9_756_426),
        ("vgg13", 9_941_322),
        ("vgg16", 15_253_578),
        ("vgg19", 20_565_834),
        ("resnet18", 11_173_962),
        ("resnet34", 21_282_122),
        ("resnet50", 23_520_842),
    ];

    #[test]
    fn every_entry_plans_for_its_input_with_its_documented_parameter_count() {
        assert_eq!(ZOO.len(), COUNTS.len());
        for (z, (name, count)) in ZOO.iter().zip(COUNTS) {
            assert_eq!(z.name, name);
            assert!(node_count(z.layers) <= 256, "{name}");
            let plan = std::boxed::Box::new(Plan::<256>::try_new(z.layers, z.input, 1, Mode::Inference).unwrap());
            assert_eq!(plan.param_len(), count, "{name}");
            assert_eq!(plan.output_shape().numel(), z.classes.len(), "{name}");
            assert_eq!(find(name).map(|m| m.layers.len()), Some(z.layers.len()));
        }
        assert!(find("resnet51").is_none());
    }
}
