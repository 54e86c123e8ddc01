#!/usr/bin/env bash
# Builds Orion and its built-in plugins (release) and serves the deployment in orion.yaml and
# plugins.d/ on the embedded defaults. Extra arguments go to `orion serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

swift build -c release
exec .build/release/orion serve --config orion.yaml "$@"
