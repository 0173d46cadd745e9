"""The runbook's retention rules, checked against what AWS actually has configured.

* DynamoDB point-in-time recovery is enabled, with at least the expected recovery period
  (the runbook: 35 days).
* An enabled S3 lifecycle rule covers every object under the export prefix, and the earliest
  expiration among such rules keeps objects at least ``min_days`` (default 365) and, when a
  maximum is set, at most ``max_days`` (the runbook: typically 1-7 years).
* As the ``jit_audit_require_*`` settings ask (:class:`BucketRequirements`): bucket versioning,
  S3 Object Lock in COMPLIANCE mode with a default retention of at least ``min_days``, default
  encryption (SSE-KMS with the configured key, when there is one) and a full public access block.

Each violation comes with how to fix it, so the failing task's log is a to-do list; ``table()``
renders every check as rows of (check, expected, actual, fix).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from jit_audit.exports import RecoveryWindow, recovery_window
from jit_audit.layout import normalise_prefix


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

    @property
    def ok(self) -> bool:
        return not self.fix


TABLE_HEADER = ("check", "expected", "actual", "fix")


def table(rows: list[Row]) -> str:
    """Rows as an aligned text table; a passing check shows ``OK`` as its fix."""
    cells = [TABLE_HEADER] + [(row.check, row.expected, row.actual, row.fix or "OK") for row in rows]
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
) -> RetentionReport:
    """Check retention; ``lifecycle_rules`` is GetBucketLifecycleConfiguration's ``Rules`` ([] if none).

    With ``bucket_state``, the bucket checks ``requirements`` asks for (default: encryption and the
    public access block) are made too.
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
    return RetentionReport(
        pitr_enabled=window.enabled,
        pitr_recovery_period_days=window.recovery_period_days,
        covering_rules=covering,
        effective_expiration_days=effective,
        findings=findings,
        rows=rows,
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
    """Fetch everything and evaluate: the core of the check_retention task and ``jit-audit check-retention``."""
    return evaluate(
        recovery_window(dynamodb, table_name),
        lifecycle_rules(s3, bucket),
        bucket=bucket,
        export_prefix=export_prefix,
        min_days=min_days,
        max_days=max_days,
        pitr_min_recovery_days=pitr_min_recovery_days,
        bucket_state=bucket_state(s3, bucket, requirements),
        requirements=requirements,
    )


def lifecycle_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    """GetBucketLifecycleConfiguration's rules; a bucket without a configuration has none."""
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
