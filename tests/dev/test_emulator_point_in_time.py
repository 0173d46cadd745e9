"""Full exports hold the table as it was at ``ExportTime``, over real HTTP, with ordinary boto3 clients.

The history is written "in the past" by moving the emulator's clock (``POST
/jit-audit-emulator/clock``) between ordinary writes, or by backdating writes with
``WRITE_TIME_HEADER`` as the seeder does; full exports at times between the writes are then read
back file by file. What each export must hold is worked out here from the writes the test made
(their times measured on the emulator's clock), not from the emulator's history.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from emulatorlib import emulator_client, wait_for_export

from jit_audit_dev import emulator
from jit_audit_dev.emulator import CLOCK_PATH, WRITE_TIME_HEADER, EmulatorThread
from jit_audit_dev.seed import event_time, seed

REGION = "us-east-1"
PER_FILE = 2
SETTINGS: dict[str, Any] = {"export_seconds": 0.2, "items_per_data_file": PER_FILE, "pitr_lag_seconds": 0}


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
    _clock(emu, 0)


# --------------------------------------------------------------------------- helpers


def _clock(emu: EmulatorThread, offset_seconds: float | None = None) -> dict[str, Any]:
    """GET the emulator's clock, or POST a new offset from the real time."""
    data = None if offset_seconds is None else json.dumps({"offset_seconds": offset_seconds}).encode()
    request = urllib.request.Request(emu.endpoint_url + CLOCK_PATH, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def _emu_now(emu: EmulatorThread) -> datetime:
    return datetime.fromtimestamp(float(_clock(emu)["now_epoch_seconds"]), UTC)


def _at(emu: EmulatorThread, offset: timedelta) -> None:
    """Move the emulator's clock to ``offset`` from the real time: the next writes are stamped then."""
    _clock(emu, offset.total_seconds())


def _table(ddb: Any, *, sort_key: bool = False) -> tuple[str, str]:
    name = f"pit-{uuid.uuid4().hex[:10]}"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "S"})
    arn = ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attributes,
                           BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableArn"]
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return name, str(arn)


def _bucket(s3: Any) -> str:
    name = f"pit-exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _export(ddb: Any, s3: Any, table_arn: str, export_time: datetime | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A completed full export as of ``export_time`` (None: the default), and its items in file order.

    Every count the export reports is checked against the others and against the data files, and
    every data file against its MD5 in manifest-files.json.
    """
    bucket = _bucket(s3)
    request: dict[str, Any] = {"TableArn": table_arn, "S3Bucket": bucket, "S3Prefix": "pit"}
    if export_time is not None:
        request["ExportTime"] = export_time
    done = wait_for_export(ddb, ddb.export_table_to_point_in_time(**request)["ExportDescription"]["ExportArn"])
    assert done["ExportStatus"] == "COMPLETED", done
    summary = json.loads(_body(s3, bucket, done["ExportManifest"]))
    entries = [json.loads(line) for line in _body(s3, bucket, summary["manifestFilesS3Key"]).splitlines()]
    items: list[dict[str, Any]] = []
    for entry in entries:
        raw = _body(s3, bucket, entry["dataFileS3Key"])
        assert entry["md5Checksum"] == base64.b64encode(hashlib.md5(raw, usedforsecurity=False).digest()).decode()
        lines = [json.loads(line) for line in gzip.decompress(raw).splitlines()]
        assert len(lines) == entry["itemCount"] <= PER_FILE
        items.extend(line["Item"] for line in lines)
    assert done["ItemCount"] == summary["itemCount"] == sum(entry["itemCount"] for entry in entries) == len(items)
    return done, items


def _by_pk(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_pk = {item["pk"]["S"]: item for item in items}
    assert len(by_pk) == len(items), "an item exported twice"
    return by_pk


def _error(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc_info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def _backdating(client: Any, attribute: str) -> Callable[[], None]:
    """Send WRITE_TIME_HEADER naming ``attribute`` on every request of ``client``; returns the undo."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers[WRITE_TIME_HEADER] = attribute

    client.meta.events.register("before-sign.dynamodb", add_header)
    return lambda: client.meta.events.unregister("before-sign.dynamodb", add_header)


