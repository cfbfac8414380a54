// nn.L1Loss, as torchlet::loss::L1Loss: f = |x - t|, f' = sign(x - t) (0 where x == t, as
// PyTorch). Appended to elementwise_loss.wgsl, which reduces and writes the gradient.

fn valid(x: f32) -> bool {
    return true;
}

fn value(i: u32, x: f32, t: f32) -> f32 {
    return abs(x - t);
}

fn derivative(i: u32, x: f32, t: f32) -> f32 {
    let d = x - t;
    if d > 0.0 {
        return 1.0;
    }
    if d < 0.0 {
        return -1.0;
    }
    return 0.0;
}
