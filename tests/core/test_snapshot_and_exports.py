"""The plain-Python core against the emulator over HTTP: recovery window, exactly-once exports,
and the flatten -> publish pipeline with its integrity checks.

Every test runs real boto3 calls against a fresh ``jit-audit-dev emulator`` (the ``aws`` fixture), which
writes AWS's export layout and manifests asynchronously (``export_seconds=1``, 150 items per file).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jit_audit.exports import (
    START_EXPORT_BACKOFF,
    ExportFailed,
    ExportStartRefused,
    ExportTimeTooOld,
    PointInTimeRecoveryDisabled,
    completion_state,
    describe_export,
    find_or_start_export,
    recovery_window,
    table_arn,
)
from jit_audit.flatten import FlattenError
from jit_audit.layout import SnapshotLayout
from jit_audit.manifest import DataFile, ManifestSummary
from jit_audit.s3 import IntegrityError
from jit_audit.snapshot import publish, read_manifests
from jit_audit.staging import CountMismatch, PartResult, flatten_data_file
from jit_audit_dev.seed import seed

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
PREFIX = "exports/"


# --------------------------------------------------------------------------- helpers


def _export_time() -> datetime:
    """A whole-second moment well inside the emulator's window [now - 35d, now - 300s]."""
    return (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def _layout(export_time: datetime) -> SnapshotLayout:
    return SnapshotLayout(bucket=BUCKET, prefix=PREFIX, table=TABLE, snapshot_date=export_time.date(),
                          export_time=export_time)


def _wait(ddb: Any, export_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll DescribeExport until the export leaves IN_PROGRESS."""
    deadline = time.monotonic() + timeout
    while True:
        description = describe_export(ddb, export_arn)
        if description["ExportStatus"] != "IN_PROGRESS":
            return description
        assert time.monotonic() < deadline, f"export {export_arn} still IN_PROGRESS after {timeout}s"
        time.sleep(0.1)


def _keys(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def _get(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _snapshot_objects(s3: Any, layout: SnapshotLayout) -> dict[str, bytes]:
    """Every object under the published prefix, key -> bytes."""
    return {key: _get(s3, key) for key in _keys(s3, layout.published_prefix)}


def _md5_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


@dataclasses.dataclass
class Completed:
    """A COMPLETED export of the seeded table and everything needed to flatten and publish it."""

    ddb: Any
    s3: Any
    layout: SnapshotLayout
    description: dict[str, Any]
    summary: ManifestSummary
    files: list[DataFile]
    seeded: int

    @property
    def item_count(self) -> int:
        return int(self.description["ItemCount"])

    def flatten_all(self) -> list[PartResult]:
        return [flatten_data_file(self.s3, self.layout, data_file) for data_file in self.files]

    def publish(self, parts: list[PartResult]) -> dict[str, Any]:
        return publish(self.s3, self.layout, self.summary, self.files, parts, self.item_count)


@pytest.fixture()
def ddb(aws):
    return aws.client("dynamodb")


@pytest.fixture()
def s3(aws):
    return aws.client("s3")


@pytest.fixture()
def seeded(aws, s3) -> int:
    """The seeded table (PITR enabled) and an empty bucket; returns the number of items."""
    result = seed(aws.resource("dynamodb"), TABLE, requests=40)
    s3.create_bucket(Bucket=BUCKET)
    return result.events


def _completed(ddb: Any, s3: Any, seeded: int) -> Completed:
    export_time = _export_time()
    layout = _layout(export_time)
    started = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                                   s3_prefix=layout.raw_prefix)
    description = _wait(ddb, started.export_arn)
    assert completion_state(description) == "COMPLETED"
    summary, files = read_manifests(s3, BUCKET, description["ExportManifest"], description["ItemCount"])
    return Completed(ddb, s3, layout, description, summary, files, seeded)


@pytest.fixture()
def completed(ddb, s3, seeded) -> Completed:
    return _completed(ddb, s3, seeded)


# --------------------------------------------------------------------------- recovery window


def test_recovery_window_reports_the_emulators_sliding_window(ddb, seeded):
    now = datetime.now(UTC)
    window = recovery_window(ddb, TABLE)
    assert window.enabled
    assert window.recovery_period_days == 35
    assert window.earliest is not None and window.latest is not None
    assert window.earliest.tzinfo is not None and window.latest.tzinfo is not None
    assert abs(window.earliest - (now - timedelta(days=35))) < timedelta(seconds=30)
    assert abs(window.latest - (now - timedelta(seconds=300))) < timedelta(seconds=30)


def test_verdict_fails_when_point_in_time_recovery_is_disabled(ddb, seeded):
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    window = recovery_window(ddb, TABLE)
    assert not window.enabled
    with pytest.raises(PointInTimeRecoveryDisabled, match="not ENABLED"):
        window.verdict(_export_time())


def test_verdict_fails_for_a_time_older_than_the_window_and_names_the_earliest(ddb, seeded):
    window = recovery_window(ddb, TABLE)
    assert window.earliest is not None
    too_old = window.earliest - timedelta(days=1)
    with pytest.raises(ExportTimeTooOld) as caught:
        window.verdict(too_old)
    message = str(caught.value)
    assert window.earliest.isoformat() in message
    assert window.earliest.date().isoformat() in message
    assert too_old.isoformat() in message


def test_verdict_waits_for_a_time_newer_than_latest_and_is_ready_inside(ddb, seeded):
    window = recovery_window(ddb, TABLE)
    assert window.latest is not None and window.earliest is not None
    assert window.verdict(datetime.now(UTC) - timedelta(seconds=10)) == "wait"
    assert window.verdict(window.latest + timedelta(seconds=1)) == "wait"
    assert window.verdict(_export_time()) == "ready"
    assert window.verdict(window.latest) == "ready"
    assert window.verdict(window.earliest + timedelta(seconds=1)) == "ready"


# --------------------------------------------------------------------------- exactly-once exports


def test_find_or_start_export_starts_once_and_reuses_afterwards(ddb, s3, seeded):
    export_time = _export_time()
    prefix = _layout(export_time).raw_prefix
    first = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert first.reused is False
    assert first.status == "IN_PROGRESS"
    assert first.export_arn.startswith(table_arn(ddb, TABLE) + "/export/")

    second = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert second.export_arn == first.export_arn
    assert second.reused is True

    summaries = ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"]
    assert [summary["ExportArn"] for summary in summaries] == [first.export_arn]

    # Once COMPLETED it is still the one export of this snapshot.
    assert completion_state(_wait(ddb, first.export_arn)) == "COMPLETED"
    third = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert (third.export_arn, third.reused, third.status) == (first.export_arn, True, "COMPLETED")
    assert len(ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"]) == 1


class RefusingClient:
    """The DynamoDB client, except that ExportTableToPointInTime first answers with ``refusals``."""

    def __init__(self, inner: Any, refusals: list[str]) -> None:
        self.inner = inner
        self.refusals = refusals
        self.requests: list[dict[str, Any]] = []

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def export_table_to_point_in_time(self, **request: Any) -> Any:
        self.requests.append(request)
        if self.refusals:
            code = self.refusals.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": f"{code} for now"}}, "ExportTableToPointInTime")
        return self.inner.export_table_to_point_in_time(**request)


def test_an_export_start_refused_for_now_is_retried_with_the_same_client_token(ddb, seeded):
    client = RefusingClient(ddb, ["LimitExceededException", "ThrottlingException"])
    delays: list[float] = []
    export_time = _export_time()
    started = find_or_start_export(client, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                                   s3_prefix=_layout(export_time).raw_prefix, sleep=delays.append)
    assert started.reused is False
    assert len(client.requests) == 3 and len({request["ClientToken"] for request in client.requests}) == 1
    # START_EXPORT_BACKOFF: 1 s, then 2 s ceilings, each wait in the upper half of its ceiling.
    assert len(delays) == 2 and 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0, delays
    assert [summary["ExportArn"] for summary in ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"]] == [
        started.export_arn]


def test_an_export_start_refused_on_every_try_says_nothing_was_started(ddb, seeded):
    client = RefusingClient(ddb, ["LimitExceededException"] * 10)
    delays: list[float] = []
    export_time = _export_time()
    with pytest.raises(ExportStartRefused, match=r"refused to start the export 6 times \(LimitExceededException: "
                                                 r"LimitExceededException for now\); nothing was started"):
        find_or_start_export(client, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                             s3_prefix=_layout(export_time).raw_prefix, sleep=delays.append)
    assert len(client.requests) == START_EXPORT_BACKOFF.attempts == 6 and len(delays) == 5
    assert ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"] == []


def test_any_other_refusal_to_start_an_export_is_not_retried(ddb, seeded):
    client = RefusingClient(ddb, ["ValidationException"])
    delays: list[float] = []
    export_time = _export_time()
    with pytest.raises(ClientError, match="ValidationException"):
        find_or_start_export(client, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                             s3_prefix=_layout(export_time).raw_prefix, sleep=delays.append)
    assert len(client.requests) == 1 and delays == []


def test_a_failed_export_is_reported_and_a_new_attempt_starts_a_new_export(aws, ddb, s3):
    seed(aws.resource("dynamodb"), TABLE, requests=40)  # no bucket yet: the export fails
    export_time = _export_time()
    prefix = _layout(export_time).raw_prefix
    failed = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert failed.reused is False
    failed_description = _wait(ddb, failed.export_arn)
    assert failed_description["ExportStatus"] == "FAILED"
    with pytest.raises(ExportFailed) as caught:
        completion_state(failed_description)
    message = str(caught.value)
    assert failed.export_arn in message
    assert "S3NoSuchBucket" in message
    assert failed_description["FailureMessage"] in message
    assert BUCKET in message

    s3.create_bucket(Bucket=BUCKET)
    retry = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert retry.reused is False
    assert retry.export_arn != failed.export_arn
    retry_description = _wait(ddb, retry.export_arn)
    assert completion_state(retry_description) == "COMPLETED"
    assert retry_description["ClientToken"] != failed_description["ClientToken"]
    arns = {summary["ExportArn"] for summary in ddb.list_exports(TableArn=table_arn(ddb, TABLE))["ExportSummaries"]}
    assert arns == {failed.export_arn, retry.export_arn}

    # From now on the COMPLETED export is reused, never the FAILED one.
    again = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert (again.export_arn, again.reused) == (retry.export_arn, True)


# --------------------------------------------------------------------------- flatten and publish


def _table_keys(ddb: Any) -> set[tuple[str, str]]:
    keys = set()
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            keys.add((item["request_id"]["S"], item["event_time_event_id"]["S"]))
    return keys


def test_flatten_and_publish_a_completed_export(aws, ddb, s3):
    # Two seed batches, so the export spans two data files (150 items per file).
    seeded = seed(aws.resource("dynamodb"), TABLE, requests=40).events
    seeded += seed(aws.resource("dynamodb"), TABLE, requests=30, seed_value=8, create=False).events
    s3.create_bucket(Bucket=BUCKET)
    run = _completed(ddb, s3, seeded)
    layout = run.layout
    assert run.item_count == run.summary.item_count == seeded
    assert len(run.files) == 2 and sum(data_file.item_count for data_file in run.files) == seeded

    parts = run.flatten_all()
    assert _keys(s3, layout.staging_prefix) == sorted(part.staging_key for part in parts)
    assert _keys(s3, layout.published_prefix) == []
    manifest = run.publish(parts)

    # Published: the parts, _manifest.json, _SUCCESS; staging emptied.
    part_keys = [layout.published_part_key(data_file.index) for data_file in run.files]
    assert _keys(s3, layout.published_prefix) == sorted([*part_keys, layout.partition.manifest_key, layout.partition.success_key])
    assert _get(s3, layout.partition.success_key) == b""
    assert _keys(s3, layout.staging_prefix) == []

    stored = json.loads(_get(s3, layout.partition.manifest_key))
    assert stored == manifest
    assert stored["counts"] == {"describe_export_item_count": seeded, "manifest_item_count": seeded,
                                "lines_written": seeded}
    assert stored["export_arn"] == run.description["ExportArn"]
    assert [part["key"] for part in stored["parts"]] == part_keys
    assert [part["source_data_file"] for part in stored["parts"]] == [data_file.key for data_file in run.files]

    # Every part matches its manifest entry, and together they hold exactly the table's items.
    lines_total = 0
    flattened_keys = set()
    for entry in stored["parts"]:
        body = _get(s3, entry["key"])
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert len(body) == entry["size_bytes"]
        lines = gzip.decompress(body).splitlines()
        assert len(lines) == entry["lines"]
        lines_total += len(lines)
        for line in lines:
            record = json.loads(line)
            assert "Item" not in record
            assert record["event_time"] + "#" + record["event_id"] == record["event_time_event_id"]
            assert isinstance(record["details"], dict) and "M" not in record["details"]
            flattened_keys.add((record["request_id"], record["event_time_event_id"]))
    assert lines_total == seeded
    assert flattened_keys == _table_keys(ddb)

    # A re-run of the whole step gives byte-identical parts and removes a stale part.
    first_objects = _snapshot_objects(s3, layout)
    stale_key = layout.published_prefix + "part-00099.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=stale_key, Body=gzip.compress(b'{"stale": true}\n'))
    again = run.publish(run.flatten_all())
    assert again == manifest
    assert _snapshot_objects(s3, layout) == first_objects
    assert stale_key not in _keys(s3, layout.published_prefix)
    assert _keys(s3, layout.staging_prefix) == []


def _rewrite_data_file(s3: Any, key: str, transform) -> bytes:
    body = transform(_get(s3, key))
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return body


def test_a_data_file_that_differs_from_the_manifest_md5_is_refused(completed):
    s3, layout = completed.s3, completed.layout
    data_file = completed.files[0]

    def tamper(body: bytes) -> bytes:
        # Same number of valid items, one value changed: only the MD5 can tell.
        lines = gzip.decompress(body).decode().splitlines(keepends=True)
        record = json.loads(lines[0])
        record["Item"]["event_type"] = {"S": "TAMPERED"}
        lines[0] = json.dumps(record, separators=(",", ":")) + "\n"
        return gzip.compress("".join(lines).encode(), mtime=0)

    tampered = _rewrite_data_file(s3, data_file.key, tamper)
    assert len(gzip.decompress(tampered).splitlines()) == data_file.item_count
    assert _md5_b64(tampered) != data_file.md5_checksum

    with pytest.raises(IntegrityError) as caught:
        flatten_data_file(s3, layout, data_file)
    assert not isinstance(caught.value, CountMismatch)
    assert "MD5" in str(caught.value)
    assert f"s3://{BUCKET}/{data_file.key}" in str(caught.value)
    assert _keys(s3, layout.staging_prefix) == []
    assert _keys(s3, layout.published_prefix) == []


def test_a_truncated_data_file_is_a_flatten_error_naming_its_key(completed):
    s3, layout = completed.s3, completed.layout
    data_file = completed.files[0]
    truncated = _rewrite_data_file(s3, data_file.key, lambda body: body[: len(body) // 2])

    # Update manifest-files.json to the truncated file's MD5, so the MD5 check cannot be what catches it.
    files_key = completed.summary.manifest_files_key
    entries = [json.loads(line) for line in _get(s3, files_key).splitlines()]
    for entry in entries:
        if entry["dataFileS3Key"] == data_file.key:
            entry["md5Checksum"] = _md5_b64(truncated)
            entry["etag"] = hashlib.md5(truncated, usedforsecurity=False).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=files_key, Body="".join(json.dumps(entry) + "\n" for entry in entries).encode())
    _, files = read_manifests(s3, BUCKET, completed.description["ExportManifest"], completed.item_count)
    assert files[0].md5_checksum == _md5_b64(truncated)

    with pytest.raises(FlattenError) as caught:
        flatten_data_file(s3, layout, files[0])
    assert caught.value.source == f"s3://{BUCKET}/{data_file.key}"
    assert f"s3://{BUCKET}/{data_file.key}" in str(caught.value)
    assert "cannot decompress" in str(caught.value)
    assert _keys(s3, layout.staging_prefix) == []
    assert _keys(s3, layout.published_prefix) == []


def test_publish_refuses_a_count_mismatch_and_publishes_nothing(completed):
    s3, layout = completed.s3, completed.layout
    parts = completed.flatten_all()
    wrong = [dataclasses.replace(parts[0], lines=parts[0].lines - 1), *parts[1:]]
    with pytest.raises(CountMismatch, match="lines"):
        completed.publish(wrong)
    with pytest.raises(CountMismatch, match="one part per data file"):
        completed.publish([])
    assert _keys(s3, layout.published_prefix) == []
    # The staged parts stay for a retry.
    assert _keys(s3, layout.staging_prefix) == sorted(part.staging_key for part in parts)


def test_a_failed_publish_never_leaves_success_beside_changed_parts(completed):
    s3, layout = completed.s3, completed.layout
    completed.publish(completed.flatten_all())
    before = _snapshot_objects(s3, layout)
    assert layout.partition.success_key in before

    # A re-run whose counts disagree is refused before any write: the old snapshot stays complete.
    parts = completed.flatten_all()
    with pytest.raises(CountMismatch):
        completed.publish([dataclasses.replace(part, lines=part.lines + 1) for part in parts])
    assert _snapshot_objects(s3, layout) == before
    manifest = json.loads(before[layout.partition.manifest_key])
    for entry in manifest["parts"]:
        assert hashlib.sha256(before[entry["key"]]).hexdigest() == entry["sha256"]

    # A re-run of the publish step alone, after staging was cleared (or lost a part): the snapshot
    # already is exactly this one, so nothing changes, nothing is recorded, and staging is emptied.
    s3.delete_object(Bucket=BUCKET, Key=parts[0].staging_key)
    recorded: list[bytes] = []
    assert publish(s3, layout, completed.summary, completed.files, parts, completed.item_count,
                   record=lambda body, manifest: recorded.append(body)) == manifest
    assert recorded == [] and _snapshot_objects(s3, layout) == before
    assert _keys(s3, layout.staging_prefix) == []

    # Staged parts gone and the published snapshot is another one: refused before any write.
    other = [dataclasses.replace(part, sha256="0" * 64) for part in parts]
    with pytest.raises(IntegrityError, match=r"staged part\(s\) are gone .* nothing was changed. Clear list_data_files"):
        publish(s3, layout, completed.summary, completed.files, other, completed.item_count,
                record=lambda body, manifest: recorded.append(body))
    assert recorded == [] and _snapshot_objects(s3, layout) == before


def test_publish_with_its_staged_parts_gone_and_nothing_published_changes_nothing(completed):
    s3, layout = completed.s3, completed.layout
    parts = completed.flatten_all()
    s3.delete_object(Bucket=BUCKET, Key=parts[-1].staging_key)
    recorded: list[bytes] = []
    with pytest.raises(IntegrityError, match="staged part"):
        publish(s3, layout, completed.summary, completed.files, parts, completed.item_count,
                record=lambda body, manifest: recorded.append(body))
    assert recorded == [] and _keys(s3, layout.published_prefix) == []
    assert _keys(s3, layout.staging_prefix) == sorted(part.staging_key for part in parts[:-1])


# --------------------------------------------------------------------------- export time precision


def test_a_retry_after_failure_starts_a_new_export_for_a_sub_millisecond_export_time(aws, ddb, s3):
    """DescribeExport echoes ExportTime in milliseconds: sub-second export times must still match.

    Otherwise the FAILED attempt is not counted, the retry reuses its ClientToken and DynamoDB
    hands the FAILED export back for eight hours.
    """
    seed(aws.resource("dynamodb"), TABLE, requests=5)  # no bucket yet: the export fails
    export_time = _export_time().replace(microsecond=123456)
    prefix = _layout(export_time).raw_prefix
    failed = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert _wait(ddb, failed.export_arn)["ExportStatus"] == "FAILED"
    s3.create_bucket(Bucket=BUCKET)
    retry = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix)
    assert retry.export_arn != failed.export_arn, "the retry got the FAILED export back (same ClientToken)"
    assert retry.status == "IN_PROGRESS"


@pytest.mark.parametrize("other", ["view", "window", "type"])
def test_an_export_of_another_view_window_or_type_is_not_reused(ddb, seeded, other):
    """Only an incremental export of this window with ExportViewType NEW_AND_OLD_IMAGES is this run's export:
    a NEW_IMAGE one cannot tell an insert from an update, another window or a full export holds other items."""
    export_time = _export_time()
    window_start = export_time - timedelta(hours=1)
    prefix = dataclasses.replace(_layout(export_time), window_start=window_start).raw_prefix
    request: dict[str, Any] = {"TableArn": table_arn(ddb, TABLE), "S3Bucket": BUCKET, "S3Prefix": prefix,
                               "ExportFormat": "DYNAMODB_JSON"}
    if other == "type":
        request.update(ExportType="FULL_EXPORT", ExportTime=export_time)
    else:
        request.update(ExportType="INCREMENTAL_EXPORT", IncrementalExportSpecification={
            "ExportFromTime": window_start - timedelta(minutes=15) if other == "window" else window_start,
            "ExportToTime": export_time,
            "ExportViewType": "NEW_IMAGE" if other == "view" else "NEW_AND_OLD_IMAGES",
        })
    foreign = ddb.export_table_to_point_in_time(**request)["ExportDescription"]["ExportArn"]
    _wait(ddb, foreign)

    started = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix,
                                   window_start=window_start)
    assert (started.reused, started.export_arn != foreign) == (False, True)
    spec = describe_export(ddb, started.export_arn)["IncrementalExportSpecification"]
    assert spec["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    again = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET, s3_prefix=prefix,
                                 window_start=window_start)
    assert (again.reused, again.export_arn) == (True, started.export_arn)
