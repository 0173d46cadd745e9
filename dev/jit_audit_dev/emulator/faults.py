"""Fault injection and the request log: the WSGI side of the emulator's control endpoints."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    pass

from jit_audit_dev.emulator.history import _tls
from jit_audit_dev.emulator.state import _ERROR_PREFIX, _iso_micros

_StartResponse = Callable[..., Any]


#: The emulator-only fault endpoint (GET: pending faults, POST: add one, DELETE: clear and release).
FAULTS_PATH = "/jit-audit-emulator/faults"
#: The emulator-only request log (GET: every AWS request served, oldest first; DELETE: forget them).
REQUESTS_PATH = "/jit-audit-emulator/requests"
_RESET_PATH = "/moto-api/reset"
# The request log keeps the most recent requests only, so a long-lived `make up` emulator stays small.
_REQUEST_LOG_MAX = 20_000
_HOLD_PHASES = ("request", "response")
# AWS answers DynamoDB throttling from its availability layer, with this __type prefix.
_JSON_ERROR_PREFIXES = {
    "dynamodb": {"ThrottlingException": "com.amazon.coral.availability#", "*": _ERROR_PREFIX},
}
_SIGV4_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


@dataclass
class _Fault:
    """One injected fault: what it matches, what it does, how many more times."""

    fault_id: int
    service: str
    operation: str
    count: int
    key_contains: str | None = None
    error: str | None = None
    status: int = 400
    message: str | None = None
    hold_seconds: float | None = None
    hold: str = "request"
    export_seconds: float | None = None
    export_failure: tuple[str, str] | None = None

    @classmethod
    def from_json(cls, fault_id: int, payload: Any) -> _Fault:
        """Validate a POSTed fault; every mistake is a ValueError naming the member."""
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object describing one fault")
        known = {"service", "operation", "count", "key_contains", "error", "status", "message", "hold_seconds",
                 "hold", "export_seconds", "export_failure"}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown members {unknown}; known: {sorted(known)}")

        def text(name: str, required: bool = False) -> str | None:
            value = payload.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name!r} must be a non-empty string")
            return value

        def seconds(name: str) -> float | None:
            value = payload.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise ValueError(f"{name!r} must be a number of seconds between 0 and 3600")
            return float(value)

        count = payload.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("'count' must be an integer >= 1")
        status = payload.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("'status' must be an HTTP error status (400-599)")
        hold = payload.get("hold", "request")
        if hold not in _HOLD_PHASES:
            raise ValueError(f"'hold' must be one of {list(_HOLD_PHASES)}")
        failure = payload.get("export_failure")
        export_failure = None
        if failure is not None:
            if not isinstance(failure, dict) or not all(
                isinstance(failure.get(name), str) and failure.get(name) for name in ("code", "message")
            ):
                raise ValueError("'export_failure' must be {\"code\": <FailureCode>, \"message\": <FailureMessage>}")
            export_failure = (failure["code"], failure["message"])
        fault = cls(
            fault_id=fault_id,
            service=cast(str, text("service", required=True)).lower(),
            operation=cast(str, text("operation", required=True)),
            count=count,
            key_contains=text("key_contains"),
            error=text("error"),
            status=status,
            message=text("message"),
            hold_seconds=seconds("hold_seconds"),
            hold=hold,
            export_seconds=seconds("export_seconds"),
            export_failure=export_failure,
        )
        exporting = fault.export_seconds is not None or fault.export_failure is not None
        if exporting and (fault.service, fault.operation) != ("dynamodb", "ExportTableToPointInTime"):
            raise ValueError("'export_seconds' and 'export_failure' apply to dynamodb ExportTableToPointInTime only")
        if fault.error is not None and exporting:
            raise ValueError("an 'error' answers the request itself, so no export starts: drop 'export_*'")
        if fault.error is None and fault.hold_seconds is None and not exporting:
            raise ValueError("a fault needs 'error', 'hold_seconds', 'export_seconds' or 'export_failure'")
        return fault

    def describe(self) -> dict[str, Any]:
        document = {
            "id": self.fault_id,
            "service": self.service,
            "operation": self.operation,
            "remaining": self.count,
            "key_contains": self.key_contains,
            "error": self.error,
            "status": self.status if self.error else None,
            "message": self.message,
            "hold_seconds": self.hold_seconds,
            "hold": self.hold if self.hold_seconds is not None else None,
            "export_seconds": self.export_seconds,
            "export_failure": (
                {"code": self.export_failure[0], "message": self.export_failure[1]} if self.export_failure else None
            ),
        }
        return {name: value for name, value in document.items() if value is not None}


@dataclass(frozen=True)
class _ExportOverride:
    """What a matched fault asks of the export its request starts (read by _backend_export_table)."""

    export_seconds: float | None
    failure: tuple[str, str] | None


class _FaultState:
    """Pending faults, the request log and the event that releases every hold, process-wide."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[_Fault] = []
        self.next_fault_id = 1
        self.requests: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_MAX)
        self.next_seq = 1
        self.release = threading.Event()

    def add(self, payload: Any) -> _Fault:
        with self.lock:
            fault = _Fault.from_json(self.next_fault_id, payload)
            self.next_fault_id += 1
            self.faults.append(fault)
            return fault

    def pending(self) -> list[dict[str, Any]]:
        with self.lock:
            return [fault.describe() for fault in self.faults]

    def take(self, service: str, operation: str, key: str | None) -> _Fault | None:
        """The first pending fault matching this request, one use consumed (None: serve normally)."""
        with self.lock:
            for fault in self.faults:
                if fault.service != service or fault.operation != operation:
                    continue
                if fault.key_contains is not None and (key is None or fault.key_contains not in key):
                    continue
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return replace(fault)
        return None

    def clear_faults(self) -> None:
        """Forget pending faults and end every hold now (held requests and held exports go on)."""
        with self.lock:
            self.faults.clear()
            release, self.release = self.release, threading.Event()
        release.set()

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def log(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            entry["seq"] = self.next_seq
            self.next_seq += 1
            self.requests.append(entry)
        return entry

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        """Change a logged entry (its status, whether it is held); None removes a field."""
        with self.lock:
            for name, value in fields.items():
                if value is None:
                    entry.pop(name, None)
                else:
                    entry[name] = value

    def logged(self, service: str | None, operation: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(entry)
                for entry in self.requests
                if (service is None or entry["service"] == service)
                and (operation is None or entry["operation"] == operation)
            ]

    def current_release(self) -> threading.Event:
        with self.lock:
            return self.release


_fault_state = _FaultState()


def _service_of(environ: dict[str, Any]) -> str:
    """The SigV4 signing name from the Authorization header's credential scope (``s3``, ``dynamodb``...)."""
    match = _SIGV4_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1).lower()
    return "s3" if "X-Amz-Credential" not in environ.get("QUERY_STRING", "") else "unknown"


