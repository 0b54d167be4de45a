"""Fetching a document from a URL: the SSRF-safe fetcher on the real route, each hostile URL
refused with its reason code (never the address it resolved to), nothing stored."""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from adapters.fetch.address_policy import AddressPolicy, IPAddress
from interfaces.url_fetch import UrlFetchSetup
from tests.api.conftest import Api, _build, assert_problem, dev
from tests.support.clocks import SettableClock
from tests.support.fetch_server import FetchSite, fetch_site

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

# The production policy, with a resolver that knows the test's names (decision 0018).
_NAMES = {
    "intranet.test": "10.0.0.7",
    "metadata.test": "169.254.169.254",
    "mixed.test": "93.184.216.34",  # plus a private one below: refused whole
    "site.test": "127.0.0.1",
}


async def _resolve(host: str, port: int) -> Sequence[IPAddress]:
    del port
    if host == "mixed.test":
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("192.168.1.1")]
    if host in _NAMES:
        return [ipaddress.ip_address(_NAMES[host])]
    # Numeric names such as 2130706433 resolve as glibc would: the fetcher refuses them
    # before asking (they are read as IPv4 literals), so this is never reached for them.
    raise AssertionError(f"unexpected lookup of {host}")


PRODUCTION = UrlFetchSetup(resolve=_resolve, allowed_ports=None, total_seconds=10.0)
# Test only: the loopback test server is reachable (127.0.0.1 alone, not 127.0.0.2).
LOOPBACK = replace(
    PRODUCTION, policy=AddressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
)


@pytest.fixture
def site() -> Iterator[FetchSite]:
    with fetch_site() as served:
        yield served


@pytest.fixture
def scene(api: Api) -> tuple[UUID, dict[str, str]]:
    org = api.new_org()
    return api.create_project("olive", org), dev("olive", org)


def blob_files(api: Api) -> list[Path]:
    root = api.runtime.settings.blob_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def fetch(api: Api, project: UUID, h: dict[str, str], url: str, **extra: object) -> httpx.Response:
    return api.client.post(
        f"/api/projects/{project}/artifacts/from-url", json={"url": url, **extra}, headers=h
    )


def test_an_allowed_url_is_fetched_stored_and_recorded(
    api: Api, scene: tuple[UUID, dict[str, str]], site: FetchSite
) -> None:
    api.runtime.url_fetch = LOOPBACK
    project, h = scene
    url = site.url("/to-ok")  # a redirect, re-checked, to /ok
    response = fetch(api, project, h, url, name="Greeting.txt", tags=["web"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["mime"], body["claimed_mime"], body["size"]) == ("text/plain", "text/plain", 5)
    detail = api.client.get(f"/api/projects/{project}/artifacts/{body['id']}", headers=h).json()
    assert (detail["source"], detail["source_url"]) == ("url", url)
    assert (detail["name"], detail["tags"]) == ("Greeting.txt", ["web"])
    content = api.client.get(f"/api/projects/{project}/artifacts/{body['id']}/content", headers=h)
    assert content.content == b"hello"
    # The same page again is the same document.
    again = fetch(api, project, h, site.url("/ok"))
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    assert len(blob_files(api)) == 1


HOSTILE = [
    ("http://2130706433/", "loopback_address"),
    ("http://0x7f.1/", "loopback_address"),
    ("http://127.1/", "loopback_address"),
    ("http://0177.0.0.1/", "invalid_url"),
    ("http://[::ffff:127.0.0.1]/", "loopback_address"),
    ("http://[::1]/", "loopback_address"),
    ("http://[64:ff9b::7f00:1]/", "loopback_address"),
    ("http://169.254.169.254/latest/meta-data/", "metadata_address"),
    ("http://metadata.test/latest/meta-data/", "metadata_address"),
    ("http://intranet.test/wiki", "private_address"),
    ("http://mixed.test/", "private_address"),
    ("http://100.64.0.1/", "shared_address_space"),
    ("http://0.0.0.0/", "unspecified_address"),
    ("http://224.0.0.1/", "multicast_address"),
    ("http://user@127.0.0.1/", "userinfo_not_allowed"),
    ("file:///etc/passwd", "scheme_not_allowed"),
    ("gopher://127.0.0.1:70/", "scheme_not_allowed"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[u for u, _ in HOSTILE])
def test_a_hostile_url_is_refused_with_its_reason(
    api: Api, scene: tuple[UUID, dict[str, str]], url: str, reason: str
) -> None:
    api.runtime.url_fetch = PRODUCTION
    project, h = scene
    before = api.max_position()
    response = fetch(api, project, h, url)
    body = assert_problem(response, 422, "fetch-refused")
    assert body["reason"] == reason
    for address in ("127.0.0.1", "10.0.0.7", "192.168.1.1", "169.254.169.254"):
        if address not in url:
            assert address not in response.text  # never the address a name resolved to
    assert blob_files(api) == []
    assert api.max_position() == before


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-loopback", "loopback_address"),  # a redirect to 127.0.0.2: refused at the hop
        ("/to-metadata", "metadata_address"),
        ("/exe", "content_type_not_allowed"),
        ("/gzip", "content_encoding_not_allowed"),
        ("/missing", "http_status"),
        ("/loop", "too_many_redirects"),
    ],
)
def test_a_reachable_site_is_still_refused_for_what_it_answers(
    api: Api, scene: tuple[UUID, dict[str, str]], site: FetchSite, path: str, reason: str
) -> None:
    api.runtime.url_fetch = LOOPBACK
    project, h = scene
    before = api.max_position()
    response = fetch(api, project, h, site.url(path))
    assert assert_problem(response, 422, "fetch-refused")["reason"] == reason
    assert blob_files(api) == []
    assert api.max_position() == before


def test_a_body_past_the_blob_limit_is_refused_and_not_kept(
    api: Api, clock: SettableClock, site: FetchSite
) -> None:
    runtime, app = _build(api.database_url, clock, blob_max_bytes=1000)  # the site sends 5000
    runtime.url_fetch = LOOPBACK
    org = api.new_org()
    project = api.create_project("olive", org)
    before = api.max_position()
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/big-declared", "/big-undeclared"):
            response = client.post(
                f"/api/projects/{project}/artifacts/from-url",
                json={"url": site.url(path)},
                headers=dev("olive", org),
            )
            reason = assert_problem(response, 422, "fetch-refused")["reason"]
            assert reason == "body_too_large"
        root = runtime.settings.blob_dir
        assert [p for p in root.rglob("*") if p.is_file()] == []
    assert api.max_position() == before


def test_a_name_resolving_to_the_test_server_is_refused_by_the_production_policy(
    api: Api, scene: tuple[UUID, dict[str, str]], site: FetchSite
) -> None:
    api.runtime.url_fetch = PRODUCTION
    project, h = scene
    response = fetch(api, project, h, site.url("/ok", host="site.test"))
    assert assert_problem(response, 422, "fetch-refused")["reason"] == "loopback_address"
    assert site.hosts_seen == []  # not even connected to
