//! Optimisers and learning-rate schedules: PyTorch trajectories (`tools/fixtures/optim.py`),
//! random hyper-parameters against an f64 reference of the documented update rules (proptest),
//! checkpoint/resume, and the errors an invalid hyper-parameter or buffer must give.

use proptest::prelude::*;
use serde_json::Value;
use torchlet::optim::{zero_grad, Adam, CosineAnnealingLr, LrScheduler, Optimizer, Sgd, StepLr};
use torchlet::{Buffer, Error, Rng};
use torchlet_tests::{assert_close, check_close, floats, load_fixture};

fn f(config: &Value, key: &str, default: f32) -> f32 {
    config.get(key).and_then(Value::as_f64).map_or(default, |v| v as f32)
}

fn flag(config: &Value, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The optimiser a fixture entry describes, behind the trait as a training loop holds it.
fn fixture_optimizer(kind: &str, c: &Value) -> Box<dyn Optimizer> {
    let lr = f(c, "lr", f32::NAN);
    match kind {
        "sgd" => Box::new(
            Sgd::new(lr)
                .momentum(f(c, "momentum", 0.0))
                .dampening(f(c, "dampening", 0.0))
                .weight_decay(f(c, "weight_decay", 0.0))
                .nesterov(flag(c, "nesterov")),
        ),
        "adam" | "adamw" => {
            let mut a = if kind == "adam" { Adam::new(lr) } else { Adam::adamw(lr) };
            if let Some(b) = c.get("betas") {
                let b = floats(b);
                a = a.betas(b[0], b[1]);
            }
            a = a
                .eps(f(c, "eps", a.eps))
                .weight_decay(f(c, "weight_decay", a.weight_decay));
            Box::new(a.amsgrad(flag(c, "amsgrad")))
        }
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn pytorch_trajectories() {
    let fx = load_fixture("optim.json");
    let params0 = floats(&fx["params"]);
    let grads: Vec<Vec<f32>> = fx["grads"].as_array().unwrap().iter().map(floats).collect();
    let entries = fx["optimizers"].as_array().unwrap();
    assert!(entries.len() >= 10);
    for e in entries {
        let kind = e["kind"].as_str().unwrap();
        let what = format!("{kind} {}", e["config"]);
        let mut opt = fixture_optimizer(kind, &e["config"]);
        let mut params = params0.clone();
        let mut state = vec![0.0; opt.state_len(params.len())];
        let after = e["params_after"].as_array().unwrap();
        assert_eq!(after.len(), grads.len());
        for (t, (g, expected)) in grads.iter().zip(after).enumerate() {
            opt.step(&mut params, g, &mut state).unwrap();
            assert_close(
                &format!("{what}: step {}", t + 1),
                &params,
                &floats(expected),
                1e-5,
                1e-6,
            );
        }
        assert_eq!(opt.steps(), grads.len() as u64);
    }
}

#[test]
fn pytorch_schedules() {
    let fx = load_fixture("optim.json");
    for s in fx["schedules"].as_array().unwrap() {
        let c = &s["config"];
        let base = s["base_lr"].as_f64().unwrap() as f32;
        let schedule: Box<dyn LrScheduler> = match s["kind"].as_str().unwrap() {
            "step" => Box::new(StepLr::new(c["step_size"].as_u64().unwrap() as usize).gamma(f(c, "gamma", 0.1))),
            "cosine" => {
                Box::new(CosineAnnealingLr::new(c["T_max"].as_u64().unwrap() as usize).eta_min(f(c, "eta_min", 0.0)))
            }
            other => panic!("unknown schedule {other}"),
        };
        let expected = floats(&s["lrs"]);
        assert_eq!(expected.len(), 21);
        let got: Vec<f32> = (0..expected.len()).map(|e| schedule.lr_at(base, e)).collect();
        // PyTorch's cosine schedule is recursive; near its minimum (lr == eta_min == 0) the
        // difference of the two forms is ~1e-18 absolute.
        assert_close(&format!("{} {c}", s["kind"]), &got, &expected, 1e-5, 1e-9);
    }
}

#[test]
fn schedules_by_hand() {
    let step = StepLr::new(2).gamma(0.5);
    let lrs: Vec<f32> = (0..6).map(|e| step.lr_at(1.0, e)).collect();
    assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    let cos = CosineAnnealingLr::new(4).eta_min(0.1);
    assert_close(
        "cosine",
        &[
            cos.lr_at(1.0, 0),
            cos.lr_at(1.0, 2),
            cos.lr_at(1.0, 4),
            cos.lr_at(1.0, 6),
        ],
        &[1.0, 0.55, 0.1, 0.55],
        1e-6,
        0.0,
    );
    // Degenerate settings PyTorch rejects do not panic here.
    assert_eq!(StepLr::new(0).lr_at(0.1, 5), 0.1);
    assert_eq!(CosineAnnealingLr::new(0).lr_at(0.1, 5), 0.1);
}

// ---------------------------------------------------------------------------------------------
// An f64 reference of the update rules as torch.optim documents them.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct SgdRef {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
}

fn sgd_reference(h: SgdRef, p: &mut [f64], grads: &[Vec<f32>]) {
    let mut b = vec![0.0; p.len()];
    for (t, g) in grads.iter().enumerate() {
        for i in 0..p.len() {
            let mut g = g[i] as f64 + h.weight_decay * p[i];
            if h.momentum != 0.0 {
                b[i] = if t == 0 {
                    g
                } else {
                    h.momentum * b[i] + (1.0 - h.dampening) * g
                };
                g = if h.nesterov { g + h.momentum * b[i] } else { b[i] };
            }
            p[i] -= h.lr * g;
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct AdamRef {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
}

fn adam_reference(h: AdamRef, p: &mut [f64], grads: &[Vec<f32>]) {
    let n = p.len();
    let (mut m, mut v, mut v_max) = (vec![0.0; n], vec![0.0; n], vec![0.0f64; n]);
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        for i in 0..n {
            let mut g = g[i] as f64;
            if h.decoupled {
                p[i] -= h.lr * h.weight_decay * p[i];
            } else {
                g += h.weight_decay * p[i];
            }
            m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g;
            v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g * g;
            let m_hat = m[i] / (1.0 - h.beta1.powi(t));
            v_max[i] = v_max[i].max(v[i]);
            let v_hat = if h.amsgrad { v_max[i] } else { v[i] } / (1.0 - h.beta2.powi(t));
            p[i] -= h.lr * m_hat / (v_hat.sqrt() + h.eps);
        }
    }
}

/// Parameters and `steps` gradients of magnitude 1e-2 to 2 with random signs, some zero.
fn problem(seed: u64, n: usize, steps: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut rng = Rng::new(seed);
    let params = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let grads = (0..steps)
        .map(|_| {
            (0..n)
                .map(|_| match rng.below(8) {
                    0 => 0.0,
                    k => rng.uniform(0.01, 2.0) * if k % 2 == 0 { 1.0 } else { -1.0 },
                })
                .collect()
        })
        .collect();
    (params, grads)
}

fn run(opt: &mut dyn Optimizer, params: &mut [f32], grads: &[Vec<f32>]) {
    let mut state = vec![0.0; opt.state_len(params.len())];
    for g in grads {
        opt.step(params, g, &mut state).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sgd_matches_reference(
        seed: u64,
        n in 1usize..20,
        steps in 1usize..8,
        lr in 0.0f32..0.5,
        momentum in prop::sample::select(vec![0.0f32, 0.5, 0.9, 0.99]),
        dampening in prop::sample::select(vec![0.0f32, 0.1, 0.5]),
        weight_decay in prop::sample::select(vec![0.0f32, 1e-4, 0.1]),
        nesterov: bool,
    ) {
        // PyTorch's rule: Nesterov needs momentum and no dampening.
        let nesterov = nesterov && momentum > 0.0;
        let dampening = if nesterov { 0.0 } else { dampening };
        let (params, grads) = problem(seed, n, steps);
        let mut got = params.clone();
        let mut sgd = Sgd::new(lr).momentum(momentum).dampening(dampening)
            .weight_decay(weight_decay).nesterov(nesterov);
        run(&mut sgd, &mut got, &grads);
        let mut want: Vec<f64> = params.iter().map(|&p| p as f64).collect();
        let h = SgdRef {
            lr: lr as f64, momentum: momentum as f64, dampening: dampening as f64,
            weight_decay: weight_decay as f64, nesterov,
        };
        sgd_reference(h, &mut want, &grads);
        let want: Vec<f32> = want.iter().map(|&p| p as f32).collect();
        check_close("sgd", &got, &want, 1e-4, 1e-5).map_err(TestCaseError::fail)?;
        prop_assert_eq!(sgd.steps(), steps as u64);
    }

    #[test]
    fn adam_matches_reference(
        seed: u64,
        n in 1usize..20,
        steps in 1usize..8,
        lr in 1e-4f32..0.1,
        beta1 in prop::sample::select(vec![0.0f32, 0.5, 0.9]),
        beta2 in prop::sample::select(vec![0.9f32, 0.99, 0.999]),
        eps in prop::sample::select(vec![1e-8f32, 1e-6, 1e-3]),
        weight_decay in prop::sample::select(vec![0.0f32, 0.01, 0.5]),
        amsgrad: bool,
        decoupled: bool,
    ) {
        let (params, grads) = problem(seed, n, steps);
        let mut got = params.clone();
        let mut adam = Adam::new(lr).betas(beta1, beta2).eps(eps).weight_decay(weight_decay)
            .amsgrad(amsgrad).decoupled_weight_decay(decoupled);
        run(&mut adam, &mut got, &grads);
        let mut want: Vec<f64> = params.iter().map(|&p| p as f64).collect();
        let h = AdamRef {
            lr: lr as f64, beta1: beta1 as f64, beta2: beta2 as f64, eps: eps as f64,
            weight_decay: weight_decay as f64, amsgrad, decoupled,
        };
        adam_reference(h, &mut want, &grads);
        let want: Vec<f32> = want.iter().map(|&p| p as f32).collect();
        check_close("adam", &got, &want, 1e-4, 1e-5).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints, state, errors.
// ---------------------------------------------------------------------------------------------

/// Stopping after `k` steps, saving params, state and `steps()`, and resuming in a fresh
/// optimiser gives exactly the uninterrupted trajectory.
fn check_resume<O: Optimizer + Copy>(fresh: O) {
    let (params0, grads) = problem(7, 5, 6);
    let mut straight = fresh;
    let mut p_straight = params0.clone();
    run(&mut straight, &mut p_straight, &grads);

    let mut first = fresh;
    let mut p = params0;
    let mut state = vec![0.0; first.state_len(p.len())];
    for g in &grads[..3] {
        first.step(&mut p, g, &mut state).unwrap();
    }
    let (saved_steps, saved_state) = (first.steps(), state.clone());
    let mut resumed = fresh;
    resumed.set_steps(saved_steps);
    let mut state = saved_state;
    for g in &grads[3..] {
        resumed.step(&mut p, g, &mut state).unwrap();
    }
    assert_eq!(p, p_straight);
    assert_eq!(resumed.steps(), 6);
}

#[test]
fn resume_from_checkpoint() {
    check_resume(Sgd::new(0.1).momentum(0.9).dampening(0.2));
    check_resume(Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
    check_resume(Adam::new(0.01).amsgrad(true).weight_decay(0.1));
    check_resume(Adam::adamw(0.01));
}

#[test]
fn state_lengths_and_defaults() {
    assert_eq!(Sgd::new(0.1).state_len(10), 0);
    assert_eq!(Sgd::new(0.1).momentum(0.9).state_len(10), 10);
    assert_eq!(Adam::new(1e-3).state_len(10), 20);
    assert_eq!(Adam::new(1e-3).amsgrad(true).state_len(10), 30);
    let a = Adam::default();
    assert_eq!(
        (a.lr, a.betas, a.eps, a.weight_decay, a.amsgrad),
        (1e-3, (0.9, 0.999), 1e-8, 0.0, false)
    );
    assert!(!a.decoupled_weight_decay);
    let w = Adam::adamw(1e-3);
    assert_eq!((w.weight_decay, w.decoupled_weight_decay), (0.01, true));
    let s = Sgd::new(0.1);
    assert_eq!(
        (s.momentum, s.dampening, s.weight_decay, s.nesterov),
        (0.0, 0.0, 0.0, false)
    );
}

#[test]
fn first_sgd_step_ignores_stale_momentum_state() {
    // PyTorch creates the momentum buffer as a copy of the first gradient.
    let mut sgd = Sgd::new(1.0).momentum(0.9).dampening(0.5);
    let mut p = [0.0f32, 0.0];
    let mut state = [123.0f32, -7.0];
    sgd.step(&mut p, &[1.0, 2.0], &mut state).unwrap();
    assert_eq!(p, [-1.0, -2.0]);
    assert_eq!(state, [1.0, 2.0]);
    sgd.step(&mut p, &[1.0, 2.0], &mut state).unwrap();
    // b = 0.9 b + 0.5 g
    assert_eq!(state, [1.4, 2.8]);
    assert_eq!(p, [-2.4, -4.8]);
}

#[test]
fn lr_accessors_and_zero_grad() {
    let mut sgd = Sgd::new(0.1);
    sgd.set_lr(0.5);
    assert_eq!((sgd.lr(), sgd.lr), (0.5, 0.5));
    let mut adam = Adam::new(0.1);
    adam.set_lr(0.01);
    assert_eq!(adam.lr(), 0.01);
    let mut g = [1.0f32, -2.0, f32::NAN];
    zero_grad(&mut g);
    assert_eq!(g, [0.0; 3]);
}

fn invalid(name: &'static str, expected: &'static str) -> Result<(), Error> {
    Err(Error::InvalidArgument { name, expected })
}

/// `opt.step` fails with `err` and touches nothing.
fn assert_rejected(mut opt: impl Optimizer, err: Result<(), Error>) {
    let mut p = [1.0f32, 2.0];
    let mut state = vec![0.5; opt.state_len(2)];
    let state0 = state.clone();
    assert_eq!(opt.step(&mut p, &[0.1, 0.2], &mut state), err);
    assert_eq!(p, [1.0, 2.0]);
    assert_eq!(state, state0);
    assert_eq!(opt.steps(), 0);
}

#[test]
fn invalid_hyper_parameters() {
    let lr = invalid("lr", "must be finite and >= 0");
    for bad in [-0.1, f32::NAN, f32::INFINITY] {
        assert_rejected(Sgd::new(bad), lr);
        assert_rejected(Adam::new(bad), lr);
    }
    assert_rejected(Sgd::new(0.1).momentum(-0.5), invalid("momentum", "must be >= 0"));
    assert_rejected(
        Sgd::new(0.1).weight_decay(-1.0),
        invalid("weight_decay", "must be >= 0"),
    );
    let nesterov = invalid("nesterov", "momentum requires a momentum and zero dampening");
    assert_rejected(Sgd::new(0.1).nesterov(true), nesterov);
    assert_rejected(Sgd::new(0.1).momentum(0.9).dampening(0.1).nesterov(true), nesterov);
    assert_rejected(Adam::new(0.1).eps(-1e-8), invalid("eps", "must be >= 0"));
    assert_rejected(
        Adam::new(0.1).weight_decay(-0.1),
        invalid("weight_decay", "must be >= 0"),
    );
    for bad in [1.0, -0.1, f32::NAN] {
        assert_rejected(
            Adam::new(0.1).betas(bad, 0.999),
            invalid("betas[0]", "must be in [0, 1)"),
        );
        assert_rejected(Adam::new(0.1).betas(0.9, bad), invalid("betas[1]", "must be in [0, 1)"));
    }
    // Boundary values PyTorch accepts.
    let mut p = [1.0f32];
    assert!(Adam::new(0.0)
        .betas(0.0, 0.0)
        .eps(0.0)
        .step(&mut p, &[1.0], &mut [0.0; 2])
        .is_ok());
    assert!(Sgd::new(0.0).step(&mut p, &[1.0], &mut []).is_ok());
}

#[test]
fn wrong_buffer_lengths() {
    let err = |buffer, expected, found| {
        Err(Error::BufferLength {
            buffer,
            expected,
            found,
        })
    };
    let mut p = [1.0f32; 4];
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    assert_eq!(sgd.step(&mut p, &[0.0; 3], &mut [0.0; 4]), err(Buffer::Grads, 4, 3));
    assert_eq!(
        sgd.step(&mut p, &[0.0; 4], &mut [0.0; 3]),
        err(Buffer::OptimizerState, 4, 3)
    );
    assert_eq!(
        Sgd::new(0.1).step(&mut p, &[0.0; 4], &mut [0.0; 4]),
        err(Buffer::OptimizerState, 0, 4)
    );
    let mut adam = Adam::new(0.1).amsgrad(true);
    assert_eq!(
        adam.step(&mut p, &[0.0; 4], &mut [0.0; 8]),
        err(Buffer::OptimizerState, 12, 8)
    );
    assert_eq!(adam.step(&mut p, &[0.0; 5], &mut [0.0; 12]), err(Buffer::Grads, 4, 5));
    assert_eq!(p, [1.0; 4]);
    assert_eq!((sgd.steps(), adam.steps()), (0, 0));
}
