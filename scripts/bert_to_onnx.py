#!/usr/bin/env python3
"""Writes a BERT encoder (Hugging Face `model.safetensors` + `config.json`) as an ONNX graph.

    python3 scripts/bert_to_onnx.py MODEL_DIR OUT.onnx

Needs `onnx`, `numpy` and `safetensors` only. The graph has the inputs `input_ids` and
`attention_mask` (int64, [batch, sequence]) and the output `last_hidden_state` (float32,
[batch, sequence, hidden]); pooling and normalisation are the embed-local plugin's work, so any
BERT-family checkpoint in this layout converts the same way. Single-segment input only: token
type 0 is folded into the embeddings.

The output is deterministic: the same inputs and `onnx` version give the same bytes, so the
file's sha256 can be pinned in plugins.d/.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17
IR_VERSION = 8


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []
        self.names = set()
        self.counter = 0

    def const(self, name, array):
        if name not in self.names:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
            self.names.add(name)
        return name

    def weight(self, key, transpose=False):
        array = self.weights[key]
        if transpose:
            array = array.T
        return self.const(key + (".T" if transpose else ""), array.astype(np.float32))

    def op(self, op_type, inputs, **attrs):
        self.counter += 1
        out = f"{op_type.lower()}_{self.counter}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self.counter}", **attrs))
        return out

    def linear(self, x, prefix):
        # torch.nn.Linear stores [out, in]; MatMul wants [in, out].
        y = self.op("MatMul", [x, self.weight(prefix + ".weight", transpose=True)])
        return self.op("Add", [y, self.weight(prefix + ".bias")])

    def layer_norm(self, x, prefix, eps):
        return self.op(
            "LayerNormalization", [x, self.weight(prefix + ".weight"), self.weight(prefix + ".bias")],
            axis=-1, epsilon=eps)


def convert(model_dir: Path, out: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert":
        raise SystemExit(f"{model_dir}: model_type is {config.get('model_type')!r}; this converter handles 'bert'")
    if config.get("hidden_act") != "gelu":
        raise SystemExit(f"{model_dir}: hidden_act {config.get('hidden_act')!r} is not supported (only 'gelu')")
    weights = load_file(str(model_dir / "model.safetensors"))
    # Checkpoints saved from BertModel have no prefix; from BertFor* they carry "bert.".
    if "bert.embeddings.word_embeddings.weight" in weights:
        weights = {k[len("bert."):]: v for k, v in weights.items() if k.startswith("bert.")}
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = hidden // heads
    layers = config["num_hidden_layers"]
    eps = float(config.get("layer_norm_eps", 1e-12))
    max_positions = config["max_position_embeddings"]

    g = Graph(weights)
    i64 = lambda *values: np.array(values, dtype=np.int64)

    # Embeddings: word + position + token type 0, then LayerNorm.
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"], axis=0)
    # Position ids as a torch export builds them: a slice of the constant [1, max_positions] row.
    shape = g.op("Shape", ["input_ids"])
    seq = g.op("Gather", [shape, g.const("one_index", i64(1))], axis=0)
    position_row = g.const("position_ids", np.arange(max_positions, dtype=np.int64).reshape(1, max_positions))
    positions = g.op("Slice", [position_row, g.const("zero_1d", i64(0)), seq, g.const("one_1d", i64(1))])
    position_vectors = g.op("Gather", [g.weight("embeddings.position_embeddings.weight"), positions], axis=0)
    token_type = g.const("token_type_0", weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32))
    x = g.op("Add", [words, position_vectors])
    x = g.op("Add", [x, token_type])
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # Additive attention mask, [batch, 1, 1, sequence]: 0 where attended, the float minimum elsewhere.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const("mask_axes", i64(1, 2))])
    inverted = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask])
    bias = g.op("Mul", [inverted, g.const("float_min", np.array(np.finfo(np.float32).min, dtype=np.float32))])

    split_heads = g.const("split_heads_shape", i64(0, 0, heads, head_dim))
    merge_heads = g.const("merge_heads_shape", i64(0, 0, hidden))
    scale = g.const("attention_scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))
    one = g.const("one_f", np.array(1.0, dtype=np.float32))

    for n in range(layers):
        p = f"encoder.layer.{n}"
        q = g.op("Reshape", [g.linear(x, f"{p}.attention.self.query"), split_heads])
        k = g.op("Reshape", [g.linear(x, f"{p}.attention.self.key"), split_heads])
        v = g.op("Reshape", [g.linear(x, f"{p}.attention.self.value"), split_heads])
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = g.op("MatMul", [q, k])
        scores = g.op("Mul", [scores, scale])
        scores = g.op("Add", [scores, bias])
        probs = g.op("Softmax", [scores], axis=-1)
        context = g.op("MatMul", [probs, v])
        context = g.op("Transpose", [context], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        attended = g.linear(context, f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", [attended, x]), f"{p}.attention.output.LayerNorm", eps)

        # Feed-forward with exact (erf) GELU, as BERT's "gelu".
        h = g.linear(x, f"{p}.intermediate.dense")
        erf = g.op("Erf", [g.op("Div", [h, sqrt2])])
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [erf, one])])
        h = g.linear(h, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [h, x]), f"{p}.output.LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        g.nodes, "bert_encoder",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        outputs=[helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="orion-bert-to-onnx")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python3 scripts/bert_to_onnx.py MODEL_DIR OUT.onnx")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
