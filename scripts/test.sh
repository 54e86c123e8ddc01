#!/usr/bin/env bash
# The whole test suite: one debug build with coverage (plugins and fixtures included), every test,
# a bounded schemathesis run against the served OpenAPI document (scripts/fuzz.sh), then line
# coverage per module. Fails if Runtime or PluginSDK drop below 80% of lines.
set -euo pipefail
cd "$(dirname "$0")/.."
# redis-server: the ratelimit-redis tests start their own, on loopback. postgresql: the store
# contract and multi-node tests each create a database on the loopback cluster started below.
ORION_APT_EXTRA=(redis-server postgresql)
source scripts/setup.sh
source scripts/postgres-setup.sh
# The real openai Python client, for the tests that call the OpenAI-compatible API with it.
bash scripts/client-setup.sh

# The C and C++ plugins are instrumented as well (Package.swift reads ORION_COVERAGE).
export ORION_COVERAGE=1
swift build --build-tests --enable-code-coverage
swift test --skip-build --enable-code-coverage
# API fuzzing against /openapi.json on a real server: no request may get a 5xx.
ORION_FUZZ_SECONDS="${ORION_FUZZ_SECONDS:-90}" bash scripts/fuzz.sh
python3 scripts/coverage.py .build/debug --min 80
