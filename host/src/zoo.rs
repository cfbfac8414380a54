//! The model zoo: architectures known by name, as `const` layer arrays.
//!
//! `torchlet inspect tutorial-cnn` and [`crate::model::Model::from_zoo`] look models up here.
//! Each entry is the architecture only (the weights of a zoo model are PyTorch's default
//! initialisation from a seed); trained weights live in `.tlm` files.
//!
//! | name | input | classes | parameters | what |
//! |---|---|---|---|---|
//! | `tutorial-cnn` | `[3, 32, 32]` | CIFAR-10 | 145,578 | the PyTorch course's CIFAR-10 network |
//! | `digits-cnn` | `[1, 8, 8]` | `"0"`..`"9"` | 6,090 | the README's first example (`train_digits`) |

use torchlet::layer::*;
use torchlet::Shape;

/// A named architecture: layers, input shape and class names.
#[derive(Clone, Copy, Debug)]
pub struct ZooModel {
    /// The name to look it up by (`tutorial-cnn`).
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// The layers, as an `nn.Sequential`.
    pub layers: &'static [Layer],
    /// The shape of one input sample.
    pub input: Shape,
    /// The name of each output class.
    pub classes: &'static [&'static str],
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

/// Every model of the zoo.
pub const ZOO: [ZooModel; 2] = [
    ZooModel {
        name: "tutorial-cnn",
        description: "the PyTorch course's CIFAR-10 CNN",
        layers: &TUTORIAL_CNN,
        input: Shape::chw(3, 32, 32),
        classes: &CIFAR10_CLASSES,
    },
    ZooModel {
        name: "digits-cnn",
        description: "the small CNN of the train_digits example (8x8 digits)",
        layers: &DIGITS_CNN,
        input: Shape::chw(1, 8, 8),
        classes: &DIGIT_CLASSES,
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

#[cfg(test)]
mod tests {
    use super::*;
    use torchlet::{Mode, Plan};

    #[test]
    fn every_entry_plans_with_the_documented_parameter_count() {
        let expected = [("tutorial-cnn", 145_578), ("digits-cnn", 6_090)];
        for (name, params) in expected {
            let m = find(name).unwrap();
            let p = Plan::<32>::try_new(m.layers, m.input, 1, Mode::Inference).unwrap();
            assert_eq!(p.param_len(), params, "{name}");
            assert_eq!(p.output_shape().numel(), m.classes.len(), "{name}");
        }
        assert!(find("no-such-model").is_none());
    }
}
