//! SummaryWriter checked by TensorBoard itself.
//!
//! 1. Everything the writer writes (scalars, `add_scalars` series, images, histograms, text,
//!    hparams, the graph) is read back by TensorBoard's `EventMultiplexer`/`EventAccumulator`
//!    (`tools/tensorboard_read.py` prints it as JSON) and compared with what was written:
//!    images decoded by Pillow against pixels computed here, histograms against PyTorch's
//!    `make_histogram` restated with numpy.
//! 2. End to end: a real `tensorboard --logdir DIR --port P --host 127.0.0.1` serves the
//!    scalars and the graph through its HTTP API.
//!
//! Needs Python 3 with the `tensorboard` package; the first test installs it with
//! `python3 -m pip install --quiet tensorboard` if `import tensorboard` fails, and the tests
//! are skipped (with a message) only when there is no `python3` or no pip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use torchlet::layer::*;
use torchlet::Shape;
use torchlet_host::print::op_repr;
use torchlet_host::summary::{DataFormat, HParam, SummaryWriter};

// ---- Python and TensorBoard -------------------------------------------------------------

fn python_ok(args: &[&str]) -> bool {
    Command::new("python3")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `python3` can `import tensorboard`, installing it with pip once if needed. `false`
/// (the caller skips) only when python3 or pip is missing; a failed install panics.
fn tensorboard_available() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if python_ok(&["-c", "import tensorboard, PIL, numpy"]) {
            return true;
        }
        if !python_ok(&["--version"]) {
            eprintln!("SKIPPED: no python3 on PATH; TensorBoard checks need python3 with `pip install tensorboard`");
            return false;
        }
        if !python_ok(&["-m", "pip", "--version"]) {
            eprintln!("SKIPPED: python3 has no pip; install TensorBoard with `python3 -m pip install tensorboard`");
            return false;
        }
        eprintln!("installing TensorBoard: python3 -m pip install --quiet tensorboard");
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "tensorboard"])
            .status()
            .expect("run pip");
        assert!(
            status.success(),
            "`python3 -m pip install --quiet tensorboard` failed: {status}"
        );
        assert!(
            python_ok(&["-c", "import tensorboard, PIL, numpy"]),
            "tensorboard installed but not importable"
        );
        true
    })
}

macro_rules! require_tensorboard {
    () => {
        if !tensorboard_available() {
            return;
        }
    };
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/tensorboard_read.py")
}

fn run_script(args: &[&str]) -> Json {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "tensorboard_read.py {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from tensorboard_read.py")
}

/// What TensorBoard reads from `logdir`: `{run: {scalars, images, histograms, texts, hparams, graph}}`.
fn tensorboard_reads(logdir: &Path) -> Json {
    run_script(&[logdir.to_str().unwrap()])["runs"].clone()
}

// ---- the model and data written ---------------------------------------------------------

static BODY: [Layer; 2] = [conv2d(4, 4, 3).padding(1), relu()];
static BRANCH: [Layer; 1] = [conv2d(4, 2, 1)];
static NET: [Layer; 6] = [
    conv2d(1, 4, 3).padding(1).named("stem"),
    residual(&BODY, &[]),
    concat(&BRANCH, &[]),
    max_pool2d(2),
    flatten(),
    linear(6 * 2 * 2, 3).named("fc"),
];

/// `(name, op, inputs, output shape)` of every node `add_graph(&NET, [1, 4, 4])` must give.
fn expected_graph() -> Vec<(&'static str, &'static str, Vec<&'static str>, Vec<i64>)> {
    vec![
        ("input", "IO Node", vec![], vec![-1, 1, 4, 4]),
        ("stem", "Conv2d", vec!["input"], vec![-1, 4, 4, 4]),
        ("1/body/0", "Conv2d", vec!["stem"], vec![-1, 4, 4, 4]),
        ("1/body/1", "ReLU", vec!["1/body/0"], vec![-1, 4, 4, 4]),
        ("1", "Add", vec!["1/body/1", "stem"], vec![-1, 4, 4, 4]),
        ("2/a/0", "Conv2d", vec!["1"], vec![-1, 2, 4, 4]),
        ("2", "Concat", vec!["2/a/0", "1"], vec![-1, 6, 4, 4]),
        ("3", "MaxPool2d", vec!["2"], vec![-1, 6, 2, 2]),
        ("4", "Flatten", vec!["3"], vec![-1, 24]),
        ("fc", "Linear", vec!["4"], vec![-1, 3]),
        ("output", "IO Node", vec!["fc"], vec![-1, 3]),
    ]
}

