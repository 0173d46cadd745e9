"""Exact flattening of DynamoDB JSON into plain JSON Lines.

The runbook's ``convert.py`` keeps only the outer type tag of each attribute, so nested maps and
lists stay in DynamoDB JSON, sets come out in arbitrary order, and numbers stay strings. Auditors
need the values themselves, exactly, so this module:

* S -> string; N -> a JSON number carrying DynamoDB's own digits (never through a float);
  B -> its base64 text; BOOL -> bool; NULL -> null; M -> object; L -> array (recursively);
  SS and BS -> arrays sorted by code point; NS -> array of numbers sorted numerically.
* keeps every attribute, in the export's order, and adds ``event_time`` and ``event_id`` split
  from ``event_time_event_id`` when the item does not carry them already.

Incremental exports (``{"Metadata", "Keys", "NewImage", "OldImage"}`` lines) become change
records, see ``flatten_change``. Anything it does not understand is an error naming the source
and line: nothing is skipped.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import orjson

SORT_KEY_ATTRIBUTE = "event_time_event_id"

#: An incremental export's views (``ExportViewType``, the manifest's ``outputView``). With
#: NEW_AND_OLD_IMAGES a line with only a new image is an INSERT (an update has both images); with
#: NEW_IMAGE every insert or update has only its new image, so it is a PUT (and a delete has no image).
EXPORT_VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")

# RFC 8259's number grammar: text that matches it can be written out byte for byte.
_JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
# What DynamoDB's N accepts beyond that (leading '+', leading zeros, '.5', '5.'): ASCII digits only,
# no '_' separators, no spaces, no NaN or Infinity, all of which Python's Decimal would let through.
_DYNAMODB_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_GZIP_MAGIC = b"\x1f\x8b"


class FlattenError(ValueError):
    """A line of DynamoDB JSON that cannot be flattened exactly; names where it was found."""

    def __init__(self, source: str, line_number: int, reason: str) -> None:
        """``line_number`` 0: the problem is the file as a whole (it does not decompress, say)."""
        super().__init__(f"{source}, line {line_number}: {reason}" if line_number else f"{source}: {reason}")
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
    if text in ("NaN", "Infinity", "-Infinity", "inf", "-inf", "nan"):
        raise _BadValue(f"N value {text!r} is not a finite number")
    if not _DYNAMODB_NUMBER.match(text):
        raise _BadValue(f"N value {text!r} is not a number")
    value = Decimal(text)
    canonical = str(value).encode()
    if not _JSON_NUMBER.match(canonical):  # pragma: no cover - Decimal's str is JSON-shaped
        raise _BadValue(f"N value {text!r} has no JSON form")
    return orjson.Fragment(canonical)




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
        # Validate every member first (NaN or junk must be an error, not a failed comparison).
        members = _string_list(tag, value)
        fragments = [number_fragment(member) for member in members]
        order = sorted(range(len(members)), key=lambda index: Decimal(members[index]))
        return [fragments[index] for index in order]
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


_INCREMENTAL_FIELDS = {"Metadata", "Keys", "NewImage", "OldImage"}


def _write_time(metadata: Any) -> tuple[orjson.Fragment, str]:
    """``Metadata.WriteTimestampMicros`` as an exact number and as ISO-8601 UTC text."""
    if not isinstance(metadata, dict) or set(metadata) != {"WriteTimestampMicros"}:
        raise _BadValue('Metadata must be {"WriteTimestampMicros": {"N": ...}}')
    stamp = metadata["WriteTimestampMicros"]
    if not isinstance(stamp, dict) or set(stamp) != {"N"} or not isinstance(stamp["N"], str) or not stamp["N"].isdigit():
        raise _BadValue("WriteTimestampMicros must be {\"N\": <whole microseconds>}")
    micros = int(stamp["N"])
    seconds, fraction = divmod(micros, 1_000_000)
    moment = time.gmtime(seconds)
    return orjson.Fragment(stamp["N"]), time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{fraction:06d}Z"


def flatten_change(record: dict[str, Any], view: str | None = None) -> dict[str, Any]:
    """Flatten one line of an incremental export to the documented change record.

    ``{"operation", "write_time", "write_timestamp_micros", "keys", "new_image", "old_image"}``:
    REMOVE when there is no new image (the deleted item's keys and, with NEW_AND_OLD_IMAGES, its
    last image are kept), MODIFY when both images are there, INSERT when only the new one is and
    the export carries old images (``view`` NEW_AND_OLD_IMAGES), PUT when the export cannot tell
    an insert from an update (``view`` NEW_IMAGE or unknown).
    """
    if "Keys" not in record or "Metadata" not in record:
        raise _BadValue("an incremental export line needs Metadata and Keys")
    keys = record["Keys"]
    if not isinstance(keys, dict) or not keys:
        raise _BadValue("Keys must be a non-empty object")
    micros, write_time = _write_time(record["Metadata"])
    new_image = record.get("NewImage")
    old_image = record.get("OldImage")
    for name, image in (("NewImage", new_image), ("OldImage", old_image)):
        if image is not None and not isinstance(image, dict):
            raise _BadValue(f"{name} must be an object")
    if new_image is None:
        operation = "REMOVE"
    elif old_image is not None:
        operation = "MODIFY"
    else:
        operation = "INSERT" if view == "NEW_AND_OLD_IMAGES" else "PUT"
    return {
        "operation": operation,
        "write_time": write_time,
        "write_timestamp_micros": micros,
        "keys": {name: plain_value(value) for name, value in keys.items()},
        "new_image": None if new_image is None else flatten_item(new_image),
        "old_image": None if old_image is None else flatten_item(old_image),
    }


def flatten_line(line: bytes, view: str | None = None) -> bytes:
    """Flatten one export line to one JSON Lines line, newline included.

    A full export's line is ``{"Item": {...}}``; an incremental export's is
    ``{"Metadata": ..., "Keys": ..., "NewImage": ..., "OldImage": ...}`` (see ``flatten_change``).
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise _BadValue(f"not valid JSON ({error})") from None
    if isinstance(record, dict) and set(record) == {"Item"} and isinstance(record["Item"], dict):
        return orjson.dumps(flatten_item(record["Item"]), option=orjson.OPT_APPEND_NEWLINE)
    if isinstance(record, dict) and record and set(record) <= _INCREMENTAL_FIELDS and "Keys" in record:
        return orjson.dumps(flatten_change(record, view), option=orjson.OPT_APPEND_NEWLINE)
    raise _BadValue('expected {"Item": {...}} or an incremental export line {"Metadata", "Keys", ...}')


