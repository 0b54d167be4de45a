"""One contract, two blob stores: the local directory and S3 (a real moto server)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from adapters.blobs.local import LocalBlobStore, UnsafeBlobKeyError
from adapters.blobs.s3 import MIN_PART_BYTES, S3BlobStore, make_s3_client
from application.ports import (
    BlobNotFoundError,
    BlobRangeError,
    BlobStore,
    BlobTooLargeError,
)
from domain.blob_keys import blob_key, blob_prefix
from interfaces.blob_store import build_blob_store
from interfaces.settings import Settings
from tests.support.s3_server import TEST_BUCKET, TEST_REGION, running_s3_server

ORG = UUID("00000000-0000-4000-8000-0000000000aa")
PROJECT = UUID("00000000-0000-4000-8000-0000000000bb")
MIB = 1024 * 1024
# Over one S3 part, so the multipart path runs (and the local store sees many chunks).
BIG = 2 * MIN_PART_BYTES + 12_345


class SourceBrokeError(Exception):
    """What a failing upload source raises."""


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_store(s3_endpoint: str) -> S3BlobStore:
    client = make_s3_client(
        endpoint_url=s3_endpoint,
        region=TEST_REGION,
        access_key_id="test",
        secret_access_key="test",
    )
    return S3BlobStore(client, TEST_BUCKET, part_bytes=MIN_PART_BYTES)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    s3: S3BlobStore = request.getfixturevalue("s3_store")
    return s3


def new_key(name: str = "report.pdf") -> str:
    return blob_key(ORG, PROJECT, uuid4(), name)


def pattern(size: int) -> bytes:
    # Not periodic at any power-of-two offset, so a misplaced range shows.
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


def chunked(data: bytes, chunk: int = 64 * 1024) -> Iterator[bytes]:
    for at in range(0, len(data), chunk):
        yield data[at : at + chunk]


def big_source(size: int, chunk: int = MIB) -> Iterator[bytes]:
    block = os.urandom(chunk)
    sent = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def breaking(data: Iterator[bytes], after_bytes: int) -> Iterator[bytes]:
    sent = 0
    for chunk in data:
        if sent >= after_bytes:
            raise SourceBrokeError
        sent += len(chunk)
        yield chunk
    raise SourceBrokeError


def read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.open_range(key, start, end))


def assert_nothing_stored(store: BlobStore, key: str) -> None:
    assert not store.exists(key)
    assert store.size(key) is None
    if isinstance(store, S3BlobStore):
        client = store._client
        uploads = client.list_multipart_uploads(Bucket=TEST_BUCKET, Prefix=key)
        assert uploads.get("Uploads", []) == []


@pytest.mark.parametrize("size", [1, 1000, 300 * 1024])
def test_round_trip_measures_size_and_sha256(store: BlobStore, size: int) -> None:
    data = pattern(size)
    key = new_key()
    stored = store.put(key, chunked(data, 4096), max_bytes=size)
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists(key)
    assert store.size(key) == size
    assert read(store, key) == data


def test_a_large_blob_streams_through(store: BlobStore) -> None:
    digest = hashlib.sha256()
    source = big_source(BIG)

    def tee() -> Iterator[bytes]:
        for chunk in source:
            digest.update(chunk)
            yield chunk

    key = new_key()
    stored = store.put(key, tee(), max_bytes=BIG)
    assert stored == type(stored)(size=BIG, sha256=digest.hexdigest())
    assert store.size(key) == BIG
    check = hashlib.sha256()
    for chunk in store.open_range(key):
        check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


def test_an_empty_blob_is_stored(store: BlobStore) -> None:
    key = new_key()
    stored = store.put(key, iter([]), max_bytes=10)
    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.size(key) == 0
    with pytest.raises(BlobRangeError):
        read(store, key)


def test_range_reads(store: BlobStore) -> None:
    data = pattern(200_000)
    key = new_key()
    store.put(key, chunked(data), max_bytes=len(data))
    last = len(data) - 1
    assert read(store, key, 0, 0) == data[:1]
    assert read(store, key, 100_000, 100_099) == data[100_000:100_100]
    assert read(store, key, last, last) == data[-1:]
    assert read(store, key, 150_000) == data[150_000:]
    assert read(store, key, 199_990, 10**9) == data[199_990:]  # an end past the blob is cut
    with pytest.raises(BlobRangeError):
        read(store, key, len(data))
    with pytest.raises(ValueError, match="bad byte range"):
        read(store, key, 10, 5)


def test_a_missing_blob(store: BlobStore) -> None:
    key = new_key()
    assert not store.exists(key)
    assert store.size(key) is None
    with pytest.raises(BlobNotFoundError):
        read(store, key)
    store.delete(key)  # no error


@pytest.mark.parametrize("size", [1000, BIG])
def test_over_the_limit_leaves_nothing(store: BlobStore, size: int) -> None:
    key = new_key()
    with pytest.raises(BlobTooLargeError):
        store.put(key, big_source(size, 64 * 1024), max_bytes=size - 1)
    assert_nothing_stored(store, key)


@pytest.mark.parametrize("broken_after", [0, 5000, MIN_PART_BYTES + MIB])
def test_a_failing_source_leaves_nothing(store: BlobStore, broken_after: int) -> None:
    key = new_key()
    with pytest.raises(SourceBrokeError):
        store.put(key, breaking(big_source(BIG), broken_after), max_bytes=BIG)
    assert_nothing_stored(store, key)


def test_delete(store: BlobStore) -> None:
    key, other = new_key(), new_key()
    store.put(key, [b"gone"], max_bytes=10)
    store.put(other, [b"stays"], max_bytes=10)
    store.delete(key)
    assert_nothing_stored(store, key)
    assert read(store, other) == b"stays"


def test_a_key_written_twice_holds_the_second(store: BlobStore) -> None:
    key = new_key()
    store.put(key, [b"first"], max_bytes=10)
    store.put(key, [b"second"], max_bytes=10)
    assert read(store, key) == b"second"


# The local store's own guarantees ------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "org/../../x",
        "/etc/passwd",
        "org/a/../../../x",
        "org//x",
        "org/x\0y",
        "",
        ".",
        "org/.",
    ],
)
def test_the_local_store_refuses_keys_outside_its_root(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(UnsafeBlobKeyError):
        store.put(key, [b"x"], max_bytes=10)
    assert list((tmp_path / "blobs").iterdir()) == []
    assert not (tmp_path / "x").exists()


def test_the_local_store_refuses_a_symlink_out(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalBlobStore(root)
    (root / "org").symlink_to(outside)
    with pytest.raises(UnsafeBlobKeyError):
        store.put("org/x", [b"x"], max_bytes=10)
    assert list(outside.iterdir()) == []


def test_local_files_and_directories_are_private(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    key = new_key()
    store.put(key, [b"secret"], max_bytes=10)
    path = root / key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    directory = path.parent
    while directory != root:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        directory = directory.parent
    # No temporary file is left beside the blob.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(
        st.text(max_size=300),
        st.sampled_from(["../../x", "/abs/path", "a\0b", "\u202eexe.pdf", "z" * 10_000]),
    )
)
def test_a_crafted_name_lands_under_its_project(tmp_path: Path, name: str) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    key = blob_key(ORG, PROJECT, uuid4(), name)
    store.put(key, [b"x"], max_bytes=1)
    project_dir = (root / blob_prefix(ORG, PROJECT)).resolve()
    path = (root / key).resolve()
    assert path.parent == project_dir
    assert path.read_bytes() == b"x"
    store.delete(key)


def test_a_unicode_name_round_trips(store: BlobStore) -> None:
    key = new_key("Été 報告 (final) #2 %20 + ok.pdf")
    store.put(key, [b"abc"], max_bytes=3)
    assert store.exists(key)
    assert read(store, key, 1) == b"bc"


def test_settings_build_either_store(tmp_path: Path, s3_endpoint: str) -> None:
    local = build_blob_store(Settings(data_dir=tmp_path, blob_store="local"))
    assert isinstance(local, LocalBlobStore)
    key = new_key()
    local.put(key, [b"here"], max_bytes=10)
    assert (tmp_path / "blobs" / key).read_bytes() == b"here"

    with pytest.raises(ValueError, match="S3_BUCKET"):
        build_blob_store(Settings(blob_store="s3"))
    remote = build_blob_store(
        Settings(
            blob_store="s3",
            s3_endpoint_url=s3_endpoint,
            s3_bucket=TEST_BUCKET,
            s3_access_key_id="test",
            s3_secret_access_key=SecretStr("test"),
        )
    )
    assert isinstance(remote, S3BlobStore)
    remote.put(key, [b"there"], max_bytes=10)
    assert read(remote, key) == b"there"
