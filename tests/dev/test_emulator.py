"""The local AWS emulator behaves like AWS's documented DynamoDB export, over real HTTP.

Every test talks to one in-process emulator through ordinary boto3 clients (dummy credentials
passed as parameters), so what is checked is what the export DAGs and the CLI will see.
"""

from __future__ import annotations

import base64
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
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from emulatorlib import emulator_client, wait_for_export

from jit_audit_dev import emulator
from jit_audit_dev.emulator import CLOCK_PATH, EmulatorThread

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PER_FILE = 3
SETTINGS: dict[str, Any] = {"export_seconds": 0.2, "items_per_data_file": PER_FILE}
SUMMARY_FIELDS = {
    "version",
    "exportArn",
    "startTime",
    "endTime",
    "tableArn",
    "tableId",
    "exportTime",
    "s3Bucket",
    "s3Prefix",
    "s3SseAlgorithm",
    "s3SseKmsKeyId",
    "manifestFilesS3Key",
    "billedSizeBytes",
    "itemCount",
    "outputFormat",
    "exportType",
}
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


# --------------------------------------------------------------------------- helpers


def _table(ddb: Any, *, pitr: bool = True, items: list[dict[str, Any]] | None = None) -> str:
    name = f"audit-{uuid.uuid4().hex[:10]}"
    table_arn = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    for item in items or []:
        ddb.put_item(TableName=name, Item=item)
    if pitr:
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return str(table_arn)


def _bucket(s3: Any) -> str:
    name = f"exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _items(n: int) -> list[dict[str, Any]]:
    """Items using every DynamoDB JSON type, binary included."""
    return [
        {
            "pk": {"S": f"user#{i:02d}"},
            "n": {"N": str(i * 10 + 0.5)},
            "blob": {"B": bytes([i, 0, 255])},
            "ok": {"BOOL": i % 2 == 0},
            "nothing": {"NULL": True},
            "tags": {"SS": ["a", f"t{i}"]},
            "nums": {"NS": ["1", str(i + 2)]},
            "list": {"L": [{"S": "x"}, {"N": "1"}, {"B": b"\x01"}]},
            "map": {"M": {"k": {"S": "é ü"}, "inner": {"M": {"b": {"B": b"zz"}}}}},
        }
        for i in range(n)
    ]


