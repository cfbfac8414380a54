//! Whole models and state dicts on disk: round trips of random models, name and shape checks,
//! and clear errors for bad files.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use torchlet::layer::*;
use torchlet::{Rng, Shape};
use torchlet_host::model::{LoadReport, Model, ModelError};

fn leak(layers: Vec<Layer>) -> &'static [Layer] {
    Box::leak(layers.into_boxed_slice())
}

fn name(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A random valid model over `[C, H, W]`: convolutions, pools, BatchNorm, dropout, residual
/// blocks (identity and projection shortcuts), concatenation, nested named containers, a
/// classifier head and sometimes a bilinear merge; some layers named.
fn arb_model() -> impl Strategy<Value = (Vec<Layer<'static>>, Shape)> {
    let layer = (0u8..11, 1usize..5, 1usize..4, any::<bool>());
    (
        prop::collection::vec(layer, 1..7),
        1usize..4,
        4usize..9,
        1usize..6,
        0u8..3,
    )
        .prop_map(|(spec, c0, hw, hidden, head)| {
            let mut layers = Vec::new();
            let (mut c, mut h) = (c0, hw);
            for (i, (kind, a, k, named)) in spec.into_iter().enumerate() {
                let l = match kind {
                    0 => {
                        let k = k.min(h);
                        let l = conv2d(c, a, k).padding(k / 2);
                        h = h + 2 * (k / 2) - k + 1;
                        c = a;
                        l
                    }
                    1 => relu(),
                    2 if h >= 2 => {
                        h /= 2;
                        max_pool2d(2)
                    }
                    3 => batch_norm2d(c),
                    4 => residual(leak(vec![conv2d(c, c, 3).padding(1), batch_norm2d(c), relu()]), &[]),
                    5 => {
                        let l = residual(
                            leak(vec![conv2d(c, a, 3).padding(1)]),
                            leak(vec![conv2d(c, a, 1).named("proj")]),
                        );
                        c = a;
                        l
                    }
                    6 => {
                        let l = concat(leak(vec![conv2d(c, a, 1), tanh()]), &[]);
                        c += a;
                        l
                    }
                    7 => dropout(0.3),
                    8 => leaky_relu(0.1),
                    9 => sequential(leak(vec![conv2d(c, c, 1).named("pw"), sigmoid()])),
                    10 if h >= 2 => {
                        h /= 2;
                        avg_pool2d(2)
                    }
                    _ => identity(),
                };
                layers.push(if named { l.named(name(format!("layer{i}"))) } else { l });
            }
            let f = c * h * h;
            layers.push(flatten());
            match head {
                0 => layers.push(lazy_linear(3)),
                1 => {
                    layers.push(linear(f, hidden).named("fc"));
                    layers.push(relu());
                    layers.push(linear(hidden, 3).bias(false));
                }
                _ => layers.push(bilinear(&[], leak(vec![linear(f, hidden)]), f, hidden, 3).named("bil")),
            }
            (layers, Shape::chw(c0, hw, hw))
        })
}

fn random_vec(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn mlp(hidden: usize) -> &'static [Layer<'static>] {
    leak(vec![flatten(), linear(16, hidden), relu(), linear(hidden, 3)])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn random_models_round_trip_with_identical_outputs(
        (layers, input) in arb_model(),
        seed in any::<u64>(),
        batch in 1usize..3,
        classes in prop::collection::vec("[a-zé ]{0,8}", 0..4),
    ) {
        let layers = leak(layers);
        let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
        let mut m = Model::new("random net", layers, input, &classes, seed).unwrap();
        // BatchNorm running statistics away from their initial values.
        m.state = random_vec(m.state.len(), seed ^ 1, 0.5, 2.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.tlm");
        m.save(&path).unwrap();
        let back = Model::load(&path).unwrap();
        prop_assert_eq!(&back, &m);
        let x = random_vec(batch * input.numel(), seed ^ 2, -1.0, 1.0);
        prop_assert_eq!(bits(&back.forward(&x).unwrap()), bits(&m.forward(&x).unwrap()));

        // The state dict alone loads into a fresh model of the same architecture.
        let sd = dir.path().join("weights.tlm");
        m.save_state_dict(&sd).unwrap();
        let mut fresh = Model::new("random net", layers, input, &classes, seed.wrapping_add(1)).unwrap();
        prop_assert_eq!(fresh.load_state_dict(&sd, true).unwrap(), LoadReport::default());
        prop_assert_eq!(&fresh, &m);
    }
}

#[test]
fn state_dict_of_another_shape_names_the_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.tlm");
    Model::new("a", mlp(8), Shape::features(16), &[], 1)
        .unwrap()
        .save_state_dict(&path)
        .unwrap();
    let mut other = Model::new("b", mlp(4), Shape::features(16), &[], 2).unwrap();
    let before = other.clone();
    let e = other.load_state_dict(&path, true).unwrap_err();
    assert!(matches!(e, ModelError::ShapeMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("weights.tlm"), "{msg}");
    assert!(msg.contains("'1.weight'"), "{msg}");
    assert!(
        msg.contains("[8, 16] in the file") && msg.contains("[4, 16] in the model"),
        "{msg}"
    );
    // Non-strict loading does not excuse a shape mismatch (as PyTorch), and nothing changed.
    assert!(other.load_state_dict(&path, false).is_err());
    assert_eq!(other, before);
}

#[test]
fn strict_loading_rejects_missing_and_unexpected_keys_non_strict_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let small_path = dir.path().join("small.tlm");
    let big_path = dir.path().join("big.tlm");
    let small = Model::new("small", mlp(8), Shape::features(16), &[], 1).unwrap();
    small.save_state_dict(&small_path).unwrap();
    let big_layers = leak(vec![
        flatten(),
        linear(16, 8),
        relu(),
        linear(8, 3),
        relu(),
        linear(3, 2).named("extra"),
    ]);
    let mut big = Model::new("big", big_layers, Shape::features(16), &[], 2).unwrap();
    big.save_state_dict(&big_path).unwrap();

    let before = big.clone();
    let e = big.load_state_dict(&small_path, true).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("small.tlm") && msg.contains("\"extra.weight\", \"extra.bias\""),
        "{msg}"
    );
    assert_eq!(big, before, "a failed load changes nothing");

    let report = big.load_state_dict(&small_path, false).unwrap();
    assert_eq!(report.missing, ["extra.weight", "extra.bias"]);
    assert!(report.unexpected.is_empty());
    let n = small.params.len();
    assert_eq!(big.params[..n], small.params[..], "the matching tensors were loaded");
    assert_eq!(
        big.params[n..],
        before.params[n..],
        "the missing ones kept their values"
    );

    let mut small2 = small.clone();
    let e = small2.load_state_dict(&big_path, true).unwrap_err().to_string();
    assert!(e.contains("unexpected key(s)") && e.contains("\"extra.bias\""), "{e}");
    let report = small2.load_state_dict(&big_path, false).unwrap();
    assert_eq!(report.unexpected, ["extra.bias", "extra.weight"]);
    assert_eq!(small2.params[..], before.params[..n]);
}

