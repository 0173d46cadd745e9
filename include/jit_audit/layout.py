"""Where every object of a snapshot lives in S3, and the names that make re-runs idempotent.

One snapshot per table and date. The raw DynamoDB export, the staging area of the flatten step and
the published JSON Lines each have their own prefix, so a reader that lists the published prefix
never sees a half-written snapshot:

    <prefix>/raw/table=<table>/export_time=<YYYYMMDDTHHMMSSZ>/AWSDynamoDB/<export id>/...
    <prefix>/jsonl/_staging/table=<table>/snapshot_date=<YYYY-MM-DD>/part-00000.jsonl.gz
    <prefix>/jsonl/table=<table>/snapshot_date=<YYYY-MM-DD>/part-00000.jsonl.gz
                                                            _manifest.json
                                                            _SUCCESS

An incremental export (the changes of one window) uses ``change_window=<from>_<to>`` (both as
``YYYYMMDDTHHMMSSZ``) where a full snapshot uses ``export_time=`` and ``snapshot_date=``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS"


def normalise_prefix(prefix: str) -> str:
    """Strip slashes so that keys join with exactly one ``/`` and an empty prefix adds nothing."""
    return prefix.strip().strip("/")


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def table_prefix(prefix: str, table: str) -> str:
    """``<prefix>/jsonl/table=<table>/``: where a table's partitions and its publication ledger live."""
    return _join(normalise_prefix(prefix), "jsonl", f"table={table}") + "/"


def export_time_label(export_time: datetime) -> str:
    """Render an export time in UTC as a key-safe label (``20261126T000000Z``)."""
    return export_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class SnapshotLayout:
    """The S3 keys of one snapshot of one table."""

    bucket: str
    prefix: str
    table: str
    snapshot_date: date
    export_time: datetime
    #: Start of the change window for an incremental export; None for a full snapshot.
    window_start: datetime | None = None

    @property
    def incremental(self) -> bool:
        return self.window_start is not None

    @property
    def _partition(self) -> str:
        if self.window_start is not None:
            return f"change_window={export_time_label(self.window_start)}_{export_time_label(self.export_time)}"
        return f"snapshot_date={self.snapshot_date.isoformat()}"

    @property
    def raw_prefix(self) -> str:
        """The S3Prefix handed to ExportTableToPointInTime."""
        where = (
            self._partition if self.incremental else f"export_time={export_time_label(self.export_time)}"
        )
        return _join(normalise_prefix(self.prefix), "raw", f"table={self.table}", where)

    @property
    def published_prefix(self) -> str:
        return f"{table_prefix(self.prefix, self.table)}{self._partition}/"

    @property
    def snapshots_prefix(self) -> str:
        """Where every full snapshot of this table is published (to find a baseline)."""
        return f"{table_prefix(self.prefix, self.table)}snapshot_date="

    @property
    def staging_prefix(self) -> str:
        return _join(normalise_prefix(self.prefix), "jsonl", "_staging", f"table={self.table}", self._partition) + "/"

    def staging_part_key(self, index: int) -> str:
        return f"{self.staging_prefix}{part_name(index)}"

    def published_part_key(self, index: int) -> str:
        return f"{self.published_prefix}{part_name(index)}"

    @property
    def manifest_key(self) -> str:
        return self.published_prefix + MANIFEST_NAME

    @property
    def success_key(self) -> str:
        return self.published_prefix + SUCCESS_NAME

    def to_dict(self) -> dict[str, str | None]:
        """JSON-serialisable form, for XCom."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "table": self.table,
            "snapshot_date": self.snapshot_date.isoformat(),
            "export_time": self.export_time.astimezone(UTC).isoformat(),
            "window_start": None if self.window_start is None else self.window_start.astimezone(UTC).isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotLayout:
        window_start = data.get("window_start")
        return cls(
            bucket=data["bucket"],
            prefix=data["prefix"],
            table=data["table"],
            snapshot_date=date.fromisoformat(data["snapshot_date"]),
            export_time=datetime.fromisoformat(data["export_time"]).astimezone(UTC),
            window_start=None if window_start is None else datetime.fromisoformat(window_start).astimezone(UTC),
        )


def part_name(index: int) -> str:
    return f"part-{index:05d}.jsonl.gz"


def client_token(
    *,
    table_arn: str,
    export_time: datetime,
    bucket: str,
    s3_prefix: str,
    attempt: int = 0,
    window_start: datetime | None = None,
) -> str:
    """A ClientToken that is the same for every retry and re-run of the same export.

    ``attempt`` counts earlier exports of the same snapshot that FAILED: DynamoDB would answer a
    reused token with the failed export for eight hours, so a new attempt needs a new token.
    """
    parts = [table_arn, export_time_label(export_time), bucket, s3_prefix, str(attempt)]
    if window_start is not None:
        parts.append("incremental-from=" + export_time_label(window_start))
    material = "\n".join(parts)
    return "jit-audit-" + hashlib.sha256(material.encode()).hexdigest()[:40]
