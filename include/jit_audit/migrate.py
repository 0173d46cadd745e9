"""``jit-audit ledger init``: record snapshots published before the ledger existed, once.

Manifests of version 2 and older were published without a ledger entry (they chained to each other
instead). This records each such published partition (``_manifest.json`` and ``_SUCCESS`` present)
that no entry records yet, in date (or window) order, as ``"migrated": true`` entries. Manifests of
version 3 are never recorded here: the pipeline records those as it publishes them, so one that has
no entry is a finding for ``verify``, not something to bless.
"""

from __future__ import annotations

import json
from typing import Any

from jit_audit import ledger
from jit_audit.partitions import list_partitions
from jit_audit.s3 import read_object
from jit_audit.snapshot import SNAPSHOT_MANIFEST_VERSION


def record_existing(
    s3: Any,
    bucket: str,
    table_prefix: str,
    *,
    signer: ledger.KmsSigner | None = None,
    object_lock_days: int | None = None,
    upload_extra_args: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Append an entry for each pre-ledger partition no entry records; returns the entries and skips.

    A second run records nothing new. Skipped: incomplete partitions, unreadable manifests and
    version-3 manifests (each named with the reason).
    """
    prefix = ledger.ledger_prefix(table_prefix)
    entries, _ = ledger.read_entries(s3, bucket, prefix)
    recorded = {entry.document.get("uri") for entry in entries if entry.document is not None}
    written: list[dict[str, Any]] = []
    skipped: list[str] = []
    for kind in ("snapshot", "changes"):
        for partition in list_partitions(s3, bucket, table_prefix, kind):
            uri = f"s3://{bucket}/{partition.prefix}"
            if uri in recorded:
                continue
            if not partition.complete:
                skipped.append(f"{uri}: not complete (_manifest.json or _SUCCESS missing)")
                continue
            body = read_object(s3, bucket, partition.manifest_key)
            try:
                manifest = json.loads(body)
                version = int(manifest.get("version", 0))
            except (ValueError, TypeError, AttributeError):
                skipped.append(f"{uri}: _manifest.json is not readable")
                continue
            if version >= SNAPSHOT_MANIFEST_VERSION:
                skipped.append(f"{uri}: manifest version {version} is recorded when published; one without an "
                               "entry is a finding, not a migration")
                continue
            record = ledger.publication_record(
                kind=kind, uri=uri, manifest_body=body, manifest=manifest, dag_id=None,
                run_id=manifest.get("airflow_run_id"), label=partition.label, migrated=True)
            written.append(ledger.append(s3, bucket, prefix, record, signer=signer, object_lock_days=object_lock_days,
                                         upload_extra_args=upload_extra_args))
    return written, skipped
