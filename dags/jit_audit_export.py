"""
### JIT audit: daily point-in-time export to JSON Lines

Method 3 of the audit-export runbook, automated. For each logical date:

1. **plan**: read the `jit_audit_*` Variables and fix this run's export time (the end of the data
   interval) and snapshot date.
2. **wait_for_restorable_time**: point-in-time recovery must be ENABLED and the export time inside
   its window. Too old fails at once, without retries; too new waits (on the triggerer).
3. **start_export**: `ExportTableToPointInTime` with a deterministic ClientToken; a retry or re-run
   reuses the export it already started.
4. **wait_for_export**: deferrable sensor on `DescribeExport`; FAILED fails with DynamoDB's reason.
5. **list_data_files** / **flatten_data_files**: the export's data files in groups of about
   `jit_audit_flatten_target_mib` MiB (in manifest order, by their sizes in S3), at most
   `jit_audit_flatten_max_tasks` groups, one mapped task each (labelled e.g. "files 1-64 of 3000"),
   so any number of files stays under Airflow's `max_map_length`. Each file is checked against
   `manifest-files.json` (MD5 and item count) and flattened exactly to its own gzipped JSON Lines
   part; a retried group restages the same bytes.
6. **publish_snapshot**: only if DescribeExport = manifest = lines written, record the publication in
   the table's ledger (`<prefix>/jsonl/table=<table>/_ledger/`), then publish
   `<prefix>/jsonl/table=<table>/snapshot_date=<date>/part-*.jsonl.gz`, `_manifest.json`, `_SUCCESS`.
7. **check_retention**: PITR period, the S3 lifecycle rule covering the export prefix and the bucket's
   protection (``jit_audit_require_*``); logs a findings table, fails on any violation.

Re-running a date replaces its snapshot with byte-identical parts and manifest and appends a new
ledger entry; runs may publish in any order (`jit-audit verify s3://<bucket>/<prefix>/` checks it
all, docs/integrity.md). See the README for every Variable.

A failed run (after its retries) sends one alert to the chat webhook and/or SNS topic configured by
the Connections `jit_audit_alerts_webhook` / `jit_audit_alerts_sns` (see docs/alerts.md). So does
a run not done `[jit_audit] export_deadline_minutes` (default 360) after its data interval ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, dag, task

from jit_audit_airflow.dag_defaults import default_args
from jit_audit_airflow.notifications import export_deadline, failure_notifiers
from jit_audit_airflow.operators.dynamodb import DynamoDBPointInTimeExportOperator
from jit_audit_airflow.sensors.dynamodb import DynamoDBExportSensor, DynamoDBPointInTimeWindowSensor

JSONL_SNAPSHOT = Asset(name="jit_audit_jsonl_snapshot", uri="x-jit-audit://jit_audit/jsonl_snapshot")


@dag(
    dag_id="jit_audit_export",
    schedule="@daily",
    # Early enough for any backfill DynamoDB can still serve (recovery windows are at most 35 days).
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["jit-audit", "export", "compliance"],
    # One alert per failed run, after all retries (see docs/alerts.md).
    on_failure_callback=failure_notifiers(),
    # One alert when a run is not done [jit_audit] export_deadline_minutes (default 6 h) after its
    # data interval ends, unless it already failed (see docs/alerts.md).
    deadline=export_deadline(),
    default_args=default_args(),
)
def jit_audit_export():
    @task(multiple_outputs=True, execution_timeout=timedelta(minutes=5))
    def plan(**context):
        from jit_audit_airflow.export_tasks import has_baseline
        from jit_audit_airflow.settings import plan_snapshot

        return plan_snapshot(context, has_baseline)

    run_plan = plan()
    # The table and point in time (and, in incremental mode, the window's start) both steps work on.
    point_in_time = {
        "table_name": run_plan["table"],
        "export_time": run_plan["export_time"],
        "export_from_time": run_plan["window_start"],
        "aws_conn_id": run_plan["aws_conn_id"],
    }

    wait_for_restorable_time = DynamoDBPointInTimeWindowSensor(
        task_id="wait_for_restorable_time",
        **point_in_time,
        timeout=6 * 3600,
        # The sensor's own timeout decides; this only bounds a stuck worker (a poke-mode wait).
        execution_timeout=timedelta(hours=6, minutes=15),
    )

    start_export = DynamoDBPointInTimeExportOperator(
        task_id="start_export",
        **point_in_time,
        s3_bucket=run_plan["bucket"],
        s3_prefix=run_plan["raw_prefix"],
        s3_bucket_owner=run_plan["bucket_owner"],
        kms_key_id=run_plan["kms_key_id"],
        execution_timeout=timedelta(minutes=15),
    )

    wait_for_export = DynamoDBExportSensor(
        task_id="wait_for_export",
        export_arn=start_export.output,
        export_timeout=run_plan["export_timeout_seconds"],
        aws_conn_id=run_plan["aws_conn_id"],
        # jit_audit_export_timeout_minutes (at most 7 days) decides; this only bounds a stuck worker.
        execution_timeout=timedelta(days=7, minutes=15),
    )

    @task(execution_timeout=timedelta(minutes=15))
    def list_data_files(plan: dict, export_arn: str):
        from jit_audit_airflow.export_tasks import list_data_files as body

        return body(plan, export_arn)

    @task(map_index_template="{{ data_files_label }}", execution_timeout=timedelta(hours=2))
    def flatten_data_files(plan: dict, group: dict):
        from airflow.sdk import get_current_context

        from jit_audit_airflow.export_tasks import flatten_data_files as body

        get_current_context()["data_files_label"] = group["label"]  # type: ignore[typeddict-unknown-key]
        return body(plan, group)

    @task(outlets=[JSONL_SNAPSHOT], trigger_rule="none_failed", execution_timeout=timedelta(minutes=30))
    def publish_snapshot(plan: dict, export_arn: str, staged: list, **context):
        from jit_audit_airflow.export_tasks import publish_snapshot as body

        # One list of parts per flatten task.
        published = body(plan, export_arn, [part for parts in staged or [] for part in parts])
        context["outlet_events"][JSONL_SNAPSHOT].extra = published
        return published

    @task(execution_timeout=timedelta(minutes=10))
    def check_retention(plan: dict):
        from jit_audit_airflow.export_tasks import check_retention as body

        return body(plan)

    data_file_groups = list_data_files(run_plan, start_export.output)
    staged = flatten_data_files.partial(plan=run_plan).expand(group=data_file_groups)
    published = publish_snapshot(run_plan, start_export.output, staged)

    run_plan >> wait_for_restorable_time >> start_export >> wait_for_export >> data_file_groups
    published >> check_retention(run_plan)


jit_audit_export()
