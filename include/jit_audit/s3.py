"""The S3 calls every publisher shares: listing, reading, deleting, and writes S3 checks on receipt.

Reads a step cannot do without (an export's manifests and data files) go through
:func:`get_object_explained`: a missing object or a denied read, which S3 answers the same way on
every retry, becomes :class:`ObjectUnreadable`, naming ``s3://bucket/key`` and what to check.

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

from botocore.exceptions import ClientError

#: Every upload asks S3 to check (and store) a SHA-256 checksum of what it received.
CHECKSUM_ALGORITHM = "SHA256"
#: DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000


class IntegrityError(RuntimeError):
    """What was read from or written to S3 is not what it should be (a checksum, a count, a delete)."""


class ObjectUnreadable(RuntimeError):
    """S3 will not hand over an object a step needs: it is missing, or reading it is denied.

    Only for answers a retry gets again (404, 403 AccessDenied); throttling, 5xx and network errors
    stay botocore's own exceptions, for the caller's retries. The message names ``s3://bucket/key``
    and what to check; ``missing`` says which of the two it was.
    """

    def __init__(self, message: str, *, bucket: str, key: str, missing: bool) -> None:
        super().__init__(message)
        self.bucket, self.key, self.missing = bucket, key, missing


#: Error codes with which S3 says an object is not there (GetObject: NoSuchKey; HeadObject: 404).
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
#: Error codes with which S3 refuses a read under IAM, a bucket policy or a KMS key policy. Other 403
#: codes (ExpiredToken, RequestTimeTooSkewed...) may clear on a retry and are left to it.
_DENIED_CODES = frozenset({"AccessDenied", "Forbidden", "403"})


def unreadable(error: ClientError, bucket: str, key: str, *, what: str, if_missing: str,
               missing_error: type[ObjectUnreadable] = ObjectUnreadable) -> ObjectUnreadable | None:
    """The :class:`ObjectUnreadable` S3's ``error`` amounts to, or None if a retry may succeed.

    ``what`` names the object for a reader (``"the export's manifest-files.json"``); ``if_missing``
    says what to check when it is not there.
    """
    code = str(error.response.get("Error", {}).get("Code", ""))
    said = error.response.get("Error", {}).get("Message") or code
    uri = f"s3://{bucket}/{key}"
    if code in _MISSING_CODES:
        return missing_error(f"{uri}: missing: {what} is not in S3 (no such object); {if_missing}",
                             bucket=bucket, key=key, missing=True)
    if code in _DENIED_CODES:
        return ObjectUnreadable(
            f"{uri}: access denied reading {what} (S3 said: {said}): the AWS identity of the connection needs "
            f"s3:GetObject on arn:aws:s3:::{bucket}/{key}, and kms:Decrypt on the object's KMS key if it is "
            "SSE-KMS encrypted; without s3:ListBucket on the bucket, S3 also answers AccessDenied for a key "
            "that does not exist",
            bucket=bucket, key=key, missing=False,
        )
    return None


def get_object_explained(client: Any, bucket: str, key: str, *, what: str, if_missing: str,
                         missing_error: type[ObjectUnreadable] = ObjectUnreadable) -> dict[str, Any]:
    """GetObject's response (``Body`` still to read); a missing or denied object is :class:`ObjectUnreadable`."""
    try:
        return client.get_object(Bucket=bucket, Key=key)  # type: ignore[no-any-return]
    except ClientError as error:
        explained = unreadable(error, bucket, key, what=what, if_missing=if_missing, missing_error=missing_error)
        if explained is None:
            raise
        raise explained from None


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


def object_size(client: Any, bucket: str, key: str) -> int | None:
    """An object's size (HeadObject), or None when S3 says it is not there (404)."""
    try:
        return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise


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
