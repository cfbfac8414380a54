//! The model zoo against PyTorch, and transfer learning (`--num-classes`, `--init-from`)
//! through the library and the `torchlet` binary.
//!
//! `tests/fixtures/zoo_params.json` holds, for every zoo model written in plain PyTorch
//! (`tools/fixtures/zoo_params.py`), the parameter count, every parameter's shape in
//! `model.parameters()` order, the buffer count and the output shape, for 10 and 100 classes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use torchlet::model_file::{ModelFile, Role};
use torchlet::{Mode, Shape};
use torchlet_host::model::Model;
use torchlet_host::zoo::{self, ZooConfig, ZOO};

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/zoo_params.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("zoo_params.json is JSON")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|d| d.as_u64().expect("a whole number") as usize)
        .collect()
}

/// The shape of each parameter tensor, in the model's order, from its own state-dict table.
fn param_shapes(m: &Model) -> Vec<Vec<usize>> {
    let bytes = m.state_dict_bytes().unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    file.tensors()
        .filter(|t| t.role == Role::Parameter)
        .map(|t| t.dims().iter().map(|&d| d as usize).collect())
        .collect()
}

/// Checks `m` against one fixture entry (`param_count`, `param_shapes`, `buffer_count`,
/// `output_shape`) and runs a batch of 2 through it.
fn check(name: &str, m: &Model, want: &Value) {
    assert_eq!(
        m.param_count(),
        want["param_count"].as_u64().unwrap() as usize,
        "{name}"
    );
    let shapes: Vec<Vec<usize>> = want["param_shapes"].as_array().unwrap().iter().map(usizes).collect();
    assert_eq!(param_shapes(m), shapes, "{name}: parameter shapes in order");
    // BatchNorm: running_mean, running_var and num_batches_tracked, as torchlet's state.
    assert_eq!(m.state.len(), want["buffer_count"].as_u64().unwrap() as usize, "{name}");
    let plan = m.plan(2, Mode::Inference).unwrap();
    assert_eq!(plan.output_shape().dims(), usizes(&want["output_shape"]), "{name}");
    let n = m.input.numel();
    let x: Vec<f32> = (0..2 * n).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
    let y = m.forward(&x).unwrap();
    assert_eq!(y.len(), 2 * plan.output_shape().numel(), "{name}");
    assert!(y.iter().all(|v| v.is_finite()), "{name}: non-finite output {y:?}");
    // Not a constant function: the two samples give different logits.
    let k = y.len() / 2;
    assert_ne!(y[..k], y[k..], "{name}");
}

#[test]
fn every_zoo_model_has_pytorchs_parameters_and_a_finite_forward_pass() {
    let fx = fixture();
    let entries = fx.as_object().unwrap();
    let mut names: Vec<&str> = ZOO.iter().map(|z| z.name).collect();
    let mut in_fixture: Vec<&str> = entries.keys().map(String::as_str).collect();
    names.sort_unstable();
    in_fixture.sort_unstable();
    assert_eq!(names, in_fixture, "the fixture covers exactly the zoo");
    for z in &ZOO {
        let want = &fx[z.name];
        assert_eq!(z.input.dims(), usizes(&want["input"]), "{}", z.name);
        assert_eq!(z.classes.len(), want["num_classes"].as_u64().unwrap() as usize);
        let m = Model::from_zoo(z.name, 0).unwrap();
        check(z.name, &m, want);
        let cfg = ZooConfig {
            num_classes: Some(100),
            ..ZooConfig::default()
        };
        let m100 = zoo::build(z.name, &cfg, 0).unwrap();
        assert!(
            m100.classes.is_empty(),
            "{}: the zoo's class names are for 10 classes",
            z.name
        );
        check(&format!("{} (100 classes)", z.name), &m100, &want["classes_100"]);
    }
}

#[test]
fn the_documented_sizes_hold() {
    // tutorial-cnn and digits-cnn are unchanged.
    assert_eq!(Model::from_zoo("tutorial-cnn", 0).unwrap().param_count(), 145_578);
    assert_eq!(Model::from_zoo("digits-cnn", 0).unwrap().param_count(), 6_090);
    // mcu-cnn: the activation arena of batch-1 inference (fused: 75,264 bytes unfused).
    let mcu = Model::from_zoo("mcu-cnn", 0).unwrap();
    let bytes = |m: &Model| 4 * m.plan(1, Mode::Inference).unwrap().arena_len();
    assert_eq!(bytes(&mcu), 34_496);
    let cfg = ZooConfig {
        size: Some((8, 8)),
        ..ZooConfig::default()
    };
    let small = zoo::build("mcu-cnn", &cfg, 0).unwrap();
    assert_eq!(small.input, Shape::chw(1, 8, 8));
    assert_eq!(bytes(&small), 3_584);
}