# --------------------------------------------------------------------------- a history written through the API


@pytest.fixture(scope="module")
def history(emu: EmulatorThread, ddb: Any) -> dict[str, Any]:
    """Three rounds of ordinary writes, 3 h, 2 h and 1 h ago on the emulator's clock (every write API).

    Returns the table, and the emulator-clock time just before and just after each round.
    """
    name, arn = _table(ddb)
    bounds: dict[str, tuple[datetime, datetime]] = {}

    def round_of(label: str, offset: timedelta, writes: Callable[[], None]) -> None:
        _at(emu, offset)
        before = _emu_now(emu)
        writes()
        bounds[label] = (before, _emu_now(emu))

    def first() -> None:
        for pk in ("a", "b", "c", "d"):
            ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "v": {"N": "1"}})

    def second() -> None:
        ddb.update_item(TableName=name, Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
                        ExpressionAttributeValues={":v": {"N": "2"}})
        ddb.delete_item(TableName=name, Key={"pk": {"S": "b"}})
        ddb.put_item(TableName=name, Item={"pk": {"S": "e"}, "v": {"N": "1"}})

    def third() -> None:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "3"}, "extra": {"S": "x"}})
        ddb.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": {"pk": {"S": "c"}}}},
                                                  {"PutRequest": {"Item": {"pk": {"S": "f"}, "v": {"N": "1"}}}}]})
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "g"}, "v": {"N": "1"}}}},
            {"Update": {"TableName": name, "Key": {"pk": {"S": "d"}}, "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "4"}}}},
        ])

    try:
        round_of("first", timedelta(hours=-3), first)
        round_of("second", timedelta(hours=-2), second)
        round_of("third", timedelta(hours=-1), third)
    finally:
        _clock(emu, 0)
    return {"name": name, "arn": arn, "bounds": bounds}


def _values(items: list[dict[str, Any]]) -> dict[str, str]:
    return {pk: item["v"]["N"] for pk, item in _by_pk(items).items()}


