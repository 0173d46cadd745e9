"""Failure alerts: one per failed run, to a chat webhook and to SNS, configured only by Connections.

The webhook is a real HTTP server on 127.0.0.1 (a free port) and SNS is the emulator's, delivering
to an SQS queue. Failing runs are real ``dag.test()`` runs against the emulator.

How Airflow 3.3 runs the DAG-level ``on_failure_callback``: the scheduler marks the run failed and
sends a ``DagCallbackRequest`` (the task instance that failed last, ``reason="task_failure"``) to the
DAG processor, which runs the callback with supervisor comms (XCom and task-state reads go through
the Execution API). ``dag.test()`` calls the same callback in its own process, once, right after the
run is marked failed, but without those comms. ``dag_processor_comms`` gives it the channel the DAG
processor would; one test runs the callback through the real ``DagFileProcessorProcess``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowFailException

from jit_audit import alerts
from jit_audit_airflow.notifications import (
    FAILURE_XCOM_KEY,
    MattermostFailureNotifier,
    SnsFailureNotifier,
    failure,
    record_task_failure,
)
from jit_audit_airflow.notifications.mattermost import webhook_url
from jit_audit_dev.seed import ensure_bucket, seed
from jit_audit_dev.stack import free_port

TOKEN = "jitaudit" + uuid.uuid4().hex  # long and unique: nothing else in a log can contain it
BASE_URL = "https://airflow.example.com"
WEBHOOK_CONN = "AIRFLOW_CONN_JIT_AUDIT_ALERTS_WEBHOOK"
SNS_CONN = "AIRFLOW_CONN_JIT_AUDIT_ALERTS_SNS"
BUCKET = "jit-audit-exports"
EXPORT_VARIABLES = {
    "AIRFLOW_VAR_JIT_AUDIT_TABLE": "jit_audit",
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET": BUCKET,
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_PREFIX": "exports",
    "AIRFLOW_VAR_JIT_AUDIT_EXPORT_TIMEOUT_MINUTES": "5",
}
# Every form field, every time: dag.test() keeps the last run's conf in the shared DAG's params.
FORM_DEFAULTS = {"request_id": None, "account_id": None, "channel_id": None, "event_types": [], "start": None,
                 "end": None, "max_items": 1_000_000, "segments": 4, "page_size": None, "output_uri": None}
BAD_QUERY = {**FORM_DEFAULTS, "query_by": "event_type", "event_types": ["ERROR"]}  # no start: validate_query fails


# --- fixtures and helpers -----------------------------------------------------------------------


class WebhookServer:
    """An incoming-webhook endpoint on a free loopback port that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                        "json": json.loads(body)})
                # A failing server that echoes the token back: the notifier must not log it.
                reply = b"ok" if server.status < 400 else f"internal error for /hooks/{TOKEN}".encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks/{TOKEN}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def texts(self) -> list[str]:
        return [request["json"]["text"] for request in self.requests]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def alert_environment(monkeypatch):
    """No alert Connection unless a test sets one; the UI's base URL known; 'off' reported afresh."""
    monkeypatch.delenv(WEBHOOK_CONN, raising=False)
    monkeypatch.delenv(SNS_CONN, raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    failure._reported_off.clear()


@pytest.fixture()
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.stop()


@pytest.fixture()
def webhook(webhook_server, monkeypatch) -> WebhookServer:
    """The server, configured as the ``jit_audit_alerts_webhook`` Connection (URI form)."""
    monkeypatch.setenv(WEBHOOK_CONN, webhook_server.url)
    return webhook_server


@pytest.fixture()
def sns_queue(aws, monkeypatch) -> dict[str, str]:
    """An SNS topic in the emulator with an SQS queue subscribed, configured as ``jit_audit_alerts_sns``."""
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic_arn = sns.create_topic(Name="jit-audit-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="jit-audit-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv(SNS_CONN, json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"target_arn": topic_arn, "region_name": "us-east-1", "endpoint_url": aws.endpoint_url},
    }))
    return {"topic_arn": topic_arn, "queue_url": queue_url}


