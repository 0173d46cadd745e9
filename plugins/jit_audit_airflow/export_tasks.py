"""The bodies of the export DAG's Python tasks: Airflow hooks in, the plain-Python core does the work.

Each function takes the run's plan (see ``settings.plan_snapshot``) and returns only small,
JSON-serialisable values for XCom.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.amazon.aws.hooks.dynamodb import DynamoDBHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk.exceptions import AirflowFailException

from jit_audit import grouping, partitions, retention, snapshot, staging
from jit_audit.exports import describe_export
from jit_audit.flatten import FlattenError, Progress
from jit_audit.grouping import DataFileGroup
from jit_audit.layout import SnapshotLayout
from jit_audit.manifest import DataFile, ManifestError
from jit_audit.s3 import IntegrityError, ObjectUnreadable
from jit_audit_airflow.ledger import current_run, recorder
from jit_audit_airflow.settings import pseudonymiser

log = logging.getLogger(__name__)


def _completed_export(plan: dict[str, Any], export_arn: str) -> dict[str, Any]:
    description = describe_export(DynamoDBHook(aws_conn_id=plan["aws_conn_id"]).client, export_arn)
    if description["ExportStatus"] != "COMPLETED" or not description.get("ExportManifest"):
        raise AirflowFailException(f"Export {export_arn} is {description['ExportStatus']}, not COMPLETED")
    return description


def _manifests(plan: dict[str, Any], export_arn: str) -> tuple[Any, list[DataFile], int]:
    description = _completed_export(plan, export_arn)
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    try:
        summary, files = snapshot.read_manifests(
            s3, description["S3Bucket"], description["ExportManifest"], description.get("ItemCount")
        )
    except (ManifestError, ObjectUnreadable) as error:  # S3 would answer a retry the same way
        raise AirflowFailException(f"Export {export_arn}: {error}") from error
    return summary, files, int(description.get("ItemCount", summary.item_count))


def has_baseline(settings: Any, layout: SnapshotLayout) -> bool:
    """Incremental mode: is there a published full snapshot to build on?"""
    found = partitions.has_baseline(S3Hook(aws_conn_id=settings.aws_conn_id).get_conn(), layout)
    if not found:
        log.info("No full snapshot of %s before %s yet: this run takes the baseline", layout.table, layout.window_start)
    return found


def list_data_files(plan: dict[str, Any], export_arn: str) -> list[dict[str, Any]]:
    """The export's data files from its manifests, in groups (one per flatten task), once the
    manifests agree with DescribeExport.

    Groups follow ``jit_audit_flatten_max_tasks`` and ``jit_audit_flatten_target_mib`` (read by
    ``plan``; a plan from before these settings takes their defaults) and the files' sizes in S3.
    Each group carries the export's own view (``outputView`` of ``manifest-summary.json``), which
    tells its flatten task what a line with only a new image is (INSERT, or PUT for NEW_IMAGE).
    """
    summary, files, item_count = _manifests(plan, export_arn)
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    max_tasks = plan.get("flatten_max_tasks", grouping.DEFAULT_MAX_GROUPS)
    target_bytes = plan.get("flatten_target_bytes", grouping.DEFAULT_TARGET_BYTES)
    bucket = plan["bucket"]
    sizes = grouping.data_file_sizes(s3, bucket, files)
    unlisted = [data_file.key for data_file in files if data_file.key not in sizes]
    if unlisted:
        log.warning("%d data file(s) the manifest lists are not in S3 (e.g. s3://%s/%s): their flatten task "
                    "will fail naming them", len(unlisted), bucket, unlisted[0])
    groups = grouping.group_data_files(files, sizes, target_bytes=target_bytes, max_groups=max_tasks)
    log.info("Export %s: %d items in %d data files of %d bytes (manifest %s), in %d flatten task(s) "
             "(jit_audit_flatten_max_tasks %d, jit_audit_flatten_target_mib %d)", export_arn, item_count,
             len(files), sum(sizes.values()), summary.manifest_files_key, len(groups), max_tasks,
             target_bytes // grouping.MIB)
    return [{**group.to_dict(), "view": summary.output_view} for group in groups]


def flatten_data_files(plan: dict[str, Any], group: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten each data file of one group into its own staged part, in order.

    Each file is checked against the manifest (MD5, item count) as it is flattened; a bad byte or
    count, or a data file S3 does not have or will not let the task read, fails the task without
    retries. Parts go to fixed keys (one per data file), so a retry or re-run of the group rewrites
    the same bytes, whatever it had staged before.
    """
    layout = SnapshotLayout.from_dict(plan["layout"])
    files = DataFileGroup.from_dict(group)
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    hider = pseudonymiser(plan.get("pseudonymise_actor_email", False), plan.get("pseudonymisation_conn_id", ""))
    # The export's own view; groups listed before they carried it fall back to the view the plan requested.
    view = group["view"] if "view" in group else plan.get("view")
    parts = []
    for source in files.files:

        def progress(totals: Progress, key: str = source.key) -> None:
            log.info("%s: %s so far", key, totals.describe())

        try:
            part = staging.flatten_data_file(
                s3, layout, source, upload_extra_args=plan["upload_extra_args"], view=view,
                progress=progress, pseudonymiser=hider,
            )
        except (FlattenError, IntegrityError, ObjectUnreadable) as error:
            raise AirflowFailException(str(error)) from error
        log.info("Data file %d (%s): %d items in, %d lines out, staged at %s (sha256 %s)",
                 source.index, source.key, source.item_count, part.lines, part.staging_key, part.sha256)
        parts.append(part.to_dict())
    log.info("Group %d (%s, %d bytes): %d parts staged, %d lines", files.number, files.label, files.size_bytes,
             len(parts), sum(part["lines"] for part in parts))
    return parts


