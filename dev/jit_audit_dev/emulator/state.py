"""The emulator's process-wide state: its settings, its clock and small helpers the other modules share."""

from __future__ import annotations

import base64
import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table



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


def current_settings() -> _Settings:
    """The settings of the last :func:`~jit_audit_dev.emulator.install` call."""
    return _settings


def set_settings(settings: _Settings) -> None:
    global _settings
    _settings = settings

# Serialises the ClientToken lookup and the registration of a new export, so two concurrent
# requests with one token cannot both start an export.
_create_lock = threading.Lock()
_originals: dict[str, Any] = {}





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
