"""From a finished export to a published, reconciled JSON Lines snapshot.

Three steps, each safe to repeat:

1. ``read_manifests``: what the export says it wrote, cross-checked with DescribeExport.
2. ``flatten_data_file``: stream one data file from S3, check its MD5 and item count against the
   manifest, and write one gzipped JSON Lines part to the *staging* prefix. Memory stays flat: the
   file is read in chunks and the part is spooled to a temporary file on disk.
3. ``publish``: only when every count agrees, record the publication (the ledger), withdraw
   ``_SUCCESS``, copy the parts to their final keys, delete stale parts, write ``_manifest.json``
   and then ``_SUCCESS``. Readers wait for
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
from jit_audit.pseudonymise import Pseudonymiser

#: Manifest schema of the published snapshot; bump when its fields change meaning.
SNAPSHOT_MANIFEST_VERSION = 3
_CHUNK = 1 << 20
#: Every upload asks S3 to check (and store) a SHA-256 checksum of what it received.
CHECKSUM_ALGORITHM = "SHA256"
#: The folder of each kind of partition under a table's prefix.
PARTITION_DIRS = {"snapshot": "snapshot_date=", "changes": "change_window="}


class IntegrityError(RuntimeError):
    """What was read or written does not match what the export's manifest promises."""


class CountMismatch(IntegrityError):
    """Line counts disagree: the snapshot is not published."""


class MissingDataFile(IntegrityError):
    """A data file the manifest lists is not in S3: the export is incomplete, no retry brings it back."""


@dataclass(frozen=True)
class PartResult:
    """One flattened data file, staged and waiting to be published."""

    index: int
    data_file_key: str
    staging_key: str
    lines: int
    sha256: str
    size_bytes: int
    #: ``Pseudonymiser.describe()`` when actor_email was pseudonymised in this part, else None.
    pseudonymisation: dict[str, str] | None = None

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
    pseudonymiser: Pseudonymiser | None = None,
) -> PartResult:
    """Flatten one export data file into a staged part, verifying it against the manifest.

    With a ``pseudonymiser``, actor_email addresses are replaced before any byte reaches the part.
    """
    source = f"s3://{layout.bucket}/{data_file.key}"
    try:
        body = client.get_object(Bucket=layout.bucket, Key=data_file.key)["Body"]
    except client.exceptions.NoSuchKey:
        raise MissingDataFile(
            f"{source}: missing: manifest-files.json lists this data file ({data_file.item_count} items) "
            "but S3 has no such object; the export is incomplete"
        ) from None
    reader = _HashingReader(body)
    staging_key = layout.staging_part_key(data_file.index)
    with tempfile.TemporaryFile() as spool:
        writer = HashingWriter(spool)
        try:
            with gzip_reader(reader) as lines, deterministic_gzip_writer(writer) as out:
                if pseudonymiser is None:
                    count = flatten_stream(lines, out.write, source, progress=progress, view=view)
                else:
                    write = pseudonymiser.writer(out.write)
                    count = flatten_stream(lines, write, source, progress=progress, view=view)
                    write.close()
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
        extra_args = {**(upload_extra_args or {}), "ChecksumAlgorithm": CHECKSUM_ALGORITHM}
        client.upload_fileobj(spool, layout.bucket, staging_key, ExtraArgs=extra_args)
    return PartResult(
        index=data_file.index,
        data_file_key=data_file.key,
        staging_key=staging_key,
        lines=count,
        sha256=writer.sha256.hexdigest(),
        size_bytes=writer.size,
        pseudonymisation=None if pseudonymiser is None else pseudonymiser.describe(),
    )


def table_arn_from_export_arn(export_arn: str) -> str:
    """``arn:aws:dynamodb:<region>:<account>:table/<table>``: the export ARN up to ``/export/``."""
    table_arn, found, _ = export_arn.partition("/export/")
    if not found:
        raise ValueError(f"not a DynamoDB export ARN: {export_arn!r}")
    return table_arn


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The exact bytes of ``_manifest.json`` (stable: same document, same bytes)."""
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


def sha256_b64(body: bytes) -> str:
    """The ``ChecksumSHA256`` form S3 expects: base64 of the raw digest."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


