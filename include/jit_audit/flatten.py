"""Exact flattening of DynamoDB JSON into plain JSON Lines.

The runbook's ``convert.py`` keeps only the outer type tag of each attribute, so nested maps and
lists stay in DynamoDB JSON, sets come out in arbitrary order, and numbers stay strings. Auditors
need the values themselves, exactly, so this module:

* S -> string; N -> a JSON number carrying DynamoDB's own digits (never through a float);
  B -> its base64 text; BOOL -> bool; NULL -> null; M -> object; L -> array (recursively);
  SS and BS -> arrays sorted by code point; NS -> array of numbers sorted numerically.
* keeps every attribute, in the export's order, and adds ``event_time`` and ``event_id`` split
  from ``event_time_event_id`` when the item does not carry them already.

Anything it does not understand is an error naming the source and line: nothing is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import orjson

SORT_KEY_ATTRIBUTE = "event_time_event_id"

# RFC 8259's number grammar: text that matches it can be written out byte for byte.
_JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_GZIP_MAGIC = b"\x1f\x8b"


class FlattenError(ValueError):
    """A line of DynamoDB JSON that cannot be flattened exactly; names where it was found."""

    def __init__(self, source: str, line_number: int, reason: str) -> None:
        super().__init__(f"{source}, line {line_number}: {reason}")
        self.source = source
        self.line_number = line_number
        self.reason = reason


class _BadValue(ValueError):
    """Raised inside the converters; turned into a FlattenError with a location."""


def number_fragment(text: str) -> orjson.Fragment:
    """Return DynamoDB's number text as raw JSON, unchanged whenever JSON allows it.

    DynamoDB accepts forms JSON does not (``+1``, ``.5``, ``007``); those are rewritten to the
    same value in JSON's grammar through ``Decimal``, which never rounds.
    """
    raw = text.encode()
    if _JSON_NUMBER.match(raw):
        return orjson.Fragment(raw)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _BadValue(f"N value {text!r} is not a number") from None
    if not value.is_finite():
        raise _BadValue(f"N value {text!r} is not a finite number")
    canonical = str(value).encode()
    if not _JSON_NUMBER.match(canonical):  # pragma: no cover - Decimal's str is JSON-shaped
        raise _BadValue(f"N value {text!r} has no JSON form")
    return orjson.Fragment(canonical)


def _number_sort_key(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise _BadValue(f"NS member {text!r} is not a number") from None


def _string_list(tag: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(member, str) for member in value):
        raise _BadValue(f"{tag} value must be a list of strings, got {type(value).__name__}")
    return value


def plain_value(attribute: Any) -> Any:
    """Convert one DynamoDB JSON attribute value (``{"S": "x"}``) to its plain JSON value."""
    if not isinstance(attribute, dict) or len(attribute) != 1:
        raise _BadValue(f"attribute value must be an object with one type tag, got {attribute!r:.80}")
    ((tag, value),) = attribute.items()
    if tag == "S":
        if not isinstance(value, str):
            raise _BadValue(f"S value must be a string, got {type(value).__name__}")
        return value
    if tag == "N":
        if not isinstance(value, str):
            raise _BadValue(f"N value must be a string, got {type(value).__name__}")
        return number_fragment(value)
    if tag == "M":
        if not isinstance(value, dict):
            raise _BadValue(f"M value must be an object, got {type(value).__name__}")
        return {name: plain_value(member) for name, member in value.items()}
    if tag == "L":
        if not isinstance(value, list):
            raise _BadValue(f"L value must be a list, got {type(value).__name__}")
        return [plain_value(member) for member in value]
    if tag == "BOOL":
        if not isinstance(value, bool):
            raise _BadValue(f"BOOL value must be true or false, got {value!r:.40}")
        return value
    if tag == "NULL":
        if value is not True:
            raise _BadValue(f"NULL value must be true, got {value!r:.40}")
        return None
    if tag == "B":
        if not isinstance(value, str):
            raise _BadValue(f"B value must be base64 text, got {type(value).__name__}")
        return value
    if tag in ("SS", "BS"):
        return sorted(_string_list(tag, value))
    if tag == "NS":
        members = _string_list(tag, value)
        return [number_fragment(member) for member in sorted(members, key=_number_sort_key)]
    raise _BadValue(f"unknown DynamoDB type tag {tag!r}")


def flatten_item(item: dict[str, Any]) -> dict[str, Any]:
    """Flatten a DynamoDB JSON item (the value under ``"Item"``) to a plain JSON object."""
    flat = {name: plain_value(value) for name, value in item.items()}
    sort_key = flat.get(SORT_KEY_ATTRIBUTE)
    if isinstance(sort_key, str) and "#" in sort_key:
        event_time, event_id = sort_key.split("#", 1)
        flat.setdefault("event_time", event_time)
        flat.setdefault("event_id", event_id)
    return flat


def flatten_line(line: bytes) -> bytes:
    """Flatten one export line ``{"Item": {...}}`` to one JSON Lines line, newline included."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise _BadValue(f"not valid JSON ({error})") from None
    if not isinstance(record, dict) or set(record) != {"Item"} or not isinstance(record["Item"], dict):
        raise _BadValue('expected an object of the form {"Item": {...}}')
    return orjson.dumps(flatten_item(record["Item"]), option=orjson.OPT_APPEND_NEWLINE)


def flatten_lines(lines: Iterable[bytes], source: str) -> Iterator[bytes]:
    """Yield the flattened form of each export line; a bad line raises FlattenError."""
    line_number = 0
    for line_number, line in enumerate(lines, start=1):  # noqa: B007 - used after the loop
        if not line.strip():
            raise FlattenError(source, line_number, "empty line")
        try:
            yield flatten_line(line)
        except _BadValue as error:
            raise FlattenError(source, line_number, str(error)) from None


def flatten_stream(
    lines: Iterable[bytes],
    write: Callable[[bytes], Any],
    source: str,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 100_000,
) -> int:
    """Flatten every line into ``write`` and return how many items were written."""
    count = 0
    for count, flat in enumerate(flatten_lines(lines, source), start=1):
        write(flat)
        if progress is not None and count % progress_every == 0:
            progress(count)
    return count


def is_gzip(head: bytes) -> bool:
    """Tell gzip input from plain text by its magic bytes."""
    return head[:2] == _GZIP_MAGIC


def open_text_or_gzip(stream: IO[bytes]) -> IO[bytes]:
    """Wrap a binary stream so it yields decompressed bytes whether or not it is gzipped."""
    import gzip
    import io

    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type,type-var]
    if is_gzip(buffered.peek(2)):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered
