#!/usr/bin/env bash
# Fuzzes the model-file reader (fuzz/fuzz_targets/model_file.rs) with libFuzzer for a bounded
# time, starting from the committed seed corpus. Installs cargo-fuzz if it is missing.
#   tools/fuzz-model-file.sh            60 seconds
#   tools/fuzz-model-file.sh 600        10 minutes
# New inputs the fuzzer finds go to fuzz/corpus-work/ (ignored by git); the committed seeds in
# fuzz/corpus/model_file/ are only read. A crash leaves its input in fuzz/corpus-work/artifacts/
# and fails the script. Regenerate the seeds with
#   cargo test -p torchlet-tests --test model_file -- --ignored write_fuzz_seeds
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

work="$PWD/fuzz/corpus-work/model_file"
artifacts="$PWD/fuzz/corpus-work/artifacts/"
mkdir -p "$work" "$artifacts"
# The first corpus directory receives new inputs; the second (the seeds) is only read.
cargo +nightly fuzz run model_file "$work" fuzz/corpus/model_file -- \
  -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$artifacts" -print_final_stats=1
