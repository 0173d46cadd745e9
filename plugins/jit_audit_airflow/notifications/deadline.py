"""The export's deadline: a daily run not done in time alerts once, through the failure alerts' channels.

:func:`export_deadline` is the ``deadline`` of ``jit_audit_export``: Airflow's ``DeadlineAlert``,
``[jit_audit] export_deadline_minutes`` (Airflow configuration, read where the DAG is parsed, like
``task_retries``; default 360, ``0`` switches it off) after the run's logical date, which with
Airflow 3's default cron *trigger* timetable is the end of its data interval. The scheduler creates
the deadline with the run, drops it when the run succeeds in time and, once it passes with the run
not successful, queues :func:`notify_missed_deadline` (an ``AsyncCallback``) on the triggerer, once.

The callback gets a small context: the DAG run as the REST API shows it (its state when the
deadline passed) and the deadline. It asks the triggerer's supervisor (the Execution API) for the
run's current state and task states, lets :func:`jit_audit.alerts.deadline_alert_skip_reason`
decide whether an alert is due (not for a run that already failed: its failure alert went out; not
for a run queued after its deadline, e.g. a backfill) and sends it through ``failure_notifiers()``:
the same Connections, the same webhook and SNS code. The sending runs in a thread, as the webhook
post and the SNS publish block and the triggerer's event loop runs every deferred sensor too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

# airflow.sdk exports the deadline classes at run time; its type stub (3.3.2) does not list them yet.
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, conf  # type: ignore[attr-defined]

from jit_audit.alerts import MissedDeadline, deadline_alert_skip_reason, format_duration, run_url
from jit_audit_airflow.notifications.failure import FailureAlertNotifier, state_key_label

log = logging.getLogger(__name__)

#: ``[jit_audit] export_deadline_minutes`` when it is not set: six hours after the data interval ends.
DEFAULT_DEADLINE_MINUTES = 360
# Task instance states that mean "done" (nothing to wait for) or "not started yet" (None).
_NOT_WAITING = {"success", "failed", "skipped", "upstream_failed", "removed", None}


def export_deadline() -> DeadlineAlert | None:
    """The export DAG's ``DeadlineAlert``, or None when ``[jit_audit] export_deadline_minutes`` is 0.

    A bad value (not an integer, negative) fails the DAG's import, naming the option.
    """
    minutes = conf.getint("jit_audit", "export_deadline_minutes", fallback=DEFAULT_DEADLINE_MINUTES)
    if minutes < 0:
        raise ValueError(f"[jit_audit] export_deadline_minutes must be 0 (off) or more minutes, not {minutes}")
    if minutes == 0:
        return None
    interval = timedelta(minutes=minutes)
    return DeadlineAlert(
        # The logical date: the end of the data interval with the default cron trigger timetable.
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval,
        callback=AsyncCallback(notify_missed_deadline),
        name=f"Exported within {format_duration(interval)} after the data interval",
    )


async def notify_missed_deadline(context: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """``AsyncCallback`` run by the triggerer when a run misses its deadline: at most one alert.

    Returns one line saying what was sent (Airflow keeps it as the callback's output).
    """
    return await asyncio.to_thread(send_missed_deadline_alert, context or {})


def send_missed_deadline_alert(context: Any, notifiers: Iterable[FailureAlertNotifier] | None = None) -> str:
    """Build the missed deadline from the callback's context and send it, unless no alert is due.

    ``notifiers`` defaults to the DAGs' ``failure_notifiers()``. Never raises.
    """
    try:
        missed = missed_deadline_from_context(context)
    except Exception as error:
        log.error("The missed-deadline alert was not sent: its context is unreadable (%s: %s)",
                  type(error).__name__, error)
        return "not sent: unreadable context"
    reason = deadline_alert_skip_reason(missed)
    if reason:
        log.info("No alert for the missed deadline of %s / %s: %s", missed.dag_id, missed.run_id, reason)
        return f"not sent: {reason}"
    if notifiers is None:
        from jit_audit_airflow.notifications import failure_notifiers

        notifiers = [notifier for notifier in failure_notifiers() if isinstance(notifier, FailureAlertNotifier)]
    outcome = []
    for notifier in notifiers:
        sent = notifier.send(dict(context), _always(missed), what=f"the missed deadline of run {missed.run_id}")
        outcome.append(f"{notifier.kind}: {'sent' if sent else 'not sent'}")
    log.info("Missed deadline of %s / %s (%s late): %s", missed.dag_id, missed.run_id,
             format_duration(missed.late_by), "; ".join(outcome))
    return "; ".join(outcome)


def _always(missed: MissedDeadline) -> Callable[[Any], MissedDeadline]:
    return lambda _context: missed


def missed_deadline_from_context(context: Any, now: datetime | None = None) -> MissedDeadline:
    """The missed deadline as the callback sees it: Airflow's context, then the run as it is now.

    Airflow 3.3 passes ``{"dag_run": <the DAG run, REST API JSON>, "deadline": {"id", "deadline_time"}}``.
    The run's current state and task states come from the supervisor when there is one (on the
    triggerer); without one the context's state stands and the tasks are unknown.
    """
    dag_run = context.get("dag_run") or {}
    deadline = _moment((context.get("deadline") or {}).get("deadline_time"))
    if deadline is None:
        raise ValueError("no deadline_time in the context")
    dag_id = str(dag_run.get("dag_id") or "unknown")
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "unknown")
    state, waiting = _current_run(dag_id, run_id)
    return MissedDeadline(
        dag_id=dag_id,
        run_id=run_id,
        deadline=deadline,
        noticed_at=now or datetime.now(UTC),
        logical_date=_moment(dag_run.get("logical_date")),
        data_interval_end=_moment(dag_run.get("data_interval_end")),
        queued_at=_moment(dag_run.get("queued_at")),
        start_date=_moment(dag_run.get("start_date")),
        end_date=_moment(dag_run.get("end_date")),
        run_type=dag_run.get("run_type"),
        run_state=state or dag_run.get("state"),
        waiting_tasks=waiting,
        run_url=run_url(conf.get("api", "base_url", fallback="http://localhost:8080/"), dag_id, run_id),
    )


def _current_run(dag_id: str, run_id: str) -> tuple[str | None, tuple[tuple[str, str], ...] | None]:
    """The run's state now and its task instances that are waiting or working, through the supervisor."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    try:
        state: str | None = _state_name(RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id))
    except Exception as error:
        log.info("The run's current state is not readable here (%s): using the deadline's", type(error).__name__)
        state = None
    try:
        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    except Exception as error:
        log.info("The run's task states are not readable here (%s): alerting without them", type(error).__name__)
        return state, None
    waiting = sorted((state_key_label(key, set()), _state_name(value)) for key, value in states.items()
                     if value not in _NOT_WAITING)
    return state, tuple(waiting)


def _state_name(state: Any) -> str:
    """``running`` for ``DagRunState.RUNNING`` (the supervisor answers with Airflow's str enums) or ``"running"``."""
    return str(state.value) if isinstance(state, Enum) else str(state)


def _moment(value: Any) -> datetime | None:
    """A timezone-aware datetime from the context (a datetime, or ISO text in the REST API's JSON)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
