"""The emulator's fault injection and request log, over real HTTP with ordinary boto3 clients.

These are what tests/faults builds on: a fault must look to botocore exactly like AWS's error (so
the product's retry rules are tested, not the emulator's), holds must really stall a request, and
the log must say what was called, in order.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from jit_audit_dev.emulator import FAULTS_PATH, REQUESTS_PATH, EmulatorThread

BUCKET = "fault-bucket"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(port=0, export_seconds=0.2, items_per_data_file=2) as running:
        yield running


@pytest.fixture()
def endpoint(emu: EmulatorThread) -> str:
    _http(emu.endpoint_url + "/moto-api/reset", "POST")
    return emu.endpoint_url


def _http(url: str, method: str = "GET", payload: Any = None) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _client(endpoint: str, service: str, **config: Any) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(**config) if config else None)


def _fault(endpoint: str, **fault: Any) -> dict[str, Any]:
    status, body = _http(endpoint + FAULTS_PATH, "POST", fault)
    assert status == 200, body
    return body["fault"]


def _requests(endpoint: str, query: str = "") -> list[dict[str, Any]]:
    return _http(endpoint + REQUESTS_PATH + query)[1]["requests"]


def _table(endpoint: str, items: int = 5) -> str:
    ddb = _client(endpoint, "dynamodb")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    ddb.update_continuous_backups(TableName="t", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    for index in range(items):
        ddb.put_item(TableName="t", Item={"k": {"S": f"item-{index}"}})
    _client(endpoint, "s3").create_bucket(Bucket=BUCKET)
    return ddb.describe_table(TableName="t")["Table"]["TableArn"]


def _export(ddb: Any, arn: str, token: str = "token-1") -> dict[str, Any]:
    return ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=BUCKET, S3Prefix="raw", ExportFormat="DYNAMODB_JSON", ClientToken=token,
        ExportTime=datetime.now(UTC) - timedelta(minutes=1),
    )["ExportDescription"]


def _wait(ddb: Any, arn: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        description = ddb.describe_export(ExportArn=arn)["ExportDescription"]
        if description["ExportStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return description
        time.sleep(0.05)


def test_a_limit_exceeded_fault_looks_like_aws_and_botocore_does_not_retry_it(endpoint):
    arn = _table(endpoint)
    ddb = _client(endpoint, "dynamodb")
    _fault(endpoint, service="dynamodb", operation="ExportTableToPointInTime", error="LimitExceededException",
           message="Too many exports in progress", count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            _export(ddb, arn)
        error = caught.value.response
        assert error["Error"] == {"Code": "LimitExceededException", "Message": "Too many exports in progress"}
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert caught.value.operation_name == "ExportTableToPointInTime"
    assert _http(endpoint + FAULTS_PATH)[1] == {"faults": []}  # both uses consumed
    description = _export(ddb, arn)  # the third call is served
    calls = _requests(endpoint, "?operation=ExportTableToPointInTime")
    assert [(call["status"], call.get("error"), call.get("fault")) for call in calls] == [
        (400, "LimitExceededException", 1), (400, "LimitExceededException", 1), (200, None, None)]
    assert [summary["ExportArn"] for summary in ddb.list_exports(TableArn=arn)["ExportSummaries"]] == [
        description["ExportArn"]]


def test_a_throttling_fault_is_retried_by_botocore_and_the_log_shows_every_attempt(endpoint):
    arn = _table(endpoint)
    ddb = _client(endpoint, "dynamodb")
    _fault(endpoint, service="dynamodb", operation="ExportTableToPointInTime", error="ThrottlingException",
           message="Rate exceeded", count=2)
    description = _export(ddb, arn)  # botocore's retry handler absorbs both
    calls = _requests(endpoint, "?service=dynamodb&operation=ExportTableToPointInTime")
    assert [call["status"] for call in calls] == [400, 400, 200]
    assert len(ddb.list_exports(TableArn=arn)["ExportSummaries"]) == 1
    assert description["ExportStatus"] == "IN_PROGRESS"

    _fault(endpoint, service="dynamodb", operation="DescribeExport", error="ThrottlingException", count=1)
    no_retries = _client(endpoint, "dynamodb", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as caught:
        no_retries.describe_export(ExportArn=description["ExportArn"])
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"


def test_s3_faults_use_s3s_xml_error_and_match_keys(endpoint):
    s3 = _client(endpoint, "s3", retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket=BUCKET)
    _fault(endpoint, service="s3", operation="PutObject", key_contains="part-00001", error="SlowDown",
           status=503, message="Please reduce your request rate.")
    s3.put_object(Bucket=BUCKET, Key="x/part-00000.jsonl.gz", Body=b"a")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=BUCKET, Key="x/part-00001.jsonl.gz", Body=b"b")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["Error"]["Message"] == "Please reduce your request rate."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3.copy_object(Bucket=BUCKET, Key="y/copy", CopySource={"Bucket": BUCKET, "Key": "x/part-00000.jsonl.gz"})
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "y/copy"}, {"Key": "x/a&b"}]})
    s3.list_objects_v2(Bucket=BUCKET, Prefix="x/")
    s3.get_object(Bucket=BUCKET, Key="x/part-00000.jsonl.gz")
    s3.head_object(Bucket=BUCKET, Key="x/part-00000.jsonl.gz")
    s3.delete_object(Bucket=BUCKET, Key="x/part-00000.jsonl.gz")
    logged = [(call["operation"], call.get("key"), call.get("keys"), call["status"])
              for call in _requests(endpoint, "?service=s3")]
    assert logged == [
        ("CreateBucket", None, None, 200),
        ("PutObject", "x/part-00000.jsonl.gz", None, 200),
        ("PutObject", "x/part-00001.jsonl.gz", None, 503),
        ("CopyObject", "y/copy", None, 200),
        ("DeleteObjects", None, ["y/copy", "x/a&b"], 200),
        ("ListObjectsV2", None, None, 200),
        ("GetObject", "x/part-00000.jsonl.gz", None, 200),
        ("HeadObject", "x/part-00000.jsonl.gz", None, 200),
        ("DeleteObject", "x/part-00000.jsonl.gz", None, 204),
    ]
    seqs = [call["seq"] for call in _requests(endpoint)]
    assert seqs == sorted(seqs)


def test_a_held_request_is_visible_in_the_log_and_released_by_clearing_the_faults(endpoint):
    s3 = _client(endpoint, "s3")
    s3.create_bucket(Bucket=BUCKET)
    _fault(endpoint, service="s3", operation="PutObject", hold_seconds=30, hold="response")
    done = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(target=lambda: (s3.put_object(Bucket=BUCKET, Key="held", Body=b"x"), done.set()))
    thread.start()
    deadline = time.monotonic() + 10
    while not [call for call in _requests(endpoint, "?operation=PutObject") if call.get("held") == "response"]:
        assert time.monotonic() < deadline, _requests(endpoint)
        time.sleep(0.05)
    # Held after moto did the work: the object exists while the client still waits for its answer.
    assert s3.get_object(Bucket=BUCKET, Key="held")["Body"].read() == b"x"
    assert not done.is_set()
    assert _http(endpoint + FAULTS_PATH, "DELETE")[0] == 200
    thread.join(10)
    assert done.is_set() and time.monotonic() - started < 10
    (call,) = _requests(endpoint, "?operation=PutObject")
    assert call["status"] == 200 and "held" not in call


def test_an_injected_export_failure_and_duration(endpoint):
    arn = _table(endpoint)
    ddb = _client(endpoint, "dynamodb")
    _fault(endpoint, service="dynamodb", operation="ExportTableToPointInTime",
           export_failure={"code": "S3AccessDenied", "message": "Access Denied"})
    failed = _wait(ddb, _export(ddb, arn, "token-a")["ExportArn"])
    assert (failed["ExportStatus"], failed["FailureCode"], failed["FailureMessage"]) == (
        "FAILED", "S3AccessDenied", "Access Denied")
    keys = [item["Key"] for item in _client(endpoint, "s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith("/_started")  # AWS writes _started before anything can fail

    _fault(endpoint, service="dynamodb", operation="ExportTableToPointInTime", export_seconds=60)
    slow = _export(ddb, arn, "token-b")["ExportArn"]
    time.sleep(0.6)  # three times the emulator's export_seconds
    assert ddb.describe_export(ExportArn=slow)["ExportDescription"]["ExportStatus"] == "IN_PROGRESS"
    _http(endpoint + FAULTS_PATH, "DELETE")  # ends the injected duration now
    assert _wait(ddb, slow)["ExportStatus"] == "COMPLETED"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"operation": "PutObject", "error": "SlowDown"}, "'service' must be a non-empty string"),
        ({"service": "s3", "operation": "PutObject"}, "a fault needs"),
        ({"service": "s3", "operation": "PutObject", "error": "X", "count": 0}, "'count' must be an integer >= 1"),
        ({"service": "s3", "operation": "PutObject", "error": "X", "status": 200}, "'status' must be an HTTP error"),
        ({"service": "s3", "operation": "PutObject", "hold_seconds": -1}, "'hold_seconds' must be a number"),
        ({"service": "s3", "operation": "PutObject", "hold_seconds": 1, "hold": "later"}, "'hold' must be one of"),
        ({"service": "s3", "operation": "PutObject", "export_seconds": 5}, "apply to dynamodb ExportTableToPointInTime"),
        ({"service": "dynamodb", "operation": "ExportTableToPointInTime", "export_failure": {"code": "X"}},
         "'export_failure' must be"),
        ({"service": "dynamodb", "operation": "ExportTableToPointInTime", "error": "X", "export_seconds": 1},
         "drop 'export_*'"),
        ({"service": "s3", "operation": "PutObject", "error": "X", "colour": "red"}, "unknown members ['colour']"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_a_malformed_fault_is_refused_naming_the_member(endpoint, fault, message):
    status, body = _http(endpoint + FAULTS_PATH, "POST", fault)
    assert status == 400 and message in body["message"], body
    assert _http(endpoint + FAULTS_PATH)[1] == {"faults": []}


def test_reset_clears_faults_and_the_log_and_other_methods_are_refused(endpoint):
    _fault(endpoint, service="s3", operation="PutObject", error="SlowDown", count=3)
    _client(endpoint, "s3").list_buckets()
    assert _http(endpoint + FAULTS_PATH)[1]["faults"][0]["remaining"] == 3
    assert _requests(endpoint)
    _http(endpoint + "/moto-api/reset", "POST")
    assert _http(endpoint + FAULTS_PATH)[1] == {"faults": []}
    assert _requests(endpoint) == []
    assert _http(endpoint + FAULTS_PATH, "PUT", {})[0] == 405
    assert _http(endpoint + REQUESTS_PATH, "POST", {})[0] == 405
    _client(endpoint, "s3").list_buckets()
    assert _http(endpoint + REQUESTS_PATH, "DELETE") == (200, {"requests": []})
    assert _requests(endpoint) == []