#[test]
fn a_whole_model_file_also_serves_as_a_state_dict_but_not_the_other_way_round() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.tlm");
    let sd = dir.path().join("sd.tlm");
    let m = Model::from_zoo("digits-cnn", 5).unwrap();
    m.save(&whole).unwrap();
    m.save_state_dict(&sd).unwrap();
    let mut fresh = Model::from_zoo("digits-cnn", 6).unwrap();
    fresh.load_state_dict(&whole, true).unwrap();
    assert_eq!(fresh, m);
    let e = Model::load(&sd).unwrap_err();
    assert!(matches!(e, ModelError::Kind { .. }), "{e:?}");
    assert!(
        e.to_string().contains("sd.tlm") && e.to_string().contains("state dict"),
        "{e}"
    );
}

fn load_err(path: &Path) -> String {
    let e = Model::load(path).unwrap_err();
    assert!(matches!(e, ModelError::File { .. }), "{e:?}");
    e.to_string()
}

#[test]
fn truncated_corrupted_and_foreign_files_name_the_file_and_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits.tlm");
    Model::from_zoo("digits-cnn", 0).unwrap().save(&path).unwrap();
    let good = fs::read(&path).unwrap();
    let bad = dir.path().join("bad.tlm");

    for cut in [0, 5, 8, 23, 24, 100, good.len() / 2, good.len() - 1] {
        fs::write(&bad, &good[..cut]).unwrap();
        let msg = load_err(&bad);
        assert!(msg.starts_with(&format!("{}: model file: ", bad.display())), "{msg}");
        assert!(
            msg.contains("magic") || msg.contains("file length") || msg.contains("length"),
            "cut {cut}: {msg}"
        );
    }
    // A flipped bit in the weights: only the CRC can tell.
    let mut flipped = good.clone();
    let at = good.len() - 100;
    flipped[at] ^= 0x10;
    fs::write(&bad, &flipped).unwrap();
    let msg = load_err(&bad);
    assert!(msg.contains("bad.tlm: model file: crc"), "{msg}");
    // Not a model file at all.
    fs::write(&bad, b"PK\x03\x04 a zip file, say, with enough bytes to have a header").unwrap();
    let msg = load_err(&bad);
    assert!(msg.contains("bad.tlm: model file: magic"), "{msg}");
    // A file that is not there.
    let e = Model::load(&dir.path().join("nope.tlm")).unwrap_err();
    assert!(
        matches!(e, ModelError::Io(_)) && e.to_string().contains("nope.tlm"),
        "{e}"
    );
}

