"""The runbook's retention rules, checked against what AWS actually has configured.

* DynamoDB point-in-time recovery is enabled, with at least the expected recovery period
  (the runbook: 35 days).
* An enabled S3 lifecycle rule covers every object under the export prefix, and the earliest
  expiration among such rules keeps objects at least ``min_days`` (default 365) and, when a
  maximum is set, at most ``max_days`` (the runbook: typically 1-7 years).
* As the ``jit_audit_require_*`` settings ask (:class:`BucketRequirements`): bucket versioning,
  S3 Object Lock in COMPLIANCE mode with a default retention of at least ``min_days``, default
  encryption (SSE-KMS with the configured key, when there is one) and a full public access block.
* When a maximum is set: every published snapshot (or change window) older than ``max_days`` is
  expired by an enabled lifecycle rule covering its key prefix (:func:`published_snapshots`,
  :func:`evaluate`'s ``snapshots``). A snapshot's age comes from the date in its key, not from
  S3's ``LastModified``: the key's date is the data's date (objects cannot predate it), a re-run
  resets ``LastModified``, and emulators cannot backdate it.

Each violation comes with how to fix it, so the failing task's log is a to-do list; ``table()``
renders every check as rows of (check, expected, actual, fix).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from jit_audit.exports import RecoveryWindow, recovery_window
from jit_audit.layout import MANIFEST_NAME, SUCCESS_NAME, normalise_prefix


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str
    check: str = ""

    def __str__(self) -> str:
        return f"{self.problem} Fix: {self.fix}"


@dataclass(frozen=True)
class Row:
    """One line of the findings table; ``fix`` is empty when the check passed."""

    check: str
    expected: str
    actual: str
    fix: str = ""
    #: The check did not run (e.g. no maximum retention is set); the table says so instead of OK.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.fix


TABLE_HEADER = ("check", "expected", "actual", "fix")


def table(rows: list[Row]) -> str:
    """Rows as an aligned text table; a passing check shows ``OK`` as its fix, one not run ``SKIPPED``."""
    cells = [TABLE_HEADER] + [
        (row.check, row.expected, row.actual, row.fix or ("SKIPPED" if row.skipped else "OK")) for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(3)]

    def render(line: tuple[str, ...]) -> str:
        return " | ".join([*(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)), line[3]])

    separator = "-+-".join("-" * width for width in widths) + "-+-" + "-" * 3
    return "\n".join([render(cells[0]), separator, *(render(line) for line in cells[1:])])


@dataclass(frozen=True)
class BucketRequirements:
    """What the ``jit_audit_require_*`` settings ask of the export bucket."""

    versioning: bool = False
    object_lock: bool = False
    encryption: bool = True
    public_access_block: bool = True
    kms_key_id: str | None = None

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> BucketRequirements:
        """From ``ExportSettings.to_dict()`` or a run's plan; missing keys (an older plan) take the defaults."""
        defaults = cls()
        return cls(
            versioning=values.get("require_versioning", defaults.versioning),
            object_lock=values.get("require_object_lock", defaults.object_lock),
            encryption=values.get("require_encryption", defaults.encryption),
            public_access_block=values.get("require_public_access_block", defaults.public_access_block),
            kms_key_id=values.get("kms_key_id"),
        )


@dataclass(frozen=True)
class BucketState:
    """The bucket's protection as S3 reports it; None: not configured.

    ``versioning``: GetBucketVersioning's Status ("Enabled" / "Suspended"), ``object_lock``:
    GetObjectLockConfiguration's ``ObjectLockConfiguration``, ``encryption``: GetBucketEncryption's
    ``Rules``, ``public_access_block``: GetPublicAccessBlock's ``PublicAccessBlockConfiguration``.
    """

    versioning: str | None = None
    object_lock: dict[str, Any] | None = None
    encryption: list[dict[str, Any]] | None = None
    public_access_block: dict[str, Any] | None = None


