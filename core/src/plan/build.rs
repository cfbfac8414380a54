//! Building a plan: flattening the layer tree into nodes and inferring every shape.
//!
//! One `match` arm per operation: it checks the layer against its input shape (PyTorch's rules
//! and messages), computes the output shape, the parameter and state sizes, and the kernel
//! geometry with the plan's batch size.

use super::*;
use crate::layer::{Bilinear, Kind, Layer, Merge, Op, Padding};
use crate::ops::batchnorm::{batch_norm_state_len, BnGeom};
use crate::ops::conv::conv_workspace_len;
use crate::ops::conv_transpose::conv_transpose_workspace_len;
use crate::ops::geom::{window_out, ConvGeom, PaddingMode, PoolGeom};

impl<const CAP: usize> Plan<CAP> {
    // ---- building ----

    pub(super) const fn add_seq(
        &mut self,
        layers: &'static [Layer],
        mut src: u16,
        mut shape: Shape,
        stack: &mut [u16; 16],
        depth: &mut usize,
    ) -> Result<(u16, Shape)> {
        let mut i = 0;
        while i < layers.len() {
            let l = &layers[i];
            match l.kind {
                Kind::Op(op) => {
                    let (id, s) = ctry!(self.add_op(op, l.name, src, shape, stack, depth));
                    src = id;
                    shape = s;
                }
                Kind::Sequential(inner) => {
                    let (id, s) = ctry!(self.add_seq(inner, src, shape, stack, depth));
                    src = id;
                    shape = s;
                }
                Kind::Merge { merge, a, b } => {
                    let (ia, sa) = ctry!(self.add_seq(a, src, shape, stack, depth));
                    let (ib, sb) = ctry!(self.add_seq(b, src, shape, stack, depth));
                    let (id, s) = ctry!(self.add_merge(merge, l.name, ia, sa, ib, sb));
                    src = id;
                    shape = s;
                }
                Kind::Misuse(what) => return Err(Error::Structure { what }),
            }
            i += 1;
        }
        Ok((src, shape))
    }

    const fn push(&mut self, mut node: Node, name: &'static str, src: u16, src2: u16) -> Result<(u16, Shape)> {
        let id = self.len;
        node.name = name;
        node.inputs = [src, src2];
        node.param_offset = self.param_len;
        self.param_len += node.weight_len + node.bias_len;
        node.state_offset = self.state_len;
        self.state_len += node.state_len;
        let b = self.batch;
        node.out.len = b * node.out_shape.numel();
        self.nodes[id] = node;
        self.len += 1;
        Ok((id as u16, node.out_shape))
    }