def sns_messages(aws, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS envelope in the queue (SNS's JSON: Subject, Message, MessageAttributes...)."""
    sqs = aws.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def dag_processor_comms(dag) -> Iterator[None]:
    """The supervisor channel the DAG processor gives a DAG callback, for ``dag.test()``'s callback.

    The same in-process Execution API that ``dag.test()`` gives each task: the callback can read
    the failed task's recorded error (XCom) and the run's task states, as in production.
    """
    import psutil
    import structlog
    from airflow.sdk.execution_time.supervisor import (
        InProcessSupervisorComms,
        InProcessTestSupervisor,
        set_supervisor_comms,
    )

    supervisor = InProcessTestSupervisor(
        id=uuid.uuid4(), pid=os.getpid(), process=psutil.Process(), process_log=structlog.get_logger().bind(),
        client=InProcessTestSupervisor._api_client(dag),
    )
    supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
    with set_supervisor_comms(supervisor.comms):
        yield


def day(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def log_url(dag_id: str, run_id: str, task: str, try_number: int = 1) -> str:
    """The Airflow 3 UI's task instance page (its Logs tab), as ``[api] base_url`` makes it."""
    return f"{BASE_URL}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task}?try_number={try_number}"


def captured(caplog, capfd) -> str:
    """Everything logged so far: stdlib records and structlog's output on stdout/stderr."""
    out, err = capfd.readouterr()
    return caplog.text + out + err


def minimal_context(dagbag, dag_id: str = "jit_audit_export") -> dict[str, Any]:
    """What the DAG processor passes when it knows no task instance: dag, run_id, reason."""
    return {"dag": dagbag.dags[dag_id], "run_id": "scheduled__2026-11-25T00:00:00+00:00", "reason": "task_failure"}


def export_run(aws, dagbag, monkeypatch, logical_date: datetime, *, comms: bool = True):
    for name, value in EXPORT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    dag = dagbag.dags["jit_audit_export"]
    if not comms:
        return dag.test(logical_date=logical_date)
    with dag_processor_comms(dag):
        return dag.test(logical_date=logical_date)


def adhoc_run(dagbag, conf: dict[str, Any], *, comms: bool = True):
    dag = dagbag.dags["jit_audit_adhoc"]
    if not comms:
        return dag.test(run_conf=conf)
    with dag_processor_comms(dag):
        return dag.test(run_conf=conf)


# --- the message itself (plain Python) ----------------------------------------------------------


def test_the_message_names_everything_the_on_call_needs():
    failed = alerts.FailedRun(
        dag_id="jit_audit_export", run_id="scheduled__2026-11-25T00:00:00+00:00",
        logical_date=datetime(2026, 11, 25, tzinfo=UTC), task_id="flatten_data_files", map_index=3, try_number=4,
        retries=3, error="bad MD5\n  for data/x.json.gz", error_type="AirflowFailException",
        log_url="https://airflow/x", also_failed=("flatten_data_files[5]",),
    )
    text = alerts.render_text(failed)
    assert text.splitlines()[0] == "[jit-audit] jit_audit_export failed: flatten_data_files[3]"
    assert "Logical date: 2026-11-25T00:00:00Z" in text
    assert "Failed task: flatten_data_files[3] (try 4; the task allows 3 retries)" in text
    assert "Also failed: flatten_data_files[5]" in text
    assert "Error: AirflowFailException: bad MD5\n  for" not in text  # one line, always
    assert "Next steps: A data file failed its MD5/item-count check" in text
    markdown = alerts.chat_payload(failed, username="jit-audit", channel="security-alerts")
    assert markdown["username"] == "jit-audit" and markdown["channel"] == "security-alerts"
    assert "- **Failed task:** `flatten_data_files[3]` (try 4; the task allows 3 retries)" in markdown["text"]
    assert "[open the task log](https://airflow/x)" in markdown["text"]


def test_next_steps_follow_the_failure():
    too_old = alerts.FailedRun(
        dag_id="jit_audit_export", run_id="r", task_id="wait_for_restorable_time",
        error=alerts.one_line(AirflowFailException(
            "Export time 2026-10-01T00:00:00+00:00 is older than the point-in-time recovery window: the earliest "
            "restorable time is 2026-10-22T00:00:00+00:00. This date can no longer be exported from DynamoDB.")),
    )
    assert alerts.next_steps(too_old).startswith("This date can no longer be exported")
    export_failed = alerts.FailedRun(dag_id="jit_audit_export", run_id="r", task_id="wait_for_export",
                                     error="Export arn:aws:dynamodb:x FAILED: S3AccessDenied: Access Denied: no")
    assert export_failed.export_failure == ("S3AccessDenied", "Access Denied: no")
    assert "FailureCode S3AccessDenied" in alerts.next_steps(export_failed)
    assert "clear start_export" in alerts.next_steps(export_failed)
    timed_out = alerts.FailedRun(dag_id="jit_audit_adhoc", run_id="r", task_id="run_query",
                                 error="Timeout, PID: 1", error_type="AirflowTaskTimeout")
    assert "execution_timeout" in alerts.next_steps(timed_out)
    unreachable = alerts.FailedRun(
        dag_id="jit_audit_export", run_id="r", task_id="start_export",
        error='EndpointConnectionError: Could not connect to the endpoint URL: "http://127.0.0.1:9/"')
    assert alerts.next_steps(unreachable).startswith("AWS could not be reached")
    assert "clear start_export" in alerts.next_steps(unreachable)
    generic = alerts.FailedRun(dag_id="jit_audit_export", run_id="r", task_id="something_new")
    assert alerts.next_steps(generic).endswith("backfills are safe to re-run (a date is exported and published idempotently).")
    assert "clear the task to retry once fixed" in alerts.next_steps(alerts.FailedRun(dag_id="other", run_id="r"))


def test_a_deadlocked_run_names_the_stuck_task_not_a_failure():
    stuck = alerts.FailedRun(dag_id="jit_audit_export", run_id="r", task_id="publish_snapshot", try_number=0,
                             reason="all_tasks_deadlocked")
    text = alerts.render_text(stuck)
    assert "Stuck task: publish_snapshot" in text and "Failed task" not in text
    assert "Reason: Airflow marked the run failed: all_tasks_deadlocked" in text
    assert "Error:" not in text
    assert "Airflow failed the run itself (all_tasks_deadlocked)" in alerts.next_steps(stuck)


def test_subject_is_a_valid_sns_subject_and_urls_are_redacted():
    long = alerts.FailedRun(dag_id="jit_audit_export", run_id="r", task_id="t" * 200 + "é")
    assert len(alerts.subject(long)) < 100 and alerts.subject(long).isascii()
    assert alerts.redact_url(f"https://chat.example.com:8443/hooks/{TOKEN}?x=1") == "https://chat.example.com:8443/hooks/***"
    assert alerts.redact_url(f"https://hooks.slack.com/services/T0/B0/{TOKEN}") == "https://hooks.slack.com/services/***"
    assert TOKEN not in alerts.redact_url(f"https://chat.example.com/{TOKEN}")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        # AIRFLOW_CONN_...='<the webhook URL>': Airflow puts the path in `schema`.
        ("http://127.0.0.1:8065/hooks/abc", "http://127.0.0.1:8065/hooks/abc"),
        ("https://chat.example.com/hooks/abc?username=jit-audit", "https://chat.example.com/hooks/abc"),
    ],
)
def test_webhook_url_from_a_uri(uri, expected):
    assert webhook_url(Connection.from_uri(uri, conn_id="jit_audit_alerts_webhook")) == expected


def test_webhook_url_from_the_host_field_and_a_bad_one():
    full = Connection(conn_id="c", conn_type="http", host="https://chat.example.com/hooks/abc")
    assert webhook_url(full) == "https://chat.example.com/hooks/abc"
    with pytest.raises(failure.AlertDeliveryError, match="holds no webhook URL"):
        webhook_url(Connection(conn_id="c", conn_type="http", host="chat.example.com"))


# --- wiring: one alert per failed run -----------------------------------------------------------


@pytest.mark.parametrize("dag_id", ["jit_audit_export", "jit_audit_adhoc"])
def test_alerts_are_wired_at_the_dag_level_and_tasks_only_record(dagbag, dag_id):
    """Only the DAG-level callback sends (once per run); task callbacks record the error, nothing else."""
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags[dag_id]
    assert [type(callback) for callback in dag.on_failure_callback] == [MattermostFailureNotifier, SnsFailureNotifier]
    # What the scheduler sees: without this flag it would never send a DagCallbackRequest.
    assert DagSerialization.serialize_dag(dag)["has_on_failure_callback"] is True
    for task in dag.tasks:
        callbacks = task.on_failure_callback  # a mapped task keeps the value as given
        assert (callbacks if isinstance(callbacks, list) else [callbacks]) == [record_task_failure], task.task_id
        assert not task.on_retry_callback, task.task_id
        assert task.retry_exponential_backoff == 2.0 and task.max_retry_delay == timedelta(minutes=30), task.task_id
        assert task.execution_timeout and task.execution_timeout > timedelta(0), task.task_id
    timeouts = {task.task_id: task.execution_timeout for task in dag.tasks}
    if dag_id == "jit_audit_export":
        assert timeouts["plan"] == timedelta(minutes=5)
        assert timeouts["flatten_data_files"] == timedelta(hours=2)
        assert timeouts["publish_snapshot"] == timedelta(minutes=30)
        # The sensors' own timeouts decide; the backstop comes later.
        assert timeouts["wait_for_restorable_time"] > timedelta(seconds=dag.get_task("wait_for_restorable_time").timeout)
        assert timeouts["wait_for_export"] > timedelta(days=7)
    else:
        assert timeouts == {"validate_query": timedelta(minutes=5), "run_query": timedelta(hours=6)}


def test_the_task_level_callback_records_the_error_and_sends_nothing(webhook):
    pushed: list[tuple[str, Any]] = []

    class FailedTaskInstance:
        task_id = "plan"

        def xcom_push(self, key: str, value: Any) -> None:
            pushed.append((key, value))

    record_task_failure({"ti": FailedTaskInstance(), "exception": AirflowFailException("Bad\n   value")})
    record_task_failure({"ti": FailedTaskInstance()})  # killed from outside: no exception, nothing to keep
    assert pushed == [(FAILURE_XCOM_KEY, {"error": "Bad value", "type": "AirflowFailException"})]
    assert webhook.requests == []


# --- real failing runs --------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_failed_export_sends_one_alert_with_dynamodbs_reason(aws, dagbag, webhook, monkeypatch, caplog, capfd):
    caplog.set_level("DEBUG")
    seed(aws.resource("dynamodb"), "jit_audit", requests=20)
    for name, value in EXPORT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_EXPORT_BUCKET", "no-such-bucket")  # the emulator FAILs the export
    dag = dagbag.dags["jit_audit_export"]
    with dag_processor_comms(dag):
        dag_run = dag.test(logical_date=day(1))
    assert dag_run.state == "failed"

    dynamodb = aws.client("dynamodb")
    table_arn = dynamodb.describe_table(TableName="jit_audit")["Table"]["TableArn"]
    (summary,) = dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]
    description = dynamodb.describe_export(ExportArn=summary["ExportArn"])["ExportDescription"]
    assert description["FailureCode"] == "S3NoSuchBucket"

    (request,) = webhook.requests  # once per run
    assert request["path"] == f"/hooks/{TOKEN}" and request["content_type"] == "application/json"
    text = request["json"]["text"]
    assert set(request["json"]) == {"text"}  # Slack's shape; Mattermost's extras only when configured
    run_id = dag_run.run_id
    for expected in (
        "`jit_audit_export` failed in `wait_for_export`",
        f"- **Run:** `{run_id}`",
        f"- **Logical date:** {day(1).date().isoformat()}T00:00:00Z",
        "- **Failed task:** `wait_for_export` (try 1; no retries configured)",
        f"- **Error:** AirflowFailException: Export {description['ExportArn']} FAILED: S3NoSuchBucket: "
        f"{description['FailureMessage']}",
        "- **DynamoDB FailureCode:** `S3NoSuchBucket`",
        f"- **DynamoDB FailureMessage:** {description['FailureMessage']}",
        f"- **Log:** [open the task log]({log_url('jit_audit_export', run_id, 'wait_for_export')})",
        "- **Next steps:** DynamoDB failed the export with FailureCode S3NoSuchBucket. DynamoDB found no export "
        "bucket: check the Variable jit_audit_export_bucket",
    ):
        assert expected in text, (expected, text)
    assert "Also failed" not in text  # the downstream tasks are upstream_failed, not failed

    logs = captured(caplog, capfd)
    assert TOKEN not in logs
    assert f"http://127.0.0.1:{webhook.httpd.server_port}/hooks/***" in logs
    assert "SNS alert is off: there is no Airflow connection 'jit_audit_alerts_sns'" in logs


