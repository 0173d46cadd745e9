"""DynamoDB table exports (full and incremental) that write what AWS writes, and their API handlers."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

from jit_audit_dev.emulator.faults import _ExportOverride, _fault_state
from jit_audit_dev.emulator.history import (
    _HISTORY_ATTR,
    _History,
    _item_size,
    _key_of,
    _LoadedWrite,
    _tls,
    _Write,
)
from jit_audit_dev.emulator.pitr import _pitr_window
from jit_audit_dev.emulator.state import (
    _CLIENT_TOKEN_TTL,
    _DEFAULT_VIEW_TYPE,
    _INCREMENTAL_MANIFEST_VERSION,
    _INCREMENTAL_MIN_BILLED_BYTES,
    _LIST_EXPORTS_MAX,
    _MANIFEST_VERSION,
    _MAX_INCREMENTAL_PERIOD,
    _MIN_INCREMENTAL_PERIOD,
    _S3_SSE,
    _VIEW_TYPES,
    _aware,
    _create_lock,
    _data_file_name,
    _error,
    _find_table,
    _iso,
    _micros,
    _now,
    _table_id,
    _validation_error,
    current_settings,
)


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


def _snapshot(table: Table, export_time: datetime) -> tuple[list[str], int]:
    """The table's items as they were at ``export_time``, as AWS DYNAMODB_JSON lines, from the write history.

    An item is in the snapshot with its image after its last write at or before ``export_time``
    (absent if that write deleted it); an item first written later is absent.  Items the history has
    no write for at all (a restored table's) were there from the start, as they are now; an item
    whose first recorded write replaced an unrecorded one was there, as that write's old image,
    until that write.  Lines follow the first write of each item, unrecorded items first.  Frozen
    now (the export's start).  A bulk-loaded item (a _LoadedWrite, the put of a new item) brings its
    line and size along, so millions of them cost no parsing here.
    """
    from moto.dynamodb.models.utilities import DynamoJsonEncoder

    cutoff = _micros(export_time)
    history = table.__dict__.get(_HISTORY_ATTR)
    writes: list[_Write | _LoadedWrite] = []
    if isinstance(history, _History):
        with history.lock:
            writes = list(history.writes)
    writes.sort(key=lambda w: w.micros)  # stable: same-microsecond writes keep their order
    # item key -> its image (or bulk-loaded write) at export_time; first-write order
    images: dict[str, dict[str, Any] | _LoadedWrite | None] = {}
    for write in writes:
        if isinstance(write, _LoadedWrite):
            if write.micros <= cutoff:
                images[write.key] = write
            elif write.key not in images:
                images[write.key] = None  # a new item: nothing before it
            continue
        key = _key_of(write.keys)
        if write.micros <= cutoff:
            images[key] = write.new
        elif key not in images:
            images[key] = write.old  # first recorded write is later: the item as it was before it
    current = [item.to_json()["Attributes"] for item in _all_items(table)]
    unrecorded = [image for image in current if _key_of({name: image[name] for name in table.table_key_attrs}) not in images]
    items = [*unrecorded, *(image for image in images.values() if image is not None)]
    lines = [
        image.line if isinstance(image, _LoadedWrite)
        else json.dumps({"Item": image}, cls=DynamoJsonEncoder, separators=(",", ":")) + "\n"
        for image in items
    ]
    # moto's Item.size(): attribute names plus values, the same estimate as for the live table.
    size = sum(image.size if isinstance(image, _LoadedWrite) else _item_size(image) for image in items)
    return lines, size


def _all_items(table: Table) -> list[Any]:
    for attempt in range(5):
        try:
            items = list(table.all_items())
            break
        except RuntimeError:  # a concurrent write resized moto's dicts mid-iteration; retry
            if attempt == 4:
                raise
    return items


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
            in_window = [w for w in history.writes if start <= w.micros < end]
        writes = [w.as_write() if isinstance(w, _LoadedWrite) else w for w in in_window]
    writes.sort(key=lambda w: w.micros)  # stable: same-microsecond writes keep their order
    per_item: dict[str, list[_Write]] = {}
    for write in writes:
        per_item.setdefault(_key_of(write.keys), []).append(write)

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
        earliest, latest = _pitr_window(pitr, now, table)

        settings = current_settings()
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
            lines, billed = _snapshot(table, export_time_value)
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