#[test]
fn saving_is_atomic_a_failed_save_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.tlm");
    let m = Model::from_zoo("digits-cnn", 0).unwrap();
    m.save(&path).unwrap();
    let old = fs::read(&path).unwrap();
    // An invalid model (wrong number of weights) fails before anything is written.
    let mut broken = m.clone();
    broken.params.pop();
    let e = broken.save(&path).unwrap_err();
    assert!(e.to_string().contains("parameter buffer"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), old);
    // A good save replaces the file, leaving nothing else behind.
    let m2 = Model::from_zoo("digits-cnn", 1).unwrap();
    m2.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), m2);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["model.tlm"]);
    // A directory that does not exist: the error names it.
    let e = m.save(&dir.path().join("missing").join("model.tlm")).unwrap_err();
    assert!(
        matches!(e, ModelError::Io(_)) && e.to_string().contains("missing"),
        "{e}"
    );
}

/// A model file whose weights hold a NaN or an infinity is refused at load (as a whole model,
/// as a state dict and as `--init-from`'s source), naming the file and the tensor; `predict`
/// fails with that message instead of printing `NaN%`.
#[test]
fn non_finite_weights_are_refused_at_load_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model::from_zoo("digits-cnn", 0).unwrap();
    let last = m.params.len() - 1;
    m.params[last] = f32::NAN;
    let path = dir.path().join("nan.tlm");
    m.save(&path).unwrap();
    let e = Model::load(&path).unwrap_err();
    assert!(matches!(e, ModelError::NonFinite { index: 9, .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("nan.tlm") && msg.contains("tensor '7.bias'") && msg.contains("non-finite"),
        "{msg}"
    );

    let mut target = Model::from_zoo("digits-cnn", 1).unwrap();
    let before = target.params.clone();
    assert!(matches!(
        target.load_state_dict(&path, true),
        Err(ModelError::NonFinite { .. })
    ));
    assert_eq!(target.params, before, "a refused load changes nothing");

    m.params[last] = 0.0;
    m.state.clear();
    m.params[0] = f32::INFINITY;
    m.save(&path).unwrap();
    let e = Model::load(&path).unwrap_err();
    assert!(
        e.to_string().contains("tensor '0.weight'") && e.to_string().contains("inf at element 0"),
        "{e}"
    );

    let png = dir.path().join("x.png");
    image::GrayImage::new(8, 8).save(&png).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(["predict", "--model"])
        .arg(&path)
        .arg(&png)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("tensor '0.weight'") && !err.contains("panicked"),
        "{err}"
    );
}

/// `predict a.png broken.png b.png`: the unreadable image gets its own error line, the others
/// are still classified, and the exit status is 1 at the end.
#[test]
fn one_unreadable_image_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.tlm");
    Model::from_zoo("digits-cnn", 0).unwrap().save(&model).unwrap();
    let (a, broken, b) = (
        dir.path().join("a.png"),
        dir.path().join("broken.png"),
        dir.path().join("b.png"),
    );
    image::GrayImage::new(8, 8).save(&a).unwrap();
    image::GrayImage::from_pixel(8, 8, image::Luma([200])).save(&b).unwrap();
    fs::write(&broken, b"not a png").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(["predict", "--device", "cpu", "--model"])
        .args([&model, &a, &broken, &b])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("{}: ", a.display())) && lines[1].starts_with(&format!("{}: ", b.display())),
        "{out}"
    );
    assert!(
        err.contains(&format!("{}: cannot open the image", broken.display())),
        "{err}"
    );
    assert!(
        err.contains("1 of 3 images could not be read") && !err.contains("panicked"),
        "{err}"
    );
}
