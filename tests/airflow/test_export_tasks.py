"""The export DAG's task bodies when S3 will not hand over a manifest or a data file (issue 13, item 4):
the task fails without retries (``AirflowFailException``) naming ``s3://bucket/key``; throttling stays
retryable.

Against the emulator, through the ``aws_default`` connection the ``emulator`` fixture points at it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from jit_audit.exports import describe_export, find_or_start_export
from jit_audit.layout import SnapshotLayout
from jit_audit.snapshot import read_manifests
from jit_audit_airflow.export_tasks import flatten_data_files, list_data_files, publish_snapshot
from jit_audit_dev.seed import seed

TABLE = "jit_audit"
BUCKET = "jit-audit-exports"


class Run:
    """A COMPLETED export and the part of a run's plan the task bodies read."""

    def __init__(self, aws: Any) -> None:
        self.aws, self.s3 = aws, aws.client("s3")
        ddb = aws.client("dynamodb")
        seed(aws.resource("dynamodb"), TABLE, requests=40)
        self.s3.create_bucket(Bucket=BUCKET)
        export_time = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
        layout = SnapshotLayout(bucket=BUCKET, prefix="exports", table=TABLE, snapshot_date=export_time.date(),
                                export_time=export_time)
        self.plan = {"aws_conn_id": "aws_default", "bucket": BUCKET, "layout": layout.to_dict(),
                     "upload_extra_args": {}}
        self.arn = find_or_start_export(ddb, table_name=TABLE, export_time=export_time, bucket=BUCKET,
                                        s3_prefix=layout.raw_prefix).export_arn
        deadline = time.monotonic() + 10
        while (description := describe_export(ddb, self.arn))["ExportStatus"] == "IN_PROGRESS":
            assert time.monotonic() < deadline, "the export did not complete"
            time.sleep(0.1)
        self.summary_key = description["ExportManifest"]
        self.summary, self.files = read_manifests(self.s3, BUCKET, self.summary_key, description["ItemCount"])

    def fault(self, **fault: Any) -> None:
        """Emulator faults on S3 GetObject (docs/emulator.md, *Fault injection*)."""
        request = urllib.request.Request(
            self.aws.endpoint_url + "/jit-audit-emulator/faults", method="POST",
            data=json.dumps({"service": "s3", "operation": "GetObject", **fault}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture()
def run(aws) -> Run:
    return Run(aws)


@pytest.mark.parametrize("manifest", ["manifest-summary.json", "manifest-files.json"])
def test_a_missing_manifest_fails_list_data_files_and_publish_without_retries_naming_it(run, manifest):
    key = run.summary_key if manifest == "manifest-summary.json" else run.summary.manifest_files_key
    run.s3.delete_object(Bucket=BUCKET, Key=key)
    for task in (lambda: list_data_files(run.plan, run.arn), lambda: publish_snapshot(run.plan, run.arn, [], "r")):
        with pytest.raises(AirflowFailException) as caught:
            task()
        assert str(caught.value).startswith(f"Export {run.arn}: s3://{BUCKET}/{key}: missing: the export's {manifest}")
        assert "lifecycle rule" in str(caught.value)


def test_a_missing_data_file_fails_its_flatten_task_without_retries_naming_it(run):
    groups = list_data_files(run.plan, run.arn)
    data_file = run.files[0]
    run.s3.delete_object(Bucket=BUCKET, Key=data_file.key)
    with pytest.raises(AirflowFailException) as caught:
        flatten_data_files(run.plan, groups[0])
    assert str(caught.value).startswith(f"s3://{BUCKET}/{data_file.key}: missing: data file 1 of the export")


def test_access_denied_on_a_manifest_fails_without_retries_naming_the_permission(run):
    run.fault(key_contains=run.summary_key, error="AccessDenied", status=403, message="Access Denied")
    with pytest.raises(AirflowFailException) as caught:
        list_data_files(run.plan, run.arn)
    assert f"s3:GetObject on arn:aws:s3:::{BUCKET}/{run.summary_key}" in str(caught.value)


def test_access_denied_on_a_data_file_fails_its_flatten_task_without_retries(run):
    groups = list_data_files(run.plan, run.arn)
    key = run.files[0].key
    run.fault(key_contains=key, error="AccessDenied", status=403, message="Access Denied")
    with pytest.raises(AirflowFailException) as caught:
        flatten_data_files(run.plan, groups[0])
    assert str(caught.value).startswith(f"s3://{BUCKET}/{key}: access denied reading data file 1 of the export")


def test_a_throttled_manifest_read_stays_retryable(run):
    # More SlowDowns than botocore's own retries (legacy mode: 5 attempts), so the task sees one.
    run.fault(key_contains=run.summary_key, error="SlowDown", status=503, count=10)
    with pytest.raises(ClientError) as caught:
        list_data_files(run.plan, run.arn)
    assert not isinstance(caught.value, AirflowFailException)
    assert caught.value.response["Error"]["Code"] == "SlowDown"
