"""Reading an export back from S3 (issue 13, item 4): every read of a manifest or a data file that S3
refuses for good names ``s3://bucket/key`` and what to check, and ``manifest-files.json`` is split on
``\\n`` only.

Against the emulator (the ``aws`` fixture); S3's refusals are the emulator's injected faults.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from jit_audit.exports import describe_export, find_or_start_export
from jit_audit.layout import SnapshotLayout
from jit_audit.manifest import ManifestError, parse_files
from jit_audit.s3 import IntegrityError, ObjectUnreadable
from jit_audit.snapshot import read_manifests
from jit_audit.staging import MissingDataFile, flatten_data_file
from jit_audit_dev.seed import seed

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"
PREFIX = "exports/"
#: Characters str.splitlines() cuts at but JSON Lines does not: NEL, LS, PS, and the C0 separators.
LINE_BREAKS_BUT_NOT_NEWLINE = "\u0085\u2028\u2029\x1c\x1d\x1e\x0b\x0c"


def _entry(key: str, items: int = 1) -> str:
    return json.dumps({"itemCount": items, "md5Checksum": "bWQ1", "etag": "e", "dataFileS3Key": key},
                      ensure_ascii=False)


# --------------------------------------------------------------------------- parsing


def test_manifest_files_is_split_on_newline_only():
    keys = [f"exports/AWSDynamoDB/01/data/a{char}b.json.gz" for char in LINE_BREAKS_BUT_NOT_NEWLINE]
    text = "\n".join(_entry(key) for key in keys) + "\n"
    files = parse_files(text)
    assert [data_file.key for data_file in files] == keys
    assert [data_file.index for data_file in files] == list(range(len(keys)))
    assert [data_file.key for data_file in parse_files(text.encode())] == keys  # bytes, as S3 hands them over


def test_manifest_files_line_numbers_count_newlines_only():
    text = _entry("data/a\u2028b.json.gz") + "\n" + "{not json}\n"
    with pytest.raises(ManifestError, match=r"manifest-files\.json, line 2: not valid JSON"):
        parse_files(text)


def test_manifest_files_with_invalid_utf8_is_a_manifest_error_with_the_byte_offset():
    with pytest.raises(ManifestError, match=r"manifest-files\.json: not valid UTF-8 \(byte offset 3\)"):
        parse_files(b'{"a\xff": 1}\n')


# --------------------------------------------------------------------------- against the emulator


class Export:
    """A COMPLETED export of a seeded table, as DescribeExport and the manifests describe it."""

    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self.ddb, self.s3 = aws.client("dynamodb"), aws.client("s3")
        # Two seed batches, so the export spans two data files (150 items per file).
        seed(aws.resource("dynamodb"), TABLE, requests=40)
        seed(aws.resource("dynamodb"), TABLE, requests=30, seed_value=8, create=False)
        self.s3.create_bucket(Bucket=BUCKET)
        export_time = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
        self.layout = SnapshotLayout(bucket=BUCKET, prefix=PREFIX, table=TABLE, snapshot_date=export_time.date(),
                                     export_time=export_time)
        arn = find_or_start_export(self.ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                                   s3_prefix=self.layout.raw_prefix).export_arn
        deadline = time.monotonic() + 10
        while (description := describe_export(self.ddb, arn))["ExportStatus"] == "IN_PROGRESS":
            assert time.monotonic() < deadline, "the export did not complete"
            time.sleep(0.1)
        assert description["ExportStatus"] == "COMPLETED"
        self.summary_key = description["ExportManifest"]
        self.item_count = description["ItemCount"]
        self.summary, self.files = self.read()
        assert len(self.files) >= 2

    def read(self, client: Any = None) -> Any:
        return read_manifests(client or self.s3, BUCKET, self.summary_key, self.item_count)

    def fault(self, **fault: Any) -> None:
        """One emulator fault on S3 GetObject (docs/emulator.md, *Fault injection*)."""
        request = urllib.request.Request(
            self.aws.endpoint_url + "/jit-audit-emulator/faults", method="POST",
            data=json.dumps({"service": "s3", "operation": "GetObject", **fault}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    def client_without_retries(self) -> Any:
        return boto3.client("s3", endpoint_url=self.aws.endpoint_url, region_name="us-east-1",
                            config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture()
def export(aws) -> Export:
    return Export(aws)


def test_a_missing_manifest_summary_names_its_key_and_what_to_check(export):
    export.s3.delete_object(Bucket=BUCKET, Key=export.summary_key)
    with pytest.raises(ObjectUnreadable) as caught:
        export.read()
    message = str(caught.value)
    assert message.startswith(f"s3://{BUCKET}/{export.summary_key}: missing: the export's manifest-summary.json")
    assert "deleted, or a lifecycle rule on the export prefix expired them" in message
    assert "no retry brings them back" in message
    assert (caught.value.bucket, caught.value.key, caught.value.missing) == (BUCKET, export.summary_key, True)


def test_a_missing_manifest_files_names_its_key_and_what_to_check(export):
    files_key = export.summary.manifest_files_key
    export.s3.delete_object(Bucket=BUCKET, Key=files_key)
    with pytest.raises(ObjectUnreadable) as caught:
        export.read()
    message = str(caught.value)
    assert message.startswith(f"s3://{BUCKET}/{files_key}: missing: the export's manifest-files.json")
    assert "lifecycle rule" in message and "no retry brings them back" in message
    assert caught.value.key == files_key and caught.value.missing


def test_a_missing_data_file_names_its_key_and_stays_a_missing_data_file(export):
    data_file = export.files[1]
    export.s3.delete_object(Bucket=BUCKET, Key=data_file.key)
    with pytest.raises(MissingDataFile) as caught:
        flatten_data_file(export.s3, export.layout, data_file)
    assert isinstance(caught.value, IntegrityError) and isinstance(caught.value, ObjectUnreadable)
    message = str(caught.value)
    assert message.startswith(f"s3://{BUCKET}/{data_file.key}: missing: data file 2 of the export "
                              f"({data_file.item_count} items in manifest-files.json)")
    assert "no such object" in message and "lifecycle rule" in message


@pytest.mark.parametrize("which", ["manifest-summary.json", "manifest-files.json", "data file"])
def test_access_denied_names_the_key_and_the_permission_it_needs(export, which):
    key = {"manifest-summary.json": export.summary_key, "manifest-files.json": export.summary.manifest_files_key,
           "data file": export.files[0].key}[which]
    export.fault(key_contains=key, error="AccessDenied", status=403, message="Access Denied")
    with pytest.raises(ObjectUnreadable) as caught:
        if which == "data file":
            flatten_data_file(export.s3, export.layout, export.files[0])
        else:
            export.read()
    message = str(caught.value)
    assert message.startswith(f"s3://{BUCKET}/{key}: access denied reading ")
    assert f"s3:GetObject on arn:aws:s3:::{BUCKET}/{key}" in message
    assert "S3 said: Access Denied" in message
    assert not caught.value.missing and not isinstance(caught.value, MissingDataFile)


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500)])
def test_throttling_and_server_errors_stay_botocores_for_a_retry(export, code, status):
    client = export.client_without_retries()
    export.fault(key_contains=export.summary_key, error=code, status=status)
    with pytest.raises(ClientError) as caught:
        export.read(client)
    assert not isinstance(caught.value, ObjectUnreadable)
    assert caught.value.response["Error"]["Code"] == code
    export.fault(key_contains=export.files[0].key, error=code, status=status)
    with pytest.raises(ClientError):
        flatten_data_file(client, export.layout, export.files[0])
    assert export.read(client) == (export.summary, export.files)  # the fault was one answer: a retry reads it


def test_a_data_file_key_with_unicode_line_separators_is_read_and_flattened(export):
    files_key = export.summary.manifest_files_key
    entries = [json.loads(line) for line in export.s3.get_object(Bucket=BUCKET, Key=files_key)["Body"].read()
               .split(b"\n") if line]
    original = entries[0]["dataFileS3Key"]
    moved = original.replace("/data/", "/data/line\u2028sep\u0085nel-")
    export.s3.copy_object(Bucket=BUCKET, Key=moved, CopySource={"Bucket": BUCKET, "Key": original})
    export.s3.delete_object(Bucket=BUCKET, Key=original)
    entries[0]["dataFileS3Key"] = moved
    # As DynamoDB writes it: one JSON object per line, non-ASCII characters as they are.
    body = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()
    export.s3.put_object(Bucket=BUCKET, Key=files_key, Body=body)

    summary, files = export.read()
    assert [data_file.key for data_file in files] == [moved] + [data_file.key for data_file in export.files[1:]]
    part = flatten_data_file(export.s3, export.layout, files[0])
    assert part.data_file_key == moved and part.lines == files[0].item_count
