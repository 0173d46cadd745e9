"""The export's deadline alert: one message per missed deadline, through the failure alerts' channels.

How Airflow 3.3 runs it: the scheduler creates the run's deadline (its logical date +
``[jit_audit] export_deadline_minutes``), drops it when the run succeeds in time, and otherwise, once
it has passed, hands ``notify_missed_deadline`` to the triggerer (``CallbackTrigger``) with a context
of the DAG run (the REST API's JSON, state as of the miss) and the deadline. Here that callback runs
through Airflow's own ``CallbackTrigger``, against a real webhook server and the emulator's SNS;
tests/live/test_deadline_live.py runs it on the real scheduler and triggerer.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from test_alerts import BASE_URL, SNS_CONN, TOKEN, WEBHOOK_CONN, WebhookServer, captured, sns_messages

from jit_audit import alerts
from jit_audit_airflow.notifications import deadline, failure

CALLBACK_PATH = "jit_audit_airflow.notifications.deadline.notify_missed_deadline"
RUN_ID = "scheduled__2026-11-25T00:00:00+00:00"
LOGICAL = datetime(2026, 11, 25, tzinfo=UTC)
DEADLINE = LOGICAL + timedelta(hours=6)
NOTICED = DEADLINE + timedelta(seconds=42)
RUN_URL = f"{BASE_URL}/dags/jit_audit_export/runs/{quote(RUN_ID)}"


@pytest.fixture(autouse=True)
def alert_environment(monkeypatch):
    """No alert Connection unless a test sets one; the UI's base URL known; 'off' reported afresh."""
    monkeypatch.delenv(WEBHOOK_CONN, raising=False)
    monkeypatch.delenv(SNS_CONN, raising=False)
    monkeypatch.delenv("AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    failure._reported_off.clear()


@pytest.fixture()
def webhook(monkeypatch):
    server = WebhookServer()
    monkeypatch.setenv(WEBHOOK_CONN, server.url)
    yield server
    server.stop()


def context(**run: Any) -> dict[str, Any]:
    """What Deadline.handle_miss gives the callback: the run as DAGRunResponse JSON, and the deadline."""
    dag_run = {
        "dag_run_id": RUN_ID, "dag_id": "jit_audit_export", "logical_date": "2026-11-25T00:00:00Z",
        "queued_at": "2026-11-25T00:00:02.123456Z", "start_date": "2026-11-25T00:00:03Z", "end_date": None,
        "duration": None, "data_interval_start": "2026-11-25T00:00:00Z", "data_interval_end": "2026-11-25T00:00:00Z",
        "run_after": "2026-11-25T00:00:00Z", "last_scheduling_decision": "2026-11-25T05:59:58Z",
        "run_type": "scheduled", "state": "running", "triggered_by": "timetable", "triggering_user_name": None,
        "conf": {}, "note": None, "dag_versions": [], "bundle_version": None, "dag_display_name": "jit_audit_export",
        "partition_key": None, "partition_date": None,
    }
    dag_run.update(run)
    return {"dag_run": dag_run, "deadline": {"id": "0197c3a1-0000-7000-8000-000000000000", "deadline_time": DEADLINE}}


def run_callback(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the callback the way the triggerer does: Airflow's CallbackTrigger, its events returned."""
    from airflow.triggers.callback import CallbackTrigger

    async def events() -> list[dict[str, Any]]:
        trigger = CallbackTrigger(callback_path=CALLBACK_PATH, callback_kwargs={"context": ctx})
        return [event.payload async for event in trigger.run()]

    return asyncio.run(events())


def missed(**fields: Any) -> alerts.MissedDeadline:
    values: dict[str, Any] = {
        "dag_id": "jit_audit_export", "run_id": RUN_ID, "deadline": DEADLINE, "noticed_at": NOTICED,
        "logical_date": LOGICAL, "data_interval_end": LOGICAL, "queued_at": LOGICAL + timedelta(seconds=2),
        "start_date": LOGICAL + timedelta(seconds=3), "run_type": "scheduled", "run_state": "running",
        "waiting_tasks": (("wait_for_export", "deferred"),), "run_url": RUN_URL,
    }
    values.update(fields)
    return alerts.MissedDeadline(**values)


# --- the message (plain Python) -----------------------------------------------------------------


def test_the_message_says_which_run_missed_its_deadline_by_how_much_and_links_to_it():
    text = alerts.render_text(missed())
    assert text.splitlines()[0] == f"[jit-audit] jit_audit_export missed its deadline: {RUN_ID}"
    for expected in (
        "DAG: jit_audit_export",
        f"Run: {RUN_ID}",
        "Logical date: 2026-11-25T00:00:00Z",
        "Deadline: 2026-11-25T06:00:00Z (6 h after the end of its data interval)",
        "Late by: 42 s when checked, at 2026-11-25T06:00:42Z",
        "Run state: running since 2026-11-25T00:00:03Z (6 h)",
        "Waiting on: wait_for_export (deferred)",
        f"Link: {RUN_URL}",
        "Next steps: DynamoDB has not finished the export (wait_for_export is deferred): check it with DescribeExport",
        "The run has not failed and may still finish",
    ):
        assert expected in text, (expected, text)

    payload = alerts.chat_payload(missed(), channel="security-alerts")
    assert payload["channel"] == "security-alerts"
    markdown = payload["text"]
    assert markdown.startswith(f"#### :alarm_clock: `jit_audit_export` missed its deadline in run `{RUN_ID}`")
    assert f"- **Run:** `{RUN_ID}`" in markdown
    assert f"- **Link:** [open the run]({RUN_URL})" in markdown
    assert alerts.message_attributes(missed()) == {"dag_id": "jit_audit_export", "run_id": RUN_ID,
                                                   "alert": "missed_deadline"}
    long = missed(run_id="manual__" + "x" * 200 + "é")
    assert len(alerts.subject(long)) < 100 and alerts.subject(long).isascii()


def test_next_steps_follow_what_the_run_waits_on():
    assert alerts.deadline_next_steps(missed(waiting_tasks=(("flatten_data_files[2]", "up_for_retry"),))).startswith(
        "flatten_data_files failed a try and waits to retry")
    assert "latest restorable time" in alerts.deadline_next_steps(
        missed(waiting_tasks=(("wait_for_restorable_time", "deferred"),)))
    assert alerts.deadline_next_steps(missed(waiting_tasks=(("publish_snapshot", "running"),))).startswith(
        "publish_snapshot is still running")
    assert "worker slot" in alerts.deadline_next_steps(missed(waiting_tasks=(("list_data_files", "queued"),)))
    assert alerts.deadline_next_steps(missed(run_state="queued", waiting_tasks=())).startswith("The run has not started")
    late_success = missed(run_state="success", end_date=NOTICED, waiting_tasks=())
    assert alerts.deadline_next_steps(late_success).startswith("Nothing to do for this run")
    assert "Run state: success, finished at 2026-11-25T06:00:42Z" in alerts.render_text(late_success)
    assert "Waiting on" not in alerts.render_text(late_success)
    unknown = alerts.render_text(missed(waiting_tasks=None))
    assert "Waiting on: unknown (the task states could not be read); see the run" in unknown


def test_which_missed_deadlines_alert():
    assert alerts.deadline_alert_skip_reason(missed()) is None
    assert alerts.deadline_alert_skip_reason(missed(run_state="queued")) is None
    assert alerts.deadline_alert_skip_reason(missed(run_state="success")) is None  # done, but late
    assert alerts.deadline_alert_skip_reason(missed(queued_at=None)) is None  # unknown: alert
    assert "failure alert" in (alerts.deadline_alert_skip_reason(missed(run_state="failed")) or "")
    # A backfill of an old date (or the first run after unpausing) is queued after its deadline.
    backfill = missed(run_type="backfill", queued_at=DEADLINE + timedelta(days=3))
    assert "late before it started" in (alerts.deadline_alert_skip_reason(backfill) or "")


def test_durations_read_like_people_write_them():
    assert alerts.format_duration(timedelta(hours=6)) == "6 h"
    assert alerts.format_duration(timedelta(minutes=4, seconds=10)) == "4 min 10 s"
    assert alerts.format_duration(timedelta(days=1, hours=2, minutes=3)) == "1 day 2 h"
    assert alerts.format_duration(timedelta(days=2)) == "2 days"
    assert alerts.format_duration(timedelta(milliseconds=300)) == "less than 1 s"


# --- configuration ------------------------------------------------------------------------------


def test_the_deadline_comes_from_airflow_config_with_a_six_hour_default(monkeypatch):
    from airflow.sdk import AsyncCallback, DeadlineReference

    alert = deadline.export_deadline()
    assert alert is not None
    assert alert.interval == timedelta(hours=6)
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert isinstance(alert.callback, AsyncCallback) and alert.callback.path == CALLBACK_PATH
    assert alert.callback.kwargs == {}
    assert alert.name == "Exported within 6 h after the data interval"

    monkeypatch.setenv("AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES", "90")
    assert deadline.export_deadline().interval == timedelta(minutes=90)  # type: ignore[union-attr]
    monkeypatch.setenv("AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES", "0")
    assert deadline.export_deadline() is None  # switched off
    monkeypatch.setenv("AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES", "-5")
    with pytest.raises(ValueError, match=r"\[jit_audit\] export_deadline_minutes must be 0 \(off\) or more"):
        deadline.export_deadline()


# --- the callback, as the triggerer runs it -----------------------------------------------------


def test_a_missed_deadline_sends_one_alert_to_each_configured_channel(aws, webhook, monkeypatch, caplog, capfd):
    caplog.set_level("INFO")
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic_arn = sns.create_topic(Name="jit-audit-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="jit-audit-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv(SNS_CONN, json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"target_arn": topic_arn, "region_name": "us-east-1", "endpoint_url": aws.endpoint_url},
    }))

    events = run_callback(context())
    assert [event["state"] for event in events] == ["running", "success"]
    assert events[-1]["body"] == "Chat webhook alert: sent; SNS alert: sent"

    (text,) = webhook.texts  # exactly one chat message
    for expected in (
        f"#### :alarm_clock: `jit_audit_export` missed its deadline in run `{RUN_ID}`",
        "- **Deadline:** 2026-11-25T06:00:00Z (6 h after the end of its data interval)",
        "- **Late by:** ",
        "- **Run state:** running since 2026-11-25T00:00:03Z",
        # No supervisor here (on the triggerer there is one): the context's state stands, tasks unknown.
        "- **Waiting on:** unknown (the task states could not be read); see the run",
        f"- **Link:** [open the run]({RUN_URL})",
    ):
        assert expected in text, (expected, text)

    (envelope,) = sns_messages(aws, queue_url)
    assert envelope["Subject"] == f"[jit-audit] jit_audit_export missed its deadline: {RUN_ID}"
    assert f"Link: {RUN_URL}" in envelope["Message"]
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {"dag_id": "jit_audit_export", "run_id": RUN_ID, "alert": "missed_deadline"}
    logs = captured(caplog, capfd)
    assert TOKEN not in logs
    assert f"Missed-deadline alert for jit_audit_export / {RUN_ID} sent to http://127.0.0.1:" in logs


