"""The CLI's lean DynamoDB reader (``jit_audit.dynamodb_http``).

* Its Signature Version 4 is byte-identical to botocore's ``SigV4Auth`` (the signer boto3's
  clients use), over generated bodies, regions, endpoints, times and session tokens.
* Against the emulator over HTTP it returns exactly what a boto3 client returns, through the same
  ``query.run``: every query mode, a parallel scan, small pages, binary and nested attributes,
  hostile key values.
* Errors: throttling and 5xx are retried, a bad checksum is retried, a validation error is not,
  a closed port fails with a clear message; ``open_reader`` falls back to boto3 where the lean
  reader would not be exact.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from jit_audit import dynamodb_http
from jit_audit.dynamodb_http import Credentials, DynamoDBError, DynamoDBReader, open_reader, sigv4_headers
from jit_audit.query import parse_query, run
from jit_audit.seed import ACCOUNTS, CHANNELS, seed

TABLE = "jit_audit"
SEED_END = datetime(2026, 1, 15, 12, tzinfo=UTC)

# --------------------------------------------------------------------------- 1. the signature


def _botocore_authorization(endpoint: str, operation: str, body: bytes, credentials: Credentials, region: str,
                            now: datetime, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Authorization and X-Amz-Date as botocore's own SigV4Auth computes them for the same request."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.astimezone(UTC).replace(tzinfo=None))
    request = AWSRequest(method="POST", url=endpoint, data=body, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
    botocore.auth.SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    return request.headers["Authorization"], request.headers["X-Amz-Date"]


ENDPOINTS = st.sampled_from([
    "https://dynamodb.us-east-1.amazonaws.com", "https://dynamodb.eu-west-3.amazonaws.com/",
    "http://127.0.0.1:5000", "http://localhost:80", "https://example.test:8443/ddb/", "http://[::1]:4566",
])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    endpoint=ENDPOINTS,
    operation=st.sampled_from(["Query", "Scan"]),
    request=st.dictionaries(TEXT, st.recursive(TEXT, lambda inner: st.lists(inner, max_size=3)), max_size=4),
    key=st.from_regex(r"[A-Z0-9]{16,20}", fullmatch=True),
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    token=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60),
    region=st.sampled_from(["us-east-1", "eu-central-2", "ap-southeast-4", "cn-north-1", "us-gov-west-1"]),
    seconds=st.integers(0, 4_000_000_000),
)
def test_signature_is_byte_identical_to_botocores(endpoint: str, operation: str, request: dict[str, Any],
                                                  key: str, secret: str, token: str | None, region: str,
                                                  seconds: int) -> None:
    body = json.dumps(request).encode()
    credentials = Credentials(key, secret, token)
    now = datetime.fromtimestamp(seconds, UTC)
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected_authorization, expected_date = _botocore_authorization(
            endpoint, operation, body, credentials, region, now, monkeypatch)
    headers = sigv4_headers(endpoint, operation, body, credentials, region, now)
    assert headers["authorization"] == expected_authorization
    assert headers["x-amz-date"] == expected_date
    assert headers.get("x-amz-security-token") == token


def test_a_changed_body_or_secret_changes_the_signature() -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret", None)
    now = datetime(2026, 1, 15, tzinfo=UTC)
    base = sigv4_headers("https://dynamodb.us-east-1.amazonaws.com", "Scan", b"{}", credentials, "us-east-1", now)
    assert base["authorization"] != sigv4_headers("https://dynamodb.us-east-1.amazonaws.com", "Scan", b"{ }",
                                                  credentials, "us-east-1", now)["authorization"]
    assert base["authorization"] != sigv4_headers("https://dynamodb.us-east-1.amazonaws.com", "Scan", b"{}",
                                                  Credentials("AKIDEXAMPLE", "secreT", None), "us-east-1",
                                                  now)["authorization"]


# --------------------------------------------------------------------------- 2. same results as boto3


def _run(client: Any, params: dict[str, Any]) -> list[bytes]:
    lines: list[bytes] = []
    lock = threading.Lock()

    def write(data: bytes) -> None:
        with lock:
            lines.extend(data.splitlines())

    run(client, TABLE, parse_query(params), lambda index: write)
    return sorted(lines)


def _lean(aws: Any) -> DynamoDBReader:
    return DynamoDBReader(aws.endpoint_url, "us-east-1", Credentials("testing", "testing", "testing"))


def test_every_query_mode_returns_what_a_boto3_client_returns(aws: Any) -> None:
    seed(aws.resource("dynamodb"), TABLE, requests=60, end=SEED_END)
    boto3_client = aws.client("dynamodb")
    odd = {"request_id": {"S": "req-odd'; $(x) #partition"}, "event_time_event_id": {"S": "2026-01-12T00:00:00.000Z#e1"},
           "event_type": {"S": "ERROR"}, "account_id": {"S": ACCOUNTS[0]}, "channel_id": {"S": CHANNELS[0]},
           "blob": {"B": b"\x00\xffbinary"}, "blobs": {"BS": [b"a", b"\x01"]}, "amount": {"N": "-1.50E+3"},
           "nested": {"M": {"list": {"L": [{"N": "1"}, {"NULL": True}, {"B": b"\x02"}, {"SS": ["b", "a"]}]}}}}
    boto3_client.put_item(TableName=TABLE, Item=odd)
    reader = _lean(aws)
    start, end = "2026-01-10T00:00:00Z", "2026-01-13T06:30:00Z"
    cases = [
        {"query_by": "request", "request_id": odd["request_id"]["S"]},
        {"query_by": "account", "account_id": ACCOUNTS[0], "start": start, "end": end},
        {"query_by": "channel", "channel_id": CHANNELS[0], "start": start, "end": end, "event_types": ["GRANTED"]},
        {"query_by": "event_type", "event_types": ["ERROR", "DENIED"], "segments": 4},
        {"query_by": "event_type", "event_types": ["REQUESTED"], "segments": 3, "page_size": 5},
    ]
    for params in cases:
        expected = _run(boto3_client, params)
        assert expected, params
        assert _run(reader, params) == expected, params
    (line,) = _run(reader, cases[0])
    assert json.loads(line)["blob"] == base64.b64encode(b"\x00\xffbinary").decode()


# --------------------------------------------------------------------------- 3. errors and retries


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, body, crc override) and records the request."""

    script: list[tuple[int, bytes, int | None]] = []
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append({name.lower(): value for name, value in self.headers.items()})
        status, body, crc = type(self).script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-crc32", str(zlib.crc32(body) if crc is None else crc))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., DynamoDBReader]]:
    monkeypatch.setattr(dynamodb_http.time, "sleep", lambda seconds: None)  # backoff without waiting
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Scripted.seen = []

    def reader(*script: tuple[int, bytes, int | None], attempts: int = 10) -> DynamoDBReader:
        _Scripted.script = list(script)
        return DynamoDBReader(f"http://127.0.0.1:{server.server_address[1]}", "us-east-1",
                              Credentials("AKID", "secret", "session-token"), max_attempts=attempts)

    yield reader
    server.shutdown()
    server.server_close()


