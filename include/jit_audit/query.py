"""Ad-hoc audit queries: the runbook's Methods 2 and 4, validated and safe.

* by request: Query on the table by ``request_id``;
* by account or channel: Query on ``gsi_account_event`` / ``gsi_channel_event`` with
  ``event_time_event_id BETWEEN`` covering exactly [start, end) (not the runbook's month prefix);
* by event type: the runbook's Method 4, a Scan with a filter, run as a parallel scan.

Every value a user gives travels in ``ExpressionAttributeValues`` (and attribute names in
``ExpressionAttributeNames``); the expressions themselves are fixed text. ``parse_query`` checks
every parameter before any AWS call and names the field that is wrong.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from jit_audit.flatten import flatten_item
from jit_audit.params import (
    ACCOUNT_ID,
    ACCOUNT_ID_PATTERN,
    CHANNEL_ID,
    CHANNEL_ID_PATTERN,
    DEFAULT_MAX_ITEMS,
    DEFAULT_SEGMENTS,
    EVENT_TYPES,
    MAX_ITEMS,
    MAX_KEY_BYTES,
    MAX_PAGE_SIZE,
    MAX_SEGMENTS,
    QUERY_MODES,
    QueryParamError,
)
from jit_audit.pseudonymise import Pseudonymiser

__all__ = ["EVENT_TYPES", "QUERY_MODES", "AdhocQuery", "QueryParamError", "parse_query", "run", "run_to_s3"]

#: GSI and partition key of each index-backed mode.
INDEXES = {"account": ("gsi_account_event", "account_id"), "channel": ("gsi_channel_event", "channel_id")}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AdhocQuery:
    query_by: str
    key: str | None
    start: datetime | None
    end: datetime | None
    event_types: tuple[str, ...]
    max_items: int = DEFAULT_MAX_ITEMS
    segments: int = DEFAULT_SEGMENTS
    #: DynamoDB's Limit per request (None: DynamoDB's 1 MB pages); smaller pages spread the read load.
    page_size: int | None = None

    def describe(self) -> dict[str, Any]:
        """The parameters as recorded in ``_manifest.json``."""
        return {
            "query_by": self.query_by,
            "key": self.key,
            "start": None if self.start is None else iso_millis(self.start),
            "end": None if self.end is None else iso_millis(self.end),
            "event_types": list(self.event_types),
            "max_items": self.max_items,
            "segments": self.segments if self.query_by == "event_type" else None,
            "page_size": self.page_size,
        }


def iso_millis(moment: datetime) -> str:
    """The form the table's sort keys use: ``2026-01-15T10:00:00.000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _moment(field_name: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise QueryParamError(field_name, f"{value!r} is not an ISO-8601 date-time") from None
    else:
        raise QueryParamError(field_name, f"expected an ISO-8601 date-time, got {type(value).__name__}")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.microsecond % 1000:
        raise QueryParamError(field_name, "times are compared to the millisecond; drop the sub-millisecond digits")
    return moment


