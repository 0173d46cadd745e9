"""The runbook's retention rules against lifecycle configurations and the bucket's protection."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from jit_audit.cli import main
from jit_audit.exports import RecoveryWindow
from jit_audit.retention import (
    PUBLIC_ACCESS_FLAGS,
    BucketRequirements,
    BucketState,
    PublishedSnapshot,
    bucket_state,
    evaluate,
    published_snapshots,
)
from jit_audit.retention import check as check_retention
from jit_audit.settings import SettingsError, load_settings
from jit_audit_dev.seed import ensure_bucket, seed

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


# ------------------------------------------------------------------ bucket protection (pure)

LOCKED = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 400}}}
AES = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
BLOCKED = dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)
ALL = BucketRequirements(versioning=True, object_lock=True, encryption=True, public_access_block=True)


def bucket_check(state: BucketState, required: BucketRequirements = ALL, *, min_days: int = 365):
    return evaluate(PITR, [rule()], bucket="b", export_prefix="exports", min_days=min_days, max_days=None,
                    pitr_min_recovery_days=35, today=date(2026, 11, 26), bucket_state=state, requirements=required)


def failed(report) -> list[str]:
    return [finding.check for finding in report.findings]


def row_of(report, check: str):
    (row,) = [row for row in report.rows if row.check == check]
    return row


def test_a_fully_protected_bucket_passes_and_every_check_is_a_row():
    report = bucket_check(BucketState("Enabled", LOCKED, AES, BLOCKED))
    assert report.ok, report.table()
    assert [row.check for row in report.rows] == [
        "point-in-time recovery", "lifecycle rule", "lifecycle expiration", "bucket versioning", "object lock",
        "default encryption", "public access block", "snapshots past maximum",
    ]
    assert report.rows[-1].skipped and "SKIPPED" in report.table().splitlines()[-1]


def test_defaults_check_only_encryption_and_the_public_access_block():
    assert bucket_check(BucketState(), BucketRequirements()).findings and failed(
        bucket_check(BucketState(), BucketRequirements())) == ["default encryption", "public access block"]
    assert bucket_check(BucketState(None, None, AES, BLOCKED), BucketRequirements()).ok
    assert bucket_check(BucketState(), BucketRequirements(encryption=False, public_access_block=False)).ok


def test_versioning_must_be_enabled():
    for status in (None, "Suspended"):
        report = bucket_check(BucketState(status, LOCKED, AES, BLOCKED))
        assert failed(report) == ["bucket versioning"]
        assert "put-bucket-versioning" in report.findings[0].fix


@pytest.mark.parametrize(
    ("lock", "actual"),
    [
        (None, "not configured"),
        ({"ObjectLockEnabled": "Enabled"}, "Enabled, no default retention"),
        ({"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 400}}},
         "Enabled, GOVERNANCE, 400 days"),
        ({"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}}},
         "Enabled, COMPLIANCE, 30 days"),
    ],
)
def test_object_lock_needs_compliance_mode_and_enough_days(lock, actual):
    report = bucket_check(BucketState("Enabled", lock, AES, BLOCKED))
    assert failed(report) == ["object lock"]
    assert report.rows[4].actual == actual
    assert '"Mode":"COMPLIANCE","Days":365' in report.findings[0].fix


def test_object_lock_years_count_as_365_days():
    years = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 0, "Years": 1}}}
    assert bucket_check(BucketState("Enabled", years, AES, BLOCKED)).ok
    assert failed(bucket_check(BucketState("Enabled", years, AES, BLOCKED), min_days=400)) == ["object lock"]


def test_encryption_with_a_kms_key_must_use_that_key():
    kms = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                    "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/k-1"}}]
    with_key = replace(ALL, kms_key_id="k-1")
    assert bucket_check(BucketState("Enabled", LOCKED, kms, BLOCKED), with_key).ok
    assert bucket_check(BucketState("Enabled", LOCKED, kms, BLOCKED), ALL).ok
    assert failed(bucket_check(BucketState("Enabled", LOCKED, AES, BLOCKED), with_key)) == ["default encryption"]
    other = bucket_check(BucketState("Enabled", LOCKED, kms, BLOCKED), replace(ALL, kms_key_id="k-2"))
    assert failed(other) == ["default encryption"] and '"KMSMasterKeyID":"k-2"' in other.findings[0].fix
    missing = bucket_check(BucketState("Enabled", LOCKED, None, BLOCKED))
    assert missing.rows[5].actual == "not configured" and '"SSEAlgorithm":"AES256"' in missing.findings[0].fix


def test_public_access_block_needs_all_four_flags():
    partial = bucket_check(BucketState("Enabled", LOCKED, AES, {**BLOCKED, "RestrictPublicBuckets": False}))
    assert failed(partial) == ["public access block"]
    assert row_of(partial, "public access block").actual == "false: RestrictPublicBuckets"
    assert row_of(bucket_check(BucketState("Enabled", LOCKED, AES, None)), "public access block").actual == "not configured"


def test_table_is_aligned_with_a_fix_per_violation():
    text = bucket_check(BucketState("Enabled", LOCKED, AES, None)).table()
    lines = text.splitlines()
    assert lines[0].split(" | ") == ["check".ljust(22), "expected".ljust(len(lines[0].split(" | ")[1])),
                                     "actual".ljust(len(lines[0].split(" | ")[2])), "fix"]
    assert len({line.index(" | ") for line in lines if " | " in line}) == 1
    assert "put-public-access-block" in lines[-2] and lines[2].endswith("| OK")
    assert lines[-1].endswith("| SKIPPED"), "no maximum: the snapshot check says it did not run"


def test_settings_parse_the_requirement_booleans_strictly():
    settings = load_settings(lambda name: None)
    assert (settings.require_versioning, settings.require_object_lock, settings.require_encryption,
            settings.require_public_access_block) == (False, False, True, True)
    values = {"jit_audit_require_versioning": "YES", "jit_audit_require_object_lock": "1",
              "jit_audit_require_encryption": "no", "jit_audit_require_public_access_block": "False"}
    settings = load_settings(values.get)
    assert (settings.require_versioning, settings.require_object_lock, settings.require_encryption,
            settings.require_public_access_block) == (True, True, False, False)
    for variable in values:
        with pytest.raises(SettingsError, match=variable):
            load_settings({variable: "maybe"}.get)


# ------------------------------------------------------------ against the emulator, and the CLI

BUCKET = "jit-audit-retention-test"


@pytest.fixture()
def stack(aws):
    seed(aws.resource("dynamodb"), "jit_audit", requests=2)
    ensure_bucket(aws.client("s3"), BUCKET, prefix="exports", retention_days=400)
    return aws


def cli(aws, *extra: str) -> int:
    return main(["check-retention", "--table", "jit_audit", "--bucket", BUCKET, "--prefix", "exports",
                 "--endpoint-url", aws.endpoint_url, "--region", "us-east-1", *extra])


def test_ensure_bucket_passes_the_default_checks(stack, capsys):
    s3 = stack.client("s3")
    report = check_retention(stack.client("dynamodb"), s3, table_name="jit_audit", bucket=BUCKET, export_prefix="exports",
                   min_days=365, max_days=None, pitr_min_recovery_days=35, requirements=BucketRequirements())
    assert report.ok, report.table()
    assert cli(stack) == 0
    assert "public access block" in capsys.readouterr().out


def test_absent_configurations_are_none_on_the_emulator(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    assert bucket_state(s3, BUCKET, ALL) == BucketState(None, None, None, None)


def test_each_bucket_check_fails_then_passes_on_the_emulator(stack, capsys):
    s3 = stack.client("s3")
    s3.delete_public_access_block(Bucket=BUCKET)
    assert cli(stack) == 1
    assert "put-public-access-block" in capsys.readouterr().out
    assert cli(stack, "--no-require-public-access-block") == 0

    s3.delete_bucket_encryption(Bucket=BUCKET)
    assert cli(stack, "--no-require-public-access-block") == 1
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/k-1"}}]})
    assert cli(stack, "--no-require-public-access-block", "--kms-key-id", "alias/k-1") == 0
    assert cli(stack, "--no-require-public-access-block", "--kms-key-id", "alias/k-2") == 1
    capsys.readouterr()

    flags = ("--no-require-public-access-block", "--no-require-encryption")
    assert cli(stack, *flags, "--require-versioning") == 1
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    assert cli(stack, *flags, "--require-versioning") == 0

    assert cli(stack, *flags, "--require-object-lock") == 1
    assert "object lock" in capsys.readouterr().out
    locked = "jit-audit-retention-locked"
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    ensure_bucket(s3, locked, prefix="exports", retention_days=400)
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}}
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=lock)
    args = ["check-retention", "--table", "jit_audit", "--bucket", locked, "--prefix", "exports",
            "--endpoint-url", stack.endpoint_url, "--region", "us-east-1", "--require-object-lock", "--require-versioning"]
    assert main(args) == 0
    assert main([*args, "--min-days", "366", "--max-days", "500"]) == 1


def test_cli_usage_errors_exit_2(stack, capsys):
    assert cli(stack, "--min-days", "400", "--max-days", "30") == 2
    # The command's own flags, not the Airflow Variables behind them.
    assert capsys.readouterr().err == "jit-audit check-retention: --max-days (30) is below --min-days (400)\n"
    assert cli(stack, "--min-days", "soon") == 2
    assert capsys.readouterr().err == "jit-audit check-retention: --min-days must be a whole number, got 'soon'\n"
    with pytest.raises(SystemExit) as caught:
        main(["check-retention", "--bucket", BUCKET])
    assert caught.value.code == 2
    assert main(["check-retention", "--table", "jit_audit", "--bucket", "no-such-bucket-here", "--prefix", "p",
                 "--endpoint-url", stack.endpoint_url, "--region", "us-east-1"]) == 2


# ------------------------------------------- published snapshots older than the maximum (pure)

TODAY = date(2026, 11, 26)
JSONL = "exports/jsonl/table=jit_audit/"


def snap(day: str, table_prefix: str = JSONL) -> PublishedSnapshot:
    return PublishedSnapshot(f"{table_prefix}snapshot_date={day}/", date.fromisoformat(day))


OLD, YOUNG = snap("2024-01-10"), snap("2026-11-25")


def snapshot_check(rules, snapshots, *, max_days=730, versioning=None):
    return evaluate(PITR, rules, bucket="b", export_prefix="exports", min_days=365, max_days=max_days,
                    pitr_min_recovery_days=35, today=TODAY, snapshots=snapshots,
                    bucket_state=BucketState(versioning=versioning),
                    requirements=BucketRequirements(encryption=False, public_access_block=False))


def test_an_old_snapshot_expired_by_a_covering_rule_passes_even_while_still_there():
    report = snapshot_check([rule("exports/", 400)], [OLD, YOUNG])
    assert report.ok, report.table()
    assert row_of(report, "snapshots past maximum").actual == (
        "2 published, 1 older than 730 days, each expired by a rule (S3 removes expired objects a day or two late)")


@pytest.mark.parametrize(("rules", "why"), [
    ([], "no enabled lifecycle rule covers it"),
    ([rule("exports/", 400, status="Disabled")], "no enabled lifecycle rule covers it"),
    ([rule("exports/raw/", 400), rule("exports/jsonl/table=other/", 30)], "no enabled lifecycle rule covers it"),
    ([{"ID": "tagged", "Status": "Enabled", "Expiration": {"Days": 30},
       "Filter": {"And": {"Prefix": "exports/", "Tags": [{"Key": "a", "Value": "b"}]}}}],
     "no enabled lifecycle rule covers it"),
    ([rule("exports/", None, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7})],
     "no covering rule has an Expiration"),
], ids=["no-rule", "disabled", "other-prefixes", "tag-filtered", "no-expiration"])
def test_an_old_snapshot_without_a_rule_that_expires_it_is_named(rules, why):
    report = snapshot_check(rules, [OLD, YOUNG])
    (finding,) = [finding for finding in report.findings if finding.check == "snapshots past maximum"]
    assert f"table=jit_audit/snapshot_date=2024-01-10 ({why})" in finding.problem
    assert "2026-11-25" not in finding.problem, "a young snapshot is never a finding"
    assert "Expiration.Days at most 730" in finding.fix and "'exports/'" in finding.fix
    assert row_of(report, "snapshots past maximum").actual == (
        "1 of 1 older than 730 days kept: table=jit_audit/snapshot_date=2024-01-10")


def test_only_the_snapshots_a_rule_covers_are_expired_by_it():
    rules = [rule("exports/", 800), rule(f"{JSONL}snapshot_date=2024", 400)]
    report = snapshot_check(rules, [snap("2023-06-01"), OLD, YOUNG], max_days=800)
    assert report.ok, report.table()
    report = snapshot_check(rules, [snap("2023-06-01"), OLD, YOUNG], max_days=700)
    (finding,) = [finding for finding in report.findings if finding.check == "snapshots past maximum"]
    assert "snapshot_date=2023-06-01 (covering rules keep it 800 days)" in finding.problem
    assert "2024-01-10" not in finding.problem


def test_a_versioned_bucket_must_expire_noncurrent_versions_too():
    expire_only = [rule("exports/", 400)]
    for status in ("Enabled", "Suspended"):
        report = snapshot_check(expire_only, [OLD], versioning=status)
        assert "(versioned bucket: no covering rule has a NoncurrentVersionExpiration)" in report.findings[0].problem
        assert "NoncurrentVersionExpiration.NoncurrentDays" in report.findings[0].fix
    both = [rule("exports/", 400, NoncurrentVersionExpiration={"NoncurrentDays": 330})]
    assert snapshot_check(both, [OLD], versioning="Enabled").ok
    too_long = [rule("exports/", 400, NoncurrentVersionExpiration={"NoncurrentDays": 331})]
    assert "keep it 731 days" in snapshot_check(too_long, [OLD], versioning="Enabled").findings[0].problem


def test_an_expiration_date_counts_from_the_snapshots_date():
    dated = [{"ID": "d", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Date": datetime(2026, 1, 1, tzinfo=UTC)}}]
    assert not [f for f in snapshot_check(dated, [snap("2024-06-01")]).findings if f.check == "snapshots past maximum"]
    late = snapshot_check(dated, [snap("2024-01-01")])
    assert "covering rules keep it 731 days" in late.findings[-1].problem


def test_a_finding_names_at_most_five_snapshots_and_counts_all():
    old = [snap(f"2023-01-0{day}") for day in range(1, 8)]
    report = snapshot_check([], [*old, YOUNG])
    finding = report.findings[-1]
    assert finding.problem.startswith("7 published snapshot(s) in bucket b are older than the maximum retention")
    assert "2023-01-05" in finding.problem and "2023-01-06" not in finding.problem and "and 2 more" in finding.problem
    assert row_of(report, "snapshots past maximum").actual.endswith("snapshot_date=2023-01-05 and 2 more")


def test_without_a_maximum_the_snapshot_check_is_skipped_and_says_so():
    report = snapshot_check([], [OLD], max_days=None)
    row = row_of(report, "snapshots past maximum")
    assert row.skipped and row.ok and "no maximum retention (jit_audit_retention_max_days)" in row.actual
    assert report.table().splitlines()[-1].endswith("| SKIPPED")
    unlisted = row_of(snapshot_check([rule()], None), "snapshots past maximum")
    assert unlisted.skipped and unlisted.actual == "skipped: the published snapshots were not listed"


# ---------------------------------------- published snapshots, listed from the emulator, and the CLI

MAX = "730"


@pytest.fixture()
def old_snapshots(stack):
    """Two published snapshots years old, one from yesterday, an unpublished one, and staging leftovers.

    moto cannot backdate ``LastModified``; the age comes from the date in the key, which is what
    the check uses anyway.
    """
    s3 = stack.client("s3")
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    for day in ("2020-01-01", "2021-03-04", yesterday):
        for name in ("part-00000.jsonl.gz", "_manifest.json", "_SUCCESS"):
            s3.put_object(Bucket=BUCKET, Key=f"{JSONL}snapshot_date={day}/{name}", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="exports/jsonl/table=jit_audit/snapshot_date=2019-05-05/part-00000.jsonl.gz",
                  Body=b"x")  # parts without a manifest or _SUCCESS: never published
    s3.put_object(Bucket=BUCKET, Key="exports/jsonl/_staging/table=jit_audit/snapshot_date=2019-05-06/_manifest.json",
                  Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="exports/jsonl/table=jit_audit/change_window=20200101T000000Z_20200102T000000Z/"
                  "_SUCCESS", Body=b"")
    return stack


def put_rules(aws, *rules: dict) -> None:
    s3 = aws.client("s3")
    s3.delete_bucket_lifecycle(Bucket=BUCKET)
    if rules:
        s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": list(rules)})


def test_published_snapshots_are_found_by_their_markers(old_snapshots):
    found = published_snapshots(old_snapshots.client("s3"), BUCKET, "/exports/")
    assert [snapshot.name for snapshot in found] == [
        "table=jit_audit/snapshot_date=2020-01-01",
        "table=jit_audit/change_window=20200101T000000Z_20200102T000000Z",
        "table=jit_audit/snapshot_date=2021-03-04",
        f"table=jit_audit/snapshot_date={(datetime.now(UTC).date() - timedelta(days=1)).isoformat()}",
    ]
    assert found[1].snapshot_date == date(2020, 1, 2), "a change window is as old as its end"
    assert all(snapshot.last_modified is not None for snapshot in found)


def test_published_snapshots_cover_every_table_and_only_labels_the_layout_writes(old_snapshots):
    s3 = old_snapshots.client("s3")
    s3.put_object(Bucket=BUCKET, Key="exports/jsonl/table=other/snapshot_date=2019-01-01/_manifest.json", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"{JSONL}snapshot_date=someday/_SUCCESS", Body=b"")
    s3.put_object(Bucket=BUCKET, Key=f"{JSONL}snapshot_date=2018-01-01/old/_SUCCESS", Body=b"")  # not its own marker
    names = [snapshot.name for snapshot in published_snapshots(s3, BUCKET, "exports")]
    assert names[:2] == ["table=other/snapshot_date=2019-01-01", "table=jit_audit/snapshot_date=2020-01-01"]
    assert len(names) == 5 and not any("someday" in name or "2018" in name for name in names)


@pytest.mark.parametrize(("rules", "exit_code"), [
    ((), 1),
    ((rule("exports/", 400),), 0),
    ((rule("exports/raw/", 400),), 1),
    ((rule("exports/", 400, status="Disabled"),), 1),
], ids=["no-rule", "covering-rule", "rule-on-another-prefix", "disabled-rule"])
def test_old_snapshots_need_a_rule_that_expires_them(old_snapshots, capsys, rules, exit_code):
    put_rules(old_snapshots, *rules)
    assert cli(old_snapshots, "--max-days", MAX) == exit_code
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("snapshots past maximum")]
    if exit_code:
        assert "3 of 3 older than 730 days kept: table=jit_audit/snapshot_date=2020-01-01" in line
        assert "Expiration.Days at most 730" in line
    else:
        assert "4 published, 3 older than 730 days, each expired by a rule" in line and line.endswith("| OK")


def test_on_a_versioned_emulator_bucket_noncurrent_versions_must_expire(old_snapshots, capsys):
    s3 = old_snapshots.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    report = check_retention(old_snapshots.client("dynamodb"), s3, table_name="jit_audit", bucket=BUCKET,
                             export_prefix="exports", min_days=365, max_days=730, pitr_min_recovery_days=35,
                             requirements=BucketRequirements())
    assert failed(report) == ["snapshots past maximum"]
    assert "(versioned bucket: no covering rule has a NoncurrentVersionExpiration)" in report.findings[0].problem
    assert cli(old_snapshots, "--max-days", MAX) == 1
    put_rules(old_snapshots, rule("exports/", 400, NoncurrentVersionExpiration={"NoncurrentDays": 30}))
    assert cli(old_snapshots, "--max-days", MAX) == 0


def test_without_max_days_the_cli_says_the_snapshot_check_was_skipped(old_snapshots, capsys):
    put_rules(old_snapshots)
    assert cli(old_snapshots) == 1  # no lifecycle rule at all is still a violation
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("snapshots past maximum")]
    assert "skipped: no maximum retention" in line and line.endswith("| SKIPPED")
