"""What an alert says: plain Python, so the text can be tested without Airflow.

Two kinds of alert: a failed run (:class:`FailedRun`) and a run that missed its deadline
(:class:`MissedDeadline`). The Airflow side (``jit_audit_airflow.notifications``) turns a callback's
context into one of them; everything a reader sees (the headline, the facts, DynamoDB's reason for
a failed export, what to do next) and whether a missed deadline is worth an alert at all is
decided here. The same text goes to the chat webhook (Markdown) and to SNS (plain text, for e-mail
and SMS subscribers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

#: The longest error line an alert carries; the full traceback stays in the task log.
MAX_ERROR_CHARS = 500
#: SNS subjects must be ASCII, without line breaks, and shorter than 100 characters.
MAX_SUBJECT_CHARS = 99

EXPORT_DAG = "jit_audit_export"
ADHOC_DAG = "jit_audit_adhoc"

# The sensor's message for a FAILED export: "Export <arn> FAILED: <FailureCode>: <FailureMessage>".
_EXPORT_FAILED = re.compile(r"Export (?P<arn>\S+) FAILED: (?P<code>[^:\s]+): (?P<message>.*)\Z", re.DOTALL)
_TIMEOUT_TYPES = {"AirflowSensorTimeout", "TaskDeferralTimeout"}


@dataclass(frozen=True)
class FailedRun:
    """One failed DAG run, as much as the failure callback could learn about it.

    Every field but the DAG and run may be unknown (``None``): Airflow can fail a run without a
    failed task (a deadlock), and a task killed from outside Python reports no error.
    """

    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    task_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    retries: int | None = None
    error: str | None = None
    error_type: str | None = None
    log_url: str | None = None
    also_failed: tuple[str, ...] = field(default_factory=tuple)
    reason: str | None = None

    @property
    def task_label(self) -> str | None:
        """``task`` or ``task[3]`` for one mapped task instance."""
        if self.task_id is None:
            return None
        return self.task_id if self.map_index is None or self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @property
    def export_failure(self) -> tuple[str, str] | None:
        """DynamoDB's ``(FailureCode, FailureMessage)`` when the error is a FAILED export."""
        match = _EXPORT_FAILED.search(self.error or "")
        return (match.group("code"), match.group("message")) if match else None


@dataclass(frozen=True)
class MissedDeadline:
    """A DAG run that was not done by its deadline, as the deadline callback saw it.

    ``deadline`` is when the run should have been done, ``noticed_at`` when the callback ran (the
    scheduler notices a missed deadline within seconds). ``run_state`` is the run's state then and
    ``waiting_tasks`` its task instances that are working or waiting (running, queued, deferred,
    up for retry...), as ``(task label, state)``; ``None`` when they could not be read. Every time
    is timezone-aware.
    """

    dag_id: str
    run_id: str
    deadline: datetime
    noticed_at: datetime
    logical_date: datetime | None = None
    data_interval_end: datetime | None = None
    queued_at: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    run_type: str | None = None
    run_state: str | None = None
    waiting_tasks: tuple[tuple[str, str], ...] | None = None
    run_url: str | None = None

    @property
    def late_by(self) -> timedelta:
        """How far past its deadline the run was when the callback ran."""
        return max(self.noticed_at - self.deadline, timedelta(0))

    @property
    def allowed(self) -> timedelta | None:
        """The deadline's interval: the time from the logical date (Airflow's reference) to the deadline."""
        return self.deadline - self.logical_date if self.logical_date is not None else None


#: Either kind of alert: both render through :func:`subject`, :func:`render_text`, :func:`chat_payload`...
Alert = FailedRun | MissedDeadline


