"""Point-in-time exports: the recovery window, and starting an export exactly once.

Every function takes a boto3 DynamoDB *client* (from a provider hook in Airflow, from a session on
the command line), so the rules here are the same wherever they run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from jit_audit.layout import client_token
from jit_audit.retry import Backoff, retrying

log = logging.getLogger(__name__)

#: Statuses of an export that a re-run can reuse (a FAILED export is never reused).
REUSABLE_STATUSES = ("IN_PROGRESS", "COMPLETED")


class PointInTimeRecoveryDisabled(RuntimeError):
    """The table has no point-in-time recovery, so it cannot be exported to a point in time."""


class ExportTimeTooOld(RuntimeError):
    """The export time is older than the table's recovery window: no retry can fix that."""


class ExportFailed(RuntimeError):
    """DynamoDB reports the export as FAILED."""


class ExportStartRefused(RuntimeError):
    """DynamoDB kept refusing to start the export for now (limits, throttling): a later retry may work."""


#: Error codes with which DynamoDB refuses to start an export *for now*: nothing was started, and the
#: same request (same ClientToken) may succeed later. botocore's retry handler retries
#: ThrottlingException itself (legacy mode: up to 10 attempts for DynamoDB) but never
#: LimitExceededException (too many exports or table operations at once), which only clears
#: when other operations finish, seconds to minutes later.
START_REFUSALS = ("LimitExceededException", "ThrottlingException")


#: Six tries over about a minute (waits with 1, 2, 4, 8, 16 s ceilings); the task's own retries come after.
START_EXPORT_BACKOFF = Backoff(attempts=6, base_seconds=1.0, cap_seconds=60.0)


def _error_code(error: BaseException) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, ClientError) else ""


def _refused_for_now(error: BaseException) -> bool:
    """DynamoDB started nothing and the same request may succeed later (:data:`START_REFUSALS`)."""
    return _error_code(error) in START_REFUSALS