def test_an_export_before_any_write_is_empty(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    done, items = _export(ddb, s3, history["arn"], history["bounds"]["first"][0] - timedelta(seconds=1))
    assert items == [] and done["ItemCount"] == 0


def test_writes_after_the_export_time_are_absent_deletes_present_updates_old(
    ddb: Any, s3: Any, history: dict[str, Any]
) -> None:
    bounds = history["bounds"]
    # Between the first and second rounds: e, f and g are not written yet; b and c not yet deleted;
    # a and d not yet updated.
    _, items = _export(ddb, s3, history["arn"], bounds["first"][1] + timedelta(minutes=30))
    assert _values(items) == {"a": "1", "b": "1", "c": "1", "d": "1"}
    assert all(set(item) == {"pk", "v"} for item in items)

    # Between the second and third rounds.
    _, items = _export(ddb, s3, history["arn"], bounds["second"][1] + timedelta(minutes=30))
    assert _values(items) == {"a": "2", "c": "1", "d": "1", "e": "1"}


def test_an_export_after_every_write_is_the_current_table_and_keeps_first_write_order(
    ddb: Any, s3: Any, history: dict[str, Any]
) -> None:
    _, items = _export(ddb, s3, history["arn"], history["bounds"]["third"][1] + timedelta(minutes=1))
    assert _values(items) == {"a": "3", "d": "4", "e": "1", "f": "1", "g": "1"}
    assert _by_pk(items)["a"] == {"pk": {"S": "a"}, "v": {"N": "3"}, "extra": {"S": "x"}}
    assert [item["pk"]["S"] for item in items] == ["a", "d", "e", "f", "g"]  # in order of first write
    scanned = ddb.scan(TableName=history["name"])["Items"]
    assert sorted(items, key=lambda item: item["pk"]["S"]) == sorted(scanned, key=lambda item: item["pk"]["S"])


def test_the_default_export_time_is_now(emu: EmulatorThread, ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    before = _emu_now(emu)
    done, items = _export(ddb, s3, history["arn"], None)
    assert before <= done["ExportTime"] <= _emu_now(emu)
    assert _values(items) == {"a": "3", "d": "4", "e": "1", "f": "1", "g": "1"}


def test_billed_size_follows_the_exported_items(ddb: Any, s3: Any, history: dict[str, Any]) -> None:
    bounds = history["bounds"]
    early, _ = _export(ddb, s3, history["arn"], bounds["first"][1] + timedelta(minutes=30))
    late, _ = _export(ddb, s3, history["arn"], bounds["second"][1] + timedelta(minutes=30))
    # Four items {pk, v} in both; a's v went from 1 to 2 and b gave way to e: the same size.
    assert early["BilledSizeBytes"] == late["BilledSizeBytes"] > 0
    latest, _ = _export(ddb, s3, history["arn"], bounds["third"][1] + timedelta(minutes=1))
    assert latest["BilledSizeBytes"] > early["BilledSizeBytes"]  # five items, one with an extra attribute


# --------------------------------------------------------------------------- the boundary, and the window


def test_a_write_at_the_export_time_is_in_it_and_one_a_millisecond_later_is_not(ddb: Any, s3: Any) -> None:
    """Backdated writes have exact stamps, so the boundary can be checked to the millisecond."""
    name, arn = _table(ddb, sort_key=True)
    moment = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=250_000)
    undo = _backdating(ddb, "sk")
    try:
        ddb.put_item(TableName=name, Item={"pk": {"S": "at"}, "sk": {"S": f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z#1"}})
        later = moment + timedelta(milliseconds=1)
        ddb.put_item(TableName=name, Item={"pk": {"S": "after"}, "sk": {"S": f"{later:%Y-%m-%dT%H:%M:%S.%f}Z#2"}})
    finally:
        undo()
    _, items = _export(ddb, s3, arn, moment - timedelta(milliseconds=1))
    assert items == []
    _, items = _export(ddb, s3, arn, moment)
    assert [item["pk"]["S"] for item in items] == ["at"]
    _, items = _export(ddb, s3, arn, later)
    assert [item["pk"]["S"] for item in items] == ["at", "after"]


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        pytest.param(timedelta(seconds=-1), "before the earliest restorable time", id="before-the-window"),
        pytest.param(timedelta(minutes=5), "in the future", id="future"),
    ],
)
def test_an_export_time_outside_the_recovery_window_is_refused(
    emu: EmulatorThread, ddb: Any, s3: Any, offset: timedelta, reason: str
) -> None:
    """AWS: "The specified ExportTime is outside of the point in time recovery window." (HTTP 400)"""
    name, arn = _table(ddb)
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    at = (pitr["EarliestRestorableDateTime"] if offset < timedelta(0) else _emu_now(emu)) + offset
    with pytest.raises(ClientError) as exc_info:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=_bucket(s3), ExportTime=at)
    code, status, message = _error(exc_info)
    assert (code, status) == ("InvalidExportTimeException", 400), reason
    assert "outside the point in time recovery window" in message
    assert ddb.list_exports(TableArn=arn)["ExportSummaries"] == []


def test_the_recovery_window_reaches_back_to_the_earliest_backdated_write(ddb: Any, s3: Any) -> None:
    emulator.install(pitr_history_days=1, **SETTINGS)  # the pretended history: one day before enabling
    try:
        name, arn = _table(ddb, sort_key=True)
        pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"]
        assert abs(datetime.now(UTC) - timedelta(days=1) - pitr["EarliestRestorableDateTime"]) < timedelta(minutes=1)

        moment = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
        undo = _backdating(ddb, "sk")
        try:
            ddb.put_item(TableName=name, Item={"pk": {"S": "old"}, "sk": {"S": f"{moment:%Y-%m-%dT%H:%M:%S}Z#x"}})
        finally:
            undo()
        pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"]
        assert pitr["EarliestRestorableDateTime"] == moment
        _, items = _export(ddb, s3, arn, moment)
        assert [item["pk"]["S"] for item in items] == ["old"]
        with pytest.raises(ClientError) as exc_info:
            ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=_bucket(s3),
                                              ExportTime=moment - timedelta(milliseconds=1))
        assert _error(exc_info)[:2] == ("InvalidExportTimeException", 400)
    finally:
        emulator.install(**SETTINGS)


