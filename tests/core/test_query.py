"""Ad-hoc queries (``jit_audit.query`` and ``jit-audit query|scan``) against the emulator over HTTP.

Every expectation is computed here, independently of the query code: a full, paginated ``scan`` of
the table, filtered in Python (times parsed to ``datetime`` and compared as [start, end)), then
flattened with ``flatten_client_item`` and compared with the query's output line by line, keyed by
``(request_id, event_time_event_id)``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from jit_audit.query import (
    EVENT_TYPES,
    AdhocQuery,
    QueryParamError,
    QueryResult,
    flatten_client_item,
    parse_query,
    requests,
    run,
    run_to_s3,
)
from jit_audit_dev.seed import ACCOUNTS, CHANNELS, create_table, seed

TABLE = "jit_audit"
BUCKET = "jit-audit-adhoc"
SEED_END = datetime(2026, 1, 15, 12, tzinfo=UTC)  # seeded events lie in [Jan 8 12:00, Jan 15 06:00)
START = datetime(2026, 1, 10, 0, 0, tzinfo=UTC)
END = datetime(2026, 1, 13, 6, 30, tzinfo=UTC)
ACCOUNT = ACCOUNTS[0]
CHANNEL = CHANNELS[0]
MS = timedelta(milliseconds=1)

Key = tuple[str, str]


# --------------------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    """Written here rather than borrowed from the product: ``2026-01-10T00:00:00.000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _seed(aws: Any, requests_count: int = 60) -> Any:
    seed(aws.resource("dynamodb"), TABLE, requests=requests_count, end=SEED_END)
    return aws.client("dynamodb")


def _put(client: Any, request_id: str, moment: datetime, *, event_type: str = "REQUESTED",
         account: str = ACCOUNT, channel: str = CHANNEL, event_id: str = "e0") -> dict[str, Any]:
    item = {
        "request_id": {"S": request_id},
        "event_time_event_id": {"S": f"{_iso(moment)}#{event_id}"},
        "event_type": {"S": event_type},
        "account_id": {"S": account},
        "channel_id": {"S": channel},
        "details": {"M": {"n": {"N": "1.50"}, "tags": {"SS": ["b", "a"]}, "ok": {"BOOL": True}}},
    }
    client.put_item(TableName=TABLE, Item=item)
    return item