    const fn add_merge(
        &mut self,
        merge: Merge,
        name: &'static str,
        ia: u16,
        sa: Shape,
        ib: u16,
        sb: Shape,
    ) -> Result<(u16, Shape)> {
        let layer = self.len;
        let mut n = Node::EMPTY;
        n.in_shape = sa;
        n.in_shape2 = sb;
        match merge {
            Merge::Add => {
                n.op_name = "Add";
                if !sa.const_eq(&sb) {
                    if sa.rank() != sb.rank() {
                        return Err(shape_err(
                            layer,
                            "Add",
                            "both branches must have the same rank",
                            sa.rank(),
                            sb.rank(),
                        ));
                    }
                    return Err(shape_err(
                        layer,
                        "Add",
                        "both branches must have the same number of elements per sample",
                        sa.numel(),
                        sb.numel(),
                    ));
                }
                n.exec = Exec::Add;
                n.out_shape = sa;
            }
            Merge::Concat => {
                n.op_name = "Concat";
                if sa.rank() != sb.rank() {
                    return Err(shape_err(
                        layer,
                        "Concat",
                        "both branches must have the same rank",
                        sa.rank(),
                        sb.rank(),
                    ));
                }
                if sa.numel() / sa.channels() != sb.numel() / sb.channels() {
                    return Err(shape_err(
                        layer,
                        "Concat",
                        "both branches must have the same spatial size",
                        sa.numel() / sa.channels(),
                        sb.numel() / sb.channels(),
                    ));
                }
                n.exec = Exec::Concat {
                    a: sa.numel(),
                    b: sb.numel(),
                };
                n.out_shape = sa.with_channels(sa.channels() + sb.channels());
            }
            Merge::Bilinear(Bilinear {
                in1_features,
                in2_features,
                out_features,
                bias,
            }) => {
                n.op_name = "Bilinear";
                if sa.last() != in1_features {
                    return Err(shape_err(
                        layer,
                        "Bilinear",
                        "in1_features differs from the last dim of the first branch",
                        in1_features,
                        sa.last(),
                    ));
                }
                if sb.last() != in2_features {
                    return Err(shape_err(
                        layer,
                        "Bilinear",
                        "in2_features differs from the last dim of the second branch",
                        in2_features,
                        sb.last(),
                    ));
                }
                let rows = sa.numel() / in1_features;
                if sb.numel() / in2_features != rows {
                    return Err(shape_err(
                        layer,
                        "Bilinear",
                        "both branches must have the same number of rows",
                        rows,
                        sb.numel() / in2_features,
                    ));
                }
                if out_features == 0 {
                    return Err(shape_err(layer, "Bilinear", "out_features must be positive", 1, 0));
                }
                n.exec = Exec::Bilinear {
                    rows,
                    in1: in1_features,
                    in2: in2_features,
                    out: out_features,
                    bias,
                };
                n.weight_len = out_features * in1_features * in2_features;
                n.bias_len = if bias { out_features } else { 0 };
                n.out_shape = sa.with_last(out_features);
                if ia == ib {
                    // Both branches are the same tensor: backward needs a scratch for the
                    // second gradient before adding it to the first.
                    n.work_bwd.len = self.batch * sb.numel();
                }
            }
        }
        self.push(n, name, ia, ib)
    }

