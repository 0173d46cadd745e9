"""Issue 10: the publication ledger under what operators do, on the real stack (tests/live).

Through the REST API, as the UI does it: a backfill of 10 dates with ``max_active_runs`` 4 and a
manual run alongside; one date cleared and re-run while later dates are still running; two more
cleared and re-run together, in reverse date order; then a date the backfill had left out, older
than all the others, backfilled last. After every phase, once no run of either DAG is active,
``jit-audit verify s3://<bucket>/<prefix>/`` must exit 0: the whole prefix, every snapshot of the
session (the other live modules' too), every ad-hoc result and the ledger.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from livelib import (
    BUCKET,
    PREFIX,
    TABLE,
    api_path,
    in_snapshot,
    post,
    s3_json,
    task_states,
    wait_for,
    wait_for_run,
)

pytestmark = pytest.mark.live

EXPORT_DAG = "jit_audit_export"
ROOT = f"s3://{BUCKET}/{PREFIX}/"
LEDGER = f"{PREFIX}/jsonl/table={TABLE}/_ledger/"
# Dates no other live module runs (they use 2, 3, 4, 6 and 40 days ago), with a day to spare on
# each side: a session that crosses midnight UTC shifts the other modules' dates by one.
BACKFILLED = list(range(19, 9, -1))  # 19..10 days ago: 10 dates
MANUAL = 8
LEFT_OUT = 20
#: "Today" once for the whole test, so that crossing midnight mid-test changes no date.
TODAY = datetime.now(UTC).date()


def _day(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


def _runs(stack: Any, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{name}={value}" for name, value in {"limit": "100", **filters}.items())
    return stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns") + f"?{query}")["dag_runs"]


def _quiet(stack: Any) -> bool:
    """No run of either DAG queued or running (the scheduled run of the unpaused DAG included)."""
    for dag_id in (EXPORT_DAG, "jit_audit_adhoc"):
        body = stack.api("GET", api_path("dags", dag_id, "dagRuns") + "?state=queued&state=running&limit=100")
        if body["dag_runs"]:
            return False
    return True


def _verify(stack: Any, phase: str) -> str:
    wait_for(f"every run to finish before verifying ({phase})", lambda: _quiet(stack), 300, interval=2)
    result = subprocess.run(
        [sys.executable, "-m", "jit_audit.cli", "verify", ROOT, "--endpoint-url", stack.endpoint_url,
         "--region", "us-east-1"], capture_output=True, text=True, timeout=300)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    print(f"[ledger] after {phase}: verify exit {result.returncode}: {summary}", flush=True)
    assert result.returncode == 0, f"{phase}:\n{result.stdout}\n{result.stderr}"
    return summary


def _entries(live_aws: Any) -> list[dict[str, Any]]:
    pages = live_aws("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=LEDGER)
    keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
    return [s3_json(live_aws, key) for key in keys]


def _backfill(stack: Any, first: date, last: date, max_active_runs: int) -> dict[str, Any]:
    created = post(stack, "/api/v2/backfills", {
        "dag_id": EXPORT_DAG, "from_date": f"{first}T00:00:00Z", "to_date": f"{last}T00:00:00Z",
        "run_backwards": False, "dag_run_conf": {}, "reprocess_behavior": "none",
        "max_active_runs": max_active_runs,
    })
    assert created["max_active_runs"] == max_active_runs, created
    return created


def _clear(stack: Any, run_id: str) -> None:
    """Clear a whole run, as the UI's Clear button does: every task runs again."""
    post(stack, api_path("dags", EXPORT_DAG, "dagRuns", run_id, "clear"), {"dry_run": False})


def _run_for(runs: list[dict[str, Any]], day: date) -> dict[str, Any]:
    (run,) = [run for run in runs if run["logical_date"][:10] == str(day)]
    return run


