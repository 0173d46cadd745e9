"""An export of many small data files through the core, flattened group by group (as the DAG's
flatten tasks do) and published: the bytes do not depend on the grouping, a group flattened again
restages the same bytes, and a copy that fails mid-publish (the copies run several at once) leaves
no ``_SUCCESS`` and no ``_manifest.json``; the retry publishes everything.

The export is written by hand in DynamoDB's layout (manifests and gzipped data files) to the
emulator's S3, so the test needs no table and runs in seconds.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jit_audit.grouping import group_data_files
from jit_audit.layout import SnapshotLayout
from jit_audit.snapshot import COPY_CONCURRENCY, publish, read_manifests
from jit_audit.staging import PartResult, flatten_data_file
from jit_audit_dev.emulator import FAULTS_PATH

BUCKET = "jit-audit-exports"
FILES = 4 * COPY_CONCURRENCY + 3  # more parts than copies run at once
EXPORT_TIME = datetime(2026, 11, 25, tzinfo=UTC)
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/jit_audit/export/01764028800000-0a1b2c3d"
ROOT = "exports/raw/table=jit_audit/export_time=20261125T000000Z/AWSDynamoDB/01764028800000-0a1b2c3d"


def item_line(number: int) -> bytes:
    item = {"request_id": {"S": f"req-{number:04d}"}, "event_time_event_id": {"S": f"2026-11-24T00:00:00Z#e{number}"},
            "event_type": {"S": "REQUESTED"}, "details": {"M": {"n": {"N": str(number)}}}}
    return json.dumps({"Item": item}, separators=(",", ":")).encode() + b"\n"


@pytest.fixture()
def export(aws) -> tuple[Any, SnapshotLayout, Any, list]:
    """FILES data files of 1 to 3 items each, their manifests, and the layout of their snapshot."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    entries, number = [], 0
    for index in range(FILES):
        lines = b"".join(item_line(number + offset) for offset in range(1 + index % 3))
        number += 1 + index % 3
        body = gzip.compress(lines, mtime=0)
        key = f"{ROOT}/data/file{index:04d}.json.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        md5 = hashlib.md5(body, usedforsecurity=False)
        entries.append({"itemCount": 1 + index % 3, "md5Checksum": base64.b64encode(md5.digest()).decode(),
                        "etag": md5.hexdigest(), "dataFileS3Key": key})
    s3.put_object(Bucket=BUCKET, Key=f"{ROOT}/manifest-files.json",
                  Body="".join(json.dumps(entry) + "\n" for entry in entries).encode())
    summary = {"version": "2020-06-30", "exportArn": ARN, "exportTime": "2026-11-25T00:00:00.000Z",
               "itemCount": number, "manifestFilesS3Key": f"{ROOT}/manifest-files.json",
               "outputFormat": "DYNAMODB_JSON", "exportType": "FULL_EXPORT"}
    s3.put_object(Bucket=BUCKET, Key=f"{ROOT}/manifest-summary.json", Body=json.dumps(summary).encode())
    summary_parsed, files = read_manifests(s3, BUCKET, f"{ROOT}/manifest-summary.json", number)
    layout = SnapshotLayout(bucket=BUCKET, prefix="exports", table="jit_audit", snapshot_date=EXPORT_TIME.date(),
                            export_time=EXPORT_TIME)
    return s3, layout, summary_parsed, files


def flatten_in_groups(s3: Any, layout: SnapshotLayout, files: list, max_groups: int) -> list[PartResult]:
    """What the flatten tasks do: each group's files, one after another, into one part each."""
    sizes = {entry["Key"]: entry["Size"] for entry in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{ROOT}/data/")["Contents"]}
    groups = group_data_files(files, sizes, target_bytes=1, max_groups=max_groups)
    assert len(groups) == max_groups
    return [flatten_data_file(s3, layout, data_file) for group in groups for data_file in group.files]


def published(s3: Any, layout: SnapshotLayout) -> dict[str, bytes]:
    keys = [entry["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=layout.partition.prefix) for entry in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def fault(aws: Any, **spec: Any) -> None:
    url = aws.endpoint_url + FAULTS_PATH
    method = "POST" if spec else "DELETE"
    request = urllib.request.Request(url, data=json.dumps(spec).encode() if spec else None, method=method,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def test_parts_do_not_depend_on_the_grouping_and_a_regrouped_flatten_restages_the_same_bytes(export):
    s3, layout, summary, files = export
    in_three = flatten_in_groups(s3, layout, files, 3)
    staged = {part.staging_key: s3.get_object(Bucket=BUCKET, Key=part.staging_key)["Body"].read() for part in in_three}
    in_seven = flatten_in_groups(s3, layout, files, 7)  # a re-run of every group, grouped otherwise
    assert in_seven == in_three
    assert {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in staged} == staged
    manifest = publish(s3, layout, summary, files, in_seven, summary.item_count)
    assert manifest["counts"]["lines_written"] == summary.item_count == sum(1 + index % 3 for index in range(FILES))
    assert [part["source_data_file"] for part in manifest["parts"]] == [data_file.key for data_file in files]


def test_a_copy_failing_mid_publish_leaves_nothing_that_looks_complete_and_the_retry_publishes_all(aws, export):
    s3, layout, summary, files = export
    parts = flatten_in_groups(s3, layout, files, 4)
    # The copy of one part fails on every attempt (botocore's retries included).
    fault(aws, service="s3", operation="CopyObject", key_contains=layout.published_part_key(FILES // 2),
          error="InternalError", status=500, count=50)
    recorded: list[bytes] = []
    with pytest.raises(ClientError, match="InternalError"):
        publish(s3, layout, summary, files, parts, summary.item_count,
                record=lambda body, manifest: recorded.append(body))
    assert len(recorded) == 1  # recorded before anything changed, as always
    after_failure = published(s3, layout)
    assert layout.partition.success_key not in after_failure and layout.partition.manifest_key not in after_failure
    assert layout.published_part_key(FILES // 2) not in after_failure

    fault(aws)  # the fault is gone: the task's retry
    manifest = publish(s3, layout, summary, files, parts, summary.item_count)
    found = published(s3, layout)
    assert set(found) == {layout.partition.success_key, layout.partition.manifest_key,
                          *(layout.published_part_key(index) for index in range(FILES))}
    for entry in manifest["parts"]:
        assert hashlib.sha256(found[entry["key"]]).hexdigest() == entry["sha256"]
    assert json.loads(found[layout.partition.manifest_key]) == manifest