def _text(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise QueryParamError(field_name, "is required for this query")
    if _CONTROL.search(value):
        raise QueryParamError(field_name, "must not contain control characters")
    if len(value.encode()) > MAX_KEY_BYTES:
        raise QueryParamError(field_name, f"is longer than DynamoDB's {MAX_KEY_BYTES}-byte key limit")
    return value


def _int(field_name: str, value: Any, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QueryParamError(field_name, f"must be a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise QueryParamError(field_name, f"must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise QueryParamError(field_name, f"must be between {low:,} and {high:,}, got {number:,}")
    return number


def parse_query(params: Mapping[str, Any], *, require_scan_range: bool = False) -> AdhocQuery:
    """Validate raw parameters (from the UI form, the REST API or the CLI) into a query.

    ``start``/``end`` are required for account and channel queries; for a request they are an
    optional filter; for an event-type scan they are optional (the runbook's Method 4 scans all
    time) unless ``require_scan_range`` (the ad-hoc DAG's form asks for a range).
    """
    query_by = params.get("query_by")
    if query_by not in QUERY_MODES:
        raise QueryParamError("query_by", f"must be one of {', '.join(QUERY_MODES)}, got {query_by!r}")
    key: str | None = None
    if query_by == "request":
        key = _text("request_id", params.get("request_id"))
    elif query_by == "account":
        key = _text("account_id", params.get("account_id"))
        if not ACCOUNT_ID.match(key):
            raise QueryParamError("account_id", f"must match {ACCOUNT_ID_PATTERN} (exactly 12 digits), got {key!r}")
    elif query_by == "channel":
        key = _text("channel_id", params.get("channel_id"))
        if not CHANNEL_ID.match(key):
            raise QueryParamError("channel_id", f"must be 1-64 letters, digits, '_' or '-' ({CHANNEL_ID_PATTERN}), "
                                                f"got {key!r}")
    start = _moment("start", params.get("start"))
    end = _moment("end", params.get("end"))
    range_required = query_by in ("account", "channel") or (query_by == "event_type" and require_scan_range)
    if range_required or start is not None or end is not None:
        if start is None:
            raise QueryParamError("start", f"is required when querying by {query_by}" if range_required
                                  else "is required when end is given")
        if end is None:
            raise QueryParamError("end", f"is required when querying by {query_by}" if range_required
                                  else "is required when start is given")
        if not start < end:
            raise QueryParamError("end", f"must be after start ({iso_millis(start)}), got {iso_millis(end)}")
    raw_types = params.get("event_types") or []
    if isinstance(raw_types, str):
        raw_types = [raw_types]
    if not isinstance(raw_types, list | tuple):
        raise QueryParamError("event_types", "must be a list of event types")
    unknown = [value for value in raw_types if value not in EVENT_TYPES]
    if unknown:
        raise QueryParamError("event_types", f"unknown {unknown!r}; allowed: {', '.join(EVENT_TYPES)}")
    event_types = tuple(sorted(set(raw_types), key=EVENT_TYPES.index))
    if query_by == "event_type" and not event_types:
        raise QueryParamError("event_types", "name at least one event type to scan for")
    return AdhocQuery(
        query_by=query_by,
        key=key,
        start=start,
        end=end,
        event_types=event_types,
        max_items=_int("max_items", params.get("max_items"), DEFAULT_MAX_ITEMS, 1, MAX_ITEMS),
        segments=_int("segments", params.get("segments"), DEFAULT_SEGMENTS, 1, MAX_SEGMENTS),
        page_size=_int("page_size", params.get("page_size"), 0, 1, MAX_PAGE_SIZE) or None,
    )


def _filters(query: AdhocQuery, names: dict[str, str], values: dict[str, Any], with_range: bool) -> str | None:
    clauses = []
    if query.event_types:
        names["#event_type"] = "event_type"
        placeholders = []
        for index, event_type in enumerate(query.event_types):
            values[f":event_type{index}"] = {"S": event_type}
            placeholders.append(f":event_type{index}")
        clauses.append(f"#event_type IN ({', '.join(placeholders)})")
    if with_range and query.start is not None and query.end is not None:
        names["#sort_key"] = "event_time_event_id"
        values[":from"] = {"S": iso_millis(query.start)}
        values[":to"] = {"S": iso_millis(query.end)}
        clauses.append("#sort_key BETWEEN :from AND :to")
    return " AND ".join(clauses) or None


def requests(query: AdhocQuery, table: str) -> tuple[str, list[dict[str, Any]]]:
    """The DynamoDB operation and one request per parallel worker (one unless a parallel scan).

    [start, end) becomes ``BETWEEN start AND end`` on ``<ISO time>#<event id>`` sort keys: a key at
    exactly ``end`` is ``end#...``, which sorts after ``end`` and so stays out.
    """
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    request: dict[str, Any] = {"TableName": table}
    if query.page_size:
        request["Limit"] = query.page_size
    if query.query_by == "event_type":
        filter_expression = _filters(query, names, values, with_range=True)
        request.update(FilterExpression=filter_expression, ExpressionAttributeNames=names,
                       ExpressionAttributeValues=values)
        return "scan", [{**request, "Segment": segment, "TotalSegments": query.segments}
                        for segment in range(query.segments)]
    if query.query_by == "request":
        names["#partition"] = "request_id"
    else:
        index, partition = INDEXES[query.query_by]
        request["IndexName"] = index
        names["#partition"] = partition
    values[":key"] = {"S": query.key}
    condition = "#partition = :key"
    if query.start is not None and query.end is not None:
        names["#sort_key"] = "event_time_event_id"
        values[":from"] = {"S": iso_millis(query.start)}
        values[":to"] = {"S": iso_millis(query.end)}
        condition += " AND #sort_key BETWEEN :from AND :to"
    request["KeyConditionExpression"] = condition
    filter_expression = _filters(query, names, values, with_range=False)
    if filter_expression:
        request["FilterExpression"] = filter_expression
    request.update(ExpressionAttributeNames=names, ExpressionAttributeValues=values)
    return "query", [request]


def _export_json(value: Any) -> Any:
    """A client's attribute value as an export line has it (binary as base64 text)."""
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": base64.b64encode(inner).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(member).decode() for member in inner]}
    if tag == "M":
        return {"M": {name: _export_json(member) for name, member in inner.items()}}
    if tag == "L":
        return {"L": [_export_json(member) for member in inner]}
    return value


def flatten_client_item(item: dict[str, Any]) -> bytes:
    """Flatten an item from a low-level client exactly as the export flattener does, to one line."""
    plain = flatten_item({name: _export_json(value) for name, value in item.items()})
    return orjson.dumps(plain, option=orjson.OPT_APPEND_NEWLINE)


@dataclass
class QueryResult:
    items: int = 0
    by_event_type: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    truncated: bool = False


def run(
    client: Any,
    table: str,
    query: AdhocQuery,
    open_part: Callable[[int], Callable[[bytes], Any]],
    *,
    pseudonymiser: Pseudonymiser | None = None,
) -> QueryResult:
    """Run the query, following every page, and write flattened lines to one part per worker.

    ``open_part(index)`` returns the writer of part ``index``. Stops at ``max_items``; once the cap
    is full the workers read on only until one more matching item shows (then the result is
    ``truncated``) or the pages run out (then it is complete, and says so). ``client`` is a
    low-level boto3 DynamoDB client.
    With a ``pseudonymiser``, ``actor_email`` addresses are replaced before anything is written.
    """
    operation, worker_requests = requests(query, table)
    call = getattr(client, operation)
    result = QueryResult()
    lock = threading.Lock()
    stop = threading.Event()

    def pages(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kwargs = dict(request)
        while not stop.is_set():
            page = call(**kwargs)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def worker(index: int, request: dict[str, Any]) -> None:
        write = open_part(index)
        for page in pages(request):
            lines = []
            counts: Counter[str] = Counter()
            for item in page.get("Items", []):
                lines.append(flatten_client_item(item))
                counts[item.get("event_type", {}).get("S", "(none)")] += 1
            with lock:
                result.pages += 1
                room = query.max_items - result.items
                if len(lines) > room:  # one item more than the cap holds: there are more
                    result.truncated = True
                    stop.set()
                    lines = lines[:room]
                    counts = Counter(orjson.loads(line).get("event_type", "(none)") for line in lines)
                result.items += len(lines)
                result.by_event_type.update(counts)
            if lines:
                write(b"".join(lines if pseudonymiser is None else map(pseudonymiser.line, lines)))

    if len(worker_requests) == 1:
        worker(0, worker_requests[0])
    else:
        with ThreadPoolExecutor(max_workers=len(worker_requests), thread_name_prefix="scan-segment") as pool:
            for future in [pool.submit(worker, index, request) for index, request in enumerate(worker_requests)]:
                future.result()
    return result


def run_to_s3(
    dynamodb: Any,
    s3: Any,
    table: str,
    query: AdhocQuery,
    bucket: str,
    prefix: str,
    *,
    upload_extra_args: dict[str, str] | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    record: Callable[[bytes, dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Run the query and publish it under ``s3://bucket/prefix`` (``jit_audit.results``): one part per
    worker, ``_manifest.json`` (parameters, counts per event type, each part's SHA-256), ``_SUCCESS``.
    ``record`` is the ledger append (``publish_results``).
    """
    from jit_audit.results import publish_results

    def produce(open_part: Callable[[int], Callable[[bytes], Any]]) -> dict[str, Any]:
        result = run(dynamodb, table, query, open_part, pseudonymiser=pseudonymiser)
        return {
            "table": table,
            "query": query.describe(),
            "counts": {"items": result.items, "by_event_type": dict(sorted(result.by_event_type.items())),
                       "pages": result.pages},
            "truncated_at_max_items": result.truncated,
            "pseudonymisation": None if pseudonymiser is None else pseudonymiser.describe(),
        }

    return publish_results(s3, bucket, prefix, "adhoc", produce, upload_extra_args=upload_extra_args,
                           record=record)
