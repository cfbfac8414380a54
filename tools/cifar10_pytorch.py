#!/usr/bin/env python3
"""The tutorial's CIFAR-10 recipe in PyTorch: the reference for `torchlet train --dataset cifar10`.

Trains the PyTorch course's network (torchlet's zoo `tutorial-cnn`: three 5x5 convolutions with
max pooling, Linear(1024, 64), Linear(64, 10), no activations, as the course writes it) with
the recipe of `torchlet train --dataset cifar10 --augment`:

- data: the shared CIFAR-10 JPEGs (../shared/datasets/cifar10/train.tar.gz, read in memory, or
  an extracted folder), 45,000 training and 5,000 validation images;
- transform: RandomCrop(32, padding=4) and RandomHorizontalFlip on the training images, then
  ToTensor (values in [0, 1]). No Normalize: `torchlet train` applies none to CIFAR-10
  (host/cli/src/cli/train.rs, `image_transform`: Resize, the augmentation, ToTensor);
  `--normalize` adds the usual CIFAR-10 mean and std if that changes;
- CrossEntropyLoss, SGD(lr 0.01, momentum 0.9), batch 64, shuffled each epoch (last batch
  kept), 10 epochs, PyTorch's default initialisation from `--seed`;
- after every epoch the validation loss and accuracy in eval mode, without gradients.

The validation split: if DIR has `train/` and `val/` (or `test/`) class folders, those, as
`torchlet train` reads such a folder; otherwise the last 500 images (by file name) of each
class of the training set, as ../shared/datasets/README.md suggests. To give torchlet exactly
the same split, extract the archive as DIR/train/CLASS/ and move the last 500 images of each
class into DIR/val/CLASS/, then point both at DIR.

`--channels-last` (the default) uses PyTorch's fastest CPU memory format for this network;
`--no-channels-last` the default layout. Prints one line per epoch with the validation accuracy
and the epoch's wall time, then one JSON line:
{"val_accuracy": ..., "wall_s": ..., "epochs": ..., "threads": ...} (plus details), where
val_accuracy (0 to 1) is the last epoch's and wall_s the training and validation time of all
epochs (the JPEG decoding before the first epoch is reported apart as load_s).

    python3 tools/cifar10_pytorch.py                          # the full recipe (minutes to an hour)
    python3 tools/cifar10_pytorch.py --epochs 1 --limit 2000  # a smoke run
    python3 tools/cifar10_pytorch.py --threads 1 --data-dir DIR

Needs torch, numpy and Pillow (pip install torch pillow). Not run in CI.
"""

import argparse
import io
import json
import os
import pathlib
import sys
import tarfile
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
VAL_PER_CLASS = 500
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def tutorial_cnn():
    """The course's network, layer for layer as torchlet's zoo `tutorial-cnn` (145,578 parameters)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 64), nn.Linear(64, 10),
    )


def decode(data, name):
    """One image file's bytes as a [32, 32, 3] uint8 RGB array."""
    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as e:  # noqa: BLE001 - any decoder error names the file
        sys.exit(f"{name}: not an image: {e}")
    if img.size != (32, 32):
        img = img.resize((32, 32), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def read_tar(path):
    """{class: [(file name, image)]} from an archive of train/CLASS/FILE entries."""
    found = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar:
            parts = [p for p in m.name.split("/") if p not in ("", ".")]
            if not m.isfile() or len(parts) != 3 or parts[0] != "train":
                continue
            data = tar.extractfile(m).read()
            found.setdefault(parts[1], []).append((parts[2], decode(data, f"{path}:{m.name}")))
    if not found:
        sys.exit(f"{path}: no train/CLASS/FILE images in the archive")
    return found


def read_folder(path):
    """{class: [(file name, image)]} from a folder of class folders."""
    found = {}
    for cls in sorted(p for p in path.iterdir() if p.is_dir()):
        found[cls.name] = [(f.name, decode(f.read_bytes(), f)) for f in sorted(cls.iterdir()) if f.is_file()]
    if not found:
        sys.exit(f"{path}: no class folders")
    return found


def arrays(by_class, classes):
    """Stacks {class: [(name, image)]} into ([N, 32, 32, 3] uint8, [N] int64), by class then name."""
    images, labels = [], []
    for k, c in enumerate(classes):
        for _, img in sorted(by_class.get(c, []), key=lambda e: e[0]):
            images.append(img)
            labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.int64)


