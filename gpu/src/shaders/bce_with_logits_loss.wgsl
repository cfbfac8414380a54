// nn.BCEWithLogitsLoss, as torchlet::loss::BCEWithLogitsLoss, on logits x, with pw the
// pos_weight of the element's last-dim index (binding 6: [last], all ones without pos_weight):
//
//   log_sigmoid(x) = min(x, 0) - ln(1 + e^-|x|)
//   f  = (1 - t) x - (1 + (pw - 1) t) log_sigmoid(x)
//   f' = (pw t + 1 - t) sigmoid(x) - pw t
//
// Appended to elementwise_loss.wgsl, which reduces and writes the gradient.

@group(0) @binding(6) var<storage, read> pos_weight: array<f32>;

fn valid(x: f32) -> bool {
    return true;
}

fn pw(i: u32) -> f32 {
    return pos_weight[i % p.last];
}

fn value(i: u32, x: f32, t: f32) -> f32 {
    let log_sigmoid = min(x, 0.0) - log1p_(exp(-abs(x)));
    let log_weight = (pw(i) - 1.0) * t + 1.0;
    return (1.0 - t) * x - log_weight * log_sigmoid;
}

// torchlet::math::sigmoid: 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below.
fn sigmoid_(x: f32) -> f32 {
    if x >= 0.0 {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn derivative(i: u32, x: f32, t: f32) -> f32 {
    let w = pw(i) * t;
    return (w + 1.0 - t) * sigmoid_(x) - w;
}
