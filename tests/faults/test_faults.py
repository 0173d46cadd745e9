"""Issue 6's fault table, rows 1, 2, 4, 6, 7 and 8: each injects its fault for real and shows that
nothing is lost or duplicated (row 3 is tests/live/test_faults_live.py, row 5 test_fault_data_files.py).

Faults come from the emulator (docs/faults.md): AWS-shaped errors, requests held so that a worker
process can be SIGKILLed mid-operation, FAILED exports; an outage is a loopback port where nothing
listens. Every test then counts what matters: ExportTableToPointInTime calls and exports (request
log, ListExports), published lines against the table's items, and the SHA-256 of published objects.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest
from faultlib import (
    BUCKET,
    PREFIX,
    TABLE,
    VARIABLES,
    WEBHOOK_CONN,
    OutageProxy,
    Worker,
    clear_faults,
    dag_with_retries,
    day,
    export_arns,
    export_operator,
    inject,
    items_in_table,
    keys,
    lines_published,
    objects,
    plan_for,
    published_prefix,
    recorded_error,
    requests,
    run_dag,
    settle,
    sha256s,
    task_state_history,
    until_held,
    verified,
    wait_for_export,
    webhook_server,
)

from jit_audit_dev.seed import ensure_bucket, seed

pytestmark = pytest.mark.e2e
DAG_ID = "jit_audit_export"


@pytest.fixture()
def seeded(aws, monkeypatch) -> int:
    """The seeded table (3 data files at the emulator's 150 items each) and the bucket; returns the items."""
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    # Written (at their event times) before every date the rows export (OUTAGE_DAY is the oldest).
    seed(aws.resource("dynamodb"), TABLE, requests=120, end=OUTAGE_DAY)
    ensure_bucket(aws.client("s3"), BUCKET, prefix=PREFIX, retention_days=400)
    items = items_in_table(aws)
    assert items > 300, "fewer than three data files: mid-operation kills need several"
    return items


@pytest.fixture()
def webhook(monkeypatch):
    server = webhook_server()
    monkeypatch.setenv(WEBHOOK_CONN, server.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def retrying_dag(dagbag):
    """jit_audit_export with 2 task retries, 1 s apart (then 2 s): production has 3, minutes apart."""
    from airflow.dag_processing.dagbag import DagBag

    with dag_with_retries(DagBag, retries=2, delay_seconds=1) as dag:
        yield dag


def export_calls(aws) -> list[dict[str, Any]]:
    return requests(aws, "dynamodb", "ExportTableToPointInTime")


def check_published(aws, date: datetime, items: int) -> tuple[dict[str, bytes], int]:
    """The published snapshot of ``date`` is complete and reconciled with the table; returns it and its lines."""
    found = objects(aws, published_prefix(date.date().isoformat()))
    assert "_SUCCESS" in found, sorted(found)
    manifest = json.loads(found["_manifest.json"])
    lines = lines_published(found)
    assert lines == items == manifest["counts"]["lines_written"] == manifest["counts"]["describe_export_item_count"]
    return found, lines


def success_is_last(aws, prefix: str, since_seq: int) -> None:
    """Among every write to ``prefix`` after ``since_seq``, the PUT of ``_SUCCESS`` comes last."""
    writes = []
    for entry in requests(aws, "s3"):
        if entry["seq"] <= since_seq or entry["operation"] not in ("PutObject", "CopyObject", "DeleteObject",
                                                                     "DeleteObjects", "CompleteMultipartUpload"):
            continue
        touched = entry.get("keys") or [entry.get("key") or ""]
        if any(key.startswith(prefix) for key in touched):
            writes.append((entry["seq"], entry["operation"], touched))
    assert writes and writes[-1][1] == "PutObject" and writes[-1][2] == [prefix + "_SUCCESS"], writes[-4:]
    assert sum(1 for write in writes if write[2] == [prefix + "_SUCCESS"] and write[1] == "PutObject") == 1


# --------------------------------------------------------------------------- row 1


@pytest.mark.parametrize("code", ["LimitExceededException", "ThrottlingException"])
def test_row1_a_refused_start_is_retried_and_starts_one_export(aws, dagbag, seeded, fault_row, code):
    row = fault_row("1a" if code == "LimitExceededException" else "1b")
    message = "Too many concurrent table exports" if code == "LimitExceededException" else "Rate exceeded"
    inject(aws, service="dynamodb", operation="ExportTableToPointInTime", error=code, message=message, count=2)
    row.record(injected=f"emulator fault: the next 2 ExportTableToPointInTime calls answer HTTP 400 {code} "
                        "(AWS's JSON error shape)")

    dag_run, tis = run_dag(dagbag.dags[DAG_ID], day(1), comms=False)
    assert dag_run.state == "success", {key: ti.state for key, ti in tis.items()}
    assert tis[("start_export", -1)].try_number == 1  # absorbed inside the task, not by an Airflow retry
    calls = export_calls(aws)
    assert [(call["status"], call.get("error")) for call in calls] == [(400, code), (400, code), (200, None)]
    gaps = [datetime.fromisoformat(later["time"]) - datetime.fromisoformat(earlier["time"])
            for earlier, later in zip(calls, calls[1:], strict=False)]
    if code == "LimitExceededException":
        # Our backoff (1 s, then 2 s ceilings, jittered into their upper half): botocore does not retry it.
        assert gaps[0].total_seconds() >= 0.5 and gaps[1].total_seconds() >= 1.0, gaps
        who = ("retried by start_export itself (botocore never retries LimitExceededException): capped "
               "exponential backoff with jitter, same ClientToken")
    else:
        # botocore's legacy retry handler for DynamoDB: 50 ms, then 100 ms.
        assert all(gap.total_seconds() < 0.5 for gap in gaps), gaps
        who = "retried by botocore's retry handler (legacy mode, DynamoDB: 10 attempts from 50 ms, doubling)"
    (arn,) = export_arns(aws)
    found, lines = check_published(aws, day(1), seeded)
    assert json.loads(found["_manifest.json"])["export_arn"] == arn
    row.record(outcome=verified(aws) + "; " + f"{who}; 3 calls ({gaps[0].total_seconds():.2f} s, {gaps[1].total_seconds():.2f} s apart), "
                       "1 export, start_export try 1, run success",
               exported=f"{lines} published / {seeded} in table")


# --------------------------------------------------------------------------- row 2


def test_row2_worker_killed_right_after_starting_the_export_reuses_it(aws, seeded, fault_row):
    row = fault_row("2")
    plan = plan_for(day(1))
    inject(aws, service="dynamodb", operation="ExportTableToPointInTime", hold_seconds=120, hold="response")
    worker = Worker("start_export", plan=plan)
    held = until_held(aws, worker, "ExportTableToPointInTime")
    assert len(export_arns(aws)) == 1  # DynamoDB started it; the worker has not heard back
    output, _ = worker.kill()
    assert output == [], "the worker must die before it learns the export ARN"
    clear_faults(aws)
    settle(aws, held)
    row.record(injected="emulator holds the ExportTableToPointInTime response after starting the export; "
                        "the start_export worker process is SIGKILLed while it waits")

    arn = export_operator(plan).execute({})  # the task's retry
    assert export_arns(aws) == [arn]
    assert len(export_calls(aws)) == 1, "the retry must find the export (ListExports), not start one"
    wait_for_export(plan, arn)
    from jit_audit_airflow.export_tasks import flatten_data_files, list_data_files, publish_snapshot

    parts = [part for group in list_data_files(plan, arn) for part in flatten_data_files(plan, group)]
    publish_snapshot(plan, arn, parts, run_id="manual__fault-row-2")
    _, lines = check_published(aws, day(1), seeded)
    row.record(outcome=verified(aws) + "; " + "the retry found the running export through ListExports and reused it: "
                       "1 ExportTableToPointInTime call, 1 export, snapshot published",
               exported=f"{lines} published / {seeded} in table")


# --------------------------------------------------------------------------- row 4


def test_row4_a_failed_export_fails_with_its_reason_alerts_once_and_publishes_nothing(aws, dagbag, seeded, webhook,
                                                                                      fault_row):
    row = fault_row("4")
    reason = "Access Denied for bucket: jit-audit-exports. Please check the bucket policy"
    inject(aws, service="dynamodb", operation="ExportTableToPointInTime",
           export_failure={"code": "S3AccessDenied", "message": reason})
    row.record(injected="emulator fault: the export is accepted, then ends FAILED with FailureCode "
                        "S3AccessDenied and a FailureMessage")

    dag_run, tis = run_dag(dagbag.dags[DAG_ID], day(1))
    assert dag_run.state == "failed"
    assert tis[("wait_for_export", -1)].state == "failed"
    assert tis[("publish_snapshot", -1)].state == "upstream_failed"
    error = recorded_error(dag_run, "wait_for_export")
    assert error and f"FAILED: S3AccessDenied: {reason}" in error, error
    (text,) = webhook.texts  # one alert for the run
    assert "- **DynamoDB FailureCode:** `S3AccessDenied`" in text and reason in text, text
    assert keys(aws, f"{PREFIX}/jsonl/") == []
    (arn,) = export_arns(aws)
    assert [key.rsplit("/", 1)[-1] for key in keys(aws, f"{PREFIX}/raw/")] == ["_started"]
    row.record(outcome="wait_for_export failed with FailureCode and FailureMessage; exactly 1 alert naming them; "
                       "nothing under jsonl/ (no part, manifest or _SUCCESS)",
               exported=f"0 published / {seeded} in table")


# --------------------------------------------------------------------------- row 6


def prepared(aws) -> tuple[dict[str, Any], str, list[dict[str, Any]], dict[str, str], str]:
    """A completed export, and the SHA-256 of every object an undisturbed run publishes (then removed)."""
    from jit_audit_airflow.export_tasks import flatten_data_files, list_data_files, publish_snapshot

    plan = plan_for(day(1))
    arn = export_operator(plan).execute({})
    wait_for_export(plan, arn)
    groups = list_data_files(plan, arn)  # with the default settings, one group of every data file
    assert sum(len(group["files"]) for group in groups) >= 3
    run_id = "scheduled__fault-row-6"
    publish_snapshot(plan, arn, [part for group in groups for part in flatten_data_files(plan, group)],
                     run_id=run_id)
    reference = sha256s(objects(aws, plan["published_prefix"]))
    aws.client("s3").delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": plan["published_prefix"] + name} for name in reference]})
    return plan, arn, groups, reference, run_id


def test_row6a_worker_killed_mid_flatten_then_the_retry_publishes_the_same_bytes(aws, seeded, fault_row):
    from jit_audit_airflow.export_tasks import flatten_data_files, publish_snapshot

    row = fault_row("6a")
    plan, arn, groups, reference, run_id = prepared(aws)
    assert len(groups) == 1, "one flatten task (the default settings) takes parts 0, 1 and 2"
    # Hold the third staged part's upload: parts 0 and 1 are staged, the worker is mid-flatten.
    staging = f"{PREFIX}/jsonl/_staging/table=jit_audit/snapshot_date={day(1).date().isoformat()}/"
    inject(aws, service="s3", operation="PutObject", key_contains="_staging/table=jit_audit/snapshot_date="
           f"{day(1).date().isoformat()}/part-00002", hold_seconds=120)
    worker = Worker("flatten", plan=plan, groups=groups)
    held = until_held(aws, worker, "PutObject", "part-00002")
    done, _ = worker.kill()
    assert done == [], "the worker dies mid-group: its flatten task returned nothing"
    assert keys(aws, staging) == [staging + "part-00000.jsonl.gz", staging + "part-00001.jsonl.gz"]
    assert keys(aws, plan["published_prefix"]) == []  # nothing published, so nothing readers could take
    clear_faults(aws)
    settle(aws, held)
    row.record(injected="the flatten worker process is SIGKILLed while the emulator holds its upload of the "
                        "third staged part (two parts staged)")

    since = requests(aws)[-1]["seq"]
    # The retried mapped task flattens its whole group again, over the parts it had staged.
    retried = [part for group in groups for part in flatten_data_files(plan, group)]
    publish_snapshot(plan, arn, retried, run_id=run_id)
    found, lines = check_published(aws, day(1), seeded)
    assert sha256s(found) == reference, "the retry must publish exactly what an undisturbed run publishes"
    assert keys(aws, f"{PREFIX}/jsonl/_staging/") == []
    success_is_last(aws, plan["published_prefix"], since)
    row.record(outcome=verified(aws) + "; " + f"the retried flatten task restaged its whole group over the two staged parts, published {len(found)} objects with SHA-256 identical to "
                       "an undisturbed run; no stale or duplicate part; staging emptied; _SUCCESS written last",
               exported=f"{lines} published / {seeded} in table")


def test_row6b_worker_killed_mid_publish_then_the_retry_publishes_the_same_bytes(aws, seeded, fault_row):
    from jit_audit_airflow.export_tasks import flatten_data_files, publish_snapshot

    row = fault_row("6b")
    plan, arn, groups, reference, run_id = prepared(aws)
    prefix = plan["published_prefix"]
    parts = [part for group in groups for part in flatten_data_files(plan, group)]
    publish_snapshot(plan, arn, parts, run_id=run_id)  # a complete snapshot of this date...
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=prefix + "part-00099.jsonl.gz", Body=b"left by an earlier publication")
    parts = [part for group in groups for part in flatten_data_files(plan, group)]  # ...being re-published

    inject(aws, service="s3", operation="CopyObject", key_contains=prefix + "part-00001", hold_seconds=120)
    worker = Worker("publish", plan=plan, export_arn=arn, parts=parts, run_id=run_id)
    held = until_held(aws, worker, "CopyObject", "part-00001")
    worker.kill()
    midway = keys(aws, prefix)
    assert prefix + "_SUCCESS" not in midway and prefix + "_manifest.json" not in midway, midway
    assert prefix + "part-00000.jsonl.gz" in midway
    clear_faults(aws)
    settle(aws, held)
    row.record(injected="the publish worker process is SIGKILLed while the emulator holds its copy of the second "
                        "part (_SUCCESS already withdrawn, part 0 copied; a stale part-00099 from an earlier "
                        "publication present)")

    since = requests(aws)[-1]["seq"]
    publish_snapshot(plan, arn, parts, run_id=run_id)  # the task's retry
    found, lines = check_published(aws, day(1), seeded)
    assert sha256s(found) == reference, "the retry must publish exactly what an undisturbed run publishes"
    assert "part-00099.jsonl.gz" not in found
    success_is_last(aws, prefix, since)
    row.record(outcome=verified(aws) + "; " + "while killed: no _SUCCESS (readers see an incomplete date); the retry published objects "
                       "SHA-256-identical to an undisturbed run, deleted the stale part, wrote _SUCCESS last",
               exported=f"{lines} published / {seeded} in table")


# --------------------------------------------------------------------------- row 7


# Dates no other test runs: dag.test() reuses the run of a logical date, and with it its try history.
OUTAGE_DAY, LASTING_OUTAGE_DAY, TOO_OLD_DAY = day(21), day(22), day(43)


def tries_waiting_for_retry() -> int:
    """Task instances of wait_for_restorable_time now up_for_retry (read from the metadata DB)."""
    import os
    import sqlite3

    database = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        (count,) = connection.execute(
            "SELECT COUNT(*) FROM task_instance WHERE dag_id=? AND task_id='wait_for_restorable_time' "
            "AND state='up_for_retry'", (DAG_ID,)).fetchone()
    return int(count)


def outage_connection(monkeypatch, proxy: OutageProxy) -> None:
    """jit_audit_aws_conn_id -> a connection to the proxy. botocore's own retries are cut to 2 tries so
    the test is quick (by default a refused DynamoDB call takes 10 tries, about 25 s, per task try)."""
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_AWS_CONN_ID", "aws_outage")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_OUTAGE", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": proxy.endpoint_url, "region_name": "us-east-1",
                  "config_kwargs": {"retries": {"mode": "legacy", "total_max_attempts": 2}}},
    }))


