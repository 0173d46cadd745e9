"""The Airflow components, provider-test style: build each operator, sensor or trigger directly and
call ``execute`` / ``poke`` / ``run`` against the emulator.

The AWS connection is ``aws_default`` from ``AIRFLOW_CONN_AWS_DEFAULT``, which the ``emulator``
fixture points at the emulator; every test depends on ``aws`` (the emulator, reset) for that.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from jit_audit.exports import describe_export, find_or_start_export, recovery_window, table_arn
from jit_audit_airflow.operators.dynamodb import DynamoDBPointInTimeExportOperator
from jit_audit_airflow.sensors.dynamodb import DynamoDBExportSensor, DynamoDBPointInTimeWindowSensor
from jit_audit_airflow.triggers.dynamodb import DynamoDBExportTrigger
from jit_audit_dev.seed import seed

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
RAW_PREFIX = "exports/raw/table=jit_audit"
CONTEXT: dict[str, Any] = {}
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/jit_audit/export/01795700000000-0123abcd"


def _export_time() -> datetime:
    return (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


@pytest.fixture()
def ddb(aws):
    return aws.client("dynamodb")


@pytest.fixture()
def table(aws) -> int:
    """The seeded table (PITR enabled) and the export bucket; returns the number of items."""
    events = seed(aws.resource("dynamodb"), TABLE, requests=40).events
    aws.client("s3").create_bucket(Bucket=BUCKET)
    return events


def _start(ddb: Any, bucket: str = BUCKET) -> str:
    return find_or_start_export(ddb, table_name=TABLE, export_time=_export_time(), bucket=bucket,
                                s3_prefix=RAW_PREFIX).export_arn


def _first_event(trigger: DynamoDBExportTrigger, timeout: float = 10.0) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))


def _window_sensor(export_time: datetime | str, **kwargs: Any) -> DynamoDBPointInTimeWindowSensor:
    return DynamoDBPointInTimeWindowSensor(task_id="wait_for_restorable_time", table_name=TABLE,
                                           export_time=export_time, **kwargs)


# --------------------------------------------------------------------------- window sensor


def test_window_sensor_fails_without_retries_when_pitr_is_disabled(ddb, table):
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    with pytest.raises(AirflowFailException, match="not ENABLED"):
        _window_sensor(_export_time()).poke(CONTEXT)


def test_window_sensor_fails_for_a_time_older_than_the_window(ddb, table):
    earliest = recovery_window(ddb, TABLE).earliest
    assert earliest is not None
    with pytest.raises(AirflowFailException) as caught:
        _window_sensor(earliest - timedelta(days=2)).poke(CONTEXT)
    assert "earliest restorable time" in str(caught.value)
    assert earliest.date().isoformat() in str(caught.value)


def test_window_sensor_waits_for_a_too_new_time_and_passes_inside(table):
    assert _window_sensor(datetime.now(UTC) - timedelta(seconds=10)).poke(CONTEXT) is False
    assert _window_sensor(_export_time()).poke(CONTEXT) is True
    # ISO text from XCom, with or without a zone, is read as UTC.
    assert _window_sensor(_export_time().isoformat()).poke(CONTEXT) is True
    assert _window_sensor(_export_time().replace(tzinfo=None).isoformat()).poke(CONTEXT) is True


def test_deferrable_window_sensor_defers_to_a_datetime_trigger_while_too_new(table):
    sensor = _window_sensor(datetime.now(UTC) - timedelta(seconds=10), poke_interval=45, timeout=600)
    before = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as caught:
        sensor.execute(CONTEXT)
    deferred = caught.value
    assert isinstance(deferred.trigger, DateTimeTrigger)
    assert before + timedelta(seconds=45) <= deferred.trigger.moment <= datetime.now(UTC) + timedelta(seconds=45)
    assert deferred.method_name == "check_or_defer"
    assert deferred.timeout == timedelta(seconds=600)

    # Inside the window it returns at once, deferring nothing (also on resume from the trigger).
    ready = _window_sensor(_export_time(), timeout=600)
    assert ready.execute(CONTEXT) is None
    assert ready.check_or_defer(CONTEXT, event=None) is None


# --------------------------------------------------------------------------- export operator


def test_export_operator_returns_the_arn_and_a_second_run_reuses_it(ddb, table):
    export_time = _export_time()

    def operator() -> DynamoDBPointInTimeExportOperator:
        return DynamoDBPointInTimeExportOperator(task_id="start_export", table_name=TABLE,
                                                 export_time=export_time.isoformat(), s3_bucket=BUCKET,
                                                 s3_prefix=RAW_PREFIX)

    arn = operator().execute(CONTEXT)
    assert arn.startswith(table_arn(ddb, TABLE) + "/export/")
    description = describe_export(ddb, arn)
    assert description["S3Bucket"] == BUCKET
    assert description["S3Prefix"] == RAW_PREFIX
    assert description["ExportTime"] == export_time

    assert operator().execute(CONTEXT) == arn
    summaries = ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"]
    assert [summary["ExportArn"] for summary in summaries] == [arn]


def test_export_operator_fails_without_retries_for_a_time_dynamodb_refuses(ddb, table):
    earliest = recovery_window(ddb, TABLE).earliest
    assert earliest is not None
    operator = DynamoDBPointInTimeExportOperator(task_id="start_export", table_name=TABLE,
                                                 export_time=earliest - timedelta(days=1), s3_bucket=BUCKET,
                                                 s3_prefix=RAW_PREFIX)
    with pytest.raises(AirflowFailException, match="refused export time"):
        operator.execute(CONTEXT)
    assert ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"] == []


# --------------------------------------------------------------------------- export sensor


def _slow_next_export(aws: Any, seconds: float) -> None:
    """The emulator's fault endpoint: the next export it starts stays IN_PROGRESS this long (the
    session's emulator finishes exports in 1 s, which a busy machine can outlast before the sensor asks)."""
    import json
    import urllib.request

    from jit_audit_dev.emulator import FAULTS_PATH

    body = {"service": "dynamodb", "operation": "ExportTableToPointInTime", "count": 1, "export_seconds": seconds}
    request = urllib.request.Request(aws.endpoint_url + FAULTS_PATH, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def test_deferrable_export_sensor_defers_with_the_arn_and_export_timeout(aws, ddb, table):
    _slow_next_export(aws, 120)
    arn = _start(ddb)
    assert describe_export(ddb, arn)["ExportStatus"] == "IN_PROGRESS"
    sensor = DynamoDBExportSensor(task_id="wait_for_export", export_arn=arn, export_timeout="90", poke_interval=7)
    with pytest.raises(TaskDeferred) as caught:
        sensor.execute(CONTEXT)
    deferred = caught.value
    assert isinstance(deferred.trigger, DynamoDBExportTrigger)
    assert deferred.trigger.export_arn == arn
    assert deferred.trigger.poll_interval == 7
    assert deferred.trigger.aws_conn_id == "aws_default"
    assert deferred.trigger.region_name == "us-east-1"
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=90)


