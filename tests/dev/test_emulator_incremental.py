"""INCREMENTAL_EXPORT from the local emulator, over real HTTP, against AWS's documented behaviour.

Writes are made "in the past" by moving the emulator's clock (``POST /jit-audit-emulator/clock``),
then incremental exports over windows of that past are checked line by line: one compacted line per
changed item, ``Keys`` plus the images the view type calls for, ``Metadata.WriteTimestampMicros``
of the item's last write in ``[ExportFromTime, ExportToTime)``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulatorlib import emulator_client, wait_for_export

from jit_audit_dev import emulator
from jit_audit_dev.emulator import CLOCK_PATH, EmulatorThread

REGION = "us-east-1"
PER_FILE = 2
SETTINGS: dict[str, Any] = {"export_seconds": 0.2, "items_per_data_file": PER_FILE, "pitr_lag_seconds": 0}
# The members, in order, of AWS's incremental manifest-summary.json.
SUMMARY_FIELDS = [
    "version",
    "exportArn",
    "startTime",
    "endTime",
    "tableArn",
    "tableId",
    "exportFromTime",
    "exportToTime",
    "s3Bucket",
    "s3Prefix",
    "s3SseAlgorithm",
    "s3SseKmsKeyId",
    "manifestFilesS3Key",
    "billedSizeBytes",
    "itemCount",
    "outputFormat",
    "outputView",
    "exportType",
]
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(port=0, **SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def ddb(emu: EmulatorThread) -> Any:
    return emulator_client(emu.endpoint_url, "dynamodb", REGION)


@pytest.fixture(scope="module")
def s3(emu: EmulatorThread) -> Any:
    return emulator_client(emu.endpoint_url, "s3", REGION)


@pytest.fixture(autouse=True)
def _clock_back_to_real_time(emu: EmulatorThread) -> Iterator[None]:
    yield
    _clock(emu.endpoint_url, 0)


# --------------------------------------------------------------------------- helpers


def _http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _clock(endpoint: str, offset_seconds: float | None = None) -> dict[str, Any]:
    """GET the clock, or POST a new offset; returns the endpoint's JSON."""
    if offset_seconds is None:
        status, state = _http(endpoint + CLOCK_PATH)
    else:
        payload = json.dumps({"offset_seconds": offset_seconds}).encode()
        status, state = _http(endpoint + CLOCK_PATH, "POST", payload)
    assert status == 200, state
    return state


def _emu_now(emu: EmulatorThread) -> float:
    return float(_clock(emu.endpoint_url)["now_epoch_seconds"])


def _at(emu: EmulatorThread, offset: timedelta) -> None:
    _clock(emu.endpoint_url, offset.total_seconds())


def _table(ddb: Any, *, pitr: bool = True, name: str | None = None) -> str:
    name = name or f"inc-{uuid.uuid4().hex[:10]}"
    table_arn = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    if pitr:
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return str(table_arn)


def _bucket(s3: Any) -> str:
    name = f"inc-exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _spec(start: datetime, end: datetime | None = None, view: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ExportFromTime": start}
    if end is not None:
        spec["ExportToTime"] = end
    if view is not None:
        spec["ExportViewType"] = view
    return spec


