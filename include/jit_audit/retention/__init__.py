"""The runbook's retention rules, checked against what AWS actually has configured.

* DynamoDB point-in-time recovery is enabled, with at least the expected recovery period
  (the runbook: 35 days).
* An enabled S3 lifecycle rule covers every object under the export prefix, and the earliest
  expiration among such rules keeps objects at least ``min_days`` (default 365) and, when a
  maximum is set, at most ``max_days`` (the runbook: typically 1-7 years) (``lifecycle``).
* As the ``jit_audit_require_*`` settings ask (:class:`BucketRequirements`): bucket versioning,
  S3 Object Lock in COMPLIANCE mode with a default retention of at least ``min_days``, default
  encryption (SSE-KMS with the configured key, when there is one) and a full public access block
  (``bucket``).
* When a maximum is set: every published snapshot (or change window) older than ``max_days`` is
  expired by an enabled lifecycle rule covering its key prefix (:func:`published_snapshots`,
  :func:`evaluate`'s ``snapshots``; ``snapshots``). A snapshot's age comes from the date in its
  key, not from S3's ``LastModified``.

Each violation comes with how to fix it, so the failing task's log is a to-do list; ``table()``
renders every check as rows of (check, expected, actual, fix) (``findings``). :func:`check` reads
everything from AWS and evaluates it; :func:`evaluate` is the same rules on given configurations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from jit_audit.exports import RecoveryWindow, recovery_window
from jit_audit.layout import normalise_prefix
from jit_audit.retention.bucket import (
    PUBLIC_ACCESS_FLAGS,
    BucketRequirements,
    BucketState,
    bucket_encryption,
    bucket_state,
    bucket_versioning,
    check_bucket,
    object_lock_configuration,
    public_access_block,
)
from jit_audit.retention.findings import TABLE_HEADER, Checklist, Finding, Row, table
from jit_audit.retention.lifecycle import check_lifecycle, lifecycle_rules
from jit_audit.retention.snapshots import (
    SNAPSHOT_CHECK,
    SNAPSHOT_EXPECTED,
    SNAPSHOTS_NAMED,
    PublishedSnapshot,
    check_snapshots,
    published_snapshots,
)


@dataclass(frozen=True)
class RetentionReport:
    """Every check's row, the findings among them, and the headline figures for the task's XCom."""

    pitr_enabled: bool
    pitr_recovery_period_days: int | None
    covering_rules: list[str]
    effective_expiration_days: int | None
    findings: list[Finding]
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def table(self) -> str:
        return table(self.rows)

    def summary(self) -> str:
        expiry = "never" if self.effective_expiration_days is None else f"after {self.effective_expiration_days} days"
        lines = [
            f"PITR enabled: {self.pitr_enabled} (recovery period: {self.pitr_recovery_period_days} days)",
            f"lifecycle rules covering the export prefix: {', '.join(self.covering_rules) or 'none'}",
            f"exports expire: {expiry}",
        ]
        lines += [f"VIOLATION: {finding}" for finding in self.findings]
        return "\n".join(lines)


def _check_pitr(checklist: Checklist, window: RecoveryWindow, min_recovery_days: int) -> None:
    """Point-in-time recovery is on and keeps at least ``min_recovery_days``."""
    expected = f"enabled, >= {min_recovery_days} days"
    if not window.enabled:
        checklist.add("point-in-time recovery", expected, "disabled",
                      "DynamoDB point-in-time recovery is not enabled.",
                      "aws dynamodb update-continuous-backups --table-name <table> "
                      "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true")
    elif window.recovery_period_days is not None and window.recovery_period_days < min_recovery_days:
        checklist.add("point-in-time recovery", expected, f"enabled, {window.recovery_period_days} days",
                      f"Point-in-time recovery keeps {window.recovery_period_days} days, less than {min_recovery_days}.",
                      f"set RecoveryPeriodInDays={min_recovery_days} with update-continuous-backups")
    else:
        period = "" if window.recovery_period_days is None else f", {window.recovery_period_days} days"
        checklist.add("point-in-time recovery", expected, f"enabled{period}")


def evaluate(
    window: RecoveryWindow,
    lifecycle_rules: list[dict[str, Any]],
    *,
    bucket: str,
    export_prefix: str,
    min_days: int,
    max_days: int | None,
    pitr_min_recovery_days: int,
    today: date | None = None,
    bucket_state: BucketState | None = None,
    requirements: BucketRequirements | None = None,
    snapshots: Sequence[PublishedSnapshot] | None = None,
) -> RetentionReport:
    """Check retention; ``lifecycle_rules`` is GetBucketLifecycleConfiguration's ``Rules`` ([] if none).

    With ``bucket_state``, the bucket checks ``requirements`` asks for (default: encryption and the
    public access block) are made too. With ``max_days`` and ``snapshots`` (what
    :func:`published_snapshots` found), every snapshot older than ``max_days`` must be expired by
    an enabled lifecycle rule covering its prefix; a versioned bucket (``bucket_state.versioning``)
    must also expire the noncurrent versions, within ``max_days`` in total. Without ``max_days``,
    or without ``snapshots``, the table says the check was skipped.
    """
    today = today or datetime.now(UTC).date()
    prefix = normalise_prefix(export_prefix)
    checklist = Checklist()
    _check_pitr(checklist, window, pitr_min_recovery_days)
    covering, effective = check_lifecycle(checklist, lifecycle_rules, bucket=bucket, prefix=prefix,
                                          min_days=min_days, max_days=max_days, today=today)
    if bucket_state is not None:
        check_bucket(checklist, bucket, bucket_state, requirements or BucketRequirements(), min_days)
    if max_days is None:
        checklist.skip(SNAPSHOT_CHECK, SNAPSHOT_EXPECTED,
                       "skipped: no maximum retention (jit_audit_retention_max_days) is set")
    elif snapshots is None:
        checklist.skip(SNAPSHOT_CHECK, SNAPSHOT_EXPECTED, "skipped: the published snapshots were not listed")
    else:
        versioned = bucket_state is not None and bucket_state.versioning in ("Enabled", "Suspended")
        check_snapshots(checklist, lifecycle_rules, snapshots, bucket=bucket, prefix=prefix, max_days=max_days,
                        versioned=versioned, today=today)
    return RetentionReport(window.enabled, window.recovery_period_days, covering, effective, checklist.findings,
                           checklist.rows)


def check(
    dynamodb: Any,
    s3: Any,
    *,
    table_name: str,
    bucket: str,
    export_prefix: str,
    min_days: int,
    max_days: int | None,
    pitr_min_recovery_days: int,
    requirements: BucketRequirements,
) -> RetentionReport:
    """Fetch everything and evaluate: the core of the check_retention task and ``jit-audit check-retention``.

    With ``max_days``, it also lists the published snapshots and reads the bucket's versioning
    (whether noncurrent versions must expire too), whatever ``requirements`` asks.
    """
    state = bucket_state(s3, bucket, requirements)
    snapshots = None
    if max_days is not None:
        snapshots = published_snapshots(s3, bucket, export_prefix)
        if not requirements.versioning:
            state = replace(state, versioning=bucket_versioning(s3, bucket))
    return evaluate(recovery_window(dynamodb, table_name), lifecycle_rules(s3, bucket), bucket=bucket,
                    export_prefix=export_prefix, min_days=min_days, max_days=max_days,
                    pitr_min_recovery_days=pitr_min_recovery_days, bucket_state=state, requirements=requirements,
                    snapshots=snapshots)


__all__ = [
    "PUBLIC_ACCESS_FLAGS",
    "SNAPSHOTS_NAMED",
    "SNAPSHOT_CHECK",
    "TABLE_HEADER",
    "BucketRequirements",
    "BucketState",
    "Finding",
    "PublishedSnapshot",
    "RetentionReport",
    "Row",
    "bucket_encryption",
    "bucket_state",
    "bucket_versioning",
    "check",
    "evaluate",
    "lifecycle_rules",
    "object_lock_configuration",
    "public_access_block",
    "published_snapshots",
    "table",
]
