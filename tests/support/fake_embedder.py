"""A deterministic stand-in for the `Embedder` port, for unit tests of pure logic ONLY.

A hashed bag of words: each lower-cased word adds +1 or -1 (by its hash) to one of 384
dimensions (by its hash), and the sum is L2-normalised. Texts sharing words are close and
texts sharing none are nearly orthogonal, which is all that ranking logic needs; it knows
nothing of meaning (integration tests use the real model: tests/support/embedding.py).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

FAKE_DIMENSIONS = 384
_WORD = re.compile(r"\w+")


def fake_vector(text: str, dimensions: int = FAKE_DIMENSIONS) -> list[float]:
    """The text's normalised hashed bag of words (a fixed unit vector for a text of no words)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return [x / norm for x in vector]


class FakeEmbedder:
    """Hashed bag-of-words vectors; counts its calls and the texts it embedded."""

    dimensions = FAKE_DIMENSIONS

    def __init__(self, model_id: str = "fake-bag-of-words/384") -> None:
        self.model_id = model_id
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        self.calls += 1
        self.texts_embedded += len(texts)
        return [fake_vector(text, self.dimensions) for text in texts]


class MemoryEmbeddingCache:
    """The `EmbeddingCache` port in a dict, for unit tests of the cache logic."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[float]] = {}
        self.reads = 0
        self.writes = 0

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        """The cached vectors among `hashes`."""
        self.reads += 1
        return {h: self.rows[(model_id, h)] for h in hashes if (model_id, h) in self.rows}

    def put_many(self, model_id: str, vectors: dict[str, list[float]]) -> None:
        """Store vectors by text hash; an existing entry is kept."""
        self.writes += 1
        for digest, vector in vectors.items():
            self.rows.setdefault((model_id, digest), vector)
