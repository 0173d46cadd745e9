"""Re-check published snapshots against their ``_manifest.json`` and the hash chain between them.

For each partition (full snapshot or change window) in the range it re-reads everything:

* ``_manifest.json`` and ``_SUCCESS`` are there;
* every part listed: its bytes (SHA-256, size) and its line count (decompressed);
* nothing else is there (a part not in the manifest is *added*);
* ``previous_manifest_sha256`` is the SHA-256 of the bytes of the previous published partition's
  ``_manifest.json`` (the same table and kind, by date or window order), or null for the first.

Plain Python with a boto3 S3 client; ``jit-audit verify`` is the command-line wrapper.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from jit_audit.layout import MANIFEST_NAME, SUCCESS_NAME
from jit_audit.snapshot import PublishedPartition, list_partitions, previous_partition

_CHUNK = 1 << 20
_URI = re.compile(
    r"^s3://(?P<bucket>[^/]+)/(?P<table_prefix>(?:.*/)?jsonl/table=(?P<table>[^/]+)/)"
    r"(?P<partition>snapshot_date=(?P<date>\d{4}-\d{2}-\d{2})|change_window=(?P<window>\d{8}T\d{6}Z_\d{8}T\d{6}Z))/?$"
)
#: Finding kinds, in the words of the report.
ADDED, CHANGED, REMOVED, CHAIN, INCOMPLETE = "added", "changed", "removed", "chain broken", "incomplete"


class UsageError(ValueError):
    """A bad URI or range, or nothing published where the URI points."""


class AccessError(RuntimeError):
    """S3 refused or failed a request that verification needs (not an integrity finding)."""


@dataclass(frozen=True)
class Target:
    """A parsed ``s3://bucket/<prefix>/jsonl/table=<t>/snapshot_date=YYYY-MM-DD/`` (or change_window=)."""

    bucket: str
    table_prefix: str
    table: str
    kind: str  # "snapshot" or "changes"
    label: str


def parse_uri(uri: str) -> Target:
    match = _URI.match(uri.strip())
    if not match:
        raise UsageError(
            f"not a snapshot URI: {uri!r}; expected s3://<bucket>/<prefix>/jsonl/table=<table>/"
            "snapshot_date=YYYY-MM-DD/ (or .../change_window=<from>_<to>/)"
        )
    kind = "snapshot" if match["date"] else "changes"
    return Target(match["bucket"], match["table_prefix"], match["table"], kind, match["date"] or match["window"])


@dataclass(frozen=True)
class Finding:
    kind: str
    uri: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.upper()}: {self.uri}: {self.detail}"


@dataclass
class PartitionReport:
    uri: str
    label: str
    parts: int = 0
    lines: int = 0
    manifest_sha256: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class Report:
    partitions: list[PartitionReport]

    @property
    def ok(self) -> bool:
        return all(partition.ok for partition in self.partitions)

    @property
    def findings(self) -> list[Finding]:
        return [finding for partition in self.partitions for finding in partition.findings]

    def render(self) -> str:
        lines = []
        for partition in self.partitions:
            if partition.ok:
                lines.append(
                    f"OK {partition.uri} ({partition.parts} parts, {partition.lines} lines, "
                    f"_manifest.json sha256 {partition.manifest_sha256})"
                )
            else:
                lines.append(f"FAILED {partition.uri}")
                lines.extend(f"  {finding}" for finding in partition.findings)
        count = len(self.partitions)
        if self.ok:
            lines.append(f"OK: {count} snapshot(s) verified, chain intact")
        else:
            lines.append(f"FAILED: {len(self.findings)} integrity problem(s) in {count} snapshot(s)")
        return "\n".join(lines)


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def _get(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None if it is not there."""
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if _missing(error):
            return None
        raise AccessError(f"s3://{bucket}/{key}: {error}") from error


def _read_part(client: Any, bucket: str, key: str) -> tuple[str, int, int | None] | None:
    """SHA-256, size and line count (None if it does not decompress) of a part; None if missing."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if _missing(error):
            return None
        raise AccessError(f"s3://{bucket}/{key}: {error}") from error
    digest, size, lines = hashlib.sha256(), 0, 0
    inflater: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)
    valid = True
    while chunk := body.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        try:
            while valid and chunk:
                if inflater.eof:  # a further gzip member
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                lines += inflater.decompress(chunk).count(b"\n")
                chunk = inflater.unused_data
        except zlib.error:
            valid = False
    valid = valid and inflater.eof  # a truncated part never reaches the end of its gzip stream
    return digest.hexdigest(), size, lines if valid else None


