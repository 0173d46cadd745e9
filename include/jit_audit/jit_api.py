"""The JIT service's reporting API (the runbook's Method 1): signed requests, every page followed.

The runbook sends four headers with each request and says the endpoint "returns request summaries
with latest status, not full audit trails":

    X-JIT-KeyID      the key id
    X-JIT-Timestamp  the current UTC time, ``YYYY-MM-DDTHH:MM:SSZ``
    X-JIT-Nonce      a fresh random value (32 hex digits) for every request, retries included
    X-JIT-Signature  lowercase hex HMAC-SHA256(secret, canonical string)

The canonical string is six lines joined by ``\\n`` (no trailing newline):

    METHOD        upper case: ``GET``
    PATH          the request path exactly as sent (percent-encoded), ``/`` when empty
    QUERY         ``key=value`` pairs, each side RFC 3986-encoded (only ``A-Z a-z 0-9 - . _ ~``
                  kept, every other UTF-8 byte as ``%XX`` in upper case, so a space is ``%20``),
                  sorted by encoded key, then encoded value, joined by ``&``; empty when none
    TIMESTAMP     the X-JIT-Timestamp header's value
    NONCE         the X-JIT-Nonce header's value
    BODY HASH     lowercase hex SHA-256 of the body (of nothing for a GET: ``e3b0c442...b855``)

The client sends the query string in exactly its canonical form, so what is signed is what is sent.
The runbook names the headers but not the string they sign; this is the scheme our reference
server (``tests/jit_api_server.py``) verifies. If the JIT service signs differently, only
:func:`canonical_string` changes.

Paging: a response is ``{"items": [...], "next_token": "<opaque>" | null}``; the next page is the
same request plus ``page_token=<next_token>``. Parameters are checked before any request; a 429 or
5xx (or a dropped connection) is retried with backoff, re-signed with a new nonce and timestamp.
The secret and the signatures never reach a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from jit_audit.params import CHANNEL_ID, QueryParamError
from jit_audit.retry import Backoff, retrying

log = logging.getLogger(__name__)

HEADER_KEY_ID = "X-JIT-KeyID"
HEADER_TIMESTAMP = "X-JIT-Timestamp"
HEADER_NONCE = "X-JIT-Nonce"
HEADER_SIGNATURE = "X-JIT-Signature"
REQUESTS_PATH = "requests"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: How far the service lets a timestamp drift from its clock (ours matches the reference server).
MAX_CLOCK_SKEW = timedelta(minutes=5)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_PAGES = 10_000
DEFAULT_MAX_ITEMS = 1_000_000
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_TOKEN_LENGTH = 4096

_KEY_ID = re.compile(r"[A-Za-z0-9._~+/=:-]{1,256}\Z")
_UNRESERVED = "-._~"  # with ALPHA and DIGIT, which quote() always keeps


class JitApiError(RuntimeError):
    """The reporting API could not be used; the message says why and what to check."""


class JitApiAuthError(JitApiError):
    """The service refused our credentials or signature (401, or 409 for a reused nonce)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# --- signing --------------------------------------------------------------------------------------


def rfc3986(text: str) -> str:
    """Percent-encode everything but RFC 3986's unreserved characters (UTF-8, upper-case hex)."""
    return quote(text, safe=_UNRESERVED, encoding="utf-8", errors="strict")


def canonical_query(params: Sequence[tuple[str, str]]) -> str:
    """The query as signed and sent: encoded ``key=value`` pairs in byte order, joined by ``&``."""
    encoded = sorted((rfc3986(key), rfc3986(value)) for key, value in params)
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_string(method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes = b"") -> str:
    """The text the signature covers: one line each for method, path, query, timestamp, nonce, body hash.

    ``query`` is already canonical (see :func:`canonical_query`); ``path`` is as sent on the wire.
    """
    return "\n".join(
        (method.upper(), path or "/", query, timestamp, nonce, hashlib.sha256(body).hexdigest())
    )


def sign(secret: str, canonical: str) -> str:
    """Lowercase hex HMAC-SHA256 of the canonical string, keyed with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def signed_headers(
    key_id: str, secret: str, method: str, path: str, query: str, *, timestamp: str, nonce: str, body: bytes = b""
) -> dict[str, str]:
    """The four X-JIT-* headers for one request."""
    signature = sign(secret, canonical_string(method, path, query, timestamp, nonce, body))
    return {HEADER_KEY_ID: key_id, HEADER_TIMESTAMP: timestamp, HEADER_NONCE: nonce, HEADER_SIGNATURE: signature}


def utc_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def new_nonce() -> str:
    """128 random bits as 32 hex digits: never the same twice, so a replay is always detectable."""
    return secrets.token_hex(16)


# --- parameters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryQuery:
    """A validated request for the summaries of one channel's requests in [start, end)."""

    channel_id: str
    start: datetime
    end: datetime
    max_items: int = DEFAULT_MAX_ITEMS

    def query_params(self) -> list[tuple[str, str]]:
        return [("channel_id", self.channel_id), ("start_date", utc_timestamp(self.start)),
                ("end_date", utc_timestamp(self.end))]

    def describe(self) -> dict[str, Any]:
        """The parameters as ``_manifest.json`` records them."""
        return {"query_by": "api_summary", "channel_id": self.channel_id, "start": utc_timestamp(self.start),
                "end": utc_timestamp(self.end), "max_items": self.max_items}