def _start_export(
    client: Any, request: dict[str, Any], backoff: Backoff, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """ExportTableToPointInTime, retried with backoff while DynamoDB refuses it for now.

    Safe to repeat: every try carries the same ClientToken, so DynamoDB starts at most one export.
    """
    attempts = retrying(backoff, retry_if=_refused_for_now, action="ExportTableToPointInTime (same ClientToken)",
                        reason=_error_code, log=log, sleep=sleep)
    try:
        return attempts(lambda: client.export_table_to_point_in_time(**request)["ExportDescription"])
    except ClientError as error:
        if not _refused_for_now(error):
            raise
        raise ExportStartRefused(
            f"DynamoDB refused to start the export {backoff.attempts} times ({_error_code(error)}: "
            f"{error.response.get('Error', {}).get('Message', '')}); nothing was started. "
            "A later retry can succeed once other exports or table operations finish."
        ) from error


@dataclass(frozen=True)
class RecoveryWindow:
    """What DescribeContinuousBackups says about point-in-time recovery."""

    enabled: bool
    earliest: datetime | None
    latest: datetime | None
    recovery_period_days: int | None

    def verdict(self, export_time: datetime) -> str:
        """``"ready"`` if the table can be exported at ``export_time``, ``"wait"`` if not yet.

        Raises when no amount of waiting can help.
        """
        if not self.enabled:
            raise PointInTimeRecoveryDisabled(
                "Point-in-time recovery is not ENABLED on the table; enable it "
                "(aws dynamodb update-continuous-backups ... PointInTimeRecoveryEnabled=true). "
                "Exports can only cover times after it was enabled."
            )
        if self.earliest is not None and export_time < self.earliest:
            raise ExportTimeTooOld(
                f"Export time {export_time.isoformat()} is older than the point-in-time recovery window: "
                f"the earliest restorable time is {self.earliest.isoformat()}. "
                "This date can no longer be exported from DynamoDB."
            )
        if self.latest is None or export_time > self.latest:
            return "wait"
        return "ready"


def recovery_window(client: Any, table_name: str) -> RecoveryWindow:
    description = client.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    pitr = description.get("PointInTimeRecoveryDescription", {})
    return RecoveryWindow(
        enabled=pitr.get("PointInTimeRecoveryStatus") == "ENABLED",
        earliest=_utc(pitr.get("EarliestRestorableDateTime")),
        latest=_utc(pitr.get("LatestRestorableDateTime")),
        recovery_period_days=pitr.get("RecoveryPeriodInDays"),
    )


def as_export_time(value: datetime | str) -> datetime:
    """An export time in UTC and whole seconds, whatever form it arrives in.

    DynamoDB echoes ExportTime at millisecond precision and ClientTokens are built from seconds,
    so every comparison and request uses the same whole-second UTC value. Naive values are UTC.
    """
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def table_arn(client: Any, table_name: str) -> str:
    return client.describe_table(TableName=table_name)["Table"]["TableArn"]


def describe_export(client: Any, export_arn: str) -> dict[str, Any]:
    return client.describe_export(ExportArn=export_arn)["ExportDescription"]


#: The view incremental exports are requested with: deletions keep the item's last image.
INCREMENTAL_VIEW = "NEW_AND_OLD_IMAGES"
#: DynamoDB's ExportViewType when a request names none (and so a description may omit it).
DEFAULT_EXPORT_VIEW = "NEW_AND_OLD_IMAGES"


def _same_snapshot(
    description: dict[str, Any], bucket: str, s3_prefix: str, export_time: datetime, window_start: datetime | None
) -> bool:
    if description.get("S3Bucket") != bucket or (description.get("S3Prefix") or "") != s3_prefix:
        return False
    if window_start is None:
        return (
            description.get("ExportType", "FULL_EXPORT") == "FULL_EXPORT"
            and description.get("ExportTime") is not None
            and as_export_time(description["ExportTime"]) == export_time
        )
    spec = description.get("IncrementalExportSpecification") or {}
    return (
        description.get("ExportType") == "INCREMENTAL_EXPORT"
        and spec.get("ExportFromTime") is not None
        and spec.get("ExportToTime") is not None
        and as_export_time(spec["ExportFromTime"]) == window_start
        and as_export_time(spec["ExportToTime"]) == export_time
        # Another view's lines say something else (a NEW_IMAGE export cannot tell an insert from an update).
        and (spec.get("ExportViewType") or DEFAULT_EXPORT_VIEW) == INCREMENTAL_VIEW
    )


def matching_exports(
    client: Any,
    table_arn_: str,
    bucket: str,
    s3_prefix: str,
    export_time: datetime,
    window_start: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every export of this table to this bucket, prefix and time (or window), whatever its status.

    An export matches only if it is of the same type (FULL_EXPORT, or INCREMENTAL_EXPORT of the same
    window and ExportViewType :data:`INCREMENTAL_VIEW`): any other export says something else.
    """
    found = []
    kwargs: dict[str, Any] = {"TableArn": table_arn_, "MaxResults": 25}
    while True:
        page = client.list_exports(**kwargs)
        for summary in page.get("ExportSummaries", []):
            description = describe_export(client, summary["ExportArn"])
            if _same_snapshot(description, bucket, s3_prefix, export_time, window_start):
                found.append(description)
        token = page.get("NextToken")
        if not token:
            return found
        kwargs["NextToken"] = token


@dataclass(frozen=True)
class ExportStart:
    export_arn: str
    reused: bool
    status: str


def find_or_start_export(
    client: Any,
    *,
    table_name: str,
    export_time: datetime | str,
    bucket: str,
    s3_prefix: str,
    bucket_owner: str | None = None,
    kms_key_id: str | None = None,
    window_start: datetime | str | None = None,
    backoff: Backoff = START_EXPORT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> ExportStart:
    """Return the export of this snapshot, starting it only if none is running or done.

    With ``window_start`` it is an incremental export of the changes in
    [window_start, export_time); otherwise a full export as of ``export_time``. A retry or a re-run
    finds the earlier export through ListExports; the ClientToken covers the race of two attempts
    starting at once (DynamoDB answers both with the same export), and the tries ``backoff`` makes
    while DynamoDB refuses to start it for now (:data:`START_REFUSALS`).
    """
    export_time = as_export_time(export_time)
    start = None if window_start is None else as_export_time(window_start)
    arn = table_arn(client, table_name)
    existing = matching_exports(client, arn, bucket, s3_prefix, export_time, start)
    for description in existing:
        if description["ExportStatus"] in REUSABLE_STATUSES:
            return ExportStart(description["ExportArn"], reused=True, status=description["ExportStatus"])
    failed = sum(1 for description in existing if description["ExportStatus"] == "FAILED")
    request: dict[str, Any] = {
        "TableArn": arn,
        "ClientToken": client_token(
            table_arn=arn, export_time=export_time, bucket=bucket, s3_prefix=s3_prefix, attempt=failed,
            window_start=start,
        ),
        "S3Bucket": bucket,
        "S3Prefix": s3_prefix,
        "ExportFormat": "DYNAMODB_JSON",
    }
    if start is None:
        request.update(ExportType="FULL_EXPORT", ExportTime=export_time)
    else:
        request.update(
            ExportType="INCREMENTAL_EXPORT",
            IncrementalExportSpecification={
                "ExportFromTime": start,
                "ExportToTime": export_time,
                "ExportViewType": INCREMENTAL_VIEW,
            },
        )
    if bucket_owner:
        request["S3BucketOwner"] = bucket_owner
    if kms_key_id:
        request["S3SseAlgorithm"] = "KMS"
        request["S3SseKmsKeyId"] = kms_key_id
    description = _start_export(client, request, backoff, sleep)
    return ExportStart(description["ExportArn"], reused=False, status=description["ExportStatus"])


def export_id(export_arn: str) -> str:
    """The last part of ``arn:aws:dynamodb:<region>:<account>:table/<table>/export/<id>``."""
    return export_arn.rsplit("/", 1)[-1]


def completion_state(description: dict[str, Any]) -> str:
    """``"COMPLETED"`` or ``"IN_PROGRESS"``; a FAILED export raises with DynamoDB's own reason."""
    status = description["ExportStatus"]
    if status == "FAILED":
        raise ExportFailed(
            f"Export {description['ExportArn']} FAILED: "
            f"{description.get('FailureCode', 'no FailureCode')}: {description.get('FailureMessage', 'no FailureMessage')}"
        )
    return status