@dataclass(frozen=True)
class RetentionReport:
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


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule applies to, or None if it also filters on tags or sizes.

    A rule narrowed by tags or object size does not cover *every* export object, so it cannot be
    what guarantees retention.
    """
    if "Prefix" in rule:  # the legacy, filter-less form
        return rule["Prefix"] or ""
    rule_filter = rule.get("Filter", {})
    if not rule_filter:
        return ""
    if set(rule_filter) == {"Prefix"}:
        return rule_filter["Prefix"] or ""
    return None


def _covers(rule_prefix: str, export_prefix: str) -> bool:
    return export_prefix.startswith(rule_prefix)


def _expiration_days(rule: dict[str, Any], today: date) -> int | None:
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        return int(expiration["Days"])
    if "Date" in expiration:
        when = expiration["Date"]
        when_date = when.date() if isinstance(when, datetime) else date.fromisoformat(str(when)[:10])
        return max((when_date - today).days, 0)
    return None


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
    prefix = f"{prefix}/" if prefix else ""
    findings: list[Finding] = []
    rows: list[Row] = []

    def add(check: str, expected: str, actual: str, problem: str | None = None, fix: str = "") -> None:
        rows.append(Row(check, expected, actual, fix if problem else ""))
        if problem:
            findings.append(Finding(problem, fix, check))

    pitr_expected = f"enabled, >= {pitr_min_recovery_days} days"
    if not window.enabled:
        add("point-in-time recovery", pitr_expected, "disabled",
            "DynamoDB point-in-time recovery is not enabled.",
            "aws dynamodb update-continuous-backups --table-name <table> "
            "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true")
    elif window.recovery_period_days is not None and window.recovery_period_days < pitr_min_recovery_days:
        add("point-in-time recovery", pitr_expected, f"enabled, {window.recovery_period_days} days",
            f"Point-in-time recovery keeps {window.recovery_period_days} days, less than {pitr_min_recovery_days}.",
            f"set RecoveryPeriodInDays={pitr_min_recovery_days} with update-continuous-backups")
    else:
        period = "" if window.recovery_period_days is None else f", {window.recovery_period_days} days"
        add("point-in-time recovery", pitr_expected, f"enabled{period}")

    covering = []
    expirations = []
    for rule in lifecycle_rules:
        rule_prefix = _rule_prefix(rule)
        if rule.get("Status") != "Enabled" or rule_prefix is None or not _covers(rule_prefix, prefix):
            continue
        covering.append(rule.get("ID") or f"(unnamed rule on prefix {rule_prefix!r})")
        days = _expiration_days(rule, today)
        if days is not None:
            expirations.append(days)
    effective = min(expirations) if expirations else None

    expiry_expected = f">= {min_days} days" + (f", <= {max_days} days" if max_days is not None else "")
    if not covering:
        add("lifecycle rule", f"enabled rule covering {prefix!r}", "none",
            f"No enabled S3 lifecycle rule on bucket {bucket} covers the export prefix {prefix!r}.",
            f"add a lifecycle rule with Filter.Prefix {prefix!r} (or a shorter prefix) whose expiration is "
            f"at least {min_days} days" + (f" and at most {max_days} days" if max_days else ""))
    else:
        add("lifecycle rule", f"enabled rule covering {prefix!r}", ", ".join(covering))
        kept = "never expire" if effective is None else f"{effective} days"
        if effective is not None and effective < min_days:
            add("lifecycle expiration", expiry_expected, kept,
                f"A lifecycle rule expires exports after {effective} days, before the required {min_days}.",
                f"raise Expiration.Days to at least {min_days} on every rule covering {prefix!r}")
        elif max_days is not None and (effective is None or effective > max_days):
            add("lifecycle expiration", expiry_expected, kept,
                f"Exports are kept {'forever' if effective is None else f'{effective} days'}, "
                f"longer than the maximum of {max_days} days.",
                f"set Expiration.Days to at most {max_days} on a rule covering {prefix!r}")
        else:
            add("lifecycle expiration", expiry_expected, kept)

    if bucket_state is not None:
        _check_bucket(add, bucket, bucket_state, requirements or BucketRequirements(), min_days)
    if max_days is None or snapshots is None:
        rows.append(Row(SNAPSHOT_CHECK, "snapshots older than the maximum expired by a lifecycle rule",
                        "skipped: no maximum retention (jit_audit_retention_max_days) is set" if max_days is None
                        else "skipped: the published snapshots were not listed", skipped=True))
    else:
        versioning = bucket_state.versioning if bucket_state is not None else None
        _check_snapshots(add, bucket, prefix, lifecycle_rules, snapshots, max_days,
                         versioned=versioning in ("Enabled", "Suspended"), today=today)
    return RetentionReport(
        pitr_enabled=window.enabled,
        pitr_recovery_period_days=window.recovery_period_days,
        covering_rules=covering,
        effective_expiration_days=effective,
        findings=findings,
        rows=rows,
    )


SNAPSHOT_CHECK = "snapshots past maximum"
#: How many offending snapshots a finding names; the count is always complete.
SNAPSHOTS_NAMED = 5
_PUBLISHED_MARKER = re.compile(
    rf"(?P<partition>table=[^/]+/(?:snapshot_date=(?P<date>\d{{4}}-\d{{2}}-\d{{2}})"
    rf"|change_window=\d{{8}}T\d{{6}}Z_(?P<window_end>\d{{8}})T\d{{6}}Z))/"
    rf"(?:{re.escape(MANIFEST_NAME)}|{re.escape(SUCCESS_NAME)})"
)


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
    """Every partition under ``<prefix>/jsonl/`` with a ``_manifest.json`` or ``_SUCCESS``, oldest first.

    Staging (``jsonl/_staging/``) is not published and is not listed as a snapshot. Needs
    ``s3:ListBucket`` on the ``<prefix>/jsonl/`` prefix, which the export and auditor roles have.
    """
    clean = normalise_prefix(export_prefix)
    jsonl = f"{clean}/jsonl/" if clean else "jsonl/"
    found: dict[str, PublishedSnapshot] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=jsonl):
        for item in page.get("Contents", []):
            match = _PUBLISHED_MARKER.fullmatch(item["Key"][len(jsonl):])
            if match is None:
                continue
            try:
                if match["date"]:
                    when = date.fromisoformat(match["date"])
                else:
                    when = datetime.strptime(match["window_end"], "%Y%m%d").date()
            except ValueError:
                continue  # not a date: not a partition this code publishes
            partition = jsonl + match["partition"] + "/"
            modified = item.get("LastModified")
            known = found.get(partition)
            if known is not None and known.last_modified is not None and (
                modified is None or known.last_modified >= modified
            ):
                continue
            found[partition] = PublishedSnapshot(partition, when, modified)
    return sorted(found.values(), key=lambda snapshot: (snapshot.snapshot_date, snapshot.prefix))


def _days_kept(rule: dict[str, Any], snapshot_date: date) -> int | None:
    """Days after the snapshot's date until ``rule`` expires its current objects, or None if never."""
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        return int(expiration["Days"])
    if "Date" in expiration:
        when = expiration["Date"]
        when_date = when.date() if isinstance(when, datetime) else date.fromisoformat(str(when)[:10])
        return (when_date - snapshot_date).days
    return None


