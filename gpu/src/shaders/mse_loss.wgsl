// nn.MSELoss, as torchlet::loss::MSELoss: f = (x - t)^2, f' = 2 (x - t). Appended to
// elementwise_loss.wgsl, which reduces and writes the gradient.

fn valid(x: f32) -> bool {
    return true;
}

fn value(i: u32, x: f32, t: f32) -> f32 {
    let d = x - t;
    return d * d;
}

fn derivative(i: u32, x: f32, t: f32) -> f32 {
    return 2.0 * (x - t);
}
