#!/usr/bin/env bash
# cargo runner: qemu-run.sh <elf>; exit status = the firmware's semihosting exit status (124 = timeout).
# QEMU_MACHINE / QEMU_CPU pick the board, QEMU_TIMEOUT bounds the run, QEMU_EXTRA adds flags.
set -uo pipefail
elf="$1"; shift
exec timeout "${QEMU_TIMEOUT:-120}" qemu-system-arm -machine "${QEMU_MACHINE:-mps2-an386}" \
  -cpu "${QEMU_CPU:-cortex-m4}" -display none -serial null -monitor none \
  -semihosting-config enable=on,target=native ${QEMU_EXTRA:-} -kernel "$elf" </dev/null
