"""The export DAG end to end: `dag.test()` against the emulator over HTTP, deferral included."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from jit_audit_dev.seed import ensure_bucket, event_time, seed

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

    dag_run = dagbag.dags["jit_audit_export"].test(logical_date=logical_date)
    assert dag_run.state == "success"
    assert exports(aws) == [manifest["export_arn"]], "a re-run must not start a second export"
    assert published(aws, logical_date.date().isoformat()) == snapshot, "a re-run must publish identical bytes"
    _publish_step_alone_changes_nothing(aws, dag_run, logical_date)


def _publish_step_alone_changes_nothing(aws, dag_run, logical_date: datetime) -> None:
    """Clearing only publish_snapshot (its staged parts are gone by then): the date keeps its snapshot,
    the task succeeds without a new ledger entry, and says so."""
    from jit_audit_airflow.export_tasks import publish_snapshot

    tis = {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}
    plan = tis[("plan", -1)].xcom_pull(task_ids="plan", key="return_value")
    export_arn = tis[("start_export", -1)].xcom_pull(task_ids="start_export")
    parts = [part for (task_id, index), ti in sorted(tis.items()) if task_id == "flatten_data_files"
             for part in ti.xcom_pull(task_ids="flatten_data_files", map_indexes=index)]
    first = tis[("publish_snapshot", -1)].xcom_pull(task_ids="publish_snapshot")
    assert first["ledger_sequence"] is not None and len(parts) >= 2
    date = logical_date.date().isoformat()
    before = published(aws, date)
    ledger_prefix = f"{PREFIX}/jsonl/table=jit_audit/_ledger/"
    s3 = aws.client("s3")
    entries = s3.list_objects_v2(Bucket=BUCKET, Prefix=ledger_prefix)["KeyCount"]

    again = publish_snapshot(plan, export_arn, parts, run_id=dag_run.run_id)
    assert again["ledger_sequence"] is None and again["counts"] == first["counts"]
    assert published(aws, date) == before
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=ledger_prefix)["KeyCount"] == entries


def test_backfill_over_several_dates_gives_one_snapshot_each(aws, dagbag, seeded):
    dates = [day(4), day(3), day(2)]
    for logical_date in dates:
        state, tasks = run(dagbag, logical_date)
        assert state == "success", (logical_date, tasks)
    assert len(exports(aws)) == 3
    items = [item for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName="jit_audit")
             for item in page["Items"]]
    in_snapshot = [sum(1 for item in items if event_time(item["event_time_event_id"]["S"]) <= logical_date)
                   for logical_date in dates]
    assert len(set(in_snapshot)) == 3  # the seeder writes each event at its event time
    for logical_date, expected in zip(dates, in_snapshot, strict=True):
        manifest = json.loads(published(aws, logical_date.date().isoformat())["_manifest.json"])
        assert manifest["counts"]["lines_written"] == expected
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


def set_clock(aws, moment: datetime | None) -> None:
    """Move the emulator's clock (its write stamps) to ``moment``; None puts it back to now."""
    import urllib.request

    offset = 0.0 if moment is None else (moment - datetime.now(UTC)).total_seconds()
    request = urllib.request.Request(
        f"{aws.endpoint_url}/jit-audit-emulator/clock", data=json.dumps({"offset_seconds": offset}).encode(),
        method="POST", headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10)


