//! Loading a parsed [`ModelFile`] into torchlet: checking it against a [`Plan`], rebuilding
//! its layers into caller storage, and the whole load in one call ([`ModelFile::plan`]).

use super::error::{part, FileError};
use super::names::{for_each_node, TensorName};
use super::reader::{err, ModelFile, Records};
use super::tensors::{node_tensors, Role};
use super::tree;
use super::wire::{KindRecord, Mode, Sink, StrEq, EMPTY};
use crate::error::{Buffer, Error, Result};
use crate::layer::{Kind, Layer};
use crate::plan::{Mode as PlanMode, Plan};

impl<'a> ModelFile<'a> {
    /// Checks the file against `plan`: for a model file, the input shape and every layer;
    /// the parameter and state counts; every parameter and state tensor's name, shape and
    /// offset, in order. After this, [`ModelFile::params`] and [`ModelFile::state`] are the
    /// plan's buffers.
    ///
    /// # Errors
    /// A [`FileError`] naming the first difference (parts `"input shape"`, `"architecture"`,
    /// `"parameter count"`, `"state count"`, `"tensor name"`, `"tensor shape"`,
    /// `"tensor offset"`, `"tensor count"`).
    pub fn check_plan<const CAP: usize>(&self, plan: &Plan<CAP>) -> Result<()> {
        if !self.is_state_dict() {
            if plan.input_shape() != self.input {
                return Err(err(
                    part::INPUT_SHAPE,
                    "differs from the plan's input (elements)",
                    plan.input_shape().numel(),
                    self.input.numel(),
                ));
            }
            let stats = tree::stats(plan.layers())?;
            let mut sink = Sink::new(Mode::Compare(self.bytes), self.blocks_at);
            let emitted = tree::emit(plan.layers(), &stats, &mut sink);
            let same = emitted.is_ok()
                && stats.blocks() == self.blocks
                && stats.layers == self.layers
                && sink.pos == self.tensors_at;
            if sink.diff.is_some() || !same {
                let at = sink.diff.unwrap_or(self.blocks_at);
                return Err(
                    FileError::at_byte(part::ARCHITECTURE, "the file's layers differ from the plan's", at).into(),
                );
            }
        }
        self.check_tensors(plan)
    }

    /// The part of [`ModelFile::check_plan`] after the architecture: the parameter and state
    /// counts, and every parameter and state tensor's name, shape and offset, in order.
    ///
    /// Enough on its own for a plan of the file's own layers ([`ModelFile::layers`], planned
    /// for [`ModelFile::input_shape`]), whose architecture is the file's by construction: the
    /// firmware's boot check uses it, so it links no serialisation code (the architecture
    /// check re-encodes the plan's layers to compare them with the file's bytes).
    ///
    /// # Errors
    /// As [`ModelFile::check_plan`], parts `"parameter count"` and after.
    pub fn check_tensors<const CAP: usize>(&self, plan: &Plan<CAP>) -> Result<()> {
        if plan.param_len() != self.param_len() {
            return Err(err(
                part::PARAMETER_COUNT,
                "differs from the plan's",
                plan.param_len(),
                self.param_len(),
            ));
        }
        if plan.state_len() != self.state_len() {
            return Err(err(
                part::STATE_COUNT,
                "differs from the plan's",
                plan.state_len(),
                self.state_len(),
            ));
        }
        let mut it = self.tensors();
        let mut k = 0usize;
        let nodes = plan.nodes();
        let mut expected = 0usize;
        for role in [Role::Parameter, Role::State] {
            for_each_node(plan.layers(), |i, path| {
                let node = nodes.get(i).ok_or(Error::Structure {
                    what: "the plan has fewer nodes than its layers",
                })?;
                node_tensors(node, |t| {
                    if t.role != role {
                        return Ok(());
                    }
                    expected += 1;
                    let at = it.pos;
                    let f = it.next().filter(|f| f.role == role).ok_or(err(
                        part::TENSOR_COUNT,
                        "the file has fewer tensors than the plan",
                        expected,
                        k,
                    ))?;
                    let fail = |part, what, e: usize, found: usize| -> Error {
                        FileError::new(part, what, e as u64, found as u64).with_index(k).into()
                    };
                    let mut eq = StrEq::new(f.name);
                    TensorName { path, suffix: t.suffix }.for_each_piece(&mut |s| eq.push(s));
                    if !eq.matches() {
                        return Err(FileError::at_byte(
                            part::TENSOR_NAME,
                            "differs from the name the plan gives this tensor",
                            at,
                        )
                        .with_index(k)
                        .into());
                    }
                    if f.shape != t.shape {
                        return Err(fail(
                            part::TENSOR_SHAPE,
                            "differs from the plan's shape (elements)",
                            t.numel,
                            f.numel,
                        ));
                    }
                    let want = self.regions[role.code() as usize].0 + 4 * t.offset;
                    if f.offset != want {
                        return Err(fail(
                            part::TENSOR_OFFSET,
                            "differs from the plan's offset",
                            want,
                            f.offset,
                        ));
                    }
                    k += 1;
                    Ok(())
                })
            })?;
        }
        if it.next().is_some_and(|f| f.role != Role::Optimizer) {
            return Err(err(
                part::TENSOR_COUNT,
                "the file has more tensors than the plan",
                expected,
                k + 1,
            ));
        }
        Ok(())
    }

