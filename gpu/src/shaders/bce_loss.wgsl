// nn.BCELoss, as torchlet::loss::BCELoss, on probabilities x in [0, 1]:
//
//   f  = (t - 1) max(ln(1 - x), -100) - t max(ln x, -100)
//   f' = (x - t) / max(x (1 - x), 1e-12)
//
// An input outside [0, 1] (NaN included) fails `valid`, which makes the reduced loss NaN (the
// host-slice wrapper refuses such inputs up front, as the core does). Appended to
// elementwise_loss.wgsl, which reduces and writes the gradient.

fn valid(x: f32) -> bool {
    return x >= 0.0 && x <= 1.0;
}

fn value(i: u32, x: f32, t: f32) -> f32 {
    // ln 0 is -inf on the CPU, clamped to -100; WGSL leaves log(0) undefined, so clamp first.
    var log_x = -100.0;
    if x > 0.0 {
        log_x = max(log(x), -100.0);
    }
    var log_1mx = -100.0;
    if x < 1.0 {
        log_1mx = max(log1p_(-x), -100.0);
    }
    return (t - 1.0) * log_1mx - t * log_x;
}

fn derivative(i: u32, x: f32, t: f32) -> f32 {
    return (x - t) / max((1.0 - x) * x, 1e-12);
}