@pytest.mark.e2e
def test_two_failed_mapped_tasks_still_send_one_alert(aws, dagbag, webhook, monkeypatch):
    seed(aws.resource("dynamodb"), "jit_audit", requests=120)
    ensure_bucket(aws.client("s3"), BUCKET, prefix="exports", retention_days=400)
    assert export_run(aws, dagbag, monkeypatch, day(1)).state == "success"
    assert webhook.requests == []

    # Damage two of the export's data files: each fails its MD5 check in its own mapped task (a target
    # of 1 MiB puts each data file in a flatten task of its own: a file counts at least 4 MiB).
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_FLATTEN_TARGET_MIB", "1")
    s3 = aws.client("s3")
    manifest_key = f"exports/jsonl/table=jit_audit/snapshot_date={day(1).date().isoformat()}/_manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    damaged = [part["source_data_file"] for part in manifest["parts"][:2]]
    for key in damaged:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the exported bytes")

    dag_run = export_run(aws, dagbag, monkeypatch, day(1))
    assert dag_run.state == "failed"
    failed = sorted(ti.map_index for ti in dag_run.get_task_instances() if ti.state == "failed")
    assert len(failed) == 2
    (text,) = webhook.texts
    labels = [f"flatten_data_files[{index}]" for index in failed]
    reported = next(label for label in labels if f"failed in `{label}`" in text)
    (other,) = set(labels) - {reported}
    assert f"- **Also failed:** {other}" in text
    assert "A data file failed its MD5/item-count check" in text
    index = int(reported.split("[")[1].rstrip("]"))
    expected_url = f"{BASE_URL}/dags/jit_audit_export/runs/{quote(dag_run.run_id)}/tasks/flatten_data_files/mapped/{index}?try_number=1"
    assert expected_url in text


