#!/usr/bin/env python3
"""torchvision's side of the data benchmark (tools/bench-data.sh runs both sides).

ImageFolder over the CIFAR-10 JPEGs, the tutorial's training augmentation
(RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize), and
DataLoader(batch_size=64, shuffle=True, num_workers=0/1/2) over the same images as
host/data/examples/bench_data.rs: every (len // images)-th file of the sorted folder.

Prints a table and one `RESULT <workers> <images/s>` line per worker count.
Needs torch and torchvision (pip install torchvision); not run in CI.

    python3 tools/bench_data_torchvision.py /path/to/train [--images 10000] [--workers 0,1,2]
"""
import argparse
import time

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="folder with one subfolder per class (the extracted train/)")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    train = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    full = datasets.ImageFolder(args.root, transform=train)
    stride = max(1, len(full) // args.images)
    subset = Subset(full, list(range(0, len(full), stride))[: args.images])
    torch.manual_seed(0)

    print(f"torchvision {__import__('torchvision').__version__}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} intra-op threads: {len(subset)} images of {len(full)}, "
          f"batch {args.batch_size}, shuffle")
    print(f"{'workers':>8} {'seconds':>9} {'images/s':>10}")
    for workers in [int(w) for w in args.workers.split(",")]:
        loader = DataLoader(subset, batch_size=args.batch_size, shuffle=True, num_workers=workers)
        start = time.perf_counter()
        seen = 0
        for x, y in loader:
            assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32
            seen += x.shape[0]
        secs = time.perf_counter() - start
        assert seen == len(subset)
        print(f"{workers:>8} {secs:>9.3f} {seen / secs:>10.0f}")
        print(f"RESULT {workers} {seen / secs:.1f}")


if __name__ == "__main__":
    main()