fn torchlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torchlet"))
        .args(args)
        .output()
        .expect("the torchlet binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// `root/{train,test}/{class}/i.png`: 16×16 RGB images, class `k` a bright square at the
/// `k`-th of five places on a dark background, with seeded noise (at most 5 classes).
fn image_folder(root: &Path, classes: usize, per_class: usize) -> PathBuf {
    let places = [(0, 0), (8, 0), (0, 8), (8, 8), (4, 4)];
    for (part, n, seed) in [("train", per_class, 0u64), ("test", 4, 1000)] {
        for (k, &(x0, y0)) in places.iter().enumerate().take(classes) {
            let dir = root.join(part).join(format!("class{k}"));
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let mut rng = torchlet::Rng::new(seed + (k * 100 + i) as u64);
                let img = image::RgbImage::from_fn(16, 16, |x, y| {
                    let on = (x0..x0 + 8).contains(&x) && (y0..y0 + 8).contains(&y);
                    let v = ((if on { 200.0 } else { 40.0 }) + rng.uniform(-20.0, 20.0)) as u8;
                    image::Rgb([v, v, v])
                });
                img.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    root.to_path_buf()
}

#[test]
fn init_from_transfers_everything_but_a_head_of_another_class_count() {
    let dir = tempfile::tempdir().unwrap();
    let three = image_folder(&dir.path().join("three"), 3, 12);
    let five = image_folder(&dir.path().join("five"), 5, 12);
    // A source model: digits-cnn on the 3-class folder (RGB, so 3 input channels, 8×8).
    let src = dir.path().join("src");
    let o = torchlet(&[
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&three),
        "--model",
        "digits-cnn",
        "--epochs",
        "1",
        "--out",
        s(&src),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let source = Model::load(&src.join("last.tlm")).unwrap();
    assert_eq!((source.input, source.classes.len()), (Shape::chw(3, 8, 8), 3));

    // Transfer to 5 classes (the folder's count: the default of --num-classes). With lr 0 the
    // weights stay as loaded, so the saved model shows exactly what --init-from did.
    let dst = dir.path().join("dst");
    let o = torchlet(&[
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&five),
        "--model",
        "digits-cnn",
        "--init-from",
        s(&src.join("last.tlm")),
        "--epochs",
        "1",
        "--lr",
        "0",
        "--out",
        s(&dst),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("loaded 4 tensors: 0.weight, 0.bias, 3.weight, 3.bias"),
        "{text}"
    );
    assert!(
        text.contains("replaced the classifier head")
            && text.contains("7.weight [3, 128] -> [5, 128], 7.bias [3] -> [5]"),
        "{text}"
    );
    let moved = Model::load(&dst.join("last.tlm")).unwrap();
    assert_eq!(moved.classes, ["class0", "class1", "class2", "class3", "class4"]);
    let head_src = 3 * 128 + 3;
    let head_dst = 5 * 128 + 5;
    let body = source.param_count() - head_src;
    assert_eq!(moved.param_count(), body + head_dst);
    assert_eq!(
        moved.params[..body],
        source.params[..body],
        "non-head weights are the source's"
    );
    // The new head is PyTorch's default initialisation of the seed's model.
    let cfg = ZooConfig {
        channels: Some(3),
        size: Some((8, 8)),
        num_classes: Some(5),
    };
    let fresh = zoo::build("digits-cnn", &cfg, 0).unwrap();
    assert_eq!(moved.params[body..], fresh.params[body..]);

    // An explicit --num-classes wider than the data set also works; a narrower one is refused.
    let o = torchlet(&[
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&five),
        "--model",
        "digits-cnn",
        "--num-classes",
        "7",
        "--init-from",
        s(&src.join("last.tlm")),
        "--epochs",
        "1",
        "--out",
        s(&dir.path().join("seven")),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("7.weight [3, 128] -> [7, 128]"), "{}", stdout(&o));
    let o = torchlet(&[
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        s(&five),
        "--model",
        "digits-cnn",
        "--num-classes",
        "2",
        "--out",
        s(&dir.path().join("two")),
        "--quiet",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("2 outputs") && stderr(&o).contains("5 classes"),
        "{}",
        stderr(&o)
    );

    // A mismatch outside the head (the embedded digits are gray: 1 input channel) names the
    // tensor and both shapes.
    let o = torchlet(&[
        "train",
        "--model",
        "digits-cnn",
        "--init-from",
        s(&src.join("last.tlm")),
        "--epochs",
        "1",
        "--out",
        s(&dir.path().join("gray")),
        "--quiet",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("tensor '0.weight': shape [16, 3, 3, 3] in the file, [16, 1, 3, 3] in the model"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn zoo_models_that_do_not_fit_the_data_set_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (model, designed) in [("lenet5", "[1, 28, 28]"), ("vgg16", "[3, 32, 32]")] {
        let o = torchlet(&["train", "--model", model, "--out", s(&dir.path().join(model))]);
        assert!(!o.status.success(), "{model}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("model '{model}' does not fit the input shape [1, 8, 8]")) && err.contains(designed),
            "{err}"
        );
    }
    let o = torchlet(&["train", "--num-classes", "0", "--out", s(&dir.path().join("zero"))]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("at least 1"), "{}", stderr(&o));
}

#[test]
fn mcu_cnn_learns_the_digits_and_inspect_prints_zoo_models() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mcu");
    let o = torchlet(&[
        "train",
        "--model",
        "mcu-cnn",
        "--epochs",
        "8",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let best: f64 = stdout(&o)
        .lines()
        .find_map(|l| {
            l.strip_prefix("best held-out accuracy ")?
                .strip_suffix('%')?
                .parse()
                .ok()
        })
        .expect("a best-accuracy line");
    assert!(best > 80.0, "chance is 10 %: {}", stdout(&o));
    let m = Model::load(&out.join("best.tlm")).unwrap();
    assert_eq!(
        (m.name.as_str(), m.input, m.param_count()),
        ("mcu-cnn", Shape::chw(1, 8, 8), 3_738)
    );

    let o = torchlet(&["inspect", "vgg11"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("(features): Sequential("), "{text}");
    assert!(
        text.contains("(6): Linear(in_features=512, out_features=10, bias=True)"),
        "{text}"
    );
    assert!(text.contains("total parameters: 9,756,426"), "{text}");
}
