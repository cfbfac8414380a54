//! The model region: a whole model file (`.tlm`) in its own flash region, validated at boot.
//!
//! The region (`MODEL` in `memory/<board>.x`; symbols `_model_start` / `_model_end`) is written
//! independently of the firmware: `torchlet export --target firmware --model FILE --out
//! model.bin` writes the model file padded with `0xFF` (erased flash) to a whole number of
//! [`REGION_ALIGN`] bytes, and a probe (`probe-rs download --binary-format bin
//! --base-address <MODEL origin>`) or QEMU (`-device loader,file=model.bin,addr=<MODEL origin>`)
//! puts it there. Replacing the model never rebuilds or reflashes the firmware.
//!
//! [`load_model`] is the boot check. In order: the magic ([`BootError::NoModel`]), the
//! file's length against the region ([`BootError::RegionOverflow`]), then the core reader's
//! full validation (CRC-32, every record: [`BootError::Corrupt`]); the layers are rebuilt into
//! static storage and planned for inference, batch 1 ([`BootError::TooManyLayers`],
//! [`BootError::Unsupported`]); the plan's arena must fit the static arena
//! ([`BootError::ArenaTooSmall`]). Only then are the weights used, in place (zero copy).

use torchlet::layer::{Kind, Layer, Op};
use torchlet::model_file::{ModelFile, MAGIC};
use torchlet::{Error, Mode, Plan};

use crate::BootError;

/// The region image's size is a multiple of this (bytes): a flash page many parts can erase
/// and program on their own.
pub const REGION_ALIGN: usize = 1024;

/// Bytes of the model file's fixed header (magic, version, flags, header, data offset and
/// data length); `docs/model-format.md`.
const FIXED_HEADER: usize = 24;

/// A filler value for the static layer storage, before [`load_model`] rebuilds the model's
/// layers into it.
pub const EMPTY_LAYER: Layer = Layer {
    kind: Kind::Op(Op::Identity),
    name: "",
};

/// A validated model: the file in the region and its inference plan (batch 1), both
/// borrowing the region and the layer storage for `'a` (`'static` on a board).
pub struct LoadedModel<'a, const CAP: usize> {
    /// The model file, borrowed from the region (its tensors are used in place).
    pub file: ModelFile<'a>,
    /// Its inference plan for one sample at a time.
    pub plan: Plan<'a, CAP>,
}

/// The length of the model file at the start of `region`, read from its fixed header
/// (data offset + data length + 4 bytes of CRC).
///
/// # Errors
/// [`BootError::NoModel`] without the magic; [`BootError::RegionOverflow`] if the header
/// claims more than the region holds.
pub fn file_len(region: &[u8]) -> Result<usize, BootError> {
    if region.len() < FIXED_HEADER || region[..8] != MAGIC {
        return Err(BootError::NoModel);
    }
    let word = |at: usize| u32::from_le_bytes([region[at], region[at + 1], region[at + 2], region[at + 3]]) as usize;
    let claimed = word(16).saturating_add(word(20)).saturating_add(4);
    if claimed > region.len() {
        return Err(BootError::RegionOverflow {
            claimed,
            region: region.len(),
        });
    }
    Ok(claimed)
}

