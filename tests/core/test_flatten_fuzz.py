"""Differential fuzzing of the flattener: the C fast path against the exact Python path (issue 13, item 5).

Every input goes through ``flatten_stream`` twice, with the C fast path (``use_fast_path=True``) and
with the Python reference path alone, and both must give the same bytes and item count, or the same
``FlattenError`` (message, line number, and the bytes written before it). Any other exception, from
either path, is a failure too: bad input must be an error naming its line, never a traceback. What a
successful run writes must be JSON Lines: one JSON object per item.

The inputs come from a seeded ``random.Random``: items with every DynamoDB type (strings with escapes,
control characters and any code point, numbers in every form DynamoDB takes, the sort key and the
event fields) and incremental change records for each view, written compact, spaced or with random
whitespace, then mutated byte by byte (truncation, flipped bytes, invalid UTF-8, NUL, CR, quotes,
braces) or value by value (repeated attribute names, nesting 30 to 1,100 levels deep, numbers out of
DynamoDB's range, empty and duplicate sets, bad WriteTimestampMicros, B that is not base64), padded so
lines end at 16-byte boundaries (or one byte either side), read in chunks from 1 byte to the default
1 MiB, and a few lines longer than 1 MiB. A fixed corpus (each line cut at every byte, each invalid
UTF-8 form, bad number and nesting depth, ...) takes turns with random inputs, which go on alone once
it is done (after about 10 s) until time is up:

* ``JIT_AUDIT_FUZZ_SECONDS`` (default 40; ``make fuzz`` gives it 600) bounds the run;
* ``JIT_AUDIT_FUZZ_SEED`` (default: a fresh one) seeds it. The seed is in the failure message and in
  ``make test``'s figures; the same seed gives the same inputs in the same order.

Each distinct failure (the exception and where it was raised, or how the paths differ) is reported
once, with the shortest input that showed it, which is also written whole to
``test-artifacts/fuzz-failure-<seed>.bin`` (the next ones to ``-2.bin``, ``-3.bin``, ...).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import random
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import jit_audit.flatten as flatten_module
from jit_audit.flatten import FAST_PATH, NO_SPEEDUPS_ENV, FlattenError, flatten_stream

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SECONDS_ENV = "JIT_AUDIT_FUZZ_SECONDS"
SEED_ENV = "JIT_AUDIT_FUZZ_SEED"
SOURCE = "fuzz.json"
SORT_KEY = "event_time_event_id"
VIEWS = (None, "NEW_IMAGE", "NEW_AND_OLD_IMAGES")
DEFAULT_CHUNK = flatten_module.CHUNK_SIZE
# Read sizes that put buffer boundaries inside lines, characters and escapes.
SMALL_CHUNKS = (1, 2, 7, 15, 16, 17, 63, 64, 65, 4096)

# ---------------------------------------------------------------------------------------------
# Material
# ---------------------------------------------------------------------------------------------

TRICKY = ' !"\\/#\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\xa0\xad\xe9\u2028\u2029\ufeff\ue000\ufffe\uffff\U0001f600\U0010ffff'
WORDS = ["", " ", "a", "ab", "a b", "admin", "café", "user#1", "#", "2026-01-15T10:00:00Z", "\u2028", "Item", "S", "N"]
NAMES = ["request_id", "user", "role", "n", "tags", "details", "event_time", "event_id", SORT_KEY, "S", "Item", ""]
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
ESCAPED = re.compile(r'[\x00-\x1f"\\]')  # what json.dumps escapes
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}

INVALID_UTF8 = [
    b"\x80", b"\xbf", b"\x80\x80",  # lone continuation bytes
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",  # overlong
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80",  # surrogates, alone and paired
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3\x28", b"\xe2\x28\xa1",  # truncated sequences
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff",  # above U+10FFFF, F5+
]  # fmt: skip
INSERTIONS = [
    *INVALID_UTF8,
    b"\x00", b"\r", b"\r\r", b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\\u", b"\\ud800", b"\\udc00",
    b"\\u00", b"\\x41", b" ", b"\t", b"\x0b", b"\x0c", b"\x1f", b"\x7f", b"\xc2\xa0", b"\xef\xbb\xbf",
    b"\xe2\x80\xa8", b"\n", b"\r\n", b"true", b"null", b"-", b"0", b"e", b".",
]  # fmt: skip

BAD_NUMBERS = [
    "1E+126", "-1E+126", "9.99E+125", "1E-131", "-1E-131", "1E-130", "1" * 39, "-" + "9" * 40, "1." + "2" * 38,
    "0.000" + "7" * 39, "1" * 38 + "0", "1E+999999999999", "+1E+999999999999", "1E+9999999999999999999",
    "+1E+9999999999999999999", "1E+99999999999999999999", "+1E+99999999999999999999", "-.5e-99999999999999999999",
    "1e1000000", "+1e1000000", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1_000", "\u0661\u0662\u0663",
    "\u00b2", "\uff11", " 1", "1 ", "", "0x10", "1e", "--1", "1.2.3", "+", ".", "e5", "-", "1e+", "1E5.5",
    "\u0663.5", "0" * 50, "00.00", "-0E-0", "+.5e-3", "5.e3", "-.5", "1e01", "1E-0000000000000000000001",
    # exponents with more leading zeros than int() takes digits (4,300): the value is 1E+5, 1E-5, 5E+126
    "1E+" + "0" * 5000 + "5", "+1E-" + "0" * 5000 + "5", "5E+" + "0" * 5000 + "126",
]  # fmt: skip
BAD_MICROS = [
    "007", "0", "00", "-1", "+1", "\u0661\u0662\u0663", "\u00b2", "\uff11\uff12\uff13", "1.5", "1e6", "", " 1",
    "1 ", "99999999999999999999999", "253402300800000000", "253402300799999999", "18446744073709551616",
    "0000000000000000000001764064800123456", "1764064800123456\u0661",
]  # fmt: skip
BAD_METADATA = [
    {"WriteTimestampMicros": {"N": 1764064800123456}}, {"WriteTimestampMicros": {"S": "1"}},
    {"WriteTimestampMicros": {"N": "1", "S": "1"}}, {"WriteTimestampMicros": "1"}, {"WriteTimestampMicros": None},
    {}, {"WriteTimestampMicros": {"N": "1"}, "Other": 1}, None, [], "1", {"writeTimestampMicros": {"N": "1"}},
]  # fmt: skip
BAD_VALUES = [
    {}, {"S": "a", "N": "1"}, {"S": 1}, {"S": None}, {"S": ["a"]}, {"N": 1}, {"N": 1.5}, {"N": None},
    {"BOOL": "true"}, {"BOOL": 1}, {"BOOL": None}, {"NULL": False}, {"NULL": "true"}, {"NULL": None}, {"NULL": 1},
    {"M": []}, {"M": "x"}, {"M": None}, {"L": {}}, {"L": "x"}, {"L": [1]}, {"L": [{}]}, {"L": [None]},
    {"SS": "a"}, {"SS": [1]}, {"SS": [None]}, {"NS": ["1", 2]}, {"NS": "1"}, {"NS": [1]}, {"BS": [None]},
    {"B": 5}, {"B": None}, {"B": "!!!"}, {"B": "YQ="}, {"B": "YQ"}, {"B": "Y Q=="}, {"B": "\u00e9"},
    {"B": "YQ==\n"}, {"BS": ["!!"]}, {"BS": ["YQ", "Yg=="]},
    {"SS": []}, {"NS": []}, {"BS": []}, {"SS": ["a", "a"]}, {"SS": ["b", "a", "b"]}, {"NS": ["1", "1"]},
    {"NS": ["1", "1.0"]}, {"NS": ["1", "1E0", "+1"]}, {"NS": ["-0", "0"]}, {"BS": ["YQ==", "YQ=="]},
    {"s": "x"}, {"Bool": True}, {"SSS": ["a"]}, {"": "x"}, {"S\u0000": "x"}, {"\uff33": "x"},
    "S", None, [], 5, True, [{"S": "x"}], {"S": "x", "S ": "x"},
]  # fmt: skip


class Raw(str):
    """JSON text that goes into the line as it is: deep nesting, duplicate names, broken shapes."""


class Pairs(list):
    """An object as (name, value) pairs, so that the same name can appear twice."""


@dataclass
class Case:
    """One input and how it is read."""

    blob: bytes
    view: str | None
    fast_chunk: int
    reference_chunk: int
    label: str


# ---------------------------------------------------------------------------------------------
# Writing DynamoDB JSON: compact, spaced or with random whitespace; escapes as json.dumps writes
# them, or unusual ones (uppercase \\u hex, \\/, escaped ASCII, astral characters as pairs)
# ---------------------------------------------------------------------------------------------


class Encoder:
    """Writes one line; the same seed writes the same bytes (the padding is computed that way).

    ``plain``: raw UTF-8 and json.dumps's escapes only, which the C path copies (it hands any other
    escape to the Python path), so that mutations of the line reach deep into the C parser.
    """

    def __init__(self, seed: float, plain: bool = False) -> None:
        self.rng = random.Random(seed)
        self.ascii_only = not plain and self.rng.random() < 0.3
        self.spacing = self.rng.choice(["compact", "compact", "compact", "spaced", "random"])
        self.unusual_escapes = 0.0 if plain else self.rng.choice([0.0, 0.0, 0.05, 0.3])

    def ws(self) -> str:
        if self.spacing != "random":
            return ""
        return self.rng.choice(["", "", "", "", " ", "\t", "\r", " \r\t "])

    def encode(self, value: Any) -> str:
        if isinstance(value, Raw):
            return str(value)
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, dict | Pairs):
            members = value.items() if isinstance(value, dict) else value
            comma, colon = (", ", ": ") if self.spacing == "spaced" else (",", ":")
            inner = comma.join(
                self.ws() + self.string(name) + self.ws() + colon + self.ws() + self.encode(member) + self.ws()
                for name, member in members
            )
            return "{" + (inner or self.ws()) + "}"
        if isinstance(value, list):
            comma = ", " if self.spacing == "spaced" else ","
            return "[" + (comma.join(self.ws() + self.encode(member) + self.ws() for member in value) or self.ws()) + "]"
        return json.dumps(value)

    def string(self, text: str) -> str:
        if not self.unusual_escapes:
            return json.dumps(text, ensure_ascii=self.ascii_only)
        return '"' + "".join(self.character(char) for char in text) + '"'

    def character(self, char: str) -> str:
        code = ord(char)
        unusual = self.rng.random() < self.unusual_escapes
        if char in SHORT_ESCAPES and not unusual:
            return SHORT_ESCAPES[char]
        if char == "/" and unusual:
            return "\\/"
        if code < 0x20 or char in '"\\' or unusual or (self.ascii_only and code > 0x7F):
            form = "\\u{:04X}" if self.rng.random() < 0.3 else "\\u{:04x}"
            if code > 0xFFFF:
                code -= 0x10000
                return form.format(0xD800 + (code >> 10)) + form.format(0xDC00 + (code & 0x3FF))
            return form.format(code)
        return char


# ---------------------------------------------------------------------------------------------
# Generating items, change records and their mutations
# ---------------------------------------------------------------------------------------------


class Generator:
    """Everything drawn from one seeded Random, so a seed replays the same inputs."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Plain lines: names without escapes, numbers in JSON's grammar and no NS, which the C path
        # flattens itself (it hands those to the Python path): about half of the lines.
        self.plain = False

    # Values -----------------------------------------------------------------------------------

    def character(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return chr(self.rng.randint(0x20, 0x7E))
        if roll < 0.8:
            return self.rng.choice(TRICKY)
        code = self.rng.randrange(self.rng.choice([0x80, 0x800, 0x10000, 0x110000]))
        return "\ufffd" if 0xD800 <= code < 0xE000 else chr(code)

    def text(self, escapes: bool = True) -> str:
        """Any text; with ``escapes`` False on plain lines, none that JSON must escape (the C path
        hands string sets and sort keys with escapes to the Python path)."""
        if self.rng.random() < 0.25:
            return self.rng.choice(WORDS)
        size = self.rng.randint(0, self.rng.choice([4, 16, 16, 40, 120]))
        text = "".join(self.character() for _ in range(size))
        return text if escapes or not self.plain else ESCAPED.sub("_", text)

    def name(self) -> str:
        return self.rng.choice(NAMES) if self.plain or self.rng.random() < 0.5 else self.text() or "x"

    def number(self) -> str:
        """A number DynamoDB takes: up to 38 digits, exponent within its range, in any of its forms."""
        rng = self.rng
        if rng.random() < 0.1:
            return rng.choice(["0", "-0", "0.0", "0E+0", "-0.000", "0e-5", "00", "+0", ".0", "0.", "0.00E3"])
        digits = rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 37)))
        form = rng.random()
        if form < 0.4:
            mantissa, adjusted = digits, len(digits) - 1
        elif form < 0.7:
            point = rng.randint(1, len(digits))
            mantissa, adjusted = digits[:point] + "." + digits[point:], point - 1
            if mantissa.endswith("."):
                mantissa = mantissa + "0" if rng.random() < 0.7 else mantissa  # 5. is DynamoDB's, not JSON's
        else:
            zeros = rng.randint(0, 6)
            mantissa, adjusted = "0." + "0" * zeros + digits, -zeros - 1
            if rng.random() < 0.2:
                mantissa = mantissa[1:]  # .005
        text = mantissa
        if rng.random() < 0.35:
            exponent = rng.randint(-130, 125) - adjusted
            sign = "-" if exponent < 0 else rng.choice(["", "+"])
            text += rng.choice("eE") + sign + "0" * rng.choice([0, 0, 0, 1, 2]) + str(abs(exponent))
        if self.plain:  # JSON's grammar: no +, no 007, no .5 or 5.
            return rng.choice(["", "-"]) + (text if JSON_NUMBER.fullmatch(text) else digits)
        if rng.random() < 0.05 and text[0].isdigit():
            text = "0" * rng.randint(1, 2) + text  # 007
        return rng.choice(["", "", "-", "+"]) + text if rng.random() < 0.5 else text

    def base64(self) -> str:
        return base64.b64encode(self.rng.randbytes(self.rng.randint(0, 24))).decode("ascii")

    def scalar(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(["S", "S", "S", "N", "N", "B", "BOOL", "NULL", "SS", "BS", "SS" if self.plain else "NS"])
        if kind == "S":
            return {"S": self.text()}
        if kind == "N":
            return {"N": self.number()}
        if kind == "B":
            return {"B": self.base64()}
        if kind == "BOOL":
            return {"BOOL": rng.random() < 0.5}
        if kind == "NULL":
            return {"NULL": True}
        size = rng.randint(1, 6)
        if kind == "SS":
            return {"SS": list(dict.fromkeys(self.text(escapes=False) for _ in range(size)))}
        if kind == "BS":
            return {"BS": list(dict.fromkeys(self.base64() for _ in range(size)))}
        members: dict[float, str] = {}
        for _ in range(size):
            text = self.number()
            members.setdefault(float(text), text)  # one member per value (float is enough to tell these apart)
        return {"NS": list(members.values())}

    def value(self, depth: int = 0) -> dict[str, Any]:
        roll = self.rng.random()
        if depth >= 5 or roll < 0.7:
            return self.scalar()
        size = self.rng.randint(0, 4)
        if roll < 0.85:
            return {"M": {self.name(): self.value(depth + 1) for _ in range(size)}}
        return {"L": [self.value(depth + 1) for _ in range(size)]}

    def item(self) -> dict[str, Any]:
        rng = self.rng
        item = {self.name(): self.value() for _ in range(rng.choice([0, 1, 2, 3, 3, 5, 8]))}
        shape = rng.random()
        if shape < 0.6:
            when = rng.choice(["2026-01-15T10:00:00Z", "2026-01-15T10:00:00.123456Z", self.text(False).replace("#", "")])
            item[SORT_KEY] = {"S": when + "#" + rng.choice(["e1", "ev#1", "", self.text(escapes=False)])}
        elif shape < 0.7:
            item[SORT_KEY] = {"S": self.text(escapes=False).replace("#", "")}
        elif shape < 0.75:
            item[SORT_KEY] = self.scalar()
        for name in ("event_time", "event_id"):
            if rng.random() < 0.15:
                item[name] = self.scalar()
        names = list(item)
        rng.shuffle(names)
        return {name: item[name] for name in names}

    def micros(self) -> str:
        return str(self.rng.choice([0, 1, 1764064800123456, self.rng.randrange(10**17)]))

    def change(self) -> dict[str, Any]:
        rng = self.rng
        keys = {"request_id": {"S": self.text()}, SORT_KEY: {"S": "2026-01-15T10:00:00Z#" + self.text()}}
        if rng.random() < 0.2:
            keys = {self.name(): self.scalar()}
        record: dict[str, Any] = {"Metadata": {"WriteTimestampMicros": {"N": self.micros()}}, "Keys": keys}
        images = rng.choice([("NewImage",), ("NewImage", "OldImage"), ("OldImage",), ()])
        for image in images:
            record[image] = {**keys, **self.item()}
        names = list(record)
        rng.shuffle(names)
        return {name: record[name] for name in names}

    def record(self) -> dict[str, Any]:
        return {"Item": self.item()} if self.rng.random() < (0.9 if self.plain else 0.6) else self.change()

    # Value-level mutations ----------------------------------------------------------------------

    def roots(self, record: dict[str, Any]) -> list[tuple[Any, Any]]:
        """(holder, key) of each object of attributes: the item, or Keys and the images."""
        names = ["Item"] if "Item" in record else ["Keys", "NewImage", "OldImage"]
        return [(record, name) for name in names if isinstance(record.get(name), dict)]

    def slots(self, record: dict[str, Any]) -> list[tuple[Any, Any]]:
        """(container, key) of every attribute value: top level, M members, L elements."""
        found: list[tuple[Any, Any]] = []

        def visit(container: Any, key: Any) -> None:
            found.append((container, key))
            value = container[key]
            if type(value) is dict and len(value) == 1:
                ((tag, inner),) = value.items()
                if tag == "M" and type(inner) is dict:
                    for name in inner:
                        visit(inner, name)
                elif tag == "L" and type(inner) is list:
                    for index in range(len(inner)):
                        visit(inner, index)

        for holder, key in self.roots(record):
            for name in holder[key]:
                visit(holder[key], name)
        return found

    def put(self, record: dict[str, Any], value: Any) -> None:
        """Put a value at a random attribute slot (a new attribute when there are none)."""
        slots = self.slots(record)
        if slots and self.rng.random() < 0.85:
            container, key = self.rng.choice(slots)
            container[key] = value
        elif roots := self.roots(record):
            holder, key = self.rng.choice(roots)
            holder[key][self.name()] = value
        else:
            record["Item"] = {self.name(): value}

    def nested(self, depth: int, leaf: str, shape: str | None = None) -> Raw:
        """``depth`` levels of M and L around a value, written as text (no recursion here)."""
        shape = shape or self.rng.choice(["M", "L", "mixed"])
        opens, closes = [], []
        for _ in range(depth):
            sibling = self.rng.random() < 0.1
            if shape == "L" or (shape == "mixed" and self.rng.random() < 0.5):
                opens.append('{"L":[' + ('{"S":"s"},' if sibling else ""))
                closes.append("]}")
            else:
                name = json.dumps(self.rng.choice(NAMES))
                opens.append('{"M":{' + ('"sibling":{"BOOL":true},' if sibling else "") + name + ":")
                closes.append("}}")
        return Raw("".join(opens) + leaf + "".join(reversed(closes)))

    def nesting_depth(self) -> int:
        low, high = self.rng.choice([(30, 40), (30, 40), (60, 70), (250, 260), (290, 310), (480, 520), (1090, 1110)])
        return self.rng.randint(low, high)

    def repeat_a_name(self, record: dict[str, Any]) -> None:
        """The same attribute name twice in an item (or an M), with another value the second time."""
        holders = [*self.roots(record)]
        holders += [(value, "M") for container, key in self.slots(record)
                    if type(value := container[key]) is dict and type(value.get("M")) is dict]  # fmt: skip
        if not holders:
            record["Item"] = Pairs([("a", {"S": "1"}), ("a", {"S": "2"})])
            return
        holder, key = self.rng.choice(holders)
        members = Pairs(holder[key].items())
        name = self.rng.choice([*[name for name, _ in members], SORT_KEY, "event_time", "event_id", "a"])
        again = self.rng.choice([self.scalar(), {"S": "2026-02-02T00:00:00Z#dup"}, {"S": "other"}])
        members.insert(self.rng.randint(0, len(members)), (name, again))
        if not any(existing == name for existing, _ in members[:-1]) or self.rng.random() < 0.5:
            members.insert(self.rng.randint(0, len(members)), (name, self.scalar()))
        holder[key] = members

    def mutate_record(self, record: dict[str, Any]) -> tuple[Any, str]:
        rng = self.rng
        kind = rng.choice(["value", "value", "number", "number", "repeat", "repeat", "nest", "micros", "shape"])
        if kind == "value":
            self.put(record, copy.deepcopy(rng.choice(BAD_VALUES)))
        elif kind == "number":
            bad = rng.choice(BAD_NUMBERS)
            self.put(record, rng.choice([{"N": bad}, {"NS": [self.number(), bad]}, {"L": [{"N": bad}]}]))
        elif kind == "repeat":
            self.repeat_a_name(record)
        elif kind == "nest":
            leaf = self.scalar() if rng.random() < 0.8 else rng.choice(BAD_VALUES)
            self.put(record, self.nested(self.nesting_depth(), json.dumps(leaf)))
        elif kind == "micros":
            if "Item" in record:
                record = self.change()
            if rng.random() < 0.7:
                record["Metadata"] = {"WriteTimestampMicros": {"N": rng.choice(BAD_MICROS)}}
            else:
                record["Metadata"] = copy.deepcopy(rng.choice(BAD_METADATA))
        else:
            return self.broken_shape(record)
        return record, kind

    def broken_shape(self, record: dict[str, Any]) -> tuple[Any, str]:
        """The line as a whole is not an export line: wrong top-level shape, duplicate fields."""
        rng = self.rng
        body = json.dumps(record)
        item = json.dumps(self.item())
        shapes: list[Any] = [
            Raw("[" + body + "]"), Raw("{}"), Raw("[]"), Raw("null"), Raw('"Item"'), Raw("1"),
            Raw('{"Item":' + item + ',"Item":' + item + "}"), Raw('{"Item":' + item + ',"Item":{}}'),
            {"Item": None}, {"Item": [self.item()]}, {"Item": self.item(), "Extra": 1}, {"Items": self.item()},
            Raw("\ufeff" + body), Raw(body + body), Raw(body + "}"), Raw(body + " x"),
        ]  # fmt: skip
        if "Item" not in record:
            change = dict(record)
            shapes += [
                {name: value for name, value in change.items() if name != "Metadata"},
                {name: value for name, value in change.items() if name != "Keys"},
                {**change, "Keys": {}}, {**change, "Keys": []}, {**change, "NewImage": []},
                {**change, "OldImage": "x"}, {**change, "NewImage": None}, {**change, "Extra": {}},
                Pairs([*change.items(), ("Keys", {"a": {"S": "again"}})]),
                Pairs([*change.items(), ("Metadata", {"WriteTimestampMicros": {"N": "2"}})]),
            ]  # fmt: skip
        return rng.choice(shapes), "shape"

    # Byte-level mutations ----------------------------------------------------------------------

    def position(self, line: bytes, in_string: bool) -> int:
        if in_string and b'"' in line:
            quotes = [index for index, byte in enumerate(line) if byte == 0x22]
            return min(len(line), self.rng.choice(quotes) + 1 + self.rng.randint(0, 3))
        return self.rng.randint(0, len(line))

    def mutate_bytes(self, line: bytes) -> tuple[bytes, str]:
        rng = self.rng
        kind = rng.choice(["truncate", "replace", "bitflip", "insert", "insert", "insert", "delete", "structure", "splice"])
        at = self.position(line, in_string=rng.random() < 0.6)
        if kind == "truncate":
            return line[: rng.randint(0, len(line))], kind
        if kind == "insert":
            return line[:at] + rng.choice(INSERTIONS) + line[at:], kind
        if not line:
            return rng.choice(INSERTIONS), kind
        mutable = bytearray(line)
        if kind == "replace":
            for _ in range(rng.randint(1, 3)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        elif kind == "bitflip":
            mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
        elif kind == "delete":
            del mutable[at : at + rng.randint(1, 4)]
        elif kind == "structure":  # lose one quote, brace, bracket, colon or comma
            targets = [index for index, byte in enumerate(line) if byte in b'"{}[]:,']
            if targets:
                del mutable[rng.choice(targets)]
        else:  # a piece of the line again somewhere else
            start = rng.randrange(len(line))
            piece = line[start : start + rng.randint(1, 40)]
            mutable[at:at] = piece
        return bytes(mutable), kind

    # Lines and blobs ---------------------------------------------------------------------------

    def pad(self, record: Any, encoder_seed: float, terminator: bytes, residue: int) -> bytes:
        """Write the record with a "pad" attribute (in the item, or in Keys) long enough that the line
        and its terminator are 16 * k + residue bytes long."""
        place = "Item" if isinstance(record, dict) and "Item" in record else "Keys"
        holder = record.get(place) if isinstance(record, dict) else None
        if not isinstance(holder, dict | Pairs):
            return Encoder(encoder_seed, self.plain).encode(record).encode()
        members = list(holder.items()) if isinstance(holder, dict) else list(holder)

        def write(size: int) -> bytes:
            padding = ("pad", {"S": Raw('"' + "x" * size + '"')})  # Raw: the encoder escapes nothing in it
            return Encoder(encoder_seed, self.plain).encode({**record, place: Pairs([*members, padding])}).encode()

        bare = len(write(0) + terminator)
        return write((residue - bare) % 16 + 16 * self.rng.randint(0, 2))

    def line(self, mutate: bool, terminator: bytes) -> tuple[bytes, str]:
        """One line without its terminator, and what was done to it."""
        rng = self.rng
        self.plain = rng.random() < 0.5
        record: Any = self.record()
        labels = ["plain " * self.plain + ("item" if "Item" in record else "change")]
        if mutate and rng.random() < 0.5:
            record, label = self.mutate_record(record)
            labels.append(label)
        encoder_seed = rng.random()
        if rng.random() < 0.15:
            line = self.pad(record, encoder_seed, terminator, rng.choice([0, 15, 1]))
            labels.append("padded")
        else:
            line = Encoder(encoder_seed, self.plain).encode(record).encode()
        if mutate and (len(labels) == 1 or rng.random() < 0.2):
            line, label = self.mutate_bytes(line)
            labels.append(label)
        return line, "+".join(labels)

    def chunks(self) -> tuple[int, int]:
        fast = DEFAULT_CHUNK if self.rng.random() < 0.6 else self.rng.choice([*SMALL_CHUNKS, self.rng.randint(8, 600)])
        reference = fast if self.rng.random() < 0.5 else self.rng.choice([DEFAULT_CHUNK, *SMALL_CHUNKS])
        return fast, reference

    def random_case(self) -> Case:
        rng = self.rng
        count = rng.choice([1, 1, 1, 1, 2, 3, 4, 6, 10])
        mode = rng.random()
        bad_at = rng.randrange(count) if mode < 0.45 else None
        terminator = b"\r\n" if rng.random() < 0.15 else b"\n"
        lines, labels = [], []
        for index in range(count):
            mutate = index == bad_at or (mode > 0.85 and rng.random() < 0.5)
            line, label = self.line(mutate, terminator)
            lines.append(line)
            labels.append(label)
        if rng.random() < 0.03:
            where = rng.randint(0, count)
            lines.insert(where, rng.choice([b"", b" ", b"\r", b"\t \t"]))
            labels.insert(where, "blank")
        blob = terminator.join(lines)
        if rng.random() < 0.8:
            blob += terminator
        return Case(blob, rng.choice(VIEWS), *self.chunks(), " | ".join(labels))

    # The fixed corpus ---------------------------------------------------------------------------

    def kitchen_sink(self) -> dict[str, Any]:
        """An item with every type, escapes and multi-byte characters."""
        return {
            "request_id": {"S": "r-1 \"quoted\" \\ tab\t nul\x00 \x1f caf\u00e9 \u2028 \U0001f600"},
            "n": {"N": "-12.50"}, "big": {"N": "1" * 38}, "exp": {"N": "1.5E-130"}, "plus": {"N": "+007.50"},
            "b": {"B": "AAE="}, "t": {"BOOL": True}, "f": {"BOOL": False}, "nothing": {"NULL": True},
            "ss": {"SS": ["b", "B", "\u00e9", "a", "a b"]}, "ns": {"NS": ["10", "9.5", "-1", "1E+2", ".5"]},
            "bs": {"BS": ["Yg==", "YQ=="]}, "empty_m": {"M": {}}, "empty_l": {"L": []},
            "details": {"M": {"client": {"M": {"ip": {"S": "10.0.0.1"}, "mfa": {"BOOL": True}}},
                              "tags": {"L": [{"S": "jit"}, {"N": "42"}, {"L": [{"NULL": True}]}]}}},
            SORT_KEY: {"S": "2026-01-15T10:00:00Z#ev#1"},
        }  # fmt: skip

    def change_of(self, item: dict[str, Any], images: tuple[str, ...], micros: str = "1764064800123456") -> dict[str, Any]:
        keys = {"request_id": item["request_id"], SORT_KEY: item[SORT_KEY]}
        record: dict[str, Any] = {"Metadata": {"WriteTimestampMicros": {"N": micros}}, "Keys": keys}
        for image in images:
            record[image] = item
        return record

    def case(self, blob: bytes, label: str, view: str | None = None, chunks: tuple[int, int] | None = None) -> Case:
        return Case(blob, view if view is not None else self.rng.choice(VIEWS), *(chunks or self.chunks()), label)

    def fixed_cases(self) -> Iterator[Case]:
        rng = self.rng
        sink = self.kitchen_sink()
        compact = Encoder(0.5)
        compact.spacing, compact.ascii_only, compact.unusual_escapes = "compact", False, 0.0

        def write(record: Any) -> bytes:
            return compact.encode(record).encode()

        good = write({"Item": {"ok": {"S": "x"}}}) + b"\n"
        sink_line = write({"Item": sink})
        changes = [write(self.change_of(sink, images)) for images in [("NewImage",), ("NewImage", "OldImage"), ("OldImage",), ()]]

        for view in VIEWS:
            for chunk in (DEFAULT_CHUNK, *SMALL_CHUNKS):
                yield self.case(b"\n".join([sink_line, *changes, good]), f"valid lines, chunk {chunk}", view, (chunk, chunk))

        # A few lines longer than the default read (1 MiB): slow, so only these (early: a short run has them).
        long_text = ("x" * 1000 + "\u00e9\U0001f600\\\"\t") * 1100
        long_line = write({"Item": {"big": {"S": long_text}, SORT_KEY: {"S": "2026-01-15T10:00:00Z#big"}}})
        members = [f"member {index:07d} \u00e9" for index in range(60_000)]
        rng.shuffle(members)
        long_set = write({"Item": {"set": {"SS": members}}})
        yield self.case(long_line + b"\n" + good, "a 1.1 MiB line, then a good one", chunks=(DEFAULT_CHUNK, DEFAULT_CHUNK))
        yield self.case(long_set + b"\n", "a 1 MiB string set", chunks=(DEFAULT_CHUNK, 4096))
        yield self.case(long_line[:-30] + b"\xed\xa0\x80" + long_line[-30:] + b"\n", "a 1.1 MiB line, a surrogate at its end")
        yield self.case(good + long_line[:-3] + b"\n", "a 1.1 MiB line, cut short", chunks=(DEFAULT_CHUNK, DEFAULT_CHUNK))
        yield self.case(long_line + b"\n" + b'{"Item":{"a":{"S":"x"}},"Item":{}}\n', "a bad line after a 1.1 MiB line")

        # Invalid UTF-8, NUL and CR: in a value, a name, a set member, the sort key, between tokens.
        places = [
            ('{"Item":{"s":{"S":"ab', 'cd"}}}'), ('{"Item":{"na', 'me":{"S":"x"}}}'),
            ('{"Item":{"ss":{"SS":["a","b', '"]}}}'), ('{"Item":{"event_time_event_id":{"S":"2026#', 'x"}}}'),
            ('{"Item":{"s":{"S":"x"},', '"t":{"BOOL":true}}}'), ('{"Item":{"s":{"S":', '"x"}}}'),
            ('{"Item":{"s":{"N":"1', '2"}}}'), ('{"Item":{"s":{"B":"YQ', '=="}}}'),
        ]  # fmt: skip
        for before, after in places:
            for inserted in [*INVALID_UTF8, b"\x00", b"\r", b"\r\r", b"\x0b", b"\\", b'"', b"\xc2\xa0"]:
                yield self.case(good + before.encode() + inserted + after.encode() + b"\n", f"{inserted!r} inserted")
        # CR as whitespace between tokens is valid JSON, and CRLF line ends.
        for spaced in ['{\r"Item":{"a":{"S":"x"}}}', '{"Item":{"a":\r{"S":"x"},\r"b":{"N":"1"}\r}\r}\r']:
            yield self.case(good + spaced.encode() + b"\n", "CR between tokens")
        yield self.case(b"\r\n".join([sink_line, *changes]) + b"\r\n", "CRLF lines")

        # Values DynamoDB does not write, as attributes and inside M, L and NS.
        for bad in BAD_NUMBERS:
            for value in ({"N": bad}, {"NS": ["1", bad]}, {"L": [{"N": bad}]}, {"M": {"m": {"N": bad}}}):
                yield self.case(good + write({"Item": {"a": {"S": "x"}, "v": value}}) + b"\n", f"number {bad!r}")
            yield self.case(write(self.change_of({**sink, "n": {"N": bad}}, ("NewImage",))) + b"\n", f"number {bad!r}")
        for micros in BAD_MICROS:
            yield self.case(good + write(self.change_of(sink, ("NewImage",), micros)) + b"\n", f"micros {micros!r}")
        for metadata in BAD_METADATA:
            record = {**self.change_of(sink, ("OldImage",)), "Metadata": metadata}
            yield self.case(good + write(record) + b"\n", f"Metadata {metadata!r}")
        for bad_value in BAD_VALUES:
            for holder in ({"Item": {"v": bad_value}}, {"Item": {"m": {"M": {"v": bad_value}}}},
                           self.change_of({**sink, "v": bad_value}, ("NewImage",))):  # fmt: skip
                yield self.case(good + write(holder) + b"\n", f"value {bad_value!r:.60}")

        # The same name twice: in the item, in an M, the sort key, the event fields, the line's fields.
        for name in ("a", SORT_KEY, "event_time", "event_id"):
            first = {"S": "2026-01-01T00:00:00Z#first"}
            second_values: list[dict[str, Any]] = [{"S": "2026-02-02T00:00:00Z#second"}, {"N": "2"}, {"M": {}}]
            for second in second_values:
                item = Pairs([(name, first), ("b", {"N": "1"}), (name, second)])
                yield self.case(good + write({"Item": item}) + b"\n", f"{name} twice")
                yield self.case(good + write({"Item": {"m": {"M": item}}}) + b"\n", f"{name} twice in an M")
                yield self.case(write(self.change_of({"request_id": {"S": "r"}, SORT_KEY: first, "x": {"M": item}}, ("NewImage",))) + b"\n",
                                f"{name} twice in a NewImage")  # fmt: skip
        for twice in (Raw('{"Item":{"a":{"S":"1"}},"Item":{"b":{"S":"2"}}}'),
                      Pairs([*self.change_of(sink, ("NewImage",)).items(), ("Keys", {"a": {"S": "again"}})])):  # fmt: skip
            yield self.case(write(twice) + b"\n", "a line's field twice")

        # Deep nesting, around the C path's limit (64) and orjson's (255 to write, 1024 to read).
        depths = [*range(30, 41), 62, 63, 64, 65, 66, 127, 128, 254, 255, 256, 300, 450, 480, 500, 511, 512, 513, 1100]
        for depth in depths:
            for shape in ("M", "L", "mixed"):
                leaf = json.dumps(self.scalar())
                yield self.case(good + write({"Item": {"deep": self.nested(depth, leaf, shape)}}) + b"\n", f"{shape} nested {depth} deep")
        for depth in (35, 300):
            yield self.case(write({"Item": {"deep": self.nested(depth, '{"N":"1E+126"}', "mixed")}}) + b"\n", f"bad leaf {depth} deep")
            yield self.case(write({"Item": {"deep": self.nested(depth, '{"N":"x"}', "mixed")}}) + b"\n", f"bad leaf {depth} deep")
        yield self.case(b'{"Item":{"a":{"L":' + b"[" * 2000 + b"]" * 2000 + b"}}}\n", "2000 raw brackets")

        # Lines 16 * k - 1, 16 * k and 16 * k + 1 bytes long, with and without the final newline, read
        # whole or in chunks ending at the line's end.
        for repeat in range(40):
            for residue in (15, 0, 1):
                self.plain = repeat % 2 == 0
                line = self.pad(self.record(), rng.random(), b"\n", residue)
                for blob in (line + b"\n", line):
                    size = len(blob)
                    chunk = rng.choice([DEFAULT_CHUNK, size, size - 1, size + 1, 16])
                    yield self.case(blob, f"{size}-byte line (16 * k + {residue})", chunks=(chunk, chunk))

        # Many lines, every read size: boundaries fall in names, escapes, multi-byte characters.
        many: list[bytes] = []
        for index in range(30):
            self.plain = index % 2 == 0
            many.append(Encoder(rng.random(), self.plain).encode(self.record()).encode())
        for chunk in (*SMALL_CHUNKS, 100, 1000):
            yield self.case(b"\n".join(many) + b"\n", f"30 lines, chunk {chunk}", chunks=(chunk, chunk))
            with_bad = [*many[:20], b'{"Item":{"a":{"N":"x"}}}', *many[20:]]
            yield self.case(b"\n".join(with_bad) + b"\n", f"bad line 21 of 31, chunk {chunk}", chunks=(chunk, chunk))

        # Each line cut at every byte, as the last line of the file and followed by a newline (last: the
        # biggest group).
        short = write({"Item": {"a": {"S": "\u00e9\U0001f600\\"}, "n": {"N": "1.5"}, SORT_KEY: {"S": "t#i"}}})
        for line in (short, sink_line, changes[1]):
            for cut in range(len(line) + 1):
                for ending in (b"", b"\n"):
                    yield self.case(good + line[:cut] + ending, f"line 2 cut at byte {cut}")


# ---------------------------------------------------------------------------------------------
# Running both paths
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one path did with an input."""

    kind: str  # "ok", "error" (a FlattenError) or "traceback" (anything else)
    written: bytes  # everything written (before the error, for an error)
    count: int = -1
    message: str = ""  # the FlattenError's text, or the exception's type and text
    line_number: int = 0
    where: str = ""  # a traceback's innermost frame in jit_audit

    def describe(self) -> str:
        if self.kind == "ok":
            return f"{self.count} items, {len(self.written)} bytes: {shorten(self.written, 300)}"
        if self.kind == "error":
            return f"FlattenError {self.message!r:.400} after {len(self.written)} bytes written"
        return f"{self.message[:400]} in {self.where}"


def run(blob: bytes, fast: bool, view: str | None, chunk: int) -> Outcome:
    written: list[bytes] = []
    flatten_module.CHUNK_SIZE = chunk  # read by flatten_stream at each call; restored by monkeypatch
    try:
        count = flatten_stream(io.BytesIO(blob), lambda data: written.append(bytes(data)), SOURCE, use_fast_path=fast, view=view)
    except FlattenError as error:
        return Outcome("error", b"".join(written), message=str(error), line_number=error.line_number)
    except Exception as error:  # any other exception is what this test looks for
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if "jit_audit" in frame.filename]
        where = f"{frames[-1].name} ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else "?"
        return Outcome("traceback", b"".join(written), message=f"{type(error).__name__}: {error}", where=where)
    finally:
        flatten_module.CHUNK_SIZE = DEFAULT_CHUNK
    return Outcome("ok", b"".join(written), count)


def shorten(data: bytes, limit: int = 600) -> str:
    if len(data) <= limit:
        return repr(data)
    return f"{data[: limit * 2 // 3]!r} ... ({len(data):,} bytes) ... {data[-limit // 3 :]!r}"


def not_json_lines(outcome: Outcome, blob: bytes) -> str | None:
    """Why a successful run's output is not one JSON object per item, per line (None if it is)."""
    lines = outcome.written.split(b"\n")
    if lines.pop() != b"" and outcome.written:
        return "the output does not end with a newline"
    if len(lines) != outcome.count:
        return f"{outcome.count} items but {len(lines)} output lines"
    if outcome.count > blob.count(b"\n") + 1:
        return "more items than input lines"

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    for line in lines:
        try:
            value = json.loads(line.decode("utf-8"), parse_constant=no_constants)
        except UnicodeDecodeError:
            return "an output line is not UTF-8"
        except ValueError as error:
            return f"an output line is not JSON ({getattr(error, 'msg', str(error))})"
        if not isinstance(value, dict):
            return "an output line is not a JSON object"
    return None


def failure_of(case: Case, fast: Outcome, reference: Outcome) -> tuple[str, str] | None:
    """(what kind of failure, details) for an input, or None when both paths agree properly."""
    tracebacks = [(path, outcome) for path, outcome in (("C path", fast), ("Python path", reference)) if outcome.kind == "traceback"]
    if tracebacks:
        exception_type = tracebacks[0][1].message.split(":")[0]
        # Where a RecursionError strikes (plain_value, a comprehension) depends on the stack's depth.
        function = "" if exception_type == "RecursionError" else " from " + tracebacks[0][1].where.split(" ")[0]
        paths = " and ".join(path for path, _ in tracebacks)
        return f"{exception_type}{function} ({paths})", "\n".join(f"{path}: {outcome.describe()}" for path, outcome in tracebacks)
    details = f"C path: {fast.describe()}\nPython path: {reference.describe()}"
    if fast.kind != reference.kind:
        return f"C path {fast.kind}, Python path {reference.kind}", details
    if fast.kind == "ok":
        if fast.count != reference.count:
            return "different item counts", details
        if fast.written != reference.written:
            return "different output", details
        problem = not_json_lines(fast, case.blob)
        return (f"output not JSON Lines: {problem}", details) if problem else None
    if fast.message != reference.message or fast.line_number != reference.line_number:
        return "different FlattenErrors", details
    if fast.written != reference.written:
        return "different output before the same FlattenError", details
    if not 1 <= fast.line_number <= case.blob.count(b"\n") + 1 or not fast.message.startswith(f"{SOURCE}, line "):
        return "a FlattenError that does not name a line of the input", details
    return None


@dataclass
class Failure:
    """One kind of failure: the shortest input that showed it, where it was first seen, how often."""

    kind: str
    details: str
    case: Case
    index: int
    first: int
    inputs: int = 1


@dataclass
class Tally:
    tried: int = 0
    flattened: int = 0
    errors: int = 0
    failed: int = 0
    items: int = 0  # lines flattened (by either path) in the C path's successful runs
    c_items: int = 0  # lines the C path flattened itself, in all its runs
    failures: dict[str, Failure] = field(default_factory=dict)

    def add(self, index: int, case: Case) -> None:
        fast = run(case.blob, True, case.view, case.fast_chunk)
        reference = run(case.blob, False, case.view, case.reference_chunk)
        self.tried += 1
        found = failure_of(case, fast, reference)
        if found is None:
            if fast.kind == "ok":
                self.flattened += 1
                self.items += fast.count
            else:
                self.errors += 1
            return
        self.failed += 1
        kind, details = found
        known = self.failures.get(kind)
        if known is None:
            self.failures[kind] = Failure(kind, details, case, index, index)
            return
        known.inputs += 1
        if len(case.blob) < len(known.case.blob):
            known.details, known.case, known.index = details, case, index


def fewer_lines(failure: Failure) -> Failure:
    """The failing input without the lines it does not need (same kind of failure), found by dropping
    one line at a time."""
    case = failure.case
    lines = case.blob.split(b"\n")
    index = 0
    while index < len(lines) and len(lines) > 1:
        trial = Case(b"\n".join(lines[:index] + lines[index + 1 :]), case.view, case.fast_chunk, case.reference_chunk, case.label)
        found = failure_of(trial, run(trial.blob, True, trial.view, trial.fast_chunk),
                           run(trial.blob, False, trial.view, trial.reference_chunk))  # fmt: skip
        if found is not None and found[0] == failure.kind:
            lines.pop(index)
            failure = Failure(failure.kind, found[1], trial, failure.index, failure.first, failure.inputs)
        else:
            index += 1
    return failure


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def c_fast_path(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """The C fast path, counting the lines it flattens itself; fails (never skips) without it."""
    if not FAST_PATH:
        pytest.fail(
            f"jit_audit._speedups did not build (or {NO_SPEEDUPS_ENV} is set): the C fast path is missing, "
            "so this test would compare the Python path with itself; see the compiler output of "
            "`pip install -e .`",
            pytrace=False,
        )
    real = flatten_module._flatten_into
    assert real is not None
    flattened = [0]

    def counting(data: Any, start: int, stop: int, out: Any) -> tuple[int, int, int, int]:
        result = real(data, start, stop, out)
        flattened[0] += result[2]
        return result

    monkeypatch.setattr(flatten_module, "_flatten_into", counting)
    monkeypatch.setattr(flatten_module, "CHUNK_SIZE", DEFAULT_CHUNK)
    return lambda: flattened[0]


def test_c_and_python_paths_agree_on_generated_and_mutated_input(c_fast_path, record_property):
    seconds = float(os.environ.get(SECONDS_ENV) or 40)
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"{SEED_ENV}={seed} {SECONDS_ENV}={seconds:g}")
    generator = Generator(seed)
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds

    def cases() -> Iterator[Case]:
        # The fixed corpus and random inputs by turns (so a short run has both), then random ones only.
        for fixed in generator.fixed_cases():
            yield fixed
            yield generator.random_case()
        while True:
            yield generator.random_case()

    for index, case in enumerate(cases()):
        if time.monotonic() >= deadline:
            break
        tally.add(index, case)
    elapsed = time.monotonic() - started
    tally.c_items = c_fast_path()
    summary = (
        f"flatten fuzz, {SEED_ENV}={seed}: {tally.tried:,} inputs in {elapsed:.0f} s ({tally.tried / elapsed:,.0f}/s); "
        f"{tally.flattened:,} flattened alike, {tally.errors:,} the same FlattenError, {tally.failed:,} failed; "
        f"the C path flattened {tally.c_items:,} lines itself ({tally.items:,} lines out in successful runs)"
    )
    print(summary)
    record_property("figure", summary)

    if tally.failures:
        ARTIFACTS.mkdir(exist_ok=True)
        reports = []
        for number, failure in enumerate(sorted(tally.failures.values(), key=lambda failure: failure.first), start=1):
            failure = fewer_lines(failure)
            path = ARTIFACTS / (f"fuzz-failure-{seed}.bin" if number == 1 else f"fuzz-failure-{seed}-{number}.bin")
            path.write_bytes(failure.case.blob)
            case = failure.case
            reports.append(
                f"{number}. {failure.kind}: {failure.inputs:,} inputs, the first #{failure.first:,}; "
                f"the shortest, #{failure.index:,} ({case.label}):\n"
                f"   input ({len(case.blob):,} bytes, whole in {path.relative_to(REPO)}): {shorten(case.blob)}\n"
                f"   flatten_stream(..., view={case.view!r}), CHUNK_SIZE {case.fast_chunk} (C path), "
                f"{case.reference_chunk} (Python path)\n   " + failure.details.replace("\n", "\n   ")
            )
        pytest.fail(
            f"{tally.failed:,} of {tally.tried:,} inputs failed ({len(reports)} kinds); replay with "
            f"{SEED_ENV}={seed} {SECONDS_ENV}={seconds:g}\n\n" + "\n\n".join(reports),
            pytrace=False,
        )
    # Not a test of nothing: both outcomes in numbers, and the C path flattening much of it itself.
    assert tally.flattened >= 100 and tally.flattened >= tally.tried // 20, summary
    assert tally.errors >= 100 and tally.errors >= tally.tried // 10, summary
    assert tally.c_items >= tally.items // 4, summary