@pytest.mark.e2e
def test_a_failed_adhoc_query_alerts_both_channels_once(aws, dagbag, webhook, sns_queue, caplog, capfd):
    caplog.set_level("DEBUG")
    dag_run = adhoc_run(dagbag, BAD_QUERY)
    assert dag_run.state == "failed"
    run_id = dag_run.run_id

    (text,) = webhook.texts
    for expected in (
        "`jit_audit_adhoc` failed in `validate_query`",
        f"- **Run:** `{run_id}`",
        "- **Failed task:** `validate_query` (try 1; no retries configured)",
        "- **Error:** AirflowFailException: Bad parameter start: is required when querying by event_type",
        f"[open the task log]({log_url('jit_audit_adhoc', run_id, 'validate_query')})",
        "- **Next steps:** A query parameter is wrong (the error names the field). Trigger a new run",
    ):
        assert expected in text, (expected, text)

    (envelope,) = sns_messages(aws, sns_queue["queue_url"])
    assert envelope["TopicArn"] == sns_queue["topic_arn"]
    assert envelope["Subject"] == "[jit-audit] jit_audit_adhoc failed: validate_query"
    message = envelope["Message"]
    for expected in (
        "DAG: jit_audit_adhoc",
        f"Run: {run_id}",
        "Failed task: validate_query (try 1; no retries configured)",
        "Error: AirflowFailException: Bad parameter start: is required when querying by event_type",
        f"Log: {log_url('jit_audit_adhoc', run_id, 'validate_query')}",
        "Next steps: A query parameter is wrong",
    ):
        assert expected in message, (expected, message)
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {"dag_id": "jit_audit_adhoc", "run_id": run_id, "task_id": "validate_query"}
    assert TOKEN not in captured(caplog, capfd)


