//! Shared helpers for torchlet's test suite: closeness checks, finite differences and fixtures.
//!
//! The tests themselves live in `tests/tests/*.rs`, one file per area. Each compares a kernel
//! with a naive loop-nest reference (proptest over valid geometry), checks every gradient with
//! central finite differences, and compares tricky cases with fixtures made by PyTorch
//! (`tools/fixtures/*.py`, committed output in `tests/fixtures/`).

use std::path::PathBuf;

pub mod backend;
pub mod problem;

/// Path of a committed fixture file in `tests/fixtures/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Loads a committed JSON fixture; panics with the path if it is missing or malformed.
pub fn load_fixture(name: &str) -> serde_json::Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// A JSON array of numbers as `Vec<f32>` (nested arrays are flattened in row-major order).
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Number(n) => out.push(n.as_f64().expect("number") as f32),
            other => panic!("expected a number, found {other}"),
        }
    }
    walk(v, &mut out);
    out
}

/// Asserts `|a - b| <= atol + rtol * |b|` elementwise, naming the first offending index.
pub fn assert_close(what: &str, a: &[f32], b: &[f32], rtol: f32, atol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ ({} vs {})", a.len(), b.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let ok = (x - y).abs() <= atol + rtol * y.abs() || (x.is_nan() && y.is_nan());
        assert!(
            ok,
            "{what}: index {i}: got {x}, expected {y} (rtol {rtol}, atol {atol})"
        );
    }
}

/// Like [`assert_close`] but returns the message instead of panicking (for proptest).
pub fn check_close(what: &str, a: &[f32], b: &[f32], rtol: f32, atol: f32) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: lengths differ ({} vs {})", a.len(), b.len()));
    }
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let ok = (x - y).abs() <= atol + rtol * y.abs();
        if !ok {
            return Err(format!("{what}: index {i}: got {x}, expected {y}"));
        }
    }
    Ok(())
}

/// Central finite differences of a scalar function `f` at `x`, in f64 for accuracy of the
/// difference itself: `(f(x + h e_i) - f(x - h e_i)) / 2h` for every `i`.
///
/// `f` receives the perturbed point; compute it in f32 (as the kernel does) and return f64.
pub fn numeric_grad(x: &[f32], h: f32, mut f: impl FnMut(&[f32]) -> f64) -> Vec<f32> {
    let mut xp = x.to_vec();
    let mut g = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let orig = xp[i];
        xp[i] = orig + h;
        let fp = f(&xp);
        xp[i] = orig - h;
        let fm = f(&xp);
        xp[i] = orig;
        g.push(((fp - fm) / (2.0 * h as f64)) as f32);
    }
    g
}

/// A deterministic vector of `n` values in `[-1, 1)` from `seed` (for tests that are not
/// proptest-driven).
pub fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut r = torchlet::Rng::new(seed);
    (0..n).map(|_| r.uniform(-1.0, 1.0)).collect()
}

/// Dot product in f64: the scalar `sum(w * y)` used to turn a tensor output into a loss for
/// finite-difference checks (its gradient with respect to `y` is `w`).
pub fn weighted_sum(w: &[f32], y: &[f32]) -> f64 {
    w.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Checks a backend's result against a reference: `|got - want| <= 1e-4 |want| + atol` element
/// by element, where `atol` is `1e-5` times the largest magnitude in `want` (at least 1e-6),
/// since sums of terms of both signs can land near zero. Equal values pass (infinities too).
pub fn check_backend(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: got {} values, expected {}", got.len(), want.len()));
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let atol = (1e-5 * scale).max(1e-6);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !(g == w || (g - w).abs() <= 1e-4 * w.abs() + atol) {
            return Err(format!("{what}[{i}]: got {g}, expected {w} (diff {:e})", (g - w).abs()));
        }
    }
    Ok(())
}

/// The exact gradient of `sum(gy * f(x))` for a **linear** `f` (a convolution without bias, a
/// pooling average): `gx[i] = sum_j gy[j] f(e_i)[j]`, in f64, one call of `f` per input element.
/// A reference for backward passes with no rounding noise from finite differences.
pub fn linear_adjoint(len: usize, gy: &[f32], f: impl Fn(&[f32]) -> Vec<f32>) -> Vec<f32> {
    let mut e = vec![0.0f32; len];
    (0..len)
        .map(|i| {
            e[i] = 1.0;
            let col = f(&e);
            e[i] = 0.0;
            weighted_sum(gy, &col) as f32
        })
        .collect()
}

/// `base + delta` elementwise: what an accumulating (`+=`) backward pass should leave.
pub fn plus(base: &[f32], delta: &[f32]) -> Vec<f32> {
    base.iter().zip(delta).map(|(a, b)| a + b).collect()
}