def deadline_alert_skip_reason(missed: MissedDeadline) -> str | None:
    """Why a missed deadline needs no alert (one line, for the log), or None when it does.

    * A run that has already failed sent its failure alert: a second message for it says nothing new.
    * A run queued after its deadline had passed was late before it started: a backfill, a re-run of
      a past date, a manual run with a past logical date or the first run after unpausing. Alerting
      for those would page someone for every backfilled date.
    """
    if missed.run_state == "failed":
        return "the run has failed: its failure alert covers it"
    if missed.queued_at is not None and missed.queued_at >= missed.deadline:
        return (f"the run was queued at {_iso(missed.queued_at)}, after its deadline {_iso(missed.deadline)} had passed "
                "(a backfill, a re-run of a past date or the first run after unpausing): it was late before it started")
    return None


def format_duration(duration: timedelta) -> str:
    """A duration for people: its two largest units (``6 h``, ``4 min 10 s``, ``1 day 2 h``)."""
    seconds = int(duration.total_seconds())
    if seconds < 1:
        return "less than 1 s"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else "", f"{seconds} s" if seconds else ""]
    first = next(index for index, part in enumerate(parts) if part)
    return " ".join(part for part in parts[first:first + 2] if part)


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The Airflow 3 UI's page of one DAG run (quoted as Airflow quotes the task log link)."""
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"


def one_line(error: BaseException | str, limit: int = MAX_ERROR_CHARS) -> str:
    """The error on one line (whitespace and line breaks collapsed), cut to ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_url(url: str) -> str:
    """A webhook URL fit for logs: scheme, host, port and the first path segment; the rest is secret.

    ``https://chat.example.com/hooks/abc123`` -> ``https://chat.example.com/hooks/***``. Query,
    fragment and user info are dropped: incoming webhooks carry their token in the path.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    segments = [segment for segment in parts.path.split("/") if segment]
    path = f"/{segments[0]}/***" if len(segments) > 1 else "/***" if segments else ""
    return f"{parts.scheme or '?'}://{host}{port}{path}"


def next_steps(failure: FailedRun) -> str:
    """What the on-call engineer should do, from the DAG, the task and the error."""
    error = failure.error or ""
    task = failure.task_id
    if "older than the point-in-time recovery window" in error:
        return (
            "This date can no longer be exported: it is older than the table's point-in-time recovery "
            "window (the error gives the earliest restorable time). Clearing or retrying cannot help. "
            "Record the gap for the compliance review; the ad-hoc query DAG can still pull that day's "
            "events from the live table if they are there."
        )
    if "Point-in-time recovery is not ENABLED" in error:
        return (
            "Enable point-in-time recovery on the table (exports can only cover times after it was "
            "enabled), then clear wait_for_restorable_time and its downstream tasks."
        )
    export_failure = failure.export_failure
    if export_failure:
        code, _message = export_failure
        if code == "S3NoSuchBucket":
            cause = ("DynamoDB found no export bucket: check the Variable jit_audit_export_bucket (and "
                     "jit_audit_export_bucket_owner) or create the bucket.")
        elif "AccessDenied" in code or "Forbidden" in code:
            cause = ("DynamoDB may not write to the bucket: check the bucket policy, "
                     "jit_audit_export_bucket_owner and, with SSE-KMS, the key policy of jit_audit_export_kms_key_id.")
        else:
            cause = f"Look up FailureCode {code} in DynamoDB's export documentation and fix its cause."
        return (
            f"DynamoDB failed the export with FailureCode {code}. {cause} Then clear start_export with "
            "its downstream tasks: a FAILED export is never reused, the next attempt starts a new one."
        )
    if failure.error_type in _TIMEOUT_TYPES and task == "wait_for_export":
        return (
            "DynamoDB had not finished the export within jit_audit_export_timeout_minutes. Check it "
            "with DescribeExport; if it is still IN_PROGRESS, raise the Variable and clear "
            "wait_for_export (it waits on the same export, nothing is started twice)."
        )
    if failure.error_type in _TIMEOUT_TYPES and task == "wait_for_restorable_time":
        return (
            "The table's latest restorable time did not reach the export time in time: check "
            "point-in-time recovery (LatestRestorableDateTime) and clear wait_for_restorable_time."
        )
    if failure.error_type == "AirflowTaskTimeout":
        return (
            f"{task or 'The task'} ran longer than its execution_timeout (see docs/alerts.md): look for a "
            "slow or stuck AWS call in the log, then clear the task to retry once fixed."
        )
    if "Could not connect to the endpoint URL" in error or "Connect timeout on endpoint URL" in error:
        return (
            "AWS could not be reached (every retry failed to connect). Check the AWS connection's "
            "endpoint_url and region, VPC endpoints, proxies and DNS from the workers, then clear "
            f"{task or 'the task'}: nothing was half-published, and a re-run reuses any export already started."
        )
    if failure.reason and failure.reason != "task_failure":
        return (f"Airflow failed the run itself ({failure.reason}): check the run's graph for tasks that "
                "could not be scheduled, fix the cause and clear them.")
    specific = _TASK_STEPS.get((failure.dag_id, task or ""))
    if specific:
        return specific
    if failure.dag_id == EXPORT_DAG:
        return ("Fix the cause shown in the error and the log, then clear the task to retry; "
                "backfills are safe to re-run (a date is exported and published idempotently).")
    return "Fix the cause shown in the error and the log, then clear the task to retry once fixed."


