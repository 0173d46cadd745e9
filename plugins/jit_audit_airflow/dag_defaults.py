"""The task defaults both DAGs share: owner, retries with backoff, a timeout, failure recording."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import conf

from jit_audit_airflow.notifications import record_task_failure


def default_args() -> dict[str, Any]:
    """Retries come from Airflow config (read where DAGs are parsed, not a Variable), e.g.
    ``AIRFLOW__JIT_AUDIT__TASK_RETRIES=0`` in tests; the delay doubles up to 30 minutes."""
    return {
        "owner": "platform-security",
        "retries": conf.getint("jit_audit", "task_retries", fallback=3),
        "retry_delay": timedelta(seconds=conf.getint("jit_audit", "retry_delay_seconds", fallback=120)),
        # A multiplier since Airflow 3.1 (True would be 1.0: a constant delay): 2, 4, 8 minutes...
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(minutes=30),
        # Keeps the task's error for the run's alert; sends nothing itself (see docs/alerts.md).
        "on_failure_callback": record_task_failure,
    }
