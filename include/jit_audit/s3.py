"""The S3 calls every publisher shares: listing, reading, deleting, and writes S3 checks on receipt.

Every upload asks S3 to verify (and store) a SHA-256 checksum of what it received
(:data:`CHECKSUM_ALGORITHM`): :func:`put_checked` for small bodies, :class:`HashingWriter` to take
the SHA-256 of a part while it is spooled for ``upload_fileobj``. Deletes either all succeed or raise.

Plain functions of a boto3 S3 client; no Airflow import.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import IO, Any

#: Every upload asks S3 to check (and store) a SHA-256 checksum of what it received.
CHECKSUM_ALGORITHM = "SHA256"
#: DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000


class IntegrityError(RuntimeError):
    """What was read from or written to S3 is not what it should be (a checksum, a count, a delete)."""


def sha256_b64(body: bytes) -> str:
    """The ``ChecksumSHA256`` form S3 expects: base64 of the raw digest."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class HashingWriter:
    """A write-only stream that hashes what it writes to the file underneath."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._stream.write(data)

    def flush(self) -> None:
        self._stream.flush()


def read_object(client: Any, bucket: str, key: str) -> bytes:
    """The whole object (for manifests and ledger entries: small); S3's errors pass through."""
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def put_checked(client: Any, bucket: str, key: str, body: bytes, **fields: Any) -> None:
    """PutObject with a SHA-256 checksum S3 verifies before it stores the object; ``fields`` go along."""
    client.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                      ChecksumSHA256=sha256_b64(body), **fields)


def list_objects(client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """ListObjectsV2's entries (``Key``, ``LastModified``, ``Size``...) under ``prefix``, every page."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix``, in S3's (byte) order."""
    return [item["Key"] for item in list_objects(client, bucket, prefix)]


def list_folders(client: Any, bucket: str, prefix: str) -> list[str]:
    """The "folders" directly under ``prefix`` (each ending in ``/``): ListObjectsV2's CommonPrefixes."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    return [common["Prefix"] for page in pages for common in page.get("CommonPrefixes", [])]


def delete_keys(client: Any, bucket: str, keys: list[str]) -> None:
    """Delete every key (DeleteObjects, 1,000 at a time); raise unless S3 deleted them all."""
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
        if response.get("Errors"):
            raise IntegrityError(f"could not delete {len(response['Errors'])} objects: {response['Errors'][:3]}")
