"""Where every object of a snapshot lives in S3, and the names that make re-runs idempotent.

One snapshot per table and date. The raw DynamoDB export, the staging area of the flatten step and
the published JSON Lines each have their own prefix, so a reader that lists the published prefix
never sees a half-written snapshot:

    <prefix>/raw/table=<table>/export_time=<YYYYMMDDTHHMMSSZ>/AWSDynamoDB/<export id>/...
    <prefix>/jsonl/_staging/table=<table>/snapshot_date=<YYYY-MM-DD>/part-00000.jsonl.gz
    <prefix>/jsonl/table=<table>/snapshot_date=<YYYY-MM-DD>/part-00000.jsonl.gz
                                                            _manifest.json
                                                            _SUCCESS
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS"


def normalise_prefix(prefix: str) -> str:
    """Strip slashes so that keys join with exactly one ``/`` and an empty prefix adds nothing."""
    return prefix.strip().strip("/")


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


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

    @property
    def raw_prefix(self) -> str:
        """The S3Prefix handed to ExportTableToPointInTime."""
        return _join(
            normalise_prefix(self.prefix),
            "raw",
            f"table={self.table}",
            f"export_time={export_time_label(self.export_time)}",
        )

    @property
    def published_prefix(self) -> str:
        return _join(
            normalise_prefix(self.prefix),
            "jsonl",
            f"table={self.table}",
            f"snapshot_date={self.snapshot_date.isoformat()}",
        ) + "/"

    @property
    def staging_prefix(self) -> str:
        return _join(
            normalise_prefix(self.prefix),
            "jsonl",
            "_staging",
            f"table={self.table}",
            f"snapshot_date={self.snapshot_date.isoformat()}",
        ) + "/"

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

    def to_dict(self) -> dict[str, str]:
        """JSON-serialisable form, for XCom."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "table": self.table,
            "snapshot_date": self.snapshot_date.isoformat(),
            "export_time": self.export_time.astimezone(UTC).isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> SnapshotLayout:
        return cls(
            bucket=data["bucket"],
            prefix=data["prefix"],
            table=data["table"],
            snapshot_date=date.fromisoformat(data["snapshot_date"]),
            export_time=datetime.fromisoformat(data["export_time"]).astimezone(UTC),
        )


def part_name(index: int) -> str:
    return f"part-{index:05d}.jsonl.gz"


def client_token(*, table_arn: str, export_time: datetime, bucket: str, s3_prefix: str, attempt: int = 0) -> str:
    """A ClientToken that is the same for every retry and re-run of the same export.

    ``attempt`` counts earlier exports of the same snapshot that FAILED: DynamoDB would answer a
    reused token with the failed export for eight hours, so a new attempt needs a new token.
    """
    material = "\n".join([table_arn, export_time_label(export_time), bucket, s3_prefix, str(attempt)])
    return "jit-audit-" + hashlib.sha256(material.encode()).hexdigest()[:40]
