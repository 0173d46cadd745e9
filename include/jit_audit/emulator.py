"""Local AWS emulator: moto's server, with DynamoDB table exports that behave like AWS's.

**For local runs and tests only.** Nothing here talks to AWS, nothing is durable, and the
production code paths must never depend on it.  It exists so that the export DAGs, the CLI and the
tests can run the real boto3 calls (``ExportTableToPointInTime`` → poll ``DescribeExport`` → read
the manifests and data files from S3) against something that produces the same objects, keys and
manifest fields as AWS does, instead of each test hand-writing fake exports.

It is moto's server (pinned moto 5.2.5, all services, like ``moto_server``), patched in-process by
:func:`install`.  moto on its own falls short for our purposes: it writes one data file and no
manifests, ignores ``ExportTime``, ``ClientToken`` and incremental exports, returns a malformed
export ARN and no ``ExportManifest``/``StartTime``/``EndTime``/``ExportTime``, and reports a frozen
point-in-time-recovery window.  The patches make these operations follow AWS's documentation:

* ``ExportTableToPointInTime``: ARN ``arn:aws:dynamodb:<region>:<account>:table/<name>/export/<id>``
  with an AWS-shaped export id (14-digit epoch millis of the start, ``-``, 8 hex digits).  The
  export runs asynchronously: ``IN_PROGRESS`` for ``export_seconds``, then the files are written and
  only after that does the status become ``COMPLETED`` (or ``FAILED`` with ``S3NoSuchBucket`` when the
  bucket did not exist).  ``ClientToken`` makes the call idempotent for 8 hours after the export ends;
  the same token with other parameters (incremental ones included) is refused with
  ``ExportConflictException`` (HTTP 400), as the API reference for ``ClientToken`` states.  An
  ``ExportTime`` before the earliest restorable time or in the future is refused with
  ``InvalidExportTimeException``.
* ``FULL_EXPORT`` S3 layout (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html)::

      <S3Prefix>/AWSDynamoDB/<export id>/_started                 (empty, written at the start)
      <S3Prefix>/AWSDynamoDB/<export id>/data/<26 chars>.json.gz   (gzip JSON Lines {"Item": {...}})
      <S3Prefix>/AWSDynamoDB/<export id>/manifest-files.json       (JSON Lines, one per data file)
      <S3Prefix>/AWSDynamoDB/<export id>/manifest-summary.json

  Without an ``S3Prefix`` the keys start at ``AWSDynamoDB/``.  ``manifestFilesS3Key``,
  ``dataFileS3Key`` and ``ExportManifest`` are full object keys (prefix included).
* ``INCREMENTAL_EXPORT`` with ``IncrementalExportSpecification`` (``ExportFromTime`` inclusive,
  ``ExportToTime`` exclusive and defaulting to ``LatestRestorableDateTime`` — "the latest time with
  data available" —, ``ExportViewType`` ``NEW_AND_OLD_IMAGES`` (default) or ``NEW_IMAGE``).  The
  manifests and ``_started`` go under ``<S3Prefix>/AWSDynamoDB/<export id>/`` as above, but the data
  files go to the *shared* ``<S3Prefix>/AWSDynamoDB/data/`` folder, as AWS's incremental manifests
  show.  ``manifest-summary.json`` has AWS's incremental members, in AWS's order: ``version``
  ``"2023-08-01"``, ``exportArn``, ``startTime``, ``endTime``, ``tableArn``, ``tableId``,
  ``exportFromTime``, ``exportToTime``, ``s3Bucket``, ``s3Prefix``, ``s3SseAlgorithm``,
  ``s3SseKmsKeyId``, ``manifestFilesS3Key``, ``billedSizeBytes``, ``itemCount``, ``outputFormat``,
  ``outputView``, ``exportType`` (no ``exportTime``).  Each data line is one changed item,
  compacted over the window::

      {"Metadata":{"WriteTimestampMicros":{"N":"<last write in the window, epoch µs>"}},
       "Keys":{...},"OldImage":{...},"NewImage":{...}}

  ``OldImage`` is the item before the window (only with ``NEW_AND_OLD_IMAGES``, and only if it
  existed), ``NewImage`` the item at the end of the window (only if it still exists): insert =
  ``Keys``+``NewImage``; update = ``Keys``+``OldImage``+``NewImage`` (``NEW_IMAGE``: no ``OldImage``);
  delete = ``Keys``+``OldImage`` (``NEW_IMAGE``: ``Keys`` only); inserted and deleted within the
  window = no line.  ``ItemCount``/``itemCount`` count lines; ``billedSizeBytes`` is at least
  10,000,000 (AWS's minimum).  Refused requests (HTTP 400): ``ExportTime`` given, or no
  ``ExportFromTime``, or an unknown view type → ``ValidationException``; PITR off →
  ``PointInTimeRecoveryUnavailableException``; from ≥ to → ``ValidationException`` with AWS's
  message; a period under 15 minutes or over 24 hours → ``ValidationException``; from before
  ``EarliestRestorableDateTime`` or to after ``LatestRestorableDateTime`` →
  ``InvalidExportTimeException``.  ``DescribeExport`` returns ``ExportType`` and the resolved
  ``IncrementalExportSpecification`` and no ``ExportTime``; the start time is a whole second, as in
  AWS's incremental export ids.
* Write history, which incremental exports read: every item write (``PutItem``, ``UpdateItem``,
  ``DeleteItem``, ``BatchWriteItem``, ``TransactWriteItems`` once it commits, PartiQL) is recorded on
  moto's table object as (emulator-clock µs, keys, old image, new image) in DynamoDB JSON.  It dies
  with the table (``DeleteTable``, ``/moto-api/reset``).  Deleting a missing item records nothing;
  a put that changes nothing is still a write.  Full exports ignore it (see below).
* ``DescribeContinuousBackups``: the restorable window is computed at each call.  The emulator
  pretends point-in-time recovery had already been running ``pitr_history_days`` before it was
  enabled, so tests can export past dates: ``EarliestRestorableDateTime = max(enabled -
  pitr_history_days, now - RecoveryPeriodInDays)``, ``LatestRestorableDateTime = now -
  pitr_lag_seconds`` (AWS's trails by about five minutes).
* S3 conditional writes: ``PutObject`` with ``If-None-Match: *`` (or ``If-Match``) is decided
  atomically, as S3 does (moto checks, then writes, unlocked): of two concurrent writers of one key,
  exactly one wins and the other gets ``412 PreconditionFailed``.  The publication ledger relies on it.
* The emulator's clock: ``now`` = real time + an offset, used for write stamps, export start/end
  times, ``ClientToken`` expiry, the PITR window (including when PITR was enabled) and all time
  validation.  Set it with ``install(clock_offset_seconds=...)`` or at run time on the server
  (both :func:`serve` and :class:`EmulatorThread`)::

      GET  /jit-audit-emulator/clock    → {"offset_seconds": -7200.0, "now": "...Z", "now_epoch_seconds": ...}
      POST /jit-audit-emulator/clock    {"offset_seconds": -7200}   (same answer; 400 if malformed)

  Setting a negative offset, writing, then moving it back is how tests write "in the past".  The
  offset is an emulator setting, not moto state: ``/moto-api/reset`` keeps it (POST 0 to go back),
  while every :func:`install` call (so every ``EmulatorThread.start``) sets it, to 0 by default.
* Fault injection, so tests can prove what the product does when AWS misbehaves (docs/faults.md)::

      POST   /jit-audit-emulator/faults   {"service": "dynamodb", "operation": "ExportTableToPointInTime",
                                            "error": "LimitExceededException", "status": 400, "count": 2}
      GET    /jit-audit-emulator/faults   → {"faults": [... pending, with "remaining" ...]}
      DELETE /jit-audit-emulator/faults   forget every pending fault and end every hold now

  A fault matches the next ``count`` requests (default 1) of ``service`` (the SigV4 signing name:
  ``dynamodb``, ``s3``...) and ``operation`` (the API's name; S3 REST requests are named from
  method, key, query and headers: ``PutObject``, ``CopyObject``, ``DeleteObjects``...), and for
  S3 optionally only keys containing ``key_contains``.  What it does: ``error`` (+ ``status``,
  default 400, and ``message``) answers with AWS's error shape for the protocol (DynamoDB's JSON
  ``__type``, ``com.amazon.coral.availability#ThrottlingException`` for throttling; S3's XML
  ``<Error>``); ``hold_seconds`` with ``hold`` = ``"request"`` (default: before moto sees it) or
  ``"response"`` (moto has done the work, the client hears nothing yet) stalls the request, so a
  client can be killed mid-operation; for ``ExportTableToPointInTime`` only, ``export_seconds``
  keeps the export it starts ``IN_PROGRESS`` that long and ``export_failure`` ``{"code",
  "message"}`` makes it end ``FAILED`` with that FailureCode and FailureMessage.  Malformed faults
  are refused with HTTP 400 naming the member.  Holds and injected export durations end early on
  ``DELETE`` (or a reset).
* Request log: ``GET /jit-audit-emulator/requests[?service=s3&operation=PutObject]`` returns every
  AWS request served, oldest first (``seq``, wall-clock ``time``, ``service``, ``operation``,
  ``method``, ``path``, for S3 ``bucket``/``key`` and the ``keys`` of a ``DeleteObjects``, the
  HTTP ``status`` once answered, ``fault`` (its id) when one matched, ``held`` while held).
  Entries are logged on arrival, so a held request is visible while it waits.  ``DELETE`` empties
  it; the most recent 20,000 are kept.  Faults and the log are cleared by ``/moto-api/reset``.

Limitations (deliberate):

* Full exports have no history: they contain the table's items as they are when the export
  *starts*, whatever ``ExportTime`` says.  ``ExportTime`` is validated and echoed, nothing more.
  A ``FULL_EXPORT`` ignores any ``IncrementalExportSpecification``.
* Only ``DYNAMODB_JSON`` is produced; ``ION`` is refused with a ``ValidationException`` rather than
  faked.
* AWS also writes ``manifest-summary`` and ``manifest-files`` checksum files; their format is not
  documented, so they are not written.  AWS writes at least one (possibly empty) data file per
  partition; the emulator has no partitions and writes no data file when there is nothing to
  export.  Line order follows the first write of each item in the window (AWS's follows
  partitions).  ``s3SseAlgorithm`` is what the request asked for (``null`` if nothing) where AWS
  writes its default, ``AES256``, and a full export's summary carries an ``exportType`` member.
* Not verifiable from AWS's documentation, so chosen here: the error codes for a bad period, a
  missing ``ExportFromTime`` and ``ExportTime`` on an incremental export (``ValidationException``),
  whether ``ExportToTime`` may pass ``LatestRestorableDateTime`` (refused), and whether
  ``DescribeExport`` echoes an ``ExportTime`` for incremental exports (it does not).
* History is kept for the table's whole life (no pruning past the recovery period).  Moving the
  clock backwards past existing writes makes the history non-chronological; exports order writes
  by stamp.  Writes made before PITR was enabled are exportable (the pretended PITR history).
* ``BilledSizeBytes`` is moto's estimate of the items' stored size (full) or the exported lines'
  size with AWS's 10 MB minimum (incremental), not AWS's billing figure.
* ``FilterSpecification`` is ignored.  State lives in moto's in-memory backends of this process and
  is shared by every server started in it; ``install`` settings and the clock are process-wide.
  The clock endpoint's path shadows an S3 path-style object ``clock`` in a bucket named
  ``jit-audit-emulator``.

The module imports neither moto nor Airflow at import time and patches nothing until
:func:`install` (or :func:`serve` / :class:`EmulatorThread`) is called, so importing it is free.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import math
import os
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, cast

if TYPE_CHECKING:
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.server import ThreadedMotoServer

__all__ = ["CLOCK_PATH", "FAULTS_PATH", "REQUESTS_PATH", "EmulatorSettings", "EmulatorThread", "install", "serve"]

_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
# AWS: "A client token is valid for 8 hours after the first request that uses it is completed."
_CLIENT_TOKEN_TTL = timedelta(hours=8)
_DEFAULT_RECOVERY_PERIOD_DAYS = 35
_MANIFEST_VERSION = "2020-06-30"
# What AWS writes in an incremental export's manifest-summary.json "version".
_INCREMENTAL_MANIFEST_VERSION = "2023-08-01"
# "Pick an export period ... from 15 minutes up to 24 hours" (AWS blog introducing incremental export).
_MIN_INCREMENTAL_PERIOD = timedelta(minutes=15)
_MAX_INCREMENTAL_PERIOD = timedelta(hours=24)
# Incremental exports are billed for at least 10 MB; AWS's manifests show billedSizeBytes 10000000.
_INCREMENTAL_MIN_BILLED_BYTES = 10_000_000
_VIEW_TYPES = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")  # ExportViewType in the service model
_DEFAULT_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
#: The emulator-only clock endpoint (GET: read, POST ``{"offset_seconds": <float>}``: set).
CLOCK_PATH = "/jit-audit-emulator/clock"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ExportTableToPointInTime's S3SseAlgorithm values mapped to S3's x-amz-server-side-encryption.
_S3_SSE = {"AES256": "AES256", "KMS": "aws:kms"}
_LIST_EXPORTS_MAX = 25  # ListExportsMaxLimit in the service model


class EmulatorSettings(TypedDict, total=False):
    """Keyword settings accepted by :func:`install`, :func:`serve` and :class:`EmulatorThread`."""

    pitr_history_days: float
    pitr_lag_seconds: float
    export_seconds: float
    items_per_data_file: int
    clock_offset_seconds: float


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
    clock_offset_seconds: float = 0.0,
) -> None:
    """Patch moto in this process (idempotent; calling again updates the settings).

    The patches are applied once, on moto's classes, so they serve moto's server threads as well as
    ``mock_aws`` in this process.  Every call replaces *all* settings (omitted ones go back to their
    defaults, the clock offset included), because the settings are process-wide, not per server.

    :param pitr_history_days: how long point-in-time recovery pretends to have been enabled before
        it really was, so that past ``ExportTime`` values are exportable in tests.
    :param pitr_lag_seconds: how far ``LatestRestorableDateTime`` trails the current time.
    :param export_seconds: how long an export stays ``IN_PROGRESS`` before its files are written.
    :param items_per_data_file: items (lines) per ``data/*.json.gz`` object, so that small tables
        still produce several data files.
    :param clock_offset_seconds: added to the real time to give the emulator's "now" (write stamps,
        export times, the PITR window); negative values write "in the past".  Also settable at
        run time through :data:`CLOCK_PATH`.
    """
    global _settings, _installed
    if pitr_history_days < 0 or pitr_lag_seconds < 0 or export_seconds < 0:
        raise ValueError("pitr_history_days, pitr_lag_seconds and export_seconds must be >= 0")
    if items_per_data_file < 1:
        raise ValueError("items_per_data_file must be >= 1")
    offset_micros = _offset_micros(clock_offset_seconds)
    with _install_lock:
        _settings = _Settings(
            pitr_history_days=pitr_history_days,
            pitr_lag_seconds=pitr_lag_seconds,
            export_seconds=export_seconds,
            items_per_data_file=items_per_data_file,
        )
        _set_clock_offset_micros(offset_micros)
        if not _installed:
            _patch_moto()
            _installed = True


def _patch_moto() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    _originals["describe_continuous_backups"] = DynamoDBBackend.describe_continuous_backups
    _originals["update_continuous_backups"] = DynamoDBBackend.update_continuous_backups
    _originals["update_item"] = DynamoDBBackend.update_item
    _originals["transact_write_items"] = DynamoDBBackend.transact_write_items
    _originals["table_put_item"] = Table.put_item
    _originals["table_delete_item"] = Table.delete_item
    # setattr: these are deliberate monkeypatches of moto's classes (mypy forbids method assignment).
    # Write history: every item write reaches Table.put_item / Table.delete_item (PutItem,
    # BatchWriteItem, TransactWriteItems, PartiQL) except UpdateItem, which edits the stored item in
    # place and is therefore recorded at the backend level.
    setattr(Table, "put_item", _table_put_item)  # noqa: B010
    setattr(Table, "delete_item", _table_delete_item)  # noqa: B010
    setattr(DynamoDBBackend, "update_item", _backend_update_item)  # noqa: B010
    setattr(DynamoDBBackend, "transact_write_items", _backend_transact_write_items)  # noqa: B010
    setattr(DynamoDBBackend, "describe_continuous_backups", _backend_describe_continuous_backups)  # noqa: B010
    setattr(DynamoDBBackend, "update_continuous_backups", _backend_update_continuous_backups)  # noqa: B010
    setattr(DynamoDBBackend, "export_table", _backend_export_table)  # noqa: B010
    setattr(DynamoDBBackend, "describe_export", _backend_describe_export)  # noqa: B010
    setattr(DynamoDBBackend, "list_exports", _backend_list_exports)  # noqa: B010
    setattr(DynamoHandler, "export_table_to_point_in_time", _handle_export_table_to_point_in_time)  # noqa: B010
    setattr(DynamoHandler, "describe_export", _handle_describe_export)  # noqa: B010
    setattr(DynamoHandler, "list_exports", _handle_list_exports)  # noqa: B010
    from moto.s3.responses import S3Response

    _originals["s3_put_object"] = S3Response.put_object
    setattr(S3Response, "put_object", _s3_put_object)  # noqa: B010


# --------------------------------------------------------------------------- S3 conditional writes

# moto checks If-None-Match / If-Match and then writes, unlocked: two concurrent conditional writes
# of one key could both succeed. S3 decides them atomically (one wins, the other gets 412), and the
# publication ledger relies on that, so the emulator writes objects one at a time.
_put_object_lock = threading.Lock()


def _s3_put_object(self: Any) -> Any:
    with _put_object_lock:
        return _originals["s3_put_object"](self)


# --------------------------------------------------------------------------- clock

# Microseconds added to the real time; one process-wide value like the other settings.
_clock_offset = 0
_clock_lock = threading.Lock()


def _offset_micros(seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ValueError(f"clock offset must be a finite number of seconds, not {seconds!r}")
    return round(seconds * 1_000_000)


def _set_clock_offset_micros(micros: int) -> None:
    global _clock_offset
    with _clock_lock:
        _clock_offset = micros


def _now_micros() -> int:
    """The emulator's now, in epoch microseconds (write stamps use this directly)."""
    return time.time_ns() // 1000 + _clock_offset


def _now() -> datetime:
    return _EPOCH + timedelta(microseconds=_now_micros())


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _clock_state() -> dict[str, Any]:
    now = _now_micros()
    return {
        "offset_seconds": _clock_offset / 1_000_000,
        "now": _iso_micros(now),
        "now_epoch_seconds": now / 1_000_000,
    }


def _iso_micros(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- helpers


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
    table = self.tables.get(table_name)  # a missing table is moto's error to raise, below
    before = dict(table.continuous_backups.get("PointInTimeRecoveryDescription") or {}) if table else {}
    result = _originals["update_continuous_backups"](self, table_name, point_in_time_spec)
    stored = result.get("PointInTimeRecoveryDescription") or {}
    if (
        before.get("PointInTimeRecoveryStatus") != "ENABLED"
        and stored.get("PointInTimeRecoveryStatus") == "ENABLED"
    ):
        # moto stamps the enable time with the real clock; use the emulator's (offset) clock.
        enabled_at = _now().timestamp()
        stored["EarliestRestorableDateTime"] = enabled_at
        stored["LatestRestorableDateTime"] = enabled_at
    return _pitr_view(result)


# --------------------------------------------------------------------------- write history

_HISTORY_ATTR = "_jit_audit_write_history"


@dataclass(frozen=True, slots=True)
class _Write:
    """One item write, in DynamoDB JSON (moto's ``Item.to_json()["Attributes"]`` dicts)."""

    micros: int  # emulator-clock epoch microseconds
    keys: dict[str, Any]
    old: dict[str, Any] | None  # None: the item did not exist before
    new: dict[str, Any] | None  # None: the write deleted it


class _History:
    """A table incarnation's writes, oldest first.

    Hung on moto's Table object, so it lives and dies with the table (DeleteTable, moto's reset).
    Copying returns the same object: TransactWriteItems deep-copies tables to roll back, and the
    copy must keep appending to the one history (and not duplicate it).
    """

    __slots__ = ("lock", "writes")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writes: list[_Write] = []

    def __copy__(self) -> _History:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _History:
        return self


# Per request thread: suppress (UpdateItem's own inner put is not a separate write) and buffer
# (TransactWriteItems: writes become history only if the whole transaction succeeds).
_tls = threading.local()


def _history(table: Table) -> _History:
    history = table.__dict__.get(_HISTORY_ATTR)
    if history is None:
        history = table.__dict__.setdefault(_HISTORY_ATTR, _History())  # atomic under the GIL
    return cast(_History, history)


def _image(item: Item | None) -> dict[str, Any] | None:
    # A fresh structure: moto edits stored items in place (UpdateItem), the snapshot must not move.
    return cast(dict[str, Any], item.to_json()["Attributes"]) if item is not None else None


def _record(table: Table, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    image = new if new is not None else old
    if image is None:
        return
    keys = {name: image[name] for name in table.table_key_attrs if name in image}
    write = _Write(_now_micros(), keys, old, new)
    buffer: list[tuple[Table, _Write]] | None = getattr(_tls, "buffer", None)
    if buffer is not None:
        buffer.append((table, write))
        return
    _append(table, write)


def _append(table: Table, write: _Write) -> None:
    history = _history(table)
    with history.lock:
        history.writes.append(write)


def _suppressed() -> bool:
    return bool(getattr(_tls, "suppress", 0))


def _stored_item(table: Table, key: dict[str, Any]) -> Item | None:
    """The item a request's key (or full item) addresses, or None (also for malformed keys)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return table.get_item(hash_value, range_value)
    except Exception:  # moto raises its own validation error for the request itself
        return None


def _table_put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    if _suppressed():
        return cast("Item", _originals["table_put_item"](self, item_attrs, *args, **kwargs))
    old = _image(_stored_item(self, item_attrs))
    item = cast("Item", _originals["table_put_item"](self, item_attrs, *args, **kwargs))
    _record(self, old, _image(item))
    return item


def _table_delete_item(self: Table, hash_key: Any, range_key: Any) -> Item | None:
    item = cast("Item | None", _originals["table_delete_item"](self, hash_key, range_key))
    if item is not None and not _suppressed():  # deleting a missing item writes nothing
        _record(self, _image(item), None)
    return item


def _backend_update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    table = self.tables.get(table_name)
    old = _image(_stored_item(table, key)) if table is not None else None
    _tls.suppress = getattr(_tls, "suppress", 0) + 1
    try:
        item = cast("Item", _originals["update_item"](self, table_name, key, *args, **kwargs))
    finally:
        _tls.suppress -= 1
    if not _suppressed():
        _record(self.get_table(table_name), old, _image(item))
    return item


def _backend_transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if getattr(_tls, "buffer", None) is not None:  # not reentrant in moto either; be safe
        _originals["transact_write_items"](self, transact_items)
        return
    buffer: list[tuple[Table, _Write]] = []
    _tls.buffer = buffer
    try:
        _originals["transact_write_items"](self, transact_items)
    finally:
        _tls.buffer = None
    for table, write in buffer:  # reached only when the transaction committed
        _append(table, write)


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
    # INCREMENTAL_EXPORT only, as requested (ExportToTime None: "latest time with data available").
    export_from_time: datetime | None = None
    export_to_time: datetime | None = None
    export_view_type: str | None = None


@dataclass(frozen=True)
class _Window:
    """An incremental export's resolved IncrementalExportSpecification: [start, end)."""

    start: datetime
    end: datetime
    view_type: str


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
    export_time: datetime | None  # FULL_EXPORT only
    items_per_data_file: int
    lines: list[str]
    billed_size_bytes: int
    window: _Window | None = None  # INCREMENTAL_EXPORT only
    status: str = "IN_PROGRESS"
    end_time: datetime | None = None
    manifest_key: str | None = None
    item_count: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # Why writing _started failed; reported (asynchronously, like AWS) when the export ends.
    start_error: BaseException | None = None
    # (FailureCode, FailureMessage) asked for by an injected fault: the export ends FAILED with them.
    injected_failure: tuple[str, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def export_type(self) -> str:
        return self.params.export_type

    @property
    def root(self) -> str:
        """``<prefix>/AWSDynamoDB/<export id>`` (no leading slash without a prefix)."""
        return f"{self.base}/{self.export_id}"

    @property
    def base(self) -> str:
        """``<prefix>/AWSDynamoDB`` (just ``AWSDynamoDB`` without a prefix)."""
        prefix = (self.params.s3_prefix or "").rstrip("/")
        return f"{prefix}/AWSDynamoDB" if prefix else "AWSDynamoDB"

    @property
    def data_dir(self) -> str:
        """Full exports: ``<root>/data``.  Incremental exports write to the shared
        ``<prefix>/AWSDynamoDB/data`` folder, as AWS does (its manifests list keys there)."""
        return f"{self.base}/data" if self.window is not None else f"{self.root}/data"

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
                "IncrementalExportSpecification": (
                    {
                        "ExportFromTime": self.window.start,
                        "ExportToTime": self.window.end,
                        "ExportViewType": self.window.view_type,
                    }
                    if self.window is not None
                    else None
                ),
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

        if self.injected_failure is not None:
            self._fail(*self.injected_failure)
            return
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
            key = f"{self.data_dir}/{_data_file_name()}.json.gz"
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
        summary: dict[str, Any]
        if self.window is not None:
            summary = self._summary(end_time, files_key)
        else:
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

    def _summary(self, end_time: datetime, files_key: str) -> dict[str, Any]:
        """An incremental export's manifest-summary.json: the members, in the order, AWS writes."""
        p = self.params
        window = cast(_Window, self.window)
        return {
            "version": _INCREMENTAL_MANIFEST_VERSION,
            "exportArn": self.arn,
            "startTime": _iso(self.start_time),
            "endTime": _iso(end_time),
            "tableArn": p.table_arn,
            "tableId": self.table_id,
            "exportFromTime": _iso(window.start),
            "exportToTime": _iso(window.end),
            "s3Bucket": p.s3_bucket,
            "s3Prefix": p.s3_prefix,
            "s3SseAlgorithm": p.s3_sse_algorithm,
            "s3SseKmsKeyId": p.s3_sse_kms_key_id,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": self.billed_size_bytes,
            "itemCount": len(self.lines),
            "outputFormat": p.export_format,
            "outputView": window.view_type,
            "exportType": p.export_type,
        }


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


def _changes(table: Table, window: _Window) -> tuple[list[str], int]:
    """An incremental export's lines: one per item written in [start, end), compacted.

    AWS exports each changed item once, with the item's state before the window (OldImage, when
    it existed and the view has old images) and after it (NewImage, when it still exists), stamped
    with the item's last write in the window.  An item inserted and deleted within the window is
    left out.  Frozen now (the export's start), like full exports.
    """
    from moto.dynamodb.models.utilities import DynamoJsonEncoder

    start, end = _micros(window.start), _micros(window.end)
    history = table.__dict__.get(_HISTORY_ATTR)
    writes: list[_Write] = []
    if isinstance(history, _History):
        with history.lock:
            writes = [w for w in history.writes if start <= w.micros < end]
    writes.sort(key=lambda w: w.micros)  # stable: same-microsecond writes keep their order
    per_item: dict[str, list[_Write]] = {}
    for write in writes:
        key = json.dumps(write.keys, cls=DynamoJsonEncoder, sort_keys=True)
        per_item.setdefault(key, []).append(write)

    lines: list[str] = []
    for item_writes in per_item.values():
        first, last = item_writes[0], item_writes[-1]
        old, new = first.old, last.new
        if old is None and new is None:
            continue  # inserted and deleted inside the window: nothing is exported
        record: dict[str, Any] = {
            "Metadata": {"WriteTimestampMicros": {"N": str(last.micros)}},
            "Keys": last.keys,
        }
        if old is not None and window.view_type == "NEW_AND_OLD_IMAGES":
            record["OldImage"] = old
        if new is not None:
            record["NewImage"] = new
        lines.append(json.dumps(record, cls=DynamoJsonEncoder, separators=(",", ":")) + "\n")
    billed = max(sum(len(line.encode("utf-8")) for line in lines), _INCREMENTAL_MIN_BILLED_BYTES)
    return lines, billed


def _enum_error(value: Any, member: str, allowed: Iterable[str]) -> Exception:
    return _validation_error(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


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
    incremental_export_specification: dict[str, Any] | None = None,
) -> _Export:
    """Start an export the way AWS does (validation, idempotency, async files)."""
    from moto.dynamodb.exceptions import PointInTimeRecoveryUnavailable

    export_type = export_type or "FULL_EXPORT"
    spec = incremental_export_specification
    incremental = export_type == "INCREMENTAL_EXPORT"
    params = _ExportParams(
        table_arn=table_arn,
        export_time=_aware(export_time),
        s3_bucket=s3_bucket,
        s3_bucket_owner=s3_bucket_owner or None,
        s3_prefix=s3_prefix,
        s3_sse_algorithm=s3_sse_algorithm,
        s3_sse_kms_key_id=s3_sse_kms_key_id,
        export_format=export_format or "DYNAMODB_JSON",
        export_type=export_type,
        # A FULL_EXPORT ignores IncrementalExportSpecification (as the emulator always has).
        export_from_time=_aware(spec.get("ExportFromTime")) if incremental and spec else None,
        export_to_time=_aware(spec.get("ExportToTime")) if incremental and spec else None,
        export_view_type=((spec or {}).get("ExportViewType") or _DEFAULT_VIEW_TYPE) if incremental else None,
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
        if params.export_type not in ("FULL_EXPORT", "INCREMENTAL_EXPORT"):
            raise _enum_error(params.export_type, "exportType", ("FULL_EXPORT", "INCREMENTAL_EXPORT"))
        if params.s3_sse_algorithm not in (None, *_S3_SSE):
            raise _validation_error(f"Invalid S3SseAlgorithm: {params.s3_sse_algorithm}")
        if incremental:
            if params.export_time is not None:
                raise _validation_error(
                    "ExportTime cannot be specified for an INCREMENTAL_EXPORT; "
                    "use IncrementalExportSpecification.ExportFromTime and ExportToTime"
                )
            if params.export_from_time is None:
                raise _validation_error(
                    "IncrementalExportSpecification.ExportFromTime is required for an INCREMENTAL_EXPORT"
                )
            if params.export_view_type not in _VIEW_TYPES:
                raise _enum_error(
                    params.export_view_type, "incrementalExportSpecification.exportViewType", _VIEW_TYPES
                )
        pitr = table.continuous_backups.get("PointInTimeRecoveryDescription", {})
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise PointInTimeRecoveryUnavailable(name=table.name)
        earliest, latest = _pitr_window(pitr, now)

        settings = _settings
        window: _Window | None = None
        export_time_value: datetime | None = None
        if incremental:
            window = _incremental_window(params, table, earliest, latest)
            # AWS starts incremental exports on a whole second (ids like 01695097218000-...).
            start_time = now.replace(microsecond=0)
            lines, billed = _changes(table, window)
        else:
            start_time = now
            export_time_value = params.export_time or now
            if not earliest <= export_time_value <= now:
                raise _error(
                    "InvalidExportTimeException",
                    f"Export time {_iso(export_time_value)} is outside the point in time recovery window "
                    f"of table {table.name}: it must be between {_iso(earliest)} and {_iso(now)}",
                )
            lines, billed = _snapshot(table)
        export_id = f"{int(start_time.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
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
            start_time=start_time,
            export_time=export_time_value,
            items_per_data_file=settings.items_per_data_file,
            lines=lines,
            billed_size_bytes=billed,
            window=window,
        )
        override: _ExportOverride | None = getattr(_tls, "export_override", None)
        if override is not None:
            export.injected_failure = override.failure
        _exports(self)[export.arn] = export
    export.write_started()
    if override is not None and override.export_seconds is not None:
        # An injected duration: clearing the faults (DELETE /jit-audit-emulator/faults) ends it early.
        release = _fault_state.current_release()
        seconds = override.export_seconds

        def finish_when_released() -> None:
            release.wait(seconds)
            export.finish(self)

        threading.Thread(target=finish_when_released, name=f"export-{export.export_id}", daemon=True).start()
        return export
    timer = threading.Timer(settings.export_seconds, export.finish, args=(self,))
    timer.daemon = True  # never keep the process alive for an export
    timer.start()
    return export


def _incremental_window(params: _ExportParams, table: Table, earliest: datetime, latest: datetime) -> _Window:
    """Validate an incremental export's period the way AWS documents it."""
    start = cast(datetime, params.export_from_time)
    # "If this is not provided, the latest time with data available will be used."
    end = params.export_to_time or latest
    if start >= end:
        # AWS's own wording for this case.
        raise _validation_error(
            "Incremental export period from time should not be greater or equal to incremental export "
            "period to time"
        )
    if not _MIN_INCREMENTAL_PERIOD <= end - start <= _MAX_INCREMENTAL_PERIOD:
        raise _validation_error(
            f"Incremental export period must be between 15 minutes and 24 hours long; "
            f"{_iso(start)} to {_iso(end)} is {end - start}"
        )
    if start < earliest or end > latest:
        raise _error(
            "InvalidExportTimeException",
            f"Incremental export period {_iso(start)} to {_iso(end)} is outside the point in time recovery "
            f"window of table {table.name}: it must be between {_iso(earliest)} and {_iso(latest)}",
        )
    return _Window(start=start, end=end, view_type=cast(str, params.export_view_type))


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
        incremental_export_specification=body.get("IncrementalExportSpecification"),
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


# --------------------------------------------------------------------------- faults and request log

#: The emulator-only fault endpoint (GET: pending faults, POST: add one, DELETE: clear and release).
FAULTS_PATH = "/jit-audit-emulator/faults"
#: The emulator-only request log (GET: every AWS request served, oldest first; DELETE: forget them).
REQUESTS_PATH = "/jit-audit-emulator/requests"
_RESET_PATH = "/moto-api/reset"
# The request log keeps the most recent requests only, so a long-lived `make up` emulator stays small.
_REQUEST_LOG_MAX = 20_000
_HOLD_PHASES = ("request", "response")
# AWS answers DynamoDB throttling from its availability layer, with this __type prefix.
_JSON_ERROR_PREFIXES = {
    "dynamodb": {"ThrottlingException": "com.amazon.coral.availability#", "*": _ERROR_PREFIX},
}
_SIGV4_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


@dataclass
class _Fault:
    """One injected fault: what it matches, what it does, how many more times."""

    fault_id: int
    service: str
    operation: str
    count: int
    key_contains: str | None = None
    error: str | None = None
    status: int = 400
    message: str | None = None
    hold_seconds: float | None = None
    hold: str = "request"
    export_seconds: float | None = None
    export_failure: tuple[str, str] | None = None

    @classmethod
    def from_json(cls, fault_id: int, payload: Any) -> _Fault:
        """Validate a POSTed fault; every mistake is a ValueError naming the member."""
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object describing one fault")
        known = {"service", "operation", "count", "key_contains", "error", "status", "message", "hold_seconds",
                 "hold", "export_seconds", "export_failure"}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown members {unknown}; known: {sorted(known)}")

        def text(name: str, required: bool = False) -> str | None:
            value = payload.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name!r} must be a non-empty string")
            return value

        def seconds(name: str) -> float | None:
            value = payload.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise ValueError(f"{name!r} must be a number of seconds between 0 and 3600")
            return float(value)

        count = payload.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("'count' must be an integer >= 1")
        status = payload.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("'status' must be an HTTP error status (400-599)")
        hold = payload.get("hold", "request")
        if hold not in _HOLD_PHASES:
            raise ValueError(f"'hold' must be one of {list(_HOLD_PHASES)}")
        failure = payload.get("export_failure")
        export_failure = None
        if failure is not None:
            if not isinstance(failure, dict) or not all(
                isinstance(failure.get(name), str) and failure.get(name) for name in ("code", "message")
            ):
                raise ValueError("'export_failure' must be {\"code\": <FailureCode>, \"message\": <FailureMessage>}")
            export_failure = (failure["code"], failure["message"])
        fault = cls(
            fault_id=fault_id,
            service=cast(str, text("service", required=True)).lower(),
            operation=cast(str, text("operation", required=True)),
            count=count,
            key_contains=text("key_contains"),
            error=text("error"),
            status=status,
            message=text("message"),
            hold_seconds=seconds("hold_seconds"),
            hold=hold,
            export_seconds=seconds("export_seconds"),
            export_failure=export_failure,
        )
        exporting = fault.export_seconds is not None or fault.export_failure is not None
        if exporting and (fault.service, fault.operation) != ("dynamodb", "ExportTableToPointInTime"):
            raise ValueError("'export_seconds' and 'export_failure' apply to dynamodb ExportTableToPointInTime only")
        if fault.error is not None and exporting:
            raise ValueError("an 'error' answers the request itself, so no export starts: drop 'export_*'")
        if fault.error is None and fault.hold_seconds is None and not exporting:
            raise ValueError("a fault needs 'error', 'hold_seconds', 'export_seconds' or 'export_failure'")
        return fault

    def describe(self) -> dict[str, Any]:
        document = {
            "id": self.fault_id,
            "service": self.service,
            "operation": self.operation,
            "remaining": self.count,
            "key_contains": self.key_contains,
            "error": self.error,
            "status": self.status if self.error else None,
            "message": self.message,
            "hold_seconds": self.hold_seconds,
            "hold": self.hold if self.hold_seconds is not None else None,
            "export_seconds": self.export_seconds,
            "export_failure": (
                {"code": self.export_failure[0], "message": self.export_failure[1]} if self.export_failure else None
            ),
        }
        return {name: value for name, value in document.items() if value is not None}


@dataclass(frozen=True)
class _ExportOverride:
    """What a matched fault asks of the export its request starts (read by _backend_export_table)."""

    export_seconds: float | None
    failure: tuple[str, str] | None


class _FaultState:
    """Pending faults, the request log and the event that releases every hold, process-wide."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[_Fault] = []
        self.next_fault_id = 1
        self.requests: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_MAX)
        self.next_seq = 1
        self.release = threading.Event()

    def add(self, payload: Any) -> _Fault:
        with self.lock:
            fault = _Fault.from_json(self.next_fault_id, payload)
            self.next_fault_id += 1
            self.faults.append(fault)
            return fault

    def pending(self) -> list[dict[str, Any]]:
        with self.lock:
            return [fault.describe() for fault in self.faults]

    def take(self, service: str, operation: str, key: str | None) -> _Fault | None:
        """The first pending fault matching this request, one use consumed (None: serve normally)."""
        with self.lock:
            for fault in self.faults:
                if fault.service != service or fault.operation != operation:
                    continue
                if fault.key_contains is not None and (key is None or fault.key_contains not in key):
                    continue
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return replace(fault)
        return None

    def clear_faults(self) -> None:
        """Forget pending faults and end every hold now (held requests and held exports go on)."""
        with self.lock:
            self.faults.clear()
            release, self.release = self.release, threading.Event()
        release.set()

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def log(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            entry["seq"] = self.next_seq
            self.next_seq += 1
            self.requests.append(entry)
        return entry

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        """Change a logged entry (its status, whether it is held); None removes a field."""
        with self.lock:
            for name, value in fields.items():
                if value is None:
                    entry.pop(name, None)
                else:
                    entry[name] = value

    def logged(self, service: str | None, operation: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(entry)
                for entry in self.requests
                if (service is None or entry["service"] == service)
                and (operation is None or entry["operation"] == operation)
            ]

    def current_release(self) -> threading.Event:
        with self.lock:
            return self.release


_fault_state = _FaultState()


def _service_of(environ: dict[str, Any]) -> str:
    """The SigV4 signing name from the Authorization header's credential scope (``s3``, ``dynamodb``...)."""
    match = _SIGV4_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1).lower()
    return "s3" if "X-Amz-Credential" not in environ.get("QUERY_STRING", "") else "unknown"


def _s3_request(environ: dict[str, Any], body: bytes | None) -> tuple[str, str | None, str | None, list[str] | None]:
    """(operation, bucket, key, keys deleted) of a path-style S3 REST request, named as in the API."""
    from urllib.parse import parse_qs, unquote

    path = unquote(environ.get("PATH_INFO", ""))
    bucket, _, key = path.lstrip("/").partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    method = environ.get("REQUEST_METHOD", "GET")
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    deleted: list[str] | None = None
    subresource = next(
        (name for name in ("tagging", "acl", "versioning", "lifecycle", "encryption", "object-lock", "policy",
                           "publicAccessBlock", "location", "retention", "legal-hold", "attributes", "cors")
         if name in query),
        None,
    )
    suffix = "".join(part.capitalize() for part in re.split(r"[-_]", subresource)) if subresource else ""
    if suffix == "Publicaccessblock":
        suffix = "PublicAccessBlock"
    if key:
        if method == "PUT":
            if "uploadId" in query:
                operation = "UploadPartCopy" if copy else "UploadPart"
            else:
                operation = f"PutObject{suffix}" if suffix else ("CopyObject" if copy else "PutObject")
        elif method in ("GET", "HEAD"):
            verb = "Get" if method == "GET" else "Head"
            operation = "ListParts" if "uploadId" in query else f"{verb}Object{suffix}"
        elif method == "DELETE":
            operation = "AbortMultipartUpload" if "uploadId" in query else f"DeleteObject{suffix}"
        elif method == "POST":
            operation = ("CreateMultipartUpload" if "uploads" in query
                         else "CompleteMultipartUpload" if "uploadId" in query else "PostObject")
        else:
            operation = method
        return operation, bucket or None, key, None
    if method == "POST" and "delete" in query:
        deleted = re.findall(r"<Key>([^<]*)</Key>", (body or b"").decode("utf-8", "replace"))
        from html import unescape

        return "DeleteObjects", bucket or None, None, [unescape(name) for name in deleted]
    if not bucket:
        return ("ListBuckets" if method == "GET" else method), None, None, None
    if method == "GET":
        operation = f"GetBucket{suffix}" if suffix else ("ListObjectsV2" if query.get("list-type") == ["2"]
                                                       else "ListObjectVersions" if "versions" in query
                                                       else "ListObjects")
    elif method == "HEAD":
        operation = "HeadBucket"
    elif method == "PUT":
        operation = f"PutBucket{suffix}" if suffix else "CreateBucket"
    elif method == "DELETE":
        operation = f"DeleteBucket{suffix}" if suffix else "DeleteBucket"
    else:
        operation = method
    return operation, bucket, None, None


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read a small request body and put it back, so moto still reads all of it."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _describe_request(environ: dict[str, Any]) -> dict[str, Any]:
    """service, operation and (S3) bucket/key/keys of one AWS request, for the log and for matching."""
    from urllib.parse import parse_qs

    service = _service_of(environ)
    method = environ.get("REQUEST_METHOD", "GET")
    entry: dict[str, Any] = {"service": service, "method": method, "path": environ.get("PATH_INFO", "")}
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        entry["operation"] = target.rpartition(".")[2]
    elif service == "s3":
        query = environ.get("QUERY_STRING", "")
        body = _read_body(environ) if method == "POST" and "delete" in parse_qs(query, keep_blank_values=True) else None
        operation, bucket, key, keys = _s3_request(environ, body)
        entry.update(operation=operation, bucket=bucket, key=key)
        if keys is not None:
            entry["keys"] = keys
    else:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        content_type = environ.get("CONTENT_TYPE", "")
        if not action and method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            action = parse_qs(_read_body(environ).decode("utf-8", "replace")).get("Action")
        entry["operation"] = action[0] if action else method
    return entry


def _error_response(service: str, target: bool, fault: _Fault) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error the way AWS sends it for this protocol (botocore parses code and message from it)."""
    code = cast(str, fault.error)
    message = fault.message or f"{code} (injected by the jit-audit emulator)"
    request_id = str(uuid.uuid4())
    if target:  # JSON protocols (DynamoDB, SQS, ...): __type carries the code
        prefixes = _JSON_ERROR_PREFIXES.get(service, {})
        error_type = prefixes.get(code, prefixes.get("*", "")) + code
        body = json.dumps({"__type": error_type, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
        return fault.status, headers, body
    from xml.sax.saxutils import escape

    if service == "s3":
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
               f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId>"
               f"<HostId>{request_id}</HostId></Error>")
    else:  # query protocol (SNS, ...)
        side = "Sender" if fault.status < 500 else "Receiver"
        xml = (f"<ErrorResponse><Error><Type>{side}</Type><Code>{escape(code)}</Code>"
               f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    return fault.status, headers, xml.encode()


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def _json_response(
    environ: dict[str, Any], start_response: _StartResponse, status: int, body: dict[str, Any], allow: str
) -> Iterable[bytes]:
    from werkzeug.wrappers import Response

    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if status == 405:
        response.headers["Allow"] = allow
    return cast(Iterable[bytes], response(environ, start_response))


def _serve_faults(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
    from werkzeug.wrappers import Request

    request = Request(environ)
    if request.method in ("GET", "HEAD"):
        return _json_response(environ, start_response, 200, {"faults": _fault_state.pending()}, "")
    if request.method == "DELETE":
        _fault_state.clear_faults()
        return _json_response(environ, start_response, 200, {"faults": []}, "")
    if request.method == "POST":
        try:
            fault = _fault_state.add(json.loads(request.get_data() or b"null"))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return _json_response(environ, start_response, 400, {"message": str(exc)}, "")
        return _json_response(environ, start_response, 200, {"fault": fault.describe()}, "")
    return _json_response(environ, start_response, 405, {"message": f"{request.method} not allowed"},
                          "GET, HEAD, POST, DELETE")


def _serve_requests(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
    from werkzeug.wrappers import Request

    request = Request(environ)
    if request.method in ("GET", "HEAD"):
        found = _fault_state.logged(request.args.get("service"), request.args.get("operation"))
        return _json_response(environ, start_response, 200, {"requests": found}, "")
    if request.method == "DELETE":
        _fault_state.clear_requests()
        return _json_response(environ, start_response, 200, {"requests": []}, "")
    return _json_response(environ, start_response, 405, {"message": f"{request.method} not allowed"},
                          "GET, HEAD, DELETE")


def _serve_aws(
    app: Callable[[dict[str, Any], _StartResponse], Iterable[bytes]],
    environ: dict[str, Any],
    start_response: _StartResponse,
) -> Iterable[bytes]:
    """Log the request, apply the first fault that matches it, and let moto answer the rest."""
    entry = _describe_request(environ)
    entry["time"] = _iso_micros(time.time_ns() // 1000)  # wall-clock time, whatever the emulator's clock says
    fault = _fault_state.take(entry["service"], entry["operation"], entry.get("key"))
    if fault is not None:
        entry["fault"] = fault.fault_id
    _fault_state.log(entry)  # logged on arrival: a held request is visible while it waits
    release = _fault_state.current_release()
    if fault is not None and fault.hold_seconds is not None and fault.hold == "request":
        _fault_state.update(entry, held="request")
        release.wait(fault.hold_seconds)
        _fault_state.update(entry, held=None)
    if fault is not None and fault.error is not None:
        status, headers, body = _error_response(entry["service"], "HTTP_X_AMZ_TARGET" in environ, fault)
        _fault_state.update(entry, status=status, error=fault.error)
        start_response(_status_line(status), [*headers, ("Content-Length", str(len(body)))])
        return [body]

    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        _fault_state.update(entry, status=int(status.split(" ", 1)[0]))
        captured.update(status=status, headers=headers, exc_info=exc_info)
        if fault is not None and fault.hold_seconds is not None and fault.hold == "response":
            return lambda data: None  # moto does not use write(); the body is its iterable
        return start_response(status, headers, exc_info)

    if fault is not None and (fault.export_seconds is not None or fault.export_failure is not None):
        _tls.export_override = _ExportOverride(fault.export_seconds, fault.export_failure)
    try:
        result = app(environ, capture)
    finally:
        _tls.export_override = None
    if fault is None or fault.hold_seconds is None or fault.hold != "response":
        return result
    # Done by moto (an export is started, an object written), but the client hears nothing yet.
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    _fault_state.update(entry, held="response")
    release.wait(fault.hold_seconds)
    _fault_state.update(entry, held=None)
    start_response(captured["status"], captured["headers"], captured["exc_info"])
    return [body]


# --------------------------------------------------------------------------- servers


_StartResponse = Callable[..., Any]


class _ControlMiddleware:
    """WSGI wrapper in front of moto: the emulator's own endpoints, the request log and the faults.

    It answers :data:`CLOCK_PATH`, :data:`FAULTS_PATH` and :data:`REQUESTS_PATH` itself, clears
    faults and the request log when moto is reset (``POST /moto-api/reset``), and passes every AWS
    request to moto through :func:`_serve_aws`.  Like moto's ``/moto-api/`` endpoints it answers on
    any host name.
    """

    def __init__(self, app: Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CLOCK_PATH:
            return self._clock(environ, start_response)
        if path == FAULTS_PATH:
            return _serve_faults(environ, start_response)
        if path == REQUESTS_PATH:
            return _serve_requests(environ, start_response)
        if path.startswith("/moto-api/"):
            result = self.app(environ, start_response)
            if path == _RESET_PATH and environ.get("REQUEST_METHOD") == "POST":
                _fault_state.clear_faults()
                _fault_state.clear_requests()
            return result
        return _serve_aws(self.app, environ, start_response)

    @staticmethod
    def _clock(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        """``GET`` returns ``{"offset_seconds", "now", "now_epoch_seconds"}``; ``POST`` with the JSON
        body ``{"offset_seconds": <number>}`` sets the offset and returns the same document."""
        from werkzeug.wrappers import Request

        request = Request(environ)
        status = 200
        if request.method == "POST":
            try:
                payload = json.loads(request.get_data() or b"null")
                if not isinstance(payload, dict) or "offset_seconds" not in payload:
                    raise ValueError('expected a JSON object {"offset_seconds": <number>}')
                _set_clock_offset_micros(_offset_micros(payload["offset_seconds"]))
                body: dict[str, Any] = _clock_state()
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                status, body = 400, {"message": str(exc)}
        elif request.method in ("GET", "HEAD"):
            body = _clock_state()
        else:
            status, body = 405, {"message": f"{request.method} not allowed; use GET or POST"}
        return _json_response(environ, start_response, status, body, "GET, HEAD, POST")


def _wsgi_app() -> _ControlMiddleware:
    """moto's all-services app (as ``moto_server`` builds it), behind the emulator's own endpoints."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    return _ControlMiddleware(DomainDispatcherApplication(create_backend_app))


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
    from moto.server import MotoRequestHandler
    from werkzeug.serving import make_server

    access_log = logging.getLogger("werkzeug")
    if access_log.level == logging.NOTSET:
        # No per-request lines unless asked for: a parent that pipes our stderr without reading it
        # would otherwise block the server once the pipe fills.  Errors are still logged.
        access_log.setLevel(logging.WARNING)

    server = make_server(
        host,
        port,
        _wsgi_app(),
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
    """ThreadedMotoServer that serves the clock endpoint, reports bind errors and closes its socket
    (moto 5.2.5 does neither: a failed bind leaves start() waiting forever, and stop() leaves the
    port bound)."""
    global _server_class
    if _server_class is None:
        from moto.server import ThreadedMotoServer

        class _Server(ThreadedMotoServer):
            startup_error: BaseException | None = None

            def _server_entry(self) -> None:
                # ThreadedMotoServer._server_entry, with the clock endpoint in front of moto's app.
                from moto.server import MotoRequestHandler
                from werkzeug.serving import make_server

                try:
                    self._server = make_server(
                        self._ip_address, self._port, _wsgi_app(), True, request_handler=MotoRequestHandler
                    )
                    self._server_ready_event.set()
                    self._server.serve_forever()
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
