#!/usr/bin/env python3
"""PyTorch's side of `tools/bench-vs-pytorch.sh`: the figures `torchlet bench` measures, on the
same network, batch and thread count, in PyTorch on the CPU.

    python3 tools/bench_pytorch.py --threads 1 --layout channels_last --json
    python3 tools/bench_pytorch.py --report results.jsonl     # the comparison table

Measure mode prints one JSON object (as `torchlet bench --json`): training images/s (a full
step: zero_grad, forward, CrossEntropyLoss, backward, SGD lr 0.01 momentum 0.9), inference
images/s (eval mode, `torch.inference_mode()`), latency in ms at batch 1; medians over
`--iters` timed runs after `--warmup` untimed ones (latency over ten times as many), on
random inputs uniform in [0, 1) and random labels. `--layout channels_last` converts the
model and the input to `torch.channels_last`, PyTorch's fastest CPU layout for convolutions.

The network is torchlet's zoo `tutorial-cnn` layer for layer (host/cli/src/zoo.rs), the course's
CIFAR-10 network: 145,578 parameters, checked below and against `torchlet bench`'s count by
the report.

Report mode reads JSON lines (torchlet's and PyTorch's, any order) and prints one table row
per run, then per thread count the ratio of torchlet to PyTorch's best configuration for each
figure.
"""

import argparse
import json
import statistics
import sys
import time


def tutorial_cnn(nn):
    """torchlet's zoo `tutorial-cnn`, as an nn.Sequential."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1024, 64),
        nn.Linear(64, 10),
    )


TUTORIAL_CNN_PARAMETERS = 145_578


def timed(fn, warmup, iters):
    """Median seconds of `fn()` over `iters` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(args):
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = tutorial_cnn(nn)
    params = sum(p.numel() for p in model.parameters())
    if params != TUTORIAL_CNN_PARAMETERS:
        sys.exit(f"bench_pytorch.py: the network has {params} parameters, expected {TUTORIAL_CNN_PARAMETERS}")
    fmt = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    b = args.batch_size
    x = torch.rand(b, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (b,))
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()

    print(f"pytorch: {args.layout}, {args.threads} thread(s): training", file=sys.stderr)
    model.train()
    train_s = timed(train_step, args.warmup, args.iters)
    model.eval()
    x1 = x[:1].clone().contiguous(memory_format=fmt)
    with torch.inference_mode():
        print(f"pytorch: {args.layout}, {args.threads} thread(s): inference", file=sys.stderr)
        infer_s = timed(lambda: model(x), args.warmup, args.iters)
        latency_s = timed(lambda: model(x1), args.warmup * 10, args.iters * 10)
    return {
        "framework": "pytorch",
        "version": torch.__version__,
        "model": "tutorial-cnn",
        "parameters": params,
        "layout": args.layout,
        "batch_size": b,
        "threads": args.threads,
        "warmup": args.warmup,
        "iters": args.iters,
        "train_images_per_sec": b / train_s,
        "infer_images_per_sec": b / infer_s,
        "latency_ms_batch1": 1e3 * latency_s,
        "train_step_ms": 1e3 * train_s,
        "infer_batch_ms": 1e3 * infer_s,
    }


FIGURES = [
    ("train_images_per_sec", "train img/s", True),
    ("infer_images_per_sec", "infer img/s", True),
    ("latency_ms_batch1", "latency ms (b=1)", False),
]


def report(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    for r in runs:
        r.setdefault("framework", "torchlet")
    name = lambda r: (
        f"PyTorch {r.get('version', '')} {r['layout']}"
        if r["framework"] == "pytorch"
        else f"torchlet ({r.get('kernel', '?')})"
    )
    counts = {r.get("parameters") for r in runs}
    if len(counts) > 1:
        sys.exit(f"bench_pytorch.py: the runs measured different networks (parameter counts {sorted(counts)})")
    batch = {r.get("batch_size") for r in runs}
    print(f"tutorial-cnn ({runs[0].get('parameters')} parameters), batch {', '.join(map(str, batch))}; "
          f"medians after warm-up; latency: torchlet on 1 thread, PyTorch on the row's threads")
    print()
    head = f"{'run':<42} {'threads':>7}"
    for _, label, _ in FIGURES:
        head += f" {label:>17}"
    print(head)
    print("-" * len(head))
    for r in sorted(runs, key=lambda r: (r["threads"], r["framework"] != "torchlet", r.get("layout", ""))):
        row = f"{name(r):<42} {r['threads']:>7}"
        for key, _, _ in FIGURES:
            row += f" {r[key]:>17.2f}" if key.startswith("latency") else f" {r[key]:>17.1f}"
        print(row)
    print()
    print("torchlet / PyTorch's best configuration for each figure (throughput: >1 torchlet is faster;")
    print("latency: <1 torchlet is faster)")
    for t in sorted({r["threads"] for r in runs}):
        ours = [r for r in runs if r["threads"] == t and r["framework"] == "torchlet"]
        theirs = [r for r in runs if r["threads"] == t and r["framework"] == "pytorch"]
        if not ours or not theirs:
            continue
        parts = []
        for key, label, higher in FIGURES:
            best = max(theirs, key=lambda r: r[key]) if higher else min(theirs, key=lambda r: r[key])
            parts.append(f"{label} {ours[0][key] / best[key]:.2f} (vs {best['layout']})")
        print(f"  {t} thread(s): " + "; ".join(parts))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layout", choices=["channels_last", "default"], default="channels_last")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", metavar="FILE", help="print the comparison table of a JSON-lines file")
    args = p.parse_args()
    if args.report:
        report(args.report)
        return
    if args.threads < 1 or args.batch_size < 1 or args.iters < 1 or args.warmup < 0:
        p.error("--threads, --batch-size and --iters must be at least 1, --warmup at least 0")
    r = measure(args)
    if args.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
