#!/usr/bin/env python3
"""PyTorch's side of `tools/bench-gpu-vs-pytorch.sh`: training images per second of a zoo model
(default `tutorial-cnn`, the course's CIFAR-10 network, 145,578 parameters) on a CUDA GPU, eager
mode, as the course runs it after `net.to(device)`.

    python3 tools/bench-gpu-vs-pytorch.py --batch-size 64 --steps 200 --warmup 20

One step is what `torchlet bench --device gpu` times (which uploads the batch every step): zero_grad, forward, CrossEntropyLoss,
backward, SGD (lr 0.01, momentum 0.9) on one batch already on the GPU, with the loss brought back
to the host (`loss.item()`, as a training loop that prints or checks its loss does; torchlet's
step reads its loss back too), timed twice: with the batch already on the GPU, and with the batch
copied from host memory every step as the course's loop does. Random inputs uniform in [0, 1), random labels. Like torchlet
bench it reports the median of the per-step times (and the mean, for reference); inference is
the median of `model(x)` with the logits copied back to the host.

Prints a human line and then `RESULT pytorch-cuda batch=.. images_per_s=..`.
Exits with status 2 and a message when PyTorch or a CUDA device is missing.
"""

import argparse
import statistics
import sys
import time

PARAMETERS = {"tutorial-cnn": 145_578}


def build(nn, name):
    if name == "tutorial-cnn":
        return nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1024, 64), nn.Linear(64, 10),
        )
    sys.exit(f"bench-gpu-vs-pytorch.py: --model {name}: expected one of {', '.join(PARAMETERS)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tutorial-cnn")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    try:
        import torch
        from torch import nn
    except ImportError:
        print("bench-gpu-vs-pytorch.py: PyTorch is not installed for python3 (pip install torch)", file=sys.stderr)
        sys.exit(2)
    if not torch.cuda.is_available():
        print("bench-gpu-vs-pytorch.py: no CUDA device (torch.cuda.is_available() is False); "
              "this comparison needs an NVIDIA GPU with PyTorch's CUDA build", file=sys.stderr)
        sys.exit(2)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = build(nn, args.model).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != PARAMETERS[args.model]:
        sys.exit(f"bench-gpu-vs-pytorch.py: {n_params} parameters, expected {PARAMETERS[args.model]}")
    b = args.batch_size
    x = torch.rand(b, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (b,), device=dev)
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    x_host, y_host = x.cpu(), y.cpu()

    def step():
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def step_upload():
        # The course's loop: `inputs, labels = data[0].to(device), data[1].to(device)` per batch.
        xs, ys = x_host.to(dev), y_host.to(dev)
        opt.zero_grad()
        loss = criterion(model(xs), ys)
        loss.backward()
        opt.step()
        return loss.item()

    def timed(fn, warmup, steps):
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), statistics.fmean(times)

    med, mean = timed(step, args.warmup, args.steps)
    up_med, _ = timed(step_upload, args.warmup, args.steps)
    with torch.no_grad():
        inf_med, _ = timed(lambda: model(x).cpu(), args.warmup, args.steps)
        lat_med, _ = timed(lambda: model(x[:1]).cpu(), args.warmup, args.steps)
    name = torch.cuda.get_device_name(0)
    print(f"PyTorch {torch.__version__} CUDA on {name}, batch {b}: train step median {med * 1e3:.3f} ms "
          f"(mean {mean * 1e3:.3f}), {b / med:.0f} training images/s; inference {b / inf_med:.0f} images/s; "
          f"latency b=1 {lat_med * 1e3:.3f} ms; with the batch uploaded every step (as the course's loop): "
          f"{up_med * 1e3:.3f} ms, {b / up_med:.0f} training images/s")
    print(f'RESULT pytorch-cuda batch={b} images_per_s={b / med:.1f} infer_images_per_s={b / inf_med:.1f} '
          f'latency_ms={lat_med * 1e3:.3f} upload_images_per_s={b / up_med:.1f} adapter="{name}"')


if __name__ == "__main__":
    main()
