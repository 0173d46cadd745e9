"""The JIT reporting API client against a reference server that verifies every signature itself."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from jit_api_server import JitApiServer, running, summary

from jit_audit.jit_api import (
    JitApiAuthError,
    JitApiClient,
    JitApiError,
    canonical_query,
    canonical_string,
    parse_summary_query,
    sign,
    signed_headers,
)
from jit_audit.query import QueryParamError

KEY_ID = "audit-reader"
SECRET = "jit-secret-9f8e7d6c5b4a"
START, END = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
FIXTURE = [
    summary(1, "CH1", "2025-12-31T23:59:59Z", "EXPIRED"),  # one second before the range
    summary(2, "CH1", "2026-01-01T00:00:00Z", "GRANTED"),  # exactly at start: in
    summary(3, "CH1", "2026-01-05T10:00:00Z", "DENIED"),
    summary(4, "CH2", "2026-01-06T10:00:00Z", "GRANTED"),  # another channel
    summary(5, "CH1", "2026-01-10T10:00:00Z", "REVOKED"),
    summary(6, "CH1", "2026-01-20T10:00:00Z", "APPROVED"),
    summary(7, "CH1", "2026-01-25T10:00:00Z", "ERROR"),
    summary(8, "CH1", "2026-01-31T23:59:59Z", "REQUESTED"),  # last second: in
    summary(9, "CH1", "2026-02-01T00:00:00Z", "GRANTED"),  # exactly at end: out
]
IN_RANGE = ["req-0002", "req-0003", "req-0005", "req-0006", "req-0007", "req-0008"]


@pytest.fixture()
def server():
    with running(JitApiServer(keys={KEY_ID: SECRET}, summaries=FIXTURE, page_size=2)) as api:
        yield api


def client_for(api: JitApiServer, **options) -> JitApiClient:
    options.setdefault("sleep", lambda seconds: None)
    return JitApiClient(api.base_url, options.pop("key_id", KEY_ID), options.pop("secret", SECRET), **options)


# --- canonical string and signature -------------------------------------------------------------


def test_canonical_string_of_the_runbooks_example():
    query = canonical_query([("start_date", START), ("channel_id", "CH1"), ("end_date", END)])
    assert query == "channel_id=CH1&end_date=2026-02-01T00%3A00%3A00Z&start_date=2026-01-01T00%3A00%3A00Z"
    text = canonical_string("get", "/api/requests", query, "2026-01-15T10:00:00Z", "0123456789abcdef0123456789abcdef")
    assert text == (
        "GET\n/api/requests\n"
        "channel_id=CH1&end_date=2026-02-01T00%3A00%3A00Z&start_date=2026-01-01T00%3A00%3A00Z\n"
        "2026-01-15T10:00:00Z\n0123456789abcdef0123456789abcdef\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    # Computed once with Python's hmac by hand, not by the code under test.
    assert sign("s3cr3t", text) == "c4273bd629db51ec7c987b24c717dec214d1368fb703f3b6e166a0a0d29ecd5b"


def test_canonical_query_encodes_per_rfc3986_and_sorts_by_key_then_value():
    assert canonical_query([]) == ""
    assert canonical_query([("a b", "ü+/~*"), ("x", "")]) == "a%20b=%C3%BC%2B%2F~%2A&x="
    # By key first ("a" before "a-b", though "a-b=" < "a=" as whole strings), then by value.
    assert canonical_query([("a-b", "1"), ("a", "2"), ("a", "10")]) == "a=10&a=2&a-b=1"


def test_canonical_string_hashes_the_body():
    text = canonical_string("post", "", "", "T", "N", b'{"a":1}')
    assert text == "POST\n/\n\nT\nN\n015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"


def test_signed_headers_carry_the_runbooks_four_names():
    headers = signed_headers("k", "s", "GET", "/p", "", timestamp="T", nonce="N")
    assert set(headers) == {"X-JIT-KeyID", "X-JIT-Timestamp", "X-JIT-Nonce", "X-JIT-Signature"}
    assert headers["X-JIT-Signature"] == sign("s", "GET\n/p\n\nT\nN\n" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


# --- against the reference server ---------------------------------------------------------------


def test_pages_through_every_summary_in_range(server):
    items = client_for(server).request_summaries("CH1", START, END)
    assert [item["request_id"] for item in items] == IN_RANGE
    assert items[0] == FIXTURE[1]  # every field, as the service sent it
    assert [seen.status for seen in server.requests] == [200, 200, 200]
    tokens = [dict(piece.split("=") for piece in seen.query.split("&")).get("page_token") for seen in server.requests]
    assert tokens == [None, "2", "4"]
    first = server.requests[0]
    assert first.path == "/api/requests"
    assert first.query == "channel_id=CH1&end_date=2026-02-01T00%3A00%3A00Z&start_date=2026-01-01T00%3A00%3A00Z"


def test_every_request_has_a_fresh_nonce_and_a_current_timestamp(server):
    before = datetime.now(UTC).replace(microsecond=0)
    client_for(server).request_summaries("CH1", START, END)
    nonces = [seen.headers["x-jit-nonce"] for seen in server.requests]
    assert len(nonces) == len(set(nonces)) == 3
    assert all(len(nonce) == 32 and int(nonce, 16) >= 0 for nonce in nonces)
    for seen in server.requests:
        sent = datetime.strptime(seen.headers["x-jit-timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before <= sent <= datetime.now(UTC)


def test_max_items_stops_early_and_says_whether_there_were_more(server):
    from jit_audit.jit_api import fetch_summaries

    client = client_for(server)
    got: list = []
    result = fetch_summaries(client, parse_summary_query({"channel_id": "CH1", "start": START, "end": END,
                                                          "max_items": 3}), got.append)
    assert [item["request_id"] for item in got] == IN_RANGE[:3]
    assert (result.items, result.truncated) == (3, True)
    got.clear()
    result = fetch_summaries(client, parse_summary_query({"channel_id": "CH1", "start": START, "end": END,
                                                          "max_items": 6}), got.append)
    assert (result.items, result.truncated, result.pages) == (6, False, 3)


def test_a_stale_timestamp_is_refused_with_a_clear_error(server):
    slow_clock = lambda: datetime.now(UTC) - timedelta(minutes=5, seconds=30)  # noqa: E731
    with pytest.raises(JitApiAuthError, match="timestamp is stale.*clock") as caught:
        client_for(server, clock=slow_clock).request_summaries("CH1", START, END)
    assert (caught.value.status, caught.value.code) == (401, "stale_timestamp")
    assert [seen.error for seen in server.requests] == ["stale_timestamp"]
    # Four minutes off is inside the window.
    fast_clock = lambda: datetime.now(UTC) + timedelta(minutes=4)  # noqa: E731
    assert len(client_for(server, clock=fast_clock).request_summaries("CH1", START, END)) == len(IN_RANGE)


def test_a_reused_nonce_is_refused(server):
    with pytest.raises(JitApiAuthError, match="already seen this request's nonce") as caught:
        client_for(server, nonce_factory=lambda: "f" * 32).request_summaries("CH1", START, END)
    assert caught.value.code == "reused_nonce"
    assert [seen.status for seen in server.requests] == [200, 401]


def test_a_replayed_request_is_refused(server):
    client_for(server).request_summaries("CH2", START, END)
    original = server.requests[0]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    replay = {name: original.headers[name] for name in ("x-jit-keyid", "x-jit-timestamp", "x-jit-nonce",
                                                        "x-jit-signature")}
    connection.request("GET", f"{original.path}?{original.query}", headers=replay)
    assert connection.getresponse().status == 401
    assert server.requests[-1].error == "reused_nonce"


def test_a_wrong_secret_is_a_bad_signature_and_is_never_shown(server):
    wrong = "not-the-secret-0000"
    with pytest.raises(JitApiAuthError, match="refused our signature.*audit-reader") as caught:
        client_for(server, secret=wrong).request_summaries("CH1", START, END)
    assert caught.value.code == "bad_signature"
    assert wrong not in str(caught.value) and wrong not in repr(client_for(server, secret=wrong))
    assert len(server.requests) == 1  # a 401 is not retried


@pytest.mark.parametrize("tamper", ["query", "path", "timestamp", "nonce", "body"])
def test_the_server_really_checks_every_signed_part(server, tamper):
    """A signature made for one request fails on any other: the server's verdicts are not vacuous."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = canonical_query([("channel_id", "CH1"), ("start_date", START), ("end_date", END)])
    headers = signed_headers(KEY_ID, SECRET, "GET", "/api/requests", query, timestamp=now, nonce="a" * 32)
    path, body = "/api/requests", b""
    if tamper == "query":
        query = query.replace("CH1", "CH2")
    elif tamper == "path":
        path = "/api/requests/"
    elif tamper == "timestamp":
        headers["X-JIT-Timestamp"] = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif tamper == "nonce":
        headers["X-JIT-Nonce"] = "b" * 32
    else:
        body = b"{}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", f"{path}?{query}", body=body or None, headers=headers)
    assert connection.getresponse().status == 401
    assert server.requests[-1].error == "bad_signature"
    # Untampered, the same signature passes (with a nonce not yet used).
    clean = signed_headers(KEY_ID, SECRET, "GET", "/api/requests", canonical_query(
        [("channel_id", "CH1"), ("start_date", START), ("end_date", END)]), timestamp=now, nonce="c" * 32)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/api/requests?" + canonical_query(
        [("channel_id", "CH1"), ("start_date", START), ("end_date", END)]), headers=clean)
    assert connection.getresponse().status == 200


