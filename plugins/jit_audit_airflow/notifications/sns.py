"""Failure alerts to an Amazon SNS topic, through the Amazon provider's ``SnsNotifier``.

Configured by an AWS Connection (default ``jit_audit_alerts_sns``): its extra holds ``target_arn``
(the topic, or any SNS target ARN) and, as for any AWS Connection, optionally ``region_name``,
``endpoint_url``, ``role_arn``...; credentials come from the Connection or the default chain.
``enabled: false`` in the extra switches SNS alerts off, as does removing the Connection::

    AIRFLOW_CONN_JIT_AUDIT_ALERTS_SNS='{"conn_type": "aws",
        "extra": {"target_arn": "arn:aws:sns:eu-west-1:123456789012:jit-audit-alerts", "region_name": "eu-west-1"}}'

The message is plain text (e-mail and SMS subscribers read it as is); the subject is the alert's
headline; message attributes ``dag_id``, ``run_id``, ``task_id`` and, for a failed export,
``failure_code`` allow subscription filter policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from jit_audit.alerts import Alert, MissedDeadline, message_attributes, render_text, subject
from jit_audit_airflow.notifications.failure import (
    AlertDeliveryError,
    FailureAlertNotifier,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_CONN_ID = "jit_audit_alerts_sns"


class SnsFailureNotifier(FailureAlertNotifier):
    """DAG-level ``on_failure_callback``: one SNS message per failed run (and the deadline callback's).

    :param aws_conn_id: AWS Connection with ``target_arn`` in its extra (absent: SNS alerts are off)
    :param target_arn: overrides the Connection's ``target_arn``
    """

    kind = "SNS alert"
    template_fields: Sequence[str] = ("aws_conn_id", "target_arn")

    def __init__(self, *, aws_conn_id: str | None = DEFAULT_CONN_ID, target_arn: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.target_arn = target_arn

    @cached_property
    def connection(self) -> Connection | None:
        """The alerts' AWS Connection, or None when it is absent or switched off."""
        return self.alert_connection(self.aws_conn_id)

    def deliver(self, alert: Alert) -> bool:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        if self.connection is None:
            return False
        target_arn = self.target_arn or self.connection.extra_dejson.get("target_arn")
        if not target_arn:
            raise AlertDeliveryError(f"connection {self.aws_conn_id!r} has no target_arn in its extra")
        sns = SnsNotifier(
            aws_conn_id=self.aws_conn_id,
            target_arn=target_arn,
            message=render_text(alert),
            subject=subject(alert),
            message_attributes=message_attributes(alert),
        )
        sns.notify({})  # not sns(context): the message is final text, never a Jinja template
        kind = "Missed-deadline" if isinstance(alert, MissedDeadline) else "Failure"
        self.log.info("%s alert for %s / %s published to %s", kind, alert.dag_id, alert.run_id, target_arn)
        return True
