#!/usr/bin/env bash
# The data-pipeline speed figures in one run: decoding and augmenting CIFAR-10 JPEGs
# (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize, batch 64, shuffled)
# with torchlet's DataLoader (host/data/examples/bench_data.rs) and torchvision's DataLoader
# (tools/bench_data_torchvision.py), on the same files, with 0, 1 and 2 workers; then the
# ratios torchlet / torchvision.
#   tools/bench-data.sh                 extracts ../shared/datasets/cifar10/train.tar.gz once
#                                       into $TMPDIR/torchlet-bench-cifar10 and uses that
#   tools/bench-data.sh path/to/train   an already extracted folder-per-class tree
#   IMAGES=10000 WORKERS=0,1,2 tools/bench-data.sh
# Needs python3 with torch and torchvision (pip install torchvision); not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
images="${IMAGES:-10000}"
workers="${WORKERS:-0,1,2}"

root="${1:-}"
if [ -z "$root" ]; then
    tarball=../shared/datasets/cifar10/train.tar.gz
    if [ ! -f "$tarball" ]; then
        echo "skipped: $tarball not found (../shared/datasets); pass an extracted train folder" >&2
        exit 1
    fi
    cache="${TMPDIR:-/tmp}/torchlet-bench-cifar10"
    if [ ! -f "$cache/.complete" ]; then
        echo "== extracting $tarball into $cache"
        rm -rf "$cache" && mkdir -p "$cache"
        tar -xzf "$tarball" -C "$cache"
        touch "$cache/.complete"
    fi
    root="$cache/train"
fi

echo "== building host/data/examples/bench_data.rs (release)"
cargo build --release -p torchlet-data --example bench_data --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/bench_data"

# Both sides read the files from the page cache, not the disk.
find "$root" -type f -print0 | xargs -0 cat > /dev/null

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "== torchlet"
"$bin" "$root" --images "$images" --workers "$workers" | tee "$out/torchlet" | grep -v '^RESULT'
echo "== torchvision"
python3 tools/bench_data_torchvision.py "$root" --images "$images" --workers "$workers" | tee "$out/torchvision" | grep -v '^RESULT'
echo "== torchlet / torchvision (images per second)"
awk '
    FNR == 1 { side++ }
    $1 == "RESULT" { rate[side, $2] = $3; if (side == 1) order[++n] = $2 }
    END {
        printf "%8s %12s %12s %7s\n", "workers", "torchlet", "torchvision", "ratio"
        for (i = 1; i <= n; i++) {
            w = order[i]
            printf "%8s %12.0f %12.0f %6.2fx\n", w, rate[1, w], rate[2, w], rate[1, w] / rate[2, w]
        }
    }' "$out/torchlet" "$out/torchvision"
