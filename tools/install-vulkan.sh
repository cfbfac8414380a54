#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe) so that wgpu, and with it torchlet-gpu's
# tests, run on a machine without a GPU (shared/docs/embedded-and-gpu-recipes.md, part A).
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 && ldconfig -p | grep -q libvulkan.so.1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri
ls /usr/share/vulkan/icd.d/lvp_icd.*.json
