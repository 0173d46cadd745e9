"""One alert per failed DAG run: what the failure callbacks know, and the notifiers' shared rules.

Airflow 3 runs a DAG's ``on_failure_callback`` once, when the run is marked failed (after every
retry, however many mapped task instances failed): in the DAG processor, with a context built from
the task instance that failed last (``ti``) and ``reason``, but without the exception. So each task
keeps its own error as an XCom (:func:`record_task_failure`, its task-level ``on_failure_callback``,
which sends nothing) and the DAG-level notifiers read it back through :func:`failed_run_from_context`.

A notifier never raises out of the callback: a chat or SNS outage is logged, and the run's own
failure stays what Airflow reports.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

from jit_audit.alerts import Alert, FailedRun, one_line

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

#: The XCom (on the failed task instance itself) that carries its error to the run's alert.
FAILURE_XCOM_KEY = "jit_audit_failure"

# Connections already reported as absent or switched off in this process: said once, at info.
_reported_off: set[str] = set()


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered; the message never contains a secret (webhook token)."""


def record_task_failure(context: Any) -> None:
    """Task-level ``on_failure_callback``: keep this task's error (one line) for the run's alert.

    Runs in the task's own process after its last try failed, the only place Airflow 3 still has
    the exception. It sends nothing, so a run with many failed (mapped) tasks still alerts once.
    """
    error = context.get("exception")
    ti = context.get("ti")
    if error is None or ti is None:  # e.g. a task killed from outside: nothing to record
        return
    try:
        ti.xcom_push(key=FAILURE_XCOM_KEY, value={"error": one_line(error), "type": type(error).__name__})
    except Exception:
        log.warning("Could not record the error of %s for the failure alert", ti.task_id, exc_info=True)


def failed_run_from_context(context: Any) -> FailedRun:
    """The failed run as the DAG-level failure callback sees it (each part optional)."""
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    task = context.get("task")
    dag_id = str(getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "unknown"))
    run_id = str(context.get("run_id") or getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "unknown"))
    record = _recorded_failure(ti) if ti is not None else None
    return FailedRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=context.get("logical_date") or getattr(dag_run, "logical_date", None),
        task_id=getattr(ti, "task_id", None),
        map_index=getattr(ti, "map_index", None),
        try_number=getattr(ti, "try_number", None),
        retries=getattr(task, "retries", None) if task is not None else None,
        error=record.get("error") if record else None,
        error_type=record.get("type") if record else None,
        log_url=_log_url(ti),
        also_failed=_other_failed_tasks(dag, dag_id, run_id, ti),
        reason=context.get("reason"),
    )


def _recorded_failure(ti: Any) -> dict[str, Any] | None:
    # Through the supervisor (the DAG processor's Execution API client). dag.test() runs the DAG
    # callback in its own process without one: then the alert says the error was not recorded.
    try:
        record = ti.xcom_pull(task_ids=ti.task_id, key=FAILURE_XCOM_KEY, map_indexes=ti.map_index)
    except Exception as error:
        log.info("The failed task's recorded error is not readable here (%s): alerting without it", type(error).__name__)
        return None
    return record if isinstance(record, dict) else None


def _log_url(ti: Any) -> str | None:
    if ti is None:
        return None
    try:
        return str(ti.log_url)  # {[api] base_url}/dags/<dag>/runs/<run>/tasks/<task>[/mapped/<i>]?try_number=<n>
    except Exception:
        return None


def _other_failed_tasks(dag: Any, dag_id: str, run_id: str, ti: Any) -> tuple[str, ...]:
    if ti is None:
        return ()
    try:
        states = ti.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    except Exception:
        return ()
    task_ids = set(getattr(dag, "task_ids", ()))
    primary = (ti.task_id, ti.map_index if ti.map_index is not None else -1)
    return tuple(sorted(state_key_label(key, task_ids) for key, state in states.items()
                        if state == "failed" and _split(key, task_ids) != primary))