def test_row7a_an_outage_shorter_than_the_retries_ends_in_one_clean_snapshot(aws, retrying_dag, seeded, webhook,
                                                                            monkeypatch, fault_row):
    row = fault_row("7a")
    proxy = OutageProxy(int(aws.endpoint_url.rsplit(":", 1)[1]))
    outage_connection(monkeypatch, proxy)
    stop = threading.Event()
    assert tries_waiting_for_retry() == 0

    def restore_after_the_first_failed_try() -> None:
        while not stop.is_set():
            if tries_waiting_for_retry():
                proxy.restore()
                return
            time.sleep(0.1)

    row.record(injected="the connection's endpoint is a loopback port where nothing listens (connection refused); "
                        "it starts forwarding to AWS once the first task try has failed")
    watcher = threading.Thread(target=restore_after_the_first_failed_try, daemon=True)
    watcher.start()
    try:
        dag_run, tis = run_dag(retrying_dag, OUTAGE_DAY)
    finally:
        stop.set()
        proxy.stop()
    assert dag_run.state == "success", {key: ti.state for key, ti in tis.items()}
    history = task_state_history(DAG_ID, dag_run.run_id, "wait_for_restorable_time")
    assert len(history) == 2 and history[0] in ("failed", "up_for_retry") and history[1] == "success", history
    assert len(export_arns(aws)) == 1 and len(export_calls(aws)) == 1
    _, lines = check_published(aws, OUTAGE_DAY, seeded)
    assert webhook.requests == []
    row.record(outcome=verified(aws) + "; " + "wait_for_restorable_time: try 1 failed (connection refused), try 2 succeeded after the "
                       "retry delay; 1 export, snapshot published, no alert",
               exported=f"{lines} published / {seeded} in table")


def test_row7b_a_lasting_outage_fails_clearly_after_the_retries_with_one_alert(aws, retrying_dag, seeded, webhook,
                                                                             monkeypatch, fault_row):
    row = fault_row("7b")
    proxy = OutageProxy(int(aws.endpoint_url.rsplit(":", 1)[1]))  # never restored
    outage_connection(monkeypatch, proxy)
    row.record(injected="the connection's endpoint is a loopback port where nothing listens, for the whole run")

    dag_run, tis = run_dag(retrying_dag, LASTING_OUTAGE_DAY)
    assert dag_run.state == "failed"
    ti = tis[("wait_for_restorable_time", -1)]
    assert (ti.state, ti.try_number) == ("failed", 3)
    history = task_state_history(DAG_ID, dag_run.run_id, "wait_for_restorable_time")
    assert len(history) == 3 and history[-1] == "failed", history  # one state per try
    error = recorded_error(dag_run, "wait_for_restorable_time")
    assert error and f'Could not connect to the endpoint URL: "{proxy.endpoint_url}/"' in error, error
    (text,) = webhook.texts
    assert "failed in `wait_for_restorable_time`" in text and "Could not connect to the endpoint URL" in text, text
    assert "try 3" in text, text
    assert export_calls(aws) == [] and export_arns(aws) == []
    assert keys(aws, f"{PREFIX}/jsonl/") == []
    row.record(outcome="3 tries (2 Airflow retries, exponential delay), then failed with botocore's "
                       f"'{error[error.index('Could not connect'):]}'; exactly 1 alert naming it and the try; nothing started",
               exported=f"0 published / {seeded} in table")


