"""A lean DynamoDB reader for the command line: Query and Scan as signed HTTP requests.

Why it exists: ``jit-audit query`` and ``jit-audit scan`` are short processes, and in a short process
a boto3 client costs more CPU than the whole read: importing botocore's client machinery and
loading the DynamoDB model and endpoint rules take about 0.3 s, and even botocore's signer module
alone imports in 0.08 s (it pulls in urllib3 and dateutil), against about 0.05 s for all the
requests of a 30,000-item scan. Reads need two operations of DynamoDB's JSON protocol (a POST
with ``X-Amz-Target: DynamoDB_20120810.<Operation>``), so this module sends exactly those:

* Signature Version 4 for that one request shape (``sigv4_headers``): a POST to the endpoint's
  path with no query string, signing ``content-type``, ``host``, ``x-amz-date``, ``x-amz-target``
  and ``x-amz-security-token``. tests/core/test_dynamodb_http.py proves it byte-identical to
  botocore's ``SigV4Auth`` (the signer boto3 uses) over generated requests;
* credentials from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
  ``AWS_SESSION_TOKEN``, which botocore's chain also tries first) or, when the environment has none,
  botocore's full credential chain (profiles, SSO, IMDS, container roles), refreshed as it expires;
* the ``x-amz-crc32`` response checksum DynamoDB sends, verified as botocore does;
* retries of throttling, 5xx, checksum and connection errors with capped exponential backoff and
  full jitter (``AWS_MAX_ATTEMPTS``, default 10 as botocore's DynamoDB default).

Items come back in DynamoDB's wire JSON (``{"S": ...}``, binary as base64 text), which is the
export format ``jit_audit.flatten`` reads, so ``returns_wire_json`` tells ``query.run`` to flatten
them directly. The Airflow tasks never use this module: they read through the provider's hooks.
``open_reader`` picks the lean reader only where it is exact (the standard ``aws`` partition, or an
explicit endpoint) and otherwise returns a boto3 client; ``jit-audit ... --client boto3`` always does.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import random
import re
import threading
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import orjson

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
OPERATIONS = {"query": "Query", "scan": "Scan"}
#: Error codes DynamoDB asks clients to retry (botocore's retry rules for the service).
RETRYABLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
     "InternalServerError", "ServiceUnavailable"}
)
DEFAULT_MAX_ATTEMPTS = 10
#: Regions of the standard ``aws`` partition, whose DynamoDB endpoint is dynamodb.<region>.amazonaws.com.
_STANDARD_REGION = re.compile(r"(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]{1,2}\Z")


class DynamoDBError(Exception):
    """DynamoDB refused a request (or could not be reached); says which operation and why."""

    def __init__(self, operation: str, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{operation}: {code}: {message}" if message else f"{operation}: {code}")
        self.operation = operation
        self.code = code
        self.status = status


class Credentials(NamedTuple):
    """Static credentials, with the attributes ``SigV4Auth`` reads (as botocore's own have)."""

    access_key: str
    secret_key: str
    token: str | None

    def get_frozen_credentials(self) -> Credentials:
        """The same interface as botocore's (refreshable) credentials."""
        return self


def environment_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """Static credentials from the environment, as botocore's EnvProvider reads them, or None."""
    key = environ.get("AWS_ACCESS_KEY_ID")
    secret = environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def host_header(endpoint_url: str) -> str:
    """The Host header (and signed ``host``) for an endpoint: its netloc without a default port."""
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def sigv4_headers(
    endpoint_url: str,
    operation: str,
    body: bytes,
    credentials: Credentials,
    region: str,
    now: datetime,
) -> dict[str, str]:
    """The headers of a signed DynamoDB JSON request (AWS Signature Version 4, service ``dynamodb``)."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "content-type": CONTENT_TYPE,
        "host": host_header(endpoint_url),
        "x-amz-date": amz_date,
        "x-amz-target": TARGET_PREFIX + operation,
    }
    if credentials.token:
        headers["x-amz-security-token"] = credentials.token
    names = sorted(headers)
    signed_headers = ";".join(names)
    canonical_request = "\n".join([
        "POST",
        quote(urlsplit(endpoint_url).path or "/", safe="/~"),
        "",  # no query string
        *(f"{name}:{' '.join(headers[name].split())}" for name in names),
        "",
        signed_headers,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{amz_date[:8]}/{region}/dynamodb/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{credentials.secret_key}".encode(), amz_date[:8]), region), "dynamodb"),
                "aws4_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                f"SignedHeaders={signed_headers}, Signature={signature}")
    return headers


def default_endpoint(region: str) -> str | None:
    """DynamoDB's endpoint in the standard partition, or None where botocore's rules must decide."""
    return f"https://dynamodb.{region}.amazonaws.com" if _STANDARD_REGION.match(region) else None


class DynamoDBReader:
    """``query(**request)`` and ``scan(**request)`` with the low-level client's request shape.

    Thread-safe: each thread keeps its own keep-alive connection (a parallel scan runs one
    segment per thread).
    """

    returns_wire_json = True

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Any,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint URL must be http(s)://host[:port], got {endpoint_url!r}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.max_attempts = max(1, max_attempts)
        self._timeout = timeout
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._path = parts.path or "/"
        self._credentials = credentials
        self._local = threading.local()

    def query(self, **request: Any) -> dict[str, Any]:
        return self._call("Query", request)

    def scan(self, **request: Any) -> dict[str, Any]:
        return self._call("Scan", request)

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = factory(self._netloc, timeout=self._timeout)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(request)
        attempt = 0
        while True:
            attempt += 1
            try:
                status, payload, crc = self._send(operation, body)
            except (OSError, http.client.HTTPException) as error:
                self._drop_connection()
                failure = DynamoDBError(operation, "EndpointConnectionError",
                                        f"Could not connect to the endpoint URL {self.endpoint_url}: {error}")
                retryable = True
            else:
                if crc is not None and zlib.crc32(payload) != crc:
                    failure = DynamoDBError(operation, "CRC32CheckFailed",
                                            f"response body does not match x-amz-crc32 {crc}", status)
                    retryable = True
                elif status == 200:
                    return orjson.loads(payload)  # type: ignore[no-any-return]
                else:
                    failure = _error(operation, status, payload)
                    retryable = status >= 500 or failure.code in RETRYABLE_CODES
            if not retryable or attempt >= self.max_attempts:
                if attempt > 1:
                    failure.args = (f"{failure.args[0]} (after {attempt} attempts)",)
                raise failure
            # Full jitter on a capped exponential backoff, as botocore's standard retry mode does.
            time.sleep(random.uniform(0, min(20.0, 0.05 * 2 ** (attempt - 1))))

    def _send(self, operation: str, body: bytes) -> tuple[int, bytes, int | None]:
        credentials = self._credentials.get_frozen_credentials()  # refreshable ones renew here
        headers = sigv4_headers(self.endpoint_url, operation, body, credentials, self.region, datetime.now(UTC))
        connection = self._connection()
        connection.request("POST", self._path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        crc = response.getheader("x-amz-crc32")
        if response.getheader("connection", "").lower() == "close":
            self._drop_connection()
        return response.status, payload, int(crc) if crc and crc.isdigit() else None


def _error(operation: str, status: int, payload: bytes) -> DynamoDBError:
    """DynamoDB's JSON error (``__type`` is ``<namespace>#<Code>``) as a DynamoDBError."""
    try:
        document = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    code = str(document.get("__type", "")).rpartition("#")[2] or f"HTTP {status}"
    message = str(document.get("message") or document.get("Message") or "")
    return DynamoDBError(operation, code, message, status)


def open_reader(endpoint_url: str | None = None, region: str | None = None, *, lean: bool = True) -> Any:
    """A DynamoDB client for reads: the lean reader where it is exact, else a boto3 client.

    The lean reader needs a region and static credentials from the environment (otherwise botocore's
    credential chain resolves them), and an endpoint: the one given, ``AWS_ENDPOINT_URL_DYNAMODB``,
    ``AWS_ENDPOINT_URL``, or the standard partition's. Anything else (FIPS or dual-stack endpoints,
    other partitions, a region only in ~/.aws/config) goes to boto3, which knows every rule.
    """
    environ = os.environ
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    configured = None
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        configured = environ.get("AWS_ENDPOINT_URL_DYNAMODB") or environ.get("AWS_ENDPOINT_URL")
    endpoint = endpoint_url or configured
    special = any(environ.get(name, "").lower() == "true"
                  for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"))
    if lean and region and not (special and not endpoint):
        endpoint = endpoint or default_endpoint(region)
        if endpoint:
            credentials = environment_credentials(environ) or _chain_credentials()
            if credentials is not None:
                attempts = environ.get("AWS_MAX_ATTEMPTS", "")
                return DynamoDBReader(endpoint, region, credentials,
                                      max_attempts=int(attempts) if attempts.isdigit() else DEFAULT_MAX_ATTEMPTS)
    import boto3

    kwargs = {"endpoint_url": endpoint_url, "region_name": region}
    return boto3.client("dynamodb", **{name: value for name, value in kwargs.items() if value})


def _chain_credentials() -> Any:
    """botocore's credentials from its full chain (profiles, SSO, IMDS...), or None if there are none.

    Kept as botocore's object, not frozen: refreshable credentials renew themselves while a long
    scan signs request after request.
    """
    import botocore.session

    return botocore.session.get_session().get_credentials()
