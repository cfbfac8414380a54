//! Batches smaller than the plan's, train and eval mode (BatchNorm, Dropout), and gradient
//! accumulation.

use super::*;
#[allow(unused_imports)]
use crate::{errors::*, graphs::*, init::*, weights::*};

// ---------------------------------------------------------------------------------------------
// Batches smaller than the plan's
// ---------------------------------------------------------------------------------------------

#[test]
pub(crate) fn smaller_batches_give_the_full_batch_outputs() {
    const TRAIN: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 4);
    const INFER: Plan<RESNET_CAP> = Plan::inference(&RESNET, Shape::chw(3, 6, 6), 4);
    let sample = 3 * 6 * 6;
    let x = rand_vec(4 * sample, 21);
    let mut tb = Bufs::new(&TRAIN);
    let mut train = tb.net(&TRAIN);
    randomize(&mut train, 20);
    train.eval();
    let full = train.forward(&x).unwrap().to_vec();
    assert_eq!(full.len(), 4 * 3);
    let mut ib = Bufs::new(&INFER);
    ib.params.copy_from_slice(train.params());
    ib.state.copy_from_slice(train.state());
    let mut infer = ib.net(&INFER);
    assert!(!infer.is_training());
    close(
        "inference plan, full batch",
        infer.forward(&x).unwrap(),
        &full,
        1e-5,
        1e-6,
    );
    for n in 1..4 {
        for start in 0..=4 - n {
            let xs = &x[start * sample..(start + n) * sample];
            let want = &full[start * 3..(start + n) * 3];
            close(
                &format!("training plan in eval mode, {n} samples from {start}"),
                train.forward(xs).unwrap(),
                want,
                1e-5,
                1e-6,
            );
            close(
                &format!("inference plan, {n} samples from {start}"),
                infer.forward(xs).unwrap(),
                want,
                1e-5,
                1e-6,
            );
        }
    }
}