/// A deterministic pseudo-random value in `[0, 1)` (a 32-bit LCG), independent of the code under test.
fn lcg(seed: &mut u32) -> f32 {
    *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    (*seed >> 8) as f32 / (1u32 << 24) as f32
}

/// PyTorch's float-to-byte pixel rule, written out independently: `uint8(clip(v * 255, 0, 255))`.
fn byte(v: f32) -> u8 {
    let s = v * 255.0;
    if s.is_nan() || s <= 0.0 {
        0
    } else if s >= 255.0 {
        255
    } else {
        s.floor() as u8
    }
}

fn as_f64s(v: &Json) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn as_bytes(v: &Json) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect()
}

// ---- 1. read back by EventAccumulator ---------------------------------------------------

#[test]
fn everything_written_is_read_back_by_tensorboards_event_accumulator() {
    require_tensorboard!();
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("exp");
    let mut w = SummaryWriter::new(&logdir).unwrap();

    // Scalars: a series with automatic wall time, one with given wall time.
    let loss: Vec<f32> = (0..40).map(|i| 2.0 / (1.0 + i as f32) + 1e-7 * i as f32).collect();
    for (step, &v) in loss.iter().enumerate() {
        w.add_scalar("Loss/train", v, step as i64 * 10).unwrap();
    }
    w.add_scalar_with_walltime("lr", 0.125, 7, 1_700_000_000.25).unwrap();
    for step in 0..3 {
        w.add_scalars("acc", &[("train", 0.5 + step as f32 / 8.0), ("test", 0.25)], step)
            .unwrap();
    }

    // Images: floats CHW (RGB), bytes HWC (RGBA), floats HW (grey), a batch of 10 grey NCHW.
    let mut seed = 7u32;
    let (h, wd) = (5usize, 4usize);
    let chw: Vec<f32> = (0..3 * h * wd).map(|_| lcg(&mut seed) * 1.2 - 0.1).collect();
    w.add_image("rgb", &chw, &[3, h, wd], DataFormat::Chw, 3).unwrap();
    let rgba: Vec<u8> = (0..h * wd * 4).map(|i| (i * 37 % 256) as u8).collect();
    w.add_image("rgba", &rgba, &[h, wd, 4], DataFormat::Hwc, 4).unwrap();
    let grey: Vec<f32> = (0..h * wd).map(|_| lcg(&mut seed)).collect();
    w.add_image("grey", &grey, &[h, wd], DataFormat::Hw, 5).unwrap();
    let (n, bh, bw) = (10usize, 3usize, 2usize);
    let batch: Vec<u8> = (0..n * bh * bw).map(|i| (i * 7 % 251) as u8).collect();
    w.add_images("batch", &batch, &[n, 1, bh, bw], DataFormat::Nchw, 6)
        .unwrap();

    // Histograms: mixed signs and scales, zeros, a constant tensor.
    let weights: Vec<f32> = (0..500)
        .map(|i| {
            let u = lcg(&mut seed) - 0.5;
            if i % 50 == 0 {
                0.0
            } else {
                u * 10f32.powi(i % 7 - 3)
            }
        })
        .collect();
    w.add_histogram("fc.weight", &weights, 1).unwrap();
    let constant = vec![0.75f32; 33];
    w.add_histogram("fc.weight", &constant, 2).unwrap();

    // Text, hparams, graph.
    let text = "**Adam**, lr = 1e-3 — *ünïcødé* ✓\nsecond line";
    w.add_text("notes", text, 11).unwrap();
    let hp_dir = w
        .add_hparams(
            &[
                ("lr", HParam::from(0.01)),
                ("optimizer", "sgd".into()),
                ("nesterov", true.into()),
            ],
            &[("hparam/accuracy", 0.875)],
            Some("hp-run"),
        )
        .unwrap();
    assert_eq!(hp_dir, logdir.join("hp-run"));
    w.add_graph(&NET, Shape::chw(1, 4, 4), &op_repr).unwrap();
    w.close().unwrap();

    let runs = tensorboard_reads(&logdir);
    let main = &runs["."];

    // -- scalars
    let points = main["scalars"]["Loss/train"].as_array().unwrap();
    assert_eq!(points.len(), loss.len());
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p[0].as_i64().unwrap(), i as i64 * 10);
        assert_eq!(p[2].as_f64().unwrap() as f32, loss[i], "Loss/train step {}", i * 10);
    }
    assert_eq!(
        main["scalars"]["lr"][0],
        serde_json::json!([7, 1_700_000_000.25, 0.125])
    );
    for (series, values) in [("acc_train", [0.5, 0.625, 0.75]), ("acc_test", [0.25, 0.25, 0.25])] {
        let points = runs[series]["scalars"]["acc"]
            .as_array()
            .unwrap_or_else(|| panic!("run {series}"));
        let got: Vec<(i64, f64)> = points
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[2].as_f64().unwrap()))
            .collect();
        assert_eq!(got, vec![(0, values[0]), (1, values[1]), (2, values[2])], "{series}");
    }

    // -- images: Pillow's decoded pixels against pixels computed here.
    let image = |tag: &str| {
        let items = main["images"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no image {tag}"));
        assert_eq!(items.len(), 1);
        items[0].clone()
    };
    let check_image = |tag: &str, step: i64, mode: &str, width: usize, height: usize, want: Vec<u8>| {
        let img = image(tag);
        assert_eq!(img["step"].as_i64().unwrap(), step, "{tag}");
        assert_eq!(img["format"], "PNG", "{tag}");
        assert_eq!(img["mode"], mode, "{tag}");
        assert_eq!(
            (img["width"].as_u64().unwrap(), img["height"].as_u64().unwrap()),
            (width as u64, height as u64)
        );
        assert_eq!(img["size"], serde_json::json!([width, height]), "{tag}");
        assert_eq!(as_bytes(&img["pixels"]), want, "{tag} pixels");
    };
    let mut want = Vec::new();
    for y in 0..h {
        for x in 0..wd {
            for c in 0..3 {
                want.push(byte(chw[(c * h + y) * wd + x]));
            }
        }
    }
    check_image("rgb", 3, "RGB", wd, h, want);
    check_image("rgba", 4, "RGBA", wd, h, rgba.clone());
    let want: Vec<u8> = grey.iter().flat_map(|&v| [byte(v); 3]).collect();
    check_image("grey", 5, "RGB", wd, h, want);
    // make_grid: 8 columns, 2 rows, the 6 cells after the 10th image black.
    let (gw, gh) = (8 * bw, 2 * bh);
    let mut want = vec![0u8; gw * gh * 3];
    for k in 0..n {
        for y in 0..bh {
            for x in 0..bw {
                let (gy, gx) = ((k / 8) * bh + y, (k % 8) * bw + x);
                for c in 0..3 {
                    want[(gy * gw + gx) * 3 + c] = batch[(k * bh + y) * bw + x];
                }
            }
        }
    }
    check_image("batch", 6, "RGB", gw, gh, want);

    // -- histograms: against PyTorch's make_histogram (numpy), bucket for bucket.
    let hist = main["histograms"]["fc.weight"].as_array().unwrap();
    assert_eq!(hist.len(), 2);
    for (k, values) in [weights.as_slice(), constant.as_slice()].into_iter().enumerate() {
        let got = &hist[k];
        assert_eq!(got["step"].as_i64().unwrap(), k as i64 + 1);
        let values_file = dir.path().join(format!("values{k}.json"));
        std::fs::write(&values_file, serde_json::to_string(values).unwrap()).unwrap();
        let want = run_script(&["--histogram-reference", values_file.to_str().unwrap()]);
        for field in ["min", "max", "num"] {
            assert_eq!(got[field], want[field], "histogram {k} {field}");
        }
        for field in ["sum", "sum_squares"] {
            let (g, r) = (got[field].as_f64().unwrap(), want[field].as_f64().unwrap());
            assert!(
                (g - r).abs() <= 1e-12 * r.abs().max(1.0),
                "histogram {k} {field}: {g} vs {r}"
            );
        }
        assert_eq!(
            as_f64s(&got["bucket_limit"]),
            as_f64s(&want["bucket_limit"]),
            "histogram {k} limits"
        );
        assert_eq!(
            as_f64s(&got["bucket"]),
            as_f64s(&want["bucket"]),
            "histogram {k} counts"
        );
        assert_eq!(as_f64s(&got["bucket"]).iter().sum::<f64>(), values.len() as f64);
    }

    // -- text
    let texts = &main["texts"]["notes/text_summary"];
    assert_eq!(texts, &serde_json::json!([{"step": 11, "shape": [1], "text": [text]}]));

    // -- hparams, in their own run with the metric as a scalar.
    let hp = &runs["hp-run"];
    let start = &hp["hparams"]["_hparams_/session_start_info"]["session_start_info"]["hparams"];
    // google.protobuf.Value prints as the JSON value itself.
    assert_eq!(
        start,
        &serde_json::json!({"lr": 0.01, "optimizer": "sgd", "nesterov": true})
    );
    let exp = &hp["hparams"]["_hparams_/experiment"]["experiment"];
    assert_eq!(
        exp["metric_infos"],
        serde_json::json!([{"name": {"tag": "hparam/accuracy"}}])
    );
    let names: Vec<&str> = exp["hparam_infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["lr", "optimizer", "nesterov"]);
    assert_eq!(exp["hparam_infos"][0]["type"], "DATA_TYPE_FLOAT64");
    assert_eq!(
        hp["hparams"]["_hparams_/session_end_info"]["session_end_info"]["status"],
        "STATUS_SUCCESS"
    );
    assert_eq!(hp["scalars"]["hparam/accuracy"][0][0], 0);
    assert_eq!(hp["scalars"]["hparam/accuracy"][0][2], 0.875);

    // -- graph
    let graph = &main["graph"];
    assert_eq!(graph["producer"], 22);
    let nodes = graph["nodes"].as_array().unwrap();
    let got: Vec<(String, String, Vec<String>, Vec<i64>)> = nodes
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["op"].as_str().unwrap().to_string(),
                n["input"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
                n["output_shapes"][0]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_i64().unwrap())
                    .collect(),
            )
        })
        .collect();
    let want: Vec<(String, String, Vec<String>, Vec<i64>)> = expected_graph()
        .into_iter()
        .map(|(a, b, c, d)| (a.into(), b.into(), c.into_iter().map(String::from).collect(), d))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        nodes[10 - 1]["attr"],
        "Linear(in_features=24, out_features=3, bias=True)"
    );
}