def _s3_request(environ: dict[str, Any], body: bytes | None) -> tuple[str, str | None, str | None, list[str] | None]:
    """(operation, bucket, key, keys deleted) of a path-style S3 REST request, named as in the API."""
    from urllib.parse import parse_qs, unquote

    path = unquote(environ.get("PATH_INFO", ""))
    bucket, _, key = path.lstrip("/").partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    method = environ.get("REQUEST_METHOD", "GET")
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    deleted: list[str] | None = None
    subresource = next(
        (name for name in ("tagging", "acl", "versioning", "lifecycle", "encryption", "object-lock", "policy",
                           "publicAccessBlock", "location", "retention", "legal-hold", "attributes", "cors")
         if name in query),
        None,
    )
    suffix = "".join(part.capitalize() for part in re.split(r"[-_]", subresource)) if subresource else ""
    if suffix == "Publicaccessblock":
        suffix = "PublicAccessBlock"
    if key:
        if method == "PUT":
            if "uploadId" in query:
                operation = "UploadPartCopy" if copy else "UploadPart"
            else:
                operation = f"PutObject{suffix}" if suffix else ("CopyObject" if copy else "PutObject")
        elif method in ("GET", "HEAD"):
            verb = "Get" if method == "GET" else "Head"
            operation = "ListParts" if "uploadId" in query else f"{verb}Object{suffix}"
        elif method == "DELETE":
            operation = "AbortMultipartUpload" if "uploadId" in query else f"DeleteObject{suffix}"
        elif method == "POST":
            operation = ("CreateMultipartUpload" if "uploads" in query
                         else "CompleteMultipartUpload" if "uploadId" in query else "PostObject")
        else:
            operation = method
        return operation, bucket or None, key, None
    if method == "POST" and "delete" in query:
        deleted = re.findall(r"<Key>([^<]*)</Key>", (body or b"").decode("utf-8", "replace"))
        from html import unescape

        return "DeleteObjects", bucket or None, None, [unescape(name) for name in deleted]
    if not bucket:
        return ("ListBuckets" if method == "GET" else method), None, None, None
    if method == "GET":
        operation = f"GetBucket{suffix}" if suffix else ("ListObjectsV2" if query.get("list-type") == ["2"]
                                                       else "ListObjectVersions" if "versions" in query
                                                       else "ListObjects")
    elif method == "HEAD":
        operation = "HeadBucket"
    elif method == "PUT":
        operation = f"PutBucket{suffix}" if suffix else "CreateBucket"
    elif method == "DELETE":
        operation = f"DeleteBucket{suffix}" if suffix else "DeleteBucket"
    else:
        operation = method
    return operation, bucket, None, None


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read a small request body and put it back, so moto still reads all of it."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _describe_request(environ: dict[str, Any]) -> dict[str, Any]:
    """service, operation and (S3) bucket/key/keys of one AWS request, for the log and for matching."""
    from urllib.parse import parse_qs

    service = _service_of(environ)
    method = environ.get("REQUEST_METHOD", "GET")
    entry: dict[str, Any] = {"service": service, "method": method, "path": environ.get("PATH_INFO", "")}
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        entry["operation"] = target.rpartition(".")[2]
    elif service == "s3":
        query = environ.get("QUERY_STRING", "")
        body = _read_body(environ) if method == "POST" and "delete" in parse_qs(query, keep_blank_values=True) else None
        operation, bucket, key, keys = _s3_request(environ, body)
        entry.update(operation=operation, bucket=bucket, key=key)
        if keys is not None:
            entry["keys"] = keys
    else:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        content_type = environ.get("CONTENT_TYPE", "")
        if not action and method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            action = parse_qs(_read_body(environ).decode("utf-8", "replace")).get("Action")
        entry["operation"] = action[0] if action else method
    return entry


