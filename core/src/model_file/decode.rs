//! A hand-written decoder of layer records ([`LayerRecord`]): the same postcard bytes serde's
//! derived code reads (`docs/model-format.md`), in a fraction of its code, and only the op
//! families compiled in (`torchlet::ops::family`): a record of another family is refused with
//! [`Bad::NotCompiled`], so a firmware built for one model links no decoder for the others.
//!
//! Postcard's encoding, as this decoder reads it: unsigned integers as varints (`usize` as a
//! `u64`, at most 10 bytes; `u32` at most 5; a last byte with bits past the type's width is an
//! error), `u8`/`i8` as one byte, `bool` as 0 or 1, `f32` as 4 little-endian bytes, `Option`
//! as 0 or 1 and the value, a string as its varint length and UTF-8 bytes, an enum as its
//! variant index (a `u32` varint) and its fields, a struct or an array as its fields in order.
//! The unit tests compare it with serde's decoder on every op and on mutated bytes.

use super::train::{OptimizerRecord, TrainState};
use super::wire::{Dims, KindRecord, LayerRecord, Meta, TensorRecord, MAX_RANK};
use crate::layer::{
    Adaptive, Approximate, AvgPool, BatchNorm, Bilinear, Conv, ConvTranspose, Linear, MaxPool, MaxUnpool, Merge, Op,
    PReLU, Pad, Pad2d, Padding, PaddingMode, Softplus, Upsample, UpsampleMode,
};

/// Why a layer record was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Not a valid record (malformed or truncated bytes).
    Malformed,
    /// A valid op (its variant name) whose family's feature (the second) is off in this build.
    NotCompiled(&'static str, &'static str),
}

/// Bytes being decoded.
pub(crate) struct Cur<'a> {
    pub b: &'a [u8],
}

pub(crate) type R<T> = Result<T, Bad>;

impl<'a> Cur<'a> {
    fn byte(&mut self) -> R<u8> {
        let (&x, rest) = self.b.split_first().ok_or(Bad::Malformed)?;
        self.b = rest;
        Ok(x)
    }

    /// A varint of a `bits`-wide unsigned integer.
    fn varint(&mut self, bits: u32) -> R<u64> {
        let max = bits.div_ceil(7);
        let mut out = 0u64;
        for i in 0..max {
            let v = self.byte()?;
            out |= u64::from(v & 0x7f) << (7 * i);
            if v & 0x80 == 0 {
                if i == max - 1 && u32::from(v) >= 1 << (bits - 7 * (max - 1)) {
                    return Err(Bad::Malformed);
                }
                return Ok(out);
            }
        }
        Err(Bad::Malformed)
    }

    pub fn u32(&mut self) -> R<u32> {
        Ok(self.varint(32)? as u32)
    }

    fn usize(&mut self) -> R<usize> {
        usize::try_from(self.varint(64)?).map_err(|_| Bad::Malformed)
    }

