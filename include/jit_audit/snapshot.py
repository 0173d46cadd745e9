"""From a finished export to a published, reconciled JSON Lines snapshot.

Three steps, each safe to repeat:

1. ``read_manifests``: what the export says it wrote, cross-checked with DescribeExport.
2. ``jit_audit.staging.flatten_data_file``: each data file flattened into one staged part, checked
   against the manifest's MD5 and item count.
3. ``publish``: only when every count agrees, record the publication (the ledger), withdraw
   ``_SUCCESS``, copy the parts to their final keys (several at once), delete stale parts, write
   ``_manifest.json`` and then ``_SUCCESS``. Readers wait for
   ``_SUCCESS``; a failure anywhere leaves no ``_SUCCESS`` and so nothing that looks complete.

All functions take a boto3 S3 client; none imports Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jit_audit.exports import export_id
from jit_audit.layout import SnapshotLayout
from jit_audit.manifest import (
    EXPORT_FILES_GONE,
    DataFile,
    ManifestSummary,
    check_manifest_totals,
    parse_files,
    parse_summary,
)
from jit_audit.s3 import (
    CHECKSUM_ALGORITHM,
    IntegrityError,
    delete_keys,
    get_object_explained,
    list_keys,
    put_checked,
    read_object,
)
from jit_audit.staging import CountMismatch, PartResult

#: Manifest schema of the published snapshot; bump when its fields change meaning.
SNAPSHOT_MANIFEST_VERSION = 3
#: Parts copied to their published keys at once (botocore's default connection pool holds 10).
COPY_CONCURRENCY = 10


def read_manifests(
    client: Any, bucket: str, manifest_summary_key: str, described_item_count: int | None
) -> tuple[ManifestSummary, list[DataFile]]:
    """Read and cross-check both manifests of a completed export.

    A manifest S3 does not have, or will not hand over, is :class:`~jit_audit.s3.ObjectUnreadable`
    naming its key; a malformed one is :class:`~jit_audit.manifest.ManifestError`.
    """
    summary_body = get_object_explained(
        client, bucket, manifest_summary_key, if_missing=EXPORT_FILES_GONE,
        what="the export's manifest-summary.json (DescribeExport's ExportManifest)",
    )["Body"].read()
    summary = parse_summary(summary_body, where=manifest_summary_key)
    files_body = get_object_explained(
        client, bucket, summary.manifest_files_key, if_missing=EXPORT_FILES_GONE,
        what="the export's manifest-files.json (manifest-summary.json's manifestFilesS3Key)",
    )["Body"].read()
    files = parse_files(files_body, where=summary.manifest_files_key)
    check_manifest_totals(summary, files, described_item_count)
    return summary, files


def table_arn_from_export_arn(export_arn: str) -> str:
    """``arn:aws:dynamodb:<region>:<account>:table/<table>``: the export ARN up to ``/export/``."""
    table_arn, found, _ = export_arn.partition("/export/")
    if not found:
        raise ValueError(f"not a DynamoDB export ARN: {export_arn!r}")
    return table_arn


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The exact bytes of ``_manifest.json`` (stable: same document, same bytes)."""
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


def snapshot_manifest(
    layout: SnapshotLayout,
    summary: ManifestSummary,
    parts: list[PartResult],
    described_item_count: int,
) -> dict[str, Any]:
    """The ``_manifest.json`` document: enough for an auditor to re-check every part.

    It depends only on this export and its parts (no run id, no time, no link to another snapshot),
    so a re-run that reproduces the parts reproduces the manifest byte for byte. Who published it,
    when and in which order is the ledger's business (``jit_audit.ledger``).
    """
    window = None
    if summary.export_type == "INCREMENTAL_EXPORT":
        window = {"from": summary.export_from_time, "to": summary.export_time, "view": summary.output_view}
    return {
        "version": SNAPSHOT_MANIFEST_VERSION,
        "table": layout.table,
        "kind": "changes" if window else "snapshot",
        "snapshot_date": layout.snapshot_date.isoformat(),
        "change_window": window,
        "table_arn": table_arn_from_export_arn(summary.export_arn),
        "export_arn": summary.export_arn,
        "export_id": export_id(summary.export_arn),
        "export_time": summary.export_time,
        "pseudonymisation": parts[0].pseudonymisation if parts else None,
        "counts": {
            "describe_export_item_count": described_item_count,
            "manifest_item_count": summary.item_count,
            "lines_written": sum(part.lines for part in parts),
        },
        "parts": [
            {
                "key": layout.published_part_key(part.index),
                "lines": part.lines,
                "sha256": part.sha256,
                "size_bytes": part.size_bytes,
                "source_data_file": part.data_file_key,
            }
            for part in parts
        ],
    }


