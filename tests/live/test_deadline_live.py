"""The export's deadline alert on the real stack: the scheduler notices, the triggerer sends, once.

The session's stack (tests/live/conftest.py) sets ``[jit_audit] export_deadline_minutes`` to 1440, so
a run's deadline is its logical date plus one day. A manual run whose logical date is one day minus
ten seconds ago is due ten seconds after it is triggered, and no run of the export can finish that
fast (the emulator keeps every export IN_PROGRESS for 14 s): it misses its deadline while running.
The scheduler marks the miss and queues the callback on the triggerer, which reads the run's state
and task states through its supervisor and posts exactly one alert to the webhook, naming the run.
Every other export run of the session is either done long before its deadline (the scheduled run of
today, checked here: Airflow drops its deadline when it succeeds) or was queued after its deadline
had passed (backfills and manual runs of dates days ago): none alerts. The runs here export
"yesterday", a date no other live module uses.

The alerts this module receives are taken out of the shared webhook recorder at its end:
test_live_stack.py counts every request the webhook got to prove a failed run alerts once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from livelib import api_path, task_states, wait_for, wait_for_run

pytestmark = pytest.mark.live

EXPORT_DAG = "jit_audit_export"
#: What tests/live/conftest.py sets: AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES=1440.
DEADLINE = timedelta(days=1)
MISSED = "missed its deadline"


def _deadlines(stack: Any, run_id: str) -> list[dict[str, Any]]:
    """The run's deadlines as the UI shows them (Airflow deletes them when the run succeeds in time)."""
    return stack.api("GET", f"/ui/dags/{EXPORT_DAG}/dagRuns/{quote(run_id, safe='')}/deadlines")["deadlines"]


def _deadline_alerts(webhook: Any, since: int) -> list[dict[str, Any]]:
    return [json.loads(request["body"]) for request in webhook.received()[since:] if MISSED in request["body"]]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture()
def our_run_ids(webhook) -> Iterator[set[str]]:
    """Run ids whose missed-deadline alerts this test owns; taken out of the shared recorder afterwards."""
    owned: set[str] = set()
    yield owned
    with webhook.lock:
        webhook.requests[:] = [request for request in webhook.requests
                               if not (MISSED in request["body"] and any(run_id in request["body"] for run_id in owned))]


def test_a_run_that_misses_its_deadline_alerts_once_and_runs_in_time_do_not(live_stack, webhook, our_run_ids):
    stack = live_stack
    started = time.monotonic()
    stack.api("PATCH", api_path("dags", EXPORT_DAG), {"is_paused": False})  # also starts today's scheduled run
    (definition,) = stack.api("GET", f"/ui/dags/{EXPORT_DAG}/deadlineAlerts")["deadline_alerts"]
    assert definition["reference_type"] == "DagRunLogicalDateDeadline", definition
    assert definition["interval"] == DEADLINE.total_seconds(), definition  # the config reached the DAG processor

    before = len(webhook.received())
    logical = datetime.now(UTC).replace(microsecond=0) - DEADLINE + timedelta(seconds=10)
    run = stack.api("POST", api_path("dags", EXPORT_DAG, "dagRuns"),
                    {"logical_date": logical.strftime("%Y-%m-%dT%H:%M:%SZ"), "conf": {}})
    run_id = run["dag_run_id"]
    our_run_ids.add(run_id)
    (deadline,) = _deadlines(stack, run_id)
    assert _moment(deadline["deadline_time"]) == logical + DEADLINE and not deadline["missed"], deadline

    (alert,) = wait_for("the missed-deadline alert at the webhook", lambda: _deadline_alerts(webhook, before), 90,
                        interval=0.5)
    alerted = time.monotonic() - started
    text = alert["text"]
    for expected in (
        f"#### :alarm_clock: `{EXPORT_DAG}` {MISSED} in run `{run_id}`",
        f"- **Run:** `{run_id}`",
        f"- **Deadline:** {(logical + DEADLINE).strftime('%Y-%m-%dT%H:%M:%S')}Z (1 day after the end of its data interval)",
        "- **Late by:** ",
        f"- **Link:** [open the run]({stack.api_url}/dags/{EXPORT_DAG}/runs/{quote(run_id)})",
        "- **Next steps:** ",
        "this is the only deadline alert for it",
    ):
        assert expected in text, (expected, text)
    # Read live through the triggerer's supervisor: the run as it was, and what it was waiting on.
    assert "- **Run state:** running" in text or "- **Run state:** queued" in text, text
    assert "- **Waiting on:** unknown" not in text, text

    # The run itself goes on and succeeds, late: nothing more is sent for it.
    assert wait_for_run(stack, EXPORT_DAG, run_id, timeout=120) == "success", task_states(stack, EXPORT_DAG, run_id)
    finished = stack.api("GET", api_path("dags", EXPORT_DAG, "dagRuns", run_id))
    assert _moment(finished["end_date"]) > logical + DEADLINE, finished  # it really was late
    (deadline,) = _deadlines(stack, run_id)
    assert deadline["missed"], deadline

    # Today's scheduled run, due tomorrow at 00:00, succeeded in time: Airflow dropped its deadline.
    scheduled = wait_for("today's scheduled run", lambda: stack.api(
        "GET", api_path("dags", EXPORT_DAG, "dagRuns") + "?run_type=scheduled&limit=10")["dag_runs"], 60)
    for other in scheduled:
        assert wait_for_run(stack, EXPORT_DAG, other["dag_run_id"], timeout=120) == "success", other
        assert _deadlines(stack, other["dag_run_id"]) == [], other

    time.sleep(5)  # a second alert would follow the first within a scheduler and a triggerer loop
    alerts = _deadline_alerts(webhook, before)
    assert len(alerts) == 1, [payload["text"][:200] for payload in alerts]
    print(f"[deadline] alert {alerted:.0f} s after the test began; done in {time.monotonic() - started:.0f} s",
          flush=True)