def _scan_all(client: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _time_of(item: dict[str, Any]) -> datetime:
    text = item["event_time_event_id"]["S"].split("#", 1)[0]
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _in_range(item: dict[str, Any], start: datetime, end: datetime) -> bool:
    return start <= _time_of(item) < end


def _expect(client: Any, keep: Callable[[dict[str, Any]], bool]) -> dict[Key, dict[str, Any]]:
    expected = {}
    for item in _scan_all(client):
        if keep(item):
            expected[(item["request_id"]["S"], item["event_time_event_id"]["S"])] = orjson.loads(
                flatten_client_item(item))
    return expected


def _keyed(data: bytes) -> dict[Key, dict[str, Any]]:
    rows = [json.loads(line) for line in data.splitlines()]
    keyed = {(row["request_id"], row["event_time_event_id"]): row for row in rows}
    assert len(keyed) == len(rows), "the same item was written twice"
    return keyed


def _run(client: Any, params: dict[str, Any], **parse_kwargs: Any) -> tuple[QueryResult, bytes]:
    query = parse_query(params, **parse_kwargs)
    parts: dict[int, list[bytes]] = {}
    lock = threading.Lock()

    def open_part(index: int) -> Callable[[bytes], Any]:
        with lock:
            assert index not in parts, "a part was opened twice"
            parts[index] = []
        return parts[index].append

    result = run(client, TABLE, query, open_part)
    data = b"".join(b"".join(parts[index]) for index in sorted(parts))
    assert data == b"" or data.endswith(b"\n")
    return result, data


def _check(result: QueryResult, data: bytes, expected: dict[Key, dict[str, Any]]) -> None:
    assert _keyed(data) == expected
    assert result.items == len(expected)
    assert result.by_event_type == Counter(row["event_type"] for row in expected.values())
    assert not result.truncated


def _sorted_lines(data: bytes) -> list[bytes]:
    return sorted(data.splitlines())


def _error(params: dict[str, Any], **kwargs: Any) -> QueryParamError:
    with pytest.raises(QueryParamError) as caught:
        parse_query(params, **kwargs)
    return caught.value


def _account_params(**extra: Any) -> dict[str, Any]:
    return {"query_by": "account", "account_id": ACCOUNT, "start": _iso(START), "end": _iso(END), **extra}


def _insert_edges(client: Any) -> dict[str, bool]:
    """Items of ACCOUNT and CHANNEL right at the range's edges; request id -> expected inside."""
    edges = {
        "edge-at-start": (START, True),
        "edge-1ms-before-start": (START - MS, False),
        "edge-1ms-before-end": (END - MS, True),
        "edge-at-end": (END, False),
        "edge-1ms-after-end": (END + MS, False),
    }
    for request_id, (moment, _) in edges.items():
        _put(client, request_id, moment, event_type="GRANTED", event_id="ffffffff")
    # A sort key with an event id sorting before everything, at exactly `end`: still out.
    _put(client, "edge-at-end-low-id", END, event_type="GRANTED", event_id="!")
    return {**{request_id: inside for request_id, (_, inside) in edges.items()}, "edge-at-end-low-id": False}


# --------------------------------------------------------------------------- 1. exact result sets


def test_request_query_returns_exactly_the_events_of_one_request(aws: Any) -> None:
    client = _seed(aws)
    counts = Counter(item["request_id"]["S"] for item in _scan_all(client))
    request_id, events = counts.most_common(1)[0]
    assert events >= 3
    _put(client, request_id + "x", START, event_type="REQUESTED")  # a near neighbour must stay out

    result, data = _run(client, {"query_by": "request", "request_id": request_id})
    expected = _expect(client, lambda item: item["request_id"]["S"] == request_id)
    assert len(expected) == events
    _check(result, data, expected)

    # event_types filter and the optional range on a request query
    result, data = _run(client, {"query_by": "request", "request_id": request_id, "event_types": ["REQUESTED"]})
    _check(result, data, {key: row for key, row in expected.items() if row["event_type"] == "REQUESTED"})
    assert len(_keyed(data)) == 1
    first = min(_time_of({"event_time_event_id": {"S": key[1]}}) for key in expected)
    result, data = _run(client, {"query_by": "request", "request_id": request_id,
                                 "start": _iso(first), "end": _iso(first + MS)})
    _check(result, data, {key: row for key, row in expected.items() if key[1].startswith(_iso(first) + "#")})
    assert len(_keyed(data)) == 1


@pytest.mark.parametrize(("mode", "field", "value"), [("account", "account_id", ACCOUNT),
                                                      ("channel", "channel_id", CHANNEL)])
def test_index_queries_cover_exactly_start_inclusive_end_exclusive(aws: Any, mode: str, field: str,
                                                                  value: str) -> None:
    client = _seed(aws)
    edges = _insert_edges(client)
    params = {"query_by": mode, field: value, "start": _iso(START), "end": _iso(END)}
    result, data = _run(client, params)
    expected = _expect(client, lambda item: item[field]["S"] == value and _in_range(item, START, END))
    assert len(expected) > len([inside for inside in edges.values() if inside]) + 5  # seeded items too
    _check(result, data, expected)
    returned = {key[0] for key in _keyed(data)}
    for request_id, inside in edges.items():
        assert (request_id in returned) is inside, request_id

    # The same instants written with another offset, and as datetimes, give the same answer.
    offset = timedelta(hours=2, minutes=30)
    for start, end in [((START + offset).isoformat().replace("+00:00", "+02:30"),
                        (END + offset).isoformat().replace("+00:00", "+02:30")), (START, END)]:
        _, same = _run(client, {**params, "start": start, "end": end})
        assert _keyed(same) == expected

    # An event_types filter on the index query.
    wanted = ["REVOKED", "GRANTED"]
    result, data = _run(client, {**params, "event_types": wanted})
    _check(result, data, {key: row for key, row in expected.items() if row["event_type"] in wanted})
    assert "edge-at-start" in {key[0] for key in _keyed(data)}


def test_event_type_scan_with_and_without_a_range(aws: Any) -> None:
    client = _seed(aws)
    edges = _insert_edges(client)
    for event_types in (["ERROR"], ["DENIED", "ERROR"], ["GRANTED"], list(EVENT_TYPES)):
        result, data = _run(client, {"query_by": "event_type", "event_types": event_types})
        expected = _expect(client, lambda item, types=event_types: item["event_type"]["S"] in types)
        assert expected
        _check(result, data, expected)

        result, data = _run(client, {"query_by": "event_type", "event_types": event_types,
                                     "start": _iso(START), "end": _iso(END)})
        expected = _expect(client, lambda item, types=event_types: item["event_type"]["S"] in types
                           and _in_range(item, START, END))
        _check(result, data, expected)
        if "GRANTED" in event_types:
            returned = {key[0] for key in _keyed(data)}
            for request_id, inside in edges.items():
                assert (request_id in returned) is inside, request_id

    # A range is required only when asked for (the ad-hoc DAG's form).
    assert _error({"query_by": "event_type", "event_types": ["ERROR"]}, require_scan_range=True).field == "start"


# --------------------------------------------------------------------------- 2. pages


def test_small_pages_give_the_same_result_over_many_pages(aws: Any) -> None:
    client = _seed(aws)
    for params in (_account_params(), {"query_by": "channel", "channel_id": CHANNEL, "start": _iso(START),
                                       "end": _iso(END), "event_types": ["REQUESTED", "EXPIRED"]},
                   {"query_by": "event_type", "event_types": ["DENIED", "ERROR"], "segments": 2}):
        whole, whole_data = _run(client, params)
        paged, paged_data = _run(client, {**params, "page_size": 3})
        assert _keyed(whole_data)
        assert _keyed(paged_data) == _keyed(whole_data)
        assert paged.items == whole.items and paged.by_event_type == whole.by_event_type
        assert paged.pages > 1 and paged.pages > whole.pages
        assert not paged.truncated
    _, data = _run(client, _account_params())
    paged, _ = _run(client, _account_params(page_size=3))
    assert paged.pages >= -(-len(data.splitlines()) // 3)


# --------------------------------------------------------------------------- 3. max_items


def test_max_items_stops_exactly_at_the_cap(aws: Any) -> None:
    client = _seed(aws)
    expected = _expect(client, lambda item: item["account_id"]["S"] == ACCOUNT and _in_range(item, START, END))
    total = len(expected)
    assert total > 10
    for extra in ({}, {"page_size": 3}, {"page_size": 4}, {"event_types": list(EVENT_TYPES)}):
        for cap in (1, 5, total - 1):
            result, data = _run(client, _account_params(max_items=cap, **extra))
            got = _keyed(data)
            assert len(got) == cap == result.items, (extra, cap)
            assert result.truncated, (extra, cap)
            assert all(expected[key] == row for key, row in got.items())
            assert result.by_event_type == Counter(row["event_type"] for row in got.values())
    for cap in (total, total + 1):
        result, data = _run(client, _account_params(max_items=cap))
        _check(result, data, expected)

    # A parallel scan stops at the cap across all its segments.
    everything = _expect(client, lambda item: True)
    for segments in (1, 4, 16):
        result, data = _run(client, {"query_by": "event_type", "event_types": list(EVENT_TYPES),
                                     "segments": segments, "page_size": 5, "max_items": 7})
        got = _keyed(data)
        assert len(got) == 7 == result.items and result.truncated
        assert all(everything[key] == row for key, row in got.items())
    result, data = _run(client, {"query_by": "event_type", "event_types": list(EVENT_TYPES), "segments": 4,
                                 "max_items": len(everything)})
    _check(result, data, everything)


def test_max_items_equal_to_the_total_is_not_reported_as_truncated(aws: Any) -> None:
    """Exactly ``max_items`` matching items exist: the run must not claim there are more.

    Here the one ERROR event comes first and later pages (page_size=3) hold only REQUESTED events
    that the filter drops, so later pages exist but no further match does.
    """
    create_table(aws.client("dynamodb"), TABLE)
    client = aws.client("dynamodb")
    account = "999999999999"
    _put(client, "only-error", START, event_type="ERROR", account=account)
    for index in range(7):
        _put(client, f"later-{index}", START + (index + 1) * MS, event_type="REQUESTED", account=account)
    params = {"query_by": "account", "account_id": account, "start": _iso(START), "end": _iso(END),
              "event_types": ["ERROR"], "page_size": 3}
    complete, _ = _run(client, params)
    assert complete.items == 1 and not complete.truncated
    capped, data = _run(client, {**params, "max_items": 1})
    assert len(data.splitlines()) == capped.items == 1
    assert not capped.truncated, "max_items equal to the number of matching items reported truncated=True"


# --------------------------------------------------------------------------- 4. parallel scan


def test_parallel_scan_segments_give_identical_results(aws: Any) -> None:
    client = _seed(aws)
    params = {"query_by": "event_type", "event_types": ["GRANTED", "DENIED", "ERROR"]}
    expected = _expect(client, lambda item: item["event_type"]["S"] in params["event_types"])
    outputs = {}
    for segments in (1, 4, 16):
        for page_size in (None, 7):
            result, data = _run(client, {**params, "segments": segments, "page_size": page_size})
            _check(result, data, expected)
            if page_size is None:
                assert result.pages == segments  # one (1 MB) page per segment
            outputs[(segments, page_size)] = _sorted_lines(data)
    first = next(iter(outputs.values()))
    assert len(first) == len(expected)
    assert all(lines == first for lines in outputs.values())
    operation, worker_requests = requests(parse_query({**params, "segments": 16}), TABLE)
    assert operation == "scan"
    assert [(r["Segment"], r["TotalSegments"]) for r in worker_requests] == [(i, 16) for i in range(16)]


# --------------------------------------------------------------------------- 5. hostile values

HOSTILE_REQUEST_IDS = [
    "'; DROP TABLE x; --",
    "$(rm -rf /)",
    'a" OR "1"="1',
    "#partition = :key",
    ":key",
    "#partition",
    "`rm -rf /`",
    "${jndi:ldap://x/a}",
    "%s%s%n {0} \\ \\\\",
    "req-ünïcødé-☃-日本語-🔥",
    "café",  # composed é; the decomposed form below must not match
    " padded ",
    "x" * 2048,
]
SIMILAR = {"café": ["cafe\u0301", "CAFÉ"], " padded ": ["padded", " padded"], "x" * 2048: ["x" * 2047]}


def test_hostile_request_ids_are_matched_literally(aws: Any) -> None:
    client = _seed(aws, requests_count=10)
    for index, request_id in enumerate(HOSTILE_REQUEST_IDS):
        _put(client, request_id, START + index * MS, event_type="APPROVED", event_id=f"h{index}")
    _put(client, "'; DROP TABLE x; -- ", START, event_id="near")  # differs only by a trailing space
    before = len(_scan_all(client))
    for request_id in HOSTILE_REQUEST_IDS:
        result, data = _run(client, {"query_by": "request", "request_id": request_id})
        expected = _expect(client, lambda item, wanted=request_id: item["request_id"]["S"] == wanted)
        assert len(expected) == 1, request_id
        _check(result, data, expected)
        assert json.loads(data)["request_id"] == request_id
        for similar in SIMILAR.get(request_id, [request_id[:-1], request_id + "x", request_id.upper() + "Z"]):
            result, data = _run(client, {"query_by": "request", "request_id": similar})
            assert data == b"" and result.items == 0, (request_id, similar)
    assert len(_scan_all(client)) == before
    assert aws.client("dynamodb").list_tables()["TableNames"] == [TABLE]


_TOKEN = re.compile(r"\s*(#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|BETWEEN|AND|IN|=|\(|\)|,)")


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        assert match, f"unexpected text in {expression!r} at {position}"
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _check_placeholders_only(request: dict[str, Any], values_given: list[str]) -> None:
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    used: set[str] = set()
    for name in ("KeyConditionExpression", "FilterExpression"):
        if request.get(name):
            for token in _tokens(request[name]):
                if token[0] in "#:":
                    assert token in (names if token[0] == "#" else values), token
                    used.add(token)
    assert used == set(names) | set(values)  # DynamoDB rejects unused placeholders
    assert set(names.values()) <= {"request_id", "account_id", "channel_id", "event_time_event_id", "event_type"}
    stored = [value["S"] for value in values.values()]
    for given in values_given:
        assert given in stored


@pytest.mark.parametrize("request_id", [*HOSTILE_REQUEST_IDS, "plain-request"])
@pytest.mark.parametrize("extra", [{}, {"event_types": ["ERROR", "DENIED"]},
                                   {"start": "2026-01-10T00:00:00Z", "end": "2026-01-11T00:00:00.001+00:00"}])
def test_requests_carry_user_values_only_in_placeholders(request_id: str, extra: dict[str, Any]) -> None:
    query = parse_query({"query_by": "request", "request_id": request_id, "page_size": 25, **extra})
    operation, worker_requests = requests(query, TABLE)
    assert operation == "query" and len(worker_requests) == 1
    (request,) = worker_requests
    benign = requests(parse_query({"query_by": "request", "request_id": "benign", "page_size": 25, **extra}),
                      TABLE)[1][0]
    # The expressions are fixed text: the same whatever the user typed.
    assert request["KeyConditionExpression"] == benign["KeyConditionExpression"]
    assert request.get("FilterExpression") == benign.get("FilterExpression")
    assert request["ExpressionAttributeNames"] == benign["ExpressionAttributeNames"]
    assert request["ExpressionAttributeValues"][":key"] == {"S": request_id}
    assert request["Limit"] == 25 and request["TableName"] == TABLE and "IndexName" not in request
    _check_placeholders_only(request, [request_id, *extra.get("event_types", [])])
    if "start" in extra:
        assert request["ExpressionAttributeValues"][":from"] == {"S": "2026-01-10T00:00:00.000Z"}
        assert request["ExpressionAttributeValues"][":to"] == {"S": "2026-01-11T00:00:00.001Z"}


def test_index_and_scan_requests_use_placeholders_only() -> None:
    for params, index in ((_account_params(event_types=["GRANTED"]), "gsi_account_event"),
                          ({"query_by": "channel", "channel_id": "a-b_C9", "start": _iso(START),
                            "end": _iso(END)}, "gsi_channel_event")):
        operation, (request,) = requests(parse_query(params), TABLE)
        assert operation == "query" and request["IndexName"] == index
        key = params.get("account_id") or params["channel_id"]
        assert key not in request["KeyConditionExpression"]
        _check_placeholders_only(request, [key, _iso(START), _iso(END)])
    operation, worker_requests = requests(parse_query({"query_by": "event_type", "event_types": ["ERROR"],
                                                       "start": _iso(START), "end": _iso(END),
                                                       "segments": 3}), TABLE)
    assert operation == "scan" and len(worker_requests) == 3
    for request in worker_requests:
        assert "KeyConditionExpression" not in request
        _check_placeholders_only(request, ["ERROR", _iso(START), _iso(END)])


_R = {"query_by": "request", "request_id": "req-1"}
_RANGE = {"start": "2026-01-10T00:00:00Z", "end": "2026-01-11T00:00:00Z"}
_SCAN = {"query_by": "event_type", "event_types": ["ERROR"]}

BAD_PARAMS = [
    # control characters, blank, wrong type, too long
    ({**_R, "request_id": "req\x00id"}, "request_id"),
    ({**_R, "request_id": "req\nid"}, "request_id"),
    ({**_R, "request_id": "req\tid"}, "request_id"),
    ({**_R, "request_id": "req\x1b[31mid"}, "request_id"),
    ({**_R, "request_id": "req\x7f"}, "request_id"),
    ({**_R, "request_id": ""}, "request_id"),
    ({**_R, "request_id": "   "}, "request_id"),
    ({"query_by": "request"}, "request_id"),
    ({**_R, "request_id": 12345}, "request_id"),
    ({**_R, "request_id": "x" * 2049}, "request_id"),
    ({**_R, "request_id": "é" * 1025}, "request_id"),
    # account ids
    ({"query_by": "account", "account_id": "12345678901", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": "1234567890123", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": "12345678901a", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": "１２３４５６７８９０１２", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": " 123456789012", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": "123456789012\n", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": "12345678901;", **_RANGE}, "account_id"),
    ({"query_by": "account", **_RANGE}, "account_id"),
    ({"query_by": "account", "account_id": 123456789012, **_RANGE}, "account_id"),
    # channel ids
    ({"query_by": "channel", "channel_id": "abc;def", **_RANGE}, "channel_id"),
    ({"query_by": "channel", "channel_id": "has space", **_RANGE}, "channel_id"),
    ({"query_by": "channel", "channel_id": "$(rm -rf /)", **_RANGE}, "channel_id"),
    ({"query_by": "channel", "channel_id": "a/b", **_RANGE}, "channel_id"),
    ({"query_by": "channel", "channel_id": "ünï", **_RANGE}, "channel_id"),
    ({"query_by": "channel", "channel_id": "c" * 65, **_RANGE}, "channel_id"),
    ({"query_by": "channel", "channel_id": "", **_RANGE}, "channel_id"),
    # ranges
    ({"query_by": "account", "account_id": ACCOUNT, "start": "2026-01-11T00:00:00Z",
      "end": "2026-01-10T00:00:00Z"}, "end"),
    ({"query_by": "account", "account_id": ACCOUNT, "start": "2026-01-10T00:00:00Z",
      "end": "2026-01-10T00:00:00.000Z"}, "end"),
    ({"query_by": "channel", "channel_id": CHANNEL, "start": "2026-01-10T02:00:00+02:00",
      "end": "2026-01-10T00:00:00Z"}, "end"),
    ({**_SCAN, "start": "2026-01-11T00:00:00Z", "end": "2026-01-10T23:59:59.999Z"}, "end"),
    ({"query_by": "account", "account_id": ACCOUNT, "end": "2026-01-11T00:00:00Z"}, "start"),
    ({"query_by": "account", "account_id": ACCOUNT, "start": "2026-01-10T00:00:00Z"}, "end"),
    ({"query_by": "channel", "channel_id": CHANNEL, "end": "2026-01-11T00:00:00Z"}, "start"),
    ({"query_by": "channel", "channel_id": CHANNEL, "start": "2026-01-10T00:00:00Z", "end": ""}, "end"),
    ({**_R, "start": "2026-01-10T00:00:00Z"}, "end"),
    ({**_R, "end": "2026-01-10T00:00:00Z"}, "start"),
    ({**_SCAN, "start": "2026-01-10T00:00:00Z"}, "end"),
    ({**_R, "start": "yesterday", "end": "2026-01-10T00:00:00Z"}, "start"),
    ({**_R, "start": 1767225600, "end": "2026-01-10T00:00:00Z"}, "start"),
    # sub-millisecond times
    ({"query_by": "account", "account_id": ACCOUNT, "start": "2026-01-10T00:00:00.0005Z",
      "end": "2026-01-11T00:00:00Z"}, "start"),
    ({"query_by": "account", "account_id": ACCOUNT, "start": "2026-01-10T00:00:00Z",
      "end": "2026-01-11T00:00:00.000001Z"}, "end"),
    ({**_R, "start": datetime(2026, 1, 10, microsecond=1500, tzinfo=UTC), "end": END}, "start"),
    # event types and modes
    ({**_R, "event_types": ["BOGUS"]}, "event_types"),
    ({**_R, "event_types": ["GRANTED", "granted"]}, "event_types"),
    ({**_SCAN, "event_types": ["ERROR", "NOPE"]}, "event_types"),
    ({**_R, "event_types": {"GRANTED": True}}, "event_types"),
    ({"query_by": "event_type"}, "event_types"),
    ({"query_by": "event_type", "event_types": []}, "event_types"),
    ({"query_by": "bogus", "request_id": "req-1"}, "query_by"),
    ({"query_by": "Request", "request_id": "req-1"}, "query_by"),
    ({"request_id": "req-1"}, "query_by"),
    ({"query_by": "request; DROP", "request_id": "req-1"}, "query_by"),
    # max_items, segments, page_size
    ({**_R, "max_items": 0}, "max_items"),
    ({**_R, "max_items": -1}, "max_items"),
    ({**_R, "max_items": "-5"}, "max_items"),
    ({**_R, "max_items": "ten"}, "max_items"),
    ({**_R, "max_items": "1e3"}, "max_items"),
    ({**_R, "max_items": True}, "max_items"),
    ({**_R, "max_items": False}, "max_items"),
    ({**_R, "max_items": 2.5}, "max_items"),
    ({**_R, "max_items": 100_000_001}, "max_items"),
    ({**_SCAN, "segments": 0}, "segments"),
    ({**_SCAN, "segments": 65}, "segments"),
    ({**_SCAN, "segments": -4}, "segments"),
    ({**_SCAN, "segments": True}, "segments"),
    ({**_SCAN, "segments": "four"}, "segments"),
    ({**_R, "page_size": 0}, "page_size"),
    ({**_R, "page_size": 10_001}, "page_size"),
]


@pytest.mark.parametrize(("params", "field"), BAD_PARAMS, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD_PARAMS)])
def test_bad_parameters_are_rejected_naming_the_field(params: dict[str, Any], field: str) -> None:
    error = _error(params)
    assert error.field == field
    assert str(error).startswith(f"{field}: ") and error.problem
    if field == "event_types" and params.get("event_types") and isinstance(params["event_types"], list):
        for name in params["event_types"]:
            if name not in EVENT_TYPES:
                assert repr(name) in str(error)


