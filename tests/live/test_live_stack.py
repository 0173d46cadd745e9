"""Real Airflow on loopback, driven through its REST API (/api/v2, what the UI calls).

The session's live stack (tests/live/conftest.py) runs the API server, scheduler, triggerer and DAG
processor next to the emulator. Here: a backfill of three past dates publishes three reconciled
snapshots while ``wait_for_export`` waits deferred on the triggerer; ``jit_audit_adhoc`` runs with
form values; and a run that fails on purpose sends exactly one alert to our webhook.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from livelib import (
    BUCKET,
    PREFIX,
    TABLE,
    adhoc_prefix,
    adhoc_results,
    api_path,
    busiest_account,
    expected_account_events,
    in_snapshot,
    iso_millis,
    post,
    s3_json,
    s3_keys,
    task_states,
    wait_for,
    wait_for_run,
)

pytestmark = pytest.mark.live

EXPORT_DAG = "jit_audit_export"
ADHOC_DAG = "jit_audit_adhoc"
EXPORT_TRIGGER = "jit_audit_airflow.triggers.dynamodb.DynamoDBExportTrigger"
# Every field of jit_audit_adhoc's form, as the UI sends it (Params' defaults).
FORM_DEFAULTS: dict[str, Any] = {
    "query_by": "account", "request_id": None, "account_id": None, "channel_id": None, "event_types": [],
    "start": None, "end": None, "max_items": 1_000_000, "segments": 4, "page_size": None, "output_uri": None,
}


@dataclass
class Backfill:
    backfill: dict[str, Any]
    dates: list[date]
    runs: dict[str, dict[str, Any]]  # run id -> the DAG run, once finished
    # run id -> every (state, trigger classpath, triggerer job id) seen for wait_for_export while running
    sensor_states: dict[str, list[tuple[str | None, str | None, Any]]] = field(default_factory=dict)
    seconds: float = 0.0


@pytest.fixture(scope="module")
def backfill(live_stack) -> Backfill:
    """Unpause jit_audit_export and backfill 4, 3 and 2 days ago, as the UI's Backfill form does."""
    today = datetime.now(UTC).date()
    dates = [today - timedelta(days=days) for days in (4, 3, 2)]
    wanted = {str(day) for day in dates}
    live_stack.api("PATCH", api_path("dags", EXPORT_DAG), {"is_paused": False})
    started = time.monotonic()
    created = post(live_stack, "/api/v2/backfills", {
        "dag_id": EXPORT_DAG,
        "from_date": f"{dates[0]}T00:00:00Z",
        "to_date": f"{dates[-1]}T00:00:00Z",  # inclusive: one run per daily logical date in between
        "run_backwards": False,
        "dag_run_conf": {},
        "reprocess_behavior": "none",  # only dates without a run (all three here)
        "max_active_runs": 3,  # all three at once
    })
    assert created["reprocess_behavior"] == "none" and created["max_active_runs"] == 3, created

    def backfill_runs() -> dict[str, dict[str, Any]]:
        body = live_stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns") + "?run_type=backfill&limit=100")
        # Only this backfill's dates: other live modules backfill other dates on the same stack.
        return {run["dag_run_id"]: run for run in body["dag_runs"] if run["logical_date"][:10] in wanted}

    runs = wait_for("the backfill's three runs", lambda: len(backfill_runs()) == 3 and backfill_runs(), 60)
    assert sorted(run["logical_date"][:10] for run in runs.values()) == [str(day) for day in dates]

    # Poll the sensor's task instances while the runs go: `deferred`, with its trigger, must show up.
    sensor_states: dict[str, list] = defaultdict(list)
    deadline = time.monotonic() + 240
    while True:
        tis = live_stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", "~", "taskInstances")
                             + "?task_id=wait_for_export&limit=100")["task_instances"]
        for ti in tis:
            if ti["dag_run_id"] in runs:
                trigger = ti.get("trigger") or {}
                triggerer = ti.get("triggerer_job") or {}
                sensor_states[ti["dag_run_id"]].append((ti["state"], trigger.get("classpath"), triggerer.get("id")))
        runs = backfill_runs()
        if all(run["state"] in ("success", "failed") for run in runs.values()):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"backfill not done after 240 s: { {rid: run['state'] for rid, run in runs.items()} }")
        time.sleep(0.5)
    seconds = time.monotonic() - started
    print(f"backfill of {len(dates)} dates finished in {seconds:.0f} s")
    backfill_state = wait_for("the backfill to be marked completed",
                              lambda: (b := live_stack.api("GET", f"/api/v2/backfills/{created['id']}"))["completed_at"] and b,
                              60)
    return Backfill(backfill=backfill_state, dates=dates, runs=runs, sensor_states=dict(sensor_states), seconds=seconds)


