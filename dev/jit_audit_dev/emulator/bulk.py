"""Bulk loads: millions of seeder-like items into a table's write history in seconds (emulator only).

``POST /jit-audit-emulator/bulk-load`` with a JSON body::

    {"table": "jit_audit", "items": 2000000, "seed": 1, "days": 30, "end": "2026-11-25T00:00:00Z",
     "write_time": "event_time", "region": "us-east-1"}

writes ``items`` new items into ``table`` (the seeder's key schema: ``request_id`` and
``event_time_event_id``), each recorded in the write history as the put of an item the table never
had: at its event time (``write_time`` ``event_time``, the default, as the seeder backdates its
writes) or at the emulator's now (``now``). Full and incremental exports hold them exactly as they
would hold the same items PutItem'd at those times. The first write that addresses one (PutItem,
UpdateItem, DeleteItem, in a batch or a transaction) moves it into moto's table first, so it sees the
item; reads (GetItem, Query, Scan, DescribeTable's ItemCount) never see bulk-loaded items.

Why: moto stores an item as a tree of objects and the history keeps its image as dicts; through
PutItem, 2,000,000 items would take about a quarter of an hour and more than 10 GB here. A bulk-loaded
item is kept as the line a full export writes for it (:class:`~.history._LoadedWrite`).

The items: :func:`jit_audit_dev.seed.generate` makes the events of ``_TEMPLATE_REQUESTS`` requests
(``seed``, ``end``, ``days``: each event before ``end``, within ``days`` of it), and the load repeats
them in rounds, each round with fresh request and event ids and each of its requests moved to
another (seeded random) time in those days, its events keeping their order and spacing. Ids and
times keep their lengths, so an item's size is its template's. :func:`generated_items` yields the
same items as DynamoDB JSON, for whoever wants to write them another way.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

from jit_audit_dev.emulator.faults import _json_response, _StartResponse
from jit_audit_dev.emulator.history import (
    _history,
    _item_size,
    _key_of,
    _leading_time_micros,
    _LoadedWrite,
    _note_backdated,
)
from jit_audit_dev.emulator.state import _EPOCH, _iso_micros, _now_micros

#: The emulator-only bulk-load endpoint (POST).
BULK_LOAD_PATH = "/jit-audit-emulator/bulk-load"
#: The requests whose events make one round of a bulk load (about 3,100 items).
_TEMPLATE_REQUESTS = 1000
_WRITE_TIMES = ("event_time", "now")
_MAX_ITEMS = 20_000_000
# Fresh ids keep the originals' lengths: "req-" + 6 hex digits of the round + the last 14 of the
# original's 20; an event id: 6 hex digits of the round + the last 26 of the original's 32.
_ROUND_DIGITS = 6
_MICROS_PER_MILLI = 1000


@dataclass(frozen=True)
class _Template:
    """One seeded event, ready to be repeated with fresh ids and another time."""

    line: str  # the export's line, as for the item PutItem'd (moto's image, the export's JSON)
    key: str  # _key_of(its keys)
    request_id: str
    sort_key: str  # "<event time>#<event id>"
    micros: int  # its event time
    size: int
    request: int  # its request's position among the template requests
    # How far the request's events may move, in milliseconds, and stay inside [end - days, end).
    earliest_shift: int
    latest_shift: int


def _items(seed: int, end: datetime, days: float) -> list[dict[str, Any]]:
    """The template events as moto stores them when they are PutItem'd through its HTTP API."""
    from boto3.dynamodb.types import TypeSerializer
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from jit_audit_dev.seed import SORT_KEY, generate

    serializer = TypeSerializer()
    images = []
    for event in generate(_TEMPLATE_REQUESTS, seed=seed, end=end, days=days):
        # What boto3 sends (JSON) and what moto keeps of it (Item.to_json, the history's image).
        attributes = json.loads(json.dumps({name: serializer.serialize(value) for name, value in event.items()}))
        item = Item(DynamoType(attributes["request_id"]), DynamoType(attributes[SORT_KEY]), attributes)
        images.append(item.to_json()["Attributes"])
    return images