def test_good_parameters_are_normalised() -> None:
    query = parse_query({"query_by": "event_type", "event_types": ["GRANTED", "ERROR", "GRANTED"],
                         "segments": "64", "max_items": " 5 ", "page_size": 10_000,
                         "start": "2026-01-10T01:00:00.123+01:00", "end": "2026-01-10T00:00:00.124Z"})
    assert query == AdhocQuery(query_by="event_type", key=None,
                               start=datetime(2026, 1, 10, 0, 0, 0, 123000, tzinfo=UTC),
                               end=datetime(2026, 1, 10, 0, 0, 0, 124000, tzinfo=UTC),
                               event_types=("GRANTED", "ERROR"), max_items=5, segments=64, page_size=10_000)
    assert parse_query({"query_by": "event_type", "event_types": "DENIED", "segments": 1}).segments == 1
    naive = parse_query({"query_by": "account", "account_id": ACCOUNT, "start": "2026-01-10T00:00:00",
                         "end": datetime(2026, 1, 11)})
    assert (naive.start, naive.end) == (START, datetime(2026, 1, 11, tzinfo=UTC))
    assert parse_query({**_R, "max_items": 100_000_000}).max_items == 100_000_000
    assert parse_query({**_R, "request_id": "é" * 1024}).key == "é" * 1024
    assert parse_query(_R).page_size is None and parse_query(_R).segments == 4


