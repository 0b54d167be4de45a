"""Builds the blob store the settings name (one per runtime: `Runtime.blobs`)."""

from __future__ import annotations

from adapters.blobs.local import LocalBlobStore
from adapters.blobs.s3 import S3BlobStore, make_s3_client
from interfaces.settings import Settings


def build_blob_store(settings: Settings) -> LocalBlobStore | S3BlobStore:
    """The local directory store, or the S3 one when BLOB_STORE=s3 (S3_BUCKET required)."""
    if settings.blob_store == "local":
        return LocalBlobStore(settings.blob_dir)
    if settings.s3_bucket is None:
        raise ValueError("BLOB_STORE=s3 needs S3_BUCKET")
    secret = settings.s3_secret_access_key
    client = make_s3_client(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=None if secret is None else secret.get_secret_value(),
    )
    return S3BlobStore(client, settings.s3_bucket)
