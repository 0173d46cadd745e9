"""A reference JIT reporting API on a free loopback port, for tests.

It verifies each request the way ``docs/jit-api.md`` specifies, with its own code (nothing from
``jit_audit.jit_api``: a bug shared by signer and verifier would hide), and:

* rejects a missing header, an unknown key id or a bad signature (401 ``bad_signature``/``unknown_key``),
  a timestamp more than five minutes from its clock (401 ``stale_timestamp``) and a nonce it has
  already accepted (401 ``reused_nonce``);
* answers ``GET <prefix>/requests?channel_id=&start_date=&end_date=[&page_token=]`` with the
  fixture summaries of that channel whose ``created_at`` is in [start, end), ``page_size`` at a
  time, as ``{"items": [...], "next_token": ...}``;
* can fail on purpose (``fail_next``: statuses to answer before serving, e.g. 503 then 429);
* records every request it saw (``requests``) with its verdict, for assertions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_SKEW_SECONDS = 300
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def encode_component(raw: bytes) -> str:
    """RFC 3986 percent-encoding, byte by byte: unreserved bytes as they are, the rest as %XX."""
    return "".join(chr(byte) if byte in UNRESERVED else f"%{byte:02X}" for byte in raw)


def expected_canonical(method: str, raw_path: str, raw_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The canonical string rebuilt from the request as received."""
    pairs = []
    for piece in raw_query.split("&") if raw_query else []:
        name, _, value = piece.partition("=")
        pairs.append((encode_component(unquote_to_bytes(name)), encode_component(unquote_to_bytes(value))))
    pairs.sort()  # by encoded name, then encoded value
    query = "&".join(name + "=" + value for name, value in pairs)
    return "\n".join([method, raw_path or "/", query, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def summary(index: int, channel_id: str, created_at: str, status: str) -> dict[str, Any]:
    return {"request_id": f"req-{index:04d}", "channel_id": channel_id, "account_id": "123456789012",
            "requester_email": f"user{index}@example.com", "created_at": created_at, "status": status,
            "updated_at": created_at}


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int
    error: str | None


@dataclass
class JitApiServer:
    keys: dict[str, str]
    summaries: list[dict[str, Any]]
    page_size: int = 3
    prefix: str = "/api"
    clock: Any = None
    fail_next: list[int] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(UTC)

    # The request's verdict: (status, body).
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        raw_path, _, raw_query = target.partition("?")
        needed = ("x-jit-keyid", "x-jit-timestamp", "x-jit-nonce", "x-jit-signature")
        if any(name not in headers for name in needed):
            return 401, {"error": "missing_headers", "message": "X-JIT-KeyID, -Timestamp, -Nonce, -Signature"}
        secret = self.keys.get(headers["x-jit-keyid"])
        if secret is None:
            return 401, {"error": "unknown_key", "message": "unknown key id"}
        try:
            sent = datetime.strptime(headers["x-jit-timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return 401, {"error": "bad_timestamp", "message": "timestamp must be YYYY-MM-DDTHH:MM:SSZ"}
        canonical = expected_canonical(method, raw_path, raw_query, headers["x-jit-timestamp"],
                                       headers["x-jit-nonce"], body)
        wanted = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(wanted, headers["x-jit-signature"]):
            return 401, {"error": "bad_signature", "message": "signature does not match"}
        if abs((self.now() - sent).total_seconds()) > MAX_SKEW_SECONDS:
            return 401, {"error": "stale_timestamp", "message": "timestamp more than 5 minutes off"}
        with self.lock:
            if headers["x-jit-nonce"] in self.nonces:
                return 401, {"error": "reused_nonce", "message": "nonce already used"}
            self.nonces.add(headers["x-jit-nonce"])
            if self.fail_next:
                return self.fail_next.pop(0), {"error": "unavailable", "message": "try again"}
        if method != "GET" or raw_path != f"{self.prefix}/requests":
            return 404, {"error": "not_found", "message": raw_path}
        params: dict[str, str] = {}
        for piece in raw_query.split("&") if raw_query else []:
            name, _, value = piece.partition("=")
            params[unquote_to_bytes(name).decode()] = unquote_to_bytes(value).decode()
        try:
            start = datetime.strptime(params["start_date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            end = datetime.strptime(params["end_date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            channel = params["channel_id"]
            offset = int(params.get("page_token", "0"))
        except (KeyError, ValueError) as error:
            return 400, {"error": "bad_request", "message": str(error)}
        matching = [item for item in self.summaries if item["channel_id"] == channel
                    and start <= datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")) < end]
        page = matching[offset : offset + self.page_size]
        following = offset + self.page_size
        return 200, {"items": page, "next_token": str(following) if following < len(matching) else None}

    def serve(self, method: str, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        raw_path, _, raw_query = handler.path.partition("?")
        status, document = self.handle(method, handler.path, headers, body)
        with self.lock:
            self.requests.append(Seen(method, raw_path, raw_query, headers, status,
                                      document.get("error") if status != 200 else None))
        reply = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        if status == 429:
            handler.send_header("Retry-After", "0")
        handler.end_headers()
        handler.wfile.write(reply)


@contextmanager
def running(server: JitApiServer) -> Iterator[JitApiServer]:
    """Serve on 127.0.0.1 and a free port until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            server.serve("GET", self)

        def do_POST(self) -> None:  # noqa: N802
            server.serve("POST", self)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (quiet test output)
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
