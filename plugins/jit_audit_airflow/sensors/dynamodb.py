"""Sensors for point-in-time exports: is the moment restorable yet, and is the export done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from jit_audit.exports import (
    ExportFailed,
    ExportTimeTooOld,
    PointInTimeRecoveryDisabled,
    as_export_time,
    completion_state,
    describe_export,
    recovery_window,
)
from jit_audit_airflow.hooks.dynamodb import DynamoDBHookMixin
from jit_audit_airflow.triggers.dynamodb import DynamoDBExportTrigger


class _DynamoDBSensor(DynamoDBHookMixin, BaseSensorOperator):
    """What both sensors share: the AWS connection, and waiting on the triggerer unless told not to.

    :param aws_conn_id: Airflow connection for AWS
    :param deferrable: wait on the triggerer (True) or poke from a worker (False)
    """

    def __init__(
        self, *, aws_conn_id: str | None = "aws_default", deferrable: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.deferrable = deferrable


class DynamoDBPointInTimeWindowSensor(_DynamoDBSensor):
    """Wait until ``export_time`` lies inside the table's point-in-time recovery window.

    Fails at once, without retries, when point-in-time recovery is off or the time is already
    older than the window (no wait can fix either). A time newer than LatestRestorableDateTime
    (about five minutes behind now) is waited for; with ``deferrable=True`` the wait happens on the
    triggerer.
    """

    template_fields: Sequence[str] = ("table_name", "export_time", "export_from_time", "aws_conn_id")

    def __init__(
        self,
        *,
        table_name: str,
        export_time: datetime | str,
        export_from_time: datetime | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        self.table_name = table_name
        self.export_time = export_time
        self.export_from_time = export_from_time

    def poke(self, context: Any) -> bool:
        export_time = as_export_time(self.export_time)
        window = recovery_window(self.hook.client, self.table_name)
        try:
            if self.export_from_time:  # an incremental window must start inside the recovery window too
                window.verdict(as_export_time(self.export_from_time))
            verdict = window.verdict(export_time)
        except (PointInTimeRecoveryDisabled, ExportTimeTooOld) as error:
            raise AirflowFailException(str(error)) from error
        self.log.info(
            "Export time %s; restorable window [%s, %s] (PITR period %s days): %s",
            export_time.isoformat(), window.earliest, window.latest, window.recovery_period_days, verdict,
        )
        return verdict == "ready"

    def execute(self, context: Any) -> None:
        if not self.deferrable:
            super().execute(context)
            return
        self.check_or_defer(context)

    def check_or_defer(self, context: Any, event: Any = None) -> None:
        if self.poke(context):
            return
        self.defer(
            trigger=DateTimeTrigger(moment=datetime.now(UTC) + timedelta(seconds=self.poke_interval)),
            method_name="check_or_defer",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )


class DynamoDBExportSensor(_DynamoDBSensor):
    """Wait for a DynamoDB export to complete; deferrable by default.

    A FAILED export fails the task with DynamoDB's FailureCode and FailureMessage.

    :param export_arn: the export to wait for
    :param export_timeout: seconds to wait in all (templated; overrides ``timeout`` when set)
    :param aws_conn_id: Airflow connection for AWS
    :param deferrable: wait on the triggerer (True) or poke from a worker (False)
    """

    template_fields: Sequence[str] = ("export_arn", "export_timeout", "aws_conn_id")

    def __init__(self, *, export_arn: str, export_timeout: float | str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.export_arn = export_arn
        self.export_timeout = export_timeout

    def poke(self, context: Any) -> bool:
        try:
            return completion_state(describe_export(self.hook.client, self.export_arn)) == "COMPLETED"
        except ExportFailed as error:
            raise AirflowFailException(str(error)) from error

    def execute(self, context: Any) -> None:
        if self.export_timeout not in (None, ""):
            self.timeout = float(self.export_timeout)  # type: ignore[arg-type]
        if not self.deferrable:
            super().execute(context)
            return
        if self.poke(context):
            return
        self.defer(
            trigger=DynamoDBExportTrigger(
                export_arn=self.export_arn,
                poll_interval=self.poke_interval,
                aws_conn_id=self.aws_conn_id,
                region_name=self.hook.conn_region_name,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if not event or event.get("export_arn") != self.export_arn:
            raise AirflowException(f"Unexpected trigger event for {self.export_arn}: {event!r}")
        status = event.get("status")
        if status == "COMPLETED":
            self.log.info("Export %s COMPLETED with %s items", self.export_arn, event.get("item_count"))
            return
        if status == "FAILED":
            raise AirflowFailException(
                f"Export {self.export_arn} FAILED: {event.get('failure_code')}: {event.get('failure_message')}"
            )
        raise AirflowException(f"Could not check export {self.export_arn}: {event.get('message', event)}")
