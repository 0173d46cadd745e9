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

This module is the one place that knows these names: :class:`SnapshotLayout` gives every key of one
snapshot, :class:`Partition` one published partition (found again by listing, see
``jit_audit.partitions``), :func:`table_prefix` a table's folder. Plain key arithmetic, no S3 call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS"
#: The folder of each table under ``<prefix>/jsonl/``: ``table=<table>/``.
TABLE_DIR = "table="
#: The folder of each kind of partition under a table's prefix: ``<dir><label>/``.
PARTITION_DIRS = {"snapshot": "snapshot_date=", "changes": "change_window="}
_WINDOW_LABEL = "%Y%m%dT%H%M%SZ"


def normalise_prefix(prefix: str) -> str:
    """A prefix as a folder: ``a/b``, `` /a/b/ `` both become ``a/b/``; empty (the bucket root) stays ``""``.

    Keys join it by concatenation (``normalise_prefix(p) + "jsonl/"``), with exactly one ``/``.
    """
    prefix = prefix.strip().strip("/")
    return f"{prefix}/" if prefix else ""


def jsonl_prefix(prefix: str) -> str:
    """``<prefix>/jsonl/``: where every table's published partitions live."""
    return f"{normalise_prefix(prefix)}jsonl/"


def table_prefix(prefix: str, table: str) -> str:
    """``<prefix>/jsonl/table=<table>/``: where a table's partitions and its publication ledger live."""
    return f"{jsonl_prefix(prefix)}{TABLE_DIR}{table}/"


def export_time_label(export_time: datetime) -> str:
    """Render an export time in UTC as a key-safe label (``20261126T000000Z``)."""
    return export_time.astimezone(UTC).strftime(_WINDOW_LABEL)


@dataclass(frozen=True)
class Partition:
    """Where one publication of a table lives: a full snapshot or a change window.

    ``label`` is the snapshot's date (``2026-11-25``) or the window (``<from>_<to>``, both as
    ``YYYYMMDDTHHMMSSZ``); labels of one kind sort in date order.
    """

    kind: str  # "snapshot" or "changes" (verify also checks ad-hoc results as kind "adhoc")
    label: str
    prefix: str  # <table prefix><dir><label>/

    @classmethod
    def under(cls, table_prefix_: str, kind: str, label: str) -> Partition:
        return cls(kind, label, f"{table_prefix_}{PARTITION_DIRS[kind]}{label}/")

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST_NAME

    @property
    def success_key(self) -> str:
        return self.prefix + SUCCESS_NAME

    @property
    def data_date(self) -> date | None:
        """The date of the data: the snapshot's date, or the day its change window ends.

        None when the label is not one this layout writes (anything else found in the folder).
        """
        try:
            if self.kind == "snapshot":
                day = date.fromisoformat(self.label)
                return day if day.isoformat() == self.label else None
            if self.kind == "changes":
                start, _, end = self.label.partition("_")
                window = [datetime.strptime(moment, _WINDOW_LABEL).replace(tzinfo=UTC) for moment in (start, end)]
                return window[1].date() if "_".join(map(export_time_label, window)) == self.label else None
        except ValueError:
            return None
        return None


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
    def partition(self) -> Partition:
        """Where this snapshot (or change window) is published."""
        if self.window_start is None:
            kind, label = "snapshot", self.snapshot_date.isoformat()
        else:
            kind, label = "changes", f"{export_time_label(self.window_start)}_{export_time_label(self.export_time)}"
        return Partition.under(table_prefix(self.prefix, self.table), kind, label)

    @property
    def _partition_dir(self) -> str:
        """``snapshot_date=<date>`` or ``change_window=<from>_<to>``."""
        partition = self.partition
        return PARTITION_DIRS[partition.kind] + partition.label

    @property
    def raw_prefix(self) -> str:
        """The S3Prefix handed to ExportTableToPointInTime."""
        where = self._partition_dir if self.incremental else f"export_time={export_time_label(self.export_time)}"
        return f"{normalise_prefix(self.prefix)}raw/{TABLE_DIR}{self.table}/{where}"

    @property
    def published_prefix(self) -> str:
        return self.partition.prefix

    @property
    def snapshots_prefix(self) -> str:
        """Where every full snapshot of this table is published (to find a baseline)."""
        return table_prefix(self.prefix, self.table) + PARTITION_DIRS["snapshot"]

    @property
    def staging_prefix(self) -> str:
        return f"{jsonl_prefix(self.prefix)}_staging/{TABLE_DIR}{self.table}/{self._partition_dir}/"

    def staging_part_key(self, index: int) -> str:
        return f"{self.staging_prefix}{part_name(index)}"

    def published_part_key(self, index: int) -> str:
        return f"{self.published_prefix}{part_name(index)}"

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
