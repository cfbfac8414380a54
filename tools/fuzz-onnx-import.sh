#!/usr/bin/env bash
# Fuzzes the ONNX reader (fuzz-host/fuzz_targets/onnx_import.rs: torchlet_host::onnx::import_onnx) with libFuzzer for a bounded
# time, starting from the committed seed corpus. Installs cargo-fuzz if it is missing.
#   tools/fuzz-onnx-import.sh            60 seconds
#   tools/fuzz-onnx-import.sh 600        10 minutes
# New inputs the fuzzer finds go to fuzz-host/corpus-work/ (ignored by git); the committed seeds in
# fuzz-host/corpus/onnx_import/ are only read. A crash leaves its input in fuzz-host/corpus-work/artifacts/
# and fails the script. The seeds are copies of tests/fixtures/onnx/ files (PyTorch exports).
# The target builds torchlet-host (wgpu included) with sanitizers: the first build is slow.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

work="$PWD/fuzz-host/corpus-work/onnx_import"
artifacts="$PWD/fuzz-host/corpus-work/artifacts/"
mkdir -p "$work" "$artifacts"
# The first corpus directory receives new inputs; the second (the seeds) is only read.
cargo +nightly fuzz run --fuzz-dir fuzz-host onnx_import "$work" fuzz-host/corpus/onnx_import -- \
  -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$artifacts" -print_final_stats=1
