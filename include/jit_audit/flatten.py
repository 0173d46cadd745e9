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
records, see ``_change``. Anything it does not understand is an error naming the source
and line: nothing is skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
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
_DYNAMODB_NUMBER = re.compile(r"[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\Z")
_GZIP_MAGIC = b"\x1f\x8b"

#: DynamoDB's limits (Developer Guide, "Service, account, and table quotas"): numbers have at most
#: 38 significant digits and a magnitude from 1E-130 to 9.99...E+125 (or are 0); attribute values
#: nest at most 32 levels deep.
MAX_NUMBER_DIGITS = 38
MIN_NUMBER_EXPONENT, MAX_NUMBER_EXPONENT = -130, 125
MAX_NESTING = 32
#: Metadata.WriteTimestampMicros up to 9999-12-31T23:59:59.999999Z (what ISO-8601 text can say).
MAX_WRITE_MICROS = 253_402_300_799_999_999
_PLAIN_INTEGER = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_PLAIN_NAME = re.compile(r"[\w\-:@$#/]+\Z")


class FlattenError(ValueError):
    """A line of DynamoDB JSON that cannot be flattened exactly; names where it was found.

    ``attribute`` is the attribute path inside the line (``details.client.tags``, ``tags[2]``;
    ``NewImage.``/``OldImage.``/``Keys.`` first on an incremental export's line), "" when the
    problem is the line (or the file) as a whole.
    """

    def __init__(self, source: str, line_number: int, reason: str, attribute: str = "") -> None:
        """``line_number`` 0: the problem is the file as a whole (it does not decompress, say)."""
        where = f"{source}, line {line_number}" if line_number else source
        if attribute:
            where += f", attribute {attribute}"
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line_number = line_number
        self.reason = reason
        self.attribute = attribute


class _BadValue(ValueError):
    """Raised inside the converters; turned into a FlattenError with a location.

    ``path`` collects the attribute path innermost first as the error unwinds (names and list
    indexes), ``prefix`` is the part of the line it is in (``NewImage``...), if not the Item.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = []
        self.prefix = ""

    def attribute(self) -> str:
        return format_attribute_path([self.prefix, *reversed(self.path)] if self.prefix else self.path[::-1])


def format_attribute_path(components: Iterable[str | int]) -> str:
    """``["details", "tags", 2]`` -> ``details.tags[2]``; unusual names are quoted: ``a["x.y"]``."""
    text = ""
    for component in components:
        if isinstance(component, int):
            text += f"[{component}]"
        elif _PLAIN_NAME.match(component):
            text += f".{component}" if text else component
        else:
            text += f"[{json.dumps(component, ensure_ascii=not _is_text(component))}]"
    return text


def _is_text(value: str) -> bool:
    """True unless ``value`` holds a lone surrogate (which cannot be printed as UTF-8)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class _JsonNumber(str):
    """A bare JSON number where DynamoDB JSON has none (its numbers are strings): kept as text."""


def _no_constants(name: str) -> Any:
    raise _BadValue(f"not valid JSON: {name} is not a JSON value")


# Objects decode to tuples of (name, value) pairs, so a name given twice is still there to be found
# (a dict would keep one silently); arrays to lists, bare numbers to their text (no int size limit).
_DECODER = json.JSONDecoder(
    object_pairs_hook=tuple, parse_int=_JsonNumber, parse_float=_JsonNumber, parse_constant=_no_constants
)


def _kind(value: Any) -> str:
    """How a decoded JSON value reads in a message."""
    if type(value) is tuple:
        return "an object"
    if type(value) is list:
        return "a list"
    if isinstance(value, _JsonNumber):
        return f"the number {value[:40]}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if value is None:
        return "null"
    return "true" if value else "false"