def test_backfill_of_three_past_dates_publishes_three_reconciled_snapshots(live_stack, backfill, live_aws, seeded_items):
    for run_id, run in backfill.runs.items():
        assert run["state"] == "success", (run_id, task_states(live_stack, EXPORT_DAG, run_id))
        assert run["run_type"] == "backfill"
    assert backfill.backfill["completed_at"]
    for day in backfill.dates:
        published = f"{PREFIX}/jsonl/table={TABLE}/snapshot_date={day}/"
        keys = s3_keys(live_aws, published)
        assert published + "_SUCCESS" in keys, keys
        manifest = s3_json(live_aws, published + "_manifest.json")
        counts = manifest["counts"]
        assert counts["describe_export_item_count"] == counts["manifest_item_count"] == counts["lines_written"] \
            == in_snapshot(seeded_items, day) > 0, (day, counts)
        assert manifest["export_time"].startswith(f"{day}T00:00:00"), manifest["export_time"]
        parts = sorted(key for key in keys if key.endswith(".jsonl.gz"))
        assert parts == sorted(part["key"] for part in manifest["parts"]) and parts
        lines = sum(
            len(gzip.decompress(live_aws("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()).splitlines())
            for key in parts
        )
        assert lines == in_snapshot(seeded_items, day)
    # Point in time: the snapshots differ (events kept arriving between the dates).
    assert len({in_snapshot(seeded_items, day) for day in backfill.dates}) == len(backfill.dates)


def test_wait_for_export_was_deferred_and_completed_by_the_triggerer(live_stack, backfill, seeded_items):
    for run_id in backfill.runs:
        seen = backfill.sensor_states.get(run_id, [])
        deferred = [entry for entry in seen if entry[0] == "deferred"]
        # Seen live through the API: the task instance sat in `deferred` with our trigger, held by a triggerer.
        assert deferred, (run_id, sorted({entry[0] for entry in seen}, key=str))
        # (A poll can catch the state a moment before the trigger is linked or after it fired and was
        # deleted: `deferred` without a trigger. Every trigger seen is ours.)
        assert {entry[1] for entry in deferred} - {None} == {EXPORT_TRIGGER}, deferred
        assert any(entry[2] is not None for entry in deferred), f"no triggerer ever held the trigger: {deferred}"

        ti = live_stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", run_id, "taskInstances", "wait_for_export"))
        assert ti["state"] == "success" and ti["try_number"] == 1, ti  # resumed after the trigger, not retried
        assert ti["trigger"] is None  # the trigger is gone once it fired

        # Its log (what the UI shows): the worker deferred, the triggerer's trigger fired COMPLETED, the
        # task resumed in execute_complete and saw the export's item count.
        log = live_stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", run_id, "taskInstances",
                                             "wait_for_export", "logs", "1") + "?full_content=true")
        events = [json.dumps(entry) for entry in log["content"]]
        order = [first_event(events, text, run_id) for text in (
            "Pausing task as DEFERRED", "is still IN_PROGRESS", "Trigger fired event", "trigger completed",
            f"COMPLETED with {in_snapshot(seeded_items, backfill.runs[run_id]['logical_date'][:10])} items",
        )]
        assert order == sorted(order), (run_id, order)
        assert "'status': 'COMPLETED'" in events[order[2]]


def first_event(events: list[str], text: str, run_id: str) -> int:
    """Index of the first log event containing ``text``."""
    matches = [index for index, event in enumerate(events) if text in event]
    assert matches, f"{text!r} not in the log of {run_id}:\n" + "\n".join(events[-40:])
    return matches[0]


def test_adhoc_run_with_form_values_publishes_exactly_the_matching_events(live_stack, live_aws, seeded_items):
    live_stack.api("PATCH", api_path("dags", ADHOC_DAG), {"is_paused": False})
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    account = busiest_account(seeded_items)
    start, end = iso_millis(now - timedelta(days=5)), iso_millis(now + timedelta(hours=1))
    event_types = ["REQUESTED", "GRANTED", "REVOKED", "EXPIRED"]
    expected = expected_account_events(seeded_items, account, start, end, event_types)
    assert len(expected) >= 3, "the seeded account has too few events for a meaningful query"
    conf = {**FORM_DEFAULTS, "query_by": "account", "account_id": account, "start": start, "end": end,
            "event_types": event_types, "page_size": 2}  # small pages: every page must be followed
    run = live_stack.api("POST", api_path("dags", ADHOC_DAG, "dagRuns"),
                         {"logical_date": iso_millis(datetime.now(UTC)), "conf": conf})
    run_id = run["dag_run_id"]
    assert run["conf"] == conf
    state = wait_for_run(live_stack, ADHOC_DAG, run_id, timeout=120)
    assert state == "success", task_states(live_stack, ADHOC_DAG, run_id)

    manifest, found = adhoc_results(live_aws, run_id)
    assert found == expected
    assert manifest["counts"]["items"] == len(expected)
    xcom = live_stack.api("GET", api_path("dags", ADHOC_DAG, "dagRuns", run_id, "taskInstances", "run_query",
                                          "xcomEntries", "return_value"))
    result = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
    assert result["uri"] == f"s3://{BUCKET}/{adhoc_prefix(run_id)}"
    assert result["items"] == len(expected)


def test_a_failed_run_sends_exactly_one_alert(live_stack, webhook):
    """A date older than the PITR window fails at once (no retries); the DAG's callback alerts once."""
    before = len(webhook.received())
    live_stack.api("PATCH", api_path("dags", EXPORT_DAG), {"is_paused": False})
    too_old = datetime.now(UTC).date() - timedelta(days=40)  # the emulator's PITR window is 35 days
    run = live_stack.api("POST", api_path("dags", EXPORT_DAG, "dagRuns"),
                         {"logical_date": f"{too_old}T00:00:00Z", "conf": {}})
    run_id = run["dag_run_id"]
    assert wait_for_run(live_stack, EXPORT_DAG, run_id, timeout=120) == "failed"
    states = task_states(live_stack, EXPORT_DAG, run_id)
    assert states[("plan", -1)] == "success", states
    assert states[("wait_for_restorable_time", -1)] == "failed", states
    assert states[("start_export", -1)] == "upstream_failed", states
    log = live_stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", run_id, "taskInstances",
                                         "wait_for_restorable_time", "logs", "1") + "?full_content=true")
    assert "older than the point-in-time recovery window" in json.dumps(log["content"])

    alerts = wait_for("the failure alert at the webhook", lambda: webhook.received()[before:], 90)
    time.sleep(10)  # a second alert for the same run would come right after the first
    alerts = webhook.received()[before:]
    assert len(alerts) == 1, [alert["body"][:300] for alert in alerts]
    alert = alerts[0]
    assert alert["path"] == "/hooks/test"
    payload = json.loads(alert["body"])
    text = json.dumps(payload)
    assert EXPORT_DAG in text and run_id in text, text
    # No other run of the session failed, so nothing else reached the webhook.
    assert len(webhook.received()) == 1, [request["body"][:300] for request in webhook.received()]
