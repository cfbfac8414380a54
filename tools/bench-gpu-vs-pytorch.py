#!/usr/bin/env python3
"""PyTorch's side of `tools/bench-gpu-vs-pytorch.sh`: training images per second of the zoo's
`tutorial-cnn` (the course's CIFAR-10 network, 145,578 parameters) on a CUDA GPU, eager mode,
as the course runs it after `net.to(device)`.

    python3 tools/bench-gpu-vs-pytorch.py --batch-size 64 --steps 50 --warmup 10

One step is what `cargo run --release -p torchlet-gpu --example train_step` times: zero_grad,
forward, CrossEntropyLoss, backward, SGD (lr 0.01, momentum 0.9) on one batch already on the
GPU, with the loss brought back to the host (`loss.item()`, as a training loop that prints or
checks its loss does; torchlet's step reads its loss back too). Random inputs uniform in
[-1, 1), random labels. Prints a human line and then `RESULT pytorch-cuda batch=.. images_per_s=..`.

Exits with status 2 and a message when PyTorch or a CUDA device is missing.
"""

import argparse
import sys
import time

TUTORIAL_CNN_PARAMETERS = 145_578


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
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
    model = nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 64), nn.Linear(64, 10),
    ).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != TUTORIAL_CNN_PARAMETERS:
        sys.exit(f"bench-gpu-vs-pytorch.py: {n_params} parameters, expected {TUTORIAL_CNN_PARAMETERS}")
    b = args.batch_size
    x = (torch.rand(b, 3, 32, 32, device=dev) * 2 - 1)
    y = torch.randint(0, 10, (b,), device=dev)
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        last = step()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t
    per_s = args.steps * b / secs
    name = torch.cuda.get_device_name(0)
    print(f"PyTorch {torch.__version__} CUDA on {name}, batch {b}: {secs * 1e3 / args.steps:.2f} ms/step, "
          f"{per_s:.0f} training images/s (last loss {last:.4f})")
    print(f'RESULT pytorch-cuda batch={b} images_per_s={per_s:.1f} adapter="{name}"')


if __name__ == "__main__":
    main()