def _as_export_json(value: Any) -> Any:
    """AWS's DYNAMODB_JSON export writes binary values base64-encoded."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _as_export_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_export_json(v) for v in value]
    return value


def _canonical(item: dict[str, Any]) -> dict[str, Any]:
    """Sets are unordered in DynamoDB: compare them sorted."""
    out: dict[str, Any] = {}
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        out[name] = {kind: sorted(value) if kind in ("SS", "NS", "BS") else value}
    return out


def _keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def _body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _set_clock(emu: EmulatorThread, offset: timedelta) -> None:
    """Move the emulator's clock (its write stamps) by ``offset`` from the real time."""
    request = urllib.request.Request(
        emu.endpoint_url + CLOCK_PATH,
        data=json.dumps({"offset_seconds": offset.total_seconds()}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _export_id(export_arn: str) -> str:
    return export_arn.rsplit("/", 1)[1]


def _error(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc_info.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


# --------------------------------------------------------------------------- export: shape & files


def test_arn_shape_and_in_progress_until_the_files_exist(ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb, items=_items(4))
    bucket = _bucket(s3)
    started = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=bucket, S3Prefix="runs/one")
    description = started["ExportDescription"]
    export_arn = description["ExportArn"]
    table_name = table_arn.split("/")[-1]

    assert re.fullmatch(
        rf"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{re.escape(table_name)}/export/\d{{14}}-[0-9a-f]{{8}}",
        export_arn,
    )
    # The id's 14 digits are the start time in epoch millis, as in AWS's examples.
    millis = int(_export_id(export_arn).split("-")[0])
    assert abs(millis / 1000 - description["StartTime"].timestamp()) < 0.002
    assert description["ExportStatus"] == "IN_PROGRESS"

    in_progress = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
    assert in_progress["ExportStatus"] == "IN_PROGRESS"
    for absent in ("ExportManifest", "EndTime", "ItemCount", "FailureCode"):
        assert absent not in in_progress
    root = f"runs/one/AWSDynamoDB/{_export_id(export_arn)}"
    assert _keys(s3, bucket) == [f"{root}/_started"]  # written at the start, empty
    assert _body(s3, bucket, f"{root}/_started") == b""

    # The first COMPLETED we observe must already have every file in place.
    deadline = time.monotonic() + 10
    while (status := ddb.describe_export(ExportArn=export_arn)["ExportDescription"])["ExportStatus"] == (
        "IN_PROGRESS"
    ):
        assert time.monotonic() < deadline
    assert status["ExportStatus"] == "COMPLETED"
    s3.head_object(Bucket=bucket, Key=status["ExportManifest"])
    s3.head_object(Bucket=bucket, Key=f"{root}/manifest-files.json")


def test_s3_layout_and_manifests_match_the_table(ddb: Any, s3: Any) -> None:
    items = _items(8)  # 3 + 3 + 2 items with items_per_data_file=3
    table_arn = _table(ddb, items=items)
    bucket = _bucket(s3)
    export_arn = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=bucket, S3Prefix="audit")[
        "ExportDescription"
    ]["ExportArn"]
    done = wait_for_export(ddb, export_arn)
    assert done["ExportStatus"] == "COMPLETED"

    root = f"audit/AWSDynamoDB/{_export_id(export_arn)}"
    keys = _keys(s3, bucket)
    data_keys = [k for k in keys if k.startswith(f"{root}/data/")]
    assert set(keys) - set(data_keys) == {
        f"{root}/_started",
        f"{root}/manifest-summary.json",
        f"{root}/manifest-files.json",
    }
    assert len(data_keys) == 3
    assert all(re.fullmatch(rf"{root}/data/[a-z2-7]{{26}}\.json\.gz", k) for k in data_keys)

    summary = json.loads(_body(s3, bucket, f"{root}/manifest-summary.json"))
    assert set(summary) == SUMMARY_FIELDS
    assert summary["version"] == "2020-06-30"
    assert summary["exportArn"] == export_arn
    assert summary["tableArn"] == table_arn
    assert summary["tableId"] == done["TableId"]
    assert summary["s3Bucket"] == bucket
    assert summary["s3Prefix"] == "audit"
    assert summary["s3SseAlgorithm"] is None and summary["s3SseKmsKeyId"] is None
    assert summary["manifestFilesS3Key"] == f"{root}/manifest-files.json"
    assert summary["itemCount"] == 8
    assert summary["billedSizeBytes"] == done["BilledSizeBytes"] > 0
    assert summary["outputFormat"] == "DYNAMODB_JSON"
    assert summary["exportType"] == "FULL_EXPORT"
    for name in ("startTime", "endTime", "exportTime"):
        assert ISO_MILLIS.match(summary[name]), summary[name]
    assert summary["startTime"] <= summary["endTime"]

    entries = [json.loads(line) for line in _body(s3, bucket, summary["manifestFilesS3Key"]).splitlines()]
    assert all(set(entry) == {"itemCount", "md5Checksum", "etag", "dataFileS3Key"} for entry in entries)
    assert sorted(entry["dataFileS3Key"] for entry in entries) == data_keys
    assert sum(entry["itemCount"] for entry in entries) == 8

    exported: list[dict[str, Any]] = []
    for entry in entries:
        raw = _body(s3, bucket, entry["dataFileS3Key"])
        digest = hashlib.md5(raw, usedforsecurity=False)
        assert entry["md5Checksum"] == base64.b64encode(digest.digest()).decode()
        assert entry["etag"] == digest.hexdigest()
        assert s3.head_object(Bucket=bucket, Key=entry["dataFileS3Key"])["ETag"].strip('"') == entry["etag"]
        text = gzip.decompress(raw).decode("utf-8")
        assert text.endswith("\n")
        lines = [json.loads(line) for line in text.splitlines()]
        assert len(lines) == entry["itemCount"] <= PER_FILE
        assert all(list(line) == ["Item"] for line in lines)
        exported.extend(line["Item"] for line in lines)

    assert sorted((_canonical(i) for i in exported), key=lambda i: i["pk"]["S"]) == [
        _canonical(_as_export_json(i)) for i in items
    ]
    # Files in manifest order hold the items in the order they were first written: deterministic.
    assert [i["pk"]["S"] for i in exported] == [i["pk"]["S"] for i in items]


def test_items_are_snapshotted_when_the_export_starts(ddb: Any, s3: Any) -> None:
    items = _items(2)
    table_arn = _table(ddb, items=items)
    name = table_arn.split("/")[-1]
    bucket = _bucket(s3)
    export_arn = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=bucket)["ExportDescription"][
        "ExportArn"
    ]
    ddb.put_item(TableName=name, Item={"pk": {"S": "late"}})  # while IN_PROGRESS
    ddb.delete_item(TableName=name, Key={"pk": items[0]["pk"]})
    done = wait_for_export(ddb, export_arn)

    assert done["ItemCount"] == 2
    (data_key,) = [k for k in _keys(s3, bucket) if "/data/" in k]
    pks = [
        json.loads(line)["Item"]["pk"]["S"]
        for line in gzip.decompress(_body(s3, bucket, data_key)).splitlines()
    ]
    assert pks == ["user#00", "user#01"]