def load(data_dir):
    """(train images, train labels, val images, val labels, class names, where the split came from)."""
    d = pathlib.Path(data_dir)
    if not d.is_dir():
        sys.exit(f"--data-dir {d}: no such directory")
    val_dir = next((d / v for v in ("val", "test") if (d / v).is_dir()), None)
    if (d / "train").is_dir() and val_dir is not None:
        train, val = read_folder(d / "train"), read_folder(val_dir)
        classes = sorted(train)
        if sorted(val) != classes:
            sys.exit(f"{d / 'train'} and {val_dir} have different class folders")
        return (*arrays(train, classes), *arrays(val, classes), classes, f"{d}/train and {val_dir}")
    if (d / "train").is_dir():
        by_class = read_folder(d / "train")
    elif (d / "train.tar.gz").is_file():
        by_class = read_tar(d / "train.tar.gz")
    else:
        sys.exit(f"--data-dir {d}: expected train.tar.gz or a train/ folder of class folders")
    classes = sorted(by_class)
    train, val = {}, {}
    for c in classes:
        items = sorted(by_class[c], key=lambda e: e[0])
        if len(items) <= VAL_PER_CLASS:
            sys.exit(f"{d}: class {c} has {len(items)} images, need more than {VAL_PER_CLASS}")
        train[c], val[c] = items[:-VAL_PER_CLASS], items[-VAL_PER_CLASS:]
    return (*arrays(train, classes), *arrays(val, classes), classes,
            f"{d}: the last {VAL_PER_CLASS} images of each class held out")


def augment(x, gen):
    """RandomCrop(32, padding=4) with zero fill and RandomHorizontalFlip(0.5), per image, on
    a [B, 3, 32, 32] float batch, as torchvision's transforms on each image."""
    b = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=gen)
    dx = torch.randint(0, 9, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(b):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def to_tensor(images, normalize):
    """ToTensor (and Normalize) on [N, 32, 32, 3] uint8: [N, 3, 32, 32] float32."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    if normalize:
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x.contiguous()


def evaluate(model, x, y, batch, channels_last):
    """(mean loss, accuracy) in eval mode without gradients."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            xb = x[i:i + batch]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            out = model(xb)
            loss_sum += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return loss_sum / len(y), correct / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder with train.tar.gz or train/ (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N training images (after a seeded shuffle)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-augment", dest="augment", action="store_false", help="no RandomCrop and flip")
    ap.add_argument("--normalize", action="store_true", help="Normalize with CIFAR-10's mean and std after ToTensor")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="channels_last memory format (PyTorch's fastest on CPU for this network)")
    args = ap.parse_args()
    for name in ("epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            sys.exit(f"--{name.replace('_', '-')} must be at least 1, found {getattr(args, name)}")
    if args.limit is not None and args.limit < 1:
        sys.exit(f"--limit must be at least 1, found {args.limit}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    x_train, y_train, x_val, y_val, classes, split = load(args.data_dir)
    if classes != CLASSES:
        print(f"note: classes {classes} are not CIFAR-10's", file=sys.stderr)
    x_train, x_val = to_tensor(x_train, args.normalize), to_tensor(x_val, args.normalize)
    y_train, y_val = torch.from_numpy(y_train), torch.from_numpy(y_val)
    gen = torch.Generator().manual_seed(args.seed)
    if args.limit is not None and args.limit < len(y_train):
        keep = torch.randperm(len(y_train), generator=gen)[:args.limit]
        x_train, y_train = x_train[keep], y_train[keep]
    load_s = time.perf_counter() - t0

    model = tutorial_cnn()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'channels_last' if args.channels_last else 'default layout'}; {split}")
    print(f"cifar10: {len(y_train)} training images, {len(y_val)} held out; model tutorial-cnn "
          f"({params} parameters); {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
          f"momentum {args.momentum}, augment {'on' if args.augment else 'off'}; loaded in {load_s:.1f} s")

    wall, acc, best = 0.0, 0.0, 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        loss_sum, seen = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if args.augment:
                xb = augment(xb, gen)
            if args.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            if not torch.isfinite(loss):
                sys.exit(f"epoch {epoch}, step {i // args.batch_size}: the loss is {loss.item()}")
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(yb)
            seen += len(yb)
        val_loss, acc = evaluate(model, x_val, y_val, args.batch_size, args.channels_last)
        secs = time.perf_counter() - start
        wall += secs
        best = max(best, acc)
        print(f"epoch {epoch:>2}/{args.epochs}  train loss {loss_sum / seen:.4f}  val loss {val_loss:.4f}  "
              f"val accuracy {100 * acc:.1f}% ({round(acc * len(y_val))}/{len(y_val)})  [{secs:.1f} s]", flush=True)

    print(json.dumps({
        "val_accuracy": round(acc, 5),
        "best_val_accuracy": round(best, 5),
        "wall_s": round(wall, 2),
        "load_s": round(load_s, 2),
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "train_images": len(y_train),
        "val_images": len(y_val),
        "batch_size": args.batch_size,
        "channels_last": args.channels_last,
        "augment": args.augment,
        "normalize": args.normalize,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
