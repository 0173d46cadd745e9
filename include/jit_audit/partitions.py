"""What is published under an export prefix, found by listing S3 along the one key layout.

``verify`` re-checks these partitions, ``ledger init`` records the old ones, the retention check
ages them, and an incremental run asks whether a full snapshot exists to build on
(:func:`has_baseline`). Where the keys are is ``jit_audit.layout``'s business; this module only lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jit_audit.layout import PARTITION_DIRS, TABLE_DIR, Partition, SnapshotLayout, jsonl_prefix, table_prefix
from jit_audit.s3 import list_folders, list_objects


@dataclass(frozen=True)
class PublishedPartition(Partition):
    """A partition as S3 lists it: every key under its prefix."""

    keys: tuple[str, ...]
    #: The newest LastModified among its objects: when it was last (re)published, not its data's date.
    last_modified: datetime | None = None

    @property
    def complete(self) -> bool:
        """Published: both ``_manifest.json`` and ``_SUCCESS`` are there."""
        return self.manifest_key in self.keys and self.success_key in self.keys


def list_partitions(client: Any, bucket: str, table_prefix_: str, kind: str) -> list[PublishedPartition]:
    """Every partition of one kind under a table's prefix, in date (or window) order.

    Labels sort as they should: ISO dates, and ``YYYYMMDDTHHMMSSZ_YYYYMMDDTHHMMSSZ`` windows.
    """
    start = table_prefix_ + PARTITION_DIRS[kind]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in list_objects(client, bucket, start):
        label, slash, _ = item["Key"][len(start) :].partition("/")
        if slash and label:
            grouped.setdefault(label, []).append(item)
    found = []
    for label, items in sorted(grouped.items()):
        modified = [item["LastModified"] for item in items if item.get("LastModified") is not None]
        found.append(PublishedPartition(kind, label, f"{start}{label}/", tuple(sorted(item["Key"] for item in items)),
                                        max(modified, default=None)))
    return found


def list_table_prefixes(client: Any, bucket: str, export_prefix: str) -> list[str]:
    """``<prefix>/jsonl/table=<table>/`` of every table under the export prefix (staging is not a table)."""
    jsonl = jsonl_prefix(export_prefix)
    return [folder for folder in list_folders(client, bucket, jsonl) if folder[len(jsonl) :].startswith(TABLE_DIR)]


def has_baseline(client: Any, layout: SnapshotLayout) -> bool:
    """Whether a complete full snapshot (its ``_SUCCESS`` written) exists from before the window."""
    if layout.window_start is None:
        return False
    cutoff = layout.window_start.date()
    return any(
        partition.success_key in partition.keys and (day := partition.data_date) is not None and day <= cutoff
        for partition in list_partitions(client, layout.bucket, table_prefix(layout.prefix, layout.table), "snapshot")
    )