def _check_number(text: str) -> None:
    """Raise _BadValue unless ``text`` is a number DynamoDB could hold (grammar, digits, range)."""
    match = _DYNAMODB_NUMBER.match(text)
    if not match or not (match.group(1) or match.group(2)):
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise _BadValue(f"N value {text!r} is not a finite number")
        raise _BadValue(f"N value {text!r:.60} is not a number")
    integer, fraction, exponent_text = match.group(1), match.group(2) or "", match.group(3)
    digits = integer + fraction
    significant = digits.lstrip("0")
    leading_zeros = len(digits) - len(significant)
    significant = significant.rstrip("0")
    if len(significant) > MAX_NUMBER_DIGITS:
        raise _BadValue(
            f"N value {text!r:.60} has {len(significant)} significant digits; DynamoDB keeps at most {MAX_NUMBER_DIGITS}"
        )
    exponent_digits = (exponent_text or "").lstrip("+-").lstrip("0")
    if len(exponent_digits) > 9:  # and int() of thousands of digits would be slow, or refused
        raise _BadValue(f"N value {text!r:.60} is outside DynamoDB's range (1E-130 to 9.99...E+125)")
    exponent = int(exponent_digits or "0") * (-1 if (exponent_text or "").startswith("-") else 1)
    # The power of ten of the first significant digit (of the first digit, for 0).
    adjusted = exponent + len(integer) - 1 - (leading_zeros if significant else 0)
    if not MIN_NUMBER_EXPONENT <= adjusted <= MAX_NUMBER_EXPONENT:
        raise _BadValue(f"N value {text!r:.60} is outside DynamoDB's range (1E-130 to 9.99...E+125)")


def number_fragment(text: str) -> orjson.Fragment:
    """Return DynamoDB's number text as raw JSON, unchanged whenever JSON allows it.

    The number must be one DynamoDB could hold (``_check_number``). DynamoDB accepts forms JSON does
    not (``+1``, ``.5``, ``007``); those are rewritten to the same value in JSON's grammar through
    ``Decimal``, which never rounds.
    """
    _check_number(text)
    raw = text.encode()
    if _JSON_NUMBER.match(raw):
        return orjson.Fragment(raw)
    canonical = str(Decimal(text)).encode()
    if not _JSON_NUMBER.match(canonical):  # pragma: no cover - Decimal's str is JSON-shaped
        raise _BadValue(f"N value {text!r} has no JSON form")
    return orjson.Fragment(canonical)


def _is_base64(text: str) -> bool:
    """Canonical base64 (RFC 4648 section 4, padded, unused bits zero): what DynamoDB writes for B."""
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode("ascii") == text
    except (binascii.Error, ValueError):
        return False


def _check_string_list(tag: str, value: Any) -> None:
    if type(value) is not list:
        raise _BadValue(f"{tag} value must be a list of strings, got {_kind(value)}")
    for index, member in enumerate(value):
        if type(member) is not str:
            raise _BadValue(f"{tag} value must be a list of strings, got {_kind(member)} at position {index}")


def _string_set(tag: str, value: Any) -> list[str]:
    """An SS or BS: a non-empty list of distinct strings (base64 for BS), sorted by code point."""
    _check_string_list(tag, value)
    if not value:
        raise _BadValue(f"{tag} value is an empty set (DynamoDB sets have at least one member)")
    if tag == "BS":
        for member in value:
            if not _is_base64(member):
                raise _BadValue(f"BS member {member!r:.60} is not base64")
    members = sorted(value)
    for before, after in zip(members, members[1:], strict=False):
        if before == after:
            raise _BadValue(f"{tag} value has the member {after!r:.60} twice (set members are distinct)")
    return members


def _number_set(value: Any) -> list[orjson.Fragment]:
    """An NS: a non-empty list of distinct numbers, sorted by value."""
    _check_string_list("NS", value)
    if not value:
        raise _BadValue("NS value is an empty set (DynamoDB sets have at least one member)")
    # Validate every member first (junk must be an error, not a failed comparison); in range, so
    # Decimal takes each exactly.
    fragments = [number_fragment(member) for member in value]
    numbers = [Decimal(member) for member in value]
    order = sorted(range(len(value)), key=numbers.__getitem__)
    for before, after in zip(order, order[1:], strict=False):
        if numbers[before] == numbers[after]:
            raise _BadValue(
                f"NS value has the number {value[after]!r:.60} twice (as {value[before]!r:.60}; set members are distinct)"
            )
    return [fragments[index] for index in order]


def _repeated_name(pairs: tuple[tuple[str, Any], ...]) -> str:
    seen: set[str] = set()
    for name, _value in pairs:
        if name in seen:
            return name
        seen.add(name)
    raise AssertionError("no repeated name")  # pragma: no cover - called only when there is one


