#!/usr/bin/env python3
"""Runs images through an exported ONNX model in onnxruntime and compares the class
probabilities with `torchlet predict --json --top-k N` lines read from stdin.

    torchlet predict --model M.tlm --json --top-k 10 IMG... | tools/onnx_predict_check.py M.onnx

Each image is decoded with PIL, as RGB (or L for one channel) at the model's size (the
images must already have it: no resizing here), scaled to [0, 1] as ToTensor does, NCHW.
Prints one JSON object (images, max_probability_diff) and exits 1 if any probability differs
by more than --tol (default 1e-5) or a top class differs.
Needs `pip install onnx onnxruntime numpy pillow`.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    model = onnx.load(a.model)
    onnx.checker.check_model(model, full_check=True)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    c, h, w = dims
    classes = dict(p for p in ((e.key, e.value) for e in model.metadata_props))["classes"].split("\n")
    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    worst, count, bad = 0.0, 0, []
    for line in sys.stdin:
        if not line.strip():
            continue
        want = json.loads(line)
        img = Image.open(want["file"]).convert("RGB" if c == 3 else "L")
        if img.size != (w, h):
            bad.append(f"{want['file']}: {img.size} is not the model's {w}x{h}")
            continue
        x = np.asarray(img, dtype=np.float32) / 255.0
        x = x.reshape(h, w, c).transpose(2, 0, 1)[None]
        (logits,) = sess.run(["logits"], {"input": x})
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        for t in want["top_k"]:
            d = abs(p[classes.index(t["class"])] - t["probability"])
            worst = max(worst, d)
            if d > a.tol:
                bad.append(f"{want['file']}: {t['class']} {p[classes.index(t['class'])]} vs {t['probability']}")
        if classes[int(p.argmax())] != want["class"]:
            bad.append(f"{want['file']}: top class {classes[int(p.argmax())]} vs {want['class']}")
        count += 1
    print(json.dumps({"images": count, "max_probability_diff": worst, "problems": bad[:5]}))
    return 0 if count > 0 and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