#[test]
pub(crate) fn smaller_batches_give_correct_gradients() {
    const BIG: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 4);
    const EXACT: Plan<RESNET_CAP> = Plan::training(&RESNET, Shape::chw(3, 6, 6), 3);
    const SMOOTH: Plan<RESNET_CAP> = Plan::training(&SMOOTH_RESNET, Shape::chw(3, 6, 6), 4);
    // Finite differences on 3 and 2 of 4 planned samples, in training mode (batch statistics
    // of 3 and 2) and in eval mode.
    GradCheck::new(3, 22).run(&SMOOTH).unwrap();
    GradCheck::new(2, 23).run(&SMOOTH).unwrap();
    GradCheck::new(1, 24).scale(10.0).eval().run(&SMOOTH).unwrap();
    // The same gradients, output and running statistics as a plan made for exactly 3.
    let x = rand_vec(3 * 3 * 6 * 6, 24);
    let w = rand_vec(3 * 3, 25);
    let run = |plan: &Plan<RESNET_CAP>| {
        let mut b = Bufs::new(plan);
        let mut net = b.net(plan);
        randomize(&mut net, 26);
        let y = net.forward(&x).unwrap().to_vec();
        net.backward_from(&w).unwrap();
        (y, net.grads().to_vec(), net.state().to_vec())
    };
    let (y_big, g_big, s_big) = run(&BIG);
    let (y_exact, g_exact, s_exact) = run(&EXACT);
    close("output", &y_big, &y_exact, 1e-5, 1e-6);
    close("gradients", &g_big, &g_exact, 1e-4, 1e-6);
    close("running statistics", &s_big, &s_exact, 1e-5, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Train and eval mode
// ---------------------------------------------------------------------------------------------

#[test]
pub(crate) fn batch_norm_uses_batch_statistics_in_train_and_running_statistics_in_eval() {
    const BN: [Layer; 1] = [batch_norm2d(2)];
    const PLAN: Plan<1> = Plan::training(&BN, Shape::chw(2, 2, 3), 3);
    let (n, c, s) = (3, 2, 6);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    randomize(&mut net, 30);
    let (weight, bias) = (net.params()[..c].to_vec(), net.params()[c..].to_vec());
    let state0 = net.state().to_vec();
    assert_eq!(state0[2 * c], 0.0);
    let x: Vec<f32> = rand_vec(n * c * s, 31)
        .iter()
        .enumerate()
        .map(|(i, v)| 2.0 * v + (i / s % c) as f32)
        .collect();
    let at = |i: usize, ch: usize, k: usize| (i * c + ch) * s + k;

    assert!(net.is_training());
    let y = net.forward(&x).unwrap().to_vec();
    let mut want = vec![0.0; x.len()];
    let mut state = state0.clone();
    state[2 * c] += 1.0;
    for ch in 0..c {
        let v: Vec<f64> = (0..n)
            .flat_map(|i| (0..s).map(move |k| (i, k)))
            .map(|(i, k)| x[at(i, ch, k)] as f64)
            .collect();
        let m = v.len() as f64;
        let mean = v.iter().sum::<f64>() / m;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / m;
        for i in 0..n {
            for k in 0..s {
                let j = at(i, ch, k);
                want[j] = ((x[j] as f64 - mean) / (var + 1e-5).sqrt() * weight[ch] as f64 + bias[ch] as f64) as f32;
            }
        }
        state[ch] = (0.9 * state0[ch] as f64 + 0.1 * mean) as f32;
        state[c + ch] = (0.9 * state0[c + ch] as f64 + 0.1 * var * m / (m - 1.0)) as f32;
    }
    close("train-mode output (batch statistics)", &y, &want, 1e-5, 1e-5);
    close(
        "running statistics after one training pass",
        net.state(),
        &state,
        1e-5,
        1e-6,
    );

    net.eval();
    assert!(!net.is_training());
    let state = net.state().to_vec();
    let y = net.forward(&x).unwrap().to_vec();
    assert_eq!(net.state(), &state[..], "eval mode leaves the running statistics alone");
    for j in 0..x.len() {
        let ch = j / s % c;
        let rv = (state[c + ch] as f64 + 1e-5).sqrt();
        want[j] = ((x[j] as f64 - state[ch] as f64) / rv * weight[ch] as f64 + bias[ch] as f64) as f32;
    }
    close("eval-mode output (running statistics)", &y, &want, 1e-5, 1e-5);

    net.train().unwrap();
    net.forward(&x).unwrap();
    assert_eq!(net.state()[2 * c], 2.0, "num_batches_tracked counts training passes");
}

#[test]
pub(crate) fn dropout_drops_in_train_and_is_the_identity_in_eval() {
    const DROP: [Layer; 1] = [dropout(0.3)];
    const PLAN: Plan<1> = Plan::training(&DROP, Shape::features(500), 4);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    let x: Vec<f32> = rand_vec(2000, 40).iter().map(|v| 1.5 + v).collect();

    net.set_seed(11);
    let y = net.forward(&x).unwrap().to_vec();
    let dropped = y.iter().filter(|&&v| v == 0.0).count();
    // 2000 draws of p = 0.3: standard deviation about 20.
    assert!((520..=680).contains(&dropped), "{dropped} of 2000 dropped with p = 0.3");
    for (i, (&yi, &xi)) in y.iter().zip(&x).enumerate() {
        assert!(
            yi == 0.0 || (yi - xi / 0.7).abs() <= 1e-6 * yi.abs(),
            "index {i}: {yi} from {xi}"
        );
    }
    // The same seed gives the same mask; the generator moves on otherwise.
    net.set_seed(11);
    assert_eq!(net.forward(&x).unwrap(), &y[..]);
    let saved = net.rng();
    let y2 = net.forward(&x).unwrap().to_vec();
    assert_ne!(y2, y, "a second pass without reseeding must draw a new mask");
    net.set_rng(saved);
    assert_eq!(net.forward(&x).unwrap(), &y2[..], "set_rng resumes the generator");
    net.set_seed(12);
    assert_ne!(net.forward(&x).unwrap(), &y[..]);
    net.eval();
    assert_eq!(net.forward(&x).unwrap(), &x[..], "Dropout is the identity in eval mode");
    net.train().unwrap();
    assert_ne!(net.forward(&x).unwrap(), &x[..]);
}

#[test]
pub(crate) fn dropout_gradient_uses_the_forward_mask() {
    // Linear -> Dropout: d(sum w * y)/d(bias_j) = sum over samples of w * mask.
    const NET: [Layer; 2] = [linear(3, 50), dropout(0.5)];
    const PLAN: Plan<2> = Plan::training(&NET, Shape::features(3), 2);
    let mut b = Bufs::new(&PLAN);
    let mut net = b.net(&PLAN);
    net.init_params(1).unwrap();
    let x = rand_vec(6, 41);
    net.set_seed(3);
    let y = net.forward(&x).unwrap().to_vec();
    // Recover the mask from the output and the undropped output (eval mode).
    net.eval();
    let full = net.forward(&x).unwrap().to_vec();
    net.train().unwrap();
    net.set_seed(3);
    net.forward(&x).unwrap();
    let w = rand_vec(100, 42);
    net.zero_grad();
    net.backward_from(&w).unwrap();
    let gb = &net.grads()[150..200];
    for j in 0..50 {
        let want: f32 = (0..2)
            .map(|i| if y[i * 50 + j] == 0.0 { 0.0 } else { 2.0 * w[i * 50 + j] })
            .sum();
        assert!(
            (gb[j] - want).abs() <= 1e-5,
            "bias {j}: {} vs {want} (outputs {:?} / {:?})",
            gb[j],
            y[j],
            full[j]
        );
    }
    assert!(y.contains(&0.0) && y.iter().any(|&v| v != 0.0));
}

// ---------------------------------------------------------------------------------------------
// Gradient accumulation
// ---------------------------------------------------------------------------------------------

#[test]
pub(crate) fn gradients_accumulate_without_zero_grad() {
    let x = rand_vec(2 * 3 * 6 * 6, 50);
    let w = rand_vec(2 * 3, 51);
    let mut b = Bufs::new(&RESNET_PLAN);
    let mut net = b.net(&RESNET_PLAN);
    randomize(&mut net, 52);
    net.zero_grad();
    net.forward(&x).unwrap();
    net.backward_from(&w).unwrap();
    let once = net.grads().to_vec();
    assert!(once.iter().filter(|g| g.abs() > 1e-3).count() > once.len() / 2);
    net.forward(&x).unwrap();
    net.backward_from(&w).unwrap();
    let twice: Vec<f32> = once.iter().map(|g| 2.0 * g).collect();
    close("two backward passes", net.grads(), &twice, 1e-5, 1e-7);
    net.zero_grad();
    assert!(net.grads().iter().all(|&g| g == 0.0));

    // The same through a loss and with Dropout (same mask each time).
    let mut b = Bufs::new(&ACTIVATIONS_PLAN);
    let mut net = b.net(&ACTIVATIONS_PLAN);
    net.init_params(53).unwrap();
    let x = rand_vec(2 * 15, 54);
    // Output [3, 2] per sample: 3 classes at 2 positions.
    let labels = [1u32, 0, 2, 1];
    net.zero_grad();
    net.set_seed(9);
    net.forward(&x).unwrap();
    let l1 = net.backward(&CrossEntropyLoss::new(), &labels).unwrap();
    let once = net.grads().to_vec();
    net.set_seed(9);
    net.forward(&x).unwrap();
    let l2 = net.backward(&CrossEntropyLoss::new(), &labels).unwrap();
    assert_eq!(l1, l2);
    let twice: Vec<f32> = once.iter().map(|g| 2.0 * g).collect();
    close("two backward passes through a loss", net.grads(), &twice, 1e-5, 1e-7);
}