def _aws_error(code: str, message: str = "") -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()


OK = (200, b'{"Items": [], "Count": 0, "ScannedCount": 0}', None)


def test_throttling_5xx_and_bad_checksums_are_retried_then_succeed(scripted: Callable[..., DynamoDBReader]) -> None:
    reader = scripted((400, _aws_error("ProvisionedThroughputExceededException", "slow down"), None),
                      (400, _aws_error("ThrottlingException"), None),
                      (500, _aws_error("InternalServerError"), None),
                      (200, b'{"Items": []}', 12345),  # body does not match x-amz-crc32
                      OK)
    assert reader.scan(TableName=TABLE) == json.loads(OK[1])
    assert len(_Scripted.seen) == 5
    first = _Scripted.seen[0]
    assert first["x-amz-target"] == "DynamoDB_20120810.Scan"
    assert first["x-amz-security-token"] == "session-token"
    assert first["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")


def test_a_validation_error_is_not_retried_and_says_what_dynamodb_said(
        scripted: Callable[..., DynamoDBReader]) -> None:
    reader = scripted((400, _aws_error("ValidationException", "One or more parameter values were invalid"), None))
    with pytest.raises(DynamoDBError, match="Query: ValidationException: One or more parameter values") as caught:
        reader.query(TableName=TABLE)
    assert caught.value.code == "ValidationException" and caught.value.status == 400
    assert len(_Scripted.seen) == 1