# --------------------------------------------------------------------------- row 8


def test_row8_a_date_older_than_the_window_fails_at_once_without_retries(aws, retrying_dag, seeded, webhook,
                                                                        fault_row):
    row = fault_row("8")
    row.record(injected="a run for 43 days ago (the emulator's point-in-time recovery window: 35 days), "
                        "with 2 task retries configured")
    dag_run, tis = run_dag(retrying_dag, TOO_OLD_DAY)
    assert dag_run.state == "failed"
    ti = tis[("wait_for_restorable_time", -1)]
    assert (ti.state, ti.try_number) == ("failed", 1), "no retry can bring a date back into the window"
    assert task_state_history(DAG_ID, dag_run.run_id, "wait_for_restorable_time") == ["failed"]
    error = recorded_error(dag_run, "wait_for_restorable_time")
    assert error and "older than the point-in-time recovery window" in error
    assert "the earliest restorable time is" in error, error
    (text,) = webhook.texts
    assert "This date can no longer be exported" in text
    assert export_calls(aws) == [] and keys(aws, f"{PREFIX}/jsonl/") == []
    row.record(outcome="wait_for_restorable_time failed on try 1 of 3 (AirflowFailException: no retries), naming "
                       "the earliest restorable time; 1 alert; no export started",
               exported=f"0 published / {seeded} in table")