@pytest.mark.e2e
def test_dag_test_runs_the_dag_callback_but_cannot_read_the_recorded_error(aws, dagbag, webhook):
    """Plain ``dag.test()``: the callback runs once, without the supervisor comms to read the error."""
    dag_run = adhoc_run(dagbag, BAD_QUERY, comms=False)
    assert dag_run.state == "failed"
    (text,) = webhook.texts
    assert "`jit_audit_adhoc` failed in `validate_query`" in text
    assert "- **Error:** not recorded" in text
    assert log_url("jit_audit_adhoc", dag_run.run_id, "validate_query") in text


@pytest.mark.e2e
def test_the_dag_processor_runs_the_callback_with_the_recorded_error(aws, dagbag, webhook_server, monkeypatch, tmp_path):
    """Production's path: the scheduler's DagCallbackRequest, run by a real DagFileProcessorProcess."""
    import structlog
    from airflow.dag_processing.processor import DagFileProcessorProcess
    from airflow.models.dagrun import DagRun
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor
    from airflow.sdk.log import logging_processors
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from uuid6 import uuid7

    dag = dagbag.dags["jit_audit_adhoc"]
    dag_run = adhoc_run(dagbag, BAD_QUERY, comms=False)  # alerts still off: no Connection yet
    assert dag_run.state == "failed" and webhook_server.requests == []

    # What the scheduler does when it marks the run failed (DagRun.update_state -> produce_dag_callback).
    with create_session() as session:
        orm_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == dag_run.run_id))
        (failed_ti,) = [ti for ti in orm_run.get_task_instances(session=session) if ti.state == "failed"]
        request = orm_run.produce_dag_callback(dag=dag, success=False, relevant_ti=failed_ti, reason="task_failure")
    assert request is not None

    monkeypatch.setenv(WEBHOOK_CONN, webhook_server.url)
    log_file = tmp_path / "dag-processor.log"
    with log_file.open("ab") as handle:
        logger = structlog.wrap_logger(structlog.BytesLogger(handle), processors=logging_processors(json_output=True),
                                       logger_name="processor").bind()
        process = DagFileProcessorProcess.start(
            id=uuid7(), path=dag.fileloc, bundle_path=os.path.dirname(dag.fileloc), bundle_name="dags-folder",
            dag_file_rel_path=os.path.basename(dag.fileloc), callbacks=[request], logger=logger,
            logger_filehandle=handle, client=InProcessTestSupervisor._api_client(dag),
        )
        deadline = time.monotonic() + 120
        while not process.is_ready:
            assert time.monotonic() < deadline, "the DAG processor did not finish"
            process._service_subprocess(0.5)
    assert process._exit_code == 0
    processor_log = log_file.read_text()
    assert "Executing on_failure dag callback" in processor_log
    assert TOKEN not in processor_log

    (text,) = webhook_server.texts
    assert "- **Error:** AirflowFailException: Bad parameter start: is required when querying by event_type" in text
    assert f"- **Run:** `{dag_run.run_id}`" in text
    assert log_url("jit_audit_adhoc", dag_run.run_id, "validate_query") in text