def _attributes(pairs: Any, depth: int) -> dict[str, Any]:
    """An item's or a map's attributes (decoded pairs) as a plain dict; names given once each."""
    flat = {}
    for name, value in pairs:
        try:
            flat[name] = _plain(value, depth)
        except _BadValue as error:
            error.path.append(name)
            raise
    if len(flat) != len(pairs):
        name = _repeated_name(pairs)
        repeated = _BadValue(f"the attribute name {name!r:.60} appears twice (names are unique within an item or a map)")
        repeated.path.append(name)
        raise repeated
    return flat


def _plain(attribute: Any, depth: int) -> Any:
    """Convert one decoded DynamoDB JSON attribute value (``{"S": "x"}``) to its plain JSON value."""
    if depth > MAX_NESTING:
        raise _BadValue(f"attribute values nest more than {MAX_NESTING} levels deep (DynamoDB's limit)")
    if type(attribute) is not tuple or len(attribute) != 1:
        if type(attribute) is tuple and len(attribute) > 1 and len({tag for tag, _ in attribute}) < len(attribute):
            raise _BadValue(f"the type tag {_repeated_name(attribute)!r} is repeated")
        count = f"{len(attribute)} names" if type(attribute) is tuple else _kind(attribute)
        raise _BadValue(f"attribute value must be an object with one type tag, got {count}")
    ((tag, value),) = attribute
    if tag == "S":
        if type(value) is not str:
            raise _BadValue(f"S value must be a string, got {_kind(value)}")
        return value
    if tag == "N":
        if type(value) is not str:
            raise _BadValue(f"N value must be a string, got {_kind(value)}")
        return number_fragment(value)
    if tag == "M":
        if type(value) is not tuple:
            raise _BadValue(f"M value must be an object, got {_kind(value)}")
        return _attributes(value, depth + 1)
    if tag == "L":
        if type(value) is not list:
            raise _BadValue(f"L value must be a list, got {_kind(value)}")
        plain = []
        for index, member in enumerate(value):
            try:
                plain.append(_plain(member, depth + 1))
            except _BadValue as error:
                error.path.append(index)
                raise
        return plain
    if tag == "BOOL":
        if type(value) is not bool:
            raise _BadValue(f"BOOL value must be true or false, got {_kind(value)}")
        return value
    if tag == "NULL":
        if value is not True:
            raise _BadValue(f"NULL value must be true, got {_kind(value)}")
        return None
    if tag == "B":
        if type(value) is not str or not _is_base64(value):
            raise _BadValue(f"B value must be base64 text, got {_kind(value)}")
        return value
    if tag in ("SS", "BS"):
        return _string_set(tag, value)
    if tag == "NS":
        return _number_set(value)
    raise _BadValue(f"unknown DynamoDB type tag {tag!r:.40}")


