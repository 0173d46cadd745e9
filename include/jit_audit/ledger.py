"""The publication ledger: one append-only, hash-chained (optionally KMS-signed) record per publication.

Each table has a ledger beside its snapshots::

    <prefix>/jsonl/table=<table>/_ledger/000000000000.json
                                         000000000001.json
                                         ...

Entry ``n`` records one publication (a full snapshot, a change window or an ad-hoc result): its URI,
the SHA-256 of the ``_manifest.json`` it published, counts, the export, the Airflow DAG and run, the
time, and ``previous_entry_sha256``, the SHA-256 of entry ``n - 1``'s exact bytes. Entries are created
with ``If-None-Match: *``, so two publishers can never both take sequence ``n``: the one S3 refuses
re-reads the head and tries ``n + 1``. Nothing is ever rewritten; a re-run appends a new entry, and the
newest entry for a URI is the one that counts. Publications may land in any order: the ledger orders
them by when they happened, never by the date they are for.

With a KMS asymmetric key, each entry carries a signature (KMS ``Sign``) over its canonical bytes
without the signature; ``verify`` checks it with the key's public key. Like CloudTrail's digest files,
the chain makes every entry depend on all earlier ones, so a signed head vouches for the whole history.

Plain Python with boto3 clients; no Airflow import.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jit_audit.retry import Backoff, retrying
from jit_audit.s3 import CHECKSUM_ALGORITHM, list_keys, read_object, sha256_b64

# The signing algorithms an entry may use (KMS names); both are verified locally with the public key.
from jit_audit.settings import LEDGER_SIGNING_ALGORITHMS as SIGNING_ALGORITHMS

log = logging.getLogger(__name__)

LEDGER_DIR = "_ledger/"
ENTRY_VERSION = 1
#: Zero-padded so keys list in sequence order.
_ENTRY_KEY = re.compile(r"(?P<sequence>[0-9]{12})\.json")
#: KMS Sign takes at most 4096 bytes as a RAW message.
_MAX_SIGNED_BYTES = 4096
#: S3's answers to a conditional write that lost: the key exists (412), or a concurrent write to it is
#: in flight (409).
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict")


class LedgerError(RuntimeError):
    """The ledger could not be appended to (not an integrity finding: see ``verify``)."""


def ledger_prefix(table_prefix: str) -> str:
    """``<prefix>/jsonl/table=<table>/_ledger/`` for a table prefix ending in ``/``."""
    return table_prefix + LEDGER_DIR


def entry_key(prefix: str, sequence: int) -> str:
    return f"{prefix}{sequence:012d}.json"


def canonical(document: dict[str, Any]) -> bytes:
    """The one byte form of a document: sorted keys, no spaces, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_bytes(document: dict[str, Any]) -> bytes:
    """The stored bytes of an entry (canonical, one line)."""
    return canonical(document) + b"\n"


def signed_message(document: dict[str, Any]) -> bytes:
    """What a signature covers: the canonical bytes of the entry without its ``signature``."""
    return canonical({name: value for name, value in document.items() if name != "signature"})


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One ledger object as read: its key, sequence (from the key), exact bytes and parsed document."""

    key: str
    sequence: int
    raw: bytes
    document: dict[str, Any] | None  # None: not a JSON object

    @property
    def sha256(self) -> str:
        return sha256_hex(self.raw)


@dataclass(frozen=True)
class KmsSigner:
    """Signs entries with an asymmetric KMS key (``kms:Sign``); the key never leaves KMS."""

    client: Any
    key_id: str
    algorithm: str = "ECDSA_SHA_256"

    def sign(self, message: bytes) -> dict[str, str]:
        if len(message) > _MAX_SIGNED_BYTES:
            raise LedgerError(f"a ledger entry of {len(message)} bytes is over KMS Sign's {_MAX_SIGNED_BYTES}")
        try:
            response = self.client.sign(KeyId=self.key_id, Message=message, MessageType="RAW",
                                        SigningAlgorithm=self.algorithm)
        except ClientError as error:
            raise LedgerError(
                f"KMS Sign with {self.key_id} ({self.algorithm}) failed: {error}. Check the key "
                "(jit_audit_ledger_signing_key_id): key usage SIGN_VERIFY, a key spec that signs with "
                "jit_audit_ledger_signing_algorithm, and kms:Sign for this role. Nothing was published."
            ) from error
        return {
            "key_id": response["KeyId"],
            "algorithm": response["SigningAlgorithm"],
            "value": base64.b64encode(response["Signature"]).decode(),
        }


def list_entry_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under the ledger prefix, in key order (entries and anything else found there)."""
    return sorted(list_keys(s3, bucket, prefix))


def sequence_of(prefix: str, key: str) -> int | None:
    match = _ENTRY_KEY.fullmatch(key[len(prefix):]) if key.startswith(prefix) else None
    return int(match["sequence"]) if match else None


def read_entry(s3: Any, bucket: str, prefix: str, key: str) -> Entry:
    raw = read_object(s3, bucket, key)
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    sequence = sequence_of(prefix, key)
    assert sequence is not None, key
    return Entry(key, sequence, raw, document if isinstance(document, dict) else None)