def flatten_lines(lines: Iterable[bytes], source: str, view: str | None = None) -> Iterator[bytes]:
    """Yield the flattened form of each export line; a bad line raises FlattenError."""
    line_number = 0
    for line_number, line in enumerate(lines, start=1):  # noqa: B007 - used after the loop
        if not line.strip():
            raise FlattenError(source, line_number, "empty line")
        try:
            yield flatten_line(line, view)
        except _BadValue as error:
            raise FlattenError(source, line_number, str(error)) from None


#: Set this environment variable to 1 to leave the C fast path out: the exact Python path then
#: flattens everything, as where the extension is not built (``make bench`` measures it this way).
#: Read once, when this module is imported.
NO_SPEEDUPS_ENV = "JIT_AUDIT_NO_SPEEDUPS"


def _fast_path() -> Callable[..., tuple[int, int, int, int]] | None:
    """The C fast path's ``flatten_into``, or None: not built, or turned off by NO_SPEEDUPS_ENV."""
    if os.environ.get(NO_SPEEDUPS_ENV, "") not in ("", "0"):
        return None
    try:  # without a compiler the exact Python path does everything, only slower
        from jit_audit._speedups import flatten_into
    except ImportError:  # pragma: no cover - exercised where the extension is not built
        return None
    return flatten_into


_flatten_into = _fast_path()
#: True when ``flatten_stream`` uses the C fast path: it is built and not turned off by NO_SPEEDUPS_ENV.
FAST_PATH = _flatten_into is not None

#: How much decompressed input is read at a time; memory stays near a few of these.
CHUNK_SIZE = 1 << 20


@dataclass
class Progress:
    """Running totals handed to a progress callback."""

    items: int = 0
    bytes_in: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        seconds = max(self.seconds, 1e-9)
        return (
            f"{self.items:,} items, {self.bytes_in / 1e6:,.1f} MB in {seconds:,.1f} s "
            f"({self.items / seconds:,.0f} items/s)"
        )


