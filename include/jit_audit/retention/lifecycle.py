"""S3 lifecycle rules: which ones cover a key prefix, and how long they keep what they cover.

A rule covers every object under a prefix when it is enabled and filters on a key prefix only (a
rule narrowed by tags or object size does not cover *every* export object, so it cannot be what
guarantees retention). S3 applies the earliest expiration among the rules that cover an object.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jit_audit.retention.findings import Checklist


def lifecycle_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    """GetBucketLifecycleConfiguration's rules; a bucket without a configuration has none."""
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise


def rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule applies to, or None if it also filters on tags or sizes."""
    if "Prefix" in rule:  # the legacy, filter-less form
        return rule["Prefix"] or ""
    rule_filter = rule.get("Filter", {})
    if not rule_filter:
        return ""
    if set(rule_filter) == {"Prefix"}:
        return rule_filter["Prefix"] or ""
    return None


def covering_rules(rules: list[dict[str, Any]], key_prefix: str) -> list[dict[str, Any]]:
    """The enabled rules that apply to every object under ``key_prefix``."""
    return [
        rule for rule in rules
        if rule.get("Status") == "Enabled" and (prefix := rule_prefix(rule)) is not None
        and key_prefix.startswith(prefix)
    ]


def days_kept(rule: dict[str, Any], since: date) -> int | None:
    """Days after ``since`` until ``rule`` expires the current objects it covers; None if it never does.

    An ``Expiration.Days`` counts from each object's creation; an ``Expiration.Date`` is the same day
    for every object, so how long it keeps one depends on ``since``.
    """
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        return int(expiration["Days"])
    if "Date" in expiration:
        when = expiration["Date"]
        when_date = when.date() if isinstance(when, datetime) else date.fromisoformat(str(when)[:10])
        return (when_date - since).days
    return None


def check_lifecycle(
    checklist: Checklist,
    rules: list[dict[str, Any]],
    *,
    bucket: str,
    prefix: str,
    min_days: int,
    max_days: int | None,
    today: date,
) -> tuple[list[str], int | None]:
    """An enabled rule covers ``prefix`` and expires it no sooner than ``min_days`` (no later than ``max_days``).

    Returns the covering rules' names and the effective expiration in days (None: never).
    """
    covering = covering_rules(rules, prefix)
    names = [rule.get("ID") or f"(unnamed rule on prefix {rule_prefix(rule)!r})" for rule in covering]
    expirations = [max(days, 0) for rule in covering if (days := days_kept(rule, today)) is not None]
    effective = min(expirations) if expirations else None

    expected = f"enabled rule covering {prefix!r}"
    expiry_expected = f">= {min_days} days" + (f", <= {max_days} days" if max_days is not None else "")
    if not covering:
        checklist.add("lifecycle rule", expected, "none",
                      f"No enabled S3 lifecycle rule on bucket {bucket} covers the export prefix {prefix!r}.",
                      f"add a lifecycle rule with Filter.Prefix {prefix!r} (or a shorter prefix) whose expiration is "
                      f"at least {min_days} days" + (f" and at most {max_days} days" if max_days else ""))
        return names, effective
    checklist.add("lifecycle rule", expected, ", ".join(names))
    kept = "never expire" if effective is None else f"{effective} days"
    if effective is not None and effective < min_days:
        checklist.add("lifecycle expiration", expiry_expected, kept,
                      f"A lifecycle rule expires exports after {effective} days, before the required {min_days}.",
                      f"raise Expiration.Days to at least {min_days} on every rule covering {prefix!r}")
    elif max_days is not None and (effective is None or effective > max_days):
        checklist.add("lifecycle expiration", expiry_expected, kept,
                      f"Exports are kept {'forever' if effective is None else f'{effective} days'}, "
                      f"longer than the maximum of {max_days} days.",
                      f"set Expiration.Days to at most {max_days} on a rule covering {prefix!r}")
    else:
        checklist.add("lifecycle expiration", expiry_expected, kept)
    return names, effective