# --------------------------------------------------------------------------- backdated writes


def test_backdated_batch_writes_are_stamped_with_their_own_times(ddb: Any, s3: Any) -> None:
    name, arn = _table(ddb, sort_key=True)
    base = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    moments = [base + timedelta(hours=hours) for hours in (0, 5, 10)]
    undo = _backdating(ddb, "sk")
    try:
        ddb.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": {"pk": {"S": f"p{index}"}, "sk": {"S": f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z#{index}"}}}}
            for index, moment in enumerate(moments)
        ]})
    finally:
        undo()
    ddb.put_item(TableName=name, Item={"pk": {"S": "now"}, "sk": {"S": "2001-01-01T00:00:00Z#no header"}})

    for count, moment in enumerate(moments, start=1):
        _, items = _export(ddb, s3, arn, moment)
        assert [item["pk"]["S"] for item in items] == [f"p{index}" for index in range(count)]
    # Without the header a write is stamped with the emulator's clock, whatever its attributes say.
    _, items = _export(ddb, s3, arn, moments[-1] + timedelta(days=1))
    assert "now" not in [item["pk"]["S"] for item in items]
    _, items = _export(ddb, s3, arn, None)
    assert [item["pk"]["S"] for item in items] == ["p0", "p1", "p2", "now"]


@pytest.mark.parametrize(
    ("operation", "needle"),
    [
        pytest.param("update", "PutItem and BatchWriteItem only, not UpdateItem", id="another-operation"),
        pytest.param("no-attribute", "must have a string attribute 'sk'", id="attribute-missing"),
        pytest.param("no-time", "must have a string attribute 'sk'", id="no-time-in-it"),
        pytest.param("no-zone", "must have a string attribute 'sk'", id="time-without-zone"),
        pytest.param("future", "after the emulator's now", id="future"),
        pytest.param("batch-one-bad", "must have a string attribute 'sk'", id="one-bad-item-in-a-batch"),
    ],
)
def test_a_backdated_write_that_cannot_be_dated_is_refused_and_writes_nothing(
    ddb: Any, operation: str, needle: str
) -> None:
    name, _ = _table(ddb, sort_key=True)
    ddb.put_item(TableName=name, Item={"pk": {"S": "kept"}, "sk": {"S": "k"}})
    good = {"pk": {"S": "good"}, "sk": {"S": "2026-01-01T00:00:00Z#1"}}
    future = datetime.now(UTC) + timedelta(hours=1)
    calls: dict[str, Callable[[], Any]] = {
        "update": lambda: ddb.update_item(TableName=name, Key={"pk": {"S": "kept"}, "sk": {"S": "k"}},
                                          UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "1"}}),
        "no-attribute": lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "x"}, "sk": {"S": "y"}, "other": good["sk"]}),
        "no-time": lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "x"}, "sk": {"S": "not a time"}}),
        "no-zone": lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "x"}, "sk": {"S": "2026-01-01T00:00:00#1"}}),
        "future": lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "x"},
                                                              "sk": {"S": f"{future:%Y-%m-%dT%H:%M:%S}Z#1"}}),
        "batch-one-bad": lambda: ddb.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": good}}, {"PutRequest": {"Item": {"pk": {"S": "x"}, "sk": {"S": "y"}}}}]}),
    }
    undo = _backdating(ddb, "sk")
    try:
        with pytest.raises(ClientError) as exc_info:
            calls[operation]()
    finally:
        undo()
    code, status, message = _error(exc_info)
    assert (code, status) == ("ValidationException", 400)
    assert WRITE_TIME_HEADER in message and needle in message, message
    assert [item["pk"]["S"] for item in ddb.scan(TableName=name)["Items"]] == ["kept"]
    assert "v" not in ddb.scan(TableName=name)["Items"][0]


