"""Key layout, ClientTokens and settings validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from jit_audit.layout import SnapshotLayout, client_token
from jit_audit.settings import SETTINGS, SettingsError, load_settings

EXPORT_TIME = datetime(2026, 11, 26, tzinfo=UTC)


def layout(prefix: str = "exports") -> SnapshotLayout:
    return SnapshotLayout("bucket", prefix, "jit_audit", date(2026, 11, 25), EXPORT_TIME)


def test_keys_follow_the_documented_layout():
    snap = layout("/exports/")
    assert snap.raw_prefix == "exports/raw/table=jit_audit/export_time=20261126T000000Z"
    assert snap.published_part_key(3) == "exports/jsonl/table=jit_audit/snapshot_date=2026-11-25/part-00003.jsonl.gz"
    assert snap.staging_part_key(0) == "exports/jsonl/_staging/table=jit_audit/snapshot_date=2026-11-25/part-00000.jsonl.gz"
    assert snap.partition.success_key.endswith("snapshot_date=2026-11-25/_SUCCESS")
    assert layout("").raw_prefix == "raw/table=jit_audit/export_time=20261126T000000Z"
    assert SnapshotLayout.from_dict(snap.to_dict()) == snap


def test_client_token_is_stable_and_changes_with_any_input():
    base = dict(table_arn="arn:t", export_time=EXPORT_TIME, bucket="b", s3_prefix="p")
    token = client_token(**base)
    assert token == client_token(**base)
    assert len(token) <= 64 and "$" not in token
    assert token != client_token(**{**base, "attempt": 1})
    assert token != client_token(**{**base, "s3_prefix": "q"})
    assert token != client_token(**{**base, "export_time": datetime(2026, 11, 27, tzinfo=UTC)})


def test_defaults_apply_when_variables_are_missing():
    settings = load_settings(lambda name: None)
    assert settings.table == "jit_audit"
    assert settings.bucket == "jit-audit-exports"
    assert settings.aws_conn_id == "aws_default"
    assert settings.retention_min_days == 365 and settings.retention_max_days is None
    assert {spec.variable for spec in SETTINGS} >= {
        "jit_audit_table", "jit_audit_export_bucket", "jit_audit_export_prefix", "jit_audit_aws_conn_id",
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("jit_audit_export_bucket", "Bad_Bucket", "not a valid S3 bucket name"),
        ("jit_audit_table", "x", "not a valid DynamoDB table name"),
        ("jit_audit_retention_min_days", "a year", "must be a whole number"),
        ("jit_audit_retention_max_days", "30", "is below Variable jit_audit_retention_min_days"),
        ("jit_audit_export_bucket_owner", "me", "12-digit account id"),
        ("jit_audit_export_prefix", "a\nb", "control characters"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(variable, value, message):
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings(lambda name: value if name == variable else None)
    assert variable in str(caught.value)


def test_readme_documents_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for spec in SETTINGS:
        assert f"`{spec.variable}`" in readme, spec.variable
        assert spec.description in readme, spec.variable


# Hostile values for every Variable: each is refused naming its Variable, or (where the value is a
# legal S3 key fragment) accepted and used literally, never interpreted.
HOSTILE = ["$(rm -rf /)", "`id`", "a; DROP TABLE x", "x' OR '1'='1", "${jndi:ldap://x/a}", "a\nb", "a\x00b",
           "../../etc/passwd", "a\\b", " ", "x" * 5000, "#partition = :key", "ünïcødé"]
#: Variables whose legal values include free text S3 accepts in a key (used literally, see below).
LITERAL = {"jit_audit_export_prefix"}


@pytest.mark.parametrize("variable", [spec.variable for spec in SETTINGS])
@pytest.mark.parametrize("value", HOSTILE, ids=[f"hostile{index}" for index in range(len(HOSTILE))])
def test_hostile_variable_values_are_refused_or_used_literally(variable, value):
    try:
        settings = load_settings(lambda name: value if name == variable else None)
    except SettingsError as error:
        assert variable in str(error)
        return
    if variable in LITERAL:
        layout = SnapshotLayout(bucket=settings.bucket, prefix=settings.prefix, table=settings.table,
                                snapshot_date=date(2026, 1, 2), export_time=datetime(2026, 1, 2, tzinfo=UTC))
        expected = value.strip().strip("/")
        assert layout.published_prefix.startswith(f"{expected}/" if expected else "jsonl/")
        return
    # Otherwise only a blank value may pass, and only where it means "use the default / not set".
    assert not value.strip(), (variable, value)
    defaults = load_settings(lambda name: None)
    if variable == "jit_audit_pseudonymisation_conn_id":  # blank is "no key connection": allowed only while off
        assert settings == replace(defaults, pseudonymisation_conn_id="") and not settings.pseudonymise_actor_email
    else:
        assert settings == defaults, variable
