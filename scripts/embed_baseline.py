#!/usr/bin/env python3
"""The baseline of `orion bench embed`: the sentence-transformers pipeline in Python on the same
model and threads — Hugging Face `tokenizers` (padding to the longest text of a batch, truncation
at 256), ONNX Runtime's Python API, mean pooling and L2 normalisation in numpy.

    python3 scripts/embed_baseline.py --model M.onnx --tokenizer tokenizer.json --texts T.json \\
        --threads 1 --batches 1,32 --rounds 3

T.json is a list of strings. Prints one JSON object: embeddings per second per batch size, the
fastest of the rounds.
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(args.tokenizer)
    tokenizer.enable_truncation(args.max_tokens)
    tokenizer.enable_padding()  # to the longest text of each batch
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    texts = json.load(open(args.texts))

    def embed(batch):
        encodings = tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    result = {}
    for size in [int(b) for b in args.batches.split(",")]:
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        embed(batches[0])  # warm-up
        best = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            for batch in batches:
                embed(batch)
            best = min(best, time.perf_counter() - start)
        result[str(size)] = len(texts) / best
    print(json.dumps(result))


if __name__ == "__main__":
    main()