_TASK_STEPS: dict[tuple[str, str], str] = {
    (EXPORT_DAG, "plan"): (
        "A jit_audit_* Variable has a value the export cannot use (the error names it). Fix the "
        "Variable, then clear plan and its downstream tasks. Nothing was sent to AWS."
    ),
    (EXPORT_DAG, "list_data_files"): (
        "The export's manifests disagree with DescribeExport or could not be read. Nothing was published "
        "and an earlier snapshot of this date is untouched. Inspect the export named in the error; clear "
        "the task to retry once fixed."
    ),
    (EXPORT_DAG, "flatten_data_files"): (
        "A data file failed its MD5/item-count check or holds a line that is not DynamoDB JSON (the error "
        "names the file and line). Nothing was published and an earlier snapshot of this date is "
        "untouched. Clear the task to retry once fixed: it flattens its whole group of files again."
    ),
    (EXPORT_DAG, "publish_snapshot"): (
        "Publishing stopped before _SUCCESS (the counts did not reconcile, or S3 failed); readers "
        "ignore the date until _SUCCESS exists. Fix the cause and clear publish_snapshot: re-running "
        "it is safe and writes identical parts."
    ),
    (EXPORT_DAG, "check_retention"): (
        "The snapshot is published, but the retention rules are violated (the error lists each "
        "finding and its fix; the log has the findings table). Fix point-in-time recovery, the S3 lifecycle "
        "rule or the bucket's versioning, Object Lock, encryption or public access block, then clear "
        "check_retention."
    ),
    (ADHOC_DAG, "validate_query"): (
        "A query parameter is wrong (the error names the field). Trigger a new run of jit_audit_adhoc "
        "with corrected values: clearing this run would reuse the same parameters. Nothing was queried."
    ),
    (ADHOC_DAG, "run_query"): (
        "The query failed; this run's output has no _SUCCESS and must not be used. Clear run_query to "
        "retry once fixed (it rewrites its own prefix), or trigger a new run."
    ),
}


