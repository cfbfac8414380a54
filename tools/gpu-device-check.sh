#!/usr/bin/env bash
# Issue 8's device check in one call of the `device` tool (/work/.library/device/README.md):
# every torchlet-gpu test on the real GPU, the per-shader profile of one training step, and
# torchlet against PyTorch's eager CUDA on the same card (tools/bench-gpu-vs-pytorch.sh).
#
#   here:  tools/gpu-device-check.sh prepare
#          Downloads the Vulkan loader's .debs into .gl/ and builds the release `torchlet` and
#          the torchlet-gpu test binaries into .devbin/ (both ignored through .git/info/exclude).
#   there: device run, command "bash tools/gpu-device-check.sh run", carry [".gl", ".devbin"],
#          timeout_s 420 (it took about 50 s on an H100, plus the machine's start).
#          Unpacks the loader, points it at the NVIDIA driver, and writes card.txt, tests.txt,
#          profile.txt and bench.txt under $OUT (or /tmp/gpu-device-check without one).
#
# `run` also works on a machine with lavapipe and no CUDA (there, PROFILE_BATCHES=4
# PROFILE_WARMUP=1 PROFILE_ITERS=2 keeps the profile short): the tests and the profile run, and
# the PyTorch comparison says why it cannot (exit status 2 of bench-gpu-vs-pytorch.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
  local exclude=.git/info/exclude
  mkdir -p .git/info
  for p in /.gl/ /.devbin/; do
    grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"
  done
  if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update -qq
    (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  rm -rf .devbin
  mkdir -p .devbin/tests
  cargo build --release -p torchlet-host --bin torchlet --quiet
  cp target/release/torchlet .devbin/torchlet
  cargo test --release -p torchlet-gpu --no-run --message-format=json --quiet 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] in (["lib"], ["test"]):
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" ".devbin/tests/$name"; done
  strip .devbin/torchlet .devbin/tests/*
  # Stripped, they are about 75 MB, over the 64 MiB a device call carries: ship them as xz.
  tar -C .devbin -cJf .devbin/bundle.tar.xz torchlet tests
  rm -rf .devbin/torchlet .devbin/tests
  du -sh .gl .devbin
}

run() {
  local out=${OUT:-/tmp/gpu-device-check}
  mkdir -p "$out"
  local bin=/tmp/gpu-device-check-bin
  rm -rf "$bin"
  mkdir -p "$bin"
  tar -C "$bin" -xJf .devbin/bundle.tar.xz
  if [ -d .gl ] && ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
  export XDG_RUNTIME_DIR=/tmp/xdg-runtime
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
  export PROPTEST_RNG_SEED=${PROPTEST_RNG_SEED:-20261126}
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true; } | tee "$out/card.txt"

  echo "== torchlet-gpu tests (TORCHLET_REQUIRE_GPU=1)" | tee "$out/tests.txt"
  local failed=0
  for t in "$bin"/tests/*; do
    if TORCHLET_REQUIRE_GPU=1 "$t" >"$out/t.log" 2>&1; then
      echo "ok   $(basename "$t"): $(grep -h '^test result' "$out/t.log" | tail -1)" | tee -a "$out/tests.txt"
    else
      failed=1
      echo "FAIL $(basename "$t")" | tee -a "$out/tests.txt"
      tail -40 "$out/t.log" | tee -a "$out/tests.txt"
    fi
  done
  rm -f "$out/t.log"

  : >"$out/profile.txt"
  for b in ${PROFILE_BATCHES:-64 256}; do
    echo "== profile, batch $b" | tee -a "$out/profile.txt"
    TORCHLET_GPU_PROFILE=1 "$bin"/torchlet bench --model tutorial-cnn --device gpu --batch-size "$b" \
      --warmup "${PROFILE_WARMUP:-10}" --iters "${PROFILE_ITERS:-50}" 2>&1 | grep -v '^bench:' | tee -a "$out/profile.txt"  || true
  done

  local rc=0
  TORCHLET="$bin"/torchlet bash tools/bench-gpu-vs-pytorch.sh 2>&1 | tee "$out/bench.txt" || rc=$?
  echo "gpu-device-check: tests $([ $failed = 0 ] && echo passed || echo FAILED); bench-gpu-vs-pytorch exit $rc"
  [ $failed = 0 ]
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *)
    echo "usage: tools/gpu-device-check.sh prepare|run (see the comment at the top)" >&2
    exit 2
    ;;
esac
