#!/usr/bin/env bash
# Builds torchlet's instruction-count QEMU plugin: tools/qemu-plugin/build.sh [OUT.so]
# (default target/libinsncount.so). Picks the plugin API from qemu-system-arm's version
# (QEMU < 9: -DQEMU_PLUGIN_API_V1). Needs gcc (or $CC).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../target/libinsncount.so}"
mkdir -p "$(dirname "$out")"
major=$(qemu-system-arm --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
flags=()
if [ -n "$major" ] && [ "$major" -lt 9 ]; then flags+=(-DQEMU_PLUGIN_API_V1); fi
"${CC:-gcc}" -O2 -shared -fPIC -fvisibility=hidden "${flags[@]}" -o "$out.$$.tmp" "$here/insncount.c"
mv "$out.$$.tmp" "$out"
