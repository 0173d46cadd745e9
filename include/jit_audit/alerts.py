"""What a failure alert says: plain Python, so the text can be tested without Airflow.

The Airflow side (``jit_audit_airflow.notifications``) turns a DAG run's failure callback context
into a :class:`FailedRun`; everything a reader sees (the headline, the facts, DynamoDB's reason
for a failed export and what to do next) is decided here. The same text goes to the chat webhook
(Markdown) and to SNS (plain text, for e-mail and SMS subscribers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

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


def subject(failure: FailedRun) -> str:
    """A one-line headline, also valid as an SNS subject (ASCII, under 100 characters)."""
    task = failure.task_label
    text = f"[jit-audit] {failure.dag_id} failed" + (f": {task}" if task else "")
    text = text.encode("ascii", "replace").decode("ascii")
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 3] + "..."


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return "none (a run without a logical date)"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def facts(failure: FailedRun) -> list[tuple[str, str]]:
    """The alert's labelled lines, in the order a reader needs them."""
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


def render_text(failure: FailedRun) -> str:
    """Plain text: SNS e-mail and SMS subscribers, and anything that is not Markdown."""
    return "\n".join([subject(failure), ""] + [f"{label}: {value}" for label, value in facts(failure)]) + "\n"


def _code(value: str) -> str:
    return "`" + value.replace("`", "'") + "`"


def render_markdown(failure: FailedRun) -> str:
    """Markdown for Mattermost (and Slack-compatible) chat: identifiers as code, the log as a link."""
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
    failure: FailedRun,
    *,
    username: str | None = None,
    icon_url: str | None = None,
    channel: str | None = None,
) -> dict[str, str]:
    """An incoming-webhook body: ``text`` (what Slack also accepts) and Mattermost's optional overrides."""
    payload = {"text": render_markdown(failure)}
    for name, value in (("username", username), ("icon_url", icon_url), ("channel", channel)):
        if value:
            payload[name] = value
    return payload


def message_attributes(failure: FailedRun) -> dict[str, str]:
    """SNS message attributes, for subscription filter policies (e.g. only the export DAG)."""
    attributes = {"dag_id": failure.dag_id, "run_id": failure.run_id}
    if failure.task_id:
        attributes["task_id"] = failure.task_id
    export_failure = failure.export_failure
    if export_failure:
        attributes["failure_code"] = export_failure[0]
    return attributes
