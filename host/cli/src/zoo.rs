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
//! The architectures themselves (the table of names, inputs and parameter counts) are the
//! core's [`torchlet::zoo`], shared with the firmware and re-exported here.
//!
//! A model with the zoo's defaults uses the `const` list as it is; an adapted one gets an
//! [`Architecture`] of its own, whose changed containers live in its arena (the unchanged ones
//! are still the zoo's), freed with the last clone of the model.
//!
//! There is one way to build a zoo model, [`build_entry`] ([`build`] looks the name up
//! first, [`Model::from_zoo`] is `build` with the default [`ZooConfig`]), and one error for a
//! name the zoo does not have, [`ZooError::Unknown`]. This module depends on [`crate::model`],
//! never the other way round.

use std::fmt;

use bumpalo_herd::Member;
use torchlet::layer::{Kind, Layer, Op};
pub use torchlet::zoo::*;
use torchlet::{Mode, Shape};

use crate::model::{Architecture, HostPlan, Model, ModelError};

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
    build_entry(z, config, seed)
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

/// The input shape for `config` (the zoo's, with the channels and size replaced).
pub fn input_for(z: &ZooModel, config: &ZooConfig) -> Shape {
    match *z.input.dims() {
        [c, h, w] => {
            let (h, w) = config.size.unwrap_or((h, w));
            Shape::chw(config.channels.unwrap_or(c), h, w)
        }
        _ => z.input,
    }
}

/// The layers adapted to `config`, and the input shape they were planned for. With nothing
/// to adapt they are the zoo's `'static` list, not copied; otherwise the changed containers
/// are rebuilt in the architecture's arena and the unchanged ones are still the zoo's.
///
/// # Errors
/// As [`build`], except [`ZooError::Model`].
pub fn layers_for(z: &ZooModel, config: &ZooConfig) -> Result<(Architecture, Shape), ZooError> {
    let input = input_for(z, config);
    let default_channels = z.input.dims().first().copied();
    let channels = config.channels.filter(|&c| Some(c) != default_channels);
    let classes = config.num_classes.filter(|&n| n != z.classes.len());
    let architecture = if channels.is_none() && classes.is_none() {
        Architecture::from_static(z.layers)
    } else {
        Architecture::try_build(|arena| {
            let mut layers: &[Layer<'_>] = z.layers;
            if let Some(c) = channels {
                layers = set_in_channels(arena, layers, c).ok_or(ZooError::Adapt {
                    model: z.name,
                    what: "the input channels (the first layer is not a convolution)",
                })?;
            }
            if let Some(n) = classes {
                if n == 0 {
                    return Err(ZooError::NoClasses { model: z.name });
                }
                layers = set_out_features(arena, layers, n).ok_or(ZooError::Adapt {
                    model: z.name,
                    what: "the class count (the last layer is not a Linear head)",
                })?;
            }
            Ok(layers)
        })?
    };
    // Planning checks every layer against the input (as Model::new would, with a less
    // specific message).
    HostPlan::try_new(architecture.layers(), input, 1, Mode::Inference).map_err(|error| {
        ZooError::Input(Box::new(InputMismatch {
            model: z.name,
            input,
            expected: z.input,
            takes: z.takes,
            error,
        }))
    })?;
    Ok((architecture, input))
}

/// The zoo entry `z` adapted to `config`, initialised from `seed`. See [`build`].
///
/// # Errors
/// As [`build`].
pub fn build_entry(z: &ZooModel, config: &ZooConfig, seed: u64) -> Result<Model, ZooError> {
    let (layers, input) = layers_for(z, config)?;
    let classes: &[&str] = match config.num_classes {
        Some(n) if n != z.classes.len() => &[],
        _ => z.classes,
    };
    Ok(Model::new(z.name, layers, input, classes, seed)?)
}

/// `layers` with the first layer's `in_channels` set to `c`, descending into a leading
/// `Sequential`, the changed containers copied into `arena`; `None` if the first computing
/// layer is not an ungrouped convolution.
fn set_in_channels<'a>(arena: &Member<'a>, layers: &'a [Layer<'a>], c: usize) -> Option<&'a [Layer<'a>]> {
    let first = layers.first()?;
    let kind = match first.kind {
        Kind::Op(Op::Conv(mut conv)) if conv.groups == 1 => {
            conv.in_channels = c;
            Kind::Op(Op::Conv(conv))
        }
        Kind::Sequential(inner) => Kind::Sequential(set_in_channels(arena, inner, c)?),
        _ => return None,
    };
    let v = arena.alloc_slice_copy(layers);
    v[0] = Layer { kind, name: first.name };
    Some(v)
}

/// `layers` with the last layer's `out_features` set to `n`, descending into a trailing
/// `Sequential`, the changed containers copied into `arena`; `None` if the last layer is not
/// a `Linear`.
fn set_out_features<'a>(arena: &Member<'a>, layers: &'a [Layer<'a>], n: usize) -> Option<&'a [Layer<'a>]> {
    let last = layers.last()?;
    let kind = match last.kind {
        Kind::Op(Op::Linear(mut l)) => {
            l.out_features = n;
            Kind::Op(Op::Linear(l))
        }
        Kind::Sequential(inner) => Kind::Sequential(set_out_features(arena, inner, n)?),
        _ => return None,
    };
    let v = arena.alloc_slice_copy(layers);
    let at = v.len() - 1;
    v[at] = Layer { kind, name: last.name };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_and_the_first_convolution_adapt() {
        let z = find("vgg11").unwrap();
        let cfg = ZooConfig {
            channels: Some(1),
            size: None,
            num_classes: Some(5),
        };
        let (layers, input) = layers_for(z, &cfg).unwrap();
        assert_eq!(input, Shape::chw(1, 32, 32));
        assert!(!layers.is_static());
        let plan = Box::new(HostPlan::try_new(layers.layers(), input, 1, Mode::Inference).unwrap());
        assert_eq!(plan.output_shape().numel(), 5);
        let first = plan.nodes()[0];
        assert_eq!((first.op_name, first.weight_len), ("Conv2d", 64 * 9));
        // The zoo's own lists are untouched.
        let plan = Box::new(HostPlan::try_new(z.layers, z.input, 1, Mode::Inference).unwrap());
        assert_eq!(plan.output_shape().numel(), 10);
        // The default config changes nothing and copies nothing.
        let (same, _) = layers_for(z, &ZooConfig::default()).unwrap();
        assert!(same.is_static() && std::ptr::eq(same.layers(), z.layers));
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