def _split(key: str, task_ids: set[str]) -> tuple[str, int]:
    """Task-state keys are ``task_id`` or, for a mapped instance, ``task_id_<map index>``."""
    if key in task_ids:
        return key, -1
    task_id, _, index = key.rpartition("_")
    return (task_id, int(index)) if task_id and index.isdigit() else (key, -1)


def state_key_label(key: str, task_ids: set[str]) -> str:
    """A task-state key as alerts show it: ``task`` or ``task[3]`` (mapped task ids never end in ``_<n>``)."""
    task_id, index = _split(key, task_ids)
    return task_id if index < 0 else f"{task_id}[{index}]"


class FailureAlertNotifier(BaseNotifier):
    """Base of the alert notifiers: configured by a Connection, off without one.

    Calling the notifier (what Airflow does with a DAG-level ``on_failure_callback``) sends the
    failed run's alert; :meth:`send` sends any other alert through the same channel (the deadline
    callback's). Subclasses implement :meth:`deliver`. Neither ever raises.
    """

    #: For log lines: which kind of alert this is.
    kind = "Alert"
    # Our template fields are connection ids and names: plain strings, never native objects. Set
    # here, Templater does not ask the DAG (which, under dag.test(), is a SerializedDAG).
    render_template_as_native_obj = False

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # dag.test() hands DAG callbacks the scheduler's SerializedDAG, which cannot make a Jinja
        # environment (the DAG processor passes the real DAG): fall back to Airflow's plain one.
        if jinja_env is None and not hasattr(context.get("dag"), "get_template_env"):
            jinja_env = self.get_template_env(dag=None)
        super().render_template_fields(context, jinja_env)

    def __call__(self, *args: Any) -> None:
        context: Any = args[0] if len(args) == 1 else {}
        self.send(context, failed_run_from_context,
                  what=f"the failed run {context.get('run_id', '?')}", unaffected="The run's own failure is unaffected.")

    def send(self, context: Any, build: Callable[[Any], Alert], *, what: str, unaffected: str = "") -> bool:
        """Build the alert from ``context`` and deliver it; True when sent, False when off or not sent.

        Never raises: a failure is one error line naming ``what`` the alert was for, without secrets.
        """
        # BaseNotifier renders template fields in place, for good; a DAG object (and with it this
        # notifier) can outlive one run, so each call works on its own copy.
        notifier = copy.copy(self)
        try:
            notifier._update_context(context)
            notifier.render_template_fields(context)
            return notifier.deliver(build(context))
        except Exception as error:
            self.log.error(
                "%s for %s was not sent: %s: %s.%s", self.kind, what, type(error).__name__,
                notifier.redact(one_line(error)), f" {unaffected}" if unaffected else "",
            )
            return False

    def notify(self, context: Any) -> None:
        """BaseNotifier's entry point: the failed run's alert (without :meth:`send`'s error handling)."""
        self.deliver(failed_run_from_context(context))

    def deliver(self, alert: Alert) -> bool:
        """Send ``alert`` through this channel; False when the channel is off. Raises on failure."""
        raise NotImplementedError

    def redact(self, text: str) -> str:
        """Remove this notifier's secrets from a log line (the webhook token)."""
        return text

    def alert_connection(self, conn_id: str | None) -> Connection | None:
        """The Connection that configures this channel, or None when it is absent or switched off."""
        from airflow.sdk import BaseHook

        if not conn_id:
            return None
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            _report_off_once(conn_id, f"{self.kind} is off: there is no Airflow connection {conn_id!r}")
            return None
        if str(conn.extra_dejson.get("enabled", True)).lower() in ("false", "0", "no", "off"):
            _report_off_once(conn_id, f"{self.kind} is off: connection {conn_id!r} has enabled=false")
            return None
        return conn


def _report_off_once(conn_id: str, message: str) -> None:
    if conn_id not in _reported_off:
        _reported_off.add(conn_id)
        log.info(message)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
