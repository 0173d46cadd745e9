"""Failure alerts, one per failed DAG run: a chat webhook (Mattermost/Slack) and Amazon SNS.

Both are configured by Airflow Connections and off without them; see docs/alerts.md. A DAG wires
them as::

    @dag(on_failure_callback=failure_notifiers(), default_args={"on_failure_callback": record_task_failure, ...})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jit_audit_airflow.notifications.failure import FAILURE_XCOM_KEY, record_task_failure
from jit_audit_airflow.notifications.mattermost import MattermostFailureNotifier
from jit_audit_airflow.notifications.sns import SnsFailureNotifier

__all__ = [
    "FAILURE_XCOM_KEY",
    "MattermostFailureNotifier",
    "SnsFailureNotifier",
    "failure_notifiers",
    "record_task_failure",
]


def failure_notifiers() -> list[Callable[[Any], None]]:
    """The DAG-level ``on_failure_callback`` of every jit-audit DAG: each notifier with its default Connection."""
    return [MattermostFailureNotifier(), SnsFailureNotifier()]
