"""Local AWS emulator: moto's server, with DynamoDB table exports that behave like AWS's.

**For local runs and tests only.** Nothing here talks to AWS, nothing is durable, and the
production code paths must never depend on it.  It exists so that the export DAGs, the CLI and the
tests can run the real boto3 calls (``ExportTableToPointInTime`` → poll ``DescribeExport`` → read
the manifests and data files from S3) against something that produces the same objects, keys and
manifest fields as AWS does, instead of each test hand-writing fake exports.

It is moto's server (pinned moto 5.2.5, all services, like ``moto_server``), patched in-process by
:func:`install`.  moto on its own falls short for our purposes: it writes one data file and no
manifests, ignores ``ExportTime`` and ``ClientToken``, returns a malformed export ARN and no
``ExportManifest``/``StartTime``/``EndTime``/``ExportTime``, and reports a frozen
point-in-time-recovery window.  The patches make these operations follow AWS's documentation:

* ``ExportTableToPointInTime``: ARN ``arn:aws:dynamodb:<region>:<account>:table/<name>/export/<id>``
  with an AWS-shaped export id (14-digit epoch millis of the start, ``-``, 8 hex digits).  The
  export runs asynchronously: ``IN_PROGRESS`` for ``export_seconds``, then the files are written and
  only after that does the status become ``COMPLETED`` (or ``FAILED`` with ``S3NoSuchBucket`` when the
  bucket did not exist).  ``ClientToken`` makes the call idempotent for 8 hours after the export ends;
  the same token with other parameters is refused with ``ExportConflictException`` (HTTP 400), as the
  API reference for ``ClientToken`` states.  An ``ExportTime`` before the earliest restorable time or
  in the future is refused with ``InvalidExportTimeException``.
* S3 layout (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html)::

      <S3Prefix>/AWSDynamoDB/<export id>/_started                 (empty, written at the start)
      <S3Prefix>/AWSDynamoDB/<export id>/data/<26 chars>.json.gz   (gzip JSON Lines {"Item": {...}})
      <S3Prefix>/AWSDynamoDB/<export id>/manifest-files.json       (JSON Lines, one per data file)
      <S3Prefix>/AWSDynamoDB/<export id>/manifest-summary.json

  Without an ``S3Prefix`` the keys start at ``AWSDynamoDB/``.  ``manifestFilesS3Key``,
  ``dataFileS3Key`` and ``ExportManifest`` are full object keys (prefix included).
* ``DescribeContinuousBackups``: the restorable window is computed at each call.  The emulator
  pretends point-in-time recovery had already been running ``pitr_history_days`` before it was
  enabled, so tests can export past dates: ``EarliestRestorableDateTime = max(enabled -
  pitr_history_days, now - RecoveryPeriodInDays)``, ``LatestRestorableDateTime = now -
  pitr_lag_seconds`` (AWS's trails by about five minutes).

Limitations (deliberate):

* There is no item history: an export contains the table's items as they are when the export
  *starts*, whatever ``ExportTime`` says.  ``ExportTime`` is validated and echoed, nothing more.
* Only ``FULL_EXPORT`` in ``DYNAMODB_JSON`` is produced; ``ION`` and ``INCREMENTAL_EXPORT`` are
  refused with a ``ValidationException`` rather than faked.
* AWS also writes ``manifest-summary.checksum`` and ``manifest-files.checksum``; their format is not
  documented, so they are not written.  AWS writes at least one (possibly empty) data file per
  partition; the emulator has no partitions and writes no data file for an empty table.
* ``BilledSizeBytes`` is moto's estimate of the items' stored size, not AWS's billing figure.
* ``FilterSpecification`` is ignored.  State lives in moto's in-memory backends of this process and
  is shared by every server started in it; ``install`` settings are process-wide.

The module imports neither moto nor Airflow at import time and patches nothing until
:func:`install` (or :func:`serve` / :class:`EmulatorThread`) is called, so importing it is free.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, cast

if TYPE_CHECKING:
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.server import ThreadedMotoServer

__all__ = ["EmulatorSettings", "EmulatorThread", "install", "serve"]

_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
# AWS: "A client token is valid for 8 hours after the first request that uses it is completed."
_CLIENT_TOKEN_TTL = timedelta(hours=8)
_DEFAULT_RECOVERY_PERIOD_DAYS = 35
_MANIFEST_VERSION = "2020-06-30"
# ExportTableToPointInTime's S3SseAlgorithm values mapped to S3's x-amz-server-side-encryption.
_S3_SSE = {"AES256": "AES256", "KMS": "aws:kms"}
_LIST_EXPORTS_MAX = 25  # ListExportsMaxLimit in the service model


class EmulatorSettings(TypedDict, total=False):
    """Keyword settings accepted by :func:`install`, :func:`serve` and :class:`EmulatorThread`."""

    pitr_history_days: float
    pitr_lag_seconds: float
    export_seconds: float
    items_per_data_file: int


@dataclass(frozen=True)
class _Settings:
    pitr_history_days: float = 35
    pitr_lag_seconds: float = 300
    export_seconds: float = 2.0
    items_per_data_file: int = 1000


_settings = _Settings()
_install_lock = threading.Lock()
_installed = False
# Serialises the ClientToken lookup and the registration of a new export, so two concurrent
# requests with one token cannot both start an export.
_create_lock = threading.Lock()
_originals: dict[str, Any] = {}


def install(
    *,
    pitr_history_days: float = 35,
    pitr_lag_seconds: float = 300,
    export_seconds: float = 2.0,
    items_per_data_file: int = 1000,
) -> None:
    """Patch moto in this process (idempotent; calling again updates the settings).

    The patches are applied once, on moto's classes, so they serve moto's server threads as well as
    ``mock_aws`` in this process.  Every call replaces *all* settings (omitted ones go back to their
    defaults), because the settings are process-wide, not per server.

    :param pitr_history_days: how long point-in-time recovery pretends to have been enabled before
        it really was, so that past ``ExportTime`` values are exportable in tests.
    :param pitr_lag_seconds: how far ``LatestRestorableDateTime`` trails the current time.
    :param export_seconds: how long an export stays ``IN_PROGRESS`` before its files are written.
    :param items_per_data_file: items per ``data/*.json.gz`` object, so that small tables still
        produce several data files.
    """
    global _settings, _installed
    if pitr_history_days < 0 or pitr_lag_seconds < 0 or export_seconds < 0:
        raise ValueError("pitr_history_days, pitr_lag_seconds and export_seconds must be >= 0")
    if items_per_data_file < 1:
        raise ValueError("items_per_data_file must be >= 1")
    with _install_lock:
        _settings = _Settings(
            pitr_history_days=pitr_history_days,
            pitr_lag_seconds=pitr_lag_seconds,
            export_seconds=export_seconds,
            items_per_data_file=items_per_data_file,
        )
        if not _installed:
            _patch_moto()
            _installed = True


def _patch_moto() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    _originals["describe_continuous_backups"] = DynamoDBBackend.describe_continuous_backups
    _originals["update_continuous_backups"] = DynamoDBBackend.update_continuous_backups
    # setattr: these are deliberate monkeypatches of moto's classes (mypy forbids method assignment).
    setattr(DynamoDBBackend, "describe_continuous_backups", _backend_describe_continuous_backups)  # noqa: B010
    setattr(DynamoDBBackend, "update_continuous_backups", _backend_update_continuous_backups)  # noqa: B010
    setattr(DynamoDBBackend, "export_table", _backend_export_table)  # noqa: B010
    setattr(DynamoDBBackend, "describe_export", _backend_describe_export)  # noqa: B010
    setattr(DynamoDBBackend, "list_exports", _backend_list_exports)  # noqa: B010
    setattr(DynamoHandler, "export_table_to_point_in_time", _handle_export_table_to_point_in_time)  # noqa: B010
    setattr(DynamoHandler, "describe_export", _handle_describe_export)  # noqa: B010
    setattr(DynamoHandler, "list_exports", _handle_list_exports)  # noqa: B010


# --------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: Any) -> datetime | None:
    """moto keeps naive-UTC datetimes and epoch floats; compare and serialise aware UTC ones."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _iso(value: datetime | None) -> str | None:
    """AWS's manifest timestamp style: ``2020-11-04T07:28:34.028Z``."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _error(code: str, message: str) -> Exception:
    """A DynamoDB JSON error (HTTP 400) that botocore maps to ``code``."""
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(_ERROR_PREFIX + code, message)


def _validation_error(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


def _find_table(backend: DynamoDBBackend, table_arn: str) -> Table:
    from moto.dynamodb.exceptions import TableNotFoundException

    table = next((t for t in list(backend.tables.values()) if t.table_arn == table_arn), None)
    if table is None:
        raise TableNotFoundException(name=table_arn)
    return table


def _table_id(table: Table) -> str:
    """moto has no TableId; derive a stable one per table incarnation (same name recreated = new id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{table.table_arn}#{table.created_at.isoformat()}"))


def _data_file_name() -> str:
    """26 lower-case base32 characters, the shape of AWS's data object names."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


# --------------------------------------------------------------------------- PITR window


def _pitr_view(continuous_backups: dict[str, Any]) -> dict[str, Any]:
    """A copy of moto's stored description with the restorable window computed for *now*.

    moto stores ``unix_time()`` of the moment PITR was enabled under EarliestRestorableDateTime and
    never updates it; we read it as the enable time and never write the stored dict, so the window
    keeps sliding with the clock the way AWS's does.
    """
    view = dict(continuous_backups)
    stored = dict(view.get("PointInTimeRecoveryDescription") or {})
    if stored.get("PointInTimeRecoveryStatus") == "ENABLED":
        earliest, latest = _pitr_window(stored, _now())
        stored["EarliestRestorableDateTime"] = earliest
        stored["LatestRestorableDateTime"] = latest
        stored.setdefault("RecoveryPeriodInDays", _DEFAULT_RECOVERY_PERIOD_DAYS)
    else:
        stored = {"PointInTimeRecoveryStatus": stored.get("PointInTimeRecoveryStatus", "DISABLED")}
    view["PointInTimeRecoveryDescription"] = stored
    return view


def _pitr_window(stored: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    settings = _settings
    enabled_at = _aware(stored.get("EarliestRestorableDateTime")) or now
    period_days = int(stored.get("RecoveryPeriodInDays") or _DEFAULT_RECOVERY_PERIOD_DAYS)
    earliest = max(enabled_at - timedelta(days=settings.pitr_history_days), now - timedelta(days=period_days))
    # Keep the window well-formed just after enabling with pitr_history_days=0.
    latest = max(now - timedelta(seconds=settings.pitr_lag_seconds), earliest)
    return earliest, latest


def _backend_describe_continuous_backups(self: DynamoDBBackend, table_name: str) -> dict[str, Any]:
    return _pitr_view(_originals["describe_continuous_backups"](self, table_name))


def _backend_update_continuous_backups(
    self: DynamoDBBackend, table_name: str, point_in_time_spec: dict[str, Any]
) -> dict[str, Any]:
    period = point_in_time_spec.get("RecoveryPeriodInDays")
    if period is not None and not 1 <= int(period) <= _DEFAULT_RECOVERY_PERIOD_DAYS:
        # botocore only checks the minimum client-side; the service enforces 1..35.
        raise _validation_error(
            f"1 validation error detected: Value '{period}' at "
            "'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy constraint: "
            f"Member must have value {'less' if int(period) > 1 else 'greater'} than or equal to "
            f"{_DEFAULT_RECOVERY_PERIOD_DAYS if int(period) > 1 else 1}"
        )
    return _pitr_view(_originals["update_continuous_backups"](self, table_name, point_in_time_spec))


# --------------------------------------------------------------------------- exports


@dataclass(frozen=True)
class _ExportParams:
    """Everything a ClientToken retry must repeat identically to get the same export back."""

    table_arn: str
    export_time: datetime | None
    s3_bucket: str
    s3_bucket_owner: str | None
    s3_prefix: str | None
    s3_sse_algorithm: str | None
    s3_sse_kms_key_id: str | None
    export_format: str
    export_type: str


@dataclass
class _Export:
    """One export; duck-compatible with moto's TableExport (arn, status, export_type, table, response)."""

    params: _ExportParams
    arn: str
    export_id: str
    table: Table
    table_id: str
    client_token: str | None
    account_id: str
    partition: str
    start_time: datetime
    export_time: datetime
    items_per_data_file: int
    lines: list[str]
    billed_size_bytes: int
    status: str = "IN_PROGRESS"
    end_time: datetime | None = None
    manifest_key: str | None = None
    item_count: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # Why writing _started failed; reported (asynchronously, like AWS) when the export ends.
    start_error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def export_type(self) -> str:
        return self.params.export_type

    @property
    def root(self) -> str:
        """``<prefix>/AWSDynamoDB/<export id>`` (no leading slash without a prefix)."""
        prefix = (self.params.s3_prefix or "").rstrip("/")
        return f"{prefix}/AWSDynamoDB/{self.export_id}" if prefix else f"AWSDynamoDB/{self.export_id}"

    def response(self) -> dict[str, Any]:
        """The ExportDescription, None values omitted (AWS omits absent members)."""
        p = self.params
        with self.lock:
            done = self.status == "COMPLETED"
            description: dict[str, Any] = {
                "ExportArn": self.arn,
                "ExportStatus": self.status,
                "StartTime": self.start_time,
                "EndTime": self.end_time,
                "ExportManifest": self.manifest_key if done else None,
                "TableArn": p.table_arn,
                "TableId": self.table_id,
                "ExportTime": self.export_time,
                "ClientToken": self.client_token,
                "S3Bucket": p.s3_bucket,
                "S3BucketOwner": p.s3_bucket_owner or self.account_id,
                "S3Prefix": p.s3_prefix,
                "S3SseAlgorithm": p.s3_sse_algorithm,
                "S3SseKmsKeyId": p.s3_sse_kms_key_id,
                "FailureCode": self.failure_code,
                "FailureMessage": self.failure_message,
                "ExportFormat": p.export_format,
                "ExportType": p.export_type,
                "BilledSizeBytes": self.billed_size_bytes if done else None,
                "ItemCount": self.item_count if done else None,
            }
        return {key: value for key, value in description.items() if value is not None}

    # ---- S3 side

    def _s3_backend(self) -> Any:
        from moto.s3.models import s3_backends

        # Like moto: the bucket owner's backend; moto resolves buckets of other accounts itself.
        return s3_backends[self.params.s3_bucket_owner or self.account_id][self.partition]

    def _put(self, s3: Any, key: str, body: bytes) -> Any:
        sse = self.params.s3_sse_algorithm
        return s3.put_object(
            bucket_name=self.params.s3_bucket,
            key_name=key,
            value=body,
            encryption=_S3_SSE.get(sse) if sse else None,
            kms_key_id=self.params.s3_sse_kms_key_id if sse == "KMS" else None,
        )

    def write_started(self) -> None:
        """AWS writes an empty ``_started`` first, proving the bucket is writable."""
        try:
            self._put(self._s3_backend(), f"{self.root}/_started", b"")
        except Exception as exc:  # MissingBucket above all; the request itself still succeeds
            self.start_error = exc

    def finish(self, backend: DynamoDBBackend) -> None:
        """Timer callback: write data + manifests, and only then flip the status."""
        if _exports(backend).get(self.arn) is not self:
            return  # moto was reset meanwhile; this export no longer exists
        from moto.s3.exceptions import MissingBucket

        try:
            if self.start_error is not None:
                raise self.start_error
            manifest_key, item_count = self._write_files()
        except MissingBucket:
            self._fail("S3NoSuchBucket", f"The specified bucket does not exist: {self.params.s3_bucket}")
        except Exception as exc:  # surface anything as a FAILED export, as AWS would
            self._fail("UNKNOWN", f"{type(exc).__name__}: {exc}")
        else:
            with self.lock:
                self.manifest_key = manifest_key
                self.item_count = item_count
                self.status = "COMPLETED"

    def _fail(self, code: str, message: str) -> None:
        with self.lock:
            self.end_time = _now()
            self.failure_code = code
            self.failure_message = message
            self.status = "FAILED"

    def _write_files(self) -> tuple[str, int]:
        s3 = self._s3_backend()
        s3.get_bucket(self.params.s3_bucket)  # raises MissingBucket if it went away
        size = self.items_per_data_file
        file_lines: list[str] = []
        for start in range(0, len(self.lines), size):
            chunk = self.lines[start : start + size]
            body = gzip.compress("".join(chunk).encode("utf-8"), mtime=0)
            key = f"{self.root}/data/{_data_file_name()}.json.gz"
            self._put(s3, key, body)
            digest = hashlib.md5(body, usedforsecurity=False)  # S3's ETag / AWS's md5Checksum
            entry = {
                "itemCount": len(chunk),
                "md5Checksum": base64.b64encode(digest.digest()).decode("ascii"),
                "etag": digest.hexdigest(),
                "dataFileS3Key": key,
            }
            file_lines.append(json.dumps(entry, separators=(",", ":")) + "\n")
        files_key = f"{self.root}/manifest-files.json"
        self._put(s3, files_key, "".join(file_lines).encode("utf-8"))

        end_time = _now()
        p = self.params
        summary = {
            "version": _MANIFEST_VERSION,
            "exportArn": self.arn,
            "startTime": _iso(self.start_time),
            "endTime": _iso(end_time),
            "tableArn": p.table_arn,
            "tableId": self.table_id,
            "exportTime": _iso(self.export_time),
            "s3Bucket": p.s3_bucket,
            "s3Prefix": p.s3_prefix,
            "s3SseAlgorithm": p.s3_sse_algorithm,
            "s3SseKmsKeyId": p.s3_sse_kms_key_id,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": self.billed_size_bytes,
            "itemCount": len(self.lines),
            "outputFormat": p.export_format,
            "exportType": p.export_type,
        }
        summary_key = f"{self.root}/manifest-summary.json"
        self._put(s3, summary_key, json.dumps(summary, separators=(",", ":")).encode("utf-8"))
        with self.lock:
            self.end_time = end_time
        return summary_key, len(self.lines)


def _exports(backend: DynamoDBBackend) -> dict[str, _Export]:
    """Our exports live in moto's own ``table_exports`` dict so that a moto reset drops them too."""
    return cast(dict[str, _Export], backend.table_exports)


def _snapshot(table: Table) -> tuple[list[str], int]:
    """The table's items as AWS DYNAMODB_JSON lines, frozen now (the export's start)."""
    from moto.dynamodb.models.utilities import DynamoJsonEncoder

    for attempt in range(5):
        try:
            items = list(table.all_items())
            break
        except RuntimeError:  # a concurrent write resized moto's dicts mid-iteration; retry
            if attempt == 4:
                raise
    lines = [
        json.dumps(item.to_json(root_attr_name="Item"), cls=DynamoJsonEncoder, separators=(",", ":")) + "\n"
        for item in items
    ]
    return lines, sum(item.size() for item in items)


def _backend_export_table(
    self: DynamoDBBackend,
    s3_bucket: str,
    s3_prefix: str | None,
    table_arn: str,
    export_format: str | None,
    export_type: str | None,
    s3_bucket_owner: str | None,
    *,
    export_time: Any = None,
    client_token: str | None = None,
    s3_sse_algorithm: str | None = None,
    s3_sse_kms_key_id: str | None = None,
) -> _Export:
    """Start an export the way AWS does (validation, idempotency, async files)."""
    from moto.dynamodb.exceptions import PointInTimeRecoveryUnavailable

    params = _ExportParams(
        table_arn=table_arn,
        export_time=_aware(export_time),
        s3_bucket=s3_bucket,
        s3_bucket_owner=s3_bucket_owner or None,
        s3_prefix=s3_prefix,
        s3_sse_algorithm=s3_sse_algorithm,
        s3_sse_kms_key_id=s3_sse_kms_key_id,
        export_format=export_format or "DYNAMODB_JSON",
        export_type=export_type or "FULL_EXPORT",
    )
    table = _find_table(self, table_arn)
    with _create_lock:
        now = _now()
        if client_token:
            previous = _export_for_token(self, client_token, now)
            if previous is not None:
                if previous.params != params:
                    raise _error(
                        "ExportConflictException",
                        f"Export with client token {client_token} already exists with different parameters",
                    )
                return previous
        if params.export_format != "DYNAMODB_JSON":
            raise _validation_error(
                f"The emulator only produces DYNAMODB_JSON exports, not {params.export_format}"
            )
        if params.export_type != "FULL_EXPORT":
            raise _validation_error(
                f"The emulator only produces FULL_EXPORT exports, not {params.export_type}"
            )
        if params.s3_sse_algorithm not in (None, *_S3_SSE):
            raise _validation_error(f"Invalid S3SseAlgorithm: {params.s3_sse_algorithm}")
        pitr = table.continuous_backups.get("PointInTimeRecoveryDescription", {})
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise PointInTimeRecoveryUnavailable(name=table.name)
        earliest, _latest = _pitr_window(pitr, now)
        export_time_value = params.export_time or now
        if not earliest <= export_time_value <= now:
            raise _error(
                "InvalidExportTimeException",
                f"Export time {_iso(export_time_value)} is outside the point in time recovery window "
                f"of table {table.name}: it must be between {_iso(earliest)} and {_iso(now)}",
            )

        settings = _settings
        lines, billed = _snapshot(table)
        export_id = f"{int(now.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
        export = _Export(
            params=params,
            arn=f"arn:{self.partition}:dynamodb:{self.region_name}:{self.account_id}"
            f":table/{table.name}/export/{export_id}",
            export_id=export_id,
            table=table,
            table_id=_table_id(table),
            client_token=client_token,
            account_id=self.account_id,
            partition=self.partition,
            start_time=now,
            export_time=export_time_value,
            items_per_data_file=settings.items_per_data_file,
            lines=lines,
            billed_size_bytes=billed,
        )
        _exports(self)[export.arn] = export
    export.write_started()
    timer = threading.Timer(settings.export_seconds, export.finish, args=(self,))
    timer.daemon = True  # never keep the process alive for an export
    timer.start()
    return export


def _export_for_token(backend: DynamoDBBackend, token: str, now: datetime) -> _Export | None:
    for export in list(_exports(backend).values()):
        if not isinstance(export, _Export) or export.client_token != token:
            continue
        with export.lock:
            end_time = export.end_time
        if end_time is None or now - end_time <= _CLIENT_TOKEN_TTL:
            return export
    return None


def _backend_describe_export(self: DynamoDBBackend, export_arn: str) -> _Export:
    export = _exports(self).get(export_arn)
    if not isinstance(export, _Export):
        raise _error("ExportNotFoundException", f"Export not found: {export_arn}")
    return export


def _backend_list_exports(self: DynamoDBBackend, table_arn: str | None) -> list[_Export]:
    """Exports in start order, optionally only those of one table."""
    return [
        e
        for e in list(_exports(self).values())
        if isinstance(e, _Export) and (table_arn is None or e.params.table_arn == table_arn)
    ]


# --------------------------------------------------------------------------- response handlers


def _action_result(payload: dict[str, Any]) -> ActionResult:
    from moto.core.responses import ActionResult

    return ActionResult(payload)


def _handle_export_table_to_point_in_time(self: DynamoHandler) -> ActionResult:
    body = self.body
    export = _backend_export_table(
        self.dynamodb_backend,
        s3_bucket=body["S3Bucket"],
        s3_prefix=body.get("S3Prefix"),
        table_arn=body["TableArn"],
        export_format=body.get("ExportFormat"),  # AWS's default is DYNAMODB_JSON (moto: "DYNAMO_JSON")
        export_type=body.get("ExportType"),
        s3_bucket_owner=body.get("S3BucketOwner"),
        export_time=body.get("ExportTime"),
        client_token=body.get("ClientToken"),
        s3_sse_algorithm=body.get("S3SseAlgorithm"),
        s3_sse_kms_key_id=body.get("S3SseKmsKeyId"),
    )
    return _action_result({"ExportDescription": export.response()})


def _handle_describe_export(self: DynamoHandler) -> ActionResult:
    export = _backend_describe_export(self.dynamodb_backend, self.body["ExportArn"])
    return _action_result({"ExportDescription": export.response()})


def _handle_list_exports(self: DynamoHandler) -> ActionResult:
    body = self.body
    max_results = int(body.get("MaxResults") or _LIST_EXPORTS_MAX)
    if not 1 <= max_results <= _LIST_EXPORTS_MAX:
        raise _validation_error(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value less than or equal to {_LIST_EXPORTS_MAX}"
        )
    exports = _backend_list_exports(self.dynamodb_backend, body.get("TableArn"))
    start = 0
    token = body.get("NextToken")
    if token:
        # The token is the ARN of the last export already returned: stable while exports are added.
        arns = [e.arn for e in exports]
        try:
            start = arns.index(base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")) + 1
        except (ValueError, UnicodeDecodeError):
            raise _validation_error("Invalid NextToken") from None
    page = exports[start : start + max_results]
    result: dict[str, Any] = {
        "ExportSummaries": [
            {"ExportArn": e.arn, "ExportStatus": e.response()["ExportStatus"], "ExportType": e.export_type}
            for e in page
        ]
    }
    if start + max_results < len(exports):
        result["NextToken"] = base64.urlsafe_b64encode(page[-1].arn.encode("utf-8")).decode("ascii")
    return _action_result(result)


# --------------------------------------------------------------------------- servers


class _Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler to leave serve_forever() cleanly."""


def serve(host: str = "127.0.0.1", port: int = 5000, **settings: Unpack[EmulatorSettings]) -> None:
    """install(**settings) then run moto's server (all services, like ``moto_server``), blocking.

    Threaded, until SIGINT/SIGTERM, after which it returns normally (so a CLI can exit 0).  Logs
    ``jit-audit emulator listening on http://host:port`` to stderr once the socket is bound; with
    ``port=0`` the line carries the port the OS picked, which is how a parent process finds it.
    Werkzeug's per-request access lines are off unless the ``werkzeug`` logger was configured.
    """
    install(**settings)
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    access_log = logging.getLogger("werkzeug")
    if access_log.level == logging.NOTSET:
        # No per-request lines unless asked for: a parent that pipes our stderr without reading it
        # would otherwise block the server once the pipe fills.  Errors are still logged.
        access_log.setLevel(logging.WARNING)

    server = make_server(
        host,
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    bound_port = int(server.server_address[1])
    os.environ.setdefault("MOTO_PORT", str(bound_port))  # as moto_server does; some URLs use it

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    print(f"jit-audit emulator listening on http://{host}:{bound_port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_server_class: type[ThreadedMotoServer] | None = None


def _threaded_server_class() -> type[ThreadedMotoServer]:
    """ThreadedMotoServer that reports bind errors and closes its socket (moto 5.2.5 does neither:
    a failed bind leaves start() waiting forever, and stop() leaves the port bound)."""
    global _server_class
    if _server_class is None:
        from moto.server import ThreadedMotoServer

        class _Server(ThreadedMotoServer):
            startup_error: BaseException | None = None

            def _server_entry(self) -> None:
                try:
                    super()._server_entry()
                except BaseException as exc:  # handed to start()'s caller
                    self.startup_error = exc
                    self._server_ready_event.set()
                finally:
                    if self._server is not None:
                        self._server.server_close()

        _server_class = _Server
    return _server_class


class EmulatorThread:
    """The emulator on a background thread of this process, for tests and notebooks.

    ``with EmulatorThread(port=0, export_seconds=0.2) as emu: boto3.client(...,
    endpoint_url=emu.endpoint_url)``.  Port 0 picks a free port.  Backends are moto's process-wide
    state, so every EmulatorThread (and ``mock_aws``) in one process sees the same resources.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **settings: Unpack[EmulatorSettings]) -> None:
        self.host = host
        self.port = port
        self._settings = settings
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server (raises if not started)."""
        if self._server is None:
            raise RuntimeError("EmulatorThread is not running; call start() first")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorThread:
        """install(**settings), then serve on a daemon thread; returns once the socket is bound."""
        if self._server is not None:
            return self
        install(**self._settings)
        server = _threaded_server_class()(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        error = getattr(server, "startup_error", None)
        if error is not None:
            server.stop()
            raise RuntimeError(f"emulator could not listen on {self.host}:{self.port}") from error
        self.port = server.get_host_and_port()[1]
        self._server = server
        return self

    def stop(self) -> None:
        """Shut the server down and free its port (pending export timers are daemon threads)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