def deadline_next_steps(missed: MissedDeadline) -> str:
    """What the on-call engineer should do about a run that is not done by its deadline."""
    if missed.run_state == "success":
        return ("Nothing to do for this run: it has succeeded since, after its deadline. If runs keep finishing "
                "late, look for the slow step in the run's task durations, or raise [jit_audit] export_deadline_minutes.")
    still = ("The run has not failed and may still finish: if it fails, its failure alert follows; "
             "this is the only deadline alert for it.")
    waiting = {label.split("[")[0]: state for label, state in missed.waiting_tasks or ()}
    if missed.run_state == "queued":
        cause = ("The run has not started: check that the DAG is not paused, that the scheduler is running and "
                 "whether other runs of the DAG hold all of its max_active_runs.")
    elif "up_for_retry" in waiting.values():
        retrying = sorted(task for task, state in waiting.items() if state == "up_for_retry")
        cause = f"{', '.join(retrying)} failed a try and waits to retry: its log says why."
    elif "wait_for_export" in waiting:
        cause = ("DynamoDB has not finished the export (wait_for_export is "
                 f"{waiting['wait_for_export']}): check it with DescribeExport (its ARN is start_export's return "
                 "value). Still IN_PROGRESS means it only needs time; the sensor gives up after "
                 "jit_audit_export_timeout_minutes. A deferred sensor that never moves: check the triggerer.")
    elif "wait_for_restorable_time" in waiting:
        cause = ("The table's latest restorable time has not reached the export time (wait_for_restorable_time is "
                 f"{waiting['wait_for_restorable_time']}): check point-in-time recovery on the table "
                 "(LatestRestorableDateTime).")
    elif "running" in waiting.values():
        running = sorted(task for task, state in waiting.items() if state == "running")
        cause = f"{', '.join(running)} is still running: its log shows how far it got."
    elif waiting:
        cause = ("The run's next tasks wait for a worker slot: check that the scheduler and workers are running, "
                 "the pools' free slots and whether other runs hold them.")
    else:
        cause = "Open the run and look for the task that is still running or waiting: its log shows how far it got."
    return f"{cause} {still}"


def subject(alert: Alert) -> str:
    """A one-line headline, also valid as an SNS subject (ASCII, under 100 characters)."""
    if isinstance(alert, MissedDeadline):
        text = f"[jit-audit] {alert.dag_id} missed its deadline: {alert.run_id}"
    else:
        task = alert.task_label
        text = f"[jit-audit] {alert.dag_id} failed" + (f": {task}" if task else "")
    text = text.encode("ascii", "replace").decode("ascii")
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 3] + "..."


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return "none (a run without a logical date)"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def facts(alert: Alert) -> list[tuple[str, str]]:
    """The alert's labelled lines, in the order a reader needs them."""
    if isinstance(alert, MissedDeadline):
        return _deadline_facts(alert)
    failure = alert
    lines = [("DAG", failure.dag_id), ("Run", failure.run_id), ("Logical date", _iso(failure.logical_date))]
    # Any other reason (all_tasks_deadlocked): Airflow failed the run and names a task it could not run.
    deadlocked = bool(failure.reason) and failure.reason != "task_failure"
    if failure.task_label:
        attempt = f"try {failure.try_number}" if failure.try_number is not None else "try unknown"
        if failure.retries:
            attempt += f"; the task allows {failure.retries} retr{'y' if failure.retries == 1 else 'ies'}"
        elif failure.retries == 0:
            attempt += "; no retries configured"
        lines.append(("Stuck task" if deadlocked else "Failed task", f"{failure.task_label} ({attempt})"))
    else:
        lines.append(("Failed task", "unknown (Airflow reported no failed task)"))
    if failure.also_failed:
        lines.append(("Also failed", ", ".join(failure.also_failed)))
    if deadlocked:
        lines.append(("Reason", f"Airflow marked the run failed: {failure.reason}"))
    if failure.error:
        error = f"{failure.error_type}: {failure.error}" if failure.error_type else failure.error
        lines.append(("Error", one_line(error, MAX_ERROR_CHARS + 50)))
    elif not deadlocked:
        lines.append(("Error", "not recorded (the task reported none, e.g. it was killed); see the log"))
    export_failure = failure.export_failure
    if export_failure:
        lines.append(("DynamoDB FailureCode", export_failure[0]))
        lines.append(("DynamoDB FailureMessage", one_line(export_failure[1])))
    lines.append(("Log", failure.log_url or "unknown"))
    lines.append(("Next steps", next_steps(failure)))
    return lines