# --- notifiers on their own: off, switched off, failing -----------------------------------------


def test_alerts_are_off_without_connections_and_say_so_once(dagbag, caplog, capfd):
    caplog.set_level("INFO")
    dag = dagbag.dags["jit_audit_export"]
    for _ in range(2):
        for notifier in dag.on_failure_callback:
            notifier(minimal_context(dagbag))
    logs = captured(caplog, capfd)
    assert logs.count("Chat webhook alert is off: there is no Airflow connection 'jit_audit_alerts_webhook'") == 1
    assert logs.count("SNS alert is off: there is no Airflow connection 'jit_audit_alerts_sns'") == 1


def test_enabled_false_switches_a_channel_off(dagbag, webhook_server, monkeypatch):
    monkeypatch.setenv(WEBHOOK_CONN, json.dumps({"conn_type": "http", "host": webhook_server.url,
                                                  "extra": {"enabled": "false"}}))
    MattermostFailureNotifier()(minimal_context(dagbag))
    assert webhook_server.requests == []


def test_full_url_in_host_with_mattermost_overrides(dagbag, webhook_server, monkeypatch):
    monkeypatch.setenv(WEBHOOK_CONN, json.dumps({
        "conn_type": "http", "host": webhook_server.url,
        "extra": {"username": "jit-audit", "icon_url": "https://example.com/i.png", "channel": "security-alerts"},
    }))
    MattermostFailureNotifier()(minimal_context(dagbag))
    (request,) = webhook_server.requests
    assert {key: request["json"][key] for key in ("username", "icon_url", "channel")} == {
        "username": "jit-audit", "icon_url": "https://example.com/i.png", "channel": "security-alerts"}
    # Without a task instance (a deadlocked run) the alert still names the DAG and run.
    assert "`jit_audit_export` failed" in request["json"]["text"]
    assert "unknown (Airflow reported no failed task)" in request["json"]["text"]



