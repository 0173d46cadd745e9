"""Issue 6's fault table, row 3: the triggerer restarts while ``wait_for_export`` is deferred.

On the session's live stack (tests/live/conftest.py): the emulator keeps one export IN_PROGRESS
(an injected export duration), a run of ``jit_audit_export`` defers its export wait to the
triggerer, the triggerer process group is SIGKILLed (no clean shutdown: its job stays "running"
with a stale heartbeat) and a new triggerer is started. The new one adopts the orphaned trigger
once the old one's heartbeat is older than ``[triggerer] triggerer_health_check_threshold`` (30 s
by default; 10 s for the new process here, to keep the test short), the export is let finish, and
the run must succeed with the sensor's first try, one export and every item published.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from livelib import (
    BUCKET,
    PREFIX,
    TABLE,
    api_path,
    in_snapshot,
    s3_json,
    s3_keys,
    task_states,
    wait_for,
    wait_for_run,
)

pytestmark = pytest.mark.live

EXPORT_DAG = "jit_audit_export"
FAULTS = "/jit-audit-emulator/faults"


def _emulator(stack: Any, method: str, path: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(stack.endpoint_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _sensor(stack: Any, run_id: str) -> dict[str, Any]:
    return stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", run_id, "taskInstances", "wait_for_export"),
                     allow=(404,)) or {}


def _deferred_on(stack: Any, run_id: str) -> Any:
    ti = _sensor(stack, run_id)
    if ti.get("state") == "deferred" and (ti.get("triggerer_job") or {}).get("id") is not None:
        return ti["triggerer_job"]["id"]
    return None


def _restart_triggerer(stack: Any) -> subprocess.Popen:
    """SIGKILL the triggerer's process group, then start a new triggerer the way the stack does."""
    old = stack.processes["triggerer"]
    os.killpg(old.pid, signal.SIGKILL)
    old.wait(timeout=30)
    env = {**stack.env, "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10"}
    with open(stack.logs / "triggerer.log", "ab") as log:
        new = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "triggerer", "--skip-serve-logs"],
                               cwd=stack.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    stack.processes["triggerer"] = new  # the stack stops it with the others
    return new


def test_row3_a_triggerer_restart_while_the_export_wait_is_deferred(live_stack, live_aws, seeded_items,
                                                                     record_property):
    row = {"row": "3", "fault": "Triggerer restarts while wait_for_export is deferred", "injected": "",
           "outcome": "", "exported": ""}
    record_property("fault_row", row)  # filled in below; reported with the test's outcome
    started = time.monotonic()
    _emulator(live_stack, "POST", FAULTS, {"service": "dynamodb", "operation": "ExportTableToPointInTime",
                                           "export_seconds": 300})
    live_stack.api("PATCH", api_path("dags", EXPORT_DAG), {"is_paused": False})
    logical = datetime.now(UTC).date() - timedelta(days=6)  # a date no other live test runs
    run_id = live_stack.api("POST", api_path("dags", EXPORT_DAG, "dagRuns"),
                            {"logical_date": f"{logical}T00:00:00Z", "conf": {}})["dag_run_id"]
    try:
        old_job = wait_for("wait_for_export deferred on the triggerer", lambda: _deferred_on(live_stack, run_id), 90,
                           interval=0.5)
        _restart_triggerer(live_stack)
        row["injected"] = ("emulator keeps the export IN_PROGRESS; while wait_for_export is deferred, the triggerer's "
                           "process group is SIGKILLed and a new triggerer started")
        new_job = wait_for("the new triggerer to adopt the trigger",
                           lambda: (job := _deferred_on(live_stack, run_id)) not in (None, old_job) and job, 90,
                           interval=0.5)
    finally:
        _emulator(live_stack, "DELETE", FAULTS)  # the export may finish now
    assert wait_for_run(live_stack, EXPORT_DAG, run_id, timeout=120) == "success", task_states(
        live_stack, EXPORT_DAG, run_id)

    ti = _sensor(live_stack, run_id)
    assert ti["state"] == "success" and ti["try_number"] == 1, ti  # resumed, not retried
    published = f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={logical}/"
    keys = s3_keys(live_aws, published)
    assert published + "_SUCCESS" in keys, keys
    manifest = s3_json(live_aws, published + "_manifest.json")
    counts = manifest["counts"]
    assert counts["lines_written"] == counts["describe_export_item_count"] == in_snapshot(seeded_items, logical), counts
    dynamodb = live_aws("dynamodb")
    table_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["TableArn"]
    same_time = [
        summary["ExportArn"] for summary in dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]
        if dynamodb.describe_export(ExportArn=summary["ExportArn"])["ExportDescription"]
        .get("ExportTime", datetime.min.replace(tzinfo=UTC)).date() == logical
    ]
    assert same_time == [manifest["export_arn"]], same_time
    verified = subprocess.run(
        [sys.executable, "-m", "jit_audit.cli", "verify", f"s3://{BUCKET}/{published}",
         "--endpoint-url", live_stack.endpoint_url, "--region", "us-east-1"], capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    row["outcome"] = ("jit-audit verify of the snapshot OK (against the ledger); "
                      f"the trigger moved from triggerer job {old_job} to {new_job}; the wait resumed and "
                      "completed (sensor try 1), 1 export, run success "
                      f"in {time.monotonic() - started:.0f} s")
    row["exported"] = (f"{counts['lines_written']} published / {in_snapshot(seeded_items, logical)} in the table "
                       f"at {logical} 00:00 UTC")
