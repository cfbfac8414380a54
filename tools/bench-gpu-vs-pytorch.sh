#!/usr/bin/env bash
# torchlet-gpu against PyTorch's eager CUDA on the same card (issue 8's speed figures): training
# images/s of the zoo's tutorial-cnn at batch 64 and 256, then the ratio torchlet / PyTorch.
#   tools/bench-gpu-vs-pytorch.sh                  batches "64 256", 50 timed steps, 10 warm-up
#   BATCHES="64 128 256" STEPS=100 tools/bench-gpu-vs-pytorch.sh
# Needs: an NVIDIA GPU with PyTorch's CUDA build for python3, and a Vulkan loader and driver for
# wgpu (libvulkan1 and the NVIDIA ICD; see /work/.library/device/README.md for carrying the
# loader to a device machine). Exits with status 2 and a message when either side is missing.
# torchlet must run on a hardware adapter (--device auto): a software adapter is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${BATCHES:-"64 256"}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-10}
if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "bench-gpu-vs-pytorch: no CUDA device for PyTorch here (python3 -c 'import torch; torch.cuda.is_available()' is not True); run this on a machine with an NVIDIA GPU and PyTorch's CUDA build" >&2
  exit 2
fi
echo "== building torchlet-gpu's train_step example (release)" >&2
cargo build --release -p torchlet-gpu --example train_step --quiet
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for b in $BATCHES; do
  echo "== batch $b" >&2
  # --device auto: only a hardware GPU; the example fails rather than time lavapipe.
  # The example's one warm-up step compiles the shaders; WARMUP is PyTorch's (cuDNN autotuning).
  if ! target/release/examples/train_step --device auto --batch "$b" --steps "$STEPS" | tee -a "$results"; then
    echo "bench-gpu-vs-pytorch: torchlet-gpu found no hardware GPU through wgpu (Vulkan loader and NVIDIA ICD installed?)" >&2
    exit 2
  fi
  python3 tools/bench-gpu-vs-pytorch.py --batch-size "$b" --steps "$STEPS" --warmup "$WARMUP" | tee -a "$results"
done
echo
echo "batch  torchlet-gpu img/s  pytorch-cuda img/s  ratio (torchlet / pytorch)"
for b in $BATCHES; do
  t=$(grep "^RESULT torchlet-gpu batch=$b " "$results" | sed -E 's/.*images_per_s=([0-9.]+).*/\1/')
  p=$(grep "^RESULT pytorch-cuda batch=$b " "$results" | sed -E 's/.*images_per_s=([0-9.]+).*/\1/')
  python3 -c "import sys; t, p = float(sys.argv[2]), float(sys.argv[3]); print(f'{int(sys.argv[1]):5d}  {t:18.0f}  {p:18.0f}  {t / p:.2f}')" "$b" "$t" "$p"
done
grep -h '^RESULT' "$results" | sed -E 's/.*adapter="([^"]*)".*/card: \1/' | sort -u