@pytest.mark.parametrize("problem", ["http_500", "unreachable"])
def test_a_failing_webhook_is_logged_and_never_raises(dagbag, monkeypatch, caplog, capfd, problem):
    caplog.set_level("DEBUG")
    server = WebhookServer(status=500) if problem == "http_500" else None
    port = server.httpd.server_port if server else free_port()
    monkeypatch.setenv(WEBHOOK_CONN, f"http://127.0.0.1:{port}/hooks/{TOKEN}")
    try:
        MattermostFailureNotifier()(minimal_context(dagbag))  # does not raise
    finally:
        if server:
            server.stop()
    logs = captured(caplog, capfd)
    assert "Chat webhook alert for the failed run scheduled__2026-11-25T00:00:00+00:00 was not sent" in logs
    assert f"http://127.0.0.1:{port}/hooks/***" in logs
    assert ("answered HTTP 500: internal error for /hooks/***" if server else "unreachable") in logs
    assert "The run's own failure is unaffected" in logs
    assert TOKEN not in logs


def test_a_failing_sns_topic_is_logged_and_never_raises(aws, dagbag, monkeypatch, caplog, capfd):
    caplog.set_level("INFO")
    connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                  "extra": {"region_name": "us-east-1", "endpoint_url": aws.endpoint_url,
                            "target_arn": "arn:aws:sns:us-east-1:123456789012:no-such-topic"}}
    monkeypatch.setenv(SNS_CONN, json.dumps(connection))
    SnsFailureNotifier()(minimal_context(dagbag))
    connection["extra"].pop("target_arn")
    monkeypatch.setenv(SNS_CONN, json.dumps(connection))
    SnsFailureNotifier()(minimal_context(dagbag))
    logs = captured(caplog, capfd)
    assert logs.count("SNS alert for the failed run scheduled__2026-11-25T00:00:00+00:00 was not sent") == 2
    assert "NotFound" in logs
    assert "connection 'jit_audit_alerts_sns' has no target_arn in its extra" in logs