def test_empty_table_without_prefix_has_no_leading_slash_and_no_data_file(ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb)
    bucket = _bucket(s3)
    export_arn = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=bucket)["ExportDescription"][
        "ExportArn"
    ]
    done = wait_for_export(ddb, export_arn)

    root = f"AWSDynamoDB/{_export_id(export_arn)}"
    assert done["ExportStatus"] == "COMPLETED"
    assert done["ItemCount"] == 0
    assert "S3Prefix" not in done
    assert done["ExportManifest"] == f"{root}/manifest-summary.json"
    assert _keys(s3, bucket) == [
        f"{root}/_started",
        f"{root}/manifest-files.json",
        f"{root}/manifest-summary.json",
    ]
    assert _body(s3, bucket, f"{root}/manifest-files.json") == b""
    summary = json.loads(_body(s3, bucket, done["ExportManifest"]))
    assert summary["itemCount"] == 0 and summary["s3Prefix"] is None


def test_describe_export_fields_and_sse(emu: EmulatorThread, ddb: Any, s3: Any) -> None:
    _set_clock(emu, timedelta(days=-2))  # the items must be there a day ago, when the export is as of
    try:
        table_arn = _table(ddb, items=_items(4))
    finally:
        _set_clock(emu, timedelta(0))
    bucket = _bucket(s3)
    export_time = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=123000)
    started = ddb.export_table_to_point_in_time(
        TableArn=table_arn,
        ExportTime=export_time,
        ClientToken="describe-fields",
        S3Bucket=bucket,
        S3Prefix="p/q",
        S3SseAlgorithm="KMS",
        S3SseKmsKeyId="arn:aws:kms:us-east-1:123456789012:key/test-key",
    )["ExportDescription"]
    done = wait_for_export(ddb, started["ExportArn"])

    assert done["ExportStatus"] == "COMPLETED"
    assert done["ExportManifest"] == f"p/q/AWSDynamoDB/{_export_id(done['ExportArn'])}/manifest-summary.json"
    assert isinstance(done["StartTime"], datetime) and isinstance(done["EndTime"], datetime)
    assert done["StartTime"] == started["StartTime"] <= done["EndTime"]
    assert done["ExportTime"] == started["ExportTime"] == export_time
    assert done["ItemCount"] == 4 and done["BilledSizeBytes"] > 0
    assert done["ClientToken"] == "describe-fields"
    assert done["TableArn"] == table_arn and re.fullmatch(r"[0-9a-f-]{36}", done["TableId"])
    assert (done["S3Bucket"], done["S3BucketOwner"], done["S3Prefix"]) == (bucket, ACCOUNT, "p/q")
    assert (done["S3SseAlgorithm"], done["S3SseKmsKeyId"]) == (
        "KMS",
        "arn:aws:kms:us-east-1:123456789012:key/test-key",
    )
    assert (done["ExportFormat"], done["ExportType"]) == ("DYNAMODB_JSON", "FULL_EXPORT")
    assert "FailureCode" not in done and "FailureMessage" not in done

    summary = json.loads(_body(s3, bucket, done["ExportManifest"]))
    assert summary["exportTime"] == export_time.strftime("%Y-%m-%dT%H:%M:%S.123Z")
    assert (summary["s3SseAlgorithm"], summary["s3SseKmsKeyId"]) == ("KMS", done["S3SseKmsKeyId"])
    for key in _keys(s3, bucket):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == done["S3SseKmsKeyId"]


