//! The builder methods of [`Layer`]: PyTorch's keyword arguments (`.stride(2)`,
//! `.padding_mode(..)`, `.eps(..)`, `.approximate(..)`), each checked against the layer it is
//! applied to; one that does not fit turns the layer into [`Kind::Misuse`] instead of panicking.

use super::*;

impl<'l> Layer<'l> {
    /// Names the layer (PyTorch's `add_module(name, ...)` / `OrderedDict` key).
    pub const fn named(mut self, name: &'l str) -> Self {
        self.name = name;
        self
    }

    pub(super) const fn misuse(self, msg: &'static str) -> Self {
        Layer {
            kind: Kind::Misuse(msg),
            name: self.name,
        }
    }

    /// `stride=s` in every spatial dim (Conv, ConvTranspose, pools, MaxUnpool).
    pub const fn stride(self, s: usize) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.stride = spatial(c.dims, s, 1),
            Kind::Op(Op::ConvTranspose(c)) => c.stride = spatial(2, s, 1),
            Kind::Op(Op::ConvTransposeNd(c, d)) => c.stride = spatial(*d, s, 1),
            Kind::Op(Op::MaxPool(p)) => p.stride = spatial(p.dims, s, 1),
            Kind::Op(Op::AvgPool(p)) => p.stride = spatial(p.dims, s, 1),
            Kind::Op(Op::MaxUnpool(p)) => p.stride = spatial(2, s, 1),
            Kind::Op(Op::MaxUnpoolNd(p, d)) => p.stride = spatial(*d, s, 1),
            _ => return self.misuse("stride() applies to convolutions and pools only"),
        }
        l
    }

    /// `padding=p` on both sides of every spatial dim.
    pub const fn padding(self, p: usize) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.padding = Padding::Explicit(spatial(c.dims, p, 0)),
            Kind::Op(Op::ConvTranspose(c)) => c.padding = spatial(2, p, 0),
            Kind::Op(Op::ConvTransposeNd(c, d)) => c.padding = spatial(*d, p, 0),
            Kind::Op(Op::MaxPool(q)) => q.padding = spatial(q.dims, p, 0),
            Kind::Op(Op::AvgPool(q)) => q.padding = spatial(q.dims, p, 0),
            Kind::Op(Op::MaxUnpool(q)) => q.padding = spatial(2, p, 0),
            Kind::Op(Op::MaxUnpoolNd(q, d)) => q.padding = spatial(*d, p, 0),
            _ => return self.misuse("padding() applies to convolutions and pools only"),
        }
        l
    }

    /// `padding='same'` (Conv only; stride must be 1).
    pub const fn padding_same(self) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.padding = Padding::Same,
            _ => return self.misuse("padding_same() applies to Conv1d/2d/3d only"),
        }
        l
    }

    /// `padding='valid'` (Conv only).
    pub const fn padding_valid(self) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.padding = Padding::Valid,
            _ => return self.misuse("padding_valid() applies to Conv1d/2d/3d only"),
        }
        l
    }

    /// `dilation=d` in every spatial dim (Conv, ConvTranspose, MaxPool).
    pub const fn dilation(self, d: usize) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.dilation = spatial(c.dims, d, 1),
            Kind::Op(Op::ConvTranspose(c)) => c.dilation = spatial(2, d, 1),
            Kind::Op(Op::ConvTransposeNd(c, n)) => c.dilation = spatial(*n, d, 1),
            Kind::Op(Op::MaxPool(p)) => p.dilation = spatial(p.dims, d, 1),
            _ => return self.misuse("dilation() applies to Conv, ConvTranspose2d and MaxPool only"),
        }
        l
    }

    /// Per-dim `kernel_size` as a tuple, one entry per spatial dim (`&[kh, kw]` for 2-d).
    pub const fn kernel_size_each(self, k: &[usize]) -> Self {
        let mut l = self;
        let ok = match &mut l.kind {
            Kind::Op(Op::Conv(c)) => set_each(&mut c.kernel_size, c.dims, k, 1),
            Kind::Op(Op::ConvTranspose(c)) => set_each(&mut c.kernel_size, 2, k, 1),
            Kind::Op(Op::ConvTransposeNd(c, d)) => set_each(&mut c.kernel_size, *d, k, 1),
            Kind::Op(Op::MaxPool(p)) => set_each(&mut p.kernel_size, p.dims, k, 1),
            Kind::Op(Op::AvgPool(p)) => set_each(&mut p.kernel_size, p.dims, k, 1),
            Kind::Op(Op::MaxUnpool(p)) => set_each(&mut p.kernel_size, 2, k, 1),
            Kind::Op(Op::MaxUnpoolNd(p, d)) => set_each(&mut p.kernel_size, *d, k, 1),
            _ => false,
        };
        if ok {
            l
        } else {
            self.misuse("kernel_size_each() needs a convolution or pool and one entry per spatial dim")
        }
    }

    /// Per-dim `stride` as a tuple.
    pub const fn stride_each(self, s: &[usize]) -> Self {
        let mut l = self;
        let ok = match &mut l.kind {
            Kind::Op(Op::Conv(c)) => set_each(&mut c.stride, c.dims, s, 1),
            Kind::Op(Op::ConvTranspose(c)) => set_each(&mut c.stride, 2, s, 1),
            Kind::Op(Op::ConvTransposeNd(c, d)) => set_each(&mut c.stride, *d, s, 1),
            Kind::Op(Op::MaxPool(p)) => set_each(&mut p.stride, p.dims, s, 1),
            Kind::Op(Op::AvgPool(p)) => set_each(&mut p.stride, p.dims, s, 1),
            Kind::Op(Op::MaxUnpool(p)) => set_each(&mut p.stride, 2, s, 1),
            Kind::Op(Op::MaxUnpoolNd(p, d)) => set_each(&mut p.stride, *d, s, 1),
            _ => false,
        };
        if ok {
            l
        } else {
            self.misuse("stride_each() needs a convolution or pool and one entry per spatial dim")
        }
    }

    /// Per-dim `padding` as a tuple.
    pub const fn padding_each(self, p: &[usize]) -> Self {
        let mut l = self;
        let ok = match &mut l.kind {
            Kind::Op(Op::Conv(c)) => match spatial_each(c.dims, p, 0) {
                Some(a) => {
                    c.padding = Padding::Explicit(a);
                    true
                }
                None => false,
            },
            Kind::Op(Op::ConvTranspose(c)) => set_each(&mut c.padding, 2, p, 0),
            Kind::Op(Op::ConvTransposeNd(c, d)) => set_each(&mut c.padding, *d, p, 0),
            Kind::Op(Op::MaxPool(q)) => set_each(&mut q.padding, q.dims, p, 0),
            Kind::Op(Op::AvgPool(q)) => set_each(&mut q.padding, q.dims, p, 0),
            Kind::Op(Op::MaxUnpool(q)) => set_each(&mut q.padding, 2, p, 0),
            Kind::Op(Op::MaxUnpoolNd(q, d)) => set_each(&mut q.padding, *d, p, 0),
            _ => false,
        };
        if ok {
            l
        } else {
            self.misuse("padding_each() needs a convolution or pool and one entry per spatial dim")
        }
    }

    /// Per-dim `dilation` as a tuple.
    pub const fn dilation_each(self, d: &[usize]) -> Self {
        let mut l = self;
        let ok = match &mut l.kind {
            Kind::Op(Op::Conv(c)) => set_each(&mut c.dilation, c.dims, d, 1),
            Kind::Op(Op::ConvTranspose(c)) => set_each(&mut c.dilation, 2, d, 1),
            Kind::Op(Op::ConvTransposeNd(c, n)) => set_each(&mut c.dilation, *n, d, 1),
            Kind::Op(Op::MaxPool(p)) => set_each(&mut p.dilation, p.dims, d, 1),
            _ => false,
        };
        if ok {
            l
        } else {
            self.misuse("dilation_each() needs Conv, ConvTranspose2d or MaxPool and one entry per spatial dim")
        }
    }

    /// `groups=g` (Conv, ConvTranspose2d).
    pub const fn groups(self, g: usize) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.groups = g,
            Kind::Op(Op::ConvTranspose(c)) => c.groups = g,
            Kind::Op(Op::ConvTransposeNd(c, _)) => c.groups = g,
            _ => return self.misuse("groups() applies to Conv and ConvTranspose2d only"),
        }
        l
    }

    /// `bias=b` (Conv, ConvTranspose2d, Linear, Bilinear).
    pub const fn bias(self, b: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.bias = b,
            Kind::Op(Op::ConvTranspose(c)) => c.bias = b,
            Kind::Op(Op::ConvTransposeNd(c, _)) => c.bias = b,
            Kind::Op(Op::Linear(c)) => c.bias = b,
            Kind::Merge {
                merge: Merge::Bilinear(c),
                ..
            } => c.bias = b,
            _ => return self.misuse("bias() applies to Conv, ConvTranspose2d, Linear and Bilinear only"),
        }
        l
    }

    /// `padding_mode` (Conv only).
    pub const fn padding_mode(self, mode: PaddingMode) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Conv(c)) => c.padding_mode = mode,
            _ => return self.misuse("padding_mode() applies to Conv1d/2d/3d only"),
        }
        l
    }

    /// `output_padding=p` (ConvTranspose1d/2d/3d only).
    pub const fn output_padding(self, p: usize) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::ConvTranspose(c)) => c.output_padding = [0, p, p],
            Kind::Op(Op::ConvTransposeNd(c, d)) => c.output_padding = spatial(*d, p, 0),
            _ => return self.misuse("output_padding() applies to ConvTranspose only"),
        }
        l
    }

    /// `ceil_mode=b` (MaxPool, AvgPool).
    pub const fn ceil_mode(self, b: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::MaxPool(p)) => p.ceil_mode = b,
            Kind::Op(Op::AvgPool(p)) => p.ceil_mode = b,
            _ => return self.misuse("ceil_mode() applies to MaxPool and AvgPool only"),
        }
        l
    }

    /// `return_indices=b` (MaxPool; required before a `max_unpool2d`).
    pub const fn return_indices(self, b: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::MaxPool(p)) => p.return_indices = b,
            _ => return self.misuse("return_indices() applies to MaxPool only"),
        }
        l
    }

    /// `count_include_pad=b` (AvgPool).
    pub const fn count_include_pad(self, b: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::AvgPool(p)) => p.count_include_pad = b,
            _ => return self.misuse("count_include_pad() applies to AvgPool only"),
        }
        l
    }

    /// `eps` (BatchNorm).
    pub const fn eps(self, eps: f32) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::BatchNorm(b)) => b.eps = eps,
            _ => return self.misuse("eps() applies to BatchNorm only"),
        }
        l
    }

    /// `momentum` (BatchNorm); `None` for a cumulative moving average.
    pub const fn momentum(self, m: Option<f32>) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::BatchNorm(b)) => b.momentum = m,
            _ => return self.misuse("momentum() applies to BatchNorm only"),
        }
        l
    }

    /// `affine` (BatchNorm).
    pub const fn affine(self, a: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::BatchNorm(b)) => b.affine = a,
            _ => return self.misuse("affine() applies to BatchNorm only"),
        }
        l
    }

    /// `track_running_stats` (BatchNorm).
    pub const fn track_running_stats(self, t: bool) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::BatchNorm(b)) => b.track_running_stats = t,
            _ => return self.misuse("track_running_stats() applies to BatchNorm only"),
        }
        l
    }

    /// `alpha` (ELU).
    pub const fn alpha(self, alpha: f32) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::ELU(a)) => *a = alpha,
            _ => return self.misuse("alpha() applies to ELU only"),
        }
        l
    }

    /// `approximate` (GELU): `Approximate::None` or `Approximate::Tanh`.
    pub const fn approximate(self, approximate: Approximate) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::GELU(a)) => *a = approximate,
            _ => return self.misuse("approximate() applies to GELU only"),
        }
        l
    }

    /// `beta` (Softplus).
    pub const fn beta(self, beta: f32) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Softplus(s)) => s.beta = beta,
            _ => return self.misuse("beta() applies to Softplus only"),
        }
        l
    }

    /// `threshold` (Softplus).
    pub const fn threshold(self, threshold: f32) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::Softplus(s)) => s.threshold = threshold,
            _ => return self.misuse("threshold() applies to Softplus only"),
        }
        l
    }

    /// `num_parameters` (PReLU): 1, or the input's channels.
    pub const fn num_parameters(self, n: usize) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::PReLU(p)) => p.num_parameters = n,
            _ => return self.misuse("num_parameters() applies to PReLU only"),
        }
        l
    }

    /// `init` (PReLU): the initial slope.
    pub const fn init(self, init: f32) -> Self {
        let mut l = self;
        match &mut l.kind {
            Kind::Op(Op::PReLU(p)) => p.init = init,
            _ => return self.misuse("init() applies to PReLU only"),
        }
        l
    }
}

const fn set_each(dst: &mut [usize; 3], dims: u8, v: &[usize], fill: usize) -> bool {
    match spatial_each(dims, v, fill) {
        Some(a) => {
            *dst = a;
            true
        }
        None => false,
    }
}