def _deadline_facts(missed: MissedDeadline) -> list[tuple[str, str]]:
    lines = [("DAG", missed.dag_id), ("Run", missed.run_id), ("Logical date", _iso(missed.logical_date))]
    deadline = _iso(missed.deadline)
    if missed.allowed is not None:
        # With Airflow 3's default cron trigger timetable the logical date is the data interval's end.
        reference = ("the end of its data interval" if missed.data_interval_end in (None, missed.logical_date)
                     else "its logical date")
        deadline += f" ({format_duration(missed.allowed)} after {reference})"
    lines.append(("Deadline", deadline))
    lines.append(("Late by", f"{format_duration(missed.late_by)} when checked, at {_iso(missed.noticed_at)}"))
    lines.append(("Run state", _run_state(missed)))
    if missed.run_state != "success":
        if missed.waiting_tasks is None:
            waiting = "unknown (the task states could not be read); see the run"
        else:
            waiting = (", ".join(f"{label} ({state})" for label, state in missed.waiting_tasks)
                       or "no task is running or queued")
        lines.append(("Waiting on", waiting))
    lines.append(("Link", missed.run_url or "unknown"))
    lines.append(("Next steps", deadline_next_steps(missed)))
    return lines


def _run_state(missed: MissedDeadline) -> str:
    state = missed.run_state or "unknown"
    if state == "success" and missed.end_date is not None:
        return f"success, finished at {_iso(missed.end_date)}"
    if missed.start_date is not None and state == "running":
        return f"running since {_iso(missed.start_date)} ({format_duration(missed.noticed_at - missed.start_date)})"
    if missed.queued_at is not None and state == "queued":
        return f"queued since {_iso(missed.queued_at)}, not started"
    return state


def render_text(alert: Alert) -> str:
    """Plain text: SNS e-mail and SMS subscribers, and anything that is not Markdown."""
    return "\n".join([subject(alert), ""] + [f"{label}: {value}" for label, value in facts(alert)]) + "\n"


def _code(value: str) -> str:
    return "`" + value.replace("`", "'") + "`"


def render_markdown(alert: Alert) -> str:
    """Markdown for Mattermost (and Slack-compatible) chat: identifiers as code, links as links."""
    if isinstance(alert, MissedDeadline):
        lines = [f"#### :alarm_clock: {_code(alert.dag_id)} missed its deadline in run {_code(alert.run_id)}"]
        for label, value in facts(alert):
            if label in ("DAG", "Run"):
                value = _code(value)
            elif label == "Link" and alert.run_url:
                value = f"[open the run]({alert.run_url})"
            lines.append(f"- **{label}:** {value}")
        return "\n".join(lines)
    failure = alert
    task = failure.task_label
    headline = f"#### :rotating_light: {_code(failure.dag_id)} failed" + (f" in {_code(task)}" if task else "")
    lines = [headline]
    for label, value in facts(failure):
        if label in ("DAG", "Run", "DynamoDB FailureCode"):
            value = _code(value)
        elif label in ("Failed task", "Stuck task") and task:
            value = _code(task) + value[len(task):]  # "task (try 2; ...)": the task itself as code
        elif label == "Log" and failure.log_url:
            value = f"[open the task log]({failure.log_url})"
        lines.append(f"- **{label}:** {value}")
    return "\n".join(lines)


def chat_payload(
    alert: Alert,
    *,
    username: str | None = None,
    icon_url: str | None = None,
    channel: str | None = None,
) -> dict[str, str]:
    """An incoming-webhook body: ``text`` (what Slack also accepts) and Mattermost's optional overrides."""
    payload = {"text": render_markdown(alert)}
    for name, value in (("username", username), ("icon_url", icon_url), ("channel", channel)):
        if value:
            payload[name] = value
    return payload


def message_attributes(alert: Alert) -> dict[str, str]:
    """SNS message attributes, for subscription filter policies (e.g. only the export DAG)."""
    attributes = {"dag_id": alert.dag_id, "run_id": alert.run_id}
    if isinstance(alert, MissedDeadline):
        attributes["alert"] = "missed_deadline"
        return attributes
    if alert.task_id:
        attributes["task_id"] = alert.task_id
    export_failure = alert.export_failure
    if export_failure:
        attributes["failure_code"] = export_failure[0]
    return attributes
