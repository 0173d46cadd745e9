"""Recording publications in the ledger from Airflow tasks: hooks and the run's identity in, core out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from jit_audit import ledger
from jit_audit.layout import table_prefix

log = logging.getLogger(__name__)


def current_run() -> tuple[str | None, str | None]:
    """``(dag_id, run_id)`` of the running task; ``(None, None)`` outside one (tests calling bodies)."""
    from airflow.sdk import get_current_context

    try:
        context = get_current_context()
    except Exception:  # outside a running task
        return None, None
    return str(context["dag"].dag_id), str(context["run_id"])


def recorder(
    plan: dict[str, Any],
    s3: Any,
    *,
    kind: str,
    uri: str,
    label: str | None,
    run: tuple[str | None, str | None] | None = None,
) -> Callable[[bytes, dict[str, Any]], dict[str, Any]]:
    """``record(manifest_bytes, manifest)``: append this publication to the table's ledger.

    ``plan`` carries ``ledger_bucket`` and ``ledger_prefix`` (the export's bucket and prefix, see
    ``ledger_settings``), the table, signing key, minimum retention and connection. The
    entry is signed when ``jit_audit_ledger_signing_key_id`` is set, and given a COMPLIANCE retention
    of ``jit_audit_retention_min_days`` when the bucket has Object Lock.
    """
    dag_id, run_id = run if run is not None else current_run()
    signer = None
    if plan.get("ledger_signing_key_id"):
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        signer = ledger.KmsSigner(AwsBaseHook(aws_conn_id=plan["aws_conn_id"], client_type="kms").conn,
                                  plan["ledger_signing_key_id"], plan["ledger_signing_algorithm"])
    bucket = plan["ledger_bucket"]
    prefix = ledger.ledger_prefix(table_prefix(plan["ledger_prefix"], plan["table"]))

    def record(body: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
        lock_days = plan["retention_min_days"] if ledger.object_lock_enabled(s3, bucket) else None
        entry = ledger.recorder(s3, bucket, prefix, kind=kind, uri=uri, label=label, dag_id=dag_id, run_id=run_id,
                                signer=signer, object_lock_days=lock_days,
                                upload_extra_args=plan.get("upload_extra_args"))(body, manifest)
        log.info("Ledger entry %s s3://%s/%s: %s %s, _manifest.json sha256 %s%s", entry["sequence"], bucket,
                 ledger.entry_key(prefix, entry["sequence"]), kind, uri, entry["manifest_sha256"],
                 " (signed)" if signer else "")
        return entry

    return record


def ledger_settings(settings: Any) -> dict[str, Any]:
    """The plan fields ``recorder`` needs, from the validated settings."""
    return {
        "ledger_bucket": settings.bucket,
        "ledger_prefix": settings.prefix,
        "table": settings.table,
        "retention_min_days": settings.retention_min_days,
        "ledger_signing_key_id": settings.ledger_signing_key_id,
        "ledger_signing_algorithm": settings.ledger_signing_algorithm,
    }
