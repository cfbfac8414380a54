#!/usr/bin/env bash
# torchlet-gpu against PyTorch's eager CUDA on the same card (issue 8's speed figures): training
# images/s of the zoo's tutorial-cnn at batch 64 and 256, measured by `torchlet bench --device gpu`
# and by tools/bench-gpu-vs-pytorch.py in the same run, then the ratio torchlet / PyTorch.
#   tools/bench-gpu-vs-pytorch.sh                   batches "64 256", 200 timed steps, 20 warm-up
#   BATCHES="64 128 256" ITERS=100 tools/bench-gpu-vs-pytorch.sh
#   TORCHLET=path/to/torchlet tools/bench-gpu-vs-pytorch.sh   (a prebuilt binary; no cargo needed)
# Both sides report the median of per-step times; each step reads its loss back to the host.
# Needs: an NVIDIA GPU with PyTorch's CUDA build for python3, and a Vulkan loader and driver for
# wgpu (libvulkan1 and the NVIDIA ICD; see /work/.library/device/README.md for carrying the
# loader to a device machine). Exits with status 2 and a message when either side is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${BATCHES:-"64 256"}
ITERS=${ITERS:-200}
WARMUP=${WARMUP:-20}
MODEL=${MODEL:-tutorial-cnn}
if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "bench-gpu-vs-pytorch: no CUDA device for PyTorch here (python3 -c 'import torch; torch.cuda.is_available()' is not True); run this on a machine with an NVIDIA GPU and PyTorch's CUDA build" >&2
  exit 2
fi
if [ -z "${TORCHLET:-}" ]; then
  echo "== building torchlet (release)" >&2
  cargo build --release -p torchlet-host --bin torchlet --quiet
  TORCHLET=target/release/torchlet
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for b in $BATCHES; do
  echo "== batch $b" >&2
  # --device gpu takes any adapter; the JSON's "software" field tells lavapipe apart, and the
  # summary below refuses to report a software adapter as a GPU figure.
  if ! "$TORCHLET" bench --model "$MODEL" --device gpu --batch-size "$b" --warmup "$WARMUP" --iters "$ITERS" --json >"$results.t"; then
    echo "bench-gpu-vs-pytorch: torchlet found no GPU through wgpu (Vulkan loader and NVIDIA ICD installed?)" >&2
    exit 2
  fi
  cat "$results.t"
  python3 - "$b" "$results.t" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
if r.get("software_adapter"):
    sys.exit(f"bench-gpu-vs-pytorch: wgpu's adapter is a software one ({r['adapter']}): not a GPU figure")
print(f'RESULT torchlet-gpu batch={sys.argv[1]} images_per_s={r["train_images_per_sec"]:.1f} '
      f'infer_images_per_s={r["infer_images_per_sec"]:.1f} latency_ms={r["latency_ms_batch1"]:.3f} adapter="{r["adapter"]}"')
PY
  python3 tools/bench-gpu-vs-pytorch.py --model "$MODEL" --batch-size "$b" --steps "$ITERS" --warmup "$WARMUP" | tee -a "$results"
done
rm -f "$results.t"
echo
echo "training images/s; torchlet uploads the batch every step; PyTorch with the batch resident on the GPU, and uploaded every step"
echo "batch  torchlet-gpu  pytorch-resident  ratio  pytorch-upload  ratio"
for b in $BATCHES; do
  t=$(grep "^RESULT torchlet-gpu batch=$b " "$results" | sed -E 's/.* images_per_s=([0-9.]+).*/\1/')
  p=$(grep "^RESULT pytorch-cuda batch=$b " "$results" | sed -E 's/.* images_per_s=([0-9.]+).*/\1/')
  u=$(grep "^RESULT pytorch-cuda batch=$b " "$results" | sed -E 's/.* upload_images_per_s=([0-9.]+).*/\1/')
  python3 -c "import sys; b, t, p, u = int(sys.argv[1]), *map(float, sys.argv[2:]); print(f'{b:5d}  {t:12.0f}  {p:16.0f}  {t / p:5.2f}  {u:14.0f}  {t / u:5.2f}')" "$b" "$t" "$p" "$u"
done
grep -h '^RESULT' "$results" | sed -E 's/.*adapter="([^"]*)".*/card: \1/' | sort -u