@pytest.mark.parametrize(
    ("operation", "body"),
    [("PutItem", b"not json"), ("PutItem", b"[]"), ("BatchWriteItem", b'{"RequestItems": {"t": ["not a request"]}}')],
)
def test_a_backdated_request_with_a_malformed_body_is_refused(emu: EmulatorThread, operation: str, body: bytes) -> None:
    request = urllib.request.Request(emu.endpoint_url + "/", data=body, method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0",
        WRITE_TIME_HEADER: "sk",
    })
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        urllib.request.urlopen(request, timeout=10)
    error = json.loads(exc_info.value.read())
    assert exc_info.value.code == 400
    assert error["__type"].endswith("#ValidationException")
    assert error["message"] == f"{WRITE_TIME_HEADER}: malformed {operation} request body"


# --------------------------------------------------------------------------- what the history never saw


def test_a_restored_tables_items_are_there_from_the_start(ddb: Any, s3: Any) -> None:
    """A table restored from a backup has items the history never saw written: they count as there
    from the start, until a recorded write changes them."""
    name, _ = _table(ddb)
    for pk in ("r1", "r2"):
        ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "v": {"N": "1"}})
    backup = ddb.create_backup(TableName=name, BackupName="before-restore")["BackupDetails"]["BackupArn"]
    restored = f"{name}-restored"
    arn = ddb.restore_table_from_backup(TargetTableName=restored, BackupArn=backup)["TableDescription"]["TableArn"]
    ddb.update_continuous_backups(TableName=restored,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    before_update = datetime.now(UTC)
    time.sleep(0.01)
    ddb.put_item(TableName=restored, Item={"pk": {"S": "r1"}, "v": {"N": "2"}})

    _, items = _export(ddb, s3, arn, before_update)
    assert _values(items) == {"r1": "1", "r2": "1"}
    _, items = _export(ddb, s3, arn, None)
    assert _values(items) == {"r1": "2", "r2": "1"}


# --------------------------------------------------------------------------- the seeder's history


def test_seeded_history_is_exportable_for_a_past_date(emu: EmulatorThread, ddb: Any, s3: Any) -> None:
    table = f"seeded-{uuid.uuid4().hex[:8]}"
    resource = boto3.resource("dynamodb", endpoint_url=emu.endpoint_url, region_name=REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    result = seed(resource, table, requests=40, end=end, days=6)
    assert result.first_event is not None and result.last_event is not None
    assert end - timedelta(days=6) <= result.first_event < result.last_event < end
    scanned = [item for page in ddb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
    assert len(scanned) == result.events

    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    export_time = end - timedelta(days=3)
    _, items = _export(ddb, s3, arn, export_time)
    expected = sorted(
        (item["request_id"]["S"], item["event_time_event_id"]["S"]) for item in scanned
        if event_time(item["event_time_event_id"]["S"]) <= export_time
    )
    assert 0 < len(expected) < len(scanned)  # the date splits the seeded history
    assert sorted((item["request_id"]["S"], item["event_time_event_id"]["S"]) for item in items) == expected
    # Exported as of the end of the seeded days: every event.
    _, items = _export(ddb, s3, arn, end)
    assert len(items) == len(scanned)
