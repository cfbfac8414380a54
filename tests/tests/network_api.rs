//! The core as an outsider uses it: the input gradient (`x.grad`), parameters and buffers by
//! name (`named_parameters()`), BatchNorm's initial running statistics, and the names a
//! `use torchlet::layer::*` brings in.

use torchlet::layer::*;
use torchlet::loss::CrossEntropyLoss;
use torchlet::{Error, Network, Plan, Rng, Shape};

/// A model whose input feeds two consumers (a residual body and the identity shortcut) and a
/// BatchNorm, so the input gradient accumulates from several places.
static BODY: [Layer; 3] = [conv2d(2, 2, 3).padding(1), batch_norm2d(2), tanh()];
static NET: [Layer; 4] = [residual(&BODY, &[]), avg_pool2d(2), flatten(), linear(8, 3)];
const BATCH: usize = 3;
const IN: Shape = Shape::chw(2, 4, 4);
static WITH_GRAD: Plan<7> = Plan::training_with_input_grad(&NET, IN, BATCH);
static PLAIN: Plan<7> = Plan::training(&NET, IN, BATCH);

struct Run {
    params: Vec<f32>,
    grads: Vec<f32>,
    state: Vec<f32>,
    arena: Vec<f32>,
}

impl Run {
    fn new(plan: &Plan<7>) -> Self {
        Run {
            params: vec![0.0; plan.param_len()],
            grads: vec![0.0; plan.param_len()],
            state: vec![0.0; plan.state_len()],
            arena: vec![0.0; plan.arena_len()],
        }
    }
    fn net<'a>(&'a mut self, plan: &'a Plan<7>) -> Network<'a, 7> {
        let mut net = Network::new(
            plan,
            &mut self.params,
            &mut self.grads,
            &mut self.state,
            &mut self.arena,
        )
        .unwrap();
        net.init_params(7).unwrap();
        net
    }
}

const LABELS: [u32; BATCH] = [0, 2, 1];

