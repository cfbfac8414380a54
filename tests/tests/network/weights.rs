//! Read-only weights, and models that grow by a layer.

use super::*;
#[allow(unused_imports)]
use crate::{errors::*, graphs::*, init::*, modes::*};

// ---------------------------------------------------------------------------------------------
// Read-only weights
// ---------------------------------------------------------------------------------------------

#[test]
pub(crate) fn read_only_weights_run_inference_only() {
    const WRITABLE: Error = Error::NotReady {
        what: "writable weights (these are read-only)",
    };
    let x = rand_vec(2 * 16, 80);
    let mut tb = Bufs::new(&SMALL_TRAIN);
    let mut tnet = tb.net(&SMALL_TRAIN);
    randomize(&mut tnet, 81);
    tnet.eval();
    let want = tnet.forward(&x).unwrap().to_vec();
    let (params, state) = (tnet.params().to_vec(), tnet.state().to_vec());

    let mut arena = vec![0.0; SMALL_INFER.arena_len()];
    assert_eq!(
        Network::with_weights(&SMALL_TRAIN, &params, &state, &mut arena).err(),
        Some(Error::NotReady {
            what: "an inference plan (read-only weights cannot train)"
        })
    );
    assert_eq!(
        Network::with_weights(&SMALL_INFER, &params[1..], &state, &mut arena).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Params,
            expected: params.len(),
            found: params.len() - 1
        })
    );
    assert_eq!(
        Network::with_weights(&SMALL_INFER, &params, &state[1..], &mut arena).err(),
        Some(Error::BufferLength {
            buffer: Buffer::State,
            expected: state.len(),
            found: state.len() - 1
        })
    );
    let mut short = vec![0.0; SMALL_INFER.arena_len() - 1];
    assert_eq!(
        Network::with_weights(&SMALL_INFER, &params, &state, &mut short).err(),
        Some(Error::BufferLength {
            buffer: Buffer::Arena,
            expected: SMALL_INFER.arena_len(),
            found: short.len()
        })
    );
    let mut net = Network::with_weights(&SMALL_INFER, &params, &state, &mut arena).unwrap();
    assert!(!net.is_training());
    close("read-only weights", net.forward(&x).unwrap(), &want, 1e-6, 0.0);
    assert_eq!(net.train().err(), Some(TRAINING_PLAN_NEEDED));
    assert_eq!(net.init_params(0).err(), Some(WRITABLE));
    assert_eq!(net.params_mut().err(), Some(WRITABLE));
    assert_eq!(net.state_mut().err(), Some(WRITABLE));
    assert_eq!(net.backward_from(&[0.0; 6]).err(), Some(TRAINING_PLAN_NEEDED));
    assert_eq!(net.params(), &params[..]);
}

/// `Network::init_params` draws layer `i` from stream `i`: appending layers keeps the initial
/// weights of the layers before them (as its documentation says).
#[test]
pub(crate) fn appending_a_layer_keeps_the_earlier_layers_initial_weights() {
    const A: [Layer; 2] = [linear(4, 3), linear(3, 2)];
    const B: [Layer; 4] = [linear(4, 3), linear(3, 2), relu(), linear(2, 2)];
    const PA: Plan<2> = Plan::training(&A, Shape::features(4), 1);
    const PB: Plan<4> = Plan::training(&B, Shape::features(4), 1);
    let mut ba = Bufs::new(&PA);
    let mut na = ba.net(&PA);
    na.init_params(1).unwrap();
    let mut bb = Bufs::new(&PB);
    let mut nb = bb.net(&PB);
    nb.init_params(1).unwrap();
    assert_eq!(na.params(), &nb.params()[..PA.param_len()]);
    // A different seed gives different weights.
    nb.init_params(2).unwrap();
    assert_ne!(na.params(), &nb.params()[..PA.param_len()]);
}