def test_429_and_5xx_are_retried_with_a_new_nonce_and_backoff(server):
    server.fail_next = [503, 429, 502]
    delays: list[float] = []
    items = client_for(server, sleep=delays.append, backoff_seconds=0.5).request_summaries("CH1", START, END)
    assert [item["request_id"] for item in items] == IN_RANGE
    assert [seen.status for seen in server.requests] == [503, 429, 502, 200, 200, 200]
    # Ceilings doubling from 0.5 s, each wait jittered into its upper half (Retry-After: 0 never shortens one).
    assert len(delays) == 3
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, [0.5, 1.0, 2.0], strict=True)), delays
    nonces = [seen.headers["x-jit-nonce"] for seen in server.requests]
    assert len(set(nonces)) == len(nonces)


def test_retries_give_up_after_max_attempts(server):
    server.fail_next = [500] * 5
    with pytest.raises(JitApiError, match="HTTP 500 after 3 attempts"):
        client_for(server, max_attempts=3).request_summaries("CH1", START, END)
    assert [seen.status for seen in server.requests] == [500, 500, 500]


def test_a_dropped_connection_is_retried_then_reported():
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here
        delays: list[float] = []
        client = JitApiClient(f"http://127.0.0.1:{port}", KEY_ID, SECRET, sleep=delays.append, max_attempts=2)
        with pytest.raises(JitApiError, match="failed after 2 attempts: ConnectionRefusedError"):
            client.request_summaries("CH1", START, END)
        assert len(delays) == 1 and 0.25 <= delays[0] <= 0.5, delays