def _counts(live_aws: Any, day: date) -> dict[str, int]:
    return s3_json(live_aws, f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={day}/_manifest.json")["counts"]


def test_backfills_reruns_and_a_late_date_keep_verify_clean(live_stack, live_aws, seeded_items):
    stack = live_stack
    stack.api("PATCH", api_path("dags", EXPORT_DAG), {"is_paused": False})
    before = len(_entries(live_aws))
    dates = [_day(days) for days in BACKFILLED]

    # Phase 1: the 10-date backfill, and a manual run alongside it.
    started = time.monotonic()
    backfill = _backfill(stack, dates[0], dates[-1], 4)
    manual = post(stack, api_path("dags", EXPORT_DAG, "dagRuns"),
                   {"logical_date": f"{_day(MANUAL)}T00:00:00Z", "conf": {}})["dag_run_id"]
    backfill_runs = wait_for("the backfill's 10 runs", lambda: len(runs := _runs(stack, run_type="backfill")) >= 10
                             and runs, 60)
    ours = {run["dag_run_id"]: run for run in backfill_runs if run["logical_date"][:10] in {str(d) for d in dates}}
    assert len(ours) == 10, sorted(run["logical_date"] for run in backfill_runs)

    # Phase 2: as soon as the first date succeeds, clear it while later dates still run.
    first_run = _run_for(list(ours.values()), dates[0])["dag_run_id"]
    assert wait_for_run(stack, EXPORT_DAG, first_run, timeout=300) == "success", task_states(stack, EXPORT_DAG,
                                                                                            first_run)
    still_running = [run["logical_date"][:10] for run in _runs(stack, run_type="backfill", state="running")
                     if run["logical_date"][:10] in {str(d) for d in dates}]
    assert still_running, "the first date finished after every later one: nothing ran alongside the re-run"
    _clear(stack, first_run)
    print(f"[ledger] cleared {dates[0]} while {len(still_running)} later date(s) ran: {still_running}", flush=True)

    for run_id in [*ours, manual]:
        assert wait_for_run(stack, EXPORT_DAG, run_id, timeout=600) == "success", (run_id, task_states(
            stack, EXPORT_DAG, run_id))
    print(f"[ledger] backfill of 10 dates, a manual run and one re-run done in {time.monotonic() - started:.0f} s",
          flush=True)
    wait_for("the backfill to be marked completed",
             lambda: stack.api("GET", f"/api/v2/backfills/{backfill['id']}")["completed_at"], 120)
    _verify(stack, "the backfill, the manual run and the re-run of the first date")

    # Phase 3: clear two more dates together, the later one first.
    reruns = [_run_for(list(ours.values()), dates[7])["dag_run_id"], _run_for(list(ours.values()), dates[3])["dag_run_id"]]
    for run_id in reruns:
        _clear(stack, run_id)
    for run_id in reruns:
        assert wait_for_run(stack, EXPORT_DAG, run_id, timeout=300) == "success", task_states(stack, EXPORT_DAG, run_id)
    _verify(stack, "two more re-runs, out of date order")

    # Phase 4: the date the backfill left out, older than every other, published last.
    late = _backfill(stack, _day(LEFT_OUT), _day(LEFT_OUT), 1)
    late_run = wait_for("the late date's run", lambda: [run for run in _runs(stack, run_type="backfill")
                                                         if run["logical_date"][:10] == str(_day(LEFT_OUT))], 60)[0]
    assert wait_for_run(stack, EXPORT_DAG, late_run["dag_run_id"], timeout=300) == "success"
    wait_for("the late backfill to be marked completed",
             lambda: stack.api("GET", f"/api/v2/backfills/{late['id']}")["completed_at"], 120)
    summary = _verify(stack, "the left-out date")
    assert re.match(r"OK: \d+ ledger entries, \d+ publication\(s\)", summary), summary

    # What the ledger recorded: every publication once per run (a re-run appends, nothing rewritten),
    # in the order they happened, not in date order; the re-runs recorded the same manifest bytes.
    entries = _entries(live_aws)[before:]
    ours_uris = {f"s3://{BUCKET}/{PREFIX}/jsonl/table={TABLE}/snapshot_date={day}/"
                 for day in [*dates, _day(MANUAL), _day(LEFT_OUT)]}
    mine = [entry for entry in entries if entry["uri"] in ours_uris]
    assert len(mine) == 10 + 1 + 3 + 1, [(entry["sequence"], entry["label"]) for entry in mine]
    assert mine[-1]["label"] == str(_day(LEFT_OUT))
    assert [entry["label"] for entry in mine] != sorted(entry["label"] for entry in mine), "published in date order?"
    by_uri: dict[str, set[str]] = {}
    for entry in mine:
        by_uri.setdefault(entry["uri"], set()).add(entry["manifest_sha256"])
    assert all(len(shas) == 1 for shas in by_uri.values()), "a re-run of a date must publish the same manifest"
    for day in [*dates, _day(MANUAL), _day(LEFT_OUT)]:
        counts = _counts(live_aws, day)
        assert counts["describe_export_item_count"] == counts["manifest_item_count"] == counts["lines_written"] \
            == in_snapshot(seeded_items, day), (day, counts)