    #[allow(clippy::too_many_lines)]
    const fn add_op(
        &mut self,
        op: Op,
        name: &'static str,
        src: u16,
        s: Shape,
        stack: &mut [u16; 16],
        depth: &mut usize,
    ) -> Result<(u16, Shape)> {
        let layer = self.len;
        let b = self.batch;
        let opn = op.torch_name();
        let mut n = Node::EMPTY;
        n.op_name = opn;
        n.in_shape = s;
        n.in_shape2 = s;
        n.out_shape = s;
        match op {
            Op::Conv(c) => {
                let dims = c.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank (channels + spatial dims) differs",
                        dims + 1,
                        s.rank(),
                    ));
                }
                if c.in_channels != s.channels() {
                    return Err(shape_err(
                        layer,
                        opn,
                        "in_channels differs from the channels of its input",
                        c.in_channels,
                        s.channels(),
                    ));
                }
                if c.groups == 0 || c.in_channels % c.groups != 0 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "in_channels must be divisible by groups",
                        c.groups,
                        c.in_channels,
                    ));
                }
                if c.out_channels == 0 || c.out_channels % c.groups != 0 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "out_channels must be a positive multiple of groups",
                        c.groups,
                        c.out_channels,
                    ));
                }
                let inp = s.spatial3();
                let mut pad = [0usize; 3];
                let mut pad_back = [0usize; 3];
                let mut out = [1usize; 3];
                let mut d = 0;
                while d < 3 {
                    let k = c.kernel_size[d];
                    let dil = c.dilation[d];
                    if k == 0 || c.stride[d] == 0 || dil == 0 {
                        return Err(shape_err(
                            layer,
                            opn,
                            "kernel_size, stride and dilation must be positive",
                            1,
                            0,
                        ));
                    }
                    match c.padding {
                        Padding::Explicit(p) => {
                            pad[d] = p[d];
                            pad_back[d] = p[d];
                        }
                        Padding::Valid => {}
                        Padding::Same => {
                            if c.stride[d] != 1 {
                                return Err(shape_err(layer, opn, "padding='same' needs stride 1", 1, c.stride[d]));
                            }
                            let total = dil * (k - 1);
                            pad[d] = total / 2;
                            pad_back[d] = total - total / 2;
                        }
                    }
                    let limit = match c.padding_mode {
                        PaddingMode::Zeros => usize::MAX,
                        PaddingMode::Reflect => inp[d] - 1,
                        PaddingMode::Replicate => usize::MAX,
                        PaddingMode::Circular => inp[d],
                    };
                    if pad[d] > limit || pad_back[d] > limit {
                        return Err(shape_err(
                            layer,
                            opn,
                            "padding too large for reflect/circular padding_mode on this input",
                            limit,
                            pad[d],
                        ));
                    }
                    out[d] = match window_out(inp[d], k, c.stride[d], pad[d], pad_back[d], dil, false) {
                        Some(o) => o,
                        None => {
                            return Err(shape_err(
                                layer,
                                opn,
                                "input (with padding) is smaller than the dilated kernel",
                                dil * (k - 1) + 1,
                                inp[d] + pad[d] + pad_back[d],
                            ))
                        }
                    };
                    d += 1;
                }
                let g = ConvGeom {
                    n: b,
                    c_in: c.in_channels,
                    c_out: c.out_channels,
                    groups: c.groups,
                    input: inp,
                    output: out,
                    kernel: c.kernel_size,
                    stride: c.stride,
                    dilation: c.dilation,
                    pad,
                    mode: c.padding_mode,
                    bias: c.bias,
                };
                n.exec = Exec::Conv(g);
                n.weight_len = g.weight_len();
                n.bias_len = if c.bias { c.out_channels } else { 0 };
                n.out_shape = Shape::with_spatial3(s.rank(), c.out_channels, out);
                n.work_fwd.len = conv_workspace_len(&g);
                n.work_bwd.len = conv_workspace_len(&g);
            }
            Op::ConvTranspose(c) => {
                if s.rank() != 3 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank (channels + spatial dims) differs",
                        3,
                        s.rank(),
                    ));
                }
                if c.in_channels != s.channels() {
                    return Err(shape_err(
                        layer,
                        opn,
                        "in_channels differs from the channels of its input",
                        c.in_channels,
                        s.channels(),
                    ));
                }
                if c.groups == 0
                    || c.in_channels % c.groups != 0
                    || c.out_channels == 0
                    || c.out_channels % c.groups != 0
                {
                    return Err(shape_err(
                        layer,
                        opn,
                        "in_channels and out_channels must be positive multiples of groups",
                        c.groups,
                        c.in_channels,
                    ));
                }
                let inp = s.spatial3();
                let mut out = [1usize; 3];
                let mut d = 0;
                while d < 3 {
                    let (k, st, dil, p, op) = (
                        c.kernel_size[d],
                        c.stride[d],
                        c.dilation[d],
                        c.padding[d],
                        c.output_padding[d],
                    );
                    if k == 0 || st == 0 || dil == 0 {
                        return Err(shape_err(
                            layer,
                            opn,
                            "kernel_size, stride and dilation must be positive",
                            1,
                            0,
                        ));
                    }
                    if op >= st && op >= dil {
                        return Err(shape_err(
                            layer,
                            opn,
                            "output_padding must be smaller than stride or dilation",
                            st,
                            op,
                        ));
                    }
                    let full = (inp[d] - 1) * st + dil * (k - 1) + op + 1;
                    if full <= 2 * p {
                        return Err(shape_err(layer, opn, "padding removes the whole output", full, 2 * p));
                    }
                    out[d] = full - 2 * p;
                    d += 1;
                }
                let g = ConvGeom {
                    n: b,
                    c_in: c.in_channels,
                    c_out: c.out_channels,
                    groups: c.groups,
                    input: inp,
                    output: out,
                    kernel: c.kernel_size,
                    stride: c.stride,
                    dilation: c.dilation,
                    pad: c.padding,
                    mode: PaddingMode::Zeros,
                    bias: c.bias,
                };
                n.exec = Exec::ConvTranspose(g);
                n.weight_len = c.in_channels * (c.out_channels / c.groups) * g.kernel_volume();
                n.bias_len = if c.bias { c.out_channels } else { 0 };
                n.out_shape = Shape::with_spatial3(3, c.out_channels, out);
                n.work_fwd.len = conv_transpose_workspace_len(&g);
                n.work_bwd.len = conv_transpose_workspace_len(&g);
            }
            Op::MaxPool(p) => {
                let dims = p.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank (channels + spatial dims) differs",
                        dims + 1,
                        s.rank(),
                    ));
                }
                let g = ctry!(pool_geom(
                    layer,
                    opn,
                    b,
                    s,
                    p.kernel_size,
                    p.stride,
                    p.padding,
                    p.dilation,
                    p.ceil_mode,
                    true
                ));
                n.exec = Exec::MaxPool(g);
                n.out_shape = Shape::with_spatial3(s.rank(), s.channels(), g.output);
                n.extra.len = b * n.out_shape.numel();
                if p.return_indices {
                    if *depth >= stack.len() {
                        return Err(Error::Structure {
                            what: "more than 16 nested MaxPool layers with return_indices",
                        });
                    }
                    stack[*depth] = layer as u16;
                    *depth += 1;
                }
            }
            Op::AvgPool(p) => {
                let dims = p.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank (channels + spatial dims) differs",
                        dims + 1,
                        s.rank(),
                    ));
                }
                let mut g = ctry!(pool_geom(
                    layer,
                    opn,
                    b,
                    s,
                    p.kernel_size,
                    p.stride,
                    p.padding,
                    [1; 3],
                    p.ceil_mode,
                    false
                ));
                g.count_include_pad = p.count_include_pad;
                n.exec = Exec::AvgPool(g);
                n.out_shape = Shape::with_spatial3(s.rank(), s.channels(), g.output);
            }
            Op::AdaptiveAvgPool(a) | Op::AdaptiveMaxPool(a) => {
                let dims = a.dims as usize;
                if s.rank() != dims + 1 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank (channels + spatial dims) differs",
                        dims + 1,
                        s.rank(),
                    ));
                }
                if a.output_size[0] == 0 || a.output_size[1] == 0 || a.output_size[2] == 0 {
                    return Err(shape_err(layer, opn, "output_size must be positive", 1, 0));
                }
                let input = s.spatial3();
                n.out_shape = Shape::with_spatial3(s.rank(), s.channels(), a.output_size);
                if let Op::AdaptiveMaxPool(_) = op {
                    n.exec = Exec::AdaptiveMaxPool {
                        c: s.channels(),
                        input,
                        output: a.output_size,
                    };
                    n.extra.len = b * n.out_shape.numel();
                } else {
                    n.exec = Exec::AdaptiveAvgPool {
                        c: s.channels(),
                        input,
                        output: a.output_size,
                    };
                }
            }
            Op::MaxUnpool(u) => {
                if s.rank() != 3 {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank (channels + spatial dims) differs",
                        3,
                        s.rank(),
                    ));
                }
                if *depth == 0 {
                    return Err(Error::Structure {
                        what: "MaxUnpool2d needs an earlier MaxPool2d with return_indices(true)",
                    });
                }
                *depth -= 1;
                let pool = stack[*depth];
                let pn = self.nodes[pool as usize];
                if !pn.out_shape.const_eq(&s) {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input must have the shape of its MaxPool's output (elements)",
                        pn.out_shape.numel(),
                        s.numel(),
                    ));
                }
                // Output: the pool's input size (PyTorch's `output_size=`), which must be a
                // size MaxUnpool2d accepts: default (in - 1) * stride - 2 * pad + kernel, plus < stride.
                let ps = pn.in_shape.spatial3();
                let inp = s.spatial3();
                let mut d = 1;
                while d < 3 {
                    let base = (inp[d] - 1) * u.stride[d] + u.kernel_size[d];
                    if base < 2 * u.padding[d] {
                        return Err(shape_err(
                            layer,
                            opn,
                            "padding larger than the unpooled size",
                            base,
                            2 * u.padding[d],
                        ));
                    }
                    let def = base - 2 * u.padding[d];
                    if ps[d] < def || ps[d] >= def + u.stride[d] {
                        return Err(shape_err(
                            layer,
                            opn,
                            "the MaxPool's input size is not a valid output size for this MaxUnpool2d",
                            def,
                            ps[d],
                        ));
                    }
                    d += 1;
                }
                n.out_shape = pn.in_shape;
                n.exec = Exec::MaxUnpool {
                    c: s.channels(),
                    in_spatial: inp[0] * inp[1] * inp[2],
                    out_spatial: ps[0] * ps[1] * ps[2],
                    pool,
                };
            }
            Op::Pad2d(p) => {
                if s.rank() != 3 {
                    return Err(shape_err(layer, opn, "input must be [C, H, W] (rank 3)", 3, s.rank()));
                }
                let (h, w) = (s.dim(1), s.dim(2));
                let limit_w = match p.mode {
                    PaddingMode::Reflect => w - 1,
                    PaddingMode::Circular => w,
                    _ => usize::MAX,
                };
                let limit_h = match p.mode {
                    PaddingMode::Reflect => h - 1,
                    PaddingMode::Circular => h,
                    _ => usize::MAX,
                };
                if p.padding[0] > limit_w || p.padding[1] > limit_w {
                    return Err(shape_err(
                        layer,
                        opn,
                        "left/right padding too large for the input width",
                        limit_w,
                        p.padding[0],
                    ));
                }
                if p.padding[2] > limit_h || p.padding[3] > limit_h {
                    return Err(shape_err(
                        layer,
                        opn,
                        "top/bottom padding too large for the input height",
                        limit_h,
                        p.padding[2],
                    ));
                }
                n.exec = Exec::Pad2d {
                    c: s.channels(),
                    h,
                    w,
                    padding: p.padding,
                    mode: p.mode,
                };
                n.out_shape = Shape::chw(
                    s.channels(),
                    h + p.padding[2] + p.padding[3],
                    w + p.padding[0] + p.padding[1],
                );
            }
            Op::ReLU => n.exec = Exec::ReLU,
            Op::LeakyReLU(a) => n.exec = Exec::LeakyReLU(a),
            Op::Sigmoid => n.exec = Exec::Sigmoid,
            Op::Tanh => n.exec = Exec::Tanh,
            Op::Softmax(dim) | Op::LogSoftmax(dim) => {
                let full = s.rank() as i32 + 1;
                let d = if (dim as i32) < 0 {
                    dim as i32 + full
                } else {
                    dim as i32
                };
                if d < 1 || d >= full {
                    return Err(shape_err(
                        layer,
                        opn,
                        "dim must be a non-batch dim (1..rank)",
                        1,
                        if d < 0 { 0 } else { d as usize },
                    ));
                }
                let d = d as usize - 1;
                let mut outer = 1;
                let mut inner = 1;
                let mut k = 0;
                while k < s.rank() {
                    if k < d {
                        outer *= s.dim(k);
                    } else if k > d {
                        inner *= s.dim(k);
                    }
                    k += 1;
                }
                let axis = s.dim(d);
                n.exec = if let Op::Softmax(_) = op {
                    Exec::Softmax { outer, axis, inner }
                } else {
                    Exec::LogSoftmax { outer, axis, inner }
                };
            }
            Op::BatchNorm(bn) => {
                let ok = if bn.dims == 1 {
                    s.rank() == 1 || s.rank() == 2
                } else {
                    s.rank() == 3
                };
                if !ok {
                    return Err(shape_err(
                        layer,
                        opn,
                        "input rank differs (BatchNorm1d: [C] or [C, L]; BatchNorm2d: [C, H, W])",
                        if bn.dims == 1 { 2 } else { 3 },
                        s.rank(),
                    ));
                }
                if bn.num_features != s.channels() {
                    return Err(shape_err(
                        layer,
                        opn,
                        "num_features differs from the channels of its input",
                        bn.num_features,
                        s.channels(),
                    ));
                }
                if bn.eps.is_nan() || bn.eps <= 0.0 {
                    return Err(Error::InvalidArgument {
                        name: "eps",
                        expected: "must be positive",
                    });
                }
                let c = bn.num_features;
                n.exec = Exec::BatchNorm(BnGeom {
                    n: b,
                    c,
                    spatial: s.numel() / c,
                    eps: bn.eps,
                    momentum: bn.momentum,
                    affine: bn.affine,
                    track_running_stats: bn.track_running_stats,
                });
                if bn.affine {
                    n.weight_len = c;
                    n.bias_len = c;
                }
                if bn.track_running_stats {
                    n.state_len = batch_norm_state_len(c);
                }
                n.extra.len = 2 * c;
            }
            Op::Dropout(p) => {
                if p.is_nan() || p < 0.0 || p > 1.0 {
                    return Err(Error::InvalidArgument {
                        name: "p",
                        expected: "dropout probability must be in [0, 1]",
                    });
                }
                n.exec = Exec::Dropout(p);
                n.extra.len = b * s.numel();
            }
            Op::Linear(l) => {
                let last = s.last();
                let in_f = if l.in_features == 0 { last } else { l.in_features };
                if in_f != last {
                    return Err(shape_err(
                        layer,
                        opn,
                        "in_features differs from the last dim of its input",
                        in_f,
                        last,
                    ));
                }
                if l.out_features == 0 {
                    return Err(shape_err(layer, opn, "out_features must be positive", 1, 0));
                }
                n.exec = Exec::Linear {
                    rows: s.numel() / last,
                    in_f,
                    out_f: l.out_features,
                    bias: l.bias,
                };
                n.weight_len = in_f * l.out_features;
                n.bias_len = if l.bias { l.out_features } else { 0 };
                n.out_shape = s.with_last(l.out_features);
            }
            Op::Identity => n.exec = Exec::Copy,
            Op::Flatten => {
                n.exec = Exec::Copy;
                n.out_shape = Shape::features(s.numel());
            }
        }
        if n.out_shape.numel() == 0 {
            return Err(shape_err(layer, opn, "output would be empty", 1, 0));
        }
        self.push(n, name, src, INPUT)
    }
}