fn input() -> Vec<f32> {
    let mut rng = Rng::new(3);
    (0..BATCH * IN.numel()).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// The training-mode loss at `x` (fresh network, so BatchNorm's running statistics do not
/// matter: the loss uses batch statistics).
fn loss_at(x: &[f32]) -> f64 {
    let mut run = Run::new(&PLAIN);
    let mut net = run.net(&PLAIN);
    net.forward(x).unwrap();
    f64::from(net.loss(&CrossEntropyLoss::new(), &LABELS).unwrap())
}

#[test]
fn the_input_gradient_matches_finite_differences() {
    let x = input();
    let mut run = Run::new(&WITH_GRAD);
    let mut net = run.net(&WITH_GRAD);
    net.forward(&x).unwrap();
    net.backward(&CrossEntropyLoss::new(), &LABELS).unwrap();
    let gx = net.input_grad().unwrap().to_vec();
    assert_eq!(gx.len(), x.len());
    assert!(gx.iter().any(|&g| g.abs() > 1e-4), "the input gradient is all zeros");
    let h = 1e-2f32;
    for k in (0..x.len()).step_by(5) {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[k] += h;
        xm[k] -= h;
        let numeric = (loss_at(&xp) - loss_at(&xm)) / (2.0 * f64::from(h));
        let diff = (f64::from(gx[k]) - numeric).abs();
        assert!(
            diff <= 2e-3 + 2e-2 * numeric.abs(),
            "x[{k}]: backward {} vs numeric {numeric}",
            gx[k]
        );
    }
}

#[test]
fn asking_for_the_input_gradient_changes_no_parameter_gradient() {
    let x = input();
    let mut a = Run::new(&WITH_GRAD);
    let mut b = Run::new(&PLAIN);
    {
        let mut net = a.net(&WITH_GRAD);
        net.forward(&x).unwrap();
        net.backward(&CrossEntropyLoss::new(), &LABELS).unwrap();
    }
    {
        let mut net = b.net(&PLAIN);
        net.forward(&x).unwrap();
        net.backward(&CrossEntropyLoss::new(), &LABELS).unwrap();
    }
    assert_eq!(a.grads, b.grads);
    assert!(WITH_GRAD.arena_len() >= PLAIN.arena_len());
}

#[test]
fn the_input_gradient_is_refused_when_not_planned_or_not_computed() {
    let x = input();
    let mut run = Run::new(&PLAIN);
    let mut net = run.net(&PLAIN);
    net.forward(&x).unwrap();
    net.backward(&CrossEntropyLoss::new(), &LABELS).unwrap();
    assert!(matches!(net.input_grad(), Err(Error::NotReady { .. })));

    let mut run = Run::new(&WITH_GRAD);
    let mut net = run.net(&WITH_GRAD);
    assert!(matches!(net.input_grad(), Err(Error::NotReady { .. })));
    net.forward(&x).unwrap();
    assert!(
        matches!(net.input_grad(), Err(Error::NotReady { .. })),
        "before backward"
    );
    net.backward(&CrossEntropyLoss::new(), &LABELS).unwrap();
    let first = net.input_grad().unwrap().to_vec();
    // A second step gives the same gradient (not twice it: the gradient is zeroed per pass).
    net.forward(&x).unwrap();
    net.backward(&CrossEntropyLoss::new(), &LABELS).unwrap();
    assert_eq!(net.input_grad().unwrap(), &first[..]);
}

#[test]
fn named_parameters_and_buffers_follow_the_state_dict() {
    let mut run = Run::new(&PLAIN);
    let mut net = run.net(&PLAIN);
    let mut seen = Vec::new();
    let mut total = 0;
    net.named_parameters(|t| {
        seen.push((t.name.to_string(), t.shape.as_slice().to_vec()));
        total += t.data.len();
        Ok(())
    })
    .unwrap();
    let want: Vec<(String, Vec<u64>)> = [
        ("0.body.0.weight", vec![2, 2, 3, 3]),
        ("0.body.0.bias", vec![2]),
        ("0.body.1.weight", vec![2]),
        ("0.body.1.bias", vec![2]),
        ("3.weight", vec![3, 8]),
        ("3.bias", vec![3]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(seen, want);
    assert_eq!(total, PLAIN.param_len());

    let mut buffers = Vec::new();
    net.named_buffers(|t| {
        buffers.push((t.name.to_string(), t.data.to_vec()));
        Ok(())
    })
    .unwrap();
    let names: Vec<&str> = buffers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "0.body.1.running_mean",
            "0.body.1.running_var",
            "0.body.1.num_batches_tracked"
        ]
    );
    assert_eq!(buffers[1].1, [1.0, 1.0], "init_params sets running_var to 1");

    // Loading one tensor by name writes exactly its slice.
    net.parameter_mut("3.bias").unwrap().copy_from_slice(&[5.0, 6.0, 7.0]);
    let n = net.params().len();
    assert_eq!(&net.params()[n - 3..], &[5.0, 6.0, 7.0]);
    assert_eq!(net.buffer_mut("0.body.1.running_mean").unwrap().len(), 2);
    for bad in ["3.bia", "3.bias.x", "", "0.body.1.running_mean"] {
        assert!(
            matches!(net.parameter_mut(bad), Err(Error::InvalidArgument { name: "name", .. })),
            "{bad:?} is not a parameter"
        );
    }
}

#[test]
fn a_fresh_state_buffer_gets_pytorchs_running_statistics_without_touching_weights() {
    let mut run = Run::new(&PLAIN);
    let mut net = Network::new(&PLAIN, &mut run.params, &mut run.grads, &mut run.state, &mut run.arena).unwrap();
    net.params_mut().unwrap().fill(0.25);
    assert!(net.state().iter().all(|&v| v == 0.0));
    net.reset_running_stats().unwrap();
    assert_eq!(net.state(), &[0.0, 0.0, 1.0, 1.0, 0.0]);
    assert!(net.params().iter().all(|&v| v == 0.25), "weights are untouched");
    let mut state = vec![9.0; PLAIN.state_len()];
    PLAIN.init_state(&mut state).unwrap();
    assert_eq!(state, [0.0, 0.0, 1.0, 1.0, 0.0]);
    assert!(matches!(
        PLAIN.init_state(&mut [0.0; 2]),
        Err(Error::BufferLength { .. })
    ));
}

#[test]
fn padding_mode_comes_with_the_layer_prelude() {
    // `PaddingMode` is reachable from `torchlet::layer::*`, where conv builders need it.
    const L: Layer = conv2d(1, 1, 3).padding(1).padding_mode(PaddingMode::Reflect);
    let plan: Plan<1> = Plan::inference(&[L], Shape::chw(1, 4, 4), 1);
    assert_eq!(plan.output_shape(), Shape::chw(1, 4, 4));
}
