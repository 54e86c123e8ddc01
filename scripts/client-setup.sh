#!/usr/bin/env bash
# Installs the real `openai` Python client (pinned, wheels only) into .deps/client for the tests that
# call Orion's OpenAI-compatible API with it unchanged (Tests/GatewayTests/OpenAIClientTests.swift).
# Reruns do nothing once it is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENT=.deps/client
OPENAI_VERSION=3.54.0
mkdir -p .deps
exec 9>".deps/.client-setup.lock"
flock 9

if PYTHONPATH="$CLIENT" python3 -c "import openai, sys; sys.exit(0 if openai.__version__ == '$OPENAI_VERSION' else 1)" 2>/dev/null; then
  exit 0
fi
echo "client-setup: installing openai $OPENAI_VERSION into $CLIENT" >&2
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --only-binary=:all: --upgrade --target "$CLIENT" "openai==$OPENAI_VERSION"