def _templates(seed: int, end: datetime, days: float) -> list[_Template]:
    from moto.dynamodb.models.utilities import DynamoJsonEncoder

    from jit_audit_dev.seed import SORT_KEY

    images = _items(seed, end, days)
    spans: dict[str, list[int]] = {}  # request id -> its events' times (µs)
    for image in images:
        spans.setdefault(image["request_id"]["S"], []).append(_event_micros(image[SORT_KEY]["S"], seed))
    window = (_micros_of(end) - round(days * 86_400_000_000), _micros_of(end))
    positions = {request_id: position for position, request_id in enumerate(spans)}
    templates = []
    event_suffixes: set[str] = set()
    request_suffixes = {request_id[-14:] for request_id in spans}
    if len(request_suffixes) != len(spans):
        raise ValueError(f"seed {seed} gives two template requests with the same id suffix; use another seed")
    for image in images:
        request_id = image["request_id"]["S"]
        sort_key = image[SORT_KEY]["S"]
        event_id = sort_key.rpartition("#")[2]
        line = json.dumps({"Item": image}, cls=DynamoJsonEncoder, separators=(",", ":")) + "\n"
        key = _key_of({"request_id": image["request_id"], SORT_KEY: image[SORT_KEY]})
        # Each round replaces the request id and the sort key by string replacement: each must occur
        # once, and the fresh ids must be unique across the templates.
        if event_id[-26:] in event_suffixes or len(request_id) != 24 or len(event_id) != 32:
            raise ValueError(f"seed {seed}: {request_id} {sort_key} is not a seeded event with a unique id")
        event_suffixes.add(event_id[-26:])
        for text in (line, key):
            if text.count(request_id) != 1 or text.count(sort_key) != 1:
                raise ValueError(f"seed {seed}: an id of {sort_key} occurs more than once in its item")
        times = spans[request_id]
        templates.append(_Template(
            line, key, request_id, sort_key, _event_micros(sort_key, seed), _item_size(image), positions[request_id],
            -((min(times) - window[0]) // _MICROS_PER_MILLI), (window[1] - 1 - max(times)) // _MICROS_PER_MILLI,
        ))
    return templates



def _event_micros(sort_key: str, seed: int) -> int:
    micros = _leading_time_micros({"S": sort_key})
    if micros is None or micros % _MICROS_PER_MILLI:
        raise ValueError(f"seed {seed}: {sort_key} does not begin with a time in milliseconds")
    return micros


def _micros_of(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _round_shifts(templates: list[_Template], seed: int, round_number: int) -> list[int]:
    """Round ``round_number``'s shift of each template request (µs), the same for all its events, so a
    round's requests land elsewhere in the days (and exports in time order interleave the rounds)."""
    rng = random.Random(f"{seed}/{round_number}")
    shifts: dict[int, int] = {}
    for template in templates:
        if template.request not in shifts:
            shifts[template.request] = rng.randint(template.earliest_shift, template.latest_shift) * _MICROS_PER_MILLI
    return [shifts[template.request] for template in templates]


def _fresh(template: _Template, round_number: int, shift: int) -> tuple[str, str, int]:
    """(line, key, event time) of ``template`` in round ``round_number``: fresh ids, moved by ``shift`` µs."""
    prefix = f"{round_number:0{_ROUND_DIGITS}x}"
    micros = template.micros + shift
    request_id = f"req-{prefix}{template.request_id[-14:]}"
    sort_key = f"{_iso_millis(micros)}#{prefix}{template.sort_key[-26:]}"
    line = template.line.replace(template.request_id, request_id).replace(template.sort_key, sort_key)
    key = template.key.replace(template.request_id, request_id).replace(template.sort_key, sort_key)
    return line, key, micros


def _iso_millis(micros: int) -> str:
    """The seeder's time format: ``2026-11-25T10:00:00.123Z``."""
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def _rounds(templates: list[_Template], count: int, seed: int) -> Iterator[tuple[_Template, str, str, int]]:
    if count > len(templates) * 16**_ROUND_DIGITS:
        raise ValueError(f"at most {len(templates) * 16**_ROUND_DIGITS} items per bulk load")
    shifts: list[int] = []
    for index in range(count):
        round_number, position = divmod(index, len(templates))
        if position == 0:
            shifts = _round_shifts(templates, seed, round_number)
        template = templates[position]
        yield template, *_fresh(template, round_number, shifts[position])


def generated_items(count: int, *, seed: int, end: datetime, days: float) -> Iterator[dict[str, Any]]:
    """The items a bulk load of ``count`` with these settings writes, in its order, in DynamoDB JSON
    (what PutItem takes)."""
    for _, line, _, _ in _rounds(_templates(seed, end, days), count, seed):
        yield json.loads(line)["Item"]


def bulk_load(
    backend: DynamoDBBackend, table_name: str, count: int, *, seed: int, end: datetime, days: float,
    write_time: str = "event_time",
) -> dict[str, Any]:
    """Record ``count`` generated items as new items of ``table_name``; returns what was written.

    Refused (ValueError, nothing written) unless the table has the seeder's keys, every item is new
    to it, and (``event_time``) every event time is no later than the emulator's now.
    """
    from jit_audit_dev.seed import SORT_KEY

    if write_time not in _WRITE_TIMES:
        raise ValueError(f"write_time must be one of {', '.join(_WRITE_TIMES)}, not {write_time!r}")
    table = backend.get_table(table_name)
    if (table.hash_key_attr, table.range_key_attr) != ("request_id", SORT_KEY):
        raise ValueError(f"table {table_name} must have the seeder's keys, request_id and {SORT_KEY}")
    templates = _templates(seed, end, days)
    now = _now_micros()
    key_names = tuple(table.table_key_attrs)
    history = _history(table)
    existing = _written_keys(table)
    writes: list[_LoadedWrite] = []
    loaded: dict[str, _LoadedWrite] = {}
    first = last = None
    for template, line, key, event_micros in _rounds(templates, count, seed):
        if key in existing or key in loaded:
            raise ValueError(f"item {key} is already in table {table_name} (another bulk load with seed {seed}?)")
        write = _LoadedWrite(event_micros if write_time == "event_time" else now, key, line, template.size, key_names)
        writes.append(write)
        loaded[key] = write
        first = write.micros if first is None else min(first, write.micros)
        last = write.micros if last is None else max(last, write.micros)
    if last is not None and last > now:
        raise ValueError(f"events end after the emulator's now {_iso_micros(now)}: pass an earlier end")
    with history.lock:
        history.writes.extend(writes)
        history.loaded.update(loaded)
    if write_time == "event_time" and first is not None:
        _note_backdated(table, first)
    return {
        "table": table_name,
        "items": len(writes),
        "bytes": sum(len(write.line) for write in writes),
        "write_time": write_time,
        "first_write": _iso_micros(first) if first is not None else None,
        "last_write": _iso_micros(last) if last is not None else None,
    }


def _written_keys(table: Table) -> set[str]:
    """The keys of every item the table holds or its history has seen written."""
    from jit_audit_dev.emulator.exports import _all_items
    from jit_audit_dev.emulator.history import _HISTORY_ATTR, _History

    keys: set[str] = set()
    history = table.__dict__.get(_HISTORY_ATTR)
    if isinstance(history, _History):
        with history.lock:
            writes = list(history.writes)
        keys.update(write.key if isinstance(write, _LoadedWrite) else _key_of(write.keys) for write in writes)
    for item in _all_items(table):
        image = item.to_json()["Attributes"]
        keys.add(_key_of({name: image[name] for name in table.table_key_attrs}))
    return keys


def _serve_bulk_load(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
    """``POST`` a bulk load (see the module's docstring); 400 naming the problem if it is refused."""
    from moto.dynamodb.models import dynamodb_backends
    from werkzeug.wrappers import Request

    request = Request(environ)
    if request.method != "POST":
        return _json_response(environ, start_response, 405, {"message": f"{request.method} not allowed; use POST"},
                              "POST")
    try:
        settings = _settings(json.loads(request.get_data() or b"null"))
        backend = dynamodb_backends[settings.pop("account")][settings.pop("region")]
        started = time.monotonic()
        result = bulk_load(backend, settings.pop("table"), settings.pop("items"), **settings)
    except (ValueError, LookupError) as exc:  # json.JSONDecodeError is a ValueError
        return _json_response(environ, start_response, 400, {"message": str(exc)}, "")
    except Exception as exc:  # moto's ResourceNotFoundException for a missing table, above all
        message = getattr(exc, "message", None) or str(exc)
        return _json_response(environ, start_response, 400, {"message": message}, "")
    result["seconds"] = round(time.monotonic() - started, 3)
    return _json_response(environ, start_response, 200, result, "")


def _settings(body: Any) -> dict[str, Any]:
    """The request body's members, checked, with their defaults."""
    from moto.core import DEFAULT_ACCOUNT_ID

    from jit_audit_dev.seed import default_end

    if not isinstance(body, dict):
        raise ValueError('expected a JSON object {"table": ..., "items": ...}')
    unknown = set(body) - {"table", "items", "seed", "days", "end", "write_time", "region", "account"}
    if unknown:
        raise ValueError(f"unknown member(s): {', '.join(sorted(unknown))}")
    table, items = body.get("table"), body.get("items")
    if not isinstance(table, str) or not table:
        raise ValueError("table: a table name is required")
    if isinstance(items, bool) or not isinstance(items, int) or not 1 <= items <= _MAX_ITEMS:
        raise ValueError(f"items: a whole number from 1 to {_MAX_ITEMS} is required")
    seed = body.get("seed", 1)
    days = body.get("days", 30)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("seed: a whole number")
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0.5 <= days <= 3650:
        raise ValueError("days: a number from 0.5 to 3650")
    end = default_end()
    if "end" in body:
        try:
            end = datetime.fromisoformat(str(body["end"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("end: an ISO 8601 time with a zone, e.g. 2026-11-25T00:00:00Z") from None
        if end.tzinfo is None:
            raise ValueError("end: an ISO 8601 time with a zone, e.g. 2026-11-25T00:00:00Z")
    return {"table": table, "items": items, "seed": seed, "days": float(days), "end": end,
            "write_time": body.get("write_time", "event_time"),
            "region": str(body.get("region", "us-east-1")), "account": str(body.get("account", DEFAULT_ACCOUNT_ID))}