class _Flattener:
    """Flattens complete lines held in a buffer: C where it can, the reference path elsewhere."""

    def __init__(
        self, source: str, write: Callable[[Any], Any], use_fast_path: bool = True, view: str | None = None
    ) -> None:
        self.source = source
        self.view = view
        self.write = write
        self.items = 0
        self.fast = _flatten_into if use_fast_path else None
        self.out = bytearray(3 * CHUNK_SIZE + 4096)

    def lines(self, data: Any, stop: int) -> None:
        """Flatten every line of ``data[:stop]``, which ends with a newline."""
        position = 0
        while position < stop:
            status = 1
            if self.fast is not None:
                written, position, items, status = self.fast(data, position, stop, self.out)
                if written:
                    self.write(memoryview(self.out)[:written])
                self.items += items
                if status == 0:
                    return
                if status == 2:  # one very long line: make room and go on
                    newline = data.index(b"\n", position)
                    self.out = bytearray(3 * (newline - position) + 4096)
                    continue
            newline = data.index(b"\n", position)
            self.reference_line(bytes(data[position : newline + 1]))
            position = newline + 1

    def reference_line(self, line: bytes) -> None:
        line_number = self.items + 1
        if not line.strip():
            raise FlattenError(self.source, line_number, "empty line")
        try:
            self.write(flatten_line(line, self.view))
        except _BadValue as error:
            raise FlattenError(self.source, line_number, str(error)) from None
        self.items += 1


def flatten_stream(
    source_stream: IO[bytes] | Iterable[bytes],
    write: Callable[[Any], Any],
    source: str,
    progress: Callable[[Progress], None] | None = None,
    progress_seconds: float = 10.0,
    use_fast_path: bool = True,
    view: str | None = None,
) -> int:
    """Flatten a whole export file and return how many items were written.

    ``source_stream`` is a readable binary stream (read in chunks into one reused buffer, so
    memory does not grow with the file) or an iterable of lines. ``write`` receives bytes-like
    objects valid only during the call. ``progress`` is called every ``progress_seconds``.
    """
    flattener = _Flattener(source, write, use_fast_path, view)
    totals = Progress()
    next_report = totals.started + progress_seconds

    def report() -> None:
        nonlocal next_report
        totals.items = flattener.items
        if progress is not None and time.monotonic() >= next_report:
            progress(totals)
            next_report = time.monotonic() + progress_seconds

    if not hasattr(source_stream, "readinto"):
        pending = b""
        for line in source_stream if not hasattr(source_stream, "read") else iter(
            lambda: source_stream.read(CHUNK_SIZE), b""  # type: ignore[union-attr]
        ):
            totals.bytes_in += len(line)
            data = pending + line if pending else line
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            if cut:
                flattener.lines(data, cut)
                report()
        if pending:
            flattener.lines(pending + b"\n", len(pending) + 1)
        return flattener.items

    buffer = bytearray(CHUNK_SIZE)
    filled = 0
    while True:
        read = source_stream.readinto(memoryview(buffer)[filled:])  # type: ignore[union-attr]
        if not read:
            break
        totals.bytes_in += read
        filled += read
        cut = buffer.rfind(b"\n", 0, filled) + 1
        if cut == 0:
            if filled == len(buffer):  # a line longer than the buffer: grow it
                buffer.extend(bytes(len(buffer)))
            continue
        flattener.lines(buffer, cut)
        buffer[: filled - cut] = buffer[cut:filled]
        filled -= cut
        report()
    if filled:
        flattener.lines(bytes(buffer[:filled]) + b"\n", filled + 1)
    totals.items = flattener.items
    return flattener.items


def is_gzip(head: bytes) -> bool:
    """Tell gzip input from plain text by its magic bytes."""
    return head[:2] == _GZIP_MAGIC


def open_text_or_gzip(stream: IO[bytes]) -> IO[bytes]:
    """Wrap a binary stream so it yields decompressed bytes whether or not it is gzipped."""
    import io

    from jit_audit.codecs import gzip_reader

    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type,type-var]
    if is_gzip(buffered.peek(2)):
        return gzip_reader(buffered)  # type: ignore[no-any-return]
    return buffered
