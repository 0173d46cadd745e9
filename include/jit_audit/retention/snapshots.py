"""The maximum age: no published snapshot outlives ``max_days`` without a lifecycle rule expiring it.

A snapshot's age comes from the date in its key, not from S3's ``LastModified``: the key's date is
the data's date (objects cannot predate it), a re-run resets ``LastModified``, and emulators
cannot backdate it. The snapshots are found by listing along the one key layout
(``jit_audit.partitions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jit_audit.layout import PARTITION_DIRS
from jit_audit.partitions import list_partitions, list_table_prefixes
from jit_audit.retention.findings import Checklist
from jit_audit.retention.lifecycle import covering_rules, days_kept

SNAPSHOT_CHECK = "snapshots past maximum"
SNAPSHOT_EXPECTED = "snapshots older than the maximum expired by a lifecycle rule"
#: How many offending snapshots a finding names; the count is always complete.
SNAPSHOTS_NAMED = 5


@dataclass(frozen=True)
class PublishedSnapshot:
    """A published full snapshot or change window under ``<prefix>/jsonl/``.

    ``snapshot_date`` is the date in the key (``snapshot_date=``, or the day a change window
    ends): the date of the data, and so what the maximum retention counts from. ``LastModified``
    is kept only to show when the snapshot was last (re)published: a re-run resets it, and S3
    lifecycle expiration counts from it.
    """

    prefix: str
    snapshot_date: date
    last_modified: datetime | None = None

    @property
    def name(self) -> str:
        """``table=<table>/snapshot_date=<date>``: short enough for a findings table."""
        return "/".join(self.prefix.rstrip("/").split("/")[-2:])


def published_snapshots(client: Any, bucket: str, export_prefix: str) -> list[PublishedSnapshot]:
    """Every partition of every table with a ``_manifest.json`` or ``_SUCCESS``, oldest first.

    Staging (``jsonl/_staging/``) is not published and is not listed as a snapshot. Needs
    ``s3:ListBucket`` on the ``<prefix>/jsonl/`` prefix, which the export and auditor roles have.
    """
    found = [
        PublishedSnapshot(partition.prefix, day, partition.last_modified)
        for table_prefix in list_table_prefixes(client, bucket, export_prefix)
        for kind in PARTITION_DIRS
        for partition in list_partitions(client, bucket, table_prefix, kind)
        if (partition.manifest_key in partition.keys or partition.success_key in partition.keys)
        and (day := partition.data_date) is not None
    ]
    return sorted(found, key=lambda snapshot: (snapshot.snapshot_date, snapshot.prefix))


def _why_kept(
    rules: list[dict[str, Any]], snapshot: PublishedSnapshot, max_days: int, *, versioned: bool
) -> str | None:
    """Why ``snapshot`` outlives ``max_days`` under ``rules``; None when a rule expires it in time.

    S3 applies the earliest expiration among the enabled rules whose filter matches, so the
    shortest ones count. In a versioned bucket, expiration only adds a delete marker: the data
    stays as a noncurrent version until NoncurrentVersionExpiration removes it.
    """
    covering = covering_rules(rules, snapshot.prefix)
    if not covering:
        return "no enabled lifecycle rule covers it"
    kept = [days for rule in covering if (days := days_kept(rule, snapshot.snapshot_date)) is not None]
    if not kept:
        return "no covering rule has an Expiration"
    current = min(kept)
    if current > max_days:
        return f"covering rules keep it {current} days"
    if not versioned:
        return None
    noncurrent = [
        int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"]) for rule in covering
        if "NoncurrentDays" in rule.get("NoncurrentVersionExpiration", {})
    ]
    if not noncurrent:
        return "versioned bucket: no covering rule has a NoncurrentVersionExpiration"
    if current + min(noncurrent) > max_days:
        return f"versioned bucket: expiration plus noncurrent expiration keep it {current + min(noncurrent)} days"
    return None


def check_snapshots(
    checklist: Checklist,
    rules: list[dict[str, Any]],
    snapshots: Sequence[PublishedSnapshot],
    *,
    bucket: str,
    prefix: str,
    max_days: int,
    versioned: bool,
    today: date,
) -> None:
    """No published snapshot older than ``max_days`` without a lifecycle rule that expires it.

    A snapshot older than the maximum that a rule does expire is not a finding, even though it is
    still there: S3 runs lifecycle rules asynchronously and removes expired objects a day or two
    late (and counts the days from ``LastModified``, i.e. the last re-publish). Only a snapshot
    that no rule will ever remove in time is.
    """
    expected = f"older than {max_days} days: expired by an enabled rule" + (
        " (and its noncurrent versions)" if versioned else ""
    )
    old = [snapshot for snapshot in snapshots if (today - snapshot.snapshot_date).days > max_days]
    kept = [(snapshot, why) for snapshot in old if (why := _why_kept(rules, snapshot, max_days, versioned=versioned))]
    if not kept:
        actual = f"{len(snapshots)} published, {len(old)} older than {max_days} days" + (
            ", each expired by a rule (S3 removes expired objects a day or two late)" if old else ""
        )
        checklist.add(SNAPSHOT_CHECK, expected, actual)
        return
    named = ", ".join(f"{snapshot.name} ({why})" for snapshot, why in kept[:SNAPSHOTS_NAMED])
    more = f" and {len(kept) - SNAPSHOTS_NAMED} more" if len(kept) > SNAPSHOTS_NAMED else ""
    noncurrent = (
        f" and NoncurrentVersionExpiration.NoncurrentDays such that both together are at most {max_days}"
        if versioned else ""
    )
    checklist.add(
        SNAPSHOT_CHECK,
        expected,
        f"{len(kept)} of {len(old)} older than {max_days} days kept: "
        + ", ".join(snapshot.name for snapshot, _ in kept[:SNAPSHOTS_NAMED]) + more,
        f"{len(kept)} published snapshot(s) in bucket {bucket} are older than the maximum retention of "
        f"{max_days} days and no lifecycle rule expires them: {named}{more}.",
        f"add an enabled lifecycle rule with Filter.Prefix {prefix!r} (or a shorter prefix) and Expiration.Days "
        f"at most {max_days}{noncurrent}; S3 then removes the old snapshots within a day or two",
    )
