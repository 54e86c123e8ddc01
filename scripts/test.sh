#!/usr/bin/env bash
# The whole test suite: one debug build with coverage (plugins and fixtures included), every test,
# then line coverage per module. Fails if Runtime or PluginSDK drop below 80% of lines.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

swift build --build-tests --enable-code-coverage
swift test --skip-build --enable-code-coverage
python3 scripts/coverage.py .build/debug --min 80
