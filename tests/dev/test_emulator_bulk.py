"""Bulk loads (``POST /jit-audit-emulator/bulk-load``) export exactly like the same items PutItem'd.

Two tables with the seeder's keys get the same generated items: one by a bulk load, the other
through the real API (BatchWriteItem, backdated to each event's time as the seeder does). Their
full exports (before, amid and after the events), their incremental exports and what happens after
a later PutItem, UpdateItem and DeleteItem of bulk-loaded items must match byte for byte: data
files, manifests' counts and checksums, DescribeExport's ItemCount and BilledSizeBytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from emulatorlib import emulator_client, wait_for_export

from jit_audit_dev.emulator import BULK_LOAD_PATH, WRITE_TIME_HEADER, EmulatorThread, bulk
from jit_audit_dev.seed import SORT_KEY, create_table

REGION = "us-east-1"
PER_FILE = 7
# Few template requests (about 3 events each), so that 150 items take several rounds of fresh ids.
TEMPLATE_REQUESTS = 20
ITEMS = 150
SEED = 3
DAYS = 4.0
END = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(port=0, export_seconds=0.1, items_per_data_file=PER_FILE, pitr_lag_seconds=0) as running:
        yield running


@pytest.fixture(autouse=True)
def _small_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_TEMPLATE_REQUESTS", TEMPLATE_REQUESTS)


@pytest.fixture(scope="module")
def ddb(emu: EmulatorThread) -> Any:
    return emulator_client(emu.endpoint_url, "dynamodb", REGION)


@pytest.fixture(scope="module")
def s3(emu: EmulatorThread) -> Any:
    return emulator_client(emu.endpoint_url, "s3", REGION)


def _load(emu: EmulatorThread, body: Any, method: str = "POST") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(emu.endpoint_url + BULK_LOAD_PATH, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.loads(error.read()))


def _new_table(ddb: Any) -> tuple[str, str]:
    name = f"bulk-{uuid.uuid4().hex[:10]}"
    create_table(ddb, name)
    return name, str(ddb.describe_table(TableName=name)["Table"]["TableArn"])


def _put_through_the_api(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 at a time, each item written at its event time (the seeder's header)."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers[WRITE_TIME_HEADER] = SORT_KEY

    ddb.meta.events.register("before-sign.dynamodb.BatchWriteItem", add_header)
    try:
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            assert not ddb.batch_write_item(RequestItems={table: batch}).get("UnprocessedItems")
    finally:
        ddb.meta.events.unregister("before-sign.dynamodb.BatchWriteItem", add_header)


@pytest.fixture(scope="module")
def tables(emu: EmulatorThread, ddb: Any) -> dict[str, Any]:
    """``loaded`` (bulk-loaded) and ``written`` (the same items through BatchWriteItem)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(bulk, "_TEMPLATE_REQUESTS", TEMPLATE_REQUESTS)
    try:
        loaded, loaded_arn = _new_table(ddb)
        status, answer = _load(emu, {"table": loaded, "items": ITEMS, "seed": SEED, "days": DAYS,
                                     "end": END.isoformat()})
        assert status == 200, answer
        items = list(bulk.generated_items(ITEMS, seed=SEED, end=END, days=DAYS))
    finally:
        mp.undo()
    written, written_arn = _new_table(ddb)
    _put_through_the_api(ddb, written, items)
    times = sorted(item[SORT_KEY]["S"][:24] for item in items)
    return {"loaded": loaded_arn, "written": written_arn, "items": items, "answer": answer,
            "first": datetime.fromisoformat(times[0].replace("Z", "+00:00")),
            "last": datetime.fromisoformat(times[-1].replace("Z", "+00:00"))}


