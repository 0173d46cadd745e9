"""From a finished export to a published, reconciled JSON Lines snapshot.

Three steps, each safe to repeat:

1. ``read_manifests``: what the export says it wrote, cross-checked with DescribeExport.
2. ``flatten_data_file``: stream one data file from S3, check its MD5 and item count against the
   manifest, and write one gzipped JSON Lines part to the *staging* prefix. Memory stays flat: the
   file is read in chunks and the part is spooled to a temporary file on disk.
3. ``publish``: only when every count agrees, withdraw ``_SUCCESS``, copy the parts to their final
   keys, delete stale parts, write ``_manifest.json`` and then ``_SUCCESS``. Readers wait for
   ``_SUCCESS``; a failure anywhere leaves no ``_SUCCESS`` and so nothing that looks complete.

All functions take a boto3 S3 client; none imports Airflow.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import IO, Any

from jit_audit.codecs import CODEC_ERRORS, deterministic_gzip_writer, gzip_reader
from jit_audit.exports import export_id
from jit_audit.flatten import FlattenError, Progress, flatten_stream
from jit_audit.layout import MANIFEST_NAME, SUCCESS_NAME, SnapshotLayout
from jit_audit.manifest import DataFile, ManifestSummary, check_manifest_totals, parse_files, parse_summary

#: Manifest schema of the published snapshot; bump when its fields change meaning.
SNAPSHOT_MANIFEST_VERSION = 1
_CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """What was read or written does not match what the export's manifest promises."""


class CountMismatch(IntegrityError):
    """Line counts disagree: the snapshot is not published."""


@dataclass(frozen=True)
class PartResult:
    """One flattened data file, staged and waiting to be published."""

    index: int
    data_file_key: str
    staging_key: str
    lines: int
    sha256: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartResult:
        return cls(**data)


def _read(client: Any, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def read_manifests(
    client: Any, bucket: str, manifest_summary_key: str, described_item_count: int | None
) -> tuple[ManifestSummary, list[DataFile]]:
    """Read and cross-check both manifests of a completed export."""
    summary = parse_summary(_read(client, bucket, manifest_summary_key), where=manifest_summary_key)
    files = parse_files(_read(client, bucket, summary.manifest_files_key), where=summary.manifest_files_key)
    check_manifest_totals(summary, files, described_item_count)
    return summary, files


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes every byte passing through it."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.md5.update(data)
        self.size += size
        return size

    def readable(self) -> bool:
        return True


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


def flatten_data_file(
    client: Any,
    layout: SnapshotLayout,
    data_file: DataFile,
    *,
    upload_extra_args: dict[str, str] | None = None,
    progress: Callable[[Progress], None] | None = None,
    view: str | None = None,
) -> PartResult:
    """Flatten one export data file into a staged part, verifying it against the manifest."""
    source = f"s3://{layout.bucket}/{data_file.key}"
    body = client.get_object(Bucket=layout.bucket, Key=data_file.key)["Body"]
    reader = _HashingReader(body)
    staging_key = layout.staging_part_key(data_file.index)
    with tempfile.TemporaryFile() as spool:
        writer = HashingWriter(spool)
        try:
            with gzip_reader(reader) as lines, deterministic_gzip_writer(writer) as out:
                count = flatten_stream(lines, out.write, source, progress=progress, view=view)
        except CODEC_ERRORS as error:
            raise FlattenError(source, 0, f"cannot decompress ({error})") from None
        md5 = base64.b64encode(reader.md5.digest()).decode()
        if md5 != data_file.md5_checksum:
            raise IntegrityError(
                f"{source}: MD5 {md5} does not match the manifest's md5Checksum {data_file.md5_checksum}; "
                "the data file is not what DynamoDB wrote"
            )
        if count != data_file.item_count:
            raise CountMismatch(f"{source}: read {count} items but the manifest lists {data_file.item_count}")
        spool.seek(0)
        client.upload_fileobj(spool, layout.bucket, staging_key, ExtraArgs=upload_extra_args or None)
    return PartResult(
        index=data_file.index,
        data_file_key=data_file.key,
        staging_key=staging_key,
        lines=count,
        sha256=writer.sha256.hexdigest(),
        size_bytes=writer.size,
    )


def snapshot_manifest(
    layout: SnapshotLayout, summary: ManifestSummary, parts: list[PartResult], described_item_count: int
) -> dict[str, Any]:
    """The ``_manifest.json`` document: enough for an auditor to re-check every part."""
    window = None
    if summary.export_type == "INCREMENTAL_EXPORT":
        window = {"from": summary.export_from_time, "to": summary.export_time, "view": summary.output_view}
    return {
        "version": SNAPSHOT_MANIFEST_VERSION,
        "table": layout.table,
        "kind": "changes" if window else "snapshot",
        "snapshot_date": layout.snapshot_date.isoformat(),
        "change_window": window,
        "export_arn": summary.export_arn,
        "export_id": export_id(summary.export_arn),
        "export_time": summary.export_time,
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


def has_baseline(client: Any, layout: SnapshotLayout) -> bool:
    """Whether a complete full snapshot (its ``_SUCCESS`` written) exists from before the window."""
    if layout.window_start is None:
        return False
    cutoff = layout.window_start.date()
    for key in list_keys(client, layout.bucket, layout.snapshots_prefix):
        partition, _, name = key[len(layout.snapshots_prefix) :].partition("/")
        if name == SUCCESS_NAME:
            try:
                if date.fromisoformat(partition) <= cutoff:
                    return True
            except ValueError:
                continue
    return False


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def delete_keys(client: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
        if response.get("Errors"):
            raise IntegrityError(f"could not delete {len(response['Errors'])} objects: {response['Errors'][:3]}")


def publish(
    client: Any,
    layout: SnapshotLayout,
    summary: ManifestSummary,
    files: list[DataFile],
    parts: list[PartResult],
    described_item_count: int,
    *,
    upload_extra_args: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Publish the staged parts as the snapshot of ``layout.snapshot_date``; return the manifest."""
    parts = sorted(parts, key=lambda part: part.index)
    reconcile(summary, files, parts, described_item_count)
    extra = upload_extra_args or {}
    # Withdraw the completion marker first: from here until the end, the snapshot reads as incomplete.
    delete_keys(client, layout.bucket, [layout.success_key, layout.manifest_key])
    final_keys = []
    for part in parts:
        final_key = layout.published_part_key(part.index)
        client.copy(
            {"Bucket": layout.bucket, "Key": part.staging_key}, layout.bucket, final_key, ExtraArgs=extra or None
        )
        final_keys.append(final_key)
    stale = [key for key in list_keys(client, layout.bucket, layout.published_prefix) if key not in final_keys]
    delete_keys(client, layout.bucket, stale)
    manifest = snapshot_manifest(layout, summary, parts, described_item_count)
    body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    client.put_object(Bucket=layout.bucket, Key=layout.manifest_key, Body=body, ContentType="application/json", **extra)
    client.put_object(Bucket=layout.bucket, Key=layout.success_key, Body=b"", **extra)
    # Staging may also hold parts of an earlier, abandoned attempt: clear all of it.
    delete_keys(client, layout.bucket, list_keys(client, layout.bucket, layout.staging_prefix))
    return manifest


__all__ = [
    "MANIFEST_NAME",
    "SUCCESS_NAME",
    "CountMismatch",
    "IntegrityError",
    "PartResult",
    "flatten_data_file",
    "publish",
    "read_manifests",
    "reconcile",
]