# --------------------------------------------------------------------------- 6. run_to_s3


def _s3_keys(s3: Any, prefix: str) -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def _check_published(s3: Any, prefix: str, summary: dict[str, Any], expected: dict[Key, dict[str, Any]],
                     parts: int) -> None:
    part_keys = [f"{prefix}part-{index:05d}.jsonl.gz" for index in range(parts)]
    assert _s3_keys(s3, prefix) == sorted([*part_keys, f"{prefix}_SUCCESS", f"{prefix}_manifest.json"])
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}_SUCCESS")["Body"].read() == b""
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}_manifest.json")["Body"].read())
    assert manifest["counts"]["items"] == len(expected)
    assert manifest["counts"]["by_event_type"] == dict(Counter(row["event_type"] for row in expected.values()))
    assert manifest["truncated_at_max_items"] is False and manifest["kind"] == "adhoc"
    assert manifest["table"] == TABLE
    assert [part["key"] for part in manifest["parts"]] == part_keys
    data = b""
    for part in manifest["parts"]:
        body = s3.get_object(Bucket=BUCKET, Key=part["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == part["sha256"]
        assert len(body) == part["size_bytes"]
        data += gzip.decompress(body)
    assert _keyed(data) == expected
    assert summary["uri"] == f"s3://{BUCKET}/{prefix}"
    assert {key: value for key, value in summary.items() if key != "uri"} == manifest


def test_run_to_s3_publishes_parts_manifest_and_success_and_removes_stale_parts(aws: Any) -> None:
    client = _seed(aws)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="adhoc/run-10/part-00009.jsonl.gz", Body=b"neighbour")  # must survive
    types = ["GRANTED", "EXPIRED", "ERROR"]
    expected = _expect(client, lambda item: item["event_type"]["S"] in types and _in_range(item, START, END))
    params = {"query_by": "event_type", "event_types": types, "start": _iso(START), "end": _iso(END)}

    summary = run_to_s3(client, s3, TABLE, parse_query({**params, "segments": 4, "page_size": 10}), BUCKET,
                        "/adhoc/run-1")
    _check_published(s3, "adhoc/run-1/", summary, expected, parts=4)
    assert summary["query"] == {"query_by": "event_type", "key": None, "start": _iso(START), "end": _iso(END),
                                "event_types": types, "max_items": 1_000_000, "segments": 4, "page_size": 10}
    assert summary["counts"]["pages"] > 4

    summary = run_to_s3(client, s3, TABLE, parse_query({**params, "segments": 2}), BUCKET, "adhoc/run-1/")
    _check_published(s3, "adhoc/run-1/", summary, expected, parts=2)
    assert _s3_keys(s3, "adhoc/run-10/") == ["adhoc/run-10/part-00009.jsonl.gz"]

    # A query (one worker) publishes one part.
    query = parse_query(_account_params())
    summary = run_to_s3(client, s3, TABLE, query, BUCKET, "adhoc/run-1/")
    _check_published(s3, "adhoc/run-1/", summary,
                     _expect(client, lambda item: item["account_id"]["S"] == ACCOUNT and _in_range(item, START, END)),
                     parts=1)
    assert summary["query"]["segments"] is None and summary["query"]["key"] == ACCOUNT


def test_run_to_s3_never_deletes_unrelated_objects_under_its_prefix(aws: Any) -> None:
    """Stale-part cleanup touches only ``part-NNNNN.jsonl.gz`` directly under the prefix.

    Pointing ``output_uri`` / ``--out`` at a parent of snapshots or other ad-hoc results must leave
    every one of them in place.
    """
    client = _seed(aws, requests_count=5)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    snapshot = ["exports/jit_audit/2026/01/14/part-00000.jsonl.gz", "exports/jit_audit/2026/01/14/_manifest.json",
                "exports/jit_audit/2026/01/14/_SUCCESS", "exports/adhoc/other-run/part-00000.jsonl.gz"]
    for key in snapshot:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"keep me")
    run_to_s3(client, s3, TABLE, parse_query({"query_by": "event_type", "event_types": ["ERROR"], "segments": 1}),
              BUCKET, "exports/")
    assert "exports/part-00000.jsonl.gz" in _s3_keys(s3, "exports/")
    assert [key for key in snapshot if key not in _s3_keys(s3, "exports/")] == []


