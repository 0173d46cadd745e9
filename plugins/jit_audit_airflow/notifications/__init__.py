"""Alerts: one per failed DAG run, and one per missed export deadline, to a chat webhook
(Mattermost/Slack) and Amazon SNS.

Both channels are configured by Airflow Connections and off without them; see docs/alerts.md. A
DAG wires them as::

    @dag(on_failure_callback=failure_notifiers(), default_args={"on_failure_callback": record_task_failure, ...})

and the export DAG adds ``deadline=export_deadline()`` (``[jit_audit] export_deadline_minutes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jit_audit_airflow.notifications.deadline import export_deadline, notify_missed_deadline
from jit_audit_airflow.notifications.failure import FAILURE_XCOM_KEY, record_task_failure
from jit_audit_airflow.notifications.mattermost import MattermostFailureNotifier
from jit_audit_airflow.notifications.sns import SnsFailureNotifier

__all__ = [
    "FAILURE_XCOM_KEY",
    "MattermostFailureNotifier",
    "SnsFailureNotifier",
    "export_deadline",
    "failure_notifiers",
    "notify_missed_deadline",
    "record_task_failure",
]


def failure_notifiers() -> list[Callable[[Any], None]]:
    """The DAG-level ``on_failure_callback`` of every jit-audit DAG: each notifier with its default Connection."""
    return [MattermostFailureNotifier(), SnsFailureNotifier()]