@pytest.mark.parametrize("view", ["NEW_AND_OLD_IMAGES", "NEW_IMAGE"])
def test_incremental_mode_takes_a_baseline_then_publishes_each_windows_changes(aws, dagbag, monkeypatch, view):
    """The lines follow the export's own view (its manifest's outputView), whatever the run asked for: a
    NEW_IMAGE export cannot tell an insert from an update (PUT) and keeps no image of a deleted item."""
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_MODE", "incremental")
    # The export is started with this view, while the run's plan still says the view it asks for.
    monkeypatch.setattr("jit_audit_airflow.settings.INCREMENTAL_VIEW", "NEW_AND_OLD_IMAGES")
    monkeypatch.setattr("jit_audit.exports.INCREMENTAL_VIEW", view)
    table = aws.resource("dynamodb").Table("jit_audit")
    try:
        # Every seeded event is written (at its event time) before the baseline's day.
        seeded = seed(aws.resource("dynamodb"), "jit_audit", requests=30, end=day(3) + timedelta(hours=12)).events
        ensure_bucket(aws.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)

        state, tasks = run(dagbag, day(2))
        assert state == "success", tasks
        baseline = json.loads(published(aws, day(2).date().isoformat())["_manifest.json"])
        assert baseline["kind"] == "snapshot" and baseline["counts"]["lines_written"] == seeded

        set_clock(aws, day(2) + timedelta(hours=6))
        existing = table.scan(Limit=2)["Items"]
        changed, deleted = existing[0], existing[1]
        for index in range(3):
            table.put_item(Item={"request_id": f"req-new-{index}", "event_time_event_id": f"2026-11-20T00:00:0{index}Z#n{index}",
                                 "event_type": "REQUESTED"})
        table.put_item(Item={**changed, "event_type": "REVOKED"})
        table.delete_item(Key={"request_id": deleted["request_id"], "event_time_event_id": deleted["event_time_event_id"]})
    finally:
        set_clock(aws, None)

    state, tasks = run(dagbag, day(1))
    assert state == "success", tasks
    s3 = aws.client("s3")
    window = f"change_window={day(2):%Y%m%dT%H%M%SZ}_{day(1):%Y%m%dT%H%M%SZ}"
    prefix = f"{PREFIX}/jsonl/table=jit_audit/{window}/"
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    assert {prefix + "_SUCCESS", prefix + "_manifest.json", prefix + "part-00000.jsonl.gz"} == set(keys)
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "_manifest.json")["Body"].read())
    assert manifest["kind"] == "changes" and manifest["change_window"]["view"] == view
    assert manifest["counts"] == {"describe_export_item_count": 5, "manifest_item_count": 5, "lines_written": 5}
    changes = [json.loads(line) for key in keys if key.endswith(".jsonl.gz")
               for line in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).splitlines()]
    by_operation: dict[str, list[dict]] = {}
    for change in changes:
        by_operation.setdefault(change["operation"], []).append(change)
    (remove,) = by_operation["REMOVE"]
    assert remove["keys"] == {"request_id": deleted["request_id"], "event_time_event_id": deleted["event_time_event_id"]}
    if view == "NEW_AND_OLD_IMAGES":
        assert sorted((op, len(found)) for op, found in by_operation.items()) == [("INSERT", 3), ("MODIFY", 1),
                                                                                  ("REMOVE", 1)]
        (modify,) = by_operation["MODIFY"]
        assert (modify["old_image"]["event_type"], modify["new_image"]["event_type"]) == (changed["event_type"],
                                                                                          "REVOKED")
        assert remove["new_image"] is None and remove["old_image"]["request_id"] == deleted["request_id"]
    else:
        assert sorted((op, len(found)) for op, found in by_operation.items()) == [("PUT", 4), ("REMOVE", 1)]
        changed_keys = {"request_id": changed["request_id"], "event_time_event_id": changed["event_time_event_id"]}
        (update,) = [put for put in by_operation["PUT"] if put["keys"] == changed_keys]
        assert (update["old_image"], update["new_image"]["event_type"]) == (None, "REVOKED")
        assert remove["new_image"] is None and remove["old_image"] is None
    assert remove["write_time"].startswith((day(2) + timedelta(hours=6)).date().isoformat())
    assert len(exports(aws)) == 2


def test_a_bad_line_in_a_data_file_fails_the_run_and_leaves_the_published_snapshot_untouched(aws, dagbag, seeded):
    import base64
    import hashlib

    logical_date = day(1)
    state, tasks = run(dagbag, logical_date)
    assert state == "success", tasks
    before = published(aws, logical_date.date().isoformat())

    # Damage one data file of the export (and its manifest entry, so the MD5 check passes and the
    # flattener itself must catch it): line 3 gets an unknown type tag.
    s3 = aws.client("s3")
    manifest = json.loads(before["_manifest.json"])
    data_key = manifest["parts"][0]["source_data_file"]
    lines = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=data_key)["Body"].read()).splitlines(keepends=True)
    lines[2] = b'{"Item":{"request_id":{"X":"corrupt"}}}\n'
    damaged = gzip.compress(b"".join(lines))
    s3.put_object(Bucket=BUCKET, Key=data_key, Body=damaged)
    files_key = data_key.rsplit("/data/", 1)[0] + "/manifest-files.json"
    entries = [json.loads(line) for line in s3.get_object(Bucket=BUCKET, Key=files_key)["Body"].read().splitlines()]
    for entry in entries:
        if entry["dataFileS3Key"] == data_key:
            entry["md5Checksum"] = base64.b64encode(hashlib.md5(damaged).digest()).decode()
    s3.put_object(Bucket=BUCKET, Key=files_key, Body="".join(json.dumps(entry) + "\n" for entry in entries).encode())

    state, tasks = run(dagbag, logical_date)
    assert state == "failed"
    assert tasks["publish_snapshot"] == "upstream_failed"
    assert published(aws, logical_date.date().isoformat()) == before, "the complete snapshot must stay as it was"