# --------------------------------------------------------------------------- 7. the CLI


def _cli(args: list[str], endpoint_url: str, *, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jit_audit.cli", *args, "--endpoint-url", endpoint_url, "--region", "us-east-1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "AWS_MAX_ATTEMPTS": "1"}, cwd=cwd,
    )


def _finish(process: subprocess.Popen[bytes]) -> tuple[int, bytes, str]:
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr.decode()


def test_cli_query_and_scan_match_the_library(aws: Any, tmp_path: Path) -> None:
    client = _seed(aws)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    url = aws.endpoint_url
    account_args = ["query", "--by", "account", "--id", ACCOUNT, "--start", _iso(START), "--end", _iso(END)]
    scan_args = ["scan", "--event-type", "ERROR", "--event-type", "DENIED", "--segments", "4"]
    gz = tmp_path / "out.jsonl.gz"
    request_id = json.loads(_run(client, _account_params(max_items=1))[1])["request_id"]
    processes = {
        "account": _cli(account_args, url),
        "channel": _cli(["query", "--by", "channel", "--id", CHANNEL, "--start", _iso(START), "--end", _iso(END),
                         "--event-type", "GRANTED"], url),
        "request": _cli(["query", "--by", "request", "--id", request_id], url),
        "scan": _cli(scan_args, url),
        "gzip": _cli([*account_args, "--out", str(gz)], url),
        "s3": _cli([*scan_args, "--start", _iso(START), "--end", _iso(END), "--out", f"s3://{BUCKET}/cli/scan/"],
                   url),
        "capped": _cli([*account_args, "--max-items", "3"], url),
    }
    done = {name: _finish(process) for name, process in processes.items()}
    for name, (code, _, stderr) in done.items():
        assert code == 0, (name, stderr)

    library = {
        "account": _account_params(),
        "channel": {"query_by": "channel", "channel_id": CHANNEL, "start": _iso(START), "end": _iso(END),
                    "event_types": ["GRANTED"]},
        "request": {"query_by": "request", "request_id": request_id},
        "scan": {"query_by": "event_type", "event_types": ["ERROR", "DENIED"], "segments": 4},
    }
    for name, params in library.items():
        result, data = _run(client, params)
        assert data and _sorted_lines(done[name][1]) == _sorted_lines(data), name
        assert f"wrote {result.items} items" in done[name][2]
    account_lines = _sorted_lines(_run(client, _account_params())[1])

    assert done["gzip"][1] == b""
    raw = gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert _sorted_lines(gzip.decompress(raw)) == account_lines

    expected = _expect(client, lambda item: item["event_type"]["S"] in ("ERROR", "DENIED")
                       and _in_range(item, START, END))
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key="cli/scan/_manifest.json")["Body"].read())
    assert manifest["counts"]["items"] == len(expected) and len(manifest["parts"]) == 4
    assert "_SUCCESS" in {key.rsplit("/", 1)[1] for key in _s3_keys(s3, "cli/scan/")}
    data = b"".join(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=part["key"])["Body"].read())
                    for part in manifest["parts"])
    assert _keyed(data) == expected
    assert f"s3://{BUCKET}/cli/scan/" in done["s3"][2]

    code, stdout, stderr = done["capped"]
    assert len(stdout.splitlines()) == 3 and set(stdout.splitlines()) <= set(account_lines)
    assert "stopped at --max-items 3" in stderr


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here once the socket is closed