def test_nothing_is_sent_without_connections(caplog, capfd):
    caplog.set_level("INFO")
    events = run_callback(context())
    assert events[-1] == {"state": "success", "body": "Chat webhook alert: not sent; SNS alert: not sent"}
    logs = captured(caplog, capfd)
    assert "Chat webhook alert is off: there is no Airflow connection 'jit_audit_alerts_webhook'" in logs
    assert "SNS alert is off: there is no Airflow connection 'jit_audit_alerts_sns'" in logs


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        ({"state": "failed"}, "its failure alert covers it"),
        # A backfill of a past date: created days after its deadline.
        ({"run_type": "backfill", "queued_at": "2026-11-29T10:00:00Z", "state": "queued"}, "late before it started"),
    ],
    ids=["already_failed", "backfill"],
)
def test_no_alert_for_a_failed_run_or_one_queued_after_its_deadline(webhook, caplog, capfd, run, reason):
    caplog.set_level("INFO")
    events = run_callback(context(**run))
    assert webhook.requests == []
    assert events[-1]["state"] == "success" and reason in events[-1]["body"]
    assert f"No alert for the missed deadline of jit_audit_export / {RUN_ID}: " in captured(caplog, capfd)


def test_the_run_as_it_is_now_decides_and_names_what_it_waits_on(webhook, monkeypatch):
    """On the triggerer the supervisor answers: the current run state and its task states."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.utils.state import DagRunState, TaskInstanceState

    # The supervisor answers with Airflow's str enums.
    states = {"plan": TaskInstanceState.SUCCESS, "wait_for_restorable_time": "success", "start_export": "success",
              "wait_for_export": TaskInstanceState.DEFERRED, "flatten_data_files_3": "up_for_retry",
              "list_data_files": None, "publish_snapshot": None}
    current: dict[str, Any] = {"state": DagRunState.RUNNING}
    monkeypatch.setattr(RuntimeTaskInstance, "get_dagrun_state", staticmethod(lambda dag_id, run_id: current["state"]))
    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states",
                        staticmethod(lambda dag_id, run_ids: {run_ids[0]: states}))
    run_callback(context(state="queued"))  # the context's state is older than the supervisor's answer
    (text,) = webhook.texts
    assert "- **Run state:** running since 2026-11-25T00:00:03Z" in text
    assert "- **Waiting on:** flatten_data_files[3] (up_for_retry), wait_for_export (deferred)" in text
    assert "flatten_data_files failed a try and waits to retry" in text

    current["state"] = DagRunState.FAILED  # it failed after the deadline passed, before the callback ran
    events = run_callback(context())
    assert len(webhook.requests) == 1 and "its failure alert covers it" in events[-1]["body"]


def test_a_failing_webhook_is_logged_without_its_token_and_never_raises(monkeypatch, caplog, capfd):
    caplog.set_level("INFO")
    server = WebhookServer(status=500)
    monkeypatch.setenv(WEBHOOK_CONN, server.url)
    try:
        events = run_callback(context())
    finally:
        server.stop()
    assert events[-1] == {"state": "success", "body": "Chat webhook alert: not sent; SNS alert: not sent"}
    logs = captured(caplog, capfd)
    assert f"Chat webhook alert for the missed deadline of run {RUN_ID} was not sent" in logs
    assert "answered HTTP 500" in logs and TOKEN not in logs


def test_an_unreadable_context_is_logged_not_raised(webhook, caplog, capfd):
    caplog.set_level("INFO")
    events = run_callback({"dag_run": {"dag_id": "jit_audit_export"}})
    assert events[-1]["body"] == "not sent: unreadable context" and webhook.requests == []
    assert "its context is unreadable" in captured(caplog, capfd)