// ---- 2. a real TensorBoard server -------------------------------------------------------

/// Kills and reaps the TensorBoard server however the test ends.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(logdir: &Path, log: PathBuf) -> (Server, u16) {
        // A port the OS says is free now; TensorBoard binds it right after.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("python3")
            .args(["-m", "tensorboard.main", "--logdir"])
            .arg(logdir)
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start tensorboard");
        (Server { child, log }, port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn get(url: &str) -> Result<String, String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    match agent.get(url).call() {
        Ok(r) => r.into_string().map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn tensorboard_serves_the_scalars_and_the_graph() {
    require_tensorboard!();
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("logs");
    let mut w = SummaryWriter::new(logdir.join("cnn")).unwrap();
    let loss: Vec<f32> = (0..25).map(|i| 1.0 / (1.0 + i as f32)).collect();
    for (i, &v) in loss.iter().enumerate() {
        w.add_scalar("loss", v, i as i64).unwrap();
    }
    w.add_graph(&NET, Shape::chw(1, 4, 4), &op_repr).unwrap();
    w.close().unwrap();

    let (mut server, port) = Server::start(&logdir, dir.path().join("tensorboard.log"));
    let base = format!("http://127.0.0.1:{port}");
    // Poll until the server answers and has loaded the run (it reads logs in the background).
    let deadline = Instant::now() + Duration::from_secs(120);
    let scalars = loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("tensorboard exited with {status}:\n{}", server.log());
        }
        if let Ok(body) = get(&format!("{base}/data/plugin/scalars/scalars?tag=loss&run=cnn")) {
            let v: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
            if v.as_array().is_some_and(|a| a.len() == loss.len()) {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "tensorboard did not serve the scalars in time:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // [[wall_time, step, value], ...]
    for (i, p) in scalars.as_array().unwrap().iter().enumerate() {
        assert_eq!(p[1].as_i64().unwrap(), i as i64);
        assert_eq!(p[2].as_f64().unwrap() as f32, loss[i], "step {i}");
    }
    let runs: Json = serde_json::from_str(&get(&format!("{base}/data/runs")).unwrap()).unwrap();
    assert_eq!(runs, serde_json::json!(["cnn"]));

    // The graph comes back as a GraphDef in protobuf text format.
    let graph = get(&format!("{base}/data/plugin/graphs/graph?run=cnn&conceptual=false"))
        .unwrap_or_else(|e| panic!("graph: {e}\n{}", server.log()));
    assert_eq!(graph.matches("node {").count(), expected_graph().len(), "{graph}");
    for (name, op, inputs, shape) in expected_graph() {
        let at = graph
            .find(&format!("name: \"{name}\"\n"))
            .unwrap_or_else(|| panic!("node {name} missing from\n{graph}"));
        let end = graph[at..].find("\nnode {").map_or(graph.len(), |e| at + e);
        let node = &graph[at..end];
        assert!(node.contains(&format!("op: \"{op}\"")), "{node}");
        for input in inputs {
            assert!(node.contains(&format!("input: \"{input}\"")), "{node}");
        }
        // The only sizes in a node are its `_output_shapes` dims.
        let sizes: Vec<i64> = node
            .split("size: ")
            .skip(1)
            .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert!(node.contains("key: \"_output_shapes\""), "{node}");
        assert_eq!(sizes, shape, "{node}");
    }
}
