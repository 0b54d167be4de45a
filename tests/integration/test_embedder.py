"""The default embedder (all-MiniLM-L6-v2 on onnxruntime) and the embedding cache, for real."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.embedding.minilm_graph import graph_path, load_verified_weights
from adapters.embedding.minilm_onnx import OnnxMiniLmEmbedder
from adapters.embedding.minilm_weights import (
    WEIGHTS_SHA256,
    WeightsMismatchError,
    package_folder,
    verified_files,
)
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedding_cache import PostgresEmbeddingCaches
from application.embedding import embed_with_cache
from domain.chunking import chunk_pages, text_sha256
from interfaces.embedding import build_embedder, prepare_embedder
from interfaces.settings import Settings
from tests.support.embedding import CountingEmbedder, real_embedder

__all__ = ["real_embedder"]  # the fixture, imported for pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# (query, the passage it means, an unrelated passage); the query shares almost no word with
# its passage.
PARAPHRASES = [
    (
        "when will the new ERP go live",
        "The ERP launch was pushed back to March because the data migration found defects.",
        "The office kitchen is cleaned every Friday afternoon.",
    ),
    (
        "who has to approve the stage before we move on",
        "Stage two cannot close until the client sponsor signs off the deliverables.",
        "Our cloud backup runs nightly and keeps thirty days of snapshots.",
    ),
    (
        "what happens if the supplier's service goes down",
        "The vendor contract includes a 99.9% uptime SLA with service credits for breaches.",
        "Employees accrue 25 days of paid vacation per year.",
    ),
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# The model -----------------------------------------------------------------------------


def test_a_paraphrase_ranks_above_unrelated_text(real_embedder: OnnxMiniLmEmbedder) -> None:
    for query, passage, unrelated in PARAPHRASES:
        q, p, u = real_embedder.embed([query, passage, unrelated])
        assert cosine(q, p) > cosine(q, u) + 0.1, query


def test_vectors_are_384_unit_floats_in_input_order(real_embedder: OnnxMiniLmEmbedder) -> None:
    texts = ["risk register", "", "a much longer text about the steering committee " * 40, "é"]

    vectors = real_embedder.embed(texts)

    assert real_embedder.dimensions == 384
    assert [len(v) for v in vectors] == [384] * len(texts)
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)
    # Order: each text's vector is the one it gets alone.
    for text, vector in zip(texts, vectors, strict=True):
        (alone,) = real_embedder.embed([text])
        assert cosine(alone, vector) > 0.9999


def test_padding_in_a_batch_does_not_change_a_vector(real_embedder: OnnxMiniLmEmbedder) -> None:
    short = "Sign-off is due on Friday."
    (alone,) = real_embedder.embed([short])

    batch = real_embedder.embed([short, "word " * 300])

    assert cosine(alone, batch[0]) > 0.9999


def test_threads_share_one_embedder(real_embedder: OnnxMiniLmEmbedder) -> None:
    texts = [f"meeting note {i}: the client asked for a revised timeline" for i in range(24)]
    serial = real_embedder.embed(texts)

    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda t: real_embedder.embed([t])[0], texts))

    for a, b in zip(serial, parallel, strict=True):
        assert cosine(a, b) > 0.9999


def test_the_model_id_names_model_variant_and_weights(real_embedder: OnnxMiniLmEmbedder) -> None:
    assert real_embedder.model_id == f"all-MiniLM-L6-v2/onnx-fp32/{WEIGHTS_SHA256[:8]}"


# The weights are checked ------------------------------------------------------------------


@pytest.fixture
def copied_model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    source = package_folder()
    (folder / "model.safetensors").symlink_to(source / "model.safetensors")
    shutil.copy(source / "tokenizer.json", folder / "tokenizer.json")
    return folder


def test_the_installed_files_are_the_pinned_ones() -> None:
    files = verified_files()

    assert files.weights_sha256 == WEIGHTS_SHA256
    assert hashlib.sha256(files.weights.read_bytes()).hexdigest() == WEIGHTS_SHA256


def test_a_changed_tokenizer_is_refused(copied_model: Path) -> None:
    verified_files(copied_model)  # the copy as it is passes
    tokenizer = copied_model / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b'"[UNK]"', b'"[UNQ]"', 1))

    with pytest.raises(WeightsMismatchError, match=r"tokenizer\.json has SHA-256"):
        verified_files(copied_model)


def test_other_weights_are_refused(copied_model: Path) -> None:
    weights = copied_model / "model.safetensors"
    weights.unlink()
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")

    with pytest.raises(WeightsMismatchError, match=r"model\.safetensors has SHA-256"):
        verified_files(copied_model)
    with pytest.raises(WeightsMismatchError):
        load_verified_weights(weights)


def test_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsMismatchError, match="missing"):
        verified_files(tmp_path)


# The graph is built once, safely ----------------------------------------------------------

_BUILD = (
    "import sys; from pathlib import Path;"
    " from adapters.embedding.minilm_onnx import prepare_minilm;"
    " print(prepare_minilm(Path(sys.argv[1])))"
)


def test_processes_building_the_graph_at_once_leave_one_whole_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    builders = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD, str(models)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for _ in range(2)
    ]
    outputs = [builder.communicate(timeout=240) for builder in builders]

    assert [b.returncode for b in builders] == [0, 0], [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {str(graph_path(models))}
    assert sorted(p.name for p in models.iterdir()) == [graph_path(models).name]
    files = verified_files()
    loaded = OnnxMiniLmEmbedder(
        graph_path(models), files.tokenizer, model_id="test", threads=1, batch_size=4
    )
    assert len(loaded.embed(["the graph loads"])[0]) == 384


def test_settings_build_the_embedder_under_the_data_dir(
    tmp_path: Path, real_embedder: OnnxMiniLmEmbedder
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, embed_threads=1, embed_batch=4)

    built = prepare_embedder(settings)
    embedder = build_embedder(settings)

    assert built == graph_path(tmp_path / "models")
    assert embedder.model_id == real_embedder.model_id
    (mine,) = embedder.embed(["settings"])
    (theirs,) = real_embedder.embed(["settings"])
    assert cosine(mine, theirs) > 0.9999


def test_a_damaged_cached_graph_is_rebuilt(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, embed_threads=1)
    graph = prepare_embedder(settings)
    graph.write_bytes(b"not a model")

    embedder = build_embedder(settings)

    assert len(embedder.embed(["rebuilt"])[0]) == 384
    assert graph.stat().st_size > 80_000_000


# The cache, on the real database ----------------------------------------------------------


@pytest.fixture
def caches(database_url: str) -> Iterator[PostgresEmbeddingCaches]:
    store = PostgresEmbeddingCaches(DatabaseUrl.parse(database_url))
    yield store
    store.close()


def unit(seed: int) -> list[float]:
    raw = [math.sin(seed * 7 + i) for i in range(384)]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


def test_the_cache_round_trip_keeps_the_first_entry(caches: PostgresEmbeddingCaches) -> None:
    cache = caches.for_project(uuid4(), uuid4())
    a, b = text_sha256("a"), text_sha256("b")

    cache.put_many("model-x", {a: unit(1)})
    cache.put_many("model-x", {a: unit(2), b: unit(3)})
    found = cache.get_many("model-x", [a, b, text_sha256("never stored")])

    assert set(found) == {a, b}
    # float4 in the table: the vectors come back to float32 precision.
    assert max(abs(x - y) for x, y in zip(found[a], unit(1), strict=True)) < 1e-6
    assert max(abs(x - y) for x, y in zip(found[b], unit(3), strict=True)) < 1e-6
    assert cache.get_many("model-y", [a]) == {}
    assert cache.get_many("model-x", []) == {}


def test_entries_are_invisible_to_other_orgs_and_projects(
    caches: PostgresEmbeddingCaches,
) -> None:
    org, project = uuid4(), uuid4()
    digest = text_sha256("the acquisition of Northwind closes on 1 March")
    caches.for_project(org, project).put_many("model-x", {digest: unit(4)})

    assert set(caches.for_project(org, project).get_many("model-x", [digest])) == {digest}
    assert caches.for_project(org, uuid4()).get_many("model-x", [digest]) == {}
    assert caches.for_project(uuid4(), project).get_many("model-x", [digest]) == {}


@pytest.mark.parametrize(
    ("model_id", "digest", "vector"),
    [
        ("model-x", "not-a-hash", unit(5)),
        ("model-x", text_sha256("x").upper(), unit(5)),
        ("", text_sha256("x"), unit(5)),
        ("m" * 201, text_sha256("x"), unit(5)),
        ("model-x", text_sha256("x"), unit(5)[:383]),
        ("model-x", text_sha256("x"), [math.nan] * 384),
    ],
)
def test_malformed_entries_are_refused(
    caches: PostgresEmbeddingCaches, model_id: str, digest: str, vector: list[float]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message varies by case)
        caches.for_project(uuid4(), uuid4()).put_many(model_id, {digest: vector})


def test_re_embedding_a_document_hits_the_cache(
    caches: PostgresEmbeddingCaches, real_embedder: OnnxMiniLmEmbedder
) -> None:
    pages = [
        "Minutes of the steering committee. " + "The client asked for weekly status reports. " * 30,
        "RAID log: the data migration is at risk because the vendor's export is late. " * 20,
    ]
    texts = [chunk.text for chunk in chunk_pages(pages)]
    assert len(texts) > 2
    counting = CountingEmbedder(real_embedder)
    cache = caches.for_project(uuid4(), uuid4())

    first = embed_with_cache(counting, cache, texts)
    after_first = counting.texts_embedded
    again = embed_with_cache(counting, cache, texts)

    assert after_first == len(set(texts))
    assert counting.texts_embedded == after_first  # the rebuild ran no model at all
    assert again == first  # float32 vectors survive the float4 column exactly
    # Another project gets its own entries: its first embedding runs the model.
    embed_with_cache(counting, caches.for_project(uuid4(), uuid4()), texts[:1])
    assert counting.texts_embedded == after_first + 1
