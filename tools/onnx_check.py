#!/usr/bin/env python3
"""Checks an ONNX file torchlet exported: the `onnx` package's full checker (with shape
inference), then onnxruntime on a batch of inputs against torchlet's own outputs.

    tools/onnx_check.py MODEL.onnx INPUT.f32 EXPECTED.f32 BATCH [--atol A] [--rtol R]

INPUT.f32 and EXPECTED.f32 are raw little-endian float32: BATCH samples of the model's input
and of torchlet's output. Prints one JSON object (max_abs_diff, output_shape, opset, ...) and
exits 1 if any output differs by more than atol + rtol * |expected|.
Needs `pip install onnx onnxruntime numpy`.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("expected")
    ap.add_argument("batch", type=int)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--rtol", type=float, default=1e-5)
    a = ap.parse_args()

    model = onnx.load(a.model)
    onnx.checker.check_model(model, full_check=True)
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]]
    batch_dim = inp.type.tensor_type.shape.dim[0].dim_param
    x = np.fromfile(a.input, dtype="<f4").reshape([a.batch] + dims)
    want = np.fromfile(a.expected, dtype="<f4")

    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    (got,) = sess.run(["logits"], {inp.name: x})
    diff = np.abs(got.reshape(-1).astype(np.float64) - want.astype(np.float64))
    bound = a.atol + a.rtol * np.abs(want.astype(np.float64))
    bad = int((diff > bound).sum()) if got.size == want.size else got.size
    report = {
        "ir_version": model.ir_version,
        "opset": model.opset_import[0].version,
        "input": inp.name,
        "batch_dim": batch_dim,
        "output_shape": list(got.shape),
        "max_abs_diff": float(diff.max()) if got.size == want.size else None,
        "outside_tolerance": bad,
    }
    print(json.dumps(report))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
