//! Parameters and buffers by name, as PyTorch's `named_parameters()` and `named_buffers()`.
//!
//! Names are the `state_dict` keys of [`crate::model_file::names`] (`"features.0.weight"`,
//! `"1.body.1.running_var"`), computed on the fly: nothing is stored and nothing allocates. Use
//! [`Network::named_parameters`] to walk every tensor with its name, shape and values, and
//! [`Network::parameter_mut`] / [`Network::buffer_mut`] to load one tensor by name instead of
//! reading offsets from [`crate::Plan::nodes`].

use core::fmt::{self, Write};

use super::Network;
use crate::error::{Error, Result};
use crate::model_file::names::{for_each_node, TensorName};
use crate::model_file::tensors::{node_tensors, Role};
use crate::model_file::Dims;

/// One tensor of a network, with its PyTorch name and shape.
#[derive(Clone, Copy, Debug)]
pub struct NamedTensor<'a, 'p, 'l> {
    /// The `state_dict` key; formats itself with `{}`.
    pub name: TensorName<'p, 'l>,
    /// The shape, as PyTorch's (`[out, in, kH, kW]` for a `Conv2d` weight).
    pub shape: Dims,
    /// The values: a slice of [`Network::params`] or [`Network::state`].
    pub data: &'a [f32],
}

impl<const CAP: usize> Network<'_, CAP> {
    /// Calls `f` for every learnable parameter in `state_dict` order (PyTorch's
    /// `named_parameters()`): weights and biases of Conv, Linear, BatchNorm (affine), ...
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn named_parameters(&self, f: impl FnMut(NamedTensor<'_, '_, '_>) -> Result<()>) -> Result<()> {
        self.named(Role::Parameter, f)
    }

    /// Calls `f` for every non-trainable buffer (PyTorch's `named_buffers()`): BatchNorm's
    /// `running_mean`, `running_var` and `num_batches_tracked`.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn named_buffers(&self, f: impl FnMut(NamedTensor<'_, '_, '_>) -> Result<()>) -> Result<()> {
        self.named(Role::State, f)
    }

    /// The parameter called `name` (`"0.weight"`), to read or load it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`name`) when the model has no parameter of that name;
    /// [`Error::NotReady`] for read-only weights ([`Network::with_weights`]).
    pub fn parameter_mut(&mut self, name: &str) -> Result<&mut [f32]> {
        let range = self.find(Role::Parameter, name)?;
        Ok(&mut self.params_mut()?[range])
    }

    /// The buffer (BatchNorm running statistic) called `name` (`"1.running_var"`).
    ///
    /// # Errors
    /// As [`Network::parameter_mut`].
    pub fn buffer_mut(&mut self, name: &str) -> Result<&mut [f32]> {
        let range = self.find(Role::State, name)?;
        Ok(&mut self.state_mut()?[range])
    }

    fn named(&self, role: Role, mut f: impl FnMut(NamedTensor<'_, '_, '_>) -> Result<()>) -> Result<()> {
        let nodes = self.plan.nodes();
        let data = if role == Role::Parameter {
            self.params()
        } else {
            self.state()
        };
        for_each_node(self.plan.layers(), |i, path| {
            let Some(node) = nodes.get(i) else {
                return Ok(());
            };
            node_tensors(node, |t| {
                if t.role != role {
                    return Ok(());
                }
                f(NamedTensor {
                    name: TensorName { path, suffix: t.suffix },
                    shape: t.shape,
                    data: &data[t.offset..t.offset + t.numel],
                })
            })
        })?;
        Ok(())
    }

    /// The range in the parameter or state buffer of the tensor called `name`.
    fn find(&self, role: Role, name: &str) -> Result<core::ops::Range<usize>> {
        let mut found = None;
        let nodes = self.plan.nodes();
        for_each_node(self.plan.layers(), |i, path| {
            let Some(node) = nodes.get(i) else {
                return Ok(());
            };
            node_tensors(node, |t| {
                if t.role == role && found.is_none() && is_named(&TensorName { path, suffix: t.suffix }, name) {
                    found = Some(t.offset..t.offset + t.numel);
                }
                Ok(())
            })
        })?;
        found.ok_or(Error::InvalidArgument {
            name: "name",
            expected: "the name of one of the model's tensors, as named_parameters() and named_buffers() list them",
        })
    }
}

/// Whether `name` formats exactly as `want`, compared piece by piece without a buffer.
fn is_named(name: &TensorName<'_, '_>, want: &str) -> bool {
    struct Matcher<'w> {
        rest: &'w str,
        ok: bool,
    }
    impl Write for Matcher<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self.rest.strip_prefix(s) {
                Some(r) if self.ok => self.rest = r,
                _ => self.ok = false,
            }
            Ok(())
        }
    }
    let mut m = Matcher { rest: want, ok: true };
    let _ = write!(m, "{name}");
    m.ok && m.rest.is_empty()
}