def publish_snapshot(
    plan: dict[str, Any], export_arn: str, parts: list[dict[str, Any]], run_id: str | None = None
) -> dict[str, Any]:
    """Reconcile every count, record the publication in the ledger, then publish.

    Returns the snapshot manifest's headline figures and the ledger entry's sequence number.
    ``run_id`` (the task's ``context["run_id"]``, looked up when not given) goes into the entry.
    """
    summary, files, item_count = _manifests(plan, export_arn)
    layout = SnapshotLayout.from_dict(plan["layout"])
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    dag_id, current_run_id = current_run()
    uri = f"s3://{layout.bucket}/{layout.published_prefix}"
    record = recorder(plan, s3, kind=layout.partition.kind, uri=uri, label=layout.partition.label,
                      run=(dag_id or "jit_audit_export", run_id if run_id is not None else current_run_id))
    entries: list[dict[str, Any]] = []
    try:
        manifest = snapshot.publish(
            s3, layout, summary, files, [staging.PartResult.from_dict(part) for part in parts or []], item_count,
            upload_extra_args=plan["upload_extra_args"],
            record=lambda body, document: entries.append(record(body, document)),
        )
    except IntegrityError as error:  # CountMismatch included
        raise AirflowFailException(str(error)) from error
    counts = manifest["counts"]
    log.info(
        "%s s3://%s/%s: DescribeExport %d = manifest %d = lines %d, %d parts",
        "Published" if entries else "Already published (nothing changed, no new ledger entry):",
        layout.bucket, layout.published_prefix, counts["describe_export_item_count"],
        counts["manifest_item_count"], counts["lines_written"], len(manifest["parts"]),
    )
    return {
        "uri": uri,
        # None when only this step ran again and the snapshot already was exactly this one.
        "ledger_sequence": entries[0]["sequence"] if entries else None,
        "snapshot_date": manifest["snapshot_date"],
        "export_arn": manifest["export_arn"],
        "export_time": manifest["export_time"],
        "counts": counts,
        "parts": [part["key"] for part in manifest["parts"]],
        "manifest_key": layout.partition.manifest_key,
        "success_key": layout.partition.success_key,
    }


def check_retention(plan: dict[str, Any]) -> dict[str, Any]:
    """Log the findings table; fail with a to-do list if PITR, the lifecycle or the bucket break the rules."""
    dynamodb = DynamoDBHook(aws_conn_id=plan["aws_conn_id"]).client
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    report = retention.check(
        dynamodb,
        s3,
        table_name=plan["table"],
        bucket=plan["bucket"],
        export_prefix=plan["prefix"],
        min_days=plan["retention_min_days"],
        max_days=plan["retention_max_days"],
        pitr_min_recovery_days=plan["pitr_min_recovery_days"],
        requirements=retention.BucketRequirements.from_settings(plan),
    )
    log.info("Retention check of table %s, s3://%s/%s:\n%s", plan["table"], plan["bucket"], plan["prefix"],
             report.table())
    if not report.ok:
        raise AirflowFailException(
            "Retention rules are violated:\n" + "\n".join(f"- {finding}" for finding in report.findings)
        )
    return {
        "pitr_recovery_period_days": report.pitr_recovery_period_days,
        "covering_rules": report.covering_rules,
        "effective_expiration_days": report.effective_expiration_days,
        "checks": [row.check for row in report.rows],
    }
