"""The unit tests' stand-in embedder keeps the port's promises: 384 unit floats, deterministic."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tests.support.fake_embedder import FAKE_DIMENSIONS, FakeEmbedder, fake_vector


@given(texts=st.lists(st.text(max_size=60), max_size=10))
def test_vectors_are_unit_length_and_deterministic(texts: list[str]) -> None:
    vectors = FakeEmbedder().embed(texts)

    assert len(vectors) == len(texts)
    for text, vector in zip(texts, vectors, strict=True):
        assert len(vector) == FAKE_DIMENSIONS
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-9)
        assert vector == fake_vector(text)


def test_shared_words_make_texts_closer() -> None:
    def cosine(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(fake_vector(a), fake_vector(b), strict=True))

    assert cosine("stage sign-off by the sponsor", "the sponsor signs the stage") > cosine(
        "stage sign-off by the sponsor", "kitchen cleaning rota"
    )
