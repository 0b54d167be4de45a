"""embed_with_cache: the same vectors as the embedder, each distinct text embedded once ever."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.embedding import ROUND_TEXTS, EmbedderContractError, embed_with_cache
from domain.chunking import text_sha256
from tests.support.fake_embedder import FakeEmbedder, MemoryEmbeddingCache, fake_vector

texts_lists = st.lists(st.text(max_size=40), max_size=30)


@given(texts=texts_lists)
def test_vectors_are_the_embedders_in_order(texts: list[str]) -> None:
    assert embed_with_cache(FakeEmbedder(), MemoryEmbeddingCache(), texts) == [
        fake_vector(t) for t in texts
    ]


@given(first=texts_lists, second=texts_lists)
def test_each_distinct_text_is_embedded_once_across_calls(
    first: list[str], second: list[str]
) -> None:
    embedder, cache = FakeEmbedder(), MemoryEmbeddingCache()

    embed_with_cache(embedder, cache, first)
    again = embed_with_cache(embedder, cache, first + second)

    assert embedder.texts_embedded == len(set(first) | set(second))
    assert again == [fake_vector(t) for t in first + second]


def test_a_fully_cached_call_never_reaches_the_embedder() -> None:
    embedder, cache = FakeEmbedder(), MemoryEmbeddingCache()
    texts = ["sign-off of stage two", "risk register", "sign-off of stage two"]
    embed_with_cache(embedder, cache, texts)
    calls = embedder.calls

    embed_with_cache(embedder, cache, list(reversed(texts)))

    assert embedder.calls == calls == 1
    assert set(cache.rows) == {(embedder.model_id, text_sha256(t)) for t in texts}


def test_vectors_of_two_models_are_kept_apart() -> None:
    cache = MemoryEmbeddingCache()
    embed_with_cache(FakeEmbedder("model-a"), cache, ["contract renewal"])
    other = FakeEmbedder("model-b")

    embed_with_cache(other, cache, ["contract renewal"])

    assert other.texts_embedded == 1


def test_long_inputs_go_in_bounded_rounds() -> None:
    embedder, cache = FakeEmbedder(), MemoryEmbeddingCache()
    texts = [f"chunk {i}" for i in range(ROUND_TEXTS * 2 + 1)]

    vectors = embed_with_cache(embedder, cache, texts)

    assert len(vectors) == len(texts)
    assert (embedder.calls, cache.reads, cache.writes) == (3, 3, 3)


class ShortEmbedder(FakeEmbedder):
    def embed(self, texts: Sequence[str]) -> list[list[float]]:  # noqa: ARG002
        return []


def test_an_embedder_that_drops_vectors_is_refused_not_misaligned() -> None:
    with pytest.raises(EmbedderContractError):
        embed_with_cache(ShortEmbedder(), MemoryEmbeddingCache(), ["a", "b"])