/// Validates the model at the start of `region` and plans it for inference, batch 1 (see the
/// [module docs](self) for the order of the checks).
///
/// - `region`: the whole model region (for example the `MODEL` region of the memory layout);
/// - `layers`: storage the model's layers are rebuilt into (`CAP`-independent; a `static` on
///   a board);
/// - `arena_len`: floats in the static activation arena the model must fit.
///
/// # Errors
/// A [`BootError`] naming the first check that failed; nothing of the model has been used then.
pub fn load_model<'a, const CAP: usize>(
    region: &'a [u8],
    layers: &'a mut [Layer<'a>],
    arena_len: usize,
) -> Result<LoadedModel<'a, CAP>, BootError> {
    let len = file_len(region)?;
    let file = ModelFile::parse(&region[..len]).map_err(|e| match e {
        Error::ModelFile(f) => BootError::Corrupt(f),
        other => BootError::Unsupported(other),
    })?;
    if file.is_state_dict() {
        return Err(BootError::Unsupported(Error::Structure {
            what: "a state dict has no architecture: export a whole model",
        }));
    }
    if file.layer_count() > layers.len() {
        return Err(BootError::TooManyLayers {
            needed: file.layer_count(),
            available: layers.len(),
        });
    }
    let root = file.layers(layers).map_err(BootError::Unsupported)?;
    let plan = Plan::<CAP>::try_new(root, file.input_shape(), 1, Mode::Inference).map_err(|e| match e {
        Error::Capacity { capacity, needed } => BootError::TooManyLayers {
            needed,
            available: capacity,
        },
        other => BootError::Unsupported(other),
    })?;
    // The plan is of the file's own layers: its tensors are checked, not its architecture
    // (which would link the model-file encoder to re-encode the layers).
    file.check_tensors(&plan).map_err(|e| match e {
        Error::ModelFile(f) => BootError::Corrupt(f),
        other => BootError::Unsupported(other),
    })?;
    if plan.arena_len() > arena_len {
        return Err(BootError::ArenaTooSmall {
            needed: plan.arena_len(),
            available: arena_len,
        });
    }
    Ok(LoadedModel { file, plan })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use torchlet::layer::*;
    use torchlet::model_file::{self, ModelSpec};
    use torchlet::Shape;

    use super::*;

    static LAYERS: [Layer; 3] = [flatten(), linear(4, 3).named("fc"), relu()];

    /// A valid whole-model file in a 4 KiB region padded with 0xFF.
    fn region() -> Vec<u8> {
        let plan = Plan::<3>::try_new(&LAYERS, Shape::features(4), 1, Mode::Inference).unwrap();
        let params: Vec<f32> = (0..plan.param_len()).map(|i| i as f32).collect();
        let spec = ModelSpec {
            name: "tiny",
            layers: &LAYERS,
            input: Shape::features(4),
            classes: &["a", "b", "c"],
            run: None,
        };
        let mut file = std::vec![0xFFu8; 4096];
        let n = model_file::encoded_len(&spec, &plan, &params, &[], None).unwrap();
        model_file::encode(&spec, &plan, &params, &[], None, &mut file[..n]).unwrap();
        file
    }

    /// Layer storage for [`load_model`]; the loaded model borrows it.
    fn storage() -> [Layer<'static>; 8] {
        [EMPTY_LAYER; 8]
    }

    #[test]
    fn a_valid_region_plans_and_its_weights_are_used_in_place() {
        let (r, mut layers) = (region(), storage());
        let m = load_model::<8>(&r, &mut layers, 64).unwrap();
        assert_eq!(m.file.name(), "tiny");
        assert_eq!(m.plan.param_len(), 15);
        let params = m.file.params().unwrap();
        assert_eq!(params[14], 14.0);
        assert!(r.as_ptr_range().contains(&(params.as_ptr() as *const u8)), "zero copy");
    }

    #[test]
    fn each_refusal_has_its_own_exit_status() {
        fn load<'a>(region: &'a [u8], layers: &'a mut [Layer<'a>], arena: usize) -> Option<BootError> {
            load_model::<8>(region, layers, arena).err()
        }
        assert_eq!(load(&[0xFF; 4096], &mut storage(), 64), Some(BootError::NoModel));
        let r = region();
        let arena = load_model::<8>(&r, &mut storage(), 64).unwrap().plan.arena_len();
        let small = load(&r, &mut storage(), arena - 1).unwrap();
        assert_eq!(small.exit_code(), 12);
        let few = load(&r, &mut [EMPTY_LAYER; 1], 64).unwrap();
        assert_eq!(few.exit_code(), 13);
        let mut bad = region();
        bad[30] ^= 0x20;
        assert!(matches!(load(&bad, &mut storage(), 64), Some(BootError::Corrupt(_))));
        let mut long = region();
        long[20..24].copy_from_slice(&1_000_000u32.to_le_bytes());
        let e = load(&long, &mut storage(), 64).unwrap();
        assert!(matches!(e, BootError::RegionOverflow { region: 4096, .. }));
        assert_eq!(e.exit_code(), 11);
    }
}