def test_missing_bucket_fails_with_s3_no_such_bucket(ddb: Any) -> None:
    table_arn = _table(ddb, items=_items(1))
    started = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=f"absent-{uuid.uuid4().hex[:8]}")
    assert started["ExportDescription"]["ExportStatus"] == "IN_PROGRESS"  # fails asynchronously, like AWS

    done = wait_for_export(ddb, started["ExportDescription"]["ExportArn"])
    assert done["ExportStatus"] == "FAILED"
    assert done["FailureCode"] == "S3NoSuchBucket"
    assert "does not exist" in done["FailureMessage"]
    assert "ExportManifest" not in done and "ItemCount" not in done
    assert done["EndTime"] >= done["StartTime"]


def test_describe_unknown_export_is_export_not_found(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc_info:
        ddb.describe_export(
            ExportArn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/x/export/01700000000000-1a2b3c4d"
        )
    assert _error(exc_info)[:2] == ("ExportNotFoundException", 400)


# --------------------------------------------------------------------------- ClientToken


def test_client_token_with_same_parameters_returns_the_same_export(ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb, items=_items(2))
    bucket = _bucket(s3)
    request = {"TableArn": table_arn, "S3Bucket": bucket, "S3Prefix": "idem", "ClientToken": "token-1"}

    first = ddb.export_table_to_point_in_time(**request)["ExportDescription"]
    again_in_progress = ddb.export_table_to_point_in_time(**request)["ExportDescription"]
    assert again_in_progress["ExportArn"] == first["ExportArn"]
    wait_for_export(ddb, first["ExportArn"])
    objects_before = s3.list_objects_v2(Bucket=bucket)["Contents"]

    again_completed = ddb.export_table_to_point_in_time(**request)["ExportDescription"]
    assert again_completed["ExportArn"] == first["ExportArn"]
    assert again_completed["ExportStatus"] == "COMPLETED"
    assert again_completed["StartTime"] == first["StartTime"]
    time.sleep(SETTINGS["export_seconds"] + 0.2)  # a duplicate export would have written by now
    assert s3.list_objects_v2(Bucket=bucket)["Contents"] == objects_before
    assert {key.split("/")[2] for key in _keys(s3, bucket)} == {_export_id(first["ExportArn"])}
    assert [e["ExportArn"] for e in ddb.list_exports(TableArn=table_arn)["ExportSummaries"]] == [
        first["ExportArn"]
    ]


def test_client_token_with_other_parameters_is_an_export_conflict(ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb)
    bucket = _bucket(s3)
    export_time = datetime.now(UTC) - timedelta(hours=1)
    request = {"TableArn": table_arn, "S3Bucket": bucket, "S3Prefix": "a", "ClientToken": "token-2"}
    ddb.export_table_to_point_in_time(ExportTime=export_time, **request)

    for change in (
        {"S3Prefix": "b"},
        {"ExportTime": export_time - timedelta(minutes=1)},
        {"S3SseAlgorithm": "AES256"},
    ):
        changed = {"ExportTime": export_time, **request, **change}
        with pytest.raises(ClientError) as exc_info:
            ddb.export_table_to_point_in_time(**changed)
        assert _error(exc_info)[:2] == ("ExportConflictException", 400)
    assert len(ddb.list_exports(TableArn=table_arn)["ExportSummaries"]) == 1


# --------------------------------------------------------------------------- ExportTime & PITR


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(timedelta(days=-36), id="older-than-window"),
        pytest.param(timedelta(hours=1), id="future"),
    ],
)
def test_export_time_outside_the_window_is_invalid(ddb: Any, s3: Any, offset: timedelta) -> None:
    table_arn = _table(ddb)
    with pytest.raises(ClientError) as exc_info:
        ddb.export_table_to_point_in_time(
            TableArn=table_arn, S3Bucket=_bucket(s3), ExportTime=datetime.now(UTC) + offset
        )
    code, status, message = _error(exc_info)
    assert (code, status) == ("InvalidExportTimeException", 400)
    assert "must be between" in message
    assert ddb.list_exports(TableArn=table_arn)["ExportSummaries"] == []


