"""The runbook's retention rules against lifecycle configurations."""

from __future__ import annotations

from datetime import UTC, date, datetime

from jit_audit.exports import RecoveryWindow
from jit_audit.retention import evaluate

PITR = RecoveryWindow(True, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC), 35)


def rule(prefix: str = "exports/", days: int | None = 400, status: str = "Enabled", **extra) -> dict:
    result = {"ID": f"r-{prefix}-{days}", "Status": status, "Filter": {"Prefix": prefix}, **extra}
    if days is not None:
        result["Expiration"] = {"Days": days}
    return result


def check(rules, *, min_days=365, max_days=None, window=PITR):
    return evaluate(window, rules, bucket="b", export_prefix="exports", min_days=min_days, max_days=max_days,
                    pitr_min_recovery_days=35, today=date(2026, 11, 26))


def test_a_covering_rule_within_bounds_passes():
    report = check([rule("exports/", 400), rule("other/", 1)], max_days=7 * 365)
    assert report.ok, report.summary()
    assert report.covering_rules == ["r-exports/-400"]
    assert report.effective_expiration_days == 400


def test_parent_prefix_and_whole_bucket_rules_cover_the_export_prefix():
    assert check([rule("", 400)]).ok
    assert check([rule("exp", 400)]).ok


def test_missing_disabled_or_tag_filtered_rules_do_not_cover():
    for rules in ([], [rule(status="Disabled")], [{"ID": "t", "Status": "Enabled", "Expiration": {"Days": 400},
                                                   "Filter": {"And": {"Prefix": "exports/", "Tags": [{"Key": "a", "Value": "b"}]}}}]):
        report = check(rules)
        assert not report.ok
        assert "No enabled S3 lifecycle rule" in report.findings[0].problem


def test_too_short_expiration_is_a_violation_with_a_fix():
    report = check([rule(days=400), rule("exports/raw/", 30), rule("exports", 90)])
    assert [f.problem for f in report.findings] == [
        "A lifecycle rule expires exports after 90 days, before the required 365."
    ]
    assert "at least 365" in report.findings[0].fix


def test_maximum_is_enforced_including_never_expiring():
    assert "longer than the maximum of 730" in check([rule(days=None)], max_days=730).findings[0].problem
    assert "kept 800 days" in check([rule(days=800)], max_days=730).findings[0].problem


def test_expiration_dates_count_days_from_today():
    report = check([{"ID": "d", "Status": "Enabled", "Filter": {"Prefix": ""},
                     "Expiration": {"Date": datetime(2027, 1, 5, tzinfo=UTC)}}])
    assert report.effective_expiration_days == 40
    assert not report.ok


def test_pitr_disabled_or_short_is_a_violation():
    off = check([rule()], window=RecoveryWindow(False, None, None, None))
    assert "not enabled" in off.findings[0].problem
    short = check([rule()], window=RecoveryWindow(True, None, None, 7))
    assert "keeps 7 days, less than 35" in short.findings[0].problem
