"""The distributed deployment, as platform teams run it: CeleryExecutor with PostgreSQL and Redis.

docker-compose.yaml's topology as plain processes on loopback (jit_audit_dev.stack, executor
``celery``, the same stack ``make up EXECUTOR=celery`` starts): PostgreSQL 15 and Redis from Debian's
packages, the API server, scheduler, DAG processor, triggerer and two Celery workers (``worker-1``,
``worker-2``), next to the emulator. Here:

- a backfill of three dates publishes three reconciled snapshots; the mapped flatten tasks ran on
  both workers; ``wait_for_export`` waited deferred on the triggerer;
- an ad-hoc run with form values publishes exactly the matching events on a worker;
- a worker is SIGKILLed (its whole process group: a host lost) while its flatten tasks read their
  data files; the run recovers on the other worker (the scheduler fails the lost tasks after the
  heartbeat timeout, they are retried) and publishes byte-identical parts with every item exactly
  once; the recovery time is printed;
- ``jit-audit verify`` over every published date exits 0.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from livelib import (
    ARTIFACTS,
    BUCKET,
    PREFIX,
    TABLE,
    Stack,
    adhoc_results,
    api_path,
    aws_clients,
    busiest_account,
    expected_account_events,
    iso_millis,
    keep_logs,
    s3_json,
    s3_keys,
    table_items,
    task_states,
    wait_for,
    wait_for_run,
)

# Under `make test` (pytest-xdist) this module is one work unit (tests/conftest.py), beside the SQLite
# stack's modules.
pytestmark = pytest.mark.live

EXPORT_DAG = "jit_audit_export"
ADHOC_DAG = "jit_audit_adhoc"
FLATTEN_TASK = "flatten_data_files"
EXPORT_TRIGGER = "jit_audit_airflow.triggers.dynamodb.DynamoDBExportTrigger"
WORKERS = ("worker-1", "worker-2")
HEARTBEAT_TIMEOUT = 20  # seconds: the stack's [scheduler] task_instance_heartbeat_timeout
FAULTS = "/jit-audit-emulator/faults"


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="jit-audit-celery-"))
    stack = Stack(
        workdir,
        executor="celery",
        workers=len(WORKERS),
        worker_concurrency=2,
        export_seconds=20,  # wait_for_export defers even when a loaded worker starts it late
        pitr_lag_seconds=5,
        pitr_history_days=35,
        items_per_data_file=60,  # a dozen data files per export: enough mapped tasks for two workers
        seed_requests=200,
        extra_env={
            # A lost worker's tasks fail after the heartbeat timeout; one retry, soon, finishes them.
            "AIRFLOW__JIT_AUDIT__TASK_RETRIES": "2",
            "AIRFLOW__JIT_AUDIT__RETRY_DELAY_SECONDS": "2",
            # One data file per flatten task (each file counts 4 MiB): a dozen mapped tasks to share out.
            "AIRFLOW_VAR_JIT_AUDIT_FLATTEN_TARGET_MIB": "1",
        },
        say=lambda text: print(f"[celery stack] {text}", flush=True),
    )
    try:
        stack.start(timeout=300)
        yield stack
    finally:
        stack.stop()
        keep_logs(stack, ARTIFACTS / "live" / "celery-logs")
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def aws(celery_stack: Stack) -> Callable[[str], Any]:
    return aws_clients(celery_stack)


@pytest.fixture(scope="module")
def items(aws: Callable[[str], Any]) -> list[dict[str, Any]]:
    return table_items(aws)


def _tis(stack: Stack, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
    query = "?limit=500" + (f"&task_id={task_id}" if task_id else "")
    return stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", run_id, "taskInstances") + query)[
        "task_instances"]


def _export_runs(stack: Stack, dates: list[date]) -> dict[str, dict[str, Any]]:
    wanted = {str(day) for day in dates}
    body = stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns") + "?limit=100")
    return {run["dag_run_id"]: run for run in body["dag_runs"] if run["logical_date"][:10] in wanted}


@pytest.fixture(scope="module")
def backfill(celery_stack: Stack) -> dict[str, Any]:
    """Backfill 3, 2 and 1 days ago from the REST API (the UI's Backfill form), all three at once."""
    stack = celery_stack
    today = datetime.now(UTC).date()
    dates = [today - timedelta(days=days) for days in (3, 2, 1)]
    stack.api("PATCH", api_path("dags", EXPORT_DAG), {"is_paused": False})
    started = time.monotonic()
    stack.api("POST", "/api/v2/backfills", {
        "dag_id": EXPORT_DAG, "from_date": f"{dates[0]}T00:00:00Z", "to_date": f"{dates[-1]}T00:00:00Z",
        "run_backwards": False, "dag_run_conf": {}, "reprocess_behavior": "none", "max_active_runs": 3,
    })
    runs = wait_for("the backfill's three runs", lambda: len(r := _export_runs(stack, dates)) == 3 and r, 60)
    sensor_states: dict[str, set[str]] = {run_id: set() for run_id in runs}
    deadline = time.monotonic() + 300
    while not all(run["state"] in ("success", "failed") for run in runs.values()):
        if time.monotonic() > deadline:
            pytest.fail(f"backfill not done after 300 s: { {rid: run['state'] for rid, run in runs.items()} }")
        for run_id in runs:
            for ti in _tis(stack, run_id, "wait_for_export"):
                if ti["state"] == "deferred" and (ti.get("trigger") or {}).get("classpath") == EXPORT_TRIGGER:
                    sensor_states[run_id].add("deferred")
        time.sleep(0.5)
        runs = _export_runs(stack, dates)
    seconds = time.monotonic() - started
    print(f"[celery] backfill of {len(dates)} dates finished in {seconds:.0f} s", flush=True)
    return {"dates": dates, "runs": runs, "sensor_states": sensor_states, "seconds": seconds}


def _published(aws: Callable[[str], Any], day: date) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A date's published manifest and its parts' bytes (key -> gzip body)."""
    prefix = f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={day}/"
    keys = s3_keys(aws, prefix)
    assert prefix + "_SUCCESS" in keys, keys
    parts = {key: aws("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
             for key in keys if key.endswith(".jsonl.gz")}
    return s3_json(aws, prefix + "_manifest.json"), parts


def _events(parts: dict[str, bytes]) -> list[tuple[str, str]]:
    return [(record["request_id"], record["event_time_event_id"])
            for body in parts.values() for record in map(json.loads, gzip.decompress(body).splitlines())]


def _assert_reconciled(manifest: dict[str, Any], parts: dict[str, bytes]) -> None:
    counts = manifest["counts"]
    events = _events(parts)
    assert len(events) == len(set(events)), "an item appears twice"
    assert counts["describe_export_item_count"] == counts["manifest_item_count"] == counts["lines_written"] \
        == len(events) > 0, counts
    assert sorted(parts) == sorted(part["key"] for part in manifest["parts"])


def test_backfill_runs_on_both_workers_and_publishes_reconciled_snapshots(celery_stack, backfill, aws, record_property):
    hosts: set[str] = set()
    for run_id, run in backfill["runs"].items():
        assert run["state"] == "success", (run_id, task_states(celery_stack, EXPORT_DAG, run_id))
        flatten = _tis(celery_stack, run_id, FLATTEN_TASK)
        assert len(flatten) > 1, flatten
        hosts |= {ti["hostname"] for ti in flatten}
    for day in backfill["dates"]:
        _assert_reconciled(*_published(aws, day))
    # Every task instance records the worker that ran it: the mapped tasks were spread over both.
    assert hosts == set(WORKERS), hosts
    record_property("figure", f"Celery stack: backfill of {len(backfill['dates'])} dates in "
                              f"{backfill['seconds']:.0f} s on {len(WORKERS)} workers")


def test_wait_for_export_was_deferred_on_the_triggerer(celery_stack, backfill):
    for run_id, seen in backfill["sensor_states"].items():
        assert "deferred" in seen, run_id
        (ti,) = _tis(celery_stack, run_id, "wait_for_export")
        assert ti["state"] == "success" and ti["try_number"] == 1 and ti["trigger"] is None, ti


def test_adhoc_run_on_a_worker(celery_stack, aws, items):
    stack = celery_stack
    stack.api("PATCH", api_path("dags", ADHOC_DAG), {"is_paused": False})
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    account = busiest_account(items)
    start, end = iso_millis(now - timedelta(days=5)), iso_millis(now + timedelta(hours=1))
    expected = expected_account_events(items, account, start, end, [])
    assert len(expected) >= 3
    conf = {"query_by": "account", "request_id": None, "account_id": account, "channel_id": None,
            "event_types": [], "start": start, "end": end, "max_items": 1_000_000, "segments": 4,
            "page_size": None, "output_uri": None}
    run = stack.api("POST", api_path("dags", ADHOC_DAG, "dagRuns"),
                    {"logical_date": iso_millis(datetime.now(UTC)), "conf": conf})
    run_id = run["dag_run_id"]
    assert wait_for_run(stack, ADHOC_DAG, run_id, timeout=120) == "success", task_states(stack, ADHOC_DAG, run_id)
    manifest, found = adhoc_results(aws, run_id)
    assert found == expected and manifest["counts"]["items"] == len(expected)
    ti = stack.api("GET", api_path("dags", ADHOC_DAG, "dagRuns", run_id, "taskInstances", "run_query"))
    assert ti["hostname"] in WORKERS, ti


def _fault(stack: Stack, method: str, body: dict[str, Any] | None = None) -> None:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(stack.endpoint_url + FAULTS, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201, 204), response.status


def test_a_worker_killed_mid_flatten_loses_nothing(celery_stack, backfill, aws, record_property):
    """SIGKILL the worker running flatten tasks (with every process it started) while they read their
    data files; the run still publishes the same bytes, each item exactly once."""
    stack = celery_stack
    day = backfill["dates"][0]
    (run_id,) = [rid for rid, run in backfill["runs"].items() if run["logical_date"][:10] == str(day)]
    before_manifest, before_parts = _published(aws, day)

    # Every read of an export data file stalls (up to 10 min) until we release them.
    _fault(stack, "POST", {"service": "s3", "operation": "GetObject", "key_contains": "/data/",
                           "count": 10_000, "hold_seconds": 600})
    try:
        stack.api("POST", api_path("dags", EXPORT_DAG, "dagRuns", run_id, "clear"), {"dry_run": False})

        def running_flatten() -> list[dict[str, Any]]:
            return [ti for ti in _tis(stack, run_id, FLATTEN_TASK) if ti["state"] == "running" and ti["hostname"]]

        running = wait_for("flatten tasks running on a worker", running_flatten, 180, interval=0.5)
        victim = running[0]["hostname"]
        lost = {ti["map_index"] for ti in running_flatten() if ti["hostname"] == victim}
        assert lost
        stack.kill(victim)  # the worker's whole process tree, task processes included
        killed_at = time.monotonic()
        print(f"[celery] SIGKILLed {victim} while it ran {FLATTEN_TASK} {sorted(lost)}", flush=True)
    finally:
        _fault(stack, "DELETE")  # release every stalled read (the killed worker's are gone with it)

    assert wait_for_run(stack, EXPORT_DAG, run_id, timeout=240) == "success", task_states(stack, EXPORT_DAG, run_id)
    seconds = time.monotonic() - killed_at
    recovered = {ti["map_index"]: ti for ti in _tis(stack, run_id, FLATTEN_TASK) if ti["map_index"] in lost}
    record_property("figure", f"Celery stack: {victim} SIGKILLed while running {FLATTEN_TASK} {sorted(lost)}; "
                              f"run {run_id} succeeded {seconds:.0f} s after the kill (heartbeat timeout "
                              f"{HEARTBEAT_TIMEOUT} s, retry delay 2 s), parts byte-identical")
    survivor = ({*WORKERS} - {victim}).pop()
    assert set(recovered) == lost
    for ti in recovered.values():
        assert ti["state"] == "success" and ti["try_number"] >= 2 and ti["hostname"] == survivor, ti
    # Nothing staged is left behind (a lost task's process could otherwise upload after the publish).
    assert not s3_keys(aws, f"{PREFIX}/jsonl/_staging/"), "staging not empty after the publish"

    after_manifest, after_parts = _published(aws, day)
    _assert_reconciled(after_manifest, after_parts)
    assert after_parts == before_parts  # byte-identical parts
    assert after_manifest["counts"] == before_manifest["counts"]
    assert after_manifest["parts"] == before_manifest["parts"]


def test_verify_over_every_published_date(celery_stack, backfill):
    result = subprocess.run(
        [sys.executable, "-m", "jit_audit.cli", "verify", f"s3://{BUCKET}/{PREFIX}/",
         "--endpoint-url", celery_stack.endpoint_url, "--region", "us-east-1"],
        env={**celery_stack.env}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for day in backfill["dates"]:
        assert str(day) in result.stdout, result.stdout
