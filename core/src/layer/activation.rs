//! Constructors of the smooth and hard activations that join ReLU, LeakyReLU, Sigmoid and Tanh:
//! ELU, GELU, SiLU, Hardswish, Hardsigmoid, Softplus, Mish, ReLU6 and the learned PReLU, with
//! PyTorch's defaults (keyword arguments are builders: [`Layer::alpha`], [`Layer::approximate`],
//! [`Layer::beta`], [`Layer::threshold`], [`Layer::num_parameters`], [`Layer::init`]).

use super::*;

/// `nn.ELU()` (`alpha=1.0`; set it with [`Layer::alpha`]).
pub const fn elu() -> Layer<'static> {
    op(Op::ELU(1.0))
}
/// `nn.GELU()` (`approximate='none'`; see [`Layer::approximate`]).
pub const fn gelu() -> Layer<'static> {
    op(Op::GELU(Approximate::None))
}
/// `nn.SiLU()`.
pub const fn silu() -> Layer<'static> {
    op(Op::SiLU)
}
/// `nn.Hardswish()`.
pub const fn hardswish() -> Layer<'static> {
    op(Op::Hardswish)
}
/// `nn.Hardsigmoid()`.
pub const fn hardsigmoid() -> Layer<'static> {
    op(Op::Hardsigmoid)
}
/// `nn.Softplus()` (`beta=1.0, threshold=20.0`; see [`Layer::beta`], [`Layer::threshold`]).
pub const fn softplus() -> Layer<'static> {
    op(Op::Softplus(Softplus::DEFAULT))
}
/// `nn.Mish()`.
pub const fn mish() -> Layer<'static> {
    op(Op::Mish)
}
/// `nn.ReLU6()`.
pub const fn relu6() -> Layer<'static> {
    op(Op::ReLU6)
}
/// `nn.PReLU()`: one shared slope initialised to 0.25 (see [`Layer::num_parameters`],
/// [`Layer::init`]).
pub const fn prelu() -> Layer<'static> {
    op(Op::PReLU(PReLU {
        num_parameters: 1,
        init: 0.25,
    }))
}