def test_throttling_that_never_ends_fails_after_max_attempts(scripted: Callable[..., DynamoDBReader]) -> None:
    reader = scripted(*[(400, _aws_error("ThrottlingException", "Rate exceeded"), None)] * 3, attempts=3)
    with pytest.raises(DynamoDBError, match=r"Scan: ThrottlingException: Rate exceeded \(after 3 attempts\)"):
        reader.scan(TableName=TABLE)
    assert len(_Scripted.seen) == 3


def test_a_closed_port_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb_http.time, "sleep", lambda seconds: None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reader = DynamoDBReader(f"http://127.0.0.1:{port}", "us-east-1", Credentials("a", "b", None), max_attempts=2)
    with pytest.raises(DynamoDBError, match=rf"Could not connect to the endpoint URL http://127.0.0.1:{port}.*"
                                            r"\(after 2 attempts\)"):
        reader.scan(TableName=TABLE)


# --------------------------------------------------------------------------- 4. choosing the client


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_USE_FIPS_ENDPOINT",
                 "AWS_PROFILE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_open_reader_uses_the_lean_reader_only_where_it_is_exact(clean_env: pytest.MonkeyPatch,
                                                                 tmp_path: Any) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKID")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    clean_env.setenv("AWS_MAX_ATTEMPTS", "4")
    lean = open_reader(region="eu-west-1")
    assert isinstance(lean, DynamoDBReader)
    assert lean.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com" and lean.max_attempts == 4
    clean_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:4566")
    assert open_reader(region="eu-west-1").endpoint_url == "http://127.0.0.1:4566"
    assert open_reader("http://127.0.0.1:9", "eu-west-1").endpoint_url == "http://127.0.0.1:9"
    clean_env.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    # Where botocore's endpoint rules decide, boto3 does the work.
    for region in ("cn-north-1", "us-gov-west-1", "us-iso-east-1"):
        assert not isinstance(open_reader(region=region), DynamoDBReader), region
    clean_env.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    fips = open_reader(region="us-east-1")
    assert not isinstance(fips, DynamoDBReader)
    assert fips.meta.endpoint_url == "https://dynamodb-fips.us-east-1.amazonaws.com"
    clean_env.delenv("AWS_USE_FIPS_ENDPOINT")
    assert not isinstance(open_reader(region="us-east-1", lean=False), DynamoDBReader)
    # No credentials in the environment: botocore's chain finds the profile's.
    clean_env.delenv("AWS_ACCESS_KEY_ID")
    clean_env.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = s\n")
    from_file = open_reader(region="us-east-1")
    assert isinstance(from_file, DynamoDBReader)
    assert from_file._credentials.get_frozen_credentials().access_key == "FROMFILE"


def test_the_reader_signs_with_the_current_time(scripted: Callable[..., DynamoDBReader]) -> None:
    reader = scripted(OK)
    before = datetime.now(UTC).replace(microsecond=0)
    reader.scan(TableName=TABLE)
    sent = datetime.strptime(_Scripted.seen[0]["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= sent <= datetime.now(UTC) + timedelta(seconds=1)
