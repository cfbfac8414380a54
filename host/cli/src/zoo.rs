//! The model zoo: architectures known by name, for `torchlet train --model NAME`,
//! `torchlet inspect NAME` and [`Model::from_zoo`].
//!
//! Each entry is an architecture only: a zoo model's weights are PyTorch's default
//! initialisation from a seed; trained weights live in `.tlm` files. Every entry is a `const`
//! layer list for its default input and class count (so it can also be planned at compile time,
//! on a microcontroller); [`build`] adapts it at run time to a data set: `num_classes` resizes
//! the classifier head (the last `Linear`), `channels` the first convolution (gray or RGB), and
//! `size` the input's height and width, checked by planning the model for that input (a model
//! that does not fit is a [`ZooError::Input`] naming the model, the input and what it takes).
//!
//! | name | input | parameters (10 classes) | what |
//! |---|---|---|---|
//! | `tutorial-cnn` | `[3, 32, 32]` | 145,578 | the PyTorch course's CIFAR-10 network |
//! | `digits-cnn` | `[1, 8, 8]` | 6,090 | the README's first example (`train_digits`) |
//! | `lenet5` | `[1, 28, 28]` | 61,706 | LeCun's LeNet-5 as PyTorch tutorials write it (ReLU, max pooling) |
//! | `mcu-cnn` | `[1, 28, 28]`, any size from 4×4 | 3,738 | a microcontroller CNN: 14.6 KiB of f32 weights |
//! | `alexnet` | `[3, 32, 32]` | 2,472,266 | AlexNet for CIFAR (bearpaw/pytorch-classification) |
//! | `vgg11` | `[3, 32, 32]` | 9,756,426 | torchvision's `vgg11_bn` features, a 512-512 classifier for 32×32 |
//! | `vgg16` | `[3, 32, 32]` | 15,253,578 | torchvision's `vgg16_bn` features, the same classifier |
//! | `resnet18` | `[3, 32, 32]`, any size | 11,173,962 | the CIFAR ResNet-18 (3×3 stem, no max pool, BatchNorm) |
//!
//! The parameter counts and the shape of every parameter are checked against the same
//! architectures written in PyTorch (`tools/fixtures/zoo_params.py`, `host/tests/zoo.rs`).
//! `mcu-cnn` needs an activation arena of 75,264 bytes (73.5 KiB) for inference at batch 1 on
//! 28×28 input and 6,144 bytes on the 8×8 digits, where it reaches about 97 % held-out accuracy
//! (`torchlet train --model mcu-cnn`); `torchlet inspect mcu-cnn` prints its arenas.
//!
//! Adapted layer lists are built at run time and leaked (plans need `'static` layers): build
//! models a few times per run, not in a loop.
//!
//! There is one way to build a zoo model, [`ZooModel::build`] ([`build`] looks the name up
//! first, [`Model::from_zoo`] is `build` with the default [`ZooConfig`]), and one error for a
//! name the zoo does not have, [`ZooError::Unknown`]. This module depends on [`crate::model`],
//! never the other way round.

use std::fmt;

use torchlet::layer::*;
use torchlet::{Mode, Shape};

use crate::model::{HostPlan, Model, ModelError};

/// A named architecture: layers, input shape and class names, for its default data set.
#[derive(Clone, Copy, Debug)]
pub struct ZooModel {
    /// The name to look it up by (`tutorial-cnn`).
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// The layers, as an `nn.Sequential`, for [`ZooModel::input`] and [`ZooModel::classes`].
    pub layers: &'static [Layer],
    /// The shape of one input sample it was designed for.
    pub input: Shape,
    /// The name of each output class of the default head.
    pub classes: &'static [&'static str],
    /// Which inputs it takes, in words (for error messages).
    pub takes: &'static str,
}

/// What the models without global pooling take.
const FIXED_SIZE: &str = "any channel count (the first convolution adapts) at this height and width only";

/// What to adapt a zoo model to (all `None`: the zoo's defaults). See [`build`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZooConfig {
    /// Input channels (1 for gray images, 3 for RGB): sets the first convolution's
    /// `in_channels`.
    pub channels: Option<usize>,
    /// Input height and width; the model must plan for them.
    pub size: Option<(usize, usize)>,
    /// Outputs of the classifier head (the last `Linear`), as torchvision's `num_classes`.
    pub num_classes: Option<usize>,
}