def read_entries(s3: Any, bucket: str, prefix: str) -> tuple[list[Entry], list[str]]:
    """Every entry in sequence order, and the keys under the prefix that are not entries."""
    keys = list_entry_keys(s3, bucket, prefix)
    entries = [read_entry(s3, bucket, prefix, key) for key in keys if sequence_of(prefix, key) is not None]
    return entries, [key for key in keys if sequence_of(prefix, key) is None]


def _head(s3: Any, bucket: str, prefix: str) -> Entry | None:
    sequences = [key for key in list_entry_keys(s3, bucket, prefix) if sequence_of(prefix, key) is not None]
    return read_entry(s3, bucket, prefix, sequences[-1]) if sequences else None


def append(
    s3: Any,
    bucket: str,
    prefix: str,
    record: dict[str, Any],
    *,
    signer: KmsSigner | None = None,
    object_lock_days: int | None = None,
    upload_extra_args: dict[str, str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_attempts: int = 100,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Append ``record`` as the next entry; returns the entry as written.

    A conditional write (``If-None-Match: *``) takes the next sequence number; if another publisher
    took it first, the head is read again and the next number tried, after a short jittered pause
    (``jit_audit.retry``: up to ``max_attempts`` tries, waits doubling from 50 ms to at most 1 s).
    With ``object_lock_days`` the entry is written with a COMPLIANCE retention of that many days.
    """
    extra = upload_extra_args or {}

    def attempt() -> dict[str, Any]:
        head = _head(s3, bucket, prefix)
        document = {
            **record,
            "version": ENTRY_VERSION,
            "sequence": 0 if head is None else head.sequence + 1,
            "previous_entry_sha256": None if head is None else head.sha256,
            "recorded_at": now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if signer is not None:
            document["signature"] = signer.sign(signed_message(document))
        body = entry_bytes(document)
        fields: dict[str, Any] = {}
        if object_lock_days:
            fields = {"ObjectLockMode": "COMPLIANCE",
                      "ObjectLockRetainUntilDate": now() + timedelta(days=object_lock_days)}
        s3.put_object(
            Bucket=bucket, Key=entry_key(prefix, document["sequence"]), Body=body, IfNoneMatch="*",
            ContentType="application/json", ChecksumAlgorithm=CHECKSUM_ALGORITHM, ChecksumSHA256=sha256_b64(body),
            **fields, **extra,
        )
        return document

    backoff = Backoff(attempts=max_attempts, base_seconds=0.05, cap_seconds=1.0)
    try:
        return retrying(backoff, retry_if=_lost_race, action=f"append to s3://{bucket}/{prefix}", reason=_error_code,
                        log=log, sleep=sleep)(attempt)
    except ClientError as error:
        if not _lost_race(error):
            raise
        raise LedgerError(f"s3://{bucket}/{prefix}: could not take a sequence number after {max_attempts} "
                          "attempts (other publishers kept taking it)") from None


def _error_code(error: BaseException) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, ClientError) else ""


def _lost_race(error: BaseException) -> bool:
    """A conditional write refused because another publisher took the sequence number first."""
    return _error_code(error) in _LOST_RACE


def object_lock_enabled(s3: Any, bucket: str) -> bool:
    """Whether the bucket has S3 Object Lock (then entries get a COMPLIANCE retention)."""
    try:
        configuration = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as error:
        if _error_code(error) == "ObjectLockConfigurationNotFoundError":
            return False
        raise
    return configuration.get("ObjectLockEnabled") == "Enabled"


def publication_record(
    *,
    kind: str,
    uri: str,
    manifest_body: bytes,
    manifest: dict[str, Any],
    dag_id: str | None,
    run_id: str | None,
    label: str | None = None,
    migrated: bool = False,
) -> dict[str, Any]:
    """What an entry says about one publication (the ledger adds sequence, link, time and signature)."""
    parts = manifest.get("parts") or []
    record = {
        "kind": kind,
        "uri": uri,
        "label": label,
        "manifest_sha256": sha256_hex(manifest_body),
        "manifest_version": manifest.get("version"),
        "counts": manifest.get("counts"),
        "parts": len(parts),
        "lines": sum(int(part.get("lines", 0)) for part in parts),
        "export_arn": manifest.get("export_arn"),
        "dag_id": dag_id,
        "run_id": run_id,
    }
    if migrated:
        record["migrated"] = True
    return record


def recorder(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    kind: str,
    uri: str,
    label: str | None,
    dag_id: str | None,
    run_id: str | None,
    signer: KmsSigner | None = None,
    object_lock_days: int | None = None,
    upload_extra_args: dict[str, str] | None = None,
) -> Callable[[bytes, dict[str, Any]], dict[str, Any]]:
    """``record(manifest_bytes, manifest)`` for ``snapshot.publish`` / ``results.publish_results``."""

    def record(body: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
        entry = publication_record(kind=kind, uri=uri, manifest_body=body, manifest=manifest, dag_id=dag_id,
                                   run_id=run_id, label=label)
        return append(s3, bucket, prefix, entry, signer=signer, object_lock_days=object_lock_days,
                      upload_extra_args=upload_extra_args)

    return record


__all__ = [
    "LEDGER_DIR",
    "SIGNING_ALGORITHMS",
    "Entry",
    "KmsSigner",
    "LedgerError",
    "append",
    "entry_bytes",
    "entry_key",
    "ledger_prefix",
    "object_lock_enabled",
    "publication_record",
    "read_entries",
    "recorder",
    "signed_message",
]