def _why_kept(
    rules: list[dict[str, Any]], snapshot: PublishedSnapshot, max_days: int, *, versioned: bool
) -> str | None:
    """Why ``snapshot`` outlives ``max_days`` under ``rules``; None when a rule expires it in time.

    S3 applies the earliest expiration among the enabled rules whose filter matches, so the
    shortest ones count. In a versioned bucket, expiration only adds a delete marker: the data
    stays as a noncurrent version until NoncurrentVersionExpiration removes it.
    """
    covering = [
        rule for rule in rules
        if rule.get("Status") == "Enabled" and (rule_prefix := _rule_prefix(rule)) is not None
        and snapshot.prefix.startswith(rule_prefix)
    ]
    if not covering:
        return "no enabled lifecycle rule covers it"
    kept = [days for rule in covering if (days := _days_kept(rule, snapshot.snapshot_date)) is not None]
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


def _check_snapshots(
    add: Callable[..., None],
    bucket: str,
    prefix: str,
    rules: list[dict[str, Any]],
    snapshots: Sequence[PublishedSnapshot],
    max_days: int,
    *,
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
        add(SNAPSHOT_CHECK, expected, actual)
        return
    named = ", ".join(f"{snapshot.name} ({why})" for snapshot, why in kept[:SNAPSHOTS_NAMED])
    more = f" and {len(kept) - SNAPSHOTS_NAMED} more" if len(kept) > SNAPSHOTS_NAMED else ""
    noncurrent = (
        f" and NoncurrentVersionExpiration.NoncurrentDays such that both together are at most {max_days}"
        if versioned else ""
    )
    add(
        SNAPSHOT_CHECK,
        expected,
        f"{len(kept)} of {len(old)} older than {max_days} days kept: "
        + ", ".join(snapshot.name for snapshot, _ in kept[:SNAPSHOTS_NAMED]) + more,
        f"{len(kept)} published snapshot(s) in bucket {bucket} are older than the maximum retention of "
        f"{max_days} days and no lifecycle rule expires them: {named}{more}.",
        f"add an enabled lifecycle rule with Filter.Prefix {prefix!r} (or a shorter prefix) and Expiration.Days "
        f"at most {max_days}{noncurrent}; S3 then removes the old snapshots within a day or two",
    )


def _object_lock_days(retention: dict[str, Any]) -> int | None:
    # AWS returns one of Days and Years; some emulators return both, the other as 0.
    if retention.get("Days"):
        return int(retention["Days"])
    if retention.get("Years"):
        return int(retention["Years"]) * 365
    return None


def _same_key(configured: str, actual: str) -> bool:
    """A key id, alias or ARN matches S3's KMSMasterKeyID when equal or its final component."""
    return configured == actual or actual.endswith(("/" + configured, ":" + configured)) or configured.endswith(
        ("/" + actual, ":" + actual)
    )


def _check_bucket(
    add: Callable[..., None], bucket: str, state: BucketState, required: BucketRequirements, min_days: int
) -> None:
    if required.versioning:
        actual = state.versioning or "never enabled"
        if state.versioning == "Enabled":
            add("bucket versioning", "Enabled", actual)
        else:
            add("bucket versioning", "Enabled", actual, f"Versioning is not enabled on bucket {bucket}.",
                f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled")

    if required.object_lock:
        expected = f"Enabled, COMPLIANCE, >= {min_days} days"
        lock = state.object_lock or {}
        retention = lock.get("Rule", {}).get("DefaultRetention", {})
        days = _object_lock_days(retention)
        enabled = lock.get("ObjectLockEnabled") == "Enabled"
        if not enabled:
            actual = "not configured"
        elif not retention:
            actual = "Enabled, no default retention"
        else:
            actual = f"Enabled, {retention.get('Mode', '?')}, {days} days"
        fix = (
            f"aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration "
            f"'{{\"ObjectLockEnabled\":\"Enabled\",\"Rule\":{{\"DefaultRetention\":"
            f"{{\"Mode\":\"COMPLIANCE\",\"Days\":{min_days}}}}}}}'"
            + ("" if enabled else " (needs versioning; Object Lock cannot be enabled on some existing buckets: "
               "then create a new bucket with --object-lock-enabled-for-bucket)")
        )
        if enabled and retention.get("Mode") == "COMPLIANCE" and days is not None and days >= min_days:
            add("object lock", expected, actual)
        else:
            add("object lock", expected, actual,
                f"Bucket {bucket} has no S3 Object Lock default retention in COMPLIANCE mode of at least "
                f"{min_days} days ({actual}).", fix)

    if required.encryption:
        rules = state.encryption or []
        defaults = [rule.get("ApplyServerSideEncryptionByDefault", {}) for rule in rules]
        defaults = [entry for entry in defaults if entry.get("SSEAlgorithm")]
        actual = ", ".join(
            entry["SSEAlgorithm"] + (f" ({entry['KMSMasterKeyID']})" if entry.get("KMSMasterKeyID") else "")
            for entry in defaults
        ) or "not configured"
        key = required.kms_key_id
        if key:
            expected = f"aws:kms with {key}"
            good = any(
                entry["SSEAlgorithm"].startswith("aws:kms") and _same_key(key, entry.get("KMSMasterKeyID", ""))
                for entry in defaults
            )
            fix = (f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
                   f"'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\","
                   f"\"KMSMasterKeyID\":\"{key}\"}},\"BucketKeyEnabled\":true}}]}}'")
        else:
            expected = "AES256 or aws:kms"
            good = bool(defaults)
            fix = (f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
                   f"'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'")
        if good:
            add("default encryption", expected, actual)
        else:
            add("default encryption", expected, actual,
                f"Bucket {bucket}'s default encryption is {actual}, expected {expected}.", fix)

    if required.public_access_block:
        block = state.public_access_block
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if not (block or {}).get(flag)]
        expected = "all four settings true"
        if block is None:
            actual = "not configured"
        elif off:
            actual = "false: " + ", ".join(off)
        else:
            actual = "all four true"
        if off:
            add("public access block", expected, actual,
                f"Bucket {bucket}'s public access block is incomplete ({actual}).",
                f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
                + ",".join(f"{flag}=true" for flag in PUBLIC_ACCESS_FLAGS))
        else:
            add("public access block", expected, actual)


PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def bucket_versioning(client: Any, bucket: str) -> str | None:
    """GetBucketVersioning's Status: "Enabled", "Suspended", or None if versioning was never enabled."""
    return client.get_bucket_versioning(Bucket=bucket).get("Status")


def object_lock_configuration(client: Any, bucket: str) -> dict[str, Any] | None:
    """GetObjectLockConfiguration's configuration, or None when the bucket has none."""
    try:
        return client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration")
    except client.exceptions.ClientError as error:
        if _error_code(error) in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
            return None
        raise


def bucket_encryption(client: Any, bucket: str) -> list[dict[str, Any]] | None:
    """GetBucketEncryption's rules, or None when the bucket has no default encryption."""
    try:
        response = client.get_bucket_encryption(Bucket=bucket)
    except client.exceptions.ClientError as error:
        if _error_code(error) == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    return response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])


