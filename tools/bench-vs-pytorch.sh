#!/usr/bin/env bash
# torchlet against PyTorch on the CPU, in one run: `torchlet bench --json` (release build) and
# tools/bench_pytorch.py on the same network (the zoo's tutorial-cnn), batch and thread counts,
# PyTorch in both its default layout and channels_last (its fastest on the CPU); then a table
# and the ratio of torchlet to PyTorch's best configuration per figure and thread count.
# Runs alternate between the frameworks so that a machine busy for a while hurts both alike.
#   tools/bench-vs-pytorch.sh                      threads 1 and 2, batch 64, 5 warm-up, 30 timed
#   THREADS="1 2 4" ITERS=50 WARMUP=10 BATCH=64 tools/bench-vs-pytorch.sh
#   OUT=results.jsonl tools/bench-vs-pytorch.sh   also keep the raw JSON lines
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-"1 2"}
ITERS=${ITERS:-30}
WARMUP=${WARMUP:-5}
BATCH=${BATCH:-64}
python3 -c "import torch" 2>/dev/null || { echo "bench-vs-pytorch: PyTorch is not installed for python3 (pip install torch)" >&2; exit 1; }
echo "== building torchlet (release)" >&2
cargo build --release -p torchlet-host --quiet
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for t in $THREADS; do
  echo "== $t thread(s)" >&2
  target/release/torchlet bench --device cpu --model tutorial-cnn --batch-size "$BATCH" --threads "$t" \
    --warmup "$WARMUP" --iters "$ITERS" --json >>"$results"
  for layout in channels_last default; do
    python3 tools/bench_pytorch.py --threads "$t" --layout "$layout" --batch-size "$BATCH" \
      --warmup "$WARMUP" --iters "$ITERS" --json >>"$results"
  done
done
if [ -n "${OUT:-}" ]; then cp "$results" "$OUT"; fi
echo "== cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
python3 tools/bench_pytorch.py --report "$results"