def _utc_moment(field_name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            raise QueryParamError(field_name, f"{value!r} is not an ISO-8601 date-time") from None
    elif value is None or value == "":
        raise QueryParamError(field_name, "is required for an API summary query")
    else:
        raise QueryParamError(field_name, f"expected an ISO-8601 date-time, got {type(value).__name__}")
    if moment.tzinfo is None:
        raise QueryParamError(field_name, f"{value!r} has no time zone; give UTC explicitly (…Z)")
    if moment.microsecond:
        raise QueryParamError(field_name, "the API takes whole seconds; drop the fraction")
    return moment.astimezone(UTC)


def parse_summary_query(params: Mapping[str, Any]) -> SummaryQuery:
    """Validate ``channel_id``, ``start``, ``end`` and ``max_items`` before any request is made."""
    channel_id = params.get("channel_id")
    if not isinstance(channel_id, str) or not channel_id:
        raise QueryParamError("channel_id", "is required for an API summary query")
    if not CHANNEL_ID.match(channel_id):
        raise QueryParamError("channel_id", f"must be 1-64 letters, digits, '_' or '-', got {channel_id!r}")
    start = _utc_moment("start", params.get("start"))
    end = _utc_moment("end", params.get("end"))
    if not start < end:
        raise QueryParamError("end", f"must be after start ({utc_timestamp(start)}), got {utc_timestamp(end)}")
    max_items = params.get("max_items")
    if max_items is None or max_items == "":
        max_items = DEFAULT_MAX_ITEMS
    if isinstance(max_items, bool) or not isinstance(max_items, int) or not 1 <= max_items <= 100_000_000:
        raise QueryParamError("max_items", f"must be a whole number from 1 to 100,000,000, got {max_items!r}")
    return SummaryQuery(channel_id=channel_id, start=start, end=end, max_items=max_items)


def check_base_url(base_url: str) -> tuple[str, str, int | None, str]:
    """Scheme, host, port and path prefix of the API; https only, except on a loopback address.

    Signed requests are replay-protected but not secret: over plain http anyone on the path reads
    the summaries. Credentials, queries and fragments in the URL are refused (they would be logged).
    """
    if not isinstance(base_url, str) or any(ord(char) < 0x21 or ord(char) == 0x7F for char in base_url):
        raise JitApiError(f"the API's base URL must be a URL without spaces or control characters, got {base_url!r}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise JitApiError(f"the API's base URL must be https://host[:port][/path], got {base_url!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise JitApiError("the API's base URL must not hold credentials, a query or a fragment")
    try:
        port = parts.port
    except ValueError:
        raise JitApiError(f"the API's base URL has a bad port: {base_url!r}") from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise JitApiError(f"refusing plain http to {parts.hostname}: use https (http is allowed on loopback only)")
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the client -----------------------------------------------------------------------------------


@dataclass
class SummaryPage:
    items: list[dict[str, Any]]
    next_token: str | None


@dataclass
class SummaryResult:
    items: int = 0
    pages: int = 0
    truncated: bool = False


class JitApiClient:
    """Signed GETs to the JIT reporting API.

    :param base_url: ``https://host[:port][/prefix]``; ``/requests`` is appended
    :param key_id: the key id sent in X-JIT-KeyID
    :param secret: the HMAC secret (never sent, never logged)
    :param max_attempts: tries per page for 429, 5xx and dropped connections
    :param clock, nonce_factory, sleep: swappable for tests (a stale clock, a repeated nonce, no waiting)
    """

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        max_pages: int = DEFAULT_MAX_PAGES,
        clock: Callable[[], datetime] | None = None,
        nonce_factory: Callable[[], str] = new_nonce,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.scheme, self.host, self.port, self.path_prefix = check_base_url(base_url)
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise JitApiError("the key id must be 1-256 printable characters without spaces (see the Connection's login)")
        if not isinstance(secret, str) or not secret:
            raise JitApiError("the API secret is empty (see the Connection's password)")
        if max_attempts < 1 or max_pages < 1 or timeout <= 0:
            raise JitApiError("max_attempts, max_pages and timeout must be positive")
        self.key_id = key_id
        self._secret = secret
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_pages = max_pages
        self._clock = clock or (lambda: datetime.now(UTC))
        self._nonce = nonce_factory
        self._sleep = sleep
        self._ssl_context = ssl_context

    def __repr__(self) -> str:  # the secret stays out of reprs, tracebacks and task logs
        return f"JitApiClient(base_url={self.base_url!r}, key_id={self.key_id!r})"

    @property
    def base_url(self) -> str:
        port = f":{self.port}" if self.port else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}{self.path_prefix}"

    @property
    def requests_path(self) -> str:
        return f"{self.path_prefix}/{REQUESTS_PATH}"

    @property
    def backoff(self) -> Backoff:
        """``max_attempts`` tries per request, waits doubling from ``backoff_seconds`` up to ``max_backoff_seconds``."""
        return Backoff(self.max_attempts, self.backoff_seconds, self.max_backoff_seconds)

    def get_json(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        """One signed GET, retried on 429/5xx and dropped connections; the decoded JSON body."""
        query = canonical_query(params)
        target = f"{path}?{query}" if query else path
        attempts = retrying(self.backoff, retry_if=_retryable, action=f"GET {path}", reason=_retry_reason,
                            retry_after=_retry_after, log=log, sleep=self._sleep)
        try:
            status, body = attempts(self._get_once, path, query, target)
        except _RetryableStatus as last:  # still refused after the last attempt
            status, body = last.status, last.body
        except (OSError, http.client.HTTPException) as error:
            raise JitApiError(f"GET {path} failed after {self.max_attempts} attempts: {type(error).__name__}: {error}") from None
        if status == 200:
            try:
                return json.loads(body)
            except ValueError:
                raise JitApiError(f"GET {path}: HTTP 200 but the body is not JSON") from None
        raise self._error(path, status, body, self.max_attempts)

    def _get_once(self, path: str, query: str, target: str) -> tuple[int, bytes]:
        """One attempt: signed afresh (the service refuses a nonce it has seen); a 429 or 5xx raises."""
        headers = signed_headers(self.key_id, self._secret, "GET", path, query,
                                 timestamp=utc_timestamp(self._clock()), nonce=self._nonce())
        headers.update({"Accept": "application/json", "User-Agent": "jit-audit-export"})
        status, response_headers, body = self._send("GET", target, headers)
        if status in RETRY_STATUSES:
            raise _RetryableStatus(status, response_headers.get("retry-after"), body)
        return status, body

    def _send(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One HTTP exchange; http.client follows no redirects and reads no proxy settings."""
        connection: http.client.HTTPConnection
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                     context=self._ssl_context or ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
            body = response.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                raise JitApiError(f"{method} {target.split('?')[0]}: response larger than {MAX_RESPONSE_BYTES} bytes")
            return response.status, {name.lower(): value for name, value in response.getheaders()}, body
        finally:
            connection.close()

    def _error(self, path: str, status: int, body: bytes, attempts: int) -> JitApiError:
        code, detail = _error_body(body)
        where = f"GET {path}: HTTP {status}"
        if code == "stale_timestamp":
            return JitApiAuthError(status, code, f"{where}: the service says our timestamp is stale "
                                   f"(more than {int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes off its clock); "
                                   "check this machine's clock (NTP)")
        if code == "reused_nonce":
            return JitApiAuthError(status, code, f"{where}: the service has already seen this request's nonce; "
                                   "something replayed it (a proxy?) or the nonce source is broken")
        if code in ("bad_signature", "unknown_key") or status == 401:
            return JitApiAuthError(status, code or "unauthorized",
                                   f"{where}: the service refused our signature ({code or detail or 'unauthorized'}); "
                                   f"check the key id {self.key_id!r} and its secret in the Connection")
        if status == 403:
            return JitApiAuthError(status, code or "forbidden", f"{where}: key {self.key_id!r} may not read this "
                                   f"({detail or code or 'forbidden'})")
        if status in RETRY_STATUSES:
            return JitApiError(f"{where} after {attempts} attempts ({detail or code or 'no detail'})")
        return JitApiError(f"{where} ({detail or code or 'no detail'})")

    # --- the /requests endpoint -------------------------------------------------------------------

    def summary_pages(self, query: SummaryQuery) -> Iterator[SummaryPage]:
        """Each page of ``/requests`` for the query, following ``next_token`` until there is none."""
        params = query.query_params()
        seen_tokens: set[str] = set()
        token: str | None = None
        for page_number in range(1, self.max_pages + 1):
            body = self.get_json(self.requests_path, params + ([("page_token", token)] if token else []))
            page = _parse_page(body, page_number)
            yield page
            if page.next_token is None:
                return
            if page.next_token in seen_tokens:
                raise JitApiError(f"page {page_number}: the service returned a next_token it gave before; "
                                  "stopping instead of looping")
            seen_tokens.add(page.next_token)
            token = page.next_token
        raise JitApiError(f"more than {self.max_pages} pages; narrow the date range or raise max_pages")

    def request_summaries(
        self, channel_id: str, start: datetime | str, end: datetime | str, *, max_items: int = DEFAULT_MAX_ITEMS
    ) -> list[dict[str, Any]]:
        """Every summary of the channel's requests in [start, end), up to ``max_items``."""
        query = parse_summary_query({"channel_id": channel_id, "start": start, "end": end, "max_items": max_items})
        items: list[dict[str, Any]] = []
        fetch_summaries(self, query, items.append)
        return items


class _RetryableStatus(Exception):
    """A 429 or 5xx answer: worth another attempt (it carries the answer, for when none is left)."""

    def __init__(self, status: int, retry_after: str | None, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.body = body


def _retryable(error: BaseException) -> bool:
    return isinstance(error, _RetryableStatus | OSError | http.client.HTTPException)


def _retry_reason(error: BaseException) -> str:
    return str(error) if isinstance(error, _RetryableStatus) else type(error).__name__


def _retry_after(error: BaseException) -> float | None:
    """The seconds a 429/503's ``Retry-After`` asks for (a number or an HTTP date); None if absent or unreadable."""
    value = error.retry_after if isinstance(error, _RetryableStatus) else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError):
        return None


def fetch_summaries(client: JitApiClient, query: SummaryQuery, emit: Callable[[dict[str, Any]], Any]) -> SummaryResult:
    """Hand each summary to ``emit`` in the service's order, stopping at ``max_items``.

    Once the cap is full, pages are read on only until one more summary shows (then the result is
    ``truncated``) or the pages run out (then it is complete, and says so).
    """
    result = SummaryResult()
    for page in client.summary_pages(query):
        result.pages += 1
        room = query.max_items - result.items
        for item in page.items[:room]:
            emit(item)
        result.items += min(room, len(page.items))
        if len(page.items) > room:
            result.truncated = True
            break
    return result


def _parse_page(body: Any, page_number: int) -> SummaryPage:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise JitApiError(f"page {page_number}: expected a JSON object with an 'items' list")
    if not all(isinstance(item, dict) for item in body["items"]):
        raise JitApiError(f"page {page_number}: every item must be a JSON object")
    token = body.get("next_token")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH):
        raise JitApiError(f"page {page_number}: next_token must be a non-empty string of at most "
                          f"{MAX_TOKEN_LENGTH} characters or null")
    return SummaryPage(items=body["items"], next_token=token)


def _error_body(body: bytes) -> tuple[str, str]:
    """The service's ``{"error": code, "message": text}``, printable and short (it ends up in logs)."""
    try:
        document = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(document, dict):
        return "", ""

    def clean(value: Any) -> str:
        return re.sub(r"[^\x20-\x7e]", "?", value)[:200] if isinstance(value, str) else ""

    return clean(document.get("error")), clean(document.get("message"))


# --- publishing to S3 -----------------------------------------------------------------------------

MANIFEST_KIND = "adhoc_api_summary"


def summaries_to_s3(
    client: JitApiClient,
    s3: Any,
    query: SummaryQuery,
    bucket: str,
    prefix: str,
    *,
    upload_extra_args: dict[str, str] | None = None,
    record: Callable[[bytes, dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Fetch the summaries and publish ``part-00000.jsonl.gz``, ``_manifest.json`` and ``_SUCCESS``.

    Same contract as the ad-hoc DynamoDB queries (``jit_audit.query.run_to_s3``): lines are
    spooled to a temporary file and uploaded only once every page has arrived; a re-run of the
    prefix withdraws ``_SUCCESS`` first; a prefix holding any other kind of manifest is refused.
    Each line is one summary as the service sent it (its fields in its order), compact JSON.
    """
    from collections import Counter

    import orjson

    from jit_audit.results import publish_results

    def produce(open_part: Callable[[int], Callable[[bytes], Any]]) -> dict[str, Any]:
        write = open_part(0)
        by_status: Counter[str] = Counter()

        def emit(item: dict[str, Any]) -> None:
            status = item.get("status")
            by_status[status if isinstance(status, str) else "(none)"] += 1
            write(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))

        result = fetch_summaries(client, query, emit)
        return {
            "source": {"api": client.base_url, "path": client.requests_path, "key_id": client.key_id},
            "query": query.describe(),
            "counts": {"items": result.items, "pages": result.pages, "by_status": dict(sorted(by_status.items()))},
            "truncated_at_max_items": result.truncated,
        }

    return publish_results(s3, bucket, prefix, MANIFEST_KIND, produce, upload_extra_args=upload_extra_args,
                           record=record)

