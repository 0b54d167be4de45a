"""Builds the embedder the settings name (the `Embedder` port; docs/decisions/0020-embedder.md)."""

from __future__ import annotations

import threading
from pathlib import Path

from adapters.embedding.minilm_onnx import load_minilm, prepare_minilm
from application.ingestion_ports import Embedder
from interfaces.settings import Settings


def build_embedder(settings: Settings) -> Embedder:
    """The EMBEDDER model, loaded once: share the instance between threads of the process."""
    if settings.embedder == "minilm":
        return load_minilm(
            settings.models_dir, threads=settings.embed_threads, batch_size=settings.embed_batch
        )
    raise ValueError(f"unknown EMBEDDER {settings.embedder!r}")  # pragma: no cover


_shared: dict[tuple[str, Path, int, int], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(settings: Settings) -> Embedder:
    """The process's one instance of the EMBEDDER model (the HTTP app's query embedding and
    the ingestion workers share it: one copy of the weights per process, loaded on first use)."""
    key = (settings.embedder, settings.models_dir, settings.embed_threads, settings.embed_batch)
    with _shared_lock:
        embedder = _shared.get(key)
        if embedder is None:
            embedder = _shared[key] = build_embedder(settings)
        return embedder


def prepare_embedder(settings: Settings) -> Path:
    """Check the model's files and build its cached graph now (`teaim setup`, serve start), so
    the first document does not wait for it."""
    if settings.embedder == "minilm":
        return prepare_minilm(settings.models_dir)
    raise ValueError(f"unknown EMBEDDER {settings.embedder!r}")  # pragma: no cover