    fn bool(&mut self) -> R<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Bad::Malformed),
        }
    }

    fn f32(&mut self) -> R<f32> {
        let (x, rest) = self.b.split_first_chunk::<4>().ok_or(Bad::Malformed)?;
        self.b = rest;
        Ok(f32::from_le_bytes(*x))
    }

    pub fn str(&mut self) -> R<&'a str> {
        let n = usize::try_from(self.varint(usize::BITS)?).map_err(|_| Bad::Malformed)?;
        let (s, rest) = self.b.split_at_checked(n).ok_or(Bad::Malformed)?;
        self.b = rest;
        core::str::from_utf8(s).map_err(|_| Bad::Malformed)
    }

    /// A [`Dims`]: its rank (at most [`MAX_RANK`]), then each dim.
    fn shape(&mut self) -> R<Dims> {
        let rank = usize::try_from(self.varint(usize::BITS)?).map_err(|_| Bad::Malformed)?;
        let mut d = [0u64; MAX_RANK];
        for x in d.get_mut(..rank).ok_or(Bad::Malformed)? {
            *x = self.varint(64)?;
        }
        Dims::new(&d[..rank]).ok_or(Bad::Malformed)
    }

    /// A postcard `i32`: a zigzag varint.
    fn i32(&mut self) -> R<i32> {
        let z = self.varint(32)? as u32;
        Ok((z >> 1) as i32 ^ -((z & 1) as i32))
    }

    /// A postcard `i8`: one byte.
    fn i8(&mut self) -> R<i8> {
        Ok(self.byte()? as i8)
    }

    /// An int8 file's [`Int8Meta`](super::int8::Int8Meta) record.
    pub fn int8_meta(&mut self) -> R<super::int8::Int8Meta> {
        Ok(super::int8::Int8Meta {
            input_scale: self.f32()?,
            input_zero_point: self.i32()?,
            nodes: self.u32()?,
            weights: self.u32()?,
            channels: self.u32()?,
        })
    }

    /// An int8 file's [`Int8Node`](super::int8::Int8Node) record.
    pub fn int8_node(&mut self) -> R<super::int8::Int8Node> {
        Ok(super::int8::Int8Node {
            scale: self.f32()?,
            zero_point: self.i32()?,
            act_min: self.i8()?,
            act_max: self.i8()?,
        })
    }

    /// A [`Meta`] record.
    pub fn meta(&mut self) -> R<Meta<'a>> {
        Ok(Meta {
            name: self.str()?,
            input: self.shape()?,
            classes: self.u32()?,
            blocks: self.u32()?,
            layers: self.u32()?,
            tensors: self.u32()?,
        })
    }

    /// A [`TensorRecord`].
    pub fn tensor(&mut self) -> R<TensorRecord<'a>> {
        Ok(TensorRecord {
            name: self.str()?,
            role: self.byte()?,
            dtype: self.byte()?,
            shape: self.shape()?,
            offset: self.varint(64)?,
            numel: self.varint(64)?,
        })
    }

    /// A [`TrainState`].
    pub fn train(&mut self) -> R<TrainState> {
        Ok(TrainState {
            epoch: self.u32()?,
            step: self.varint(64)?,
            rng: (self.varint(64)?, self.varint(64)?),
            best_metric: self.f32()?,
            optimizer: match self.variant(3)? {
                0 => OptimizerRecord::None,
                1 => OptimizerRecord::Sgd {
                    lr: self.f32()?,
                    momentum: self.f32()?,
                    dampening: self.f32()?,
                    weight_decay: self.f32()?,
                    nesterov: self.bool()?,
                },
                _ => OptimizerRecord::Adam {
                    lr: self.f32()?,
                    beta1: self.f32()?,
                    beta2: self.f32()?,
                    eps: self.f32()?,
                    weight_decay: self.f32()?,
                    amsgrad: self.bool()?,
                    decoupled_weight_decay: self.bool()?,
                },
            },
            optimizer_steps: self.varint(64)?,
        })
    }

    fn dims<const N: usize>(&mut self) -> R<[usize; N]> {
        let mut d = [0; N];
        for x in &mut d {
            *x = self.usize()?;
        }
        Ok(d)
    }

    /// An enum's variant index, `< n`.
    fn variant(&mut self, n: u32) -> R<u32> {
        let v = self.u32()?;
        if v < n {
            Ok(v)
        } else {
            Err(Bad::Malformed)
        }
    }

    fn padding_mode(&mut self) -> R<PaddingMode> {
        Ok(match self.variant(4)? {
            0 => PaddingMode::Zeros,
            1 => PaddingMode::Reflect,
            2 => PaddingMode::Replicate,
            _ => PaddingMode::Circular,
        })
    }

    fn conv_transpose(&mut self) -> R<ConvTranspose> {
        Ok(ConvTranspose {
            in_channels: self.usize()?,
            out_channels: self.usize()?,
            kernel_size: self.dims()?,
            stride: self.dims()?,
            padding: self.dims()?,
            output_padding: self.dims()?,
            groups: self.usize()?,
            bias: self.bool()?,
            dilation: self.dims()?,
        })
    }

    fn max_unpool(&mut self) -> R<MaxUnpool> {
        Ok(MaxUnpool {
            kernel_size: self.dims()?,
            stride: self.dims()?,
            padding: self.dims()?,
        })
    }

    fn adaptive(&mut self) -> R<Adaptive> {
        Ok(Adaptive {
            dims: self.byte()?,
            output_size: self.dims()?,
        })
    }

    /// An [`Op`] (its variant index, then its fields).
    fn op(&mut self) -> R<Op> {
        /// `$e` if the family's feature `$f` is on, else the refusal naming `$name` and `$f`
        /// (the decoding of `$e` is then dead code).
        macro_rules! on {
            ($f:literal, $name:literal, $e:expr) => {
                if cfg!(feature = $f) {
                    $e
                } else {
                    return Err(Bad::NotCompiled($name, $f));
                }
            };
        }
        Ok(match self.variant(34)? {
            0 => on!(
                "op-conv",
                "Conv",
                Op::Conv(Conv {
                    dims: self.byte()?,
                    in_channels: self.usize()?,
                    out_channels: self.usize()?,
                    kernel_size: self.dims()?,
                    stride: self.dims()?,
                    padding: match self.variant(3)? {
                        0 => Padding::Explicit(self.dims()?),
                        1 => Padding::Same,
                        _ => Padding::Valid,
                    },
                    dilation: self.dims()?,
                    groups: self.usize()?,
                    bias: self.bool()?,
                    padding_mode: self.padding_mode()?,
                })
            ),
            1 => on!(
                "op-conv-transpose",
                "ConvTranspose",
                Op::ConvTranspose(self.conv_transpose()?)
            ),
            2 => on!(
                "op-pool",
                "MaxPool",
                Op::MaxPool(MaxPool {
                    dims: self.byte()?,
                    kernel_size: self.dims()?,
                    stride: self.dims()?,
                    padding: self.dims()?,
                    dilation: self.dims()?,
                    ceil_mode: self.bool()?,
                    return_indices: self.bool()?,
                })
            ),
            3 => on!("op-unpool", "MaxUnpool", Op::MaxUnpool(self.max_unpool()?)),
            4 => on!(
                "op-pool",
                "AvgPool",
                Op::AvgPool(AvgPool {
                    dims: self.byte()?,
                    kernel_size: self.dims()?,
                    stride: self.dims()?,
                    padding: self.dims()?,
                    ceil_mode: self.bool()?,
                    count_include_pad: self.bool()?,
                })
            ),
            5 => on!(
                "op-adaptive-pool",
                "AdaptiveAvgPool",
                Op::AdaptiveAvgPool(self.adaptive()?)
            ),
            6 => on!(
                "op-adaptive-pool",
                "AdaptiveMaxPool",
                Op::AdaptiveMaxPool(self.adaptive()?)
            ),
            7 => on!(
                "op-pad",
                "Pad2d",
                Op::Pad2d(Pad2d {
                    mode: self.padding_mode()?,
                    padding: self.dims()?,
                })
            ),
            8 => on!("op-activation", "ReLU", Op::ReLU),
            9 => on!("op-activation", "LeakyReLU", Op::LeakyReLU(self.f32()?)),
            10 => on!("op-smooth-activation", "Sigmoid", Op::Sigmoid),
            11 => on!("op-smooth-activation", "Tanh", Op::Tanh),
            12 => on!("op-softmax", "Softmax", Op::Softmax(self.byte()? as i8)),
            13 => on!("op-softmax", "LogSoftmax", Op::LogSoftmax(self.byte()? as i8)),
            14 => on!(
                "op-batchnorm",
                "BatchNorm",
                Op::BatchNorm(BatchNorm {
                    dims: self.byte()?,
                    num_features: self.usize()?,
                    eps: self.f32()?,
                    momentum: if self.bool()? { Some(self.f32()?) } else { None },
                    affine: self.bool()?,
                    track_running_stats: self.bool()?,
                })
            ),
            15 => on!("op-dropout", "Dropout", Op::Dropout(self.f32()?)),
            16 => on!(
                "op-linear",
                "Linear",
                Op::Linear(Linear {
                    in_features: self.usize()?,
                    out_features: self.usize()?,
                    bias: self.bool()?,
                })
            ),
            17 => Op::Identity,
            18 => Op::Flatten,
            19 => on!(
                "op-pad",
                "Pad",
                Op::Pad(Pad {
                    dims: self.byte()?,
                    mode: self.padding_mode()?,
                    padding: self.dims()?,
                })
            ),
            20 => on!("op-smooth-activation", "ELU", Op::ELU(self.f32()?)),
            21 => on!(
                "op-smooth-activation",
                "GELU",
                Op::GELU(if self.variant(2)? == 0 {
                    Approximate::None
                } else {
                    Approximate::Tanh
                })
            ),
            22 => on!("op-smooth-activation", "SiLU", Op::SiLU),
            23 => on!("op-activation", "Hardswish", Op::Hardswish),
            24 => on!("op-activation", "Hardsigmoid", Op::Hardsigmoid),
            25 => on!(
                "op-smooth-activation",
                "Softplus",
                Op::Softplus(Softplus {
                    beta: self.f32()?,
                    threshold: self.f32()?,
                })
            ),
            26 => on!("op-smooth-activation", "Mish", Op::Mish),
            27 => on!("op-activation", "ReLU6", Op::ReLU6),
            28 => on!(
                "op-activation",
                "PReLU",
                Op::PReLU(PReLU {
                    num_parameters: self.usize()?,
                    init: self.f32()?,
                })
            ),
            29 => on!(
                "op-conv-transpose",
                "ConvTransposeNd",
                Op::ConvTransposeNd(self.conv_transpose()?, self.byte()?)
            ),
            30 => on!(
                "op-unpool",
                "MaxUnpoolNd",
                Op::MaxUnpoolNd(self.max_unpool()?, self.byte()?)
            ),
            31 => on!(
                "op-dropout",
                "ChannelDropout",
                Op::ChannelDropout(self.f32()?, self.byte()?)
            ),
            32 => on!("op-shuffle", "ChannelShuffle", Op::ChannelShuffle(self.usize()?)),
            _ => on!(
                "op-upsample",
                "Upsample",
                Op::Upsample(Upsample {
                    size: self.dims()?,
                    scale_factor: self.f32()?,
                    mode: if self.variant(2)? == 0 {
                        UpsampleMode::Nearest
                    } else {
                        UpsampleMode::Bilinear
                    },
                    align_corners: self.bool()?,
                })
            ),
        })
    }

    /// A [`LayerRecord`].
    pub fn layer(&mut self) -> R<LayerRecord<'a>> {
        Ok(LayerRecord {
            name: self.str()?,
            kind: self.kind()?,
        })
    }

    fn kind(&mut self) -> R<KindRecord> {
        Ok(match self.variant(3)? {
            0 => KindRecord::Op(self.op()?),
            1 => KindRecord::Sequential(self.u32()?),
            _ => {
                let merge = match self.variant(3)? {
                    0 => on_merge("op-merge", "Add", Merge::Add)?,
                    1 => on_merge("op-merge", "Concat", Merge::Concat)?,
                    _ => {
                        if !cfg!(feature = "op-bilinear") {
                            return Err(Bad::NotCompiled("Bilinear", "op-bilinear"));
                        }
                        Merge::Bilinear(Bilinear {
                            in1_features: self.usize()?,
                            in2_features: self.usize()?,
                            out_features: self.usize()?,
                            bias: self.bool()?,
                        })
                    }
                };
                KindRecord::Merge {
                    merge,
                    a: self.u32()?,
                    b: self.u32()?,
                }
            }
        })
    }
}