/// A zoo model that does not plan for an input shape: see [`ZooError::Input`].
#[derive(Debug)]
pub struct InputMismatch {
    /// The zoo model.
    pub model: &'static str,
    /// The input shape asked for, one sample.
    pub input: Shape,
    /// The input the model was designed for.
    pub expected: Shape,
    /// Which inputs it takes, in words.
    pub takes: &'static str,
    /// The planner's error.
    pub error: torchlet::Error,
}

/// Why [`build`] could not make a model.
#[derive(Debug)]
pub enum ZooError {
    /// No model of this name in the zoo.
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// A class count of zero.
    NoClasses {
        /// The zoo model.
        model: &'static str,
    },
    /// The model's first layer is not a convolution whose input channels can be changed, or its
    /// last layer is not a `Linear` head (cannot happen for the built-in entries).
    Adapt {
        /// The zoo model.
        model: &'static str,
        /// What could not be adapted.
        what: &'static str,
    },
    /// The model does not plan for this input shape.
    Input(Box<InputMismatch>),
    /// Initialising the adapted model failed.
    Model(ModelError),
}

impl fmt::Display for ZooError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZooError::Unknown { name } => {
                write!(f, "no model named '{name}' in the zoo (expected one of: {})", names())
            }
            ZooError::NoClasses { model } => {
                write!(f, "model '{model}': --num-classes must be at least 1, found 0")
            }
            ZooError::Adapt { model, what } => write!(f, "model '{model}': cannot adapt {what}"),
            ZooError::Input(e) => {
                let InputMismatch {
                    model,
                    input,
                    expected,
                    takes,
                    error,
                } = &**e;
                write!(
                    f,
                    "model '{model}' does not fit the input shape {input}: it was designed for {expected} and takes \
                 {takes} (planning it for {input}: {error})"
                )
            }
            ZooError::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ZooError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ZooError::Input(e) => Some(&e.error),
            ZooError::Model(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ModelError> for ZooError {
    fn from(e: ModelError) -> Self {
        ZooError::Model(e)
    }
}

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

/// `M` in a VGG configuration: a 2×2 max pool.
const M: usize = 0;
/// torchvision's configuration "A" (VGG-11).
const VGG11_CFG: [usize; 13] = [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "D" (VGG-16).
const VGG16_CFG: [usize; 18] = [
    64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
];

/// torchvision's `make_layers(cfg, batch_norm=True)`: Conv2d(3×3, padding 1), BatchNorm2d and
/// ReLU per number, MaxPool2d(2, 2) per `M`. `N` must be 3 per number plus 1 per `M`.
const fn vgg_features<const N: usize>(cfg: &[usize]) -> [Layer; N] {
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
const VGG16_FEATURES: [Layer; 44] = vgg_features(&VGG16_CFG);

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

/// VGG-16 with BatchNorm for 32×32 inputs: 15,253,578 parameters.
pub const VGG16: [Layer; 3] = [
    sequential(&VGG16_FEATURES).named("features"),
    flatten(),
    sequential(&VGG_CLASSIFIER).named("classifier"),
];

/// The body of ResNet's basic block: conv 3×3 (stride `stride`), BN, ReLU, conv 3×3, BN.
const fn basic_body(c_in: usize, c_out: usize, stride: usize) -> [Layer; 5] {
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
const fn projection(c_in: usize, c_out: usize, stride: usize) -> [Layer; 2] {
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

/// Two basic blocks, each `relu(body(x) + shortcut(x))`; names `0` and `1` as PyTorch's stage.
const fn stage(first: &'static [Layer], shortcut: &'static [Layer], second: &'static [Layer]) -> [Layer; 4] {
    [
        residual(first, shortcut).named("0"),
        relu().named("relu0"),
        residual(second, &[]).named("1"),
        relu().named("relu1"),
    ]
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

/// Every model of the zoo.
pub const ZOO: [ZooModel; 8] = [
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
        name: "vgg16",
        description: "VGG-16 with BatchNorm for 32x32 CIFAR",
        layers: &VGG16,
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
];

/// The zoo model called `name`, if any.
pub fn find(name: &str) -> Option<&'static ZooModel> {
    ZOO.iter().find(|m| m.name == name)
}

/// The names of all zoo models, comma-separated (for error messages).
pub fn names() -> String {
    ZOO.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

/// The zoo model `name` adapted to `config` and initialised from `seed` (PyTorch's default
/// initialisation). With the default config it is [`Model::from_zoo`]. The model's class
/// names are the zoo's when the class count is the default, else empty.
///
/// # Errors
/// [`ZooError::Unknown`] listing the zoo, [`ZooError::NoClasses`], [`ZooError::Input`] when
/// the model does not plan for the input (naming the model, the input and what it takes).
pub fn build(name: &str, config: &ZooConfig, seed: u64) -> Result<Model, ZooError> {
    let z = find(name).ok_or_else(|| ZooError::Unknown { name: name.to_string() })?;
    z.build(config, seed)
}

impl Model {
    /// The zoo model called `name` as the zoo defines it (input, classes), initialised from
    /// `seed`: [`build`] with the default [`ZooConfig`].
    ///
    /// # Errors
    /// [`ZooError::Unknown`] (listing the zoo) if the zoo has no such model.
    pub fn from_zoo(name: &str, seed: u64) -> Result<Model, ZooError> {
        build(name, &ZooConfig::default(), seed)
    }
}

impl ZooModel {
    /// The input shape for `config` (the zoo's, with the channels and size replaced).
    pub fn input_for(&self, config: &ZooConfig) -> Shape {
        match *self.input.dims() {
            [c, h, w] => {
                let (h, w) = config.size.unwrap_or((h, w));
                Shape::chw(config.channels.unwrap_or(c), h, w)
            }
            _ => self.input,
        }
    }

    /// The layers adapted to `config`, and the input shape they were planned for. Unchanged
    /// layers are the zoo's `'static` lists; changed ones are copied and leaked.
    ///
    /// # Errors
    /// As [`build`], except [`ZooError::Model`].
    pub fn layers_for(&self, config: &ZooConfig) -> Result<(&'static [Layer], Shape), ZooError> {
        let mut layers = self.layers;
        let input = self.input_for(config);
        let default_channels = self.input.dims().first().copied();
        if let Some(c) = config.channels.filter(|&c| Some(c) != default_channels) {
            layers = set_in_channels(layers, c).ok_or(ZooError::Adapt {
                model: self.name,
                what: "the input channels (the first layer is not a convolution)",
            })?;
        }
        if let Some(n) = config.num_classes.filter(|&n| n != self.classes.len()) {
            if n == 0 {
                return Err(ZooError::NoClasses { model: self.name });
            }
            layers = set_out_features(layers, n).ok_or(ZooError::Adapt {
                model: self.name,
                what: "the class count (the last layer is not a Linear head)",
            })?;
        }
        // Planning checks every layer against the input (as Model::new would, with a less
        // specific message).
        HostPlan::try_new(layers, input, 1, Mode::Inference).map_err(|error| {
            ZooError::Input(Box::new(InputMismatch {
                model: self.name,
                input,
                expected: self.input,
                takes: self.takes,
                error,
            }))
        })?;
        Ok((layers, input))
    }

    /// This model adapted to `config`, initialised from `seed`. See [`build`].
    ///
    /// # Errors
    /// As [`build`].
    pub fn build(&self, config: &ZooConfig, seed: u64) -> Result<Model, ZooError> {
        let (layers, input) = self.layers_for(config)?;
        let classes: &[&str] = match config.num_classes {
            Some(n) if n != self.classes.len() => &[],
            _ => self.classes,
        };
        Ok(Model::new(self.name, layers, input, classes, seed)?)
    }
}

/// Keeps `layers` for the rest of the process (plans need `'static` layers).
fn leak(layers: Vec<Layer>) -> &'static [Layer] {
    Box::leak(layers.into_boxed_slice())
}

/// `layers` with the first layer's `in_channels` set to `c`, descending into a leading
/// `Sequential`; `None` if the first computing layer is not an ungrouped convolution.
fn set_in_channels(layers: &'static [Layer], c: usize) -> Option<&'static [Layer]> {
    let first = layers.first()?;
    let kind = match first.kind {
        Kind::Op(Op::Conv(mut conv)) if conv.groups == 1 => {
            conv.in_channels = c;
            Kind::Op(Op::Conv(conv))
        }
        Kind::Sequential(inner) => Kind::Sequential(set_in_channels(inner, c)?),
        _ => return None,
    };
    let mut v = layers.to_vec();
    v[0] = Layer { kind, name: first.name };
    Some(leak(v))
}

/// `layers` with the last layer's `out_features` set to `n`, descending into a trailing
/// `Sequential`; `None` if the last layer is not a `Linear`.
fn set_out_features(layers: &'static [Layer], n: usize) -> Option<&'static [Layer]> {
    let last = layers.last()?;
    let kind = match last.kind {
        Kind::Op(Op::Linear(mut l)) => {
            l.out_features = n;
            Kind::Op(Op::Linear(l))
        }
        Kind::Sequential(inner) => Kind::Sequential(set_out_features(inner, n)?),
        _ => return None,
    };
    let mut v = layers.to_vec();
    let at = v.len() - 1;
    v[at] = Layer { kind, name: last.name };
    Some(leak(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use torchlet::Plan;

    #[test]
    fn every_entry_plans_with_the_documented_parameter_count() {
        let expected = [
            ("tutorial-cnn", 145_578),
            ("digits-cnn", 6_090),
            ("lenet5", 61_706),
            ("mcu-cnn", 3_738),
            ("alexnet", 2_472_266),
            ("vgg11", 9_756_426),
            ("vgg16", 15_253_578),
            ("resnet18", 11_173_962),
        ];
        assert_eq!(expected.len(), ZOO.len());
        for (name, params) in expected {
            let m = find(name).unwrap();
            let p =
                Box::new(Plan::<{ crate::model::MAX_NODES }>::try_new(m.layers, m.input, 1, Mode::Inference).unwrap());
            assert_eq!(p.param_len(), params, "{name}");
            assert_eq!(p.output_shape().numel(), m.classes.len(), "{name}");
        }
        assert!(find("no-such-model").is_none());
    }

    #[test]
    fn the_head_and_the_first_convolution_adapt() {
        let z = find("vgg11").unwrap();
        let cfg = ZooConfig {
            channels: Some(1),
            size: None,
            num_classes: Some(5),
        };
        let (layers, input) = z.layers_for(&cfg).unwrap();
        assert_eq!(input, Shape::chw(1, 32, 32));
        let plan = Box::new(HostPlan::try_new(layers, input, 1, Mode::Inference).unwrap());
        assert_eq!(plan.output_shape().numel(), 5);
        let first = plan.nodes()[0];
        assert_eq!((first.op_name, first.weight_len), ("Conv2d", 64 * 9));
        // The zoo's own lists are untouched.
        let plan = Box::new(HostPlan::try_new(z.layers, z.input, 1, Mode::Inference).unwrap());
        assert_eq!(plan.output_shape().numel(), 10);
        // The default config changes nothing and copies nothing.
        let (same, _) = z.layers_for(&ZooConfig::default()).unwrap();
        assert!(std::ptr::eq(same, z.layers));
    }

    #[test]
    fn inputs_that_do_not_fit_name_the_model_and_the_shapes() {
        let e = build(
            "lenet5",
            &ZooConfig {
                channels: Some(1),
                size: Some((8, 8)),
                num_classes: None,
            },
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'lenet5'") && e.contains("[1, 8, 8]") && e.contains("[1, 28, 28]"),
            "{e}"
        );
        // Global pooling: mcu-cnn and resnet18 take the digits' 8×8.
        for name in ["mcu-cnn", "resnet18"] {
            let cfg = ZooConfig {
                channels: Some(1),
                size: Some((8, 8)),
                num_classes: None,
            };
            let m = build(name, &cfg, 0).unwrap();
            assert_eq!(m.input, Shape::chw(1, 8, 8));
        }
        let e = build(
            "mcu-cnn",
            &ZooConfig {
                num_classes: Some(0),
                ..ZooConfig::default()
            },
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        assert!(build("resnet-9000", &ZooConfig::default(), 0)
            .unwrap_err()
            .to_string()
            .contains("resnet18"));
    }

    #[test]
    fn unknown_zoo_name_lists_the_zoo() {
        let e = Model::from_zoo("resnet-9000", 0).unwrap_err().to_string();
        assert!(e.contains("resnet-9000") && e.contains("tutorial-cnn"), "{e}");
    }
}