@dataclass(frozen=True)
class PublishedPartition:
    """One partition (full snapshot or change window) of a table under ``.../jsonl/table=<t>/``."""

    kind: str  # "snapshot" or "changes"
    label: str  # "2026-11-25" or "20261125T000000Z_20261126T000000Z"
    prefix: str  # the partition's prefix, ending in "/"
    keys: tuple[str, ...]

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST_NAME

    @property
    def success_key(self) -> str:
        return self.prefix + SUCCESS_NAME

    @property
    def complete(self) -> bool:
        """Published: both ``_manifest.json`` and ``_SUCCESS`` are there."""
        return self.manifest_key in self.keys and self.success_key in self.keys


def partition_kind(layout: SnapshotLayout) -> str:
    return "changes" if layout.incremental else "snapshot"


def partition_label(layout: SnapshotLayout) -> str:
    """``2026-11-25`` for a snapshot, ``<from>_<to>`` for a change window."""
    return layout.published_prefix.rstrip("/").rsplit("/", 1)[-1].partition("=")[2]


def list_partitions(client: Any, bucket: str, table_prefix_: str, kind: str) -> list[PublishedPartition]:
    """Every partition of one kind under a table's prefix, in date (or window) order.

    Labels sort as they should: ISO dates, and ``YYYYMMDDTHHMMSSZ_YYYYMMDDTHHMMSSZ`` windows.
    """
    start = table_prefix_ + PARTITION_DIRS[kind]
    grouped: dict[str, list[str]] = {}
    for key in list_keys(client, bucket, start):
        label, slash, _ = key[len(start) :].partition("/")
        if slash and label:
            grouped.setdefault(label, []).append(key)
    return [
        PublishedPartition(kind, label, f"{start}{label}/", tuple(sorted(keys)))
        for label, keys in sorted(grouped.items())
    ]


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
    manifest = snapshot_manifest(layout, summary, parts, described_item_count)
    body = manifest_bytes(manifest)
    if record is not None:
        record(body, manifest)
    # Withdraw the completion marker first: from here until the end, the snapshot reads as incomplete.
    delete_keys(client, layout.bucket, [layout.success_key, layout.manifest_key])
    final_keys = []
    for part in parts:
        final_key = layout.published_part_key(part.index)
        client.copy(
            {"Bucket": layout.bucket, "Key": part.staging_key}, layout.bucket, final_key,
            ExtraArgs={**extra, "ChecksumAlgorithm": CHECKSUM_ALGORITHM},
        )
        final_keys.append(final_key)
    stale = [key for key in list_keys(client, layout.bucket, layout.published_prefix) if key not in final_keys]
    delete_keys(client, layout.bucket, stale)
    client.put_object(Bucket=layout.bucket, Key=layout.manifest_key, Body=body, ContentType="application/json",
                      ChecksumAlgorithm=CHECKSUM_ALGORITHM, ChecksumSHA256=sha256_b64(body), **extra)
    client.put_object(Bucket=layout.bucket, Key=layout.success_key, Body=b"",
                      ChecksumAlgorithm=CHECKSUM_ALGORITHM, ChecksumSHA256=sha256_b64(b""), **extra)
    # Staging may also hold parts of an earlier, abandoned attempt: clear all of it.
    delete_keys(client, layout.bucket, list_keys(client, layout.bucket, layout.staging_prefix))
    return manifest


__all__ = [
    "MANIFEST_NAME",
    "SUCCESS_NAME",
    "CountMismatch",
    "IntegrityError",
    "MissingDataFile",
    "PartResult",
    "PublishedPartition",
    "flatten_data_file",
    "list_partitions",
    "manifest_bytes",
    "publish",
    "read_manifests",
    "reconcile",
]
