"""The export DAG end to end: `dag.test()` against the emulator over HTTP, deferral included."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from jit_audit.seed import ensure_bucket, seed

pytestmark = pytest.mark.e2e

BUCKET = "jit-audit-exports"
PREFIX = "exports"
VARIABLES = {
    "AIRFLOW_VAR_JIT_AUDIT_TABLE": "jit_audit",
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": PREFIX,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_TIMEOUT_MINUTES": "5",
}


@pytest.fixture()
def seeded(aws, dagbag, monkeypatch):
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    result = seed(aws.resource("dynamodb"), "jit_audit", requests=120)
    ensure_bucket(aws.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)
    return result.events


def run(dagbag, logical_date: datetime):
    dag = dagbag.dags["jit_audit_export"]
    dag_run = dag.test(logical_date=logical_date)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    return dag_run.state, states


def published(aws, date: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    prefix = f"{PREFIX}/jsonl/table=jit_audit/snapshot_date={date}/"
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return {key[len(prefix):]: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def exports(aws) -> list[str]:
    dynamodb = aws.client("dynamodb")
    arn = dynamodb.describe_table(TableName="jit_audit")["Table"]["TableArn"]
    return [summary["ExportArn"] for summary in dynamodb.list_exports(TableArn=arn)["ExportSummaries"]]


def day(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def test_run_publishes_a_reconciled_snapshot_and_a_rerun_is_identical(aws, dagbag, seeded):
    logical_date = day(1)
    state, tasks = run(dagbag, logical_date)
    assert state == "success", tasks
    snapshot = published(aws, logical_date.date().isoformat())
    assert snapshot["_SUCCESS"] == b""
    manifest = json.loads(snapshot["_manifest.json"])
    assert manifest["counts"] == {"describe_export_item_count": seeded, "manifest_item_count": seeded,
                                  "lines_written": seeded}
    parts = {name: body for name, body in snapshot.items() if name.startswith("part-")}
    assert len(parts) == -(-seeded // 150) >= 2  # the emulator writes 150 items per data file
    lines = [json.loads(line) for body in parts.values() for line in gzip.decompress(body).splitlines()]
    assert len(lines) == seeded
    assert all({"request_id", "event_type", "event_time", "event_id", "details"} <= line.keys() for line in lines)
    assert exports(aws) == [manifest["export_arn"]]

    state, tasks = run(dagbag, logical_date)
    assert state == "success", tasks
    assert exports(aws) == [manifest["export_arn"]], "a re-run must not start a second export"
    assert published(aws, logical_date.date().isoformat()) == snapshot, "a re-run must publish identical bytes"


def test_backfill_over_several_dates_gives_one_snapshot_each(aws, dagbag, seeded):
    dates = [day(4), day(3), day(2)]
    for logical_date in dates:
        state, tasks = run(dagbag, logical_date)
        assert state == "success", (logical_date, tasks)
    assert len(exports(aws)) == 3
    for logical_date in dates:
        manifest = json.loads(published(aws, logical_date.date().isoformat())["_manifest.json"])
        assert manifest["counts"]["lines_written"] == seeded
        assert manifest["export_time"].startswith(logical_date.date().isoformat())
    assert len({json.loads(published(aws, d.date().isoformat())["_manifest.json"])["export_arn"] for d in dates}) == 3


def test_a_date_older_than_the_recovery_window_fails_fast_without_exporting(aws, dagbag, seeded):
    logical_date = day(40)
    state, tasks = run(dagbag, logical_date)
    assert state == "failed"
    assert tasks["wait_for_restorable_time"] == "failed"
    assert tasks["start_export"] in ("upstream_failed", None)
    assert exports(aws) == []
    assert published(aws, logical_date.date().isoformat()) == {}


def test_a_bad_variable_fails_in_plan_before_any_aws_call(aws, dagbag, seeded, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET", "Not_A_Bucket")
    state, tasks = run(dagbag, day(1))
    assert state == "failed"
    assert tasks["plan"] == "failed"
    assert exports(aws) == []
    assert os.environ["AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET"] == "Not_A_Bucket"


def test_a_failed_export_fails_the_run_with_dynamodbs_reason_and_publishes_nothing(aws, dagbag, seeded, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET", "no-such-bucket")
    logical_date = day(1)
    state, tasks = run(dagbag, logical_date)
    assert state == "failed"
    assert tasks["start_export"] == "success"
    assert tasks["wait_for_export"] == "failed"
    assert tasks["publish_snapshot"] == "upstream_failed"
    (arn,) = exports(aws)
    description = aws.client("dynamodb").describe_export(ExportArn=arn)["ExportDescription"]
    assert (description["ExportStatus"], description["FailureCode"]) == ("FAILED", "S3NoSuchBucket")
    assert published(aws, logical_date.date().isoformat()) == {}