def test_pitr_disabled_is_point_in_time_recovery_unavailable(ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb, pitr=False)
    with pytest.raises(ClientError) as exc_info:
        ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=_bucket(s3))
    assert _error(exc_info)[:2] == ("PointInTimeRecoveryUnavailableException", 400)


def test_continuous_backups_window_is_computed_at_each_call(ddb: Any, s3: Any) -> None:
    table_arn = _table(ddb, pitr=False)
    name = table_arn.split("/")[-1]
    disabled = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert disabled["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}

    ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    first = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = first["PointInTimeRecoveryDescription"]
    now = datetime.now(UTC)
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED" and pitr["RecoveryPeriodInDays"] == 35
    # pitr_history_days=35 (default) pretends PITR ran before: the 35-day period is the limit.
    assert abs((now - timedelta(days=35) - pitr["EarliestRestorableDateTime"]).total_seconds()) < 5
    assert abs((now - timedelta(seconds=300) - pitr["LatestRestorableDateTime"]).total_seconds()) < 5

    time.sleep(0.3)
    later = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    later_pitr = later["PointInTimeRecoveryDescription"]
    assert later_pitr["LatestRestorableDateTime"] - pitr["LatestRestorableDateTime"] >= timedelta(
        seconds=0.25
    )
    assert later_pitr["EarliestRestorableDateTime"] > pitr["EarliestRestorableDateTime"]

    updated = ddb.update_continuous_backups(
        TableName=name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 1},
    )["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert updated["RecoveryPeriodInDays"] == 1
    assert (
        abs((datetime.now(UTC) - timedelta(days=1) - updated["EarliestRestorableDateTime"]).total_seconds())
        < 5
    )
    bucket = _bucket(s3)
    with pytest.raises(ClientError) as exc_info:
        ddb.export_table_to_point_in_time(
            TableArn=table_arn, S3Bucket=bucket, ExportTime=datetime.now(UTC) - timedelta(days=2)
        )
    assert _error(exc_info)[0] == "InvalidExportTimeException"
    ok = ddb.export_table_to_point_in_time(
        TableArn=table_arn, S3Bucket=bucket, ExportTime=datetime.now(UTC) - timedelta(hours=12)
    )
    assert ok["ExportDescription"]["ExportStatus"] == "IN_PROGRESS"

    with pytest.raises(ClientError) as exc_info:
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 36},
        )
    assert _error(exc_info)[:2] == ("ValidationException", 400)

    ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    off = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert off["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}


def test_pitr_history_days_bounds_the_earliest_restorable_time(ddb: Any, s3: Any) -> None:
    emulator.install(pitr_history_days=1, **SETTINGS)  # settings are process-wide: restore below
    try:
        table_arn = _table(ddb)
        pitr = ddb.describe_continuous_backups(TableName=table_arn.split("/")[-1])[
            "ContinuousBackupsDescription"
        ]["PointInTimeRecoveryDescription"]
        assert (
            abs((datetime.now(UTC) - timedelta(days=1) - pitr["EarliestRestorableDateTime"]).total_seconds())
            < 5
        )
        with pytest.raises(ClientError) as exc_info:
            ddb.export_table_to_point_in_time(
                TableArn=table_arn, S3Bucket=_bucket(s3), ExportTime=datetime.now(UTC) - timedelta(days=2)
            )
        assert _error(exc_info)[0] == "InvalidExportTimeException"
    finally:
        emulator.install(**SETTINGS)  # calling install again is idempotent: no double patching
    assert ddb.describe_continuous_backups(TableName=table_arn.split("/")[-1])["ContinuousBackupsDescription"]


# --------------------------------------------------------------------------- ListExports


def test_list_exports_paginates_per_table(ddb: Any) -> None:
    table_arn = _table(ddb)
    other_arn = _table(ddb)
    bucket = f"absent-{uuid.uuid4().hex[:8]}"  # no S3 writes needed for listing
    arns = [
        ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=bucket)["ExportDescription"][
            "ExportArn"
        ]
        for _ in range(5)
    ]
    other = ddb.export_table_to_point_in_time(TableArn=other_arn, S3Bucket=bucket)["ExportDescription"][
        "ExportArn"
    ]

    pages: list[list[dict[str, Any]]] = []
    kwargs: dict[str, Any] = {"TableArn": table_arn, "MaxResults": 2}
    while True:
        page = ddb.list_exports(**kwargs)
        pages.append(page["ExportSummaries"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert [len(p) for p in pages] == [2, 2, 1]
    summaries = [s for p in pages for s in p]
    assert [s["ExportArn"] for s in summaries] == arns
    assert all(set(s) == {"ExportArn", "ExportStatus", "ExportType"} for s in summaries)
    assert all(
        s["ExportStatus"] in {"IN_PROGRESS", "FAILED"} and s["ExportType"] == "FULL_EXPORT" for s in summaries
    )

    everything = ddb.list_exports(MaxResults=25)
    listed = {s["ExportArn"] for s in everything["ExportSummaries"]}
    while "NextToken" in everything:
        everything = ddb.list_exports(MaxResults=25, NextToken=everything["NextToken"])
        listed |= {s["ExportArn"] for s in everything["ExportSummaries"]}
    assert set(arns) | {other} <= listed

    with pytest.raises(ClientError) as exc_info:
        ddb.list_exports(TableArn=table_arn, NextToken="not-a-token")
    assert _error(exc_info)[:2] == ("ValidationException", 400)


# --------------------------------------------------------------------------- servers


def test_emulator_thread_on_a_busy_port_raises_instead_of_hanging(emu: EmulatorThread) -> None:
    with pytest.raises(RuntimeError, match="could not listen"):
        EmulatorThread(port=emu.port, **SETTINGS).start()


def test_serve_logs_its_address_and_stops_on_sigterm() -> None:
    code = "from jit_audit_dev.emulator import serve; serve(port=0, export_seconds=0.1)"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # keeps the pipe from filling up with werkzeug's request log
        for line in proc.stderr or []:
            lines.put(line)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        first = lines.get(timeout=15)
        match = re.fullmatch(r"jit-audit emulator listening on (http://127\.0\.0\.1:(\d+))\n", first)
        assert match, first
        client = boto3.client(
            "dynamodb",
            endpoint_url=match.group(1),
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert client.list_tables()["TableNames"] == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        drainer.join(timeout=5)
        rest = [lines.get_nowait() for _ in range(lines.qsize())]
        assert not [line for line in rest if "HTTP/1.1" in line], rest  # no per-request access log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