def test_retry_after_lengthens_a_wait_up_to_the_cap():
    """A server's Retry-After (seconds or an HTTP date) is waited for, but never beyond max_backoff_seconds."""
    import threading
    from email.utils import format_datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    answers = [(429, "7"), (503, soon), (503, "120"), (200, None)]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            status, retry_after = answers.pop(0)
            body = b'{"items": [], "next_token": null}' if status == 200 else b"{}"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (quiet test output)
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        delays: list[float] = []
        client = JitApiClient(f"http://127.0.0.1:{httpd.server_address[1]}", KEY_ID, SECRET, sleep=delays.append,
                              max_backoff_seconds=30)
        assert client.get_json("/requests", []) == {"items": [], "next_token": None}
        httpd.shutdown()
    assert delays[0] == 7
    assert 15 <= delays[1] <= 20, delays  # the HTTP date, seconds from now
    assert delays[2] == 30, "capped at max_backoff_seconds"


def test_a_looping_next_token_is_stopped(server):
    loop = JitApiServer(keys={KEY_ID: SECRET}, summaries=FIXTURE, page_size=2)
    loop.handle = lambda *args: (200, {"items": [], "next_token": "same"})  # type: ignore[method-assign]
    with running(loop) as api, pytest.raises(JitApiError, match="next_token it gave before"):
        client_for(api).request_summaries("CH1", START, END)
    assert len(loop.requests) == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [({"rows": []}, "'items' list"), ({"items": ["x"]}, "JSON object"), ({"items": [], "next_token": 7}, "next_token")],
)
def test_malformed_pages_are_errors(body, problem):
    odd = JitApiServer(keys={KEY_ID: SECRET}, summaries=[])
    odd.handle = lambda *args: (200, body)  # type: ignore[method-assign]
    with running(odd) as api, pytest.raises(JitApiError, match=problem):
        client_for(api).request_summaries("CH1", START, END)


# --- what is refused before any request ---------------------------------------------------------


