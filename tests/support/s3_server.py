"""A real S3-compatible server for tests: moto's, in a thread, on loopback only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from adapters.blobs.s3 import make_s3_client

TEST_BUCKET = "teaim-test-blobs"
TEST_REGION = "us-east-1"


@contextmanager
def running_s3_server() -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1 and a free port, with TEST_BUCKET made.

    ip_address matters: moto listens on 0.0.0.0 by default.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = make_s3_client(
            endpoint_url=endpoint,
            region=TEST_REGION,
            access_key_id="test",
            secret_access_key="test",
        )
        client.create_bucket(Bucket=TEST_BUCKET)
        yield endpoint
    finally:
        server.stop()