def _export(ddb: Any, s3: Any, table_arn: str, **request: Any) -> dict[str, Any]:
    """A completed export: what DescribeExport and the manifests say, and each data file's lines."""
    bucket = f"bulk-exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    done = wait_for_export(ddb, ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=bucket,
                                                        **request)["ExportDescription"]["ExportArn"])
    summary = json.loads(s3.get_object(Bucket=bucket, Key=done["ExportManifest"])["Body"].read())
    files_manifest = s3.get_object(Bucket=bucket, Key=summary["manifestFilesS3Key"])["Body"].read()
    entries = [json.loads(line) for line in files_manifest.splitlines()]
    files = []
    for entry in entries:
        raw = s3.get_object(Bucket=bucket, Key=entry["dataFileS3Key"])["Body"].read()
        assert entry["md5Checksum"] == base64.b64encode(hashlib.md5(raw, usedforsecurity=False).digest()).decode()
        files.append(gzip.decompress(raw).decode().splitlines())
    return {
        "item_count": done["ItemCount"],
        "billed": done["BilledSizeBytes"],
        "summary_counts": (summary["itemCount"], summary["billedSizeBytes"]),
        "files": [(entry["itemCount"], entry["md5Checksum"]) for entry in entries],
        "lines": files,
    }


def _both(ddb: Any, s3: Any, tables: dict[str, Any], **request: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return _export(ddb, s3, tables["loaded"], **request), _export(ddb, s3, tables["written"], **request)


def test_the_load_answers_what_it_wrote(tables: dict[str, Any]) -> None:
    answer = tables["answer"]
    assert answer["items"] == ITEMS and answer["write_time"] == "event_time"
    assert answer["first_write"][:23] == tables["first"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    assert answer["last_write"][:23] == tables["last"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    items = tables["items"]
    keys = {(item["request_id"]["S"], item[SORT_KEY]["S"]) for item in items}
    assert len(keys) == ITEMS  # every item new
    assert len({item["request_id"]["S"] for item in items}) < ITEMS / 2  # requests keep their events together
    assert answer["bytes"] == sum(len(json.dumps({"Item": item}, separators=(",", ":"))) + 1 for item in items)


@pytest.mark.parametrize("moment", ["before", "amid", "after", "default"])
def test_full_exports_are_byte_identical(ddb: Any, s3: Any, tables: dict[str, Any], moment: str) -> None:
    request: dict[str, Any] = {}
    if moment == "before":
        request["ExportTime"] = tables["first"] - timedelta(milliseconds=1)
    elif moment == "amid":
        request["ExportTime"] = tables["first"] + (tables["last"] - tables["first"]) / 2
    elif moment == "after":
        request["ExportTime"] = tables["last"]
    loaded, written = _both(ddb, s3, tables, **request)
    assert loaded == written
    expected = {"before": 0, "amid": None, "after": ITEMS, "default": ITEMS}[moment]
    if expected is None:
        assert 0 < loaded["item_count"] < ITEMS
    else:
        assert loaded["item_count"] == expected
    assert sum(len(lines) for lines in loaded["lines"]) == loaded["item_count"] == loaded["summary_counts"][0]


def test_incremental_exports_are_byte_identical(ddb: Any, s3: Any, tables: dict[str, Any]) -> None:
    start = (tables["first"] + (tables["last"] - tables["first"]) / 3).replace(microsecond=0)
    for view in ("NEW_AND_OLD_IMAGES", "NEW_IMAGE"):
        spec = {"ExportFromTime": start, "ExportToTime": start + timedelta(hours=24), "ExportViewType": view}
        loaded, written = _both(ddb, s3, tables, ExportType="INCREMENTAL_EXPORT", IncrementalExportSpecification=spec)
        assert loaded == written and loaded["item_count"] > 0


def test_later_writes_find_the_loaded_items_as_if_they_had_been_put(
    ddb: Any, s3: Any, tables: dict[str, Any]
) -> None:
    """An overwrite, an update and a delete of bulk-loaded items (then reads, which see only those the
    writes moved into moto's table)."""
    items = tables["items"]
    overwritten, updated, deleted = items[5], items[40], items[90]
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    for arn in (tables["loaded"], tables["written"]):
        name = arn.rpartition("/")[2]
        key = {name_: overwritten[name_] for name_ in ("request_id", SORT_KEY)}
        ddb.put_item(TableName=name, Item={**key, "event_type": {"S": "CHANGED"}},
                     ConditionExpression="attribute_exists(request_id)")  # the loaded item is there
        ddb.update_item(TableName=name, Key={name_: updated[name_] for name_ in ("request_id", SORT_KEY)},
                        UpdateExpression="SET note = :n", ExpressionAttributeValues={":n": {"S": "seen"}})
        old = ddb.delete_item(TableName=name, Key={name_: deleted[name_] for name_ in ("request_id", SORT_KEY)},
                              ReturnValues="ALL_OLD")
        assert old["Attributes"] == deleted
    loaded, written = _both(ddb, s3, tables)
    assert loaded == written and loaded["item_count"] == ITEMS - 1
    spec = {"ExportFromTime": since, "ExportToTime": datetime.now(UTC), "ExportViewType": "NEW_AND_OLD_IMAGES"}
    loaded, written = _both(ddb, s3, tables, ExportType="INCREMENTAL_EXPORT", IncrementalExportSpecification=spec)

    def records(export: dict[str, Any]) -> list[dict[str, Any]]:  # write stamps differ: the tables were written apart
        return [{name: value for name, value in json.loads(line).items() if name != "Metadata"}
                for lines in export["lines"] for line in lines]

    assert records(loaded) == records(written) and len(records(loaded)) == 3
    assert all("OldImage" in record for record in records(loaded))  # each found the loaded item
    # Reads see a bulk-loaded item only once a write has moved it into moto's table.
    scanned = ddb.scan(TableName=tables["loaded"].rpartition("/")[2])["Items"]
    assert sorted(item[SORT_KEY]["S"] for item in scanned) == sorted(
        item[SORT_KEY]["S"] for item in (overwritten, updated))


def test_the_now_write_time_stamps_every_item_with_the_emulators_now(
    emu: EmulatorThread, ddb: Any, s3: Any
) -> None:
    name, arn = _new_table(ddb)
    before = datetime.now(UTC)
    status, answer = _load(emu, {"table": name, "items": 10, "seed": SEED, "end": END.isoformat(),
                                 "write_time": "now"})
    assert status == 200, answer
    stamped = datetime.fromisoformat(answer["first_write"].replace("Z", "+00:00"))
    assert answer["first_write"] == answer["last_write"] and before <= stamped <= datetime.now(UTC)
    assert _export(ddb, s3, arn, ExportTime=stamped - timedelta(milliseconds=1))["item_count"] == 0
    # (boto3 sends ExportTime in milliseconds; the stamp has microseconds.)
    assert _export(ddb, s3, arn, ExportTime=stamped + timedelta(milliseconds=1))["item_count"] == 10


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param([], "expected a JSON object", id="not-an-object"),
        pytest.param({"items": 5}, "table: a table name is required", id="no-table"),
        pytest.param({"table": "t", "items": 0}, "items: a whole number", id="no-items"),
        pytest.param({"table": "t", "items": 5, "colour": "red"}, "unknown member(s): colour", id="unknown-member"),
        pytest.param({"table": "t", "items": 5, "end": "2026-11-25T00:00:00"}, "end: an ISO 8601 time with a zone",
                     id="naive-end"),
        pytest.param({"table": "missing-table", "items": 5}, "Requested resource not found", id="no-such-table"),
        pytest.param({"table": "TABLE", "items": 5, "write_time": "later"}, "write_time must be one of",
                     id="bad-write-time"),
        pytest.param({"table": "TABLE", "items": 5, "end": "2999-01-01T00:00:00Z"}, "events end after the emulator's now",
                     id="future-events"),
    ],
)
def test_a_malformed_or_impossible_load_is_refused(
    emu: EmulatorThread, ddb: Any, body: Any, message: str
) -> None:
    if isinstance(body, dict) and body.get("table") == "TABLE":
        body = {**body, "table": _new_table(ddb)[0]}
    status, answer = _load(emu, body)
    assert status == 400 and message in answer["message"], answer


def test_a_load_is_refused_whole_when_an_item_exists_or_the_keys_differ(emu: EmulatorThread, ddb: Any) -> None:
    name, _ = _new_table(ddb)
    assert _load(emu, {"table": name, "items": 20, "seed": SEED, "end": END.isoformat()})[0] == 200
    status, answer = _load(emu, {"table": name, "items": 30, "seed": SEED, "end": END.isoformat()})
    assert status == 400 and "is already in table" in answer["message"], answer
    other = f"bulk-{uuid.uuid4().hex[:10]}"
    ddb.create_table(TableName=other, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    status, answer = _load(emu, {"table": other, "items": 5})
    assert status == 400 and "must have the seeder's keys" in answer["message"], answer
    assert _load(emu, {}, method="GET")[0] == 405