def _incremental(ddb: Any, table_arn: str, bucket: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    started = ddb.export_table_to_point_in_time(
        TableArn=table_arn,
        S3Bucket=bucket,
        ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification=spec,
        **extra,
    )["ExportDescription"]
    assert started["ExportStatus"] == "IN_PROGRESS"
    done = wait_for_export(ddb, started["ExportArn"])
    assert done["ExportStatus"] == "COMPLETED", done
    return done


def _body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def _read(
    s3: Any, bucket: str, done: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    """(summary, manifest-files entries, data lines in manifest order), checksums verified."""
    summary = json.loads(_body(s3, bucket, done["ExportManifest"]))
    entries = [json.loads(line) for line in _body(s3, bucket, summary["manifestFilesS3Key"]).splitlines()]
    lines: list[Any] = []
    for entry in entries:
        raw = _body(s3, bucket, entry["dataFileS3Key"])
        digest = hashlib.md5(raw, usedforsecurity=False)
        assert entry["md5Checksum"] == base64.b64encode(digest.digest()).decode()
        assert entry["etag"] == digest.hexdigest()
        text = gzip.decompress(raw).decode("utf-8")
        assert text.endswith("\n")
        chunk = [json.loads(line) for line in text.splitlines()]
        assert len(chunk) == entry["itemCount"] <= PER_FILE
        lines.extend(chunk)
    return summary, entries, lines


def _by_pk(lines: list[Any]) -> dict[str, Any]:
    by_pk = {line["Keys"]["pk"]["S"]: line for line in lines}
    assert len(by_pk) == len(lines), "one line per changed item"
    return by_pk


def _error(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc_info.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


# --------------------------------------------------------------------------- a table with a past


@pytest.fixture(scope="module")
def history(emu: EmulatorThread, ddb: Any) -> dict[str, Any]:
    """Writes 3 h, 2 h, 1 h 50 min and 1 h ago (emulator clock); the window is [-2h10m, -1h30m).

    Returns the table, the window and, per phase, the emulator-clock bounds of its writes.
    """
    table_arn = _table(ddb)
    name = table_arn.split("/")[-1]
    phases: dict[str, tuple[float, float]] = {}

    @contextlib.contextmanager
    def phase(label: str, offset: timedelta) -> Iterator[None]:
        _at(emu, offset)
        low = _emu_now(emu)
        yield
        phases[label] = (low, _emu_now(emu))

    with phase("before", timedelta(hours=-3)):
        ddb.put_item(TableName=name, Item={"pk": {"S": "mod"}, "v": {"N": "1"}, "tags": {"SS": ["a", "b"]}})
        ddb.put_item(TableName=name, Item={"pk": {"S": "del"}, "v": {"N": "1"}})
        ddb.put_item(TableName=name, Item={"pk": {"S": "before"}, "v": {"N": "1"}})
    with phase("first", timedelta(hours=-2)):
        ddb.put_item(TableName=name, Item={"pk": {"S": "ins"}, "v": {"N": "1"}, "blob": {"B": b"\x00\xff"}})
        updated = ddb.update_item(
            TableName=name,
            Key={"pk": {"S": "mod"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "2"}},
            ReturnValues="ALL_NEW",
        )
        assert updated["Attributes"]["v"] == {"N": "2"}  # moto's responses are untouched
        ddb.delete_item(TableName=name, Key={"pk": {"S": "del"}})
        ddb.delete_item(TableName=name, Key={"pk": {"S": "never-existed"}})  # writes nothing
        ddb.put_item(TableName=name, Item={"pk": {"S": "tmp"}})
        ddb.batch_write_item(
            RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": "batch"}, "v": {"N": "7"}}}}]}
        )
    with phase("second", timedelta(hours=-1, minutes=-50)):
        ddb.update_item(
            TableName=name,
            Key={"pk": {"S": "mod"}},
            UpdateExpression="SET v = :v ADD tags :t",
            ExpressionAttributeValues={":v": {"N": "3"}, ":t": {"SS": ["c"]}},
        )
        ddb.delete_item(TableName=name, Key={"pk": {"S": "tmp"}})
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": name, "Item": {"pk": {"S": "tx"}, "v": {"N": "1"}}}}]
        )
        with pytest.raises(ClientError):  # a cancelled transaction leaves no history
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": {"pk": {"S": "tx-cancelled"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": name,
                            "Key": {"pk": {"S": "before"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
    with phase("after", timedelta(hours=-1)):
        ddb.put_item(TableName=name, Item={"pk": {"S": "late"}})
        ddb.update_item(
            TableName=name,
            Key={"pk": {"S": "before"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "2"}},
        )
    _at(emu, timedelta(0))
    now = _emu_now(emu)
    return {
        "table_arn": table_arn,
        "name": name,
        "start": _utc(now - 2 * 3600 - 600).replace(microsecond=0),
        "end": _utc(now - 3600 - 1800).replace(microsecond=0),
        "phases": phases,
    }


def _stamp(line: dict[str, Any]) -> int:
    assert list(line["Metadata"]) == ["WriteTimestampMicros"]
    ((kind, value),) = line["Metadata"]["WriteTimestampMicros"].items()
    assert kind == "N" and re.fullmatch(r"\d{16}", value)
    return int(value)


def _in_phase(history: dict[str, Any], label: str, micros: int) -> bool:
    low, high = history["phases"][label]
    return int(low * 1_000_000) - 1000 <= micros <= int(high * 1_000_000) + 1000


# --------------------------------------------------------------------------- line shapes


def test_new_and_old_images_lines(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    bucket = _bucket(s3)
    done = _incremental(ddb, history["table_arn"], bucket, _spec(history["start"], history["end"]))
    summary, entries, lines = _read(s3, bucket, done)
    by_pk = _by_pk(lines)

    # Only items written in the window; inserted-then-deleted, no-op deletes, cancelled transactions,
    # writes before and after the window: absent.
    assert set(by_pk) == {"ins", "mod", "del", "batch", "tx"}
    assert (
        done["ItemCount"] == summary["itemCount"] == len(lines) == sum(e["itemCount"] for e in entries) == 5
    )
    assert [e["itemCount"] for e in entries] == [2, 2, 1]

    assert list(by_pk["ins"]) == ["Metadata", "Keys", "NewImage"]  # insert: no OldImage
    assert by_pk["ins"]["Keys"] == {"pk": {"S": "ins"}}
    assert by_pk["ins"]["NewImage"] == {"pk": {"S": "ins"}, "v": {"N": "1"}, "blob": {"B": "AP8="}}

    mod = by_pk["mod"]  # two updates in the window: compacted to before-window -> last state
    assert list(mod) == ["Metadata", "Keys", "OldImage", "NewImage"]
    assert mod["OldImage"] == {"pk": {"S": "mod"}, "v": {"N": "1"}, "tags": {"SS": ["a", "b"]}}
    assert mod["NewImage"]["v"] == {"N": "3"} and sorted(mod["NewImage"]["tags"]["SS"]) == ["a", "b", "c"]

    assert list(by_pk["del"]) == ["Metadata", "Keys", "OldImage"]  # delete: no NewImage
    assert by_pk["del"]["OldImage"] == {"pk": {"S": "del"}, "v": {"N": "1"}}

    assert by_pk["batch"]["NewImage"] == {"pk": {"S": "batch"}, "v": {"N": "7"}}
    assert by_pk["tx"]["NewImage"] == {"pk": {"S": "tx"}, "v": {"N": "1"}}

    # The stamp is the item's last write in the window, in emulator-clock microseconds.
    stamps = {pk: _stamp(line) for pk, line in by_pk.items()}
    assert _in_phase(history, "first", stamps["ins"])
    assert _in_phase(history, "first", stamps["del"])
    assert _in_phase(history, "first", stamps["batch"])
    assert _in_phase(history, "second", stamps["mod"])
    assert _in_phase(history, "second", stamps["tx"])


def test_new_image_lines(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    bucket = _bucket(s3)
    spec = _spec(history["start"], history["end"], "NEW_IMAGE")
    done = _incremental(ddb, history["table_arn"], bucket, spec)
    summary, _entries, lines = _read(s3, bucket, done)
    by_pk = _by_pk(lines)

    assert set(by_pk) == {"ins", "mod", "del", "batch", "tx"}
    assert summary["outputView"] == "NEW_IMAGE"
    assert list(by_pk["ins"]) == ["Metadata", "Keys", "NewImage"]
    assert list(by_pk["mod"]) == ["Metadata", "Keys", "NewImage"]  # update: new image only
    assert by_pk["mod"]["NewImage"]["v"] == {"N": "3"}
    assert list(by_pk["del"]) == ["Metadata", "Keys"]  # delete: just the keys
    assert by_pk["del"]["Keys"] == {"pk": {"S": "del"}}
    assert all("OldImage" not in line for line in lines)


def test_window_is_start_inclusive_end_exclusive(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    bucket = _bucket(s3)
    first = _incremental(ddb, history["table_arn"], bucket, _spec(history["start"], history["end"]))
    stamp = _stamp(_by_pk(_read(s3, bucket, first)[2])["ins"])
    second = _utc(stamp // 1_000_000)  # whole seconds: exact whatever the SDK's timestamp precision

    ending_there = _incremental(
        ddb, history["table_arn"], bucket, _spec(second - timedelta(minutes=20), second)
    )
    assert "ins" not in _by_pk(_read(s3, bucket, ending_there)[2])
    starting_there = _incremental(
        ddb, history["table_arn"], bucket, _spec(second, second + timedelta(minutes=20))
    )
    assert "ins" in _by_pk(_read(s3, bucket, starting_there)[2])

    # Windows entirely before or after the writes: nothing to export, no data file.
    for start in (history["start"] - timedelta(hours=2), history["end"] + timedelta(minutes=31)):
        empty = _incremental(ddb, history["table_arn"], bucket, _spec(start, start + timedelta(minutes=15)))
        summary, entries, lines = _read(s3, bucket, empty)
        assert empty["ItemCount"] == summary["itemCount"] == 0
        assert entries == [] and lines == []


# --------------------------------------------------------------------------- manifests & DescribeExport


def test_manifests_layout_and_describe_export(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    bucket = _bucket(s3)
    start, end = history["start"], history["end"]
    done = _incremental(ddb, history["table_arn"], bucket, _spec(start, end), S3Prefix="cdc/run")
    export_id = done["ExportArn"].rsplit("/", 1)[1]

    assert done["ExportType"] == "INCREMENTAL_EXPORT"
    assert done["IncrementalExportSpecification"] == {
        "ExportFromTime": start,
        "ExportToTime": end,
        "ExportViewType": "NEW_AND_OLD_IMAGES",  # the default
    }
    assert "ExportTime" not in done
    assert done["ItemCount"] == 5
    assert done["BilledSizeBytes"] == 10_000_000  # AWS bills incremental exports 10 MB at least
    # AWS starts incremental exports on a whole second; the id carries those millis.
    assert done["StartTime"].microsecond == 0 and re.fullmatch(r"\d{11}000-[0-9a-f]{8}", export_id)
    assert done["ExportManifest"] == f"cdc/run/AWSDynamoDB/{export_id}/manifest-summary.json"

    summary, entries, _lines = _read(s3, bucket, done)
    assert list(summary) == SUMMARY_FIELDS
    assert summary["version"] == "2023-08-01"
    assert (summary["exportType"], summary["outputView"]) == ("INCREMENTAL_EXPORT", "NEW_AND_OLD_IMAGES")
    assert summary["exportFromTime"] == start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert summary["exportToTime"] == end.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for name in ("startTime", "endTime", "exportFromTime", "exportToTime"):
        assert ISO_MILLIS.match(summary[name]), summary[name]
    assert summary["exportArn"] == done["ExportArn"] and summary["tableArn"] == history["table_arn"]
    assert summary["tableId"] == done["TableId"]
    assert (summary["s3Bucket"], summary["s3Prefix"]) == (bucket, "cdc/run")
    assert summary["manifestFilesS3Key"] == f"cdc/run/AWSDynamoDB/{export_id}/manifest-files.json"
    assert (summary["itemCount"], summary["billedSizeBytes"]) == (5, 10_000_000)
    assert summary["outputFormat"] == "DYNAMODB_JSON"

    # Manifests under the export id; data files in the shared <prefix>/AWSDynamoDB/data/ folder.
    data_keys = sorted(entry["dataFileS3Key"] for entry in entries)
    assert all(re.fullmatch(r"cdc/run/AWSDynamoDB/data/[a-z2-7]{26}\.json\.gz", key) for key in data_keys)
    assert _keys(s3, bucket) == sorted(
        [
            f"cdc/run/AWSDynamoDB/{export_id}/_started",
            f"cdc/run/AWSDynamoDB/{export_id}/manifest-files.json",
            f"cdc/run/AWSDynamoDB/{export_id}/manifest-summary.json",
            *data_keys,
        ]
    )

    listed = ddb.list_exports(TableArn=history["table_arn"])["ExportSummaries"]
    assert {
        "ExportArn": done["ExportArn"],
        "ExportStatus": "COMPLETED",
        "ExportType": "INCREMENTAL_EXPORT",
    } in listed


def test_export_to_time_defaults_to_the_latest_restorable_time(
    emu: EmulatorThread, ddb: Any, s3: Any
) -> None:
    table_arn = _table(ddb)
    name = table_arn.split("/")[-1]
    _at(emu, timedelta(minutes=-30))
    ddb.put_item(TableName=name, Item={"pk": {"S": "recent"}})
    _at(emu, timedelta(0))
    start = _utc(_emu_now(emu) - 3600)

    done = _incremental(ddb, table_arn, _bucket(s3), _spec(start))
    spec = done["IncrementalExportSpecification"]
    latest = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"
    ]["LatestRestorableDateTime"]
    assert timedelta(0) <= latest - spec["ExportToTime"] < timedelta(seconds=5)
    assert spec["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    assert done["ItemCount"] == 1


def test_client_token_covers_the_incremental_parameters(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    bucket = _bucket(s3)
    request = {
        "TableArn": history["table_arn"],
        "S3Bucket": bucket,
        "ExportType": "INCREMENTAL_EXPORT",
        "ClientToken": f"inc-{uuid.uuid4().hex[:8]}",
    }
    spec = _spec(history["start"], history["end"])
    first = ddb.export_table_to_point_in_time(IncrementalExportSpecification=spec, **request)
    again = ddb.export_table_to_point_in_time(IncrementalExportSpecification=dict(spec), **request)
    assert again["ExportDescription"]["ExportArn"] == first["ExportDescription"]["ExportArn"]

    for change in (
        {"ExportViewType": "NEW_IMAGE"},
        {"ExportToTime": history["end"] - timedelta(minutes=1)},
        {"ExportFromTime": history["start"] + timedelta(minutes=1)},
    ):
        with pytest.raises(ClientError) as exc_info:
            ddb.export_table_to_point_in_time(IncrementalExportSpecification={**spec, **change}, **request)
        assert _error(exc_info)[:2] == ("ExportConflictException", 400)
    with pytest.raises(ClientError) as exc_info:  # a full export is another request too
        ddb.export_table_to_point_in_time(**{**request, "ExportType": "FULL_EXPORT"})
    assert _error(exc_info)[:2] == ("ExportConflictException", 400)
    wait_for_export(ddb, first["ExportDescription"]["ExportArn"])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("window", "code", "message"),
    [
        pytest.param(
            (timedelta(hours=-1), timedelta(hours=-1, minutes=14, seconds=59)),
            "ValidationException",
            "between 15 minutes and 24 hours",
            id="period-under-15-minutes",
        ),
        pytest.param(
            (timedelta(hours=-26), timedelta(hours=-2, seconds=1)),
            "ValidationException",
            "between 15 minutes and 24 hours",
            id="period-over-24-hours",
        ),
        pytest.param(
            (timedelta(hours=-1), timedelta(hours=-1)),
            "ValidationException",
            "from time should not be greater or equal to incremental export period to time",
            id="from-equals-to",
        ),
        pytest.param(
            (timedelta(hours=-1), timedelta(hours=-2)),
            "ValidationException",
            "from time should not be greater or equal to incremental export period to time",
            id="from-after-to",
        ),
        pytest.param(
            (timedelta(days=-36), timedelta(days=-36, hours=1)),
            "InvalidExportTimeException",
            "outside the point in time recovery window",
            id="from-before-earliest-restorable",
        ),
        pytest.param(
            (timedelta(minutes=-10), timedelta(minutes=10)),
            "InvalidExportTimeException",
            "outside the point in time recovery window",
            id="to-in-the-future",
        ),
    ],
)
def test_invalid_periods_are_refused(
    emu: EmulatorThread,
    ddb: Any,
    s3: Any,
    window: tuple[timedelta, timedelta],
    code: str,
    message: str,
) -> None:
    table_arn = _table(ddb)
    now = _utc(_emu_now(emu))
    with pytest.raises(ClientError) as exc_info:
        ddb.export_table_to_point_in_time(
            TableArn=table_arn,
            S3Bucket=_bucket(s3),
            ExportType="INCREMENTAL_EXPORT",
            IncrementalExportSpecification=_spec(now + window[0], now + window[1]),
        )
    got_code, status, got_message = _error(exc_info)
    assert (got_code, status) == (code, 400)
    assert message in got_message
    assert ddb.list_exports(TableArn=table_arn)["ExportSummaries"] == []


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        pytest.param({"ExportTime": "now"}, "ValidationException", id="export-time-given"),
        pytest.param({"IncrementalExportSpecification": None}, "ValidationException", id="no-specification"),
        pytest.param(
            {"IncrementalExportSpecification": {"ExportToTime": "now"}},
            "ValidationException",
            id="no-export-from-time",
        ),
        pytest.param(
            {"IncrementalExportSpecification": {"ExportFromTime": "1h", "ExportViewType": "OLD_IMAGE"}},
            "ValidationException",
            id="unknown-view-type",
        ),
    ],
)
def test_malformed_requests_are_refused(
    emu: EmulatorThread, ddb: Any, s3: Any, extra: dict[str, Any], code: str
) -> None:
    table_arn = _table(ddb)
    now = _utc(_emu_now(emu))
    times = {"now": now - timedelta(minutes=5), "1h": now - timedelta(hours=1)}
    request: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": _bucket(s3),
        "ExportType": "INCREMENTAL_EXPORT",
        "IncrementalExportSpecification": _spec(now - timedelta(hours=1)),
    }
    for name, value in extra.items():
        if value is None:
            request.pop(name)
        elif isinstance(value, dict):
            request[name] = {k: times.get(v, v) for k, v in value.items()}
        else:
            request[name] = times[value]
    with pytest.raises(ClientError) as exc_info:
        ddb.export_table_to_point_in_time(**request)
    assert _error(exc_info)[:2] == (code, 400)
    assert ddb.list_exports(TableArn=table_arn)["ExportSummaries"] == []


def test_pitr_disabled_is_point_in_time_recovery_unavailable(emu: EmulatorThread, ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb, pitr=False)
    now = _utc(_emu_now(emu))
    with pytest.raises(ClientError) as exc_info:
        _incremental(ddb, table_arn, _bucket(s3), _spec(now - timedelta(hours=1)))
    assert _error(exc_info)[:2] == ("PointInTimeRecoveryUnavailableException", 400)


def test_pitr_window_follows_the_emulator_clock(emu: EmulatorThread, ddb: Any, s3: Any) -> None:
    """With no pretended PITR history, the window starts when PITR was enabled on the emulator clock."""
    emulator.install(pitr_history_days=0, **SETTINGS)  # process-wide: restored below
    try:
        _at(emu, timedelta(hours=-2))
        table_arn = _table(ddb)  # PITR enabled "2 hours ago"
        name = table_arn.split("/")[-1]
        _at(emu, timedelta(hours=-2, seconds=10))
        ddb.put_item(TableName=name, Item={"pk": {"S": "early"}})
        _at(emu, timedelta(0))
        earliest = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"
        ]["EarliestRestorableDateTime"]
        assert abs(earliest.timestamp() - (time.time() - 7200)) < 5

        with pytest.raises(ClientError) as exc_info:
            ddb.export_table_to_point_in_time(
                TableArn=table_arn,
                S3Bucket=_bucket(s3),
                ExportType="INCREMENTAL_EXPORT",
                IncrementalExportSpecification=_spec(
                    earliest - timedelta(minutes=10), earliest + timedelta(minutes=10)
                ),
            )
        assert _error(exc_info)[:2] == ("InvalidExportTimeException", 400)
        start = earliest.replace(microsecond=0) + timedelta(seconds=2)  # after PITR, before the write
        done = _incremental(ddb, table_arn, _bucket(s3), _spec(start, start + timedelta(minutes=30)))
        assert done["ItemCount"] == 1
    finally:
        emulator.install(**SETTINGS)


# --------------------------------------------------------------------------- the clock endpoint


def test_clock_endpoint_moves_now(emu: EmulatorThread, ddb: Any) -> None:
    state = _clock(emu.endpoint_url)
    assert state["offset_seconds"] == 0
    assert abs(state["now_epoch_seconds"] - time.time()) < 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", state["now"])

    moved = _clock(emu.endpoint_url, -3600.5)
    assert moved["offset_seconds"] == -3600.5
    assert abs(moved["now_epoch_seconds"] - (time.time() - 3600.5)) < 2
    assert _clock(emu.endpoint_url)["offset_seconds"] == -3600.5

    # The PITR window (pitr_lag_seconds=0 here) follows the emulator's now.
    name = _table(ddb).split("/")[-1]
    latest = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"
    ]["LatestRestorableDateTime"]
    assert abs(latest.timestamp() - (time.time() - 3600.5)) < 2

    url = emu.endpoint_url + CLOCK_PATH
    for body in (b"not json", b"[]", b"{}", b'{"offset_seconds": "soon"}', b'{"offset_seconds": true}'):
        status, answer = _http(url, "POST", body)
        assert status == 400 and answer["message"], body
    assert _http(url, "PUT", b"{}")[0] == 405
    assert _clock(emu.endpoint_url)["offset_seconds"] == -3600.5  # bad requests changed nothing


def test_install_sets_the_clock_offset(emu: EmulatorThread) -> None:
    emulator.install(clock_offset_seconds=-60, **SETTINGS)
    try:
        assert _clock(emu.endpoint_url)["offset_seconds"] == -60
        with pytest.raises(ValueError, match="finite"):
            emulator.install(clock_offset_seconds=float("nan"), **SETTINGS)
    finally:
        emulator.install(**SETTINGS)
    assert _clock(emu.endpoint_url)["offset_seconds"] == 0


def test_serve_answers_the_clock_endpoint() -> None:
    code = "from jit_audit_dev.emulator import serve; serve(port=0, export_seconds=0.1)"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        for line in proc.stderr or []:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        match = re.fullmatch(
            r"jit-audit emulator listening on (http://127\.0\.0\.1:\d+)\n", lines.get(timeout=15)
        )
        assert match
        assert _clock(match.group(1), 120)["offset_seconds"] == 120
        assert _clock(match.group(1))["offset_seconds"] == 120
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Last: moto's reset empties every backend of this process.
def test_moto_reset_clears_the_history_and_keeps_the_clock(emu: EmulatorThread, ddb: Any, s3: Any) -> None:
    name = f"inc-reset-{uuid.uuid4().hex[:8]}"
    _at(emu, timedelta(hours=-1))
    _table(ddb, name=name)
    ddb.put_item(TableName=name, Item={"pk": {"S": "forgotten"}})
    start = _utc(_emu_now(emu) - 60)
    _at(emu, timedelta(minutes=-30))

    status, _ = _http(emu.endpoint_url + "/moto-api/reset", "POST", b"")
    assert status == 200
    assert _clock(emu.endpoint_url)["offset_seconds"] == -1800  # the clock survives a reset
    assert ddb.list_tables()["TableNames"] == []

    table_arn = _table(ddb, name=name)  # same name, new table: no history of the old one
    done = _incremental(ddb, table_arn, _bucket(s3), _spec(start, start + timedelta(minutes=20)))
    assert done["ItemCount"] == 0