def _error_response(service: str, target: bool, fault: _Fault) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error the way AWS sends it for this protocol (botocore parses code and message from it)."""
    code = cast(str, fault.error)
    message = fault.message or f"{code} (injected by the jit-audit emulator)"
    request_id = str(uuid.uuid4())
    if target:  # JSON protocols (DynamoDB, SQS, ...): __type carries the code
        prefixes = _JSON_ERROR_PREFIXES.get(service, {})
        error_type = prefixes.get(code, prefixes.get("*", "")) + code
        body = json.dumps({"__type": error_type, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
        return fault.status, headers, body
    from xml.sax.saxutils import escape

    if service == "s3":
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
               f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId>"
               f"<HostId>{request_id}</HostId></Error>")
    else:  # query protocol (SNS, ...)
        side = "Sender" if fault.status < 500 else "Receiver"
        xml = (f"<ErrorResponse><Error><Type>{side}</Type><Code>{escape(code)}</Code>"
               f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    return fault.status, headers, xml.encode()


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def _json_response(
    environ: dict[str, Any], start_response: _StartResponse, status: int, body: dict[str, Any], allow: str
) -> Iterable[bytes]:
    from werkzeug.wrappers import Response

    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if status == 405:
        response.headers["Allow"] = allow
    return cast(Iterable[bytes], response(environ, start_response))


def _serve_faults(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
    from werkzeug.wrappers import Request

    request = Request(environ)
    if request.method in ("GET", "HEAD"):
        return _json_response(environ, start_response, 200, {"faults": _fault_state.pending()}, "")
    if request.method == "DELETE":
        _fault_state.clear_faults()
        return _json_response(environ, start_response, 200, {"faults": []}, "")
    if request.method == "POST":
        try:
            fault = _fault_state.add(json.loads(request.get_data() or b"null"))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return _json_response(environ, start_response, 400, {"message": str(exc)}, "")
        return _json_response(environ, start_response, 200, {"fault": fault.describe()}, "")
    return _json_response(environ, start_response, 405, {"message": f"{request.method} not allowed"},
                          "GET, HEAD, POST, DELETE")


def _serve_requests(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
    from werkzeug.wrappers import Request

    request = Request(environ)
    if request.method in ("GET", "HEAD"):
        found = _fault_state.logged(request.args.get("service"), request.args.get("operation"))
        return _json_response(environ, start_response, 200, {"requests": found}, "")
    if request.method == "DELETE":
        _fault_state.clear_requests()
        return _json_response(environ, start_response, 200, {"requests": []}, "")
    return _json_response(environ, start_response, 405, {"message": f"{request.method} not allowed"},
                          "GET, HEAD, DELETE")


def _serve_aws(
    app: Callable[[dict[str, Any], _StartResponse], Iterable[bytes]],
    environ: dict[str, Any],
    start_response: _StartResponse,
) -> Iterable[bytes]:
    """Log the request, apply the first fault that matches it, and let moto answer the rest."""
    entry = _describe_request(environ)
    entry["time"] = _iso_micros(time.time_ns() // 1000)  # wall-clock time, whatever the emulator's clock says
    fault = _fault_state.take(entry["service"], entry["operation"], entry.get("key"))
    if fault is not None:
        entry["fault"] = fault.fault_id
    _fault_state.log(entry)  # logged on arrival: a held request is visible while it waits
    release = _fault_state.current_release()
    if fault is not None and fault.hold_seconds is not None and fault.hold == "request":
        _fault_state.update(entry, held="request")
        release.wait(fault.hold_seconds)
        _fault_state.update(entry, held=None)
    if fault is not None and fault.error is not None:
        status, headers, body = _error_response(entry["service"], "HTTP_X_AMZ_TARGET" in environ, fault)
        _fault_state.update(entry, status=status, error=fault.error)
        start_response(_status_line(status), [*headers, ("Content-Length", str(len(body)))])
        return [body]

    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        _fault_state.update(entry, status=int(status.split(" ", 1)[0]))
        captured.update(status=status, headers=headers, exc_info=exc_info)
        if fault is not None and fault.hold_seconds is not None and fault.hold == "response":
            return lambda data: None  # moto does not use write(); the body is its iterable
        return start_response(status, headers, exc_info)

    if fault is not None and (fault.export_seconds is not None or fault.export_failure is not None):
        _tls.export_override = _ExportOverride(fault.export_seconds, fault.export_failure)
    try:
        result = app(environ, capture)
    finally:
        _tls.export_override = None
    if fault is None or fault.hold_seconds is None or fault.hold != "response":
        return result
    # Done by moto (an export is started, an object written), but the client hears nothing yet.
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    _fault_state.update(entry, held="response")
    release.wait(fault.hold_seconds)
    _fault_state.update(entry, held=None)
    start_response(captured["status"], captured["headers"], captured["exc_info"])
    return [body]