CLI_BAD = [
    (["query", "--by", "account", "--id", "12345678901", "--start", "2026-01-10", "--end", "2026-01-11"],
     "account_id"),
    (["query", "--by", "account", "--id", "1234567890123", "--start", "2026-01-10", "--end", "2026-01-11"],
     "account_id"),
    (["query", "--by", "channel", "--id", "abc;def", "--start", "2026-01-10", "--end", "2026-01-11"],
     "channel_id"),
    (["query", "--by", "channel", "--id", "$(rm -rf /)", "--start", "2026-01-10", "--end", "2026-01-11"],
     "channel_id"),
    (["query", "--by", "request", "--id", "req\x01x"], "request_id"),
    (["query", "--by", "account", "--id", ACCOUNT, "--start", "2026-01-11", "--end", "2026-01-10"], "end"),
    (["query", "--by", "account", "--id", ACCOUNT, "--end", "2026-01-10"], "start"),
    (["query", "--by", "channel", "--id", CHANNEL, "--start", "2026-01-10"], "end"),
    (["query", "--by", "request", "--id", "r", "--start", "2026-01-10T00:00:00.0001Z", "--end", "2026-01-11"],
     "start"),
    (["query", "--by", "request", "--id", "r", "--event-type", "BOGUS"], "event_types"),
    (["query", "--by", "request", "--id", "r", "--max-items", "0"], "max_items"),
    (["query", "--by", "request", "--id", "r", "--max-items", "-3"], "max_items"),
    (["query", "--by", "request", "--id", "r", "--max-items", "many"], "max-items"),
    (["scan", "--event-type", "ERROR", "--segments", "0"], "segments"),
    (["scan", "--event-type", "ERROR", "--segments", "65"], "segments"),
    (["scan"], "event_types"),
    (["query", "--by", "bogus", "--id", "x"], "--by"),
]