def verify_partition(client: Any, bucket: str, partition: PublishedPartition,
                     previous: PublishedPartition | None) -> PartitionReport:
    """Re-check one partition's parts against its manifest, and its link to ``previous``."""
    uri = f"s3://{bucket}/{partition.prefix}"
    report = PartitionReport(uri=uri, label=partition.label)

    def find(kind: str, key: str, detail: str) -> None:
        report.findings.append(Finding(kind, f"s3://{bucket}/{key}", detail))

    if partition.success_key not in partition.keys:
        find(INCOMPLETE, partition.success_key, f"{SUCCESS_NAME} is missing: the snapshot is not complete")
    # Keys the listing lacks are missing: not read, since S3 answers a missing key with AccessDenied
    # (not NoSuchKey) to readers whose s3:ListBucket is limited to a prefix, like the auditor policy.
    raw = _get(client, bucket, partition.manifest_key) if partition.manifest_key in partition.keys else None
    if raw is None:
        find(REMOVED, partition.manifest_key, f"{MANIFEST_NAME} is missing: nothing to verify the parts against")
        return report
    report.manifest_sha256 = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw)
        entries = {entry["key"]: entry for entry in manifest["parts"]}
    except (ValueError, KeyError, TypeError) as error:
        find(CHANGED, partition.manifest_key, f"{MANIFEST_NAME} is not a readable snapshot manifest ({error})")
        return report

    for key, entry in entries.items():
        read = _read_part(client, bucket, key) if key in partition.keys else None
        if read is None:
            find(REMOVED, key, f"listed in {MANIFEST_NAME} but missing")
            continue
        sha256, size, lines = read
        report.parts += 1
        report.lines += lines or 0
        problems = []
        if sha256 != entry.get("sha256"):
            problems.append(f"sha256 {sha256}, manifest {entry.get('sha256')}")
        if size != entry.get("size_bytes"):
            problems.append(f"size {size} bytes, manifest {entry.get('size_bytes')}")
        if lines is None:
            problems.append("does not decompress as gzip")
        elif lines != entry.get("lines"):
            problems.append(f"{lines} lines, manifest {entry.get('lines')}")
        if problems:
            find(CHANGED, key, "; ".join(problems))
    for key in partition.keys:
        if key not in entries and key not in (partition.manifest_key, partition.success_key):
            find(ADDED, key, f"not listed in {MANIFEST_NAME}")

    written = manifest.get("counts", {}).get("lines_written")
    listed = sum(int(entry.get("lines", 0)) for entry in entries.values())
    if written != listed:
        find(CHANGED, partition.manifest_key, f"counts.lines_written {written} but the parts list {listed} lines")

    if "previous_manifest_sha256" not in manifest:
        find(CHAIN, partition.manifest_key,
             f"manifest version {manifest.get('version')} carries no previous_manifest_sha256")
        return report
    claimed = manifest["previous_manifest_sha256"]
    claimed_key = manifest.get("previous_manifest_key")
    if previous is None:
        if claimed is not None:
            find(CHAIN, partition.manifest_key,
                 f"chains to {claimed_key} (sha256 {claimed}) but there is no earlier published snapshot")
        return report
    expected_raw = _get(client, bucket, previous.manifest_key)
    expected = None if expected_raw is None else hashlib.sha256(expected_raw).hexdigest()
    if claimed is None:
        find(CHAIN, partition.manifest_key,
             f"claims to be the first, but s3://{bucket}/{previous.prefix} was published before it")
    elif claimed_key is not None and claimed_key != previous.manifest_key:
        find(CHAIN, partition.manifest_key,
             f"chains to {claimed_key}, but the previous published snapshot is {previous.manifest_key}")
    elif claimed != expected:
        find(CHAIN, partition.manifest_key,
             f"previous_manifest_sha256 {claimed} does not match {previous.manifest_key} (sha256 {expected}): "
             "the previous manifest was rewritten after this snapshot was published")
    return report


def verify(client: Any, first: Target, last: Target | None = None, *, last_must_exist: bool = True) -> Report:
    """Verify the partitions from ``first`` through ``last`` (inclusive; ``first`` alone by default).

    ``first`` must be published; so must ``last`` unless ``last_must_exist`` is False (``--through``).
    """
    last = last or first
    if (first.bucket, first.table_prefix, first.kind) != (last.bucket, last.table_prefix, last.kind):
        raise UsageError("both ends of a range must be the same bucket, table and kind")
    if last.label < first.label:
        raise UsageError(f"the range ends ({last.label}) before it starts ({first.label})")
    try:
        partitions = list_partitions(client, first.bucket, first.table_prefix, first.kind)
    except ClientError as error:
        raise AccessError(f"cannot list s3://{first.bucket}/{first.table_prefix}: {error}") from error
    chosen = [partition for partition in partitions if first.label <= partition.label <= last.label]
    if not chosen:
        raise UsageError(f"nothing published in s3://{first.bucket}/{first.table_prefix} "
                         f"from {first.label} through {last.label}")
    labels = {partition.label for partition in chosen}
    required = {first.label, last.label} if last_must_exist else {first.label}
    if not required <= labels:
        missing = sorted(required - labels)
        raise UsageError(f"nothing published at {', '.join(missing)} in s3://{first.bucket}/{first.table_prefix}")
    return Report([
        verify_partition(client, first.bucket, partition, previous_partition(partitions, partition.label))
        for partition in chosen
    ])


def range_end(first: Target, through: str) -> Target:
    """``--through YYYY-MM-DD``: up to the full snapshots of that date, or (for change windows) up to
    the windows that start on that date."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", through):
        raise UsageError(f"--through {through!r}: expected YYYY-MM-DD")
    if first.kind == "snapshot":
        return Target(first.bucket, first.table_prefix, first.table, first.kind, through)
    return Target(first.bucket, first.table_prefix, first.table, first.kind,
                  through.replace("-", "") + "T999999Z_")


__all__ = [
    "AccessError",
    "Finding",
    "Report",
    "Target",
    "UsageError",
    "parse_uri",
    "range_end",
    "verify",
]
