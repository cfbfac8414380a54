#!/usr/bin/env bash
# Fuzzes the restricted pickle reader of `torchlet import` (fuzz/fuzz_targets/pickle.rs, which
# compiles host/cli/src/pytorch/pickle.rs by itself) with libFuzzer for a bounded time, starting
# from the committed seeds (the data.pkl of the fixtures in tests/fixtures/pytorch/, written by
# tools/fixtures/pytorch_state_dicts.py). Installs cargo-fuzz if it is missing.
#   tools/fuzz-pickle.sh            30 seconds
#   tools/fuzz-pickle.sh 600        10 minutes
# New inputs go to fuzz/corpus-work/pickle/ (ignored by git); a crash leaves its input in
# fuzz/corpus-work/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

work="$PWD/fuzz/corpus-work/pickle"
artifacts="$PWD/fuzz/corpus-work/artifacts/"
mkdir -p "$work" "$artifacts"
# The first corpus directory receives new inputs; the second (the seeds) is only read.
cargo +nightly fuzz run pickle "$work" fuzz/corpus/pickle -- \
  -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$artifacts" -print_final_stats=1
