"""The runbook's retention rules, checked against what AWS actually has configured.

* DynamoDB point-in-time recovery is enabled, with at least the expected recovery period
  (the runbook: 35 days).
* An enabled S3 lifecycle rule covers every object under the export prefix, and the earliest
  expiration among such rules keeps objects at least ``min_days`` (default 365) and, when a
  maximum is set, at most ``max_days`` (the runbook: typically 1-7 years).

Each violation comes with how to fix it, so the failing task's log is a to-do list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from jit_audit.exports import RecoveryWindow
from jit_audit.layout import normalise_prefix


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem} Fix: {self.fix}"


@dataclass(frozen=True)
class RetentionReport:
    pitr_enabled: bool
    pitr_recovery_period_days: int | None
    covering_rules: list[str]
    effective_expiration_days: int | None
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

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
) -> RetentionReport:
    """Check retention; ``lifecycle_rules`` is GetBucketLifecycleConfiguration's ``Rules`` ([] if none)."""
    today = today or datetime.now(UTC).date()
    prefix = normalise_prefix(export_prefix)
    prefix = f"{prefix}/" if prefix else ""
    findings = []

    if not window.enabled:
        findings.append(
            Finding(
                "DynamoDB point-in-time recovery is not enabled.",
                "aws dynamodb update-continuous-backups --table-name <table> "
                "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true",
            )
        )
    elif window.recovery_period_days is not None and window.recovery_period_days < pitr_min_recovery_days:
        findings.append(
            Finding(
                f"Point-in-time recovery keeps {window.recovery_period_days} days, less than {pitr_min_recovery_days}.",
                f"set RecoveryPeriodInDays={pitr_min_recovery_days} with update-continuous-backups",
            )
        )

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

    if not covering:
        findings.append(
            Finding(
                f"No enabled S3 lifecycle rule on bucket {bucket} covers the export prefix {prefix!r}.",
                f"add a lifecycle rule with Filter.Prefix {prefix!r} (or a shorter prefix) whose expiration is "
                f"at least {min_days} days" + (f" and at most {max_days} days" if max_days else ""),
            )
        )
    else:
        if effective is not None and effective < min_days:
            findings.append(
                Finding(
                    f"A lifecycle rule expires exports after {effective} days, before the required {min_days}.",
                    f"raise Expiration.Days to at least {min_days} on every rule covering {prefix!r}",
                )
            )
        if max_days is not None and (effective is None or effective > max_days):
            kept = "forever" if effective is None else f"{effective} days"
            findings.append(
                Finding(
                    f"Exports are kept {kept}, longer than the maximum of {max_days} days.",
                    f"set Expiration.Days to at most {max_days} on a rule covering {prefix!r}",
                )
            )
    return RetentionReport(
        pitr_enabled=window.enabled,
        pitr_recovery_period_days=window.recovery_period_days,
        covering_rules=covering,
        effective_expiration_days=effective,
        findings=findings,
    )


def lifecycle_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    """GetBucketLifecycleConfiguration's rules; a bucket without a configuration has none."""
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
