"""Run-time settings: Airflow Variables read inside tasks, never at DAG parse time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from jit_audit.exports import INCREMENTAL_VIEW, as_export_time
from jit_audit.layout import SnapshotLayout
from jit_audit.pseudonymise import Pseudonymiser
from jit_audit.settings import ExportSettings, SettingsError, load_settings
from jit_audit_airflow.ledger import ledger_settings


def read_settings() -> ExportSettings:
    """Read every ``jit_audit_*`` Variable (missing ones take their documented default)."""
    from airflow.sdk import Variable

    return load_settings(lambda name: Variable.get(name, default=None))


def snapshot_moment(context: Any) -> tuple[datetime, date]:
    """The export time and snapshot date of this run.

    The export time is the end of the data interval (with Airflow 3's default cron *trigger*
    timetable, that is the logical date itself). A run without a logical date (triggered manually
    with none) exports the moment it was queued. The snapshot is named after the UTC date of its
    export time, whatever the timetable.
    """
    moment = context.get("data_interval_end") or context.get("logical_date") or context["dag_run"].run_after
    export_time = as_export_time(moment)
    return export_time, export_time.date()


def plan_snapshot(context: Any, has_baseline: Callable[[ExportSettings, SnapshotLayout], bool]) -> dict[str, Any]:
    """Everything the export's tasks need, resolved once per run and shared through XCom.

    In incremental mode a run exports the changes of the period before its export time, once a
    full baseline snapshot exists (``has_baseline``); until then it takes that baseline.
    """
    settings = read_settings()
    check_map_length(settings)
    # With pseudonymisation on, a missing or unusable key fails here, before the export starts.
    pseudonymiser(settings.pseudonymise_actor_email, settings.pseudonymisation_conn_id)
    export_time, snapshot_date = snapshot_moment(context)
    layout = SnapshotLayout(
        bucket=settings.bucket,
        prefix=settings.prefix,
        table=settings.table,
        snapshot_date=snapshot_date,
        export_time=export_time,
    )
    if settings.export_mode == "incremental":
        window_start = export_time - timedelta(minutes=settings.incremental_period_minutes)
        if has_baseline(settings, replace(layout, window_start=window_start)):
            layout = replace(layout, window_start=window_start)
    return {
        **settings.to_dict(),
        **ledger_settings(settings),
        "layout": layout.to_dict(),
        "export_time": layout.to_dict()["export_time"],
        "window_start": layout.to_dict()["window_start"],
        "view": INCREMENTAL_VIEW if layout.incremental else None,
        "raw_prefix": layout.raw_prefix,
        "published_prefix": layout.published_prefix,
        "export_timeout_seconds": settings.export_timeout_minutes * 60,
        "upload_extra_args": upload_extra_args(settings),
    }


def check_map_length(settings: ExportSettings) -> None:
    """Refuse a flatten task cap Airflow could not map: it would fail only after the export, in list_data_files."""
    from airflow.sdk import conf

    limit = conf.getint("core", "max_map_length", fallback=1024)
    if settings.flatten_max_tasks > limit:
        raise SettingsError(
            f"Variable jit_audit_flatten_max_tasks ({settings.flatten_max_tasks}) is above Airflow's [core] "
            f"max_map_length ({limit}): lower the Variable, or raise max_map_length first"
        )


def upload_extra_args(settings: ExportSettings) -> dict[str, str]:
    """S3 arguments for every object we write: SSE-KMS when a key is configured."""
    if settings.kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}
    return {}


def pseudonymiser(enabled: bool, conn_id: str) -> Pseudonymiser | None:
    """The actor_email pseudonymiser when the setting is on, keyed by the Connection's password.

    Read at run time in the task that writes output, so the key never travels through XCom; Airflow's
    secrets masker hides a connection's password in task logs. A missing connection or unusable key
    fails the task before anything is written.
    """
    if not enabled:
        return None
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException

    try:
        key = BaseHook.get_connection(conn_id).password
    except Exception as error:  # AirflowNotFoundException and friends: say which connection
        raise AirflowFailException(
            f"jit_audit_pseudonymise_actor_email is on but the connection {conn_id!r} cannot be read "
            f"({type(error).__name__}); create it with the HMAC key as its password"
        ) from None
    if not key:
        raise AirflowFailException(f"the connection {conn_id!r} has no password: it must hold the HMAC key")
    try:
        found = Pseudonymiser(key)
    except ValueError as error:
        raise AirflowFailException(f"connection {conn_id!r}: {error}") from None
    # botocore logs every raw response body at DEBUG: the table's addresses, before we pseudonymise.
    parsers = logging.getLogger("botocore.parsers")
    if parsers.getEffectiveLevel() < logging.INFO:
        parsers.setLevel(logging.INFO)
        logging.getLogger(__name__).info("botocore.parsers raised to INFO: its DEBUG lines hold raw actor_email values")
    return found
