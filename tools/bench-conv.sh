#!/usr/bin/env bash
# The issue-2 speed figures in one run: torchlet's single-thread GFLOP/s for the tutorial
# network's three convolutions (forward and backward, batch 64 and 1), then numpy's
# single-thread sgemm peak on the same machine, for comparison.
#   tools/bench-conv.sh            default build (SSE2 baseline, what `cargo build` gives)
#   NATIVE=1 tools/bench-conv.sh   -C target-cpu=native (AVX2/AVX-512 where the CPU has them)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${NATIVE:-}" ]; then export RUSTFLAGS="-C target-cpu=native"; fi
echo "== torchlet (RUSTFLAGS='${RUSTFLAGS:-}')"
cargo bench -p torchlet --bench conv --quiet -- none
echo "== numpy single-thread sgemm"
python3 tools/numpy_sgemm_peak.py
