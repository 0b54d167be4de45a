"""Blob store on any S3-compatible server (AWS S3, MinIO, Ceph, moto in tests), via boto3.

Uploads stream as a multipart upload, holding at most one part in memory; a blob smaller
than one part is sent with a single PutObject. Any failure aborts the multipart upload, so
neither an object nor orphaned parts remain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from adapters.blobs.metering import MeteredSource, check_range
from application.ports import BlobNotFoundError, BlobRangeError, StoredBlob

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client
    from types_boto3_s3.type_defs import CompletedPartTypeDef

# S3 refuses parts under 5 MiB (all but the last); 8 MiB is what boto3's transfers use.
MIN_PART_BYTES = 5 * 1024 * 1024
DEFAULT_PART_BYTES = 8 * 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}


def make_s3_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeout_seconds: float = 30.0,
) -> S3Client:
    """A client for path-style addressing (what MinIO and moto expect), with bounded waits;
    checksums only when required, so newer botocore still talks to other S3 servers."""
    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


class S3BlobStore:
    """Keys are object keys in one bucket."""

    def __init__(self, client: S3Client, bucket: str, part_bytes: int = DEFAULT_PART_BYTES):
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"S3 parts are at least {MIN_PART_BYTES} bytes")
        self._client = client
        self._bucket = bucket
        self._part_bytes = part_bytes

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> StoredBlob:
        metered = MeteredSource(chunks, max_bytes)
        source = iter(metered)
        first = self._fill_part(source)
        if len(first) < self._part_bytes:
            # The whole blob fitted in one part: one request, nothing to abort on failure.
            self._client.put_object(Bucket=self._bucket, Key=key, Body=bytes(first))
            return metered.result()
        upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=key)["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            part = first
            while part:
                number = len(parts) + 1
                answer = self._client.upload_part(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(part),
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                part = self._fill_part(source)
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Best effort: the original error is what the caller must see.
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id
                )
            raise
        return metered.result()

    def _fill_part(self, source: Iterator[bytes]) -> bytearray:
        # Chunks are taken whole, so a part may overshoot by one chunk: still bounded, since
        # the metered source has refused any chunk past the blob's limit.
        part = bytearray()
        for chunk in source:
            part += chunk
            if len(part) >= self._part_bytes:
                break
        return part

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        wanted = f"bytes={start}-{'' if end is None else end}"
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key, Range=wanted)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _MISSING:
                raise BlobNotFoundError(key) from None
            if code == "InvalidRange":
                raise BlobRangeError(f"{start} is past the end") from None
            raise
        return _stream_body(answer["Body"])

    def _head_size(self, key: str) -> int | None:
        try:
            return self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in _MISSING:
                return None
            raise

    def size(self, key: str) -> int | None:
        return self._head_size(key)

    def exists(self, key: str) -> bool:
        return self._head_size(key) is not None

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=key)

    def list_keys(self, prefix: str, *, older_than: datetime) -> Iterator[str]:
        """Keys under `prefix` last modified before `older_than` (unfinished multipart
        uploads are not objects: a bucket lifecycle rule should abort them)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                if item["LastModified"] < older_than:
                    yield item["Key"]


def _stream_body(body: StreamingBody) -> Iterator[bytes]:
    with contextlib.closing(body):
        yield from body.iter_chunks(READ_CHUNK_BYTES)
