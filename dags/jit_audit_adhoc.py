"""
### JIT audit: ad-hoc query

Methods 2 and 4 of the audit-export runbook as a form. Pick what to look for, fill in its field
and the time range, and trigger. The events come out as gzipped JSON Lines (flattened exactly like
the daily export) under `<export prefix>/adhoc/<run id>/`, with `_manifest.json` (parameters,
counts per event type, SHA-256 of each part) and `_SUCCESS`. The run's last log lines and its XCom
give the S3 URI and the counts.

* **request**: every event of one JIT request (Query on the table).
* **account** / **channel**: events in `[start, end)` (Query on `gsi_account_event` /
  `gsi_channel_event`).
* **event_type**: a parallel Scan for the chosen event types in `[start, end)` (the runbook's
  Method 4, without its `eval`).
* **api_summary**: the runbook's Method 1: one summary per JIT request of a channel created in
  `[start, end)`, with its latest status (not the full audit trail), from the JIT service's signed
  `/requests` endpoint. The API's URL, key id and secret come from the Connection named by the
  Variable `jit_audit_api_conn_id` (default `jit_api_default`); see docs/jit-api.md. Results:
  `part-00000.jsonl.gz`, `_manifest.json` (kind `adhoc_api_summary`) and `_SUCCESS`.

Values are validated before any AWS call and only ever sent as expression values. A failed run
sends one alert to the chat webhook and/or SNS topic configured for jit-audit (see docs/alerts.md).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from jit_audit_airflow.dag_defaults import default_args
from jit_audit_airflow.form import (
    ACCOUNT_ID_FORM_PATTERN,
    CHANNEL_ID_FORM_PATTERN,
    DEFAULT_MAX_ITEMS,
    DEFAULT_SEGMENTS,
    EVENT_TYPES,
    FORM_QUERY_MODES,
    MAX_ITEMS,
    MAX_KEY_BYTES,
    MAX_PAGE_SIZE,
    MAX_SEGMENTS,
)
from jit_audit_airflow.notifications import failure_notifiers

WHAT = "What to look for"
WHEN = "When (UTC)"
LIMITS = "Limits and output"


@dag(
    dag_id="jit_audit_adhoc",
    schedule=None,
    catchup=False,
    doc_md=__doc__,
    tags=["jit-audit", "adhoc", "compliance"],
    max_active_runs=8,
    # One alert per failed run, after all retries (see docs/alerts.md).
    on_failure_callback=failure_notifiers(),
    default_args=default_args(),
    params={
        "query_by": Param(
            "account",
            type="string",
            enum=FORM_QUERY_MODES,
            values_display={
                "request": "One JIT request (all its events)",
                "account": "An AWS account, over a time range",
                "channel": "A Mattermost channel, over a time range",
                "event_type": "Event types across the whole table (parallel scan)",
                "api_summary": "Request summaries of a channel from the JIT API (latest status only)",
            },
            title="Query by",
            description="Which index (or, for summaries, the JIT reporting API) to use; fill in the matching field below.",
            section=WHAT,
        ),
        "request_id": Param(
            None, type=["null", "string"], maxLength=MAX_KEY_BYTES, title="Request id",
            description="For 'One JIT request': the request's id, matched exactly.", section=WHAT,
        ),
        "account_id": Param(
            None, type=["null", "string"], pattern=ACCOUNT_ID_FORM_PATTERN, title="AWS account id",
            description="For 'An AWS account': exactly 12 digits.", section=WHAT,
        ),
        "channel_id": Param(
            None, type=["null", "string"], pattern=CHANNEL_ID_FORM_PATTERN, title="Mattermost channel id",
            description="For 'A Mattermost channel' and 'Request summaries': the channel's id.", section=WHAT,
        ),
        "event_types": Param(
            [], type="array", items={"type": "string", "enum": EVENT_TYPES}, uniqueItems=True,
            examples=EVENT_TYPES, title="Event types",
            description="Keep only these event types (required when scanning by event type; empty: all; not for summaries).",
            section=WHAT,
        ),
        "start": Param(
            None, type=["null", "string"], format="date-time", title="From (inclusive)",
            description="Required for account, channel, event type and summaries (whole seconds for summaries); optional for a request.",
            section=WHEN,
        ),
        "end": Param(
            None, type=["null", "string"], format="date-time", title="Until (exclusive)",
            description="Must be after the start.", section=WHEN,
        ),
        "max_items": Param(
            DEFAULT_MAX_ITEMS, type="integer", minimum=1, maximum=MAX_ITEMS, title="Stop after this many items",
            description="A safety cap; the run says so when it is reached.", section=LIMITS,
        ),
        "segments": Param(
            DEFAULT_SEGMENTS, type="integer", minimum=1, maximum=MAX_SEGMENTS, title="Parallel scan segments",
            description="Event-type scans only: how many workers read the table at once.", section=LIMITS,
        ),
        "page_size": Param(
            None, type=["null", "integer"], minimum=1, maximum=MAX_PAGE_SIZE, title="Items per request",
            description="DynamoDB's Limit per page; empty: DynamoDB's 1 MB pages.", section=LIMITS,
        ),
        "output_uri": Param(
            None, type=["null", "string"], pattern="^s3://", title="Output location",
            description="s3://bucket/prefix/ to write to; empty: <export prefix>/adhoc/<run id>/ in the export bucket.",
            section=LIMITS,
        ),
    },
)
def jit_audit_adhoc():
    @task(execution_timeout=timedelta(minutes=5))
    def validate_query(params=None, run_id=None):
        from jit_audit_airflow.adhoc_tasks import validate

        return validate(dict(params), run_id)

    @task(execution_timeout=timedelta(hours=6))
    def run_query(plan: dict):
        from jit_audit_airflow.adhoc_tasks import run_query as body

        return body(plan)

    run_query(validate_query())


jit_audit_adhoc()