    /// Rebuilds the model's layers into `storage` (at least [`ModelFile::layer_count`]
    /// slots), with names borrowed from the file; returns the root (the model), ready for
    /// [`Plan::try_new`].
    ///
    /// The layers borrow `storage` and the file's bytes, and a plan borrows its layers: any
    /// storage that outlives the plan will do (a local array, a `Vec`, an arena on a host; a
    /// `static` on a microcontroller, which `cortex-m-rt` hands out in `#[entry]`).
    ///
    /// # Errors
    /// [`Error::BufferLength`] if `storage` is too short, [`Error::Structure`] for a state dict.
    pub fn layers<'s>(&self, storage: &'s mut [Layer<'s>]) -> Result<&'s [Layer<'s>]>
    where
        'a: 's,
    {
        if self.is_state_dict() {
            return Err(Error::Structure {
                what: "a state dict has no architecture",
            });
        }
        let need = self.layer_count();
        let found = storage.len();
        if found < need {
            return Err(Error::BufferLength {
                buffer: Buffer::Output,
                expected: need,
                found,
            });
        }
        let (mut rest, handles) = storage.split_at_mut(self.layers as usize);
        let mut r = Records {
            bytes: self.bytes,
            pos: self.blocks_at,
            end: self.tensors_at,
        };
        let mut root: &'s [Layer<'s>] = &[];
        for k in 0..self.blocks as usize {
            let count = r.u32(part::BLOCK, Some(k))? as usize;
            if count > rest.len() {
                return Err(err(
                    part::BLOCK,
                    "more layers than the meta record counts",
                    rest.len(),
                    count,
                ));
            }
            let (block, tail) = core::mem::take(&mut rest).split_at_mut(count);
            rest = tail;
            for slot in block.iter_mut() {
                let l = r.layer(None)?;
                let get = |x: u32| -> Result<&'s [Layer<'s>]> {
                    if x == EMPTY {
                        return Ok(&[]);
                    }
                    match handles.get(x as usize) {
                        Some(Layer {
                            kind: Kind::Sequential(s),
                            ..
                        }) if (x as usize) < k => Ok(s),
                        _ => Err(err(part::LAYER_REFERENCE, "must name an earlier block", k, x)),
                    }
                };
                let kind = match l.kind {
                    KindRecord::Op(op) => Kind::Op(op),
                    KindRecord::Sequential(x) => Kind::Sequential(get(x)?),
                    KindRecord::Merge { merge, a, b } => Kind::Merge {
                        merge,
                        a: get(a)?,
                        b: get(b)?,
                    },
                };
                *slot = Layer { kind, name: l.name };
            }
            let block: &'s [Layer<'s>] = block;
            if let Some(h) = handles.get_mut(k) {
                *h = Layer {
                    kind: Kind::Sequential(block),
                    name: "",
                };
            }
            root = block;
        }
        Ok(root)
    }

    /// The whole load of a model file: rebuilds the layers into `storage`, plans them for
    /// the file's input shape, `batch` and `mode`, and checks the file against the plan.
    /// Then [`ModelFile::params`] and [`ModelFile::state`] are the plan's buffers.
    ///
    /// # Errors
    /// As [`ModelFile::layers`], [`Plan::try_new`] and [`ModelFile::check_plan`].
    pub fn plan<'s, const CAP: usize>(
        &self,
        storage: &'s mut [Layer<'s>],
        batch: usize,
        mode: PlanMode,
    ) -> Result<Plan<'s, CAP>>
    where
        'a: 's,
    {
        let layers = self.layers(storage)?;
        let plan = Plan::try_new(layers, self.input, batch, mode)?;
        self.check_plan(&plan)?;
        Ok(plan)
    }
}