@pytest.mark.parametrize(
    ("channel_id", "start", "end", "field"),
    [
        ("CH1&channel_id=CH2", START, END, "channel_id"),
        ("../admin", START, END, "channel_id"),
        ("CH1\r\nX-Injected: 1", START, END, "channel_id"),
        ("CH1%00", START, END, "channel_id"),
        ("ĉannel", START, END, "channel_id"),
        ("", START, END, "channel_id"),
        ("x" * 65, START, END, "channel_id"),
        ("CH1", END, START, "end"),
        ("CH1", START, START, "end"),
        ("CH1", "2026-01-01T00:00:00", END, "start"),  # no zone: ambiguous
        ("CH1", "yesterday", END, "start"),
        ("CH1", START, "2026-02-01T00:00:00.5Z", "end"),
        ("CH1", START, "2026-02-01T00:00:00Z&x=1", "end"),
    ],
)
def test_hostile_or_bad_parameters_never_reach_the_server(server, channel_id, start, end, field):
    with pytest.raises(QueryParamError) as caught:
        client_for(server).request_summaries(channel_id, start, end)
    assert caught.value.field == field
    assert server.requests == []


def test_offsets_are_converted_to_utc():
    query = parse_summary_query({"channel_id": "CH1", "start": "2026-01-01T01:00:00+01:00", "end": END})
    assert query.query_params()[1] == ("start_date", "2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("http://jit.example.com", "refusing plain http"),
        ("ftp://127.0.0.1", "https://host"),
        ("https://user:pw@jit.example.com", "credentials"),
        ("https://jit.example.com/api?x=1", "credentials, a query"),
        ("https://jit.example.com/a b", "control characters"),
        ("https://jit.example.com:99999", "bad port"),
        ("jit.example.com", "https://host"),
    ],
)
def test_unsafe_base_urls_are_refused(base_url, problem):
    with pytest.raises(JitApiError, match=problem):
        JitApiClient(base_url, KEY_ID, SECRET)


def test_https_anywhere_and_http_on_loopback_are_accepted():
    assert JitApiClient("https://jit.example.com/api/", KEY_ID, SECRET).requests_path == "/api/requests"
    for url in ("http://127.0.0.1:8080", "http://localhost", "http://[::1]:9000/x"):
        assert urlsplit(JitApiClient(url, KEY_ID, SECRET).base_url).scheme == "http"


@pytest.mark.parametrize(("key_id", "secret"), [("", SECRET), ("a b", SECRET), ("k\n", SECRET), (KEY_ID, "")])
def test_missing_or_malformed_credentials_are_refused(key_id, secret):
    with pytest.raises(JitApiError, match="key id|secret"):
        JitApiClient("https://jit.example.com", key_id, secret)


def test_nothing_secret_is_logged(server, caplog):
    caplog.set_level("DEBUG")
    server.fail_next = [503]
    client_for(server).request_summaries("CH1", START, END)
    signatures = [seen.headers["x-jit-signature"] for seen in server.requests]
    assert "HTTP 503; retrying" in caplog.text
    assert SECRET not in caplog.text
    assert not any(signature in caplog.text for signature in signatures)


# --- publishing to S3 (the emulator) ------------------------------------------------------------


def test_summaries_to_s3_publishes_rewrites_and_refuses_foreign_prefixes(server, aws):
    from jit_audit.jit_api import summaries_to_s3

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="results")
    query = parse_summary_query({"channel_id": "CH1", "start": START, "end": END, "max_items": 4})
    first = summaries_to_s3(client_for(server), s3, query, "results", "/adhoc/run-1/")
    assert first["uri"] == "s3://results/adhoc/run-1/"
    assert (first["counts"]["items"], first["truncated_at_max_items"]) == (4, True)
    part = s3.get_object(Bucket="results", Key="adhoc/run-1/part-00000.jsonl.gz")["Body"].read()
    again = summaries_to_s3(client_for(server), s3, query, "results", "adhoc/run-1")
    assert again["parts"] == first["parts"]  # byte-identical on a re-run of the same prefix
    assert s3.get_object(Bucket="results", Key="adhoc/run-1/part-00000.jsonl.gz")["Body"].read() == part
    assert s3.get_object(Bucket="results", Key="adhoc/run-1/_SUCCESS")["ContentLength"] == 0

    for kind in ("snapshot", "adhoc"):
        s3.put_object(Bucket="results", Key=f"{kind}/_manifest.json", Body=json.dumps({"kind": kind}).encode())
        requests_before = len(server.requests)
        with pytest.raises(QueryParamError, match=f"already holds a {kind} manifest"):
            summaries_to_s3(client_for(server), s3, query, "results", f"{kind}/")
        assert len(server.requests) == requests_before