def reconcile(summary: ManifestSummary, files: list[DataFile], parts: list[PartResult], described_item_count: int) -> None:
    """Refuse to publish unless DescribeExport = manifest = lines written, file by file."""
    by_index = {part.index: part for part in parts}
    if sorted(by_index) != [data_file.index for data_file in files]:
        raise CountMismatch(
            f"expected one part per data file ({len(files)}), got parts for indexes {sorted(by_index)}"
        )
    for data_file in files:
        if by_index[data_file.index].lines != data_file.item_count:
            raise CountMismatch(
                f"part {data_file.index} has {by_index[data_file.index].lines} lines, "
                f"the manifest lists {data_file.item_count} items for {data_file.key}"
            )
    written = sum(part.lines for part in parts)
    if not written == summary.item_count == described_item_count:
        raise CountMismatch(
            f"lines written {written}, manifest itemCount {summary.item_count}, "
            f"DescribeExport ItemCount {described_item_count}: counts disagree, nothing published"
        )


def publish(
    client: Any,
    layout: SnapshotLayout,
    summary: ManifestSummary,
    files: list[DataFile],
    parts: list[PartResult],
    described_item_count: int,
    *,
    upload_extra_args: dict[str, str] | None = None,
    record: Callable[[bytes, dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Publish the staged parts as the snapshot of ``layout.snapshot_date``; return the manifest.

    ``record(manifest_bytes, manifest)`` (the ledger append) is called once every count is
    reconciled and before anything under the published prefix changes: a publication is recorded
    before it happens, so one that dies half-way is seen by ``verify`` as an entry whose snapshot is
    incomplete, never as a snapshot that nobody recorded. Its retry publishes the same bytes.
    """
    parts = sorted(parts, key=lambda part: part.index)
    reconcile(summary, files, parts, described_item_count)
    if len({json.dumps(part.pseudonymisation, sort_keys=True) for part in parts}) > 1:
        raise IntegrityError("the staged parts were not all pseudonymised with the same key (or some were not "
                             "pseudonymised): clear the flatten tasks so they run again with the current setting")
    extra = upload_extra_args or {}
    partition = layout.partition
    manifest = snapshot_manifest(layout, summary, parts, described_item_count)
    body = manifest_bytes(manifest)
    staged = set(list_keys(client, layout.bucket, layout.staging_prefix))
    missing = [part.staging_key for part in parts if part.staging_key not in staged]
    if missing:
        if _already_published(client, layout, body):
            # Only the publish step ran again, after it had published and cleared staging: the
            # snapshot is already exactly this one (its manifest has these parts' SHA-256s).
            delete_keys(client, layout.bucket, sorted(staged))
            return manifest
        raise IntegrityError(
            f"{len(missing)} staged part(s) are gone (e.g. s3://{layout.bucket}/{missing[0]}) and "
            f"s3://{layout.bucket}/{partition.prefix} does not already hold this snapshot: nothing was changed. "
            "Clear list_data_files (and what follows it) so the data files are flattened and staged again"
        )
    if record is not None:
        record(body, manifest)
    # Withdraw the completion marker first: from here until the end, the snapshot reads as incomplete.
    delete_keys(client, layout.bucket, [partition.success_key, partition.manifest_key])
    final_keys = {part.index: layout.published_part_key(part.index) for part in parts}

    def copy(part: PartResult) -> None:
        client.copy(
            {"Bucket": layout.bucket, "Key": part.staging_key}, layout.bucket, final_keys[part.index],
            ExtraArgs={**extra, "ChecksumAlgorithm": CHECKSUM_ALGORITHM},
        )

    # Each copy is one round trip (or a few) of waiting: thousands of parts take minutes one by one.
    with ThreadPoolExecutor(max_workers=COPY_CONCURRENCY, thread_name_prefix="publish-copy") as pool:
        copies = [pool.submit(copy, part) for part in parts]
        try:
            for done in copies:
                done.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    published = set(final_keys.values())
    stale = [key for key in list_keys(client, layout.bucket, partition.prefix) if key not in published]
    delete_keys(client, layout.bucket, stale)
    put_checked(client, layout.bucket, partition.manifest_key, body, ContentType="application/json", **extra)
    put_checked(client, layout.bucket, partition.success_key, b"", **extra)
    # Staging may also hold parts of an earlier, abandoned attempt: clear all of it.
    delete_keys(client, layout.bucket, list_keys(client, layout.bucket, layout.staging_prefix))
    return manifest


def _already_published(client: Any, layout: SnapshotLayout, body: bytes) -> bool:
    """The published prefix is complete (``_SUCCESS``) and its ``_manifest.json`` is ``body``, byte for byte."""
    keys = set(list_keys(client, layout.bucket, layout.partition.prefix))
    if layout.partition.success_key not in keys or layout.partition.manifest_key not in keys:
        return False
    return read_object(client, layout.bucket, layout.partition.manifest_key) == body


__all__ = [
    "SNAPSHOT_MANIFEST_VERSION",
    "manifest_bytes",
    "publish",
    "read_manifests",
    "reconcile",
    "snapshot_manifest",
]