def test_cli_rejects_bad_parameters_with_exit_2_before_any_aws_call(tmp_path: Path) -> None:
    url = _closed_port_url()
    processes = [(_cli([*args, "--out", f"s3://{BUCKET}/never/"], url, cwd=tmp_path), field)
                 for args, field in CLI_BAD]
    for process, field in processes:
        code, stdout, stderr = _finish(process)
        assert code == 2, (field, stderr)
        assert field in stderr, (field, stderr)
        assert stdout == b""
        assert "Traceback" not in stderr and "Could not connect" not in stderr
    assert list(tmp_path.iterdir()) == []
    # ... while a valid query against the closed port does try AWS, and fails differently.
    code, _, stderr = _finish(_cli(["query", "--by", "request", "--id", "r"], url))
    assert code not in (0, 2) and "Could not connect" in stderr


def test_run_to_s3_refuses_a_prefix_that_holds_a_snapshot_and_writes_at_the_bucket_root(aws: Any) -> None:
    from jit_audit.query import QueryParamError, parse_query, run_to_s3

    client = _seed(aws, requests_count=5)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="exports/jsonl/table=jit_audit/snapshot_date=2026-11-25/_manifest.json",
                  Body=b'{"kind": "snapshot"}')
    query = parse_query({"query_by": "event_type", "event_types": ["REQUESTED"]})
    with pytest.raises(QueryParamError) as caught:
        run_to_s3(client, s3, TABLE, query, BUCKET, "exports/jsonl/table=jit_audit/snapshot_date=2026-11-25/")
    assert caught.value.field == "output_uri"
    summary = run_to_s3(client, s3, TABLE, query, BUCKET, "")
    assert summary["uri"] == f"s3://{BUCKET}/"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"_SUCCESS", "_manifest.json", "part-00000.jsonl.gz"} <= keys
