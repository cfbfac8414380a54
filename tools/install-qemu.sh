#!/usr/bin/env bash
# Installs qemu-system-arm (for the firmware under emulation) if it is missing.
# Debian bookworm's own qemu-system-arm (7.2) conflicts with the machine's qemu-utils 10.0 from
# bookworm-backports, so take 10.0 from backports through a side apt configuration that leaves
# the system's sources untouched (shared/docs/embedded-and-gpu-recipes.md).
set -euo pipefail
command -v qemu-system-arm >/dev/null && exit 0
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
bpo=$(mktemp -d)
mkdir -p "$bpo/lists/partial" "$bpo/archives/partial" "$bpo/parts"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$bpo/parts/"
  sed -n '1,/^$/p' /etc/apt/sources.list.d/debian.sources \
    | sed 's/^Suites:.*/Suites: bookworm-backports/' > "$bpo/parts/backports.sources"
  APTO=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$bpo/parts"
        -o Dir::State::lists="$bpo/lists" -o Dir::Cache::archives="$bpo/archives"
        -o APT::Sandbox::User=root)
  $SUDO apt-get "${APTO[@]}" update -qq
  $SUDO apt-get "${APTO[@]}" install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm
else
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends qemu-system-arm
fi
qemu-system-arm --version | head -1