def public_access_block(client: Any, bucket: str) -> dict[str, Any] | None:
    """GetPublicAccessBlock's configuration, or None when the bucket has none."""
    try:
        return client.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration")
    except client.exceptions.ClientError as error:
        if _error_code(error) == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise


def bucket_state(client: Any, bucket: str, requirements: BucketRequirements) -> BucketState:
    """Fetch only what ``requirements`` checks (each call needs its own IAM action)."""
    return BucketState(
        versioning=bucket_versioning(client, bucket) if requirements.versioning else None,
        object_lock=object_lock_configuration(client, bucket) if requirements.object_lock else None,
        encryption=bucket_encryption(client, bucket) if requirements.encryption else None,
        public_access_block=public_access_block(client, bucket) if requirements.public_access_block else None,
    )


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
    return evaluate(
        recovery_window(dynamodb, table_name),
        lifecycle_rules(s3, bucket),
        bucket=bucket,
        export_prefix=export_prefix,
        min_days=min_days,
        max_days=max_days,
        pitr_min_recovery_days=pitr_min_recovery_days,
        bucket_state=state,
        requirements=requirements,
        snapshots=snapshots,
    )


def lifecycle_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    """GetBucketLifecycleConfiguration's rules; a bucket without a configuration has none."""
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