def _item(pairs: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a decoded item (the value under ``"Item"``, or an image) to a plain JSON object."""
    try:
        if type(pairs) is not tuple:
            raise _BadValue(f"an item must be an object, got {_kind(pairs)}")
        flat = _attributes(pairs, 1)
    except _BadValue as error:
        error.prefix = prefix
        raise
    sort_key = flat.get(SORT_KEY_ATTRIBUTE)
    if isinstance(sort_key, str) and "#" in sort_key:
        event_time, event_id = sort_key.split("#", 1)
        flat.setdefault("event_time", event_time)
        flat.setdefault("event_id", event_id)
    return flat


def _pairs(value: Any) -> Any:
    """Dicts (a low-level client's DynamoDB JSON) as the decoder's tuples of pairs."""
    if isinstance(value, dict):
        return tuple((name, _pairs(member)) for name, member in value.items())
    if isinstance(value, list):
        return [_pairs(member) for member in value]
    return value


def flatten_item(item: dict[str, Any]) -> dict[str, Any]:
    """Flatten an item given as dicts (a low-level client's DynamoDB JSON, binary as base64 text).

    Same rules and values as an export line's ``Item``; a broken rule raises ValueError.
    """
    try:
        return _item(_pairs(item))
    except _BadValue as error:
        attribute = error.attribute()
        raise ValueError(f"attribute {attribute}: {error.reason}" if attribute else error.reason) from None


_INCREMENTAL_FIELDS = {"Metadata", "Keys", "NewImage", "OldImage"}


def _write_time(metadata: Any) -> tuple[orjson.Fragment, str]:
    """``Metadata.WriteTimestampMicros`` as an exact number and as ISO-8601 UTC text."""
    if type(metadata) is not tuple or [name for name, _ in metadata] != ["WriteTimestampMicros"]:
        raise _BadValue('Metadata must be {"WriteTimestampMicros": {"N": ...}}')
    ((_, stamp),) = metadata
    if type(stamp) is not tuple or len(stamp) != 1 or stamp[0][0] != "N" or type(stamp[0][1]) is not str:
        raise _BadValue('Metadata.WriteTimestampMicros must be {"N": <whole microseconds>}')
    text = stamp[0][1]
    if not _PLAIN_INTEGER.match(text):
        raise _BadValue(
            f"Metadata.WriteTimestampMicros {text!r:.40} is not whole microseconds "
            "(ASCII digits, no sign, no leading zeros)"
        )
    micros = int(text) if len(text) <= 18 else MAX_WRITE_MICROS + 1
    if micros > MAX_WRITE_MICROS:
        raise _BadValue(f"Metadata.WriteTimestampMicros {text!r:.40} is after the year 9999")
    seconds, fraction = divmod(micros, 1_000_000)
    moment = time.gmtime(seconds)
    return orjson.Fragment(text.encode()), time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{fraction:06d}Z"


def _change(record: dict[str, Any], view: str | None) -> dict[str, Any]:
    """Flatten one decoded line of an incremental export to the documented change record.

    ``{"operation", "write_time", "write_timestamp_micros", "keys", "new_image", "old_image"}``:
    REMOVE when there is no new image (the deleted item's keys and, with NEW_AND_OLD_IMAGES, its
    last image are kept), MODIFY when both images are there, INSERT when only the new one is and
    the export carries old images (``view`` NEW_AND_OLD_IMAGES), PUT when the export cannot tell
    an insert from an update (``view`` NEW_IMAGE or unknown).
    """
    if "Keys" not in record or "Metadata" not in record:
        raise _BadValue("an incremental export line needs Metadata and Keys")
    keys = record["Keys"]
    if type(keys) is not tuple or not keys:
        raise _BadValue("Keys must be a non-empty object")
    micros, write_time = _write_time(record["Metadata"])
    new_image = record.get("NewImage")
    old_image = record.get("OldImage")
    for name, image in (("NewImage", new_image), ("OldImage", old_image)):
        if image is not None and type(image) is not tuple:
            raise _BadValue(f"{name} must be an object, got {_kind(image)}")
    if new_image is None:
        operation = "REMOVE"
    elif old_image is not None:
        operation = "MODIFY"
    else:
        operation = "INSERT" if view == "NEW_AND_OLD_IMAGES" else "PUT"
    try:
        flat_keys = _attributes(keys, 1)
    except _BadValue as error:
        error.prefix = "Keys"
        raise
    return {
        "operation": operation,
        "write_time": write_time,
        "write_timestamp_micros": micros,
        "keys": flat_keys,
        "new_image": None if new_image is None else _item(new_image, "NewImage"),
        "old_image": None if old_image is None else _item(old_image, "OldImage"),
    }


def _decode(line: bytes) -> Any:
    """The line as decoded JSON (objects as tuples of pairs); errors say where, by byte offset."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = line[error.start : error.end].hex(" ")
        raise _BadValue(f"invalid UTF-8 at byte {error.start} of the line (bytes {bad})") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        offset = len(text[: error.pos].encode())
        raise _BadValue(f"not valid JSON at byte {offset} of the line: {error.msg}") from None
    except RecursionError:
        too_deep = _BadValue(f"attribute values nest more than {MAX_NESTING} levels deep (DynamoDB's limit)")
        too_deep.prefix, path = _deep_path(text)
        too_deep.path = path[::-1]
        raise too_deep from None


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]')


def _deep_path(text: str) -> tuple[str, list[str | int]]:
    """Where a line nests too deep to decode: the part of the line and the first 33 path components.

    JSON nesting alternates attribute name (or list index) and type tag below the line's own key,
    ``{"Item": {"a": {"M": {"b": {"L": [...]}}}}}``, so the attribute path is every other key.
    """
    stack: list[list[Any]] = []  # [is_object, current key or index]
    expect_key = False
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            stack.append([token == "{", None if token == "{" else 0])
            expect_key = token == "{"
            keys = [entry[1] for entry in stack]
            if len(keys[1::2]) > MAX_NESTING and all(key is not None for key in keys[1::2]):
                prefix, path = _in_attribute_terms(keys)
                return prefix, path[: MAX_NESTING + 1]
        elif token in "}]":
            if stack:
                stack.pop()
            expect_key = False
        elif token == ",":
            if stack and not stack[-1][0]:
                stack[-1][1] += 1
            expect_key = bool(stack) and stack[-1][0]
        elif token == ":":
            expect_key = False
        elif expect_key and stack:
            stack[-1][1] = json.loads(token)
    return "", []


def flatten_line(line: bytes, view: str | None = None) -> bytes:
    """Flatten one export line to one JSON Lines line, newline included.

    A full export's line is ``{"Item": {...}}``; an incremental export's is
    ``{"Metadata": ..., "Keys": ..., "NewImage": ..., "OldImage": ...}`` (REMOVE, MODIFY, INSERT or
    PUT, see ``_change``). A line that breaks a rule raises ``_BadValue``; the callers turn it into
    a FlattenError naming the source, the line and the attribute.
    """
    record = _decode(line)
    if type(record) is tuple and record:
        names = [name for name, _ in record]
        if len(set(names)) != len(names):
            raise _BadValue(f"the name {_repeated_name(record)!r:.40} is repeated in the line")
        if names == ["Item"]:
            flat = _item(record[0][1])
        elif set(names) <= _INCREMENTAL_FIELDS and "Keys" in names:
            flat = _change(dict(record), view)
        else:
            flat = None
        if flat is not None:
            try:
                return orjson.dumps(flat, option=orjson.OPT_APPEND_NEWLINE)
            except orjson.JSONEncodeError:
                raise _lone_surrogate(record) from None
    raise _BadValue('expected {"Item": {...}} or an incremental export line {"Metadata", "Keys", ...}')


def _in_attribute_terms(json_path: list[Any]) -> tuple[str, list[str | int]]:
    """A JSON path into a line (keys and indexes) as (part of the line, attribute path).

    Below the line's own key, DynamoDB JSON alternates attribute name (or list or set position) and
    type tag: ``["Item", "a", "M", "b", "L", 0, "S"]`` is ``a.b[0]``, every other component.
    """
    prefix = json_path[0] if json_path and json_path[0] != "Item" and isinstance(json_path[0], str) else ""
    return prefix, json_path[1::2]


def _lone_surrogate(record: Any) -> _BadValue:
    """The error for a name or string decoded from an unpaired ``\\ud800``-``\\udfff`` escape, with its path
    (positions as in the line: a set's members are not sorted yet)."""
    error = _BadValue("a name or string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair)")

    def find(value: Any, path: list[Any]) -> list[Any] | None:
        if isinstance(value, str):
            return path if not _is_text(value) else None
        members: Iterable[tuple[Any, Any]]
        if type(value) is tuple:
            members = value
        elif type(value) is list:
            members = enumerate(value)
        else:
            return None
        for name, member in members:
            here = [*path, name]
            if isinstance(name, str) and not _is_text(name):
                return here
            found = find(member, here)
            if found is not None:
                return found
        return None

    json_path = find(record, [])
    if json_path is not None:
        error.prefix, path = _in_attribute_terms(json_path)
        error.path = path[::-1]
    return error


def _flatten_error(source: str, line_number: int, error: _BadValue) -> FlattenError:
    return FlattenError(source, line_number, error.reason, error.attribute())


def flatten_lines(lines: Iterable[bytes], source: str, view: str | None = None) -> Iterator[bytes]:
    """Yield the flattened form of each export line; a bad line raises FlattenError."""
    line_number = 0
    for line_number, line in enumerate(lines, start=1):  # noqa: B007 - used after the loop
        if not line.strip():
            raise FlattenError(source, line_number, "empty line")
        try:
            yield flatten_line(line, view)
        except _BadValue as error:
            raise _flatten_error(source, line_number, error) from None


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
            raise _flatten_error(self.source, line_number, error) from None
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
