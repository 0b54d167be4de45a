"""Downloads: the bytes with their sniffed type, a safe attachment name, the hash as ETag,
conditional requests and single byte ranges."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote
from uuid import UUID

import pytest

from tests.api.conftest import Api, assert_problem, dev
from tests.support import multipart

DATA = bytes(range(256)) * 40  # 10240 bytes, no text: sniffed as octet-stream


@pytest.fixture
def stored(api: Api) -> tuple[str, dict[str, str]]:
    """The content URL of an uploaded file, and its owner's headers."""
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    response = api.client.post(
        f"/api/projects/{project}/artifacts",
        content=multipart.body('Résumé "final" v2.bin'.encode(), DATA),
        headers={**h, "Content-Type": multipart.CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    return f"/api/projects/{project}/artifacts/{response.json()['id']}/content", h


def test_the_whole_file_comes_back_with_safe_headers(
    api: Api, stored: tuple[str, dict[str, str]]
) -> None:
    url, h = stored
    response = api.client.get(url, headers=h)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="R_sum_ _final_ v2.bin"')
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == "Résumé _final_ v2.bin"
    head = api.client.head(url, headers=h)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(DATA))
    assert head.headers["etag"] == response.headers["etag"]


def test_a_matching_etag_answers_not_modified(api: Api, stored: tuple[str, dict[str, str]]) -> None:
    url, h = stored
    etag = api.client.get(url, headers=h).headers["etag"]
    for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = api.client.get(url, headers={**h, "If-None-Match": given})
        assert response.status_code == 304, given
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert api.client.get(url, headers={**h, "If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),
        ("bytes=-999999", 0, 10239),
    ],
)
def test_one_byte_range_is_answered_partially(
    api: Api, stored: tuple[str, dict[str, str]], header: str, first: int, last: int
) -> None:
    url, h = stored
    response = api.client.get(url, headers={**h, "Range": header})
    assert response.status_code == 206, response.text
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "pages=1-2", "bytes=x-"])
def test_several_or_malformed_ranges_get_the_whole_file(
    api: Api, stored: tuple[str, dict[str, str]], header: str
) -> None:
    url, h = stored
    response = api.client.get(url, headers={**h, "Range": header})
    assert response.status_code == 200
    assert response.content == DATA


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_a_range_past_the_end_is_416(
    api: Api, stored: tuple[str, dict[str, str]], header: str
) -> None:
    url, h = stored
    response = api.client.get(url, headers={**h, "Range": header})
    assert_problem(response, 416, "range-not-satisfiable")
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_a_stale_if_range_gets_the_whole_file(api: Api, stored: tuple[str, dict[str, str]]) -> None:
    url, h = stored
    etag = api.client.get(url, headers=h).headers["etag"]
    fresh = api.client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, DATA[:10])
    stale = api.client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": '"old"'})
    assert (stale.status_code, stale.content) == (200, DATA)


def test_an_uploaded_page_is_never_served_as_a_page(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    page = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
    sent = api.client.post(
        f"/api/projects/{project}/artifacts",
        files={"file": ("x.html", page, "text/html")},
        headers=h,
    )
    response = api.client.get(
        f"/api/projects/{project}/artifacts/{sent.json()['id']}/content", headers=h
    )
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["content-security-policy"]


def test_outsiders_and_deleted_documents_get_404(
    api: Api, stored: tuple[str, dict[str, str]]
) -> None:
    url, h = stored
    stranger = dev("zed", api.new_org())
    assert_problem(api.client.get(url, headers=stranger), 404)
    artifact = url.removesuffix("/content")
    assert api.client.delete(artifact, headers=h).status_code == 200
    assert_problem(api.client.get(url, headers=h), 404)
    project = UUID(url.split("/")[3])
    missing = f"/api/projects/{project}/artifacts/{UUID(int=5)}/content"
    assert_problem(api.client.get(missing, headers=h), 404)
