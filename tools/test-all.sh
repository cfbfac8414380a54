#!/usr/bin/env bash
# The whole test suite, as CI runs it on a fresh clone (2 cores, no GPU). Installs what it needs.
#   tools/test-all.sh            everything
#   FAST=1 tools/test-all.sh     skip the MCU builds, QEMU and the fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "toolchain: targets and components"
rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi >/dev/null
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "format"
cargo fmt --all --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "rustdoc (warnings are errors)"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet

if [ -z "${FAST:-}" ]; then
  step "core is no_std without alloc: build for Cortex-M4F and Cortex-M0+"
  for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
    RUSTFLAGS=-Dwarnings cargo build -p torchlet --target "$target" --quiet
    RUSTFLAGS=-Dwarnings cargo build -p torchlet --target "$target" --features defmt,micromath --quiet
  done
  step "firmware: train the digits CNN on a Cortex-M4F under qemu-system-arm (mps2-an386)"
  tools/install-qemu.sh
  (cd firmware && cargo run --release --quiet --bin smoke)
fi

step "micromath approximations stay within their documented error"
cargo test -p torchlet --lib --features micromath --quiet micromath

step "python tools the tests use: TensorBoard reads our event files back"
python3 -m pip install --quiet tensorboard 2>&1 | grep -v "WARNING: Running pip as the 'root' user" || true

step "tests (unit, property-based, PyTorch and torchvision fixtures, TensorBoard, doctests)"
log=$(mktemp)
if ! cargo test --workspace >"$log" 2>&1; then
  tail -120 "$log"
  echo "tests FAILED (full log: $log)"
  exit 1
fi
grep -E "^(test result|     Running|   Doc-tests)" "$log" || true

if [ -z "${FAST:-}" ]; then
  step "fuzz the no_std model-file reader for 60 s from the committed seeds"
  tools/fuzz-model-file.sh "${FUZZ_SECONDS:-60}"
fi

step "benchmarks compile"
cargo bench -p torchlet --no-run --quiet

echo
echo "all checks passed"