#[allow(clippy::too_many_arguments)]
const fn pool_geom(
    layer: usize,
    opn: &'static str,
    n: usize,
    s: Shape,
    kernel: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
    dilation: [usize; 3],
    ceil: bool,
    is_max: bool,
) -> Result<PoolGeom> {
    let input = s.spatial3();
    let mut output = [1usize; 3];
    let mut d = 0;
    while d < 3 {
        if kernel[d] == 0 || stride[d] == 0 || dilation[d] == 0 {
            return Err(shape_err(
                layer,
                opn,
                "kernel_size, stride and dilation must be positive",
                1,
                0,
            ));
        }
        if pad[d] > kernel[d] / 2 {
            return Err(shape_err(
                layer,
                opn,
                "padding must be at most half the kernel size",
                kernel[d] / 2,
                pad[d],
            ));
        }
        output[d] = match window_out(input[d], kernel[d], stride[d], pad[d], pad[d], dilation[d], ceil) {
            Some(o) => o,
            None => {
                return Err(shape_err(
                    layer,
                    opn,
                    "input (with padding) is smaller than the window",
                    dilation[d] * (kernel[d] - 1) + 1,
                    input[d] + 2 * pad[d],
                ))
            }
        };
        d += 1;
    }
    let _ = is_max;
    Ok(PoolGeom {
        n,
        c: s.channels(),
        input,
        output,
        kernel,
        stride,
        dilation,
        pad,
        count_include_pad: true,
    })
}
