#!/usr/bin/env bash
# The whole test suite, as CI runs it on a fresh clone (2 cores, no GPU). Installs what it needs.
#   tools/test-all.sh            everything
#   FAST=1 tools/test-all.sh     skip the MCU builds, QEMU and the fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
# Incremental caches only pay off on the next edit; a one-shot run would keep gigabytes of them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
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
    # op families as features (torchlet::ops::family): none, and digits-cnn's only
    RUSTFLAGS=-Dwarnings cargo build -p torchlet --target "$target" --no-default-features --quiet
    RUSTFLAGS=-Dwarnings cargo build -p torchlet --target "$target" --no-default-features --quiet \
      --features op-conv,op-pool,op-activation,op-linear
  done
  step "firmware: Cortex-M4F under qemu-system-arm (mps2-an386): lint, smoke training, defmt and Cortex-M0+ builds, size report"
  tools/install-qemu.sh
  tools/qemu-plugin/build.sh firmware/target/libinsncount.so   # instruction counts (torchlet emulate)
  (cd firmware
   cargo fmt --check
   cargo clippy --release --quiet --lib --bins -- -D warnings
   cargo clippy --quiet --lib --tests --target x86_64-unknown-linux-gnu -- -D warnings
   cargo test --quiet --lib --target x86_64-unknown-linux-gnu   # region checks, I2C frame source, on the host
   cargo run --release --quiet --bin smoke
   RUSTFLAGS=-Dwarnings cargo build --quiet --lib --target thumbv6m-none-eabi --features micromath
   cargo build --release --quiet --features defmt --target-dir target/defmt
   # the STM32F405 memory layout (1 MiB flash, 128 KiB RAM) links with the digits arena
   cargo build --release --quiet --bin classify --no-default-features --features board-stm32f405,arena-digits,all-ops \
     --target-dir target/stm32f405)
  # flash/RAM for digits-cnn and tutorial-cnn, .text split into kernels and runtime; fails unless
  # the linked arena is the plan's and digits-cnn's firmware (its op families) is within its
  # .text budget (host/cli/src/cli/size_report.rs).
  # (The firmware's QEMU tests -- predictions equal the host's, refusals, on-device training --
  # are host/cli/tests/firmware.rs, run with the test suite below.)
  cargo run --quiet -p torchlet-host --bin torchlet -- emulate --size-report
fi

step "micromath approximations stay within their documented error"
cargo test -p torchlet --lib --features micromath --quiet micromath

step "python tools the tests use: TensorBoard reads our event files back; onnx and onnxruntime check exported models"
python3 -m pip install --quiet tensorboard onnx onnxruntime numpy pillow 2>&1 | grep -v "WARNING: Running pip as the 'root' user" || true

step "software Vulkan (lavapipe): torchlet-gpu's tests run for real, not skipped"
tools/install-vulkan.sh
export TORCHLET_REQUIRE_GPU=1
XDG_RUNTIME_DIR=$(mktemp -d)
export XDG_RUNTIME_DIR

step "tests (unit, property-based, PyTorch and torchvision fixtures, TensorBoard, GPU on lavapipe, firmware under QEMU, doctests)"
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
  step "fuzz the restricted pickle reader of torchlet import for 30 s from the committed seeds"
  tools/fuzz-pickle.sh "${PICKLE_FUZZ_SECONDS:-30}"
  # The ONNX target builds the whole host crate (wgpu included) with sanitizers, longer than
  # the rest of this script; mutated PyTorch exports are imported by the test suite instead
  # (host/cli/tests/onnx_import.rs). FUZZ_HOST=1 runs it too.
  if [ -n "${FUZZ_HOST:-}" ]; then
    step "fuzz the ONNX reader for 60 s from the committed seeds"
    tools/fuzz-onnx-import.sh "${FUZZ_SECONDS:-60}"
  fi
fi

step "benchmarks compile"
cargo bench -p torchlet --no-run --quiet

echo
echo "all checks passed"
