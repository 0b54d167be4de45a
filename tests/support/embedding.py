"""The real embedder for integration tests, loaded once per test process, and a counting wrapper.

Import the fixture into a test module (`from tests.support.embedding import real_embedder`).
The model is loaded by a cached function rather than by the fixture itself: pytest makes one
fixture definition per module that imports it, and the model should load once per process
however many modules use it. Its graph is built into a temporary folder removed at exit.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from adapters.embedding.minilm_onnx import OnnxMiniLmEmbedder, load_minilm
from application.ingestion_ports import Embedder


@cache
def shared_real_embedder() -> OnnxMiniLmEmbedder:
    """all-MiniLM-L6-v2 as the service builds it (two threads, batches of 16)."""
    models = Path(tempfile.mkdtemp(prefix="teaim-test-models-"))
    atexit.register(shutil.rmtree, models, ignore_errors=True)
    return load_minilm(models, threads=2, batch_size=16)


@pytest.fixture(scope="session")
def real_embedder() -> OnnxMiniLmEmbedder:
    """The default model, shared by every test of the process (it is thread-safe)."""
    return shared_real_embedder()


class CountingEmbedder:
    """Wraps an embedder and counts what reaches it (to prove the cache spared the model)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The inner embedder's vectors, counted."""
        self.calls += 1
        self.texts_embedded += len(texts)
        return self.inner.embed(texts)
