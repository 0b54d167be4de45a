"""The default `Embedder`: all-MiniLM-L6-v2 on onnxruntime, CPU only, weights from the lock.

Texts are tokenised by the model's own tokenizer (cut at 256 word-pieces, padded to the
longest of the batch), run through the graph built by `minilm_graph` (mean pooling inside),
and L2-normalised here. Queries and passages are embedded alike (no prefixes).

One instance is shared by every thread of a process: onnxruntime's `InferenceSession.run`
and the tokenizer's `encode_batch` are safe to call concurrently, and neither keeps state
between calls. The session's intra-op pool has EMBED_THREADS threads, so a process's
embedding CPU is bounded by that (plus the calling threads).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from numpy.typing import NDArray
from onnxruntime.capi.onnxruntime_pybind11_state import (  # type: ignore[import-untyped]
    Fail,
    InvalidGraph,
    InvalidProtobuf,
)
from tokenizers import Tokenizer

from adapters.embedding.minilm_graph import (
    ATTENTION_MASK,
    INPUT_IDS,
    ensure_graph,
)
from adapters.embedding.minilm_weights import (
    DIMENSIONS,
    MAX_TOKENS,
    MODEL_NAME,
    MiniLmFiles,
    verified_files,
)

log = logging.getLogger("teaim.embedding")

# Characters of one text handed to the tokenizer: its cost grows with the text, while only
# the first 256 word-pieces count. A word-piece covers at most about a hundred characters
# (BERT makes longer words [UNK]), so the cut never moves a real chunk's vector.
MAX_TEXT_CHARS = MAX_TOKENS * 128


def model_id(variant: str, weights_sha256: str) -> str:
    """Model, variant and weights, e.g. `all-MiniLM-L6-v2/onnx-fp32/53aa5117`."""
    return f"{MODEL_NAME}/{variant}/{weights_sha256[:8]}"


class OnnxMiniLmEmbedder:
    """all-MiniLM-L6-v2 vectors: 384 floats, L2-normalised."""

    dimensions = DIMENSIONS

    def __init__(
        self,
        graph: Path,
        tokenizer: Path,
        *,
        model_id: str,
        threads: int = 2,
        batch_size: int = 16,
    ) -> None:
        if threads < 1 or batch_size < 1:
            raise ValueError("threads and batch_size must be at least 1")
        self.model_id = model_id
        self.batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(graph), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text, in order."""
        if not texts:
            return []
        # Batches of similar lengths waste little on padding; the order is restored below.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            embedded = self._run([texts[i][:MAX_TEXT_CHARS] for i in batch])
            for i, vector in zip(batch, embedded.tolist(), strict=True):
                vectors[i] = vector
        return vectors

    def _run(self, texts: list[str]) -> NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (pooled,) = self._session.run(None, {INPUT_IDS: ids, ATTENTION_MASK: mask})
        pooled = np.asarray(pooled, dtype=np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        # An all-zero vector cannot be normalised (no real text gives one); it stays zero
        # rather than becoming NaN.
        normalised: NDArray[np.float32] = pooled / np.maximum(norms, np.float32(1e-12))
        return normalised


def load_minilm(
    models_dir: Path,
    *,
    threads: int = 2,
    batch_size: int = 16,
    files: MiniLmFiles | None = None,
) -> OnnxMiniLmEmbedder:
    """The fp32 embedder: checks the weights, builds the graph into `models_dir` if needed."""
    files = verified_files() if files is None else files
    graph = ensure_graph(files.weights, models_dir)
    identity = model_id("onnx-fp32", files.weights_sha256)
    try:
        return OnnxMiniLmEmbedder(
            graph, files.tokenizer, model_id=identity, threads=threads, batch_size=batch_size
        )
    except (Fail, InvalidGraph, InvalidProtobuf):
        # A cached file that no longer loads (disk damage, an older onnxruntime's leftovers):
        # build it again once rather than refuse to start.
        log.warning("cached embedding graph %s does not load: rebuilding it", graph)
        graph = ensure_graph(files.weights, models_dir, rebuild=True)
        return OnnxMiniLmEmbedder(
            graph, files.tokenizer, model_id=identity, threads=threads, batch_size=batch_size
        )


def prepare_minilm(models_dir: Path) -> Path:
    """Check the weights and build the cached graph now (`teaim setup`, serve start), so the
    first document does not wait for it. Returns the graph's path."""
    return ensure_graph(verified_files().weights, models_dir)
