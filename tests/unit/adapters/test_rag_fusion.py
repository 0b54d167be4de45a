"""Reciprocal rank fusion and the query vector's checks (pure parts of the RAG search)."""

from __future__ import annotations

import math
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.queries.rag_search import RRF_K, Key, fuse, vector_literal

keys = st.builds(lambda n, i: (UUID(int=n), 1, i), st.integers(0, 30), st.integers(0, 3))
rankings = st.lists(keys, max_size=25, unique=True)


@given(vector=rankings, text=rankings, k=st.integers(1, 30))
def test_fusion_returns_k_distinct_keys_from_either_list_best_first(
    vector: list[Key], text: list[Key], k: int
) -> None:
    fused = fuse(vector, text, k)
    found = [key for key, _ in fused]
    assert len(found) == len(set(found)) == min(k, len(set(vector) | set(text)))
    assert set(found) <= set(vector) | set(text)
    scores = [score for _, score in fused]
    assert scores == sorted(scores, reverse=True)
    for key, score in fused:
        expected = sum(
            1 / (RRF_K + ranking.index(key) + 1) for ranking in (vector, text) if key in ranking
        )
        assert math.isclose(score, expected)


@given(vector=rankings, text=rankings)
def test_a_key_ranked_r_in_both_lists_beats_every_key_ranked_r_or_lower_in_one(
    vector: list[Key], text: list[Key]
) -> None:
    fused = dict(fuse(vector, text, 100))
    for key in set(vector) & set(text):
        worst = max(vector.index(key), text.index(key))
        for other in set(vector) ^ set(text):
            ranking = vector if other in vector else text
            if ranking.index(other) >= worst:
                assert fused[key] > fused[other]


def test_the_query_vector_must_have_the_index_dimensions_and_be_finite() -> None:
    assert vector_literal([]) is None
    assert vector_literal([0.5] * 384) == "[" + ",".join(["0.5"] * 384) + "]"
    with pytest.raises(ValueError, match="384"):
        vector_literal([0.1] * 383)
    with pytest.raises(ValueError, match="finite"):
        vector_literal([math.nan] + [0.0] * 383)


def test_a_tie_goes_to_the_literal_match() -> None:
    # The vector ranking's first and the text ranking's first score the same: the chunk the
    # user's words found comes first, whatever the keys' order.
    by_vector: Key = (UUID(int=1), 1, 0)
    by_text: Key = (UUID(int=2), 1, 0)
    fused = fuse([by_vector], [by_text], 2)
    assert [key for key, _ in fused] == [by_text, by_vector]
    assert fused[0][1] == fused[1][1]