/// `m` if feature `f` (`"op-merge"`) is on.
fn on_merge(f: &'static str, name: &'static str, m: Merge) -> R<Merge> {
    if cfg!(feature = "op-merge") {
        Ok(m)
    } else {
        Err(Bad::NotCompiled(name, f))
    }
}

/// Decodes the layer record at the start of `bytes`; returns it and the bytes after it.
///
/// # Errors
/// [`Bad::Malformed`] where serde's postcard decoder fails; [`Bad::NotCompiled`] for an op or
/// merge whose family's feature is off.
#[cfg(test)]
fn layer_record(bytes: &[u8]) -> Result<(LayerRecord<'_>, &[u8]), Bad> {
    let mut c = Cur { b: bytes };
    let l = c.layer()?;
    Ok((l, c.b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every op variant, with fields that are not defaults.
    fn ops() -> [Op; 34] {
        let ct = ConvTranspose {
            in_channels: 3,
            out_channels: 300,
            kernel_size: [1, 2, 3],
            stride: [4, 5, 6],
            padding: [7, 8, 9],
            output_padding: [1, 0, 1],
            groups: 1,
            bias: true,
            dilation: [2, 2, 200_000],
        };
        let mu = MaxUnpool {
            kernel_size: [1, 2, 2],
            stride: [1, 2, 3],
            padding: [0, 1, 0],
        };
        let ad = Adaptive {
            dims: 2,
            output_size: [1, 7, 130],
        };
        [
            Op::Conv(Conv {
                dims: 2,
                in_channels: 1,
                out_channels: 129,
                kernel_size: [1, 5, 5],
                stride: [1, 2, 1],
                padding: Padding::Explicit([0, 1, 2]),
                dilation: [1, 1, 3],
                groups: 1,
                bias: false,
                padding_mode: PaddingMode::Replicate,
            }),
            Op::ConvTranspose(ct),
            Op::MaxPool(MaxPool {
                dims: 3,
                kernel_size: [2, 2, 2],
                stride: [1, 2, 3],
                padding: [0, 1, 0],
                dilation: [1, 2, 1],
                ceil_mode: true,
                return_indices: false,
            }),
            Op::MaxUnpool(mu),
            Op::AvgPool(AvgPool {
                dims: 1,
                kernel_size: [1, 1, 3],
                stride: [1, 1, 2],
                padding: [0, 0, 1],
                ceil_mode: false,
                count_include_pad: true,
            }),
            Op::AdaptiveAvgPool(ad),
            Op::AdaptiveMaxPool(ad),
            Op::Pad2d(Pad2d {
                mode: PaddingMode::Circular,
                padding: [1, 2, 3, 4],
            }),
            Op::ReLU,
            Op::LeakyReLU(0.01),
            Op::Sigmoid,
            Op::Tanh,
            Op::Softmax(-1),
            Op::LogSoftmax(1),
            Op::BatchNorm(BatchNorm {
                dims: 2,
                num_features: 64,
                eps: 1e-5,
                momentum: Some(0.1),
                affine: true,
                track_running_stats: false,
            }),
            Op::Dropout(0.5),
            Op::Linear(Linear {
                in_features: 400,
                out_features: 10,
                bias: true,
            }),
            Op::Identity,
            Op::Flatten,
            Op::Pad(Pad {
                dims: 3,
                mode: PaddingMode::Reflect,
                padding: [1, 2, 3, 4, 5, 6],
            }),
            Op::ELU(1.5),
            Op::GELU(Approximate::Tanh),
            Op::SiLU,
            Op::Hardswish,
            Op::Hardsigmoid,
            Op::Softplus(Softplus {
                beta: 2.0,
                threshold: 10.0,
            }),
            Op::Mish,
            Op::ReLU6,
            Op::PReLU(PReLU {
                num_parameters: 16,
                init: 0.25,
            }),
            Op::ConvTransposeNd(ct, 3),
            Op::MaxUnpoolNd(mu, 1),
            Op::ChannelDropout(0.2, 2),
            Op::ChannelShuffle(4),
            Op::Upsample(Upsample {
                size: [0, 0],
                scale_factor: 2.5,
                mode: UpsampleMode::Bilinear,
                align_corners: true,
            }),
        ]
    }

    fn kinds() -> impl Iterator<Item = KindRecord> {
        let merges = [
            Merge::Add,
            Merge::Concat,
            Merge::Bilinear(Bilinear {
                in1_features: 3,
                in2_features: 4,
                out_features: 5,
                bias: false,
            }),
        ];
        ops()
            .into_iter()
            .map(KindRecord::Op)
            .chain([KindRecord::Sequential(7), KindRecord::Sequential(u32::MAX)])
            .chain(merges.into_iter().map(|merge| KindRecord::Merge {
                merge,
                a: 1,
                b: u32::MAX,
            }))
    }

    /// serde's decoding of `bytes`, as the reader used to decode it.
    fn serde(bytes: &[u8]) -> Option<(LayerRecord<'_>, usize)> {
        postcard::take_from_bytes::<LayerRecord>(bytes)
            .ok()
            .map(|(l, rest)| (l, rest.len()))
    }

    /// Equal records (by their encodings: a NaN equals itself).
    fn same(a: &LayerRecord, b: &LayerRecord) -> bool {
        let (mut x, mut y) = ([0u8; 256], [0u8; 256]);
        postcard::to_slice(a, &mut x).unwrap() == postcard::to_slice(b, &mut y).unwrap()
    }

    #[test]
    fn every_layer_kind_decodes_as_serde_decodes_it_or_is_refused_naming_its_feature() {
        let mut buf = [0u8; 256];
        for kind in kinds() {
            let rec = LayerRecord { name: "conv1", kind };
            let bytes = postcard::to_slice(&rec, &mut buf).unwrap();
            let (want, rest) = serde(bytes).unwrap();
            assert_eq!(rest, 0);
            match layer_record(bytes) {
                Ok((got, rest)) => {
                    assert!(same(&got, &want), "{:?}", bytes);
                    assert!(rest.is_empty());
                }
                Err(Bad::NotCompiled(_, f)) => assert!(!crate::ops::family::ALL.is_empty() && f.starts_with("op-")),
                Err(Bad::Malformed) => panic!("valid record refused: {bytes:?}"),
            }
        }
    }

    #[test]
    fn truncated_and_mutated_records_are_refused_where_serde_refuses_them() {
        let mut buf = [0u8; 256];
        let mut rng = crate::Rng::new(7);
        for kind in kinds() {
            let rec = LayerRecord { name: "layer", kind };
            let len = postcard::to_slice(&rec, &mut buf).unwrap().len();
            let bytes = &buf[..len];
            for cut in 0..len {
                assert!(serde(&bytes[..cut]).is_none());
                assert!(layer_record(&bytes[..cut]).is_err(), "{cut} of {bytes:?}");
            }
            for _ in 0..200 {
                let mut m = [0u8; 256];
                m[..len].copy_from_slice(bytes);
                let at = rng.below(len as u32) as usize;
                m[at] = rng.next_u32() as u8;
                let m = &m[..len];
                match (serde(m), layer_record(m)) {
                    (Some((want, rest)), Ok((got, r))) => {
                        assert!(same(&got, &want), "{m:?}");
                        assert_eq!(rest, r.len());
                    }
                    (None, Err(_)) | (Some(_), Err(Bad::NotCompiled(..))) => {}
                    (w, g) => panic!("{m:?}: serde {:?}, this {:?}", w.is_some(), g.is_ok()),
                }
            }
        }
    }

    #[test]
    fn meta_and_tensor_records_decode_as_serde_decodes_them() {
        let mut buf = [0u8; 256];
        let mut rng = crate::Rng::new(9);
        let meta = Meta {
            name: "digits-cnn",
            input: Dims::new(&[1, 8, 8]).unwrap(),
            classes: 10,
            blocks: 1,
            layers: 300,
            tensors: 4,
        };
        let tensor = TensorRecord {
            name: "0.weight",
            role: 1,
            dtype: 0,
            shape: Dims::new(&[64, 3, 5, 5, 1, 1]).unwrap(),
            offset: 1 << 40,
            numel: 4800,
        };
        let m = {
            let n = postcard::to_slice(&meta, &mut buf).unwrap().len();
            (buf, n)
        };
        let t = {
            let mut b2 = [0u8; 256];
            let n = postcard::to_slice(&tensor, &mut b2).unwrap().len();
            (b2, n)
        };
        for (bytes, is_meta) in [(&m.0[..m.1], true), (&t.0[..t.1], false)] {
            for trial in 0..400 {
                let mut x = [0u8; 256];
                x[..bytes.len()].copy_from_slice(bytes);
                let len = if trial == 0 {
                    bytes.len()
                } else {
                    rng.below(bytes.len() as u32 + 1) as usize
                };
                if trial > 0 {
                    let at = rng.below(bytes.len() as u32) as usize;
                    x[at] = rng.next_u32() as u8;
                }
                let x = &x[..len];
                let mut c = Cur { b: x };
                let (mut e1, mut e2) = ([0u8; 256], [0u8; 256]);
                let (want, got) = if is_meta {
                    (
                        postcard::take_from_bytes::<Meta>(x)
                            .ok()
                            .map(|(v, r)| (postcard::to_slice(&v, &mut e1).unwrap().len(), r.len())),
                        c.meta()
                            .ok()
                            .map(|v| (postcard::to_slice(&v, &mut e2).unwrap().len(), c.b.len())),
                    )
                } else {
                    (
                        postcard::take_from_bytes::<TensorRecord>(x)
                            .ok()
                            .map(|(v, r)| (postcard::to_slice(&v, &mut e1).unwrap().len(), r.len())),
                        c.tensor()
                            .ok()
                            .map(|v| (postcard::to_slice(&v, &mut e2).unwrap().len(), c.b.len())),
                    )
                };
                assert_eq!(want, got, "{x:?}");
                assert_eq!(e1, e2, "{x:?}");
                if trial == 0 {
                    assert!(want.is_some());
                }
            }
        }
    }

    #[test]
    fn training_states_decode_as_serde_decodes_them() {
        let opts = [
            OptimizerRecord::None,
            OptimizerRecord::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                weight_decay: 1e-4,
                nesterov: true,
            },
            OptimizerRecord::Adam {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                amsgrad: false,
                decoupled_weight_decay: true,
            },
        ];
        for optimizer in opts {
            let t = TrainState {
                epoch: 3,
                step: 1 << 35,
                rng: (u64::MAX, 12345),
                best_metric: 0.97,
                optimizer,
                optimizer_steps: 900,
            };
            let mut buf = [0u8; 128];
            let bytes = postcard::to_slice(&t, &mut buf).unwrap();
            let mut c = Cur { b: bytes };
            assert_eq!(c.train(), Ok(t));
            assert!(c.b.is_empty());
            for cut in 0..bytes.len() {
                assert!(Cur { b: &bytes[..cut] }.train().is_err());
            }
        }
    }
}