def test_export_sensor_execute_complete_judges_the_event():
    sensor = DynamoDBExportSensor(task_id="wait_for_export", export_arn=ARN)
    assert sensor.execute_complete(CONTEXT, {"status": "COMPLETED", "export_arn": ARN, "item_count": 3}) is None

    failed = {"status": "FAILED", "export_arn": ARN, "failure_code": "S3NoSuchBucket",
              "failure_message": "The specified bucket does not exist: nowhere"}
    with pytest.raises(AirflowFailException) as caught:
        sensor.execute_complete(CONTEXT, failed)
    assert "S3NoSuchBucket" in str(caught.value)
    assert "The specified bucket does not exist: nowhere" in str(caught.value)
    assert ARN in str(caught.value)

    foreign = {"status": "COMPLETED", "export_arn": ARN.replace("0123abcd", "ffffffff")}
    for event in (foreign, None, {"status": "error", "export_arn": ARN, "message": "throttled"}):
        with pytest.raises(AirflowException) as caught:
            sensor.execute_complete(CONTEXT, event)
        assert type(caught.value) is AirflowException  # retryable, unlike AirflowFailException
    assert "throttled" in str(caught.value)


# --------------------------------------------------------------------------- trigger


def test_trigger_serializes_to_an_importable_classpath_and_its_kwargs():
    trigger = DynamoDBExportTrigger(export_arn=ARN, poll_interval=0.2, aws_conn_id="aws_other",
                                    region_name="eu-west-1")
    classpath, kwargs = trigger.serialize()
    assert classpath == "jit_audit_airflow.triggers.dynamodb.DynamoDBExportTrigger"
    assert kwargs == {"export_arn": ARN, "poll_interval": 0.2, "aws_conn_id": "aws_other",
                      "region_name": "eu-west-1"}
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert isinstance(rebuilt, DynamoDBExportTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_trigger_reports_completed_and_the_sensor_then_succeeds(ddb, table):
    arn = _start(ddb)
    started = time.monotonic()
    event = _first_event(DynamoDBExportTrigger(export_arn=arn, poll_interval=0.2))
    assert time.monotonic() - started >= 0.5  # it waited for IN_PROGRESS to end
    assert event["status"] == "COMPLETED"
    assert event["export_arn"] == arn
    assert event["item_count"] == table
    assert event["failure_code"] is None

    sensor = DynamoDBExportSensor(task_id="wait_for_export", export_arn=arn, export_timeout=60)
    assert sensor.execute_complete(CONTEXT, event) is None
    assert sensor.poke(CONTEXT) is True
    assert sensor.execute(CONTEXT) is None  # COMPLETED already: no deferral


def test_trigger_reports_failed_with_dynamodbs_reason(ddb, table):
    arn = _start(ddb, bucket="jit-audit-no-such-bucket")
    event = _first_event(DynamoDBExportTrigger(export_arn=arn, poll_interval=0.2))
    assert event["status"] == "FAILED"
    assert event["export_arn"] == arn
    assert event["failure_code"] == "S3NoSuchBucket"
    assert "jit-audit-no-such-bucket" in event["failure_message"]

    sensor = DynamoDBExportSensor(task_id="wait_for_export", export_arn=arn)
    with pytest.raises(AirflowFailException, match="S3NoSuchBucket"):
        sensor.execute_complete(CONTEXT, event)
    with pytest.raises(AirflowFailException, match="S3NoSuchBucket"):
        sensor.poke(CONTEXT)


def test_trigger_reports_an_error_event_for_an_unknown_export(table):
    event = _first_event(DynamoDBExportTrigger(export_arn=ARN, poll_interval=0.2))
    assert event["status"] == "error"
    assert event["export_arn"] == ARN
    assert "ExportNotFoundException" in event["message"] or "not found" in event["message"]


# --------------------------------------------------------------------------- failing fast


def test_export_operator_fails_without_retries_when_pitr_is_disabled(ddb, table):
    """With PITR off, DynamoDB's PointInTimeRecoveryUnavailableException fails the task without retries."""
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    operator = DynamoDBPointInTimeExportOperator(task_id="start_export", table_name=TABLE,
                                                 export_time=_export_time(), s3_bucket=BUCKET,
                                                 s3_prefix=RAW_PREFIX)
    with pytest.raises(AirflowFailException):
        operator.execute(CONTEXT)
